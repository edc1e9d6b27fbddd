"""Paper machinery: numbers.tex macros from results JSON, the tables, the LaTeX skeleton.

``make_results_tree`` writes a small workflow root (inputs, results with real provenance blocks,
a figure with its sidecar, a rule file); test_audit.py and test_tex_guard.py use it too.
``cell_metrics`` and ``experiment_metrics`` build an experiment cell (kind ``estimator``) and an
experiment aggregate (kind ``experiment``) as the results JSON spec lays them out.
"""

import contextlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import cell_predictions, require_tools
from hypothesis import given
from hypothesis import strategies as st

from pfslogg import paper
from pfslogg.atomic import write_json
from pfslogg.data.describe import describe_grid, write_grid_description
from pfslogg.errors import InputError
from pfslogg.paper.numbers import _walk
from pfslogg.provenance import make_block

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "paper"

BINS = [(2.0, 3.0), (3.0, 4.5), (4.5, 7.0)]
# (estimator, label, overall r2, per-bin r2): lightgbm's bin 2 equals ridge's overall after rounding.
ESTIMATORS = [
    ("ridge", "Ridge", 0.4712, [0.2113, 0.3876, 0.5521]),
    ("lightgbm", "LightGBM", 0.5387, [0.2502, 0.4709, 0.6188]),
    ("template", "Template fit", 0.4021, [0.1234, 0.3301, 0.4745]),
]

RULES_SMK = """\
# baselines: one rule per estimator
rule train_ridge:
    input: "data/train.h5"
    shell: "python -m pfslogg.train ridge"

use rule train_ridge as train_lightgbm with:
    shell: "python -m pfslogg.train lightgbm"

rule train_template:
    shell: "python -m pfslogg.train template"
"""


PRIOR = {"M_H": [-0.25, 0.75], "T_eff": [3750.0, 6000.0], "a_M": [0.0, 0.0], "log_g": [1.0, 5.0]}
NOISE = {"exp_time": 900.0, "exposures": 12, "mag": [20.5, 22.5], "noise_level": 1.0,
         "seeing": [0.5, 1.5], "throughput": 2.2}
EVALUATION = {"bootstrap": 1000, "confidence": 0.95, "snr_bins": [2.0, 3.0, 4.5, 7.0]}
# the metrics of results/data/grid.json (rule describe_grid), as pfslogg.data.describe writes them
GRID = {"source": "synth", "kind": "instrument", "resolution": 5000, "raw_resolution": 20000,
        "n_pixels": 4096, "wave_range": [7100, 8850], "dispersion": 0.42735, "n_nodes": 2160,
        "axes": {"T_eff": {"min": 3500, "max": 6250, "step": 250, "n": 12},
                 "log_g": {"min": 0.5, "max": 5, "step": 0.5, "n": 10},
                 "M_H": {"min": -0.5, "max": 0.75, "step": 0.25, "n": 6},
                 "a_M": {"min": -0.25, "max": 0.25, "step": 0.25, "n": 3}},
        "model": {"gravity_coupling": 0.8, "line_formation_factor": 0.2, "logg_pivot": 3.0,
                  "max_depth": 0.9, "oi_nlte_base": 0.1, "oi_nlte_slope": 0.12,
                  "paschen_stark_scale": 0.5, "saturation_dilution": 1.0, "tau_layer": 0.3,
                  "tio_scale": 1.0, "vdw_enhancement": 1.5, "xi_kms": 2.0},
        "lines": {"named": 32, "pseudo": 290}}
HYPER = {"ridge": {"alpha": 10.0, "val_r2_by_alpha": {"0.1": 0.4312, "10.0": 0.4523}},
         "lightgbm": {"alpha": 10.0, "best_iteration": 417},
         "template": {"alpha": 10.0, "n_templates": 450}}


def cell_metrics(name, label, r2, bins_r2, noise_level=1.0, size=20000, seed=0, bins=BINS):
    """The metrics of one experiment cell (kind "estimator"), as the results JSON spec has them."""
    snr_bins = []
    for (lo, hi), b in zip(bins, bins_r2):
        snr_bins.append({"lo": lo, "hi": hi, "snr_median": (lo + hi) / 2, "n": 200, "r2": b,
                         "r2_ci": [b - 0.05, b + 0.05], "mae": 0.5 + b / 10, "rmse": 0.7 + b / 10,
                         "bias": -0.02, "slope": 0.8 + b / 10})
    return {"estimator": name, "class": name, "label": label, "noise_level": noise_level,
            "size": size, "seed": seed, "n_test": 2000, "var_prior": 4 / 3, "confidence": 0.95,
            "overall": {"n": 2000, "r2": r2, "r2_ci": [r2 - 0.02, r2 + 0.02], "mae": 0.61,
                        "rmse": 0.84, "bias": -0.013, "slope": 0.834},
            "snr_bins": snr_bins}


def _estimator_metrics(name, label, r2, bins_r2):
    """A cell at the paper's default condition, plus the keys the paper text still cites."""
    return {**cell_metrics(name, label, r2, bins_r2), "n_train": 20000, "hyper": HYPER[name],
            "converged": True}


def noise_tag(level):
    """The noise level as it appears in file names and aggregate keys: 0.1 -> '0p1', 1.0 -> '1'."""
    return f"{level:g}".replace(".", "p")


def experiment_metrics(estimators, noise_levels, sizes, seeds, r2_of, default_noise_level=1.0,
                       experiment="benchmark", missing=()):
    """The metrics of an experiment aggregate (kind "experiment"), as the spec lays them out.

    ``estimators``: [(name, label)]; ``r2_of(name, noise_level, size)``: the mean R^2 of a cell;
    ``missing``: (name, noise_level, size) cells left out of the grid."""
    cells, best = {}, {}
    for name, _ in estimators:
        for nl in noise_levels:
            for size in sizes:
                if (name, nl, size) in missing:
                    continue
                r2 = r2_of(name, nl, size)
                cells.setdefault(name, {}).setdefault(f"nl{noise_tag(nl)}", {})[f"n{size}"] = {
                    "n_seeds": len(seeds), "noise_level": nl, "size": size, "r2": r2,
                    "r2_ci_seeds": [r2 - 0.031, r2 + 0.029], "r2_ci_boot": [r2 - 0.042, r2 + 0.038],
                    "rmse": 0.9 - r2 / 2, "mae": 0.7 - r2 / 2, "bias": -0.011 * nl,
                    "slope": 0.6 + r2 / 3, "rmse_sd": 0.004}
                top = best.setdefault(f"nl{noise_tag(nl)}", {}).setdefault(f"n{size}", {})
                if r2 > top.get("r2", -math.inf):
                    top.update({"estimator": name, "r2": r2})
    return {"experiment": experiment, "track": "f", "confidence": 0.95, "var_prior": 4 / 3,
            "n_test": 2000, "noise_levels": list(noise_levels), "sizes": list(sizes),
            "seeds": list(seeds), "default_noise_level": default_noise_level,
            "estimators": {name: {"class": name, "label": label} for name, label in estimators},
            "cells": cells, "best": best}


def write_results(root, path, kind, metrics, rule="r", inputs=(), params=None, details=None):
    """A results file ``{"kind", "metrics", ["details"], "provenance"}`` under ``root``."""
    doc = {"kind": kind, "metrics": metrics}
    if details is not None:
        doc["details"] = details
    with contextlib.chdir(root):
        doc["provenance"] = make_block(rule, list(inputs), params,
                                       command=f"python -m pfslogg.{rule} --fake")
        write_json(path, doc)
    return Path(root) / path


BENCH_ESTIMATORS = [(name, label) for name, label, *_ in ESTIMATORS] + [("mlp", "MLP")]   # the grid also has the MLP
BENCH_NOISE, BENCH_SIZES, BENCH_SEEDS = [0.1, 0.5, 1.0], [2000, 6000, 20000], [0, 1, 2]
BENCH_BASE = {"ridge": 0.6213, "lightgbm": 0.6853, "template": 0.5502, "pca_ridge": 0.3101,
              "ridge_small_alpha": -0.9123, "lightgbm_standardized": 0.6851, "mlp": 0.6522,
              "lightgbm_search": 0.6411, "mlfit": 0.6213, "mlp_shortcut": 0.5813,
              # Track E's error channel: the stored sigma leaks (above the ceiling), the estimated does not
              "ridge_sigma_stored": 1.1213, "ridge_sigma_estimated": 0.5011, "ridge_flux_sigma_stored": 1.0813,
              "ridge_flux_sigma_estimated": 0.6301}
