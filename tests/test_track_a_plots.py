"""Track A's scaling law (pfslogg.scaling), figures (scaling_law, training_curves, ablations) and
tables (scaling, ablations), from aggregates that pfslogg.experiments.aggregate makes of synthetic
cells: a scaling grid whose R^2 follows known power laws, a Track F benchmark with the reference
LightGBM, and an ablation grid with comparisons against its baselines."""

import contextlib
import json
import math

import numpy as np
import pytest

from conftest import cell_predictions
from pfslogg import paper
from pfslogg.errors import InputError
from pfslogg.experiments import aggregate, experiment_cells, variant_labels
from pfslogg.plots import FIGURES, render
from pfslogg.provenance import write_results
from pfslogg.scaling import PREDICT_SIZES, power_law, power_law_fit, reference_r2, scaling_summary

LAWS = {"mlp": (0.60, 3.0, 0.40), "cnn": (0.72, 6.0, 0.42), "vit": (0.75, 12.0, 0.45)}   # (R^2_inf, a, b)
CLASSES = {"mlp": ("mlp", "MLP"), "cnn": ("cnn", "CNN"), "vit": ("vit", "ViT"), "ridge": ("ridge", "Ridge"),
           "lightgbm": ("lightgbm", "LightGBM")}
ABLATION = {"vit": 0.0, "vit_patch16": 0.012, "vit_patch32": -0.008, "vit_overlap": 0.004, "vit_sinusoidal": -0.02,
            "vit_l1": -0.035, "cnn": -0.01, "cnn_k5": -0.03, "cnn_k15": 0.006, "cnn_dilated": 0.002}
SCALING = {"track": "a", "estimators": ["mlp", "cnn", "vit"], "noise_levels": [1.0],
           "sizes": [2000, 5000, 10000, 20000, 50000], "seeds": 3}
BENCHMARK = {"track": "f", "estimators": ["ridge", "lightgbm"], "noise_levels": [0.5, 1.0],
             "sizes": [2000, 6000, 20000], "seeds": 2}
ABLATION_SIZE = 30000
ABLATIONS = {"track": "a", "estimators": list(ABLATION), "noise_levels": [1.0], "sizes": [ABLATION_SIZE], "seeds": 3,
             "compare": {e: ("cnn" if e.startswith("cnn") else "vit") for e in ABLATION if e not in ("vit", "cnn")}}
# what sets each ablation variant apart (its cells' provenance.params.hyper), over the training settings all share
HYPER = {"vit_patch16": {"patch": 16}, "vit_patch32": {"patch": 32}, "vit_overlap": {"tokenizer": "overlap", "stride": 32},
         "vit_sinusoidal": {"position": "sinusoidal_wavelength"}, "vit_l1": {"loss": "l1"}, "cnn_k5": {"kernel_size": 5},
         "cnn_k15": {"kernel_size": 15}, "cnn_dilated": {"dilation": 2}}
FILES = {"scaling": "results/track_a/scaling.json", "benchmark": "results/track_f/benchmark.json",
         "ablations": "results/track_a/ablations.json"}


def klass(e):
    return CLASSES[e.split("_")[0]]


def mean_r2(e, nl, n):
    """The mean R^2 of a cell: networks follow LAWS (the scaling grid), Track F's models a 1/sqrt(N)
    law; the ablation grid (size ABLATION_SIZE) gives each variant 0.7 + ABLATION[e]."""
    if n == ABLATION_SIZE:
        return 0.70 + ABLATION[e]
    if e in LAWS:
        return float(power_law(n, *LAWS[e])) - 0.1 * (nl - 1)
    return {"ridge": 0.50, "lightgbm": 0.62}[e] - 2.0 / math.sqrt(n) - 0.2 * (nl - 1)


