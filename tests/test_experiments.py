"""Experiment grids (pfslogg.experiments): noise tags, cell seeds, cells, intervals over seeds, the
aggregate of an experiment; and the bias / slope metrics of pfslogg.evaluation."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from pfslogg.errors import InputError
from pfslogg.evaluation import bias, slope, summarize
from conftest import cell_predictions
from pfslogg.evaluation import boot_weights
from pfslogg.experiments import (aggregate, cell_seed, compared_cells, comparison_groups, comparison_levels,
                                 convergence, experiment_cells, noise_tag, parse_noise_tag, t_interval)


# -- noise tags --------------------------------------------------------------------------------
@pytest.mark.parametrize("level,tag", [(0, "0"), (0.0, "0"), (0.1, "0p1"), (0.2, "0p2"), (0.5, "0p5"), (1, "1"),
                                       (1.0, "1"), (2, "2"), (10, "10"), (2.5, "2p5")])
def test_noise_tag_round_trip(level, tag):
    assert noise_tag(level) == tag
    assert parse_noise_tag(tag) == float(level)


@pytest.mark.parametrize("level", [1e-5, 0.001, 0.05, 0.1234567, 0.1234568, 1.5, 100.0, 1e6, 12345678.0])
def test_noise_tag_round_trips_any_level(level):
    """Every noise level has a tag that matches the workflow's wildcard pattern and parses back to
    exactly that level (two different levels never share a cell path)."""
    tag = noise_tag(level)
    assert parse_noise_tag(tag) == level, tag


@pytest.mark.parametrize("tag", ["", "p5", "1p", "0.5", "-1", "1e-05", "abc", "1p2p3", " 1", "1 ", "nl1"])
def test_bad_noise_tags_rejected(tag):
    with pytest.raises(InputError, match="noise tag"):
        parse_noise_tag(tag)


# -- seeds and cells ---------------------------------------------------------------------------
def test_cell_seed_distinct_per_index_and_deterministic():
    seeds = [cell_seed(20241124, i) for i in range(200)]
    assert len(set(seeds)) == 200
    assert seeds == [cell_seed(20241124, i) for i in range(200)]
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
    other = [cell_seed(7, i) for i in range(200)]
    assert not set(seeds) & set(other)                # the master seed matters
    assert cell_seed(20241124.0, 1.0) == seeds[1]     # a float-typed config value gives the same seed


def test_experiment_cells_count_is_the_product():
    exp = {"estimators": ["a", "b", "c"], "noise_levels": [0.0, 0.5, 2.0, 1.0], "sizes": [10, 20], "seeds": 3}
    cells = experiment_cells(exp)
    assert len(cells) == len(set(cells)) == 3 * 4 * 2 * 3
    assert {c[1] for c in cells} == {"0", "0p5", "2", "1"}
    assert {c[2] for c in cells} == {10, 20} and {c[3] for c in cells} == {0, 1, 2}
    assert ("b", "0p5", 20, 2) in cells


# -- intervals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_t_interval_matches_scipy(confidence):
    v = [0.81, 0.83, 0.78, 0.86]
    m, sem = np.mean(v), np.std(v, ddof=1) / math.sqrt(len(v))
    half = stats.t.ppf(0.5 + confidence / 2, df=len(v) - 1) * sem
    lo, hi = t_interval(v, confidence)
    assert lo == pytest.approx(m - half, rel=1e-12) and hi == pytest.approx(m + half, rel=1e-12)
    ref = stats.t.interval(confidence, df=len(v) - 1, loc=m, scale=sem)
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)


def test_t_interval_of_one_value_and_of_equal_values():
    assert t_interval([0.7], 0.95) == [0.7, 0.7]
    lo, hi = t_interval([0.4, 0.4, 0.4], 0.95)
    assert lo == pytest.approx(0.4) and hi == pytest.approx(0.4)


# -- aggregate ---------------------------------------------------------------------------------
EXP = {"track": "f", "estimators": ["ridge", "lgb"], "noise_levels": [0.5, 2.0], "sizes": [100, 400], "seeds": 3}
LABELS = {"ridge": ("ridge", "Ridge"), "lgb": ("lightgbm", "LightGBM")}
# R^2 per (estimator, noise tag, size) and seed
R2 = {
    ("ridge", "0p5", 100): [0.80, 0.81, 0.82], ("lgb", "0p5", 100): [0.70, 0.71, 0.72],   # ridge, clearly
    ("ridge", "0p5", 400): [0.90, 0.905, 0.91], ("lgb", "0p5", 400): [0.89, 0.92, 0.95],  # lgb, a tie
    ("ridge", "2", 100): [0.30, 0.31, 0.29], ("lgb", "2", 100): [0.50, 0.52, 0.48],       # lgb, clearly
    ("ridge", "2", 400): [0.40, 0.40, 0.40], ("lgb", "2", 400): [0.41, 0.41, 0.41],       # lgb, no spread
}
VAR = 4.0 / 3.0


def cell_doc(e, tag, size, s):
    """A cell results document (kind "estimator") in the format of /tmp/spec_frame.md."""
    r = R2[(e, tag, size)][s]
    overall = {"n": 50, "r2": r, "r2_ci": [r - 0.02, r + 0.03], "mae": 0.5 - r / 2, "rmse": 1.0 - r + 0.01 * s,
               "bias": 0.01 * (s - 1), "slope": r - 0.05}
    return {"kind": "estimator",
            "metrics": {"estimator": e, "class": LABELS[e][0], "label": LABELS[e][1],
                        "noise_level": float(tag.replace("p", ".")), "size": size, "seed": s, "n_test": 50,
                        "var_prior": VAR, "confidence": 0.95, "overall": overall,
                        "snr_bins": [{"lo": 2.0, "hi": 3.0, "snr_median": 2.5, **overall, "n": 20, "seed_": s}]},
            "details": {"fitted": {"alpha": 10.0 * (s + 1), "cell": [e, tag, size]}, "timing": {"fit_s": 1.0}},
            "provenance": {}}


def all_docs(exp=EXP):
    return {c: cell_doc(*c) for c in experiment_cells(exp)}


@pytest.fixture(scope="module")
def agg():
    return aggregate("bench", EXP, all_docs(), 0.95, default_noise_level=2.0)


def test_aggregate_top_level(agg):
    metrics, details, rows = agg
    assert metrics["experiment"] == "bench" and metrics["track"] == "f" and metrics["confidence"] == 0.95
    assert metrics["var_prior"] == VAR and metrics["n_test"] == 50 and metrics["default_noise_level"] == 2.0
    assert metrics["noise_levels"] == [0.5, 2.0] and metrics["sizes"] == [100, 400] and metrics["seeds"] == [0, 1, 2]
    assert list(metrics["estimators"]) == ["ridge", "lgb"]                    # config order
    assert metrics["estimators"]["lgb"] == {"class": "lightgbm", "label": "LightGBM"}
    json.dumps(metrics, allow_nan=False)                                      # plain JSON values
    json.dumps(details, allow_nan=False)
    json.dumps(rows, allow_nan=False)


@pytest.mark.parametrize("key", sorted(R2))
def test_aggregate_means_over_seeds(agg, key):
    e, tag, size = key
    c = agg[0]["cells"][e][f"nl{tag}"][f"n{size}"]
    docs = [cell_doc(e, tag, size, s)["metrics"]["overall"] for s in range(3)]
    r2s = [d["r2"] for d in docs]
    assert c["n_seeds"] == 3 and c["size"] == size and c["noise_level"] == float(tag.replace("p", "."))
    assert c["r2"] == pytest.approx(np.mean(r2s), abs=1e-15)
    assert c["r2_ci_seeds"] == pytest.approx(t_interval(r2s, 0.95), abs=1e-15)
    assert c["r2_ci_seeds"][0] <= c["r2"] <= c["r2_ci_seeds"][1]
    assert c["r2_ci_boot"] == pytest.approx([np.mean([d["r2_ci"][i] for d in docs]) for i in (0, 1)], abs=1e-15)
    for k in ("rmse", "mae", "bias", "slope"):
        assert c[k] == pytest.approx(np.mean([d[k] for d in docs]), abs=1e-15), k
    assert c["rmse_sd"] == pytest.approx(np.std([d["rmse"] for d in docs], ddof=1), abs=1e-15)


def test_aggregate_best_and_ties(agg):
    best = agg[0]["best"]
    assert set(best) == {"nl0p5", "nl2"} and all(set(b) == {"n100", "n400"} for b in best.values())
    expect = {("nl0p5", "n100"): ("ridge", False), ("nl0p5", "n400"): ("lgb", True),
              ("nl2", "n100"): ("lgb", False), ("nl2", "n400"): ("lgb", False)}
    for (nl, n), (name, tie) in expect.items():
        b = best[nl][n]
        assert b["estimator"] == name and isinstance(b["estimator"], str), (nl, n)
        assert b["r2"] == agg[0]["cells"][name][nl][n]["r2"]
        assert b["tie"] is tie, (nl, n)
        other = "lgb" if name == "ridge" else "ridge"
        assert b["runner_up"] == other
        assert b["margin"] == pytest.approx(b["r2"] - agg[0]["cells"][other][nl][n]["r2"]) and b["margin"] > 0


def test_aggregate_tie_depends_on_confidence():
    """A narrower interval (lower confidence) separates what a wider one calls a tie."""
    wide = aggregate("bench", EXP, all_docs(), 0.99)[0]["best"]["nl0p5"]["n400"]
    narrow = aggregate("bench", EXP, all_docs(), 0.2)[0]["best"]["nl0p5"]["n400"]
    assert wide["tie"] is True and narrow["tie"] is False


def test_aggregate_rows_one_per_cell(agg):
    rows = agg[2]
    assert len(rows) == len(experiment_cells(EXP)) == 24
    keys = {(r["estimator"], r["noise_level"], r["size"], r["seed"]) for r in rows}
    assert len(keys) == 24
    for r in rows:
        tag = noise_tag(r["noise_level"])
        d = cell_doc(r["estimator"], tag, r["size"], r["seed"])["metrics"]
        assert r["r2"] == d["overall"]["r2"] and r["class"] == d["class"]
        assert [r["r2_ci_lo"], r["r2_ci_hi"]] == d["overall"]["r2_ci"]
        for k in ("rmse", "mae", "bias", "slope"):
            assert r[k] == d["overall"][k]
    assert len({tuple(sorted(r)) for r in rows}) == 1                   # one set of columns


def test_aggregate_details_per_seed_in_order(agg):
    details = agg[1]
    f = details["fitted"]["lgb"]["nl2"]["n400"]
    assert f == [cell_doc("lgb", "2", 400, s)["details"]["fitted"] for s in range(3)]
    b = details["snr_bins"]["ridge"]["nl0p5"]["n100"]
    assert [x[0]["seed_"] for x in b] == [0, 1, 2]


def test_aggregate_one_seed():
    exp = dict(EXP, seeds=1)
    c = aggregate("one", exp, all_docs(exp), 0.95)[0]["cells"]["ridge"]["nl2"]["n100"]
    assert c["n_seeds"] == 1 and c["r2"] == 0.30 and c["r2_ci_seeds"] == [0.30, 0.30] and c["rmse_sd"] == 0.0


def test_aggregate_missing_cell_named():
    docs = all_docs()
    del docs[("lgb", "2", 100, 1)]
    with pytest.raises(InputError, match=r"experiments\.bench: .*'lgb', '2', 100, 1"):
        aggregate("bench", EXP, docs, 0.95)


def test_aggregate_refuses_a_file_of_another_kind():
    docs = all_docs()
    docs[("ridge", "0p5", 400, 0)] = dict(docs[("ridge", "0p5", 400, 0)], kind="experiment")
    with pytest.raises(InputError, match=r"experiments\.bench: .*ridge.*0p5.*400"):
        aggregate("bench", EXP, docs, 0.95)


# -- comparisons: paired on the test spectra ----------------------------------------------------
COMPARED = dict(EXP, compare={"lgb": "ridge"})


def compare(exp=COMPARED, predictions=None, docs=None, **kw):
    docs = docs or all_docs(exp)
    predictions = cell_predictions(docs) if predictions is None else predictions
    return aggregate("bench", exp, docs, 0.95, default_noise_level=2.0, predictions=predictions, n_boot=300, **kw)[0]


def test_compared_cells_are_both_sides_at_each_level_largest_size_every_seed():
    cells = compared_cells(COMPARED, 2.0)
    assert cells == [c for c in experiment_cells(COMPARED) if c[2] == 400 and c[1] == "2"]   # default = highest
    assert len(compared_cells(COMPARED, 0.5)) == 2 * 2 * 3                                  # 0.5 and 2: two levels
    assert compared_cells(EXP, 2.0) == [] and compared_cells(dict(EXP, compare={"lgb": None}), 2.0) == []


def test_compare_at_all_compares_at_every_noise_level_of_the_experiment():
    """compare_at: all (Track E's linearity) compares the pairs at every noise level, keys at_nl<tag> in
    increasing order, each the paired difference of that level's cells; the default is two levels at most."""
    exp = dict(COMPARED, noise_levels=[2.0, 0.5], compare_at="all")
    assert comparison_levels(exp, 2.0) == {"at_nl0p5": 0.5, "at_nl2": 2.0}
    assert comparison_levels(dict(exp, compare_at="default_and_highest"), 2.0) == {"at_default": 2.0,
                                                                                  "at_highest_noise": 2.0}
    assert {c[1] for c in compared_cells(exp, 2.0)} == {"0p5", "2"}
    c = compare(exp)["comparisons"]["lgb"]
    assert [k for k in c if k.startswith("at_")] == ["at_nl0p5", "at_nl2"]
    for key, tag in (("at_nl0p5", "0p5"), ("at_nl2", "2")):
        mean = {e: np.mean(R2[(e, tag, 400)]) for e in ("lgb", "ridge")}
        assert c[key]["noise_level"] == float(tag.replace("p", "."))
        assert c[key]["r2_diff"] == pytest.approx(mean["lgb"] - mean["ridge"], abs=1e-12)
        lo, hi = c[key]["r2_diff_ci"]
        assert lo < c[key]["r2_diff"] < hi and c[key]["verdict"] in ("gain", "loss", "no difference")
    assert c["at_nl2"] == {**compare()["comparisons"]["lgb"]["at_default"]}   # the same numbers where both exist


def test_the_paired_interval_has_width_with_one_seed():
    """Track A runs one seed: the interval over seeds had zero width, the paired bootstrap over the test
    spectra has not (and the seed interval is not reported)."""
    exp = dict(COMPARED, seeds=1)
    c = compare(exp)["comparisons"]["lgb"]
    at = c["at_default"]
    lo, hi = at["r2_diff_ci"]
    assert lo < at["r2_diff"] < hi and hi - lo > 0.01
    assert at["r2_diff_ci_seeds"] is None
    assert c["interval"] == "paired bootstrap over 50 test spectra, errors averaged over 1 seed"


def test_the_point_estimate_is_the_difference_of_the_mean_r2():
    m = compare()
    for key, tag in (("at_default", "nl2"), ("at_highest_noise", "nl2")):
        at = m["comparisons"]["lgb"][key]
        mean = {e: np.mean(R2[(e, "2", 400)]) for e in ("lgb", "ridge")}
        assert at["r2"] == m["cells"]["lgb"][tag]["n400"]["r2"] == pytest.approx(mean["lgb"])
        assert at["r2_reference"] == m["cells"]["ridge"][tag]["n400"]["r2"]
        assert at["r2_diff"] == pytest.approx(mean["lgb"] - mean["ridge"], abs=1e-12)
        assert at["r2_diff_ci_seeds"] == pytest.approx(
            t_interval(np.subtract(R2[("lgb", "2", 400)], R2[("ridge", "2", 400)]), 0.95))
    assert m["comparisons"]["lgb"]["interval"] == "paired bootstrap over 50 test spectra, errors averaged over 3 seeds"


def test_the_interval_bootstraps_the_errors_averaged_over_seeds():
    """Known answer: each spectrum's squared error averaged over the seeds, one set of resampling
    weights (config seed) for both models, the percentile interval of the difference of their R^2."""
    docs = all_docs(COMPARED)
    preds = cell_predictions(docs)
    at = compare(predictions=preds, docs=docs, seed=7)["comparisons"]["lgb"]["at_default"]
    err = {e: np.mean([(preds[(e, "2", 400, s)][1]["log_g_pred"] - preds[(e, "2", 400, s)][1]["log_g"]) ** 2
                       for s in range(3)], axis=0) for e in ("lgb", "ridge")}
    w = boot_weights(50, 300, 7)
    reps = -(w @ (err["lgb"] - err["ridge"])) / w.sum(1) / VAR
    assert at["r2_diff_ci"] == pytest.approx(list(np.quantile(reps, [0.025, 0.975])), rel=1e-9)
    other = compare(predictions=preds, docs=docs, seed=8)["comparisons"]["lgb"]["at_default"]
    assert other["r2_diff_ci"] != at["r2_diff_ci"] and other["r2_diff"] == at["r2_diff"]


def _docs_and_predictions(scale_of, n=80, seeds=1):
    """Cells of a one-level, one-size experiment {"ref", "var"} whose predictions are y + scale * noise
    (noise shared by every cell), with documents that agree with them."""
    import pandas as pd

    rng = np.random.default_rng(3)
    y, noise = rng.uniform(1, 5, n), rng.standard_normal(n)
    exp = {"track": "a", "estimators": ["ref", "var"], "noise_levels": [1.0], "sizes": [10], "seeds": seeds,
           "compare": {"var": "ref"}}
    docs, preds = {}, {}
    for c in experiment_cells(exp):
        pred = y + scale_of[c[0]] * noise + 0.01 * c[3]
        r2 = 1 - np.mean((pred - y) ** 2) / VAR
        doc = cell_doc("ridge", "0p5", 100, 0)
        doc["metrics"] = dict(doc["metrics"], estimator=c[0], n_test=n, overall=dict(doc["metrics"]["overall"], r2=r2))
        docs[c] = doc
        preds[c] = (f"results/cells/{c[0]}/nl1_n10_s{c[3]}.csv", pd.DataFrame({"log_g": y, "log_g_pred": pred}))
    return exp, docs, preds


@pytest.mark.parametrize("scale, word", [(0.5, "gain"), (1.5, "loss")])
def test_better_on_every_spectrum_is_a_gain_and_worse_a_loss(scale, word):
    exp, docs, preds = _docs_and_predictions({"ref": 1.0, "var": scale})
    at = aggregate("x", exp, docs, 0.95, default_noise_level=1.0, predictions=preds, n_boot=300)[0][
        "comparisons"]["var"]["at_default"]
    lo, hi = at["r2_diff_ci"]
    assert at["verdict"] == word
    assert (lo > 0) if word == "gain" else (hi < 0)


def test_an_interval_containing_zero_is_no_difference():
    exp, docs, preds = _docs_and_predictions({"ref": 1.0, "var": 1.0})
    for c, (f, frame) in preds.items():   # the variant: the reference's errors on a shuffled set of spectra
        if c[0] == "var":
            err = (frame["log_g_pred"] - frame["log_g"]).to_numpy()
            frame["log_g_pred"] = frame["log_g"] + np.random.default_rng(1).permutation(err)
    at = aggregate("x", exp, docs, 0.95, default_noise_level=1.0, predictions=preds, n_boot=300)[0][
        "comparisons"]["var"]["at_default"]
    lo, hi = at["r2_diff_ci"]
    assert lo < 0 < hi and at["verdict"] == "no difference"


def test_other_test_rows_are_refused_naming_both_files():
    exp, docs, preds = _docs_and_predictions({"ref": 1.0, "var": 0.5})
    f, frame = preds[("var", "1", 10, 0)]
    preds[("var", "1", 10, 0)] = (f, frame.iloc[::-1].reset_index(drop=True))    # same spectra, another order
    with pytest.raises(InputError) as e:
        aggregate("x", exp, docs, 0.95, default_noise_level=1.0, predictions=preds, n_boot=50)
    msg = str(e.value)
    assert "results/cells/var/nl1_n10_s0.csv" in msg and "results/cells/ref/nl1_n10_s0.csv" in msg
    assert "other test rows" in msg and "\n" not in msg


def test_missing_or_foreign_predictions_are_refused():
    exp, docs, preds = _docs_and_predictions({"ref": 1.0, "var": 0.5})
    with pytest.raises(InputError, match=r"experiments\.x: the predictions table of cell \('ref', '1', 10, 0\)"):
        aggregate("x", exp, docs, 0.95, default_noise_level=1.0, predictions={}, n_boot=50)
    preds[("var", "1", 10, 0)] = (preds[("var", "1", 10, 0)][0], preds[("ref", "1", 10, 0)][1])   # the wrong cell's
    with pytest.raises(InputError, match=r"nl1_n10_s0.csv gives R\^2 = .*: not that cell's predictions"):
        aggregate("x", exp, docs, 0.95, default_noise_level=1.0, predictions=preds, n_boot=50)


def test_comparison_groups_follow_the_references():
    comps = {"b1": {"reference": "a"}, "c1": {"reference": "c"}, "b2": {"reference": "a"}}
    groups, rest = comparison_groups(["a", "b1", "c", "x", "b2", "c1"], comps)
    assert groups == [("a", ["b1", "b2"]), ("c", ["c1"])] and rest == ["x"]


def test_the_aggregate_command_reads_the_predictions_tables(tmp_path, capsys):
    """python -m pfslogg aggregate-experiment: cells' results, then the compared cells' predictions
    tables (the rule's input order, pfslogg.paths.aggregate_inputs); a swapped table is one error line."""
    import contextlib

    from pfslogg.cli import main
    from pfslogg.provenance import write_results

    exp, docs, preds = _docs_and_predictions({"ref": 1.0, "var": 0.5}, seeds=2)
    with contextlib.chdir(tmp_path):
        jsons = []
        for c in experiment_cells(exp):
            jsons.append(f"results/cells/{c[0]}/nl1_n10_s{c[3]}.json")
            write_results(jsons[-1], docs[c]["metrics"], "run_cell", [], kind="estimator")
            f, frame = preds[c]
            frame.to_csv(f, index=False, float_format="%.6g")
        tables = [preds[c][0] for c in compared_cells(exp, 1.0)]
        p = {"experiment": "x", "spec": exp, "confidence": 0.95, "bootstrap": 100, "seed": 5,
             "default_noise_level": 1.0, "bayes_bound": False}
        args = ["aggregate-experiment", "--params", json.dumps(p), "--out", "agg.json", "--table", "agg.csv",
                "--inputs"]
        assert main(args + jsons + tables) == 0
        at = json.loads(open("agg.json").read())["metrics"]["comparisons"]["var"]["at_default"]
        assert at["verdict"] == "gain" and at["r2_diff_ci"][0] > 0
        assert main(args + jsons + tables[:1]) == 2
        assert "experiments.x: 4 cells and 4 predictions tables but 5 inputs" in capsys.readouterr().err
        swapped = tables[:1] + tables[3:] + tables[1:3]            # (ref s0, var s1, ref s1, var s0) -> wrong cells
        assert main(args + jsons + swapped) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: experiments.x: ") and "\n" not in err and ".csv" in err


# -- bias and slope ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def truth():
    return np.random.default_rng(0).uniform(1.0, 5.0, 500)


def test_slope_one_for_perfect_predictions(truth):
    assert slope(truth, truth) == pytest.approx(1.0, abs=1e-12)
    assert bias(truth, truth) == 0.0


def test_slope_half_when_shrunk_halfway_to_the_mean(truth):
    shrunk = truth.mean() + 0.5 * (truth - truth.mean())
    assert slope(truth, shrunk) == pytest.approx(0.5, abs=1e-12)
    assert bias(truth, shrunk) == pytest.approx(0.0, abs=1e-12)
    # toward the prior mean (3) instead of the sample mean: same slope, a bias
    prior = 3.0 + 0.5 * (truth - 3.0)
    assert slope(truth, prior) == pytest.approx(0.5, abs=1e-12)
    assert bias(truth, prior) == pytest.approx(0.5 * (3.0 - truth.mean()), abs=1e-12)


def test_bias_of_a_constant_offset(truth):
    assert bias(truth, truth + 0.3) == pytest.approx(0.3, abs=1e-12)
    assert bias(truth, truth - 0.1) == pytest.approx(-0.1, abs=1e-12)
    assert slope(truth, truth + 0.3) == pytest.approx(1.0, abs=1e-12)


def test_slope_of_noise_is_zero_on_average_and_nan_without_spread(truth):
    noise = np.random.default_rng(1).normal(3.0, 1.0, truth.shape)
    assert abs(slope(truth, noise)) < 0.15
    assert math.isnan(slope(np.full(10, 2.0), np.arange(10.0)))


def test_summarize_reports_bias_and_slope(truth):
    s = summarize(truth, truth + 0.2, VAR, n_resamples=50)
    assert s["bias"] == pytest.approx(0.2) and s["slope"] == pytest.approx(1.0)
    assert s["r2"] == pytest.approx(1 - 0.04 / VAR) and s["n"] == len(truth)


def _net_fit(best, run, val_r2=None):
    return {"best_epoch": best, "epochs_run": run, "history": {"val_r2": val_r2 or [0.1 * i for i in range(run)]}}


def test_convergence_counts_fits_whose_best_epoch_is_the_last():
    """A fit whose best validation epoch is the last it ran was ended by the epoch cap while still
    improving; one that stopped after worse epochs was not; fits without a log (Ridge) do not count."""
    fitted = {"vit": {"nl1": {"n300": [_net_fit(6, 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.56]), _net_fit(3, 6)]}},
              "cnn": {"nl1": {"n300": [_net_fit(4, 4, [0.2, 0.3, 0.4, 0.44]), _net_fit(2, 5)]}},
              "ridge": {"nl1": {"n300": [{"alpha": 10.0}, {"alpha": 1.0}]}}}
    c = convergence(fitted)
    assert c["n_fits"] == 4 and c["n_still_improving"] == 2
    assert c["still_improving"] == ["vit", "cnn"]
    assert c["estimators"] == {"vit": {"n_fits": 2, "n_still_improving": 1}, "cnn": {"n_fits": 2, "n_still_improving": 1}}
    assert c["last_gain_median"] == pytest.approx(np.median([0.06, 0.04]))
    assert convergence({"ridge": fitted["ridge"]}) is None