LABELS = {"ridge": "Ridge", "pca_ridge": "PCA + Ridge", "lightgbm": "LightGBM", "template": "Template fit",
          "ridge_small_alpha": "Ridge", "lightgbm_standardized": "LightGBM", "mlp": "MLP",
          "lightgbm_search": "LightGBM", "mlfit": "Interpolated ML fit", "mlp_shortcut": "MLP + shortcut",
          "ridge_sigma_stored": "Ridge", "ridge_sigma_estimated": "Ridge", "ridge_flux_sigma_stored": "Ridge",
          "ridge_flux_sigma_estimated": "Ridge", "probe_vit_mean": "Ridge on ViT latents, mean over tokens",
          "probe_vit_seg8": "Ridge on ViT latents, 8 segment means",
          "probe_cnn_attention": "Ridge on CNN latents, attention pooling"}
PROBES = {"ridge": 0.55, "probe_vit_mean": 0.41, "probe_vit_seg8": 0.62, "probe_cnn_attention": 0.58}   # made-up R2
ERROR_CHANNEL = ["ridge", "ridge_sigma_stored", "ridge_sigma_estimated", "ridge_flux_sigma_stored",
                 "ridge_flux_sigma_estimated"]


def bench_fitted(e, nl, n, s):
    """What a made-up cell's fit chose: PCA + Ridge searches its components and takes the largest at
    noise level 1 and above (an optimum on the grid's edge), one inside below; the rest a fixed alpha."""
    if e == "pca_ridge":
        ks, alphas = [4, 16, 64, 256], [0.1, 10.0, 1000.0]
        return {"n_components": 256 if nl >= 1.0 else 64, "alpha": 10.0,
                "search": {"n_components": ks, "alpha": alphas, "val_r2": [[0.1] * 3 for _ in ks]}}
    if e == "lightgbm_search":
        lrs, leaves = [0.02, 0.05, 0.2, 0.5], [3, 7, 31, 63]
        return {"learning_rate": 0.05, "num_leaves": 7, "best_iteration": 300,
                "search": {"learning_rate": lrs, "num_leaves": leaves, "val_r2": [[0.5] * 4 for _ in lrs],
                           "best_iteration": [[300] * 4 for _ in lrs]}}
    return {"alpha": 10.0}


def aggregate_metrics(experiment, estimators, noise_levels, sizes, seeds, r2_of, compare=None,
                      default_noise_level=1.0, compare_at=None, cells_out=None):
    """(metrics, details) of an experiment aggregate made by the workflow's own
    pfslogg.experiments.aggregate from made-up cells (their fits: :func:`bench_fitted`), so that the
    tree has every key it writes."""
    from pfslogg.experiments import aggregate, noise_tag as tag

    exp = {"track": "f", "estimators": list(estimators), "noise_levels": list(noise_levels),
           "sizes": list(sizes), "seeds": len(seeds), "compare": dict(compare or {})}
    if compare_at:
        exp["compare_at"] = compare_at
    cells = {} if cells_out is None else cells_out   # cells_out: the made-up cells, for the caller
    for e in estimators:
        for nl in noise_levels:
            for n in sizes:
                for s in seeds:
                    r2 = r2_of(e, nl, n) + 0.002 * (s - (len(seeds) - 1) / 2)   # mean over seeds: r2_of
                    m = cell_metrics(e, LABELS[e], r2, [r2 - 0.2, r2 - 0.1, r2], noise_level=nl, size=n, seed=s)
                    cells[(e, tag(nl), n, s)] = {"kind": "estimator", "metrics": m,
                                                 "details": {"fitted": bench_fitted(e, nl, n, s)}}
    metrics, details, _ = aggregate(experiment, exp, cells, 0.95, default_noise_level=default_noise_level,
                                    predictions=cell_predictions(cells), n_boot=200)
    return metrics, details


def bench_r2(name, nl, size):
    return round(BENCH_BASE[name] - 0.2 * nl + 0.01 * BENCH_SIZES.index(size), 4)


def _split_summary(split, n, mag, snr):
    return {"split": split, "n": n, "mag_range": mag, "snr_median": snr[0], "snr_p05": snr[1],
            "snr_p95": snr[2], "snr_min": snr[1] - 1, "snr_max": snr[2] + 3}


TRACK_C_SNAPSHOT = Path(__file__).parent / "data" / "track_c_snapshot.json"
TRACK_A_SNAPSHOT = Path(__file__).parent / "data" / "track_a_snapshot.json"
TRACK_B_SNAPSHOT = Path(__file__).parent / "data" / "track_b_snapshot.json"
TRACK_D_SNAPSHOT = Path(__file__).parent / "data" / "track_d_snapshot.json"   # a tiny run's Track D results


