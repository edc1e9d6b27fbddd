"""Experiment grids (pfslogg.experiments): noise tags, cell seeds, cells, intervals over seeds, the
aggregate of an experiment; and the bias / slope metrics of pfslogg.evaluation."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from pfslogg.errors import InputError
from pfslogg.evaluation import bias, slope, summarize
from pfslogg.experiments import aggregate, cell_seed, experiment_cells, noise_tag, parse_noise_tag, t_interval


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