def test_the_aggregate_reports_how_network_training_ended():
    docs = all_docs()
    for s in range(3):
        docs[("lgb", "2", 400, s)]["details"]["fitted"] = _net_fit(5 if s else 3, 5)
    metrics = aggregate("bench", EXP, docs, 0.95)[0]
    assert metrics["training"]["n_fits"] == 3 and metrics["training"]["n_still_improving"] == 2
    assert "training" not in aggregate("bench", EXP, all_docs(), 0.95)[0]     # no networks: no entry


# -- search edges: is the optimum inside the searched grid? ------------------------------------
from pfslogg.experiments import grid_edge, search_edges   # noqa: E402


@pytest.mark.parametrize("searched, chosen, edge", [
    ([0.05, 0.2, 0.5], 0.05, "lowest"), ([0.5, 0.05, 0.2], 0.5, "highest"), ([7, 31, 63], 31, "inside"),
    ([4, 8, 16, 512], 512.0, "highest"), ([3, 7], 3, "lowest"), ([0.1], 0.1, None), ([10.0, 10], 10.0, None)])
def test_grid_edge_names_the_side_of_a_choice_on_the_edge(searched, chosen, edge):
    assert grid_edge(searched, chosen) == edge


def test_grid_edge_refuses_a_choice_that_was_not_searched():
    with pytest.raises(InputError, match=r"^cell x: num_leaves: the chosen value 15 is not one of the values "
                                         r"searched \[7, 31, 63\]$"):
        grid_edge([7, 31, 63], 15, "cell x: num_leaves")