def make_results_tree(root):
    """A tiny workflow root that mirrors the workflow's results (the same files, keys and
    provenance parameters, made-up values): data inputs, results/data/{train,val,test,grid}.json,
    track F estimators, track C ceiling and calibration, a figure with its sidecar and
    rules/baselines.smk. Returns ``root``. A macro the paper uses must exist here too."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(root):
        Path("data").mkdir()
        Path("data/train.h5").write_bytes(b"train spectra")
        Path("data/test.h5").write_bytes(b"test spectra")
        Path("data/grid.h5").write_bytes(b"instrument grid")
        Path("rules").mkdir()
        Path("rules/baselines.smk").write_text(RULES_SMK)
        Path("Snakefile").write_text('include: "rules/baselines.smk"\n')

        def results(path, metrics, rule, inputs, params=None, kind=None, details=None):
            write_results(".", path, kind, metrics, rule, inputs, params, details)

        for split, n, mag, snr in (("train", 20000, [20.5, 22.5], (8.3, 3.0, 21.4)),
                                   ("val", 2000, [20.5, 22.5], (8.2, 2.9, 21.3)),
                                   ("test", 2000, [20.5, 22.5], (8.1, 3.0, 27.0))):
            results(f"results/data/{split}.json", _split_summary(split, n, mag, snr),
                    f"simulate_{split}", [f"data/{split if split != 'val' else 'train'}.h5"],
                    {"chunk_size": 1024, "noise": NOISE, "params": PRIOR, "seed": 7,
                     "split": {"n": n}}, kind="dataset")
        results("results/data/grid.json", GRID, "describe_grid", ["data/grid.h5"], kind="grid")
        for name, label, r2, bins_r2 in ESTIMATORS:
            results(f"results/track_f/{name}.json", _estimator_metrics(name, label, r2, bins_r2),
                    f"train_{name}", ["data/train.h5", "data/test.h5", "results/data/test.json"],
                    {"estimator": name, "alpha": 10.0, "evaluation": EVALUATION, "noise_level": 1.0,
                     "params": PRIOR, "seed": 7}, kind="estimator",
                    details={"fitted": {"alpha": 10.0, "search": {"alpha": [0.1, 10.0],
                                                                  "val_r2": [0.4312, 0.4523]}},
                             "timing": {"fit_s": 1.2345}})
        agg_params = {"bootstrap": EVALUATION["bootstrap"], "confidence": 0.95, "default_noise_level": 1.0}
        metrics, details = aggregate_metrics("benchmark", ["ridge", "pca_ridge", "lightgbm", "template", "mlp"],
                                             BENCH_NOISE, BENCH_SIZES, BENCH_SEEDS, bench_r2)
        results("results/track_f/benchmark.json", metrics, "aggregate_experiment",
                [f"results/track_f/{n}.json" for n, *_ in ESTIMATORS], agg_params, kind="experiment",
                details=details)
        metrics, details = aggregate_metrics(
            "pitfalls", ["ridge", "ridge_small_alpha", "lightgbm", "lightgbm_standardized"], [1.0, 2.0], [6000],
            BENCH_SEEDS, bench_r2, compare={"ridge_small_alpha": "ridge", "lightgbm_standardized": "lightgbm"})
        results("results/track_f/pitfalls.json", metrics, "aggregate_experiment",
                [f"results/track_f/{n}.json" for n, *_ in ESTIMATORS], agg_params, kind="experiment",
                details=details)
        metrics, details = aggregate_metrics("sensitivity", ["lightgbm_search"], [0.2, 1.0, 2.0], [2000], [0],
                                             bench_r2)
        results("results/track_f/sensitivity.json", metrics, "aggregate_experiment",
                [f"results/track_f/{n}.json" for n, *_ in ESTIMATORS], agg_params, kind="experiment",
                details=details)
        metrics, details = aggregate_metrics("physics", ["template", "mlfit"], [0.0, 0.2, 1.0, 2.0], [2000], [0],
                                             bench_r2, compare={"mlfit": "template"})
        results("results/track_f/physics.json", metrics, "aggregate_experiment",
                [f"results/track_f/{n}.json" for n, *_ in ESTIMATORS], agg_params, kind="experiment",
                details=details)
        band = {"r2max_p10": 0.3, "r2max_p90": 0.9, "r2max_mean_crlb": 0.42}
        results("results/track_c/fisher.json",
                {"var_prior": 4 / 3, "n": 2000, "noise_level": 1.0, "nuisance": ["T_eff", "M_H"],
                 "overall": {"n": 2000, "r2max_median": 0.8123, "r2max_p10": 0.41,
                             "r2max_p90": 0.97, "r2max_mean_crlb": 0.6841},
                 "snr_bins": [{"lo": lo, "hi": hi, "n": 200, "snr_median": (lo + hi) / 2,
                               "r2max_median": 0.5 + i / 10, **band}
                              for i, (lo, hi) in enumerate(BINS)],
                 "outside_bins": {"snr_min": BINS[0][0], "snr_max": BINS[-1][1], "n_below": 35, "n_above": 185}},
                "fisher_ceiling", ["data/test.h5"],
                {"evaluation": EVALUATION, "noise_level": 1.0, "params": PRIOR}, kind="fisher")
        snrs, originals = [3.0, 4.6, 7.1, 24.0], [0.366, 0.74, 0.891, 0.9906]
        results("results/track_c/ceiling_calibration.json",
                {"points": [{"snr": s_, "r2max_median": o + 0.01, "r2max_p10": o - 0.2,
                             "r2max_p90": min(o + 0.1, 0.999), "original": o, "diff": 0.01}
                            for s_, o in zip(snrs, originals)], "n_spectra": 500, "tolerance": 0.1,
                 "max_abs_diff": 0.01, "max_abs_diff_snr": 3.0, "within_tolerance": True},
                "calibrate_ceiling", ["data/test.h5"],
                {"ceiling": {"n_spectra": 500, "original": originals, "snr": snrs, "tolerance": 0.1},
                 "noise": NOISE, "params": PRIOR, "seed": 7}, kind="calibration")
        # Track C's checks and curves: a snapshot of a default run's metrics (tests/data)
        for kind, doc in json.loads(TRACK_C_SNAPSHOT.read_text()).items():
            results(f"results/track_c/{kind}.json", doc["metrics"], f"compute_{kind}", ["data/grid.h5"],
                    kind=kind, details=doc.get("details"))
        # Track A's aggregates and attention maps: a snapshot of a tiny run's (tests/data)
        for name, doc in json.loads(TRACK_A_SNAPSHOT.read_text()).items():
            results(f"results/track_a/{name}.json", doc["metrics"], "aggregate_experiment", ["data/grid.h5"],
                    kind=doc["kind"], details=doc.get("details"))
        # Track E: the linearity and error-channel aggregates, and the error channel's ceiling check (made by
        # pfslogg.ceilings.efficiency from the made-up cells and the Bayes ceiling of the snapshot, estimated sigma)
        metrics, details = aggregate_metrics("linearity", ["ridge", "mlp", "mlp_shortcut"],
                                             [0.0, 0.1, 0.2, 0.5, 1.0, 2.0], [2000],
                                             BENCH_SEEDS, bench_r2, compare={"mlp_shortcut": "mlp"},
                                             compare_at="all")
        results("results/track_e/linearity.json", metrics, "aggregate_experiment", ["data/grid.h5"], agg_params,
                kind="experiment", details=details)
        metrics, details = aggregate_metrics("probing", list(PROBES), [1.0], [2000], BENCH_SEEDS,
                                             lambda e, nl, n: PROBES[e], compare={e: "ridge" for e in list(PROBES)[1:]})
        results("results/track_e/probing.json", metrics, "aggregate_experiment", ["data/grid.h5"], agg_params,
                kind="experiment", details=details)
        made = {}
        metrics, details = aggregate_metrics("error_channel", ERROR_CHANNEL, [1.0], [6000], BENCH_SEEDS, bench_r2,
                                             compare={e: "ridge" for e in ERROR_CHANNEL[1:]}, cells_out=made)
        results("results/track_e/error_channel.json", metrics, "aggregate_experiment", ["data/grid.h5"], agg_params,
                kind="experiment", details=details)
        from pfslogg.ceilings.efficiency import efficiency, other_sigma, split_by_sigma
        bayes = dict(json.loads(TRACK_C_SNAPSHOT.read_text())["bayes"]["metrics"], sigma="estimated")
        fisher = json.loads(Path("results/track_c/fisher.json").read_text())["metrics"]
        bins = [(b["lo"], b["hi"]) for b in bayes["snr_bins"]]
        docs = {}
        for (e, _, _, seed), cell in sorted(made.items()):
            r2 = cell["metrics"]["overall"]["r2"]
            m = cell_metrics(e, LABELS[e], r2, [r2 - 0.3 + 0.05 * i for i in range(len(bins))], size=6000, seed=seed,
                             bins=bins)
            m["sigma"] = "stored" if e.endswith("_stored") else "estimated"
            docs.setdefault(e, []).append({"kind": "estimator", "metrics": m})
        same, leaky = split_by_sigma(docs, "estimated")
        metrics = dict(efficiency(bayes, fisher, same), other_sigma=other_sigma(bayes, fisher, leaky, "estimated"))
        results("results/track_e/error_channel_ceiling.json", metrics, "check_error_channel_ceiling",
                ["data/grid.h5"], {"noise_level": 1.0, "size": 6000}, kind="efficiency")
        # Track D's summary of the denoisers, the downstream aggregate and its ceiling check: a tiny run's
        for name, doc in json.loads(TRACK_D_SNAPSHOT.read_text()).items():
            results(f"results/track_d/{name}.json", doc["metrics"], "summarize_denoising", ["data/grid.h5"],
                    doc["params"], kind=doc["kind"])
        # Track B's summary of the mixtures: a snapshot of a tiny run's (tests/data)
        doc = json.loads(TRACK_B_SNAPSHOT.read_text())
        results("results/track_b/mixtures.json", doc["metrics"], "summarize_moe", ["data/grid.h5"], kind="moe",
                details=doc.get("details"))
        Path("figures").mkdir()
        Path("figures/r2_vs_snr.pdf").write_bytes(b"%PDF-1.4 fake figure")
        figure_inputs = [f"results/track_f/{n}.json" for n, *_ in ESTIMATORS]
        write_json("figures/r2_vs_snr.pdf.json",
                   {"kind": "figure",
                    "provenance": make_block("plot_r2_vs_snr", figure_inputs,
                                             command="python -m pfslogg.figures r2_vs_snr")})
    return root


@pytest.fixture
def tree(tmp_path):
    return make_results_tree(tmp_path / "wf")


@pytest.fixture
def numbers(tree):
    return {n.macro: n for n in paper.collect_numbers(tree / "results")}


# ---------------------------------------------------------------------------------- names


def test_spelling_helpers():
    assert [paper.spell_int(n) for n in (0, 7, 13, 20, 21, 100, 2000, 123)] == [
        "zero", "seven", "thirteen", "twenty", "twentyone", "onehundred", "twothousand",
        "onehundredtwentythree"]
    assert paper.camel_words("r2max_p05") == "RtwomaxPzerofive"
    assert paper.camel_words("r2max_p5") == "RtwomaxPfive"
    assert paper.camel_words("snr-bins.x") == "SnrBinsX"
    assert paper.camel_words("track_f") == "TrackF"
    assert paper.index_word(0) == "One" and paper.index_word(11) == "Twelve"


def test_macro_names_follow_the_documented_scheme(numbers):
    expected = {
        "TrackFRidgeOverallRtwo": ("results/track_f/ridge.json", "overall.r2"),
        "TrackFRidgeOverallRtwoCiLo": ("results/track_f/ridge.json", "overall.r2_ci[0]"),
        "TrackFRidgeOverallRtwoCiHi": ("results/track_f/ridge.json", "overall.r2_ci[1]"),
        "TrackFRidgeSnrBinsThreeRtwo": ("results/track_f/ridge.json", "snr_bins[2].r2"),
        "TrackFRidgeSnrBinsOneLo": ("results/track_f/ridge.json", "snr_bins[0].lo"),
        "TrackFRidgeNTrain": ("results/track_f/ridge.json", "n_train"),
        "TrackFRidgeHyperAlpha": ("results/track_f/ridge.json", "hyper.alpha"),
        "TrackCFisherOverallRtwomaxPten": ("results/track_c/fisher.json", "overall.r2max_p10"),
        "TrackCCeilingCalibrationPointsTwoOriginal":
            ("results/track_c/ceiling_calibration.json", "points[1].original"),
        "DataTestMagRangeHi": ("results/data/test.json", "mag_range[1]"),
        "DataTestSnrPzerofive": ("results/data/test.json", "snr_p05"),
    }
    for macro, (file, key) in expected.items():
        assert macro in numbers, macro
        assert (numbers[macro].file, numbers[macro].key) == (file, key)
    assert all(re.fullmatch(r"[A-Za-z]+", m) for m in numbers)


def test_strings_booleans_and_nulls_are_not_numbers(numbers):
    assert not any(m.endswith(("Estimator", "Label", "Converged")) for m in numbers)


def test_verdict_words_are_macros_of_their_text(numbers, tree):
    """The word a comparison earns from its interval (gain, loss, no difference) reaches the text as a
    macro of its text; other strings do not; a verdict that is not plain words is refused, naming it."""
    name = "TrackFPitfallsComparisonsRidgeSmallAlphaAtDefaultVerdict"
    n = numbers[name]
    assert n.raw == n.formatted and n.raw in ("gain", "loss", "no difference")
    assert (n.file, n.key) == ("results/track_f/pitfalls.json", "comparisons.ridge_small_alpha.at_default.verdict")
    assert f"\\newcommand{{\\{name}}}{{{n.raw}}}" in paper.numbers_tex(list(numbers.values()))
    assert "TrackFPitfallsComparisonsRidgeSmallAlphaInterval" not in numbers
    assert "TrackFPitfallsComparisonsRidgeSmallAlphaReference" not in numbers
    path = tree / "results/track_f/pitfalls.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["comparisons"]["ridge_small_alpha"]["at_default"]["verdict"] = "gain}\\input{x"
    write_json(path, doc)
    with pytest.raises(InputError, match=r"^results/track_f/pitfalls.json :: comparisons\.ridge_small_alpha\."
                                         r"at_default\.verdict: expected words"):
        paper.collect_numbers(tree / "results")


def test_values_use_the_declared_precision(numbers):
    expect = {
        "TrackFRidgeOverallRtwo": "0.471",          # R^2: 3 decimals
        "TrackFRidgeOverallRtwoCiLo": "0.451",
        "TrackFRidgeOverallMae": "0.610",           # errors: 3 decimals
        "TrackFRidgeSnrBinsTwoSnrMedian": "3.8",    # SNR: 1 decimal (3.75, half-even)
        "TrackFRidgeSnrBinsTwoLo": "3.0",
        "TrackFRidgeNTrain": "20000",               # counts: integer
        "TrackFRidgeVarPrior": "1.333",
        "TrackFRidgeNoiseLevel": "1",               # hyper-parameters as given
        "TrackFRidgeHyperAlpha": "10",
        "TrackCCeilingCalibrationPointsFourOriginal": "0.9906",  # quoted from the original study
        "TrackCCeilingCalibrationPointsTwoOriginal": "0.74",     # as given, no padding
        "DataTestMagRangeLo": "20.5",
    }
    for macro, value in expect.items():
        assert numbers[macro].formatted == value, (macro, numbers[macro])


def test_format_value_rules():
    assert paper.format_value("r2", -0.00004) == ("0.000", "R^2-like")      # no '-0.000'
    assert paper.format_value("wall_time", 1234567.0)[0] == "1.23e6"
    assert paper.format_value("other", 0.000123456)[0] == "1.23e-4"
    assert paper.format_value("other", 9.996)[0] == "10.0"
    assert paper.format_value("other", 7)[0] == "7"
    assert paper.format_value("n", 20.5)[1] == "default"                     # not a count
    assert paper.format_value("lr", 3e-4)[0] == "0.0003"
    assert paper.format_value("r2", float("nan"))[0] == "{--}"


_SIUNITX_NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?")


@given(key=st.sampled_from(["r2", "r2_ci", "mae", "snr_median", "n", "var_prior", "original",
                            "alpha", "mag_range", "improvement", "frac_x", "something_else"]),
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12,
                                 max_value=1e12),
                       st.integers(min_value=-10**9, max_value=10**9)))
def test_formatted_values_are_plain_numbers_close_to_the_raw_value(key, value):
    text, _ = paper.format_value(key, value)
    assert _SIUNITX_NUMBER.fullmatch(text), text
    # the formatted value differs from the raw one by less than one unit in its last place
    # (or 3 significant digits), never by a shifted decimal point
    back = float(text)
    decimals = len(text.split("e")[0].split(".")[1]) if "." in text.split("e")[0] else 0
    tol = max(0.5 * 10 ** -decimals * (10 ** int(text.split("e")[1]) if "e" in text else 1),
              abs(value) * 5e-3, 0.5)
    assert math.isclose(back, value, abs_tol=tol)


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.floats(allow_nan=False), max_size=6))
def test_macro_names_are_letters_or_the_input_is_rejected(metrics):
    names = []
    try:
        for _, words, _, _, _ in _walk(metrics, (), "", "x"):
            names.append("X" + words)
    except InputError:
        return
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)


# ---------------------------------------------------------------------------------- numbers.tex


def test_numbers_tex_comment_precedes_each_macro(tree, tmp_path):
    out = tmp_path / "gen" / "numbers.tex"
    numbers = paper.write_numbers_tex(tree / "results", out)
    lines = out.read_text().splitlines()
    defs = [i for i, line in enumerate(lines) if line.startswith("\\newcommand")]
    assert len(defs) == len(numbers) > 50
    for i in defs:
        assert lines[i - 1].startswith("% results/") and " :: " in lines[i - 1]
    i = lines.index("\\newcommand{\\TrackFRidgeOverallRtwo}{0.471}")
    assert lines[i - 1] == "% results/track_f/ridge.json :: overall.r2 = 0.4712"


def test_numbers_tex_is_deterministic_and_sorted_by_file(tree, tmp_path):
    a, b = tmp_path / "a.tex", tmp_path / "b.tex"
    paper.write_numbers_tex(tree / "results", a)
    paper.write_numbers_tex(tree / "results", b)
    assert a.read_bytes() == b.read_bytes()
    files = [n.file for n in paper.collect_numbers(tree / "results")]
    assert files == sorted(files)


def test_numbers_index_json(tree, tmp_path):
    out = tmp_path / "numbers.tex"
    paper.write_numbers_tex(tree / "results", out)
    index = json.loads((tmp_path / "numbers.json").read_text())
    entry = index["macros"]["TrackFRidgeSnrBinsThreeRtwoCiHi"]
    assert entry["file"] == "results/track_f/ridge.json"
    assert entry["key"] == "snr_bins[2].r2_ci[1]"
    assert entry["path"] == ["snr_bins", 2, "r2_ci", 1]
    assert entry["formatted"] == "0.602" and math.isclose(entry["raw"], 0.6021)
    assert set(index["files"]) == {n.file for n in paper.collect_numbers(tree / "results")}
    assert all(len(v["sha256"]) == 64 for v in index["files"].values())


def test_colliding_names_are_an_error(tmp_path):
    write_json(tmp_path / "results/track_a/x.json",
               {"metrics": {"snr_median": 0.1, "snrMedian": 0.2}, "provenance": {"rule": "r"}})
    with pytest.raises(InputError, match=r"collision: \\TrackAXSnrMedian.* snrMedian .* snr_median"):
        paper.collect_numbers(tmp_path / "results")


def test_colliding_names_across_files_are_an_error(tmp_path):
    for path in ("results/track_f/ridge.json", "results/track_f_ridge.json"):
        write_json(tmp_path / path, {"metrics": {"r2": 0.1}, "provenance": {"rule": "r"}})
    with pytest.raises(InputError, match="TrackFRidgeRtwo"):
        paper.collect_numbers(tmp_path / "results")


def test_non_results_and_hidden_json_are_skipped(tmp_path):
    write_json(tmp_path / "results/track_a/x.json", {"metrics": {"r2": 0.1}, "provenance": {}})
    write_json(tmp_path / "results/track_a/config.json", {"alpha": 1.0})
    (tmp_path / "results/track_a/.x.json.abc.tmp.json").write_text("{broken")
    assert [n.macro for n in paper.collect_numbers(tmp_path / "results")] == ["TrackAXRtwo"]


@pytest.mark.parametrize("doc, message", [
    ("{not json", "cannot read"),
    ('{"metrics": {"r2": 0.1}}', "no 'provenance'"),
    ('{"metrics": [1, 2], "provenance": {}}', "must be an object"),
])
def test_bad_results_files_raise_input_error(tmp_path, doc, message):
    (tmp_path / "results").mkdir()
    (tmp_path / "results/x.json").write_text(doc)
    with pytest.raises(InputError, match=message):
        paper.collect_numbers(tmp_path / "results")


def test_missing_results_folder_raises(tmp_path):
    with pytest.raises(InputError, match="not found"):
        paper.collect_numbers(tmp_path / "nope")


def test_numbers_and_a_table_are_written(tree, tmp_path):
    out = tmp_path / "gen" / "numbers.tex"
    assert paper.write_numbers_tex(tree / "results", out)
    assert out.is_file() and (tmp_path / "gen" / "numbers.json").is_file()
    with contextlib.chdir(tree):
        paper.write_table("leaderboard", "results", tmp_path / "gen" / "leaderboard.tex",
                          TABLE_FILES["leaderboard"])
    assert (tmp_path / "gen" / "leaderboard.tex").is_file()
    with pytest.raises(InputError, match="results folder not found"):
        paper.write_numbers_tex(tmp_path / "missing", out)


def test_details_never_become_macros(tree, numbers):
    doc = json.loads((tree / "results/track_f/ridge.json").read_text())
    assert doc["details"]["timing"]["fit_s"] == 1.2345
    assert not any("Fitted" in m or "Timing" in m or "Details" in m for m in numbers)
    assert not any(n.raw == 1.2345 for n in numbers.values())


def test_nested_noise_and_size_keys_give_letter_only_unique_macros(tmp_path):
    assert paper.camel_words("nl0p1") == "Nlzeropone" and paper.camel_words("n20000") == "Ntwentythousand"
    levels, sizes = [0, 0.05, 0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 10, 15], [200, 2000, 6000, 20000, 200000]
    est = [("ridge", "Ridge"), ("pca_ridge", "PCA + ridge")]
    write_results(tmp_path, "results/track_f/benchmark.json", "experiment",
                  experiment_metrics(est, levels, sizes, [0], lambda e, nl, n: 0.5 - nl / 100))
    write_results(tmp_path, "results/cells/ridge/nl0p1_n20000_s0.json", "estimator",
                  cell_metrics("ridge", "Ridge", 0.5, [0.2, 0.4, 0.6], noise_level=0.1))
    numbers = paper.collect_numbers(tmp_path / "results")
    names = [n.macro for n in numbers]
    assert len(names) == len(set(names)) and all(re.fullmatch(r"[A-Za-z]+", m) for m in names)
    by_key = {(n.file, n.key): n.macro for n in numbers}
    agg = "results/track_f/benchmark.json"
    assert by_key[(agg, "cells.ridge.nl0p1.n20000.r2")] == \
        "TrackFBenchmarkCellsRidgeNlzeroponeNtwentythousandRtwo"
    assert by_key[(agg, "cells.pca_ridge.nl0.n200.r2_ci_seeds[1]")] == \
        "TrackFBenchmarkCellsPcaRidgeNlzeroNtwohundredRtwoCiSeedsHi"
    assert by_key[("results/cells/ridge/nl0p1_n20000_s0.json", "overall.r2")] == \
        "CellsRidgeNlzeroponeNtwentythousandSzeroOverallRtwo"
    fmt = {n.key: n.formatted for n in numbers if n.file == agg}
    assert fmt["noise_levels[2]"] == "0.1" and fmt["default_noise_level"] == "1"
    assert fmt["cells.ridge.nl1.n20000.slope"] == "0.763" and fmt["confidence"] == "0.95"
    # keys that spell alike still collide, and say so
    write_results(tmp_path, "results/track_f/clash.json", "experiment",
                  {"cells": {"ridge": {"nl0p1": {"r2": 0.1}, "nlzeropone": {"r2": 0.2}}}})
    with pytest.raises(InputError, match=r"collision: \\TrackFClashCellsRidgeNlzeroponeRtwo"):
        paper.collect_numbers(tmp_path / "results")


# ---------------------------------------------------------------------------------- per document


def test_numbers_from_selected_files_only(tree, tmp_path):
    files = ["results/track_c/fisher.json", "results/data/test.json"]
    numbers = paper.collect_numbers(tree / "results", files=[tree / f for f in files])
    assert {n.file for n in numbers} == set(files)
    # paths relative to the results folder's parent work as well
    with contextlib.chdir(tree):
        assert paper.collect_numbers("results", files=files) == numbers
    assert paper.collect_numbers(tree / "results", files=[]) == []
    with pytest.raises(InputError, match="not found"):
        paper.collect_numbers(tree / "results", files=[tree / "results/track_x/none.json"])
    outside = tmp_path / "elsewhere.json"
    write_json(outside, {"metrics": {"r2": 0.1}, "provenance": {}})
    with pytest.raises(InputError, match="not under the results folder"):
        paper.collect_numbers(tree / "results", files=[outside])


def test_rule_parameters_become_cfg_macros_printed_as_given(numbers):
    cfg = {m: n for m, n in numbers.items() if "Cfg" in m}
    assert cfg["DataTrainCfgParamsTEffLo"].formatted == "3750"
    assert cfg["DataTrainCfgParamsMHLo"].formatted == "-0.25"
    assert cfg["DataTrainCfgNoiseThroughput"].formatted == "2.2"
    assert cfg["DataTrainCfgNoiseExposures"].formatted == "12"
    assert cfg["TrackFRidgeCfgEvaluationConfidence"].formatted == "0.95"
    n = cfg["DataTrainCfgNoiseSeeingHi"]
    assert (n.file, n.key, n.section, n.path) == ("results/data/train.json",
                                                  "provenance.params.noise.seeing[1]",
                                                  "provenance.params", ("noise", "seeing", 1))
    assert all(n.section == "metrics" for m, n in numbers.items() if "Cfg" not in m)


def test_model_settings_are_printed_as_given_and_keys_without_letters_take_the_parent_rule(numbers):
    assert numbers["DataGridModelGravityCoupling"].formatted == "0.8"
    assert numbers["DataGridModelXiKms"].formatted == "2"
    assert numbers["DataGridAxesMHMin"].formatted == "-0.5"
    assert numbers["DataGridAxesLogGStep"].formatted == "0.5"
    # val_r2_by_alpha["0.1"]: an R^2, three decimals
    assert numbers["TrackFRidgeHyperValRtwoByAlphaZeroOne"].formatted == "0.431"


def test_numbers_tex_with_files(tree, tmp_path):
    out = tmp_path / "gen" / "track_c" / "numbers.tex"
    with contextlib.chdir(tree):
        paper.write_numbers_tex("results", out, files=["results/track_c/fisher.json"])
    index = json.loads(out.with_suffix(".json").read_text())
    assert set(index["files"]) == {"results/track_c/fisher.json"}
    assert index["macros"]["TrackCFisherOverallRtwomaxMedian"]["section"] == "metrics"


def test_document_sources_follow_inputs_tables_figures_and_bibliography():
    main = paper.document_sources(PAPER, "main")
    base = PAPER.as_posix()
    rel = [p.removeprefix(base + "/") for p in main]
    assert rel[0] == "main.tex"
    for expected in ("preamble.tex", "facts.tex", "generated/main/numbers.tex", "sections/intro.tex",
                     "sections/data.tex", "generated/tables/datasets.tex",
                     "generated/tables/r2_by_snr.tex", "generated/tables/ceiling.tex",
                     "generated/tables/calibration.tex", "refs.bib",
                     "figures/r2_vs_snr.pdf", "figures/ceiling_calibration.pdf"):
        assert expected in rel, expected
    assert len(rel) == len(set(rel)) and not any("#" in p for p in rel)
    track_f = paper.document_sources(PAPER, "track_f")
    assert f"{base}/generated/track_f/numbers.tex" in track_f
    assert "figures/ceiling_calibration.pdf" not in track_f
    assert f"{base}/generated/tables/calibration.tex" not in track_f
    track_c = paper.document_sources(PAPER, "track_c")
    assert "figures/r2_vs_snr.pdf" not in track_c
    assert f"{base}/generated/tables/r2_by_snr.tex" not in track_c
    # every hand-written file a document reads exists
    for doc in ("main", "track_c", "track_f", "track_a", "track_b", "track_d", "track_e"):
        for path in paper.document_sources(PAPER, doc):
            if path.startswith(base + "/") and "/generated/" not in path:
                assert Path(path).is_file(), path


def test_check_document_finds_undefined_macros_in_what_it_reads(tree, tmp_path):
    work = build_fake_paper(tree, _copy_paper(tmp_path / "paper"))
    only_c = paper.collect_numbers(tree / "results", files=[
        tree / "results/track_c/fisher.json", tree / "results/track_c/ceiling_calibration.json",
        *[tree / f"results/track_c/{k}.json" for k in ("bayes", "crlb_validation", "snr_sweep", "efficiency",
                                                                    "uncertainties", "coverage")],
        *[tree / f"results/data/{s}.json" for s in ("train", "val", "test", "grid")]])
    numbers_c = paper.numbers_tex(only_c)
    assert paper.check_document(work, "track_c", numbers_c) == []
    problems = paper.check_document(work, "track_f", numbers_c)
    assert any("TrackFRidgeOverallRtwo is not defined in the numbers of track_f" in p for p in problems)
    (work / "sections" / "results_ceiling.tex").write_text(
        (work / "sections" / "results_ceiling.tex").read_text() + "\n$R^2 = 0.47$, \\TrackCFisherNope\n")
    problems = paper.check_document(work, "track_c", numbers_c)
    assert any("hand-typed decimal: '0.47'" in p for p in problems)
    assert any("\\TrackCFisherNope is not defined" in p for p in problems)
    (work / "numbers_c.tex").write_text(numbers_c)
    assert paper.check_paper_cli(work, work / "numbers_c.tex", doc="track_c") == problems
    with pytest.raises(InputError, match="cannot read numbers.tex"):
        paper.check_paper_cli(work, work / "none.tex")


# ---------------------------------------------------------------------------------- grid description


def test_describe_grid_reads_axes_resolution_and_model(tmp_path):
    from conftest import make_fake_grid

    grid = make_fake_grid(tmp_path / "grid.h5", n_pixels=64)
    m = describe_grid(grid)
    assert m["n_pixels"] == 64 and m["resolution"] == 5000 and m["kind"] == "instrument"
    assert m["axes"]["T_eff"] == {"min": 3500, "max": 6000, "step": 500, "n": 6}
    assert m["axes"]["a_M"] == {"min": 0, "max": 0, "step": 0, "n": 1}
    assert m["wave_range"] == [7100, 8850] and m["n_nodes"] == 6 * 10 * 6
    assert "model" not in m and "lines" not in m   # not a synth grid
    out = tmp_path / "results" / "data" / "grid.json"
    with contextlib.chdir(tmp_path):
        written = write_grid_description("grid.h5", "results/data/grid.json",
                                         command="python -m pfslogg describe-grid --grid grid.h5")
    doc = json.loads(out.read_text())
    assert doc["kind"] == "grid" and doc["metrics"] == written
    assert doc["provenance"]["rule"] == "describe_grid"
    assert doc["provenance"]["command"] == "python -m pfslogg describe-grid --grid grid.h5"
    assert list(doc["provenance"]["inputs"]) == ["grid.h5"]
    numbers = {n.macro: n for n in paper.collect_numbers(tmp_path / "results")}
    assert numbers["DataGridAxesTEffStep"].formatted == "500"


def test_describe_grid_of_a_synth_grid_counts_lines():
    from pfslogg.data.synth import line_table

    named = line_table()["named"]
    assert named.sum() > 20 and (~named).sum() > 100   # what the paper's line-list sentence states


def test_describe_grid_of_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a readable grid file"):
        describe_grid(tmp_path / "none.h5")


# ---------------------------------------------------------------------------------- tables

# The results files the workflow gives each table (the tree's paths).
DATASETS = [f"results/data/{s}.json" for s in ("train", "val", "test")]
ESTIMATOR_FILES = [f"results/track_f/{name}.json" for name, *_ in ESTIMATORS]
TABLE_FILES = {
    "scaling": ["results/track_a/scaling.json"],
    "ablations": ["results/track_a/ablations.json"],
    "protocols": ["results/track_a/protocols.json", "results/track_c/bayes.json"],
    "scaling_sim": ["results/track_a/scaling_sim.json"],
    "moe_summary": ["results/track_b/mixtures.json"],
    "moe_rho": ["results/track_b/mixtures.json"],
    "moe_findings": ["results/track_b/mixtures.json"],
    "crlb_validation": ["results/track_c/crlb_validation.json"],
    "snr_sweep": ["results/track_c/snr_sweep.json"],
    "efficiency_by_snr": ["results/track_c/efficiency.json"],
    "uncertainties": ["results/track_c/uncertainties.json", "results/track_c/coverage.json"],
    "discussion_ceilings": ["results/track_c/efficiency.json"],
    "discussion_moe": ["results/track_b/mixtures.json"],
    "datasets": DATASETS,
    "ceiling": ["results/track_c/fisher.json"],
    "calibration": ["results/track_c/ceiling_calibration.json"],
    "r2_by_snr": ESTIMATOR_FILES + ["results/track_c/fisher.json"],
    "figure_models": ESTIMATOR_FILES,
    "leaderboard": ["results/track_f/benchmark.json"],
    "benchmark_models": ["results/track_f/benchmark.json"],
    "errors": ["results/track_f/benchmark.json"],
    "search_edges": ["results/track_f/benchmark.json", "results/track_f/sensitivity.json"],
    "linearity": ["results/track_e/linearity.json"],
    "linearity_findings": ["results/track_e/linearity.json"],
    "error_channel": ["results/track_e/error_channel.json", "results/track_e/error_channel_ceiling.json"],
    "probing": ["results/track_e/probing.json"],
    "probing_findings": ["results/track_e/probing.json"],
    "denoising": ["results/track_d/denoising.json"],
    "downstream": ["results/track_d/downstream.json", "results/track_d/downstream_ceiling.json"],
    "downstream_findings": ["results/track_d/downstream.json"],
}


def table(tree, name, files=None, out=None):
    """Table ``name`` of the tree, from ``files`` (default: the workflow's, TABLE_FILES)."""
    files = [tree / f for f in (TABLE_FILES[name] if files is None else files)]
    if out is not None:
        return paper.write_table(name, tree / "results", out, files)
    return paper.table_tex(name, tree / "results", files)


def _rows(text):
    """The first cell of each table row (labels), in order, comments left out."""
    body = paper.mask_comments(text)
    return [line.split("&")[0].strip() for line in body.splitlines() if "&" in line]


def test_every_table_has_its_files():
    assert set(TABLE_FILES) == set(paper.TABLES)


@pytest.mark.parametrize("name", sorted(TABLE_FILES))
def test_tables_refer_to_numbers_only_through_macros(tree, tmp_path, name):
    numbers_tex = paper.numbers_tex(paper.collect_numbers(tree / "results"))
    out = tmp_path / f"{name}.tex"
    text = table(tree, name, out=out)
    assert out.read_text() == text
    assert paper.find_hand_typed_numbers(text) == []
    assert paper.find_undefined_macros(text, numbers_tex) == []
    assert (("\\toprule" in text and "\\bottomrule" in text) or ("\\begin{itemize}" in text and "\\item" in text)
            or (name.startswith("discussion_") and "\\num{\\Track" in text)   # sentences of the discussion
            or (name == "search_edges" and "\\num{\\Track" in text)           # sentences of Track F
            or (name == "figure_models" and "\\def\\FigureModels{" in text)   # words for the captions
            or (name == "benchmark_models" and "\\def\\BenchmarkModels{Ridge, PCA + Ridge, " in text))
    for f in TABLE_FILES[name]:
        assert f"%   {f}" in text


@pytest.mark.parametrize("name, macros", [
    ("ceiling", ["\\TrackCFisherSnrBinsOneRtwomaxMedian", "\\TrackCFisherOverallRtwomaxPninety",
                 "\\TrackCFisherSnrBinsThreeRtwomaxMeanCrlb", "\\TrackCFisherSnrBinsTwoLo"]),
    ("calibration", ["\\TrackCCeilingCalibrationPointsOneSnr",
                     "\\TrackCCeilingCalibrationPointsFourOriginal",
                     "\\TrackCCeilingCalibrationPointsTwoRtwomaxPten"]),
    ("datasets", ["\\DataTrainN", "\\DataTestSnrPninetyfive", "\\DataValMagRangeLo"]),
    ("r2_by_snr", ["\\TrackFRidgeSnrBinsThreeRtwo", "\\TrackFRidgeOverallRtwoCiHi",
                   "\\TrackCFisherSnrBinsTwoRtwomaxMedian", "\\TrackCFisherOverallRtwomaxMedian"]),
    ("leaderboard", ["\\TrackFBenchmarkNoiseLevelsOne", "\\TrackFBenchmarkSizesThree",
                     "\\TrackFBenchmarkCellsRidgeNlzeroponeNtwothousandRtwo",
                     "\\TrackFBenchmarkCellsTemplateNloneNtwentythousandRtwoCiSeedsHi"]),
    # a key that is both a metric and a rule parameter cites the metric (default_noise_level; seed: its index, not the derived seed)
    ("errors", ["\\TrackFBenchmarkDefaultNoiseLevel", "\\TrackFBenchmarkSizesThree",
                "\\TrackFBenchmarkCellsLightgbmNloneNtwentythousandSlope",
                "\\TrackFBenchmarkCellsRidgeNloneNtwentythousandBias"]),
])
def test_tables_cite_the_expected_macros(tree, name, macros):
    text = table(tree, name)
    for m in macros:
        assert m in text, m


def test_r2_by_snr_rows_best_first_with_the_ceiling_last(tree):
    text = table(tree, "r2_by_snr")
    labels = [r for r in _rows(text) if r]
    assert labels[0].startswith("{one run, seed \\num{\\TrackF") and labels[1] == "Estimator"
    assert labels[2:] == ["LightGBM", "Ridge", "Template fit", "Cram\\'er--Rao bound"]
    assert "S[table-format=-1.3]" in text


def test_r2_by_snr_from_explicit_files(tree):
    text = table(tree, "r2_by_snr", ["results/track_f/ridge.json", "results/track_f/template.json"])
    assert "Ridge" in text and "Template fit" in text and "LightGBM" not in text
    assert "Rao bound &" not in text and "\\TrackCFisher" not in text
    assert "%   results/track_f/ridge.json" in text
    with pytest.raises(InputError, match="r2_by_snr: needs at least 1 results file.* 'estimator', got 0"):
        table(tree, "r2_by_snr", ["results/track_c/fisher.json"])


def test_r2_by_snr_with_missing_bins(tree):
    doc = json.loads((tree / "results/track_f/template.json").read_text())
    doc["metrics"]["snr_bins"] = doc["metrics"]["snr_bins"][:2]
    write_json(tree / "results/track_f/template.json", doc)
    text = table(tree, "r2_by_snr", ESTIMATOR_FILES)
    template_row = next(line for line in text.splitlines() if line.startswith("Template fit"))
    assert template_row.count("{--}") == 1


def test_r2_by_snr_from_experiment_cells(tmp_path):
    for name, label, r2, bins_r2 in ESTIMATORS:
        write_results(tmp_path, f"results/cells/{name}/nl0p5_n6000_s1.json", "estimator",
                      cell_metrics(name, label, r2, bins_r2, noise_level=0.5, size=6000, seed=1))
    files = sorted((tmp_path / "results/cells").rglob("*.json"))
    text = paper.table_tex("r2_by_snr", tmp_path / "results", files)
    assert "\\CellsRidgeNlzeropfiveNsixthousandSoneOverallRtwo" in text
    rows = [r for r in _rows(text) if r]
    assert rows[0] == "{one run, seed \\num{\\CellsLightgbmNlzeropfiveNsixthousandSoneSeed}}"   # the seed, once
    assert rows[1:] == ["Estimator", "LightGBM", "Ridge", "Template fit"]
    # cells of different seeds: each row says its own
    write_results(tmp_path, "results/cells/ridge/nl0p5_n6000_s1.json", "estimator",
                  cell_metrics("ridge", "Ridge", 0.3, [0.1, 0.2, 0.3], noise_level=0.5, size=6000, seed=2))
    rows = [r for r in _rows(paper.table_tex("r2_by_snr", tmp_path / "results", files)) if r]
    assert rows[0] == "Estimator" and "Ridge (seed \\num{\\CellsRidgeNlzeropfiveNsixthousandSoneSeed})" in rows
    # two cells of one estimator: which one to show is not the table's guess
    write_results(tmp_path, "results/cells/ridge/nl1_n6000_s1.json", "estimator",
                  cell_metrics("ridge", "Ridge", 0.3, [0.1, 0.2, 0.3], size=6000, seed=1))
    files = sorted((tmp_path / "results/cells").rglob("*.json"))
    with pytest.raises(InputError, match="two cells of estimator 'ridge'"):
        paper.table_tex("r2_by_snr", tmp_path / "results", files)


def test_leaderboard_rows_are_estimator_by_size_and_columns_noise_levels(tree):
    text = table(tree, "leaderboard")
    body = paper.mask_comments(text)
    lines = [line for line in body.splitlines() if "&" in line]
    header = next(line for line in lines if line.startswith("Estimator"))
    assert header.count("\\TrackFBenchmarkNoiseLevels") == len(BENCH_NOISE)
    rows = [line for line in lines if "\\TrackFBenchmarkSizes" in line]
    assert len(rows) == 5 * len(BENCH_SIZES)   # the tree's benchmark: ridge, pca_ridge, lightgbm, template, mlp
    assert [r.split("&")[0].strip() for r in rows] == ["Ridge", "", "", "PCA + Ridge", "", "", "LightGBM", "", "",
                                                      "Template fit", "", "", "MLP", "", ""]
    first = rows[0].split("&")
    assert first[1].strip() == "\\TrackFBenchmarkSizesOne"
    assert first[2].strip() == "\\TrackFBenchmarkCellsRidgeNlzeroponeNtwothousandRtwo"
    ci = lines[lines.index(rows[0]) + 1]
    assert ("{\\scriptsize[\\num{\\TrackFBenchmarkCellsRidgeNlzeroponeNtwothousandRtwoCiSeedsLo}, "
            "\\num{\\TrackFBenchmarkCellsRidgeNlzeroponeNtwothousandRtwoCiSeedsHi}]}") in ci
    assert "S[table-format=6.0]" in text and "\\addlinespace" in text


def test_leaderboard_and_errors_show_a_missing_cell_as_a_dash(tmp_path):
    est = [("ridge", "Ridge"), ("lightgbm", "LightGBM")]
    metrics = experiment_metrics(est, [0.0, 1.0], [500, 1000], [0], lambda e, nl, n: 0.6 - nl / 5,
                                 missing={("lightgbm", 1.0, 1000), ("lightgbm", 0.0, 500)})
    path = write_results(tmp_path, "results/track_f/benchmark.json", "experiment", metrics)
    text = paper.table_tex("leaderboard", tmp_path / "results", [path])
    rows = [line for line in text.splitlines() if "\\TrackFBenchmarkSizes" in line]
    assert [r.count("{--}") for r in rows] == [0, 0, 1, 1]
    errors = paper.table_tex("errors", tmp_path / "results", [path])
    lightgbm = next(line for line in errors.splitlines() if line.startswith("LightGBM"))
    assert lightgbm.count("{--}") == 5          # noise level 1 at the largest size: not run
    ridge = next(line for line in errors.splitlines() if line.startswith("Ridge"))
    assert "\\TrackFBenchmarkCellsRidgeNloneNonethousandRmse" in ridge


def test_errors_at_the_default_noise_level_and_largest_size(tree):
    text = table(tree, "errors")
    assert [r for r in _rows(text) if r][1:] == ["Ridge", "PCA + Ridge", "LightGBM", "Template fit", "MLP"]
    ridge = next(line for line in text.splitlines() if line.startswith("Ridge"))
    assert ridge.split("&")[1:] == [f" \\TrackFBenchmarkCellsRidgeNloneNtwentythousand{k} "
                                    for k in ("Rtwo", "Rmse", "Mae", "Bias")] + [
        " \\TrackFBenchmarkCellsRidgeNloneNtwentythousandSlope \\\\"]
    # the default noise level is both a metric and a rule parameter of the aggregate: either macro
    assert re.search(r"noise level \\num\{\\TrackFBenchmark(Cfg)?DefaultNoiseLevel\}", text), text


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("default_noise_level"), "needs a numeric 'default_noise_level'"),
    (lambda m: m.update(default_noise_level=3.0), "default_noise_level 3.0 is not one of"),
    (lambda m: m.pop("sizes"), "needs a non-empty list 'sizes'"),
    (lambda m: m["cells"]["ridge"]["nl1"]["n20000"].pop("size"), "cells.ridge.nl1.n20000: a cell needs"),
])
def test_errors_table_input_errors(tmp_path, change, message):
    metrics = experiment_metrics(BENCH_ESTIMATORS, BENCH_NOISE, BENCH_SIZES, BENCH_SEEDS, bench_r2)
    change(metrics)
    path = write_results(tmp_path, "results/track_f/benchmark.json", "experiment", metrics)
    with pytest.raises(InputError, match=message):
        paper.table_tex("errors", tmp_path / "results", [path])