def history(e, n, seed, epochs=24):
    """A plausible per-epoch log: losses fall and level off, validation R^2 rises, warm-up + cosine."""
    rng = np.random.default_rng(seed + 7 * len(e))
    ep = np.arange(1, epochs + 1)
    r2_end = mean_r2(e, 1.0, n)
    train = (1 - r2_end) * (1 + 1.5 * np.exp(-ep / 4)) * (1 - 0.004 * ep) + rng.normal(0, 0.005, epochs)
    val = (1 - r2_end) * (1 + 1.2 * np.exp(-ep / 5)) + 0.0006 * np.maximum(ep - 16, 0) ** 2 + rng.normal(0, 0.01,
                                                                                                      epochs)
    lr = 1e-3 * np.where(ep <= 2, ep / 2, 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (ep - 2) / (epochs - 2))))
    return {"epoch": ep.tolist(), "train_loss": train.tolist(), "val_loss": val.tolist(), "val_r2": (1 - val).tolist(),
            "lr": lr.tolist(), "seconds": [3.0] * epochs, "spectra_per_s": [n / 3.0] * epochs}


def cell_doc(e, tag, n, s):
    nl = float(tag.replace("p", "."))
    r2 = mean_r2(e, nl, n) + 0.004 * (s - 1) + 0.002 * math.sin(n + len(e) * s)
    cls, label = klass(e)
    overall = {"n": 2000, "r2": r2, "r2_ci": [r2 - 0.02, r2 + 0.02], "mae": 0.6 - r2 / 2, "rmse": 0.9 - r2 / 2,
               "bias": -0.01, "slope": 0.6 + r2 / 3}
    fitted = {"alpha": 10.0}
    if cls in ("mlp", "cnn", "vit"):
        h = history(e, n, s)
        best = int(np.argmax(h["val_r2"])) + 1
        fitted = {"n_params": {"mlp": 2_130_000, "cnn": 310_000, "vit": 4_900_000}[cls], "best_epoch": best,
                  "epochs_run": len(h["epoch"]), "best_val_r2": h["val_r2"][best - 1], "train_seconds": 70.0,
                  "spectra_per_s": n / 3.0, "history": h}
    return {"kind": "estimator",
            "metrics": {"estimator": e, "class": cls, "label": label, "noise_level": nl, "size": n, "seed": s,
                        "n_test": 2000, "var_prior": 4 / 3, "confidence": 0.95, "overall": overall,
                        "snr_bins": [{"lo": 2.0, "hi": 30.0, "snr_median": 6.0, **overall}]},
            "details": {"fitted": fitted},
            "provenance": {"params": {"hyper": {"epochs": 24, "lr": 1e-3, **HYPER.get(e, {})}}}}