def _lgb_fit(lr, leaves, lrs=(0.05, 0.2, 0.5), grid=(7, 31, 63)):
    return {"learning_rate": lr, "num_leaves": leaves, "best_iteration": 120,
            "search": {"learning_rate": list(lrs), "num_leaves": list(grid),
                       "val_r2": [[0.5] * len(grid) for _ in lrs], "best_iteration": [[120] * len(grid) for _ in lrs]}}


def test_search_edges_of_a_made_up_search():
    """A LightGBM search whose best is the corner (lr 0.05, 7 leaves: both smallest) is flagged on both
    parameters with their sides; one inside the grid is not; scores and fixed settings are no parameters."""
    corner = search_edges([_lgb_fit(0.05, 7)])
    assert corner["edge"] == {"learning_rate": "lowest", "num_leaves": "lowest"}
    assert corner["lowest"] == {"learning_rate": 0.05, "num_leaves": 7}
    assert corner["highest"] == {"learning_rate": 0.5, "num_leaves": 63}
    assert corner["n_at_lowest"] == {"learning_rate": 1, "num_leaves": 1} and corner["n_seeds"] == 1
    inside = search_edges([_lgb_fit(0.2, 31)])
    assert inside["edge"] == {"learning_rate": "inside", "num_leaves": "inside"}
    assert inside["n_at_lowest"] == inside["n_at_highest"] == {"learning_rate": 0, "num_leaves": 0}
    # widening the grid moves the same choice inside
    widened = search_edges([_lgb_fit(0.05, 7, lrs=(0.02, 0.05, 0.2, 0.5), grid=(3, 7, 31, 63))])
    assert widened["edge"] == {"learning_rate": "inside", "num_leaves": "inside"}
    # seeds that differ: one on the top edge, one inside, one on the bottom edge
    pca = [{"n_components": k, "alpha": 10.0,
            "search": {"n_components": [4, 16, 64], "alpha": [0.1, 10.0, 1000.0], "val_r2": [[0.0] * 3] * 3}}
           for k in (64, 16, 4)]
    e = search_edges(pca)
    assert e["edge"] == {"n_components": "both", "alpha": "inside"}
    assert e["n_at_highest"]["n_components"] == 1 and e["n_at_lowest"]["n_components"] == 1 and e["n_seeds"] == 3
    # a fit without a search, or over one value, has no edges
    assert search_edges([{"alpha": 10.0}]) is None
    assert search_edges([{"alpha": 0.01, "search": {"alpha": [0.01], "val_r2": [0.3]}}]) is None