def _with_searches(tmp_path, fitted):
    """The search_edges sentences (comments masked) of a made-up benchmark whose PCA + Ridge cells
    chose ``fitted(nl)``."""
    from pfslogg.experiments import noise_tag as tag, search_edges

    metrics, _ = aggregate_metrics("benchmark", ["ridge", "pca_ridge"], BENCH_NOISE, [2000], [0], bench_r2)
    metrics["searches"] = {"pca_ridge": {f"nl{tag(nl)}": {"n2000": search_edges([fitted(nl)])}
                                         for nl in BENCH_NOISE}}
    path = "results/track_f/benchmark.json"
    tmp_path.mkdir(parents=True)
    write_results(tmp_path, path, "experiment", metrics, "aggregate_experiment", [], {"confidence": 0.95})
    return paper.mask_comments(paper.table_tex("search_edges", tmp_path / "results", [tmp_path / path]))


def _pca(k):
    return {"n_components": k, "alpha": 10.0,
            "search": {"n_components": [4, 16, 64, 256], "alpha": [0.1, 10.0, 1000.0], "val_r2": [[0.0] * 3] * 4}}


def test_search_edges_sentence_follows_where_the_choice_lies(tree, tmp_path):
    """The Track F sentence says 'inside the searched grid' only when no choice is on an edge, names the
    noise levels (as macros) where one is, and the side; its numbers are macros."""
    inside = _with_searches(tmp_path / "a", lambda nl: _pca(16))
    assert "inside the searched grid at every noise level" in inside
    assert "number of principal components chosen lies inside the searched range" in inside
    assert "truncated search" not in inside and "largest searched" not in inside
    edge = _with_searches(tmp_path / "b", lambda nl: _pca(256 if nl >= 0.5 else 16))
    assert "the conclusion depends on the truncated search" in edge
    assert "inside the searched grid at every noise level" not in edge
    sentence = next(x for x in edge.split(". ") if "largest searched" in x)
    assert ("noise levels \\num{\\TrackFBenchmarkNoiseLevelsTwo} and \\num{\\TrackFBenchmarkNoiseLevelsThree}"
            in sentence)
    assert "NoiseLevelsOne" not in sentence
    assert "\\num{\\TrackFBenchmarkSearchesPcaRidgeNlzeropfiveNtwothousandHighestNComponents}" in sentence
    # the penalty stayed inside in both; at the lowest edge the side says so
    low = _with_searches(tmp_path / "c", lambda nl: _pca(4 if nl == 0.1 else 16))
    assert "noise level \\num{\\TrackFBenchmarkNoiseLevelsOne} the number of principal components chosen is " \
           "the smallest searched" in low
    numbers_tex = paper.numbers_tex(paper.collect_numbers(tmp_path / "c" / "results"))
    assert paper.find_hand_typed_numbers(low) == [] and paper.find_undefined_macros(low, numbers_tex) == []
    ks = re.search(r"\\newcommand\{\\TrackFBenchmarkSearchesPcaRidgeNlzeroponeNtwothousandLowestNComponents\}"
                   r"\{([^}]*)\}", numbers_tex)
    assert ks and ks.group(1) == "4"