def make_aggregate(name, exp, default_noise_level=1.0):
    """(metrics, details) as the aggregate rule makes them (metrics["power_law"] for the scaling grid)."""
    cells = {c: cell_doc(*c) for c in experiment_cells(exp)}
    metrics, details, _ = aggregate(name, exp, cells, 0.95, default_noise_level=default_noise_level,
                                    predictions=cell_predictions(cells), n_boot=200)
    return metrics, details


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A workflow root with the three aggregates (scaling with its power law, benchmark, ablations)."""
    root = tmp_path_factory.mktemp("tracka")
    bench, bench_details = make_aggregate("benchmark", BENCHMARK)
    scaling, scaling_details = make_aggregate("scaling", SCALING)
    scaling["power_law"] = scaling_summary(scaling, 1.0, targets={"lightgbm": reference_r2(bench, "lightgbm")})
    abl, abl_details = make_aggregate("ablations", ABLATIONS)
    with contextlib.chdir(root):
        for key, (m, d) in {"scaling": (scaling, scaling_details), "benchmark": (bench, bench_details),
                            "ablations": (abl, abl_details)}.items():
            write_results(FILES[key], m, "aggregate_experiment", [], kind="experiment", details=d)
    return root


def path(tree, key):
    return str(tree / FILES[key])


# -- the power law -----------------------------------------------------------------------------
@pytest.mark.parametrize("law", [(0.75, 12.0, 0.45), (0.9, 0.5, 0.2), (0.55, 800.0, 1.3), (1.0, 3.0, 0.6)])
def test_power_law_fit_recovers_a_known_law(law):
    sizes = [1000, 3000, 10000, 30000, 100000]
    fit = power_law_fit(sizes, power_law(sizes, *law), targets={"t": law[0] - 0.05})
    assert (fit["r2_inf"], fit["a"], fit["b"]) == pytest.approx(law, rel=1e-6, abs=1e-8)
    assert fit["rmse_fit"] < 1e-9 and fit["n_sizes"] == 5 and fit["size_max"] == 100000
    assert fit["at_bound"] == (["r2_inf"] if law[0] == 1.0 else [])
    n = fit["size_to_reach"]["t"]["n_train"]
    assert power_law(n, *law) >= law[0] - 0.05 - 1e-9 and power_law(n - 1, *law) < law[0] - 0.05 + 1e-9
    for N in PREDICT_SIZES:
        p = fit["predict"][str(N)]
        assert p["n_train"] == N and p["r2"] == pytest.approx(power_law(N, *law), abs=1e-8)
        assert p["extrapolated"] is (N > 100000)
    json.dumps(fit, allow_nan=False)


def test_power_law_weights_and_missing_points():
    sizes, law = [1000, 2000, 5000, 10000, 20000], (0.7, 5.0, 0.5)
    y = list(power_law(sizes, *law))
    y[2] += 0.05                                                 # an outlier with a wide interval
    ci = [[v - 0.005, v + 0.005] for v in y]
    ci[2] = [y[2] - 0.5, y[2] + 0.5]
    weighted = power_law_fit(sizes, y, ci)
    assert weighted["weighted"] and weighted["b"] == pytest.approx(0.5, abs=0.01)
    assert abs(power_law_fit(sizes, y)["b"] - 0.5) > abs(weighted["b"] - 0.5)
    exact = power_law_fit(sizes + [40000], list(power_law(sizes, *law)) + [None])   # a null R^2 is left out
    assert exact["n_sizes"] == 5 and exact["b"] == pytest.approx(0.5, rel=1e-6)


def test_power_law_predictions_are_monotone_and_bounded():
    rng = np.random.default_rng(3)
    sizes = np.array([500, 1000, 2000, 5000, 10000, 20000])
    for _ in range(10):
        y = power_law(sizes, 0.8, 4.0, 0.4) + rng.normal(0, 0.02, len(sizes))
        fit = power_law_fit(sizes, y, targets={"high": 0.99})
        preds = [fit["predict"][str(n)]["r2"] for n in PREDICT_SIZES]
        assert np.all(np.diff(preds) >= 0) and max(preds) <= fit["r2_inf"] <= 1.0
        assert 0 < fit["b"] < 2 and fit["a"] >= 0
        reach = fit["size_to_reach"]["high"]
        if 0.99 >= fit["r2_inf"]:
            assert reach["n_train"] is None and "asymptote" in reach["why"]


def test_the_asymptote_never_rises_above_the_ceiling():
    """r2_max (the Bayes ceiling) bounds R^2_inf: a law heading for 0.95 fitted under a ceiling of
    0.85 ends at the bound, and every prediction stays below it; a bad bound is one clear error."""
    sizes = [1000, 2000, 6000, 20000]
    y = power_law(sizes, 0.95, 6.0, 0.4)
    free = power_law_fit(sizes, y)
    assert free["r2_inf"] == pytest.approx(0.95, abs=1e-6) and free["r2_inf_max"] == 1.0
    capped = power_law_fit(sizes, y, r2_max=0.85, targets={"t": 0.9})
    assert capped["r2_inf"] == pytest.approx(0.85) and "r2_inf" in capped["at_bound"]
    assert capped["r2_inf_max"] == 0.85
    assert all(p["r2"] <= 0.85 for p in capped["predict"].values())
    assert capped["size_to_reach"]["t"]["n_train"] is None
    for bad in (0.0, 1.5, float("nan"), True):
        with pytest.raises(InputError, match="r2_max"):
            power_law_fit(sizes, y, r2_max=bad)


@pytest.mark.parametrize("sizes, r2", [([1000, 2000, 5000], [0.3, 0.4, 0.5]),
                                       ([1000, 2000, 5000, 10000], [0.3, 0.4, None, 0.6]),
                                       ([1000, 1000, 5000, 10000], [0.3, 0.31, 0.5, 0.6])])
def test_fewer_than_four_sizes_is_an_input_error(sizes, r2):
    with pytest.raises(InputError) as e:
        power_law_fit(sizes, r2)
    msg = str(e.value)
    assert "3" in msg and "4 are needed" in msg and "\n" not in msg


def test_scaling_summary_skips_estimators_with_few_sizes():
    bench, _ = make_aggregate("benchmark", BENCHMARK)
    out = scaling_summary(bench, targets={"lightgbm": reference_r2(bench, "lightgbm")})
    assert set(out) == {"ridge", "lightgbm"}
    assert all(set(v) == {"skipped"} and "3 training sizes" in v["skipped"] for v in out.values())
    assert reference_r2(bench, "lightgbm") == bench["cells"]["lightgbm"]["nl1"]["n20000"]["r2"]
    with pytest.raises(InputError, match="no R\\^2 of 'lightgbm' at noise level 1 and size 7"):
        reference_r2(bench, "lightgbm", size=7)


def test_scaling_summary_of_the_grid(tree):
    m = json.loads((tree / FILES["scaling"]).read_text())["metrics"]
    law = m["power_law"]
    assert list(law) == ["mlp", "cnn", "vit"]
    for e, (r_inf, _, b) in LAWS.items():
        assert law[e]["noise_level"] == 1.0 and law[e]["weighted"] is True
        assert law[e]["r2_inf"] == pytest.approx(r_inf, abs=0.03) and law[e]["b"] == pytest.approx(b, abs=0.15)
        assert law[e]["predict"]["50000"]["extrapolated"] is False
        assert law[e]["predict"]["1000000"]["extrapolated"] is True
    lgb = law["vit"]["size_to_reach"]["lightgbm"]
    bench = json.loads((tree / FILES["benchmark"]).read_text())["metrics"]
    assert lgb["r2"] == bench["cells"]["lightgbm"]["nl1"]["n20000"]["r2"] and lgb["extrapolated"] is False
    assert 2000 < lgb["n_train"] < 50000
    assert law["mlp"]["size_to_reach"]["lightgbm"]["n_train"] is None        # MLP's asymptote is below


# -- figures -----------------------------------------------------------------------------------
FIGURE_INPUTS = {"scaling_law": (["scaling", "benchmark"], {"reference": ["lightgbm"]}),
                 "training_curves": (["scaling"], {}),
                 "ablations": (["ablations"], {})}


@pytest.mark.parametrize("name", sorted(FIGURE_INPUTS))
def test_figure_renders_reproducibly(tree, tmp_path, name):
    keys, params = FIGURE_INPUTS[name]
    inputs = [path(tree, k) for k in keys]
    first, second = tmp_path / "a" / f"{name}.pdf", tmp_path / "b" / f"{name}.pdf"
    FIGURES[name](inputs, first, params)
    FIGURES[name](inputs, second, params)
    data = first.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000 and data == second.read_bytes()


@pytest.mark.parametrize("name", sorted(FIGURE_INPUTS))
def test_wrong_kind_is_one_line_naming_the_file(tree, tmp_path, name):
    wrong = str(tmp_path / "cell.json")
    (tmp_path / "cell.json").write_text(json.dumps(cell_doc("vit", "1", 2000, 0)))
    with pytest.raises(InputError) as e:
        FIGURES[name]([wrong], tmp_path / "out.pdf", FIGURE_INPUTS[name][1])
    assert wrong in str(e.value) and "kind" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out.pdf").exists()


def _curves(fig):
    """The power-law curves drawn (dashed lines through more than two points: not the reference lines)."""
    return [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata()) > 2]


def test_scaling_law_draws_the_stored_fit_and_none_without_it(tree, tmp_path):
    fig = render("scaling_law", [path(tree, "scaling"), path(tree, "benchmark")], {"reference": ["lightgbm"]})
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(lab.startswith("ViT: $R^2_\\infty$ = 0.7") for lab in labels)
    assert any(lab.startswith("LightGBM, N = 20k:") for lab in labels)
    assert "fit, extrapolation" in labels
    assert not any("original" in lab or "BOSZ" in lab for lab in labels)   # another problem: not on these axes
    assert len(_curves(fig)) == 2 * 3                       # within and beyond the sizes, per network
    doc = json.loads((tree / FILES["scaling"]).read_text())
    del doc["metrics"]["power_law"]
    (tmp_path / "bare.json").write_text(json.dumps(doc))
    bare = render("scaling_law", [str(tmp_path / "bare.json")])
    bare_labels = [t.get_text() for t in bare.legends[0].get_texts()]
    assert bare_labels == ["MLP: no power law stored", "CNN: no power law stored", "ViT: no power law stored"]
    assert _curves(bare) == []                              # a figure never fits
    doc = json.loads((tree / FILES["scaling"]).read_text())
    doc["metrics"]["power_law"]["cnn"]["noise_level"] = 0.5   # a fit at another noise level is not drawn either
    (tmp_path / "other.json").write_text(json.dumps(doc))
    other = render("scaling_law", [str(tmp_path / "other.json")])
    other_labels = [t.get_text() for t in other.legends[0].get_texts()]
    assert other_labels[1] == "CNN: power law stored at noise level 0.5 only"
    assert other_labels[0] == labels[0] and other_labels[2] == labels[2] and len(_curves(other)) == 2 * 2
    with pytest.raises(InputError, match="benchmark.json: no reference estimator 'vit'"):
        render("scaling_law", [path(tree, "scaling"), path(tree, "benchmark")], {"reference": ["vit"]})


def test_training_curves_one_column_per_network(tree, tmp_path):
    fig = render("training_curves", [path(tree, "scaling")], {})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 9 and [ax.get_title() for ax in visible[:3]][0].startswith("MLP")
    assert "N = 50,000" in fig.get_suptitle()
    with pytest.raises(InputError, match="benchmark.json: no training history"):
        render("training_curves", [path(tree, "benchmark")], {})


def test_ablations_bars_start_at_their_own_reference(tree, tmp_path):
    """Each variant's bar runs from ITS reference's R^2 (a CNN kernel from the CNN's, not the ViT's) to
    its own, and the figure prints the paired difference and interval the table prints."""
    fig = render("ablations", [path(tree, "ablations")], {})
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[:3] == ["against ViT", "ViT (reference)", "ViT, patch 16"]
    assert "CNN (reference)" in ticks and ticks.index("CNN (reference)") < ticks.index("CNN, kernel size 15")
    m = json.loads((tree / FILES["ablations"]).read_text())["metrics"]
    bars = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    assert set(bars) == set(ABLATIONS["compare"])
    texts = [t.get_text() for t in ax.texts]
    for e, ref in ABLATIONS["compare"].items():
        c = m["comparisons"][e]["at_default"]
        ref_r2 = m["cells"][ref]["nl1"][f"n{ABLATION_SIZE}"]["r2"]
        assert c["r2_reference"] == ref_r2
        assert bars[e].get_x() == pytest.approx(ref_r2) and bars[e].get_width() == pytest.approx(c["r2_diff"])
        assert bars[e].get_x() + bars[e].get_width() == pytest.approx(m["cells"][e]["nl1"][f"n{ABLATION_SIZE}"]["r2"])
        lo, hi = c["r2_diff_ci"]
        assert lo < c["r2_diff"] < hi
        assert any(f"({c['r2_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}], {c['verdict']})" in t for t in texts), e
    vit = m["cells"]["vit"]["nl1"][f"n{ABLATION_SIZE}"]["r2"]
    assert bars["cnn_k15"].get_x() != pytest.approx(vit)        # not the most common reference
    assert "own reference" in ax.get_title() and "paired bootstrap" in ax.get_title()
    doc = json.loads((tree / FILES["ablations"]).read_text())
    del doc["metrics"]["comparisons"]["cnn_k5"]["at_default"], doc["metrics"]["comparisons"]["cnn_k5"]["at_highest_noise"]
    (tmp_path / "ablations.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"ablations\.json: no comparison of 'cnn_k5' with 'cnn' at noise level 1"):
        render("ablations", [str(tmp_path / "ablations.json")], {})


# -- tables ------------------------------------------------------------------------------------
TABLE_INPUTS = {"scaling": ["scaling"], "ablations": ["ablations"]}


@pytest.mark.parametrize("name", sorted(TABLE_INPUTS))
def test_tables_refer_to_numbers_only_through_macros(tree, tmp_path, name):
    files = [tree / FILES[k] for k in TABLE_INPUTS[name]]
    numbers = paper.numbers_tex(paper.collect_numbers(tree / "results", files=files))
    text = paper.write_table(name, tree / "results", tmp_path / f"{name}.tex", files)
    assert paper.find_hand_typed_numbers(text) == []
    assert paper.find_undefined_macros(text, numbers) == []
    assert "\\toprule" in text and "\\bottomrule" in text and f"%   {FILES[TABLE_INPUTS[name][0]]}" in text


@pytest.mark.parametrize("name, macros", [
    ("scaling", ["\\TrackAScalingCellsVitNloneNfiftythousandRtwo", "\\TrackAScalingPowerLawVitRtwoInf",
                 "\\TrackAScalingPowerLawCnnB", "\\TrackAScalingPowerLawMlpPredictOnemillionRtwo",
                 "\\TrackAScalingPowerLawVitSizeToReachLightgbmNTrain"]),
    ("ablations", ["\\TrackAAblationsCellsVitNloneNthirtythousandRtwo",
                   "\\TrackAAblationsCellsCnnKfifteenNloneNthirtythousandRtwoCiBootHi",
                   "\\TrackAAblationsComparisonsVitLoneAtDefaultRtwoDiff",
                   "\\TrackAAblationsComparisonsCnnKfiveAtDefaultRtwoDiffCiLo",
                   "\\TrackAAblationsComparisonsCnnKfiveAtDefaultVerdict"]),
])
def test_tables_cite_the_expected_macros(tree, name, macros):
    text = paper.table_tex(name, tree / "results", [tree / FILES[k] for k in TABLE_INPUTS[name]])
    for m in macros:
        assert m in text, m
    if name == "scaling":        # extrapolations are marked, the fitted range is not
        body = text.split("\\midrule")[-1]
        assert body.count("$^\\dagger$") == 3 * 3          # 100k, 200k, 1M of each network


def test_ablations_name_variants_in_words_never_by_their_ids(tree):
    """Figure and table name a variant by its class's label and the hyper-parameters that set it apart
    from its reference (pfslogg.experiments.variant_labels), never by a variant id such as vit_patch32."""
    import matplotlib.pyplot as plt

    fig = render("ablations", [path(tree, "ablations")], {})
    try:
        ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    finally:
        plt.close(fig)
    text = paper.table_tex("ablations", tree / "results", [tree / FILES["ablations"]])
    rows = [line.split(" & ")[0] for line in text.split("\\midrule")[-1].splitlines() if " & " in line]
    for shown in (ticks, rows):
        assert not any("_" in s for s in shown), shown
        assert not any(e in s for s in shown for e in ABLATION if "_" in e)
    for words in ("ViT, patch 32", "ViT, tokenizer overlap, stride 32", "ViT, position sinusoidal wavelength",
                  "ViT, absolute-error loss", "CNN, kernel size 5", "CNN, dilation 2"):
        assert words in ticks and any(words in r for r in rows), words
    assert len(set(ticks)) == len(ticks)


def test_variant_labels_differ_from_the_reference_only():
    variants = {"mlp": {"class": "mlp", "label": "MLP", "hyper": {"epochs": 4}},
                "mlp_wide": {"class": "mlp", "label": "MLP", "hyper": {"epochs": 4, "hidden": [512, 64]}},
                "mlp_shortcut": {"class": "mlp_shortcut", "label": "MLP + linear shortcut", "hyper": {"epochs": 4}},
                "lgb": {"class": "lightgbm", "label": "LightGBM", "hyper": {"learning_rate": 0.2}},
                "lgb_std": {"class": "lightgbm", "label": "LightGBM", "hyper": {"learning_rate": 0.2, "standardize": True}},
                "a": {"class": "ridge", "label": "Ridge"}, "b": {"class": "ridge", "label": "Ridge"}}
    assert variant_labels(variants, {"mlp_wide": "mlp", "lgb_std": "lgb"}) == {
        "mlp": "MLP", "mlp_wide": "MLP, hidden 512/64", "mlp_shortcut": "MLP + linear shortcut", "lgb": "LightGBM",
        "lgb_std": "LightGBM, standardize", "a": "Ridge (a)", "b": "Ridge (b)"}   # nothing known: the id in words


def test_scaling_table_needs_the_power_law(tree, tmp_path):
    with pytest.raises(InputError, match="table scaling: .*benchmark.json has no 'power_law'"):
        paper.table_tex("scaling", tree / "results", [tree / FILES["benchmark"]])
    with pytest.raises(InputError, match="table ablations: .*benchmark.json has no 'comparisons'"):
        paper.table_tex("ablations", tree / "results", [tree / FILES["benchmark"]])


def test_caption_names_the_models_the_configuration_draws(tmp_path):
    """The captions that name the headline figure's models read \\FigureModels, made from its cells: a
    model added to the figure's estimators is named with no edit of the LaTeX."""
    from pathlib import Path

    from pfslogg import paths as P
    from pfslogg.tracks import TABLES as ENTRIES

    cfg = {"figure": {"estimators": ["ridge", "vit", "mlfit"]}, "noise": {"noise_level": 1.0},
           "datasets": {"train": {"n": 2000}}}
    files = ENTRIES["figure_models"].inputs(cfg)
    assert files == P.figure_cells(cfg)
    labels = {"ridge": "Ridge", "vit": "ViT", "mlfit": "Interpolated ML fit"}
    with contextlib.chdir(tmp_path):
        for e, f in zip(cfg["figure"]["estimators"], files):
            write_results(f, {"estimator": e, "class": e, "label": labels[e]}, "run_cell", [], kind="estimator")
        text = paper.table_tex("figure_models", tmp_path / "results", [tmp_path / f for f in files])
        fewer = paper.table_tex("figure_models", tmp_path / "results", [tmp_path / f for f in files[:2]])
    assert "\\def\\FigureModels{Interpolated ML fit, Ridge and ViT}%" in text      # in the order of the files
    assert "Interpolated ML fit" not in fewer and "Ridge and ViT" in fewer
    snr = (Path(__file__).parents[1] / "paper/sections/track_a_snr.tex").read_text()
    assert "\\input{generated/tables/figure_models}" in snr and "(\\FigureModels)" in snr
    assert "ridge regression, gradient-boosted trees" not in snr      # no list typed by hand