def test_the_aggregate_stores_where_each_search_landed():
    docs = all_docs()
    for (e, tag, size, s), d in docs.items():
        if e == "lgb":
            d["details"]["fitted"] = _lgb_fit(0.05 if tag == "2" else 0.2, 31)
    metrics = aggregate("bench", EXP, docs, 0.95)[0]
    assert set(metrics["searches"]) == {"lgb"}      # ridge's fit records no search here
    assert metrics["searches"]["lgb"]["nl2"]["n400"]["edge"] == {"learning_rate": "lowest", "num_leaves": "inside"}
    assert metrics["searches"]["lgb"]["nl2"]["n400"]["n_at_lowest"]["learning_rate"] == 3
    assert metrics["searches"]["lgb"]["nl0p5"]["n100"]["edge"]["learning_rate"] == "inside"
    assert "searches" not in aggregate("bench", EXP, all_docs(), 0.95)[0]     # no searches: no entry
    docs[("lgb", "2", 400, 1)]["details"]["fitted"]["num_leaves"] = 15
    with pytest.raises(InputError, match=r"experiments\.bench: cell \(lgb, 2, 400\) details\.fitted, seed 1: "
                                         r"num_leaves: the chosen value 15 is not one of"):
        aggregate("bench", EXP, docs, 0.95)