def test_search_edges_table_without_searches_is_an_input_error(tree, tmp_path):
    path = "results/track_f/pitfalls.json"
    doc = json.loads((tree / path).read_text())
    doc["metrics"].pop("searches", None)
    write_results(tmp_path, path, "experiment", doc["metrics"], "aggregate_experiment", [], {})
    with pytest.raises(InputError, match=r"search_edges: results/track_f/pitfalls.json has no 'searches'"):
        paper.table_tex("search_edges", tmp_path / "results", [tmp_path / path])


def test_datasets_table_orders_splits(tree):
    text = table(tree, "datasets", [DATASETS[2], DATASETS[0], DATASETS[1]])
    rows = [r for r in _rows(text) if r.startswith(("Train", "Valid", "Test"))]
    assert rows == ["Training", "Validation", "Test"]


def test_tables_recognise_files_by_kind_not_keys(tree, tmp_path):
    # a calibration file is not a Fisher ceiling, whatever it holds
    with pytest.raises(InputError, match="table ceiling: results/track_c/ceiling_calibration.json "
                                         "is a results file of kind 'calibration'"):
        table(tree, "ceiling", ["results/track_c/ceiling_calibration.json"])
    with pytest.raises(InputError, match="table calibration: needs exactly one .* got 2"):
        path = tree / "results/track_c/ceiling_calibration2.json"
        path.write_text((tree / "results/track_c/ceiling_calibration.json").read_text())
        table(tree, "calibration", ["results/track_c/ceiling_calibration.json", path])
    # the same metrics without a kind are not recognised
    doc = json.loads((tree / "results/track_c/fisher.json").read_text())
    del doc["kind"]
    write_json(tree / "results/track_c/fisher.json", doc)
    with pytest.raises(InputError, match="without a 'kind'"):
        table(tree, "ceiling")
    write_json(tree / "results/track_c/settings.json", {"alpha": 1.0})
    with pytest.raises(InputError, match="settings.json: not a results file"):
        table(tree, "ceiling", ["results/track_c/settings.json"])


