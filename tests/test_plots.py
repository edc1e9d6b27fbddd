"""Figures: every registered figure renders from synthetic results JSONs written per the results
spec, with byte-identical output on a second run, and bad input ends in one InputError naming the
file."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from pfslogg.errors import InputError
from pfslogg.plots import FIGURES, load_results, render
from pfslogg.experiments import noise_tag

ESTIMATORS = {"ridge": {"class": "ridge", "label": "Ridge"},
              "pca_ridge": {"class": "pca_ridge", "label": "PCA+Ridge"},
              "lightgbm": {"class": "lightgbm", "label": "LightGBM"},
              "template": {"class": "template", "label": "Template fit"}}
RIDGE_ALPHAS = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
PCA_COMPONENTS = [5, 10, 20, 50, 100]
PCA_ALPHAS = [0.1, 1.0, 10.0, 100.0]
LGB_RATES = [0.03, 0.1, 0.3]
LGB_LEAVES = [15, 31, 63]
SNR_EDGES = [2, 3, 5, 7, 10, 15, 20, 30]


def write(path, kind, metrics, details=None):
    path.write_text(json.dumps({"kind": kind, "metrics": metrics, "details": details or {},
                                "provenance": {"rule": "test"}}))
    return str(path)


def true_r2(est, nl, n):
    """A plausible R^2: better with more data, worse with more noise; trees need data, the
    template fit does not train."""
    data = {"ridge": 4, "pca_ridge": 3, "lightgbm": 9, "template": 0}[est] / math.sqrt(n)
    noise = {"ridge": 0.22, "pca_ridge": 0.18, "lightgbm": 0.25, "template": 0.2}[est] * nl
    return {"ridge": 0.95, "pca_ridge": 0.93, "lightgbm": 0.99, "template": 0.85}[est] - data - noise


def fitted_of(cls, nl, rng):
    peak = 0.9 - 0.2 * nl
    if cls == "ridge":
        best = -1 + 1.5 * nl + rng.normal(0, 0.3)
        val = [peak - 0.05 * (math.log10(a) - best) ** 2 for a in RIDGE_ALPHAS]
        return {"alpha": RIDGE_ALPHAS[int(np.argmax(val))], "search": {"alpha": RIDGE_ALPHAS, "val_r2": val}}
    if cls == "pca_ridge":
        kbest = 1.6 - 0.3 * nl
        val = [[peak - 0.08 * (math.log10(k) - kbest) ** 2 - 0.02 * (math.log10(a) - nl) ** 2 for a in PCA_ALPHAS]
               for k in PCA_COMPONENTS]
        i, j = np.unravel_index(np.argmax(val), (len(PCA_COMPONENTS), len(PCA_ALPHAS)))
        return {"n_components": PCA_COMPONENTS[i], "alpha": PCA_ALPHAS[j],
                "search": {"n_components": PCA_COMPONENTS, "alpha": PCA_ALPHAS, "val_r2": val}}
    if cls == "lightgbm":
        val = [[peak - 0.03 * abs(math.log10(lr) + 1) - 0.02 * abs(math.log2(L / 31)) * (1 + nl) for L in LGB_LEAVES]
               for lr in LGB_RATES]
        i, j = np.unravel_index(np.argmax(val), (len(LGB_RATES), len(LGB_LEAVES)))
        return {"learning_rate": LGB_RATES[i], "num_leaves": LGB_LEAVES[j], "best_iteration": 400,
                "search": {"learning_rate": LGB_RATES, "num_leaves": LGB_LEAVES, "val_r2": val,
                           "best_iteration": [[int(40 / lr) for _ in LGB_LEAVES] for lr in LGB_RATES]}}
    return {"n_templates": 5000}


def make_aggregate(path, noise_levels=(0.0, 0.5, 1.0, 2.0), sizes=(500, 1000, 2000), seeds=(0, 1),
                   estimators=ESTIMATORS, confidence=0.95, experiment="benchmark"):
    """An aggregate of kind "experiment" as the spec lays it out, with fitted searches."""
    rng = np.random.default_rng(1)
    cells, best, fitted = {}, {}, {}
    for e, info in estimators.items():
        for nl in noise_levels:
            for n in sizes:
                r2 = true_r2(e, nl, n) + rng.normal(0, 0.01, len(seeds))
                m, sd = float(r2.mean()), float(r2.std(ddof=1)) if len(seeds) > 1 else 0.0
                half = stats.t.ppf(0.5 + confidence / 2, len(seeds) - 1) * sd / math.sqrt(len(seeds)) if sd else 0.0
                rmse = math.sqrt((1 - m) * 4 / 3)
                cells.setdefault(e, {}).setdefault("nl" + noise_tag(nl), {})[f"n{n}"] = {
                    "n_seeds": len(seeds), "noise_level": nl, "size": n, "r2": m, "r2_ci_seeds": [m - half, m + half],
                    "r2_ci_boot": [m - 0.02, m + 0.02], "rmse": rmse, "mae": 0.8 * rmse, "bias": 0.01,
                    "slope": 0.9, "rmse_sd": 0.01}
                fitted.setdefault(e, {}).setdefault("nl" + noise_tag(nl), {})[f"n{n}"] = [
                    fitted_of(info["class"], nl, rng) for _ in seeds]
    for nl in noise_levels:
        key = "nl" + noise_tag(nl)
        for n in sizes:
            e = max(estimators, key=lambda e: cells[e][key][f"n{n}"]["r2"])
            best.setdefault(key, {})[f"n{n}"] = {"estimator": e, "r2": cells[e][key][f"n{n}"]["r2"]}
    metrics = {"experiment": experiment, "track": "f", "confidence": confidence, "var_prior": 4 / 3, "n_test": 2000,
               "noise_levels": list(noise_levels), "sizes": list(sizes), "seeds": list(seeds),
               "estimators": estimators, "cells": cells, "best": best}
    return write(path, "experiment", metrics, {"fitted": fitted, "snr_bins": {}})


def snr_bins(r2_at, confidence):
    bins = []
    for lo, hi in zip(SNR_EDGES[:-1], SNR_EDGES[1:]):
        s = math.sqrt(lo * hi)
        r2 = r2_at(s)
        w = 0.05 * (1.5 - confidence)
        bins.append({"lo": lo, "hi": hi, "snr_median": s, "n": 200, "r2": r2, "r2_ci": [r2 - w, r2 + w],
                     "mae": 0.3, "rmse": 0.4, "bias": 0.0, "slope": 0.9})
    return bins


def make_cell(path, est, confidence=0.95):
    info = ESTIMATORS[est]
    scale = {"ridge": 4.0, "lightgbm": 6.0, "template": 8.0, "pca_ridge": 5.0}[est]

    def r2_at(s):
        return 1 - 1.1 / (1 + (s / scale) ** 2)

    metrics = {"estimator": est, "class": info["class"], "label": info["label"], "noise_level": 1.0, "size": 2000,
               "seed": 0, "n_test": 2000, "var_prior": 4 / 3, "confidence": confidence,
               "overall": {"n": 2000, "r2": r2_at(8.0), "r2_ci": [r2_at(8.0) - 0.02, r2_at(8.0) + 0.02], "mae": 0.3,
                           "rmse": 0.4, "bias": 0.0, "slope": 0.9},
               "snr_bins": snr_bins(r2_at, confidence)}
    fitted = fitted_of(info["class"], 1.0, np.random.default_rng(0))
    return write(path, "estimator", metrics, {"fitted": fitted, "timing": {"fit_s": 1.0}})


def make_fisher(path):
    bins = []
    for lo, hi in zip(SNR_EDGES[:-1], SNR_EDGES[1:]):
        s = math.sqrt(lo * hi)
        med = 1 - 1 / (1 + (s / 2.5) ** 2)
        bins.append({"lo": lo, "hi": hi, "snr_median": s, "n": 200, "r2max_median": med, "r2max_p10": med - 0.15,
                     "r2max_p90": min(1.0, med + 0.05), "r2max_mean_crlb": med - 0.05})
    band = {"n": 2000, "r2max_median": 0.9, "r2max_p10": 0.7, "r2max_p90": 0.98, "r2max_mean_crlb": 0.85}
    return write(path, "fisher", {"n": 2000, "var_prior": 4 / 3, "nuisance": ["T_eff", "M_H"], "overall": band,
                                  "snr_bins": bins})


def make_calibration(path):
    snr = [2, 3, 5, 7, 10, 20, 30]
    orig = [0.3, 0.5, 0.72, 0.82, 0.9, 0.96, 0.98]
    pts = [{"snr": s, "r2max_median": o - 0.03, "r2max_p10": o - 0.15, "r2max_p90": min(1, o + 0.02), "original": o}
           for s, o in zip(snr, orig)]
    return write(path, "calibration", {"points": pts, "n_spectra": 500})


SNR_PARAMS = {"estimators": ["ridge", "lightgbm", "template"], "snr_bins": SNR_EDGES, "confidence": 0.95}


def inputs_for(name, folder, confidence=0.95):
    """(inputs, params) of figure ``name`` from synthetic results in ``folder``."""
    if name == "r2_vs_snr":
        cells = [make_cell(folder / f"{e}.json", e, confidence) for e in ("template", "ridge", "lightgbm")]
        return cells + [make_fisher(folder / "fisher.json")], dict(SNR_PARAMS, confidence=confidence)
    if name == "ceiling_calibration":
        return [make_calibration(folder / "calibration.json")], {}
    return [make_aggregate(folder / "benchmark.json", confidence=confidence)], {}


# Track C's ceiling figures are drawn from their own results in test_plots_ceilings.py.
CEILING_FIGURES = {"crlb_cell_position", "crlb_step_size", "ceilings_vs_snr", "crlb_distribution", "efficiency",
                   "uncertainty_calibration", "coverage_check"}   # the last two: test_uncertainty.py
# Track A's scaling, training and ablation figures: test_track_a_plots.py.
TRACK_A_FIGURES = {"scaling_law", "training_curves", "ablations", "attention_maps"}   # tests: test_track_a_plots, test_attention_maps
TRACK_B_FIGURES = {"moe_routing", "moe_rho", "moe_bins", "moe_coverage", "moe_gate"}      # tests: test_moe
TRACK_E_FIGURES = {"linearity", "error_channel", "probing"}                                         # tests: test_track_e
TRACK_D_FIGURES = {"denoising_strength", "denoising_snr", "denoising_classes", "denoising_examples",
                   "downstream", "posterior_samples"}          # tests: test_denoising, test_posterior_samples
DRAWN_HERE = sorted(set(FIGURES) - CEILING_FIGURES - TRACK_A_FIGURES - TRACK_B_FIGURES - TRACK_E_FIGURES
                    - TRACK_D_FIGURES)


def test_registry_holds_every_figure():
    assert set(FIGURES) == {"r2_vs_snr", "ceiling_calibration", "r2_vs_size", "r2_vs_noise", "decision",
                            "ridge_alpha", "lightgbm_sensitivity", "pca_components"} | CEILING_FIGURES \
        | TRACK_A_FIGURES | TRACK_B_FIGURES | TRACK_E_FIGURES | TRACK_D_FIGURES


@pytest.mark.parametrize("name", DRAWN_HERE)
def test_figure_renders_reproducibly(name, tmp_path):
    inputs, params = inputs_for(name, tmp_path)
    first, second = tmp_path / "a" / f"{name}.pdf", tmp_path / "b" / f"{name}.pdf"
    FIGURES[name](inputs, first, params)
    FIGURES[name](inputs, second, params)
    data = first.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000
    assert data == second.read_bytes()
    assert sorted(p.name for p in first.parent.iterdir()) == [f"{name}.pdf"]  # no temporary left


@pytest.mark.parametrize("name", DRAWN_HERE)
def test_wrong_kind_is_one_line_naming_the_file(name, tmp_path):
    wrong = make_cell(tmp_path / "cell.json", "ridge") if name not in ("r2_vs_snr",) \
        else make_aggregate(tmp_path / "agg.json")
    with pytest.raises(InputError) as e:
        FIGURES[name]([wrong], tmp_path / "out.pdf", dict(SNR_PARAMS) if name == "r2_vs_snr" else {})
    msg = str(e.value)
    assert wrong in msg and "kind" in msg and "\n" not in msg
    assert not (tmp_path / "out.pdf").exists()


def test_load_results_unreadable_and_wrong_kind(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(InputError, match=str(path)):
            load_results(path)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a results JSON"):
        load_results(tmp_path / "list.json")
    fisher = make_fisher(tmp_path / "fisher.json")
    doc = load_results(fisher, "fisher")
    assert doc["kind"] == "fisher" and doc["metrics"]["n"] == 2000 and doc["details"] == {}
    with pytest.raises(InputError, match=r"fisher.json: results of kind 'fisher', expected 'experiment'"):
        load_results(fisher, "experiment")


def test_r2_vs_snr_says_the_confidence_level(tmp_path):
    inputs, params = inputs_for("r2_vs_snr", tmp_path, confidence=0.9)
    fig = render("r2_vs_snr", inputs, params)
    ax = fig.axes[0]
    assert "90 % bootstrap bands" in ax.get_title()
    assert ax.get_legend() is None   # below the axes, where it hides no curve
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0].startswith("Cramér–Rao bound (unbiased)") and labels[2].startswith("Ridge (all: ")
    assert [lab.split(" (")[0] for lab in labels[2:]] == ["Ridge", "LightGBM", "Template fit"]  # params order
    # params asking for another level than the cells' intervals were computed at
    with pytest.raises(InputError, match=r"\.json: intervals computed at confidence 0.9, the figure asks for 0.95"):
        render("r2_vs_snr", inputs, dict(params, confidence=0.95))


def test_r2_vs_snr_ceiling_only_and_unknown_kind(tmp_path):
    fig = render("r2_vs_snr", [make_fisher(tmp_path / "fisher.json")], SNR_PARAMS)
    assert "N = 2000" in fig.axes[0].get_title()
    cal = make_calibration(tmp_path / "cal.json")
    with pytest.raises(InputError, match="cal.json: results of kind 'calibration', expected 'estimator' or 'bayes' or "
                                         "'fisher'"):
        render("r2_vs_snr", [cal], SNR_PARAMS)


def test_noise_zero_on_a_symlog_axis(tmp_path):
    agg = make_aggregate(tmp_path / "agg.json")
    ax = render("r2_vs_noise", [agg], {}).axes[0]
    assert ax.get_xscale() == "symlog" and "linear below 0.5" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.5", "1", "2"]
    ax = render("r2_vs_noise", [make_aggregate(tmp_path / "pos.json", noise_levels=(0.5, 1.0))], {}).axes[0]
    assert ax.get_xscale() == "log"


def test_decision_names_the_best_and_marks_ties(tmp_path):
    one_seed = make_aggregate(tmp_path / "one.json", seeds=(0,))
    texts = [t.get_text() for t in render("decision", [one_seed], {}).axes[0].texts]
    assert len(texts) == 12 and not any("≈" in t for t in texts)
    doc = json.loads((tmp_path / "one.json").read_text())
    for level in ("nl0", "nl2"):
        e = doc["metrics"]["best"][level]["n2000"]["estimator"]
        assert any(t.startswith(ESTIMATORS[e]["label"] + "\n") for t in texts)
    # widen every interval: each cell becomes a tie with its runner-up
    for e in doc["metrics"]["cells"].values():
        for by_size in e.values():
            for c in by_size.values():
                c["r2_ci_seeds"] = [c["r2"] - 0.5, c["r2"] + 0.5]
    (tmp_path / "wide.json").write_text(json.dumps(doc))
    texts = [t.get_text() for t in render("decision", [str(tmp_path / "wide.json")], {}).axes[0].texts]
    assert all("≈" in t for t in texts)


def test_lightgbm_without_a_search_names_the_file(tmp_path):
    path = make_aggregate(tmp_path / "agg.json")
    doc = json.loads((tmp_path / "agg.json").read_text())
    for by_size in doc["details"]["fitted"]["lightgbm"].values():
        for fits in by_size.values():
            for f in fits:
                f["search"] = {"learning_rate": [0.1], "num_leaves": [31], "val_r2": [[0.8]],
                               "best_iteration": [[100]]}
    (tmp_path / "agg.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=f"^no LightGBM learning-rate x leaves search in {path}$"):
        render("lightgbm_sensitivity", [path], {})


def test_lightgbm_panels_lowest_middle_highest(tmp_path):
    path = make_aggregate(tmp_path / "agg.json", noise_levels=(0.0, 0.1, 0.2, 0.5, 1.0, 2.0))
    fig = render("lightgbm_sensitivity", [path], {})
    assert [ax.get_title() for ax in fig.axes] == [f"noise level $k$ = {v}" for v in ("0", "0.5", "2")]


def test_malformed_aggregate_names_the_file(tmp_path):
    path = make_aggregate(tmp_path / "agg.json")
    doc = json.loads((tmp_path / "agg.json").read_text())
    del doc["metrics"]["cells"]
    (tmp_path / "agg.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=f"{path}: malformed results for figure 'r2_vs_size'"):
        FIGURES["r2_vs_size"]([path], tmp_path / "out.pdf", {})
    with pytest.raises(InputError, match="the figure reads one aggregate"):
        FIGURES["decision"]([path, path], tmp_path / "out.pdf", {})


def test_class_missing_from_the_aggregate(tmp_path):
    only = {"template": ESTIMATORS["template"]}
    path = make_aggregate(tmp_path / "agg.json", estimators=only)
    for name, cls in (("ridge_alpha", "ridge"), ("pca_components", "pca_ridge")):
        with pytest.raises(InputError, match=f"{path}: no estimator of class '{cls}'"):
            render(name, [path], {})


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_other_formats_are_reproducible(fmt, tmp_path):
    inputs, params = inputs_for("decision", tmp_path)
    FIGURES["decision"](inputs, tmp_path / f"a.{fmt}", params)
    FIGURES["decision"](inputs, tmp_path / f"b.{fmt}", params)
    assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes()


def test_nulls_where_numbers_were_not_finite(tmp_path):
    """NaN is written as null: such a cell or search value is left out, not an error."""
    path = make_aggregate(tmp_path / "agg.json")
    doc = json.loads((tmp_path / "agg.json").read_text())
    doc["metrics"]["cells"]["lightgbm"]["nl2"]["n500"].update(r2=None, r2_ci_seeds=[None, None])
    doc["metrics"]["cells"]["ridge"]["nl0"]["n500"]["r2_ci_seeds"] = [None, None]
    for f in doc["details"]["fitted"]["pca_ridge"]["nl1"]["n2000"]:
        f["search"]["val_r2"][0][0] = None
    doc["details"]["fitted"]["lightgbm"]["nl0"]["n2000"][0]["search"]["val_r2"][1][1] = None
    (tmp_path / "agg.json").write_text(json.dumps(doc))
    for name in ("r2_vs_size", "r2_vs_noise", "decision", "ridge_alpha", "lightgbm_sensitivity", "pca_components"):
        FIGURES[name]([path], tmp_path / f"{name}.pdf", {"figure": name, "confidence": 0.95})
        assert (tmp_path / f"{name}.pdf").stat().st_size > 5000


def _few(path, n, bins=False):
    """Rewrite a results file as scored on ``n`` test spectra (SNR bins kept only with ``bins``)."""
    with open(path) as fh:
        doc = json.load(fh)
    m = doc["metrics"]
    m["overall"]["n"] = n
    for key in ("n_test", "n"):
        if key in m:
            m[key] = n
    if not bins:
        m["snr_bins"] = []
    with open(path, "w") as fh:
        json.dump(doc, fh)
    return str(path)


def _bayes(path, n):
    bins = snr_bins(lambda s: 1 - 0.5 / (1 + (s / 2.0) ** 2), 0.95) if n >= 10 else []
    return write(path, "bayes", {"n": n, "var_prior": 4 / 3, "confidence": 0.95, "snr_bins": bins,
                                 "overall": {"n": n, "r2": 0.98, "r2_ci": [0.97, 0.99], "mae": 0.1, "rmse": 0.1,
                                             "bias": 0.0, "slope": 1.0}})


def test_r2_vs_snr_with_one_test_spectrum_says_too_few_spectra(tmp_path, caplog):
    """datasets.test.n: 1 -- no SNR bin, an 'overall R^2' of one spectrum: the legend names each
    entry with 'too few spectra' and no R^2, the axes say so, and a warning is logged."""
    from pfslogg.plots import snr

    cells = [_few(make_cell(tmp_path / f"{e}.json", e), 1) for e in ("ridge", "lightgbm", "template")]
    inputs = cells + [_bayes(tmp_path / "bayes.json", 1), _few(make_fisher(tmp_path / "fisher.json"), 1)]
    with caplog.at_level("WARNING", logger="pfslogg.plots.snr"):
        fig = render("r2_vs_snr", inputs, SNR_PARAMS)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert not any("all:" in lab for lab in labels), labels
    assert "Ridge: too few spectra (N = 1)" in labels and "LightGBM: too few spectra (N = 1)" in labels
    assert "Bayes ceiling (posterior mean): too few spectra (N = 1)" in labels
    assert any("too few spectra: N = 1" in t.get_text() for t in fig.axes[0].texts)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "too few spectra" in warnings[0] and "Ridge (N = 1)" in warnings[0], warnings
    assert snr.MIN_SPECTRA == 10
    FIGURES["r2_vs_snr"](inputs, tmp_path / "few.pdf", SNR_PARAMS)   # and it is written
    assert (tmp_path / "few.pdf").read_bytes().startswith(b"%PDF")


def test_r2_vs_snr_threshold_is_the_snr_bins_floor(tmp_path, caplog):
    """An entry over MIN_SPECTRA spectra keeps its R^2; one spectrum fewer says 'too few spectra' --
    the floor below which evaluation.metrics_by_snr leaves an SNR bin out."""
    import inspect

    from pfslogg import evaluation
    from pfslogg.plots import snr

    assert snr.MIN_SPECTRA == inspect.signature(evaluation.metrics_by_snr).parameters["min_count"].default
    enough = _few(make_cell(tmp_path / "ridge.json", "ridge"), snr.MIN_SPECTRA, bins=True)
    fewer = _few(make_cell(tmp_path / "lightgbm.json", "lightgbm"), snr.MIN_SPECTRA - 1)
    with caplog.at_level("WARNING", logger="pfslogg.plots.snr"):
        fig = render("r2_vs_snr", [enough, fewer, _bayes(tmp_path / "bayes.json", 50)], SNR_PARAMS)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(lab.startswith("Ridge (all: ") for lab in labels), labels
    assert any(lab.startswith("Bayes ceiling (posterior mean) (all: 0.98") for lab in labels), labels
    assert f"LightGBM: too few spectra (N = {snr.MIN_SPECTRA - 1})" in labels
    assert not fig.axes[0].texts   # curves are drawn: nothing to say in the axes
    assert [r.getMessage() for r in caplog.records if "too few spectra" in r.getMessage()] == [
        f"r2_vs_snr: too few spectra for an R^2 (fewer than 10): LightGBM (N = {snr.MIN_SPECTRA - 1}); "
        "drawn without one"]
    caplog.clear()
    (tmp_path / "full").mkdir()
    inputs, params = inputs_for("r2_vs_snr", tmp_path / "full")   # 2000 spectra: no warning
    with caplog.at_level("WARNING", logger="pfslogg.plots.snr"):
        render("r2_vs_snr", inputs, params)
    assert not caplog.records