def test_a_loss_is_named_in_words_and_typeset_in_tables_and_figures():
    from pfslogg.binning import typeset_symbols
    from pfslogg.experiments import variant_labels
    from pfslogg.paper.tables.common import label_tex

    variants = {"mlp": {"label": "MLP", "class": "mlp", "hyper": {"epochs": 4}},
                "mlp_nll": {"label": "MLP", "class": "mlp", "hyper": {"epochs": 4, "loss": "beta_nll"}},
                "mlp_l1": {"label": "MLP", "class": "mlp", "hyper": {"epochs": 4, "loss": "l1"}}}
    labels = variant_labels(variants)
    assert labels == {"mlp": "MLP", "mlp_nll": "MLP, beta-NLL loss", "mlp_l1": "MLP, absolute-error loss"}
    assert label_tex(labels["mlp_nll"]) == r"MLP, $\beta$-NLL loss"
    assert typeset_symbols(labels["mlp_nll"]) == r"MLP, $\beta$-NLL loss"   # matplotlib's mathtext
    assert label_tex("MLP (beta NLL), conformal sigma") == r"MLP ($\beta$-NLL), conformal sigma"


def test_figures_typeset_the_loss_and_the_temperature_but_leave_other_text():
    from pfslogg.plots.common import symbols

    assert symbols("MLP (beta NLL), conformal sigma") == r"MLP ($\beta$-NLL), conformal sigma"
    assert symbols("MoE of Ridge (3 [M/H] x 3 T_eff bins)") == r"MoE of Ridge (3 [M/H] $\times$ 3 $T_\mathrm{eff}$ bins)"
    assert symbols("3 x 3 grid") == "3 x 3 grid"           # no symbol named: the letter stays a letter
    assert symbols(r"$T_\mathrm{eff}$ (K)") == r"$T_\mathrm{eff}$ (K)"