def test_unknown_table_and_no_files_are_input_errors(tree, tmp_path):
    with pytest.raises(InputError, match="unknown table 'nope'; the tables are ablations, benchmark_models, calibration, "):
        paper.write_table("nope", tree / "results", tmp_path / "x.tex", TABLE_FILES["ceiling"])
    with pytest.raises(InputError, match="table ceiling: no results files given"):
        paper.write_table("ceiling", tree / "results", tmp_path / "x.tex", [])
    assert not (tmp_path / "x.tex").exists()


def _latex(cwd, name, engine=("pdflatex", "-interaction=nonstopmode", "-halt-on-error")):
    require_tools(engine[0], *(("bibtex",) if engine[0] == "latexmk" else ()))
    return subprocess.run([*engine, name], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_track_f_tables_compile_as_a_standalone_document(tree, tmp_path):
    gen = tmp_path / "doc" / "generated"
    paper.write_numbers_tex(tree / "results", gen / "numbers.tex")
    for name in ("r2_by_snr", "leaderboard", "errors"):
        table(tree, name, out=gen / f"{name}.tex")
    (tmp_path / "doc" / "table.tex").write_text(r"""\documentclass{article}
\usepackage{amsmath}
\usepackage{booktabs}
\usepackage{siunitx}
\input{generated/numbers}
\begin{document}
\begin{table}\centering
\caption{R2 by SNR.}\label{tab:r2_by_snr}
{\small\input{generated/r2_by_snr}}
\end{table}
\begin{table}\centering
\caption{Leaderboard.}\label{tab:leaderboard}
{\small\input{generated/leaderboard}}
\end{table}
\begin{table}\centering
\caption{Errors.}\label{tab:errors}
\input{generated/errors}
\end{table}
Ridge reaches $R^2 = \TrackFRidgeOverallRtwo$ on \num{\TrackFRidgeNTest} test spectra.
\end{document}
""")
    run = _latex(tmp_path / "doc", "table.tex")
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "doc" / "table.pdf").is_file()
    require_tools("pdftotext")
    text = subprocess.run(["pdftotext", "-layout", "table.pdf", "-"], cwd=tmp_path / "doc",
                          capture_output=True, text=True).stdout
    assert "0.471" in text and "LightGBM" in text and "Rao bound" in text
    assert "20000" in text or "20 000" in text
    assert "0.601" in text      # ridge at noise level 0.1, 2000 spectra