def test_variants_that_differ_only_in_the_sigma_they_saw_are_labelled_by_it():
    exp = {"track": "e", "estimators": ["ridge", "lgb"], "noise_levels": [0.5], "sizes": [100], "seeds": 1}
    docs = {c: cell_doc(*c) for c in experiment_cells(exp)}
    for (e, *_), d in docs.items():
        d["metrics"]["label"] = "Ridge"
        d["metrics"]["class"] = "ridge"
        d["provenance"] = {"params": {"hyper": {"alphas": [1.0]}, "sigma": "stored" if e == "lgb" else "estimated"}}
    labels = aggregate("ec", exp, docs, 0.95)[0]["estimators"]
    assert labels == {"ridge": {"class": "ridge", "label": "Ridge"},
                      "lgb": {"class": "ridge", "label": "Ridge, sigma stored"}}


# -- the models compared with the ceilings (pfslogg.paths.efficiency_cells, rule check_ceiling) ----------


def test_the_ceiling_check_compares_the_per_star_sigma_models_too():
    """Every model on the headline's test spectra at the full size is compared with the Bayes ceiling,
    the per-star sigma check's too (the ensemble and the posterior networks were the best scores and
    were missing); conformal variants repeat their upstream's point estimates and stay out."""
    from pfslogg.config import load_config
    from pfslogg.paths import efficiency_cells

    cfg = load_config("config/config.yaml")
    cells = efficiency_cells(cfg)
    n = cfg["datasets"]["train"]["n"]
    for e in ("mlp_ensemble", "mlp_npe", "cnn_npe", "mlp_nll", "lightgbm_intervals"):
        assert f"results/cells/{e}/nl1_n{n}_s0.json" in cells, e
    assert not [c for c in cells if "conformal" in c]
    cfg["uncertainty"]["size"] = n // 2          # trained at another size: another comparison, not this one
    assert not [c for c in efficiency_cells(cfg) if "/mlp_npe/" in c]   # (the ensemble is also in the figure)