# ---------------------------------------------------------------------------------- documents


def _copy_paper(dst):
    shutil.copytree(PAPER, dst, ignore=shutil.ignore_patterns("build", "generated"))
    return dst


def _fake_figure(path):
    """A small valid PDF figure (the fake tree's figures are placeholders)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [0.2, 0.5, 0.7])
    fig.savefig(path)
    plt.close(fig)


def build_fake_paper(tree, work):
    """Everything the documents read, from the fake tree: numbers of every document (all results
    files), the tables, and figures at ``work/../figures``. Returns ``work``."""
    for doc in ("main", "track_a", "track_b", "track_c", "track_d", "track_e", "track_f"):
        paper.write_numbers_tex(tree / "results", work / "generated" / doc / "numbers.tex")
    for name in TABLE_FILES:
        table(tree, name, out=work / "generated" / "tables" / f"{name}.tex")
    from pfslogg.workflow import FIGURE_TRACKS
    for fig in FIGURE_TRACKS:
        _fake_figure(work.parent / "figures" / f"{fig}.pdf")
    return work


@pytest.mark.parametrize("doc", ["main", "track_c", "track_f", "track_a", "track_b", "track_d", "track_e"])
def test_documents_compile_with_bibliography_and_no_undefined_references(tree, tmp_path, doc):
    work = build_fake_paper(tree, _copy_paper(tmp_path / "paper"))
    run = _latex(work, f"{doc}.tex", ("latexmk", "-pdf", "-interaction=nonstopmode",
                                      "-halt-on-error", "-outdir=build"))
    assert run.returncode == 0, run.stdout[-3000:]
    log = (work / "build" / f"{doc}.log").read_text(errors="replace")
    assert "undefined" not in log.lower(), [l for l in log.splitlines() if "ndefined" in l]
    assert "Overfull \\hbox" not in log, [l for l in log.splitlines() if "Overfull" in l]
    assert (work / "build" / f"{doc}.pdf").is_file()
    assert paper.check_document(work, doc, (work / "generated" / doc / "numbers.tex").read_text()) == []


def test_missing_numbers_tex_is_an_error(tmp_path):
    work = _copy_paper(tmp_path / "paper")
    run = _latex(work, "main.tex")
    assert run.returncode != 0
    assert "generated/main/numbers.tex is missing" in run.stdout


def test_every_track_document_exists_and_cites_only_known_keys():
    bib = (PAPER / "refs.bib").read_text()
    keys = set(re.findall(r"@\w+\{(\w+),", bib))
    for t in "abcdef":
        assert (PAPER / f"track_{t}.tex").is_file()
    for path in paper.paper_sources(PAPER):
        for group in re.findall(r"\\cite[a-z]*(?:\[[^\]]*\])*\{([^}]*)\}", path.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, (path.name, key)
