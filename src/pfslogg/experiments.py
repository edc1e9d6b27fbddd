"""Experiment grids: estimator variants x noise levels x training sizes x seeds (DESIGN.md section 5).

An experiment (config ``experiments.<name>``) lists estimator variants (config ``estimators``),
noise levels, training sizes and a number of seeds. Each combination is a *cell*: one job that
trains the variant on the first ``size`` training spectra at that noise level (fresh noise per
batch, generator seeded by the cell's seed) and scores it on the test set at the same noise level
(the one fixed test noise, scaled). A cell belongs to no experiment: two experiments that share a
cell share its job and its file. :func:`aggregate` turns the cells of an experiment into one table
(CSV, a row per cell) and one JSON (means over seeds with intervals, the best estimator per noise
level and size) that figures, tables and macros read.
"""

import re

import numpy as np

from .errors import InputError

_TAG = re.compile(r"^\d+(p\d+)?$")


def noise_tag(noise_level):
    """Noise level as it appears in paths and keys: 0 -> '0', 0.1 -> '0p1', 1.0 -> '1'."""
    return np.format_float_positional(float(noise_level), trim="-").replace(".", "p")  # exact, never 1e-05


def parse_noise_tag(tag):
    if not _TAG.match(tag):
        raise InputError(f"noise tag '{tag}': expected digits with an optional 'p' for the decimal point")
    return float(tag.replace("p", "."))


def cell_seed(master_seed, seed_index):
    """The seed of a cell (training noise and the model's own randomness), distinct per index."""
    return int(np.random.SeedSequence([int(master_seed), 17, int(seed_index)]).generate_state(1)[0])


def experiment_cells(exp):
    """Every cell of an experiment config as (estimator, noise tag, size, seed index)."""
    return [(e, noise_tag(nl), int(n), s)
            for e in exp["estimators"] for nl in exp["noise_levels"] for n in exp["sizes"]
            for s in range(int(exp["seeds"]))]


def compare_pairs(exp):
    """``{variant: reference}`` of an experiment's ``compare``; an entry set to null is no comparison (a
    later config file cannot delete a key of a mapping that Snakemake merges, it can null it)."""
    return {v: ref for v, ref in (exp.get("compare") or {}).items() if ref is not None}


def t_interval(values, confidence):
    """Student-t interval of the mean of ``values``; [mean, mean] for one value."""
    from scipy import stats

    v = np.asarray(values, float)
    m = float(v.mean())
    if len(v) < 2:
        return [m, m]
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return [m - float(half), m + float(half)]


SUMMARY_KEYS = ("rmse", "mae", "bias", "slope")


def aggregate(name, exp, cells, confidence, default_noise_level=None):
    """Aggregate the cells of experiment ``name``.

    ``cells``: {(estimator, noise tag, size, seed index): cell results document (kind "estimator")}.
    Returns ``(metrics, details, rows)``: the aggregate's metrics and details (format in
    /tmp/spec_frame.md, kept in the docstring of pfslogg.workflow) and the CSV rows (one per cell).
    """
    expected = experiment_cells(exp)
    missing = [c for c in expected if c not in cells]
    if missing:
        raise InputError(f"experiments.{name}: results of cell {missing[0]} missing")
    rows, out, fitted, bins, labels = [], {}, {}, {}, {}
    var_prior = n_test = None
    for e in exp["estimators"]:
        for nl in exp["noise_levels"]:
            tag = noise_tag(nl)
            for n in exp["sizes"]:
                docs = [cells[(e, tag, int(n), s)] for s in range(int(exp["seeds"]))]
                ms = []
                for d in docs:
                    if d.get("kind") != "estimator":
                        raise InputError(f"experiments.{name}: cell ({e}, {tag}, {n}) is not an estimator result")
                    ms.append(d["metrics"])
                m0 = ms[0]
                labels[e] = {"class": m0["class"], "label": m0["label"]}
                var_prior, n_test = m0["var_prior"], m0["n_test"]
                r2s = [m["overall"]["r2"] for m in ms]
                cell = {"n_seeds": len(ms), "noise_level": float(nl), "size": int(n),
                        "r2": float(np.mean(r2s)), "r2_ci_seeds": t_interval(r2s, confidence),
                        "r2_ci_boot": [float(np.mean([m["overall"]["r2_ci"][i] for m in ms
                                                      if m["overall"]["r2_ci"][i] is not None] or [np.nan]))
                                       for i in (0, 1)]}
                for k in SUMMARY_KEYS:
                    vals = [m["overall"][k] for m in ms if m["overall"][k] is not None]
                    cell[k] = float(np.mean(vals)) if vals else None
                cell["rmse_sd"] = float(np.std([m["overall"]["rmse"] for m in ms], ddof=1)) if len(ms) > 1 else 0.0
                out.setdefault(e, {}).setdefault(f"nl{tag}", {})[f"n{int(n)}"] = cell
                fitted.setdefault(e, {}).setdefault(f"nl{tag}", {})[f"n{int(n)}"] = \
                    [d.get("details", {}).get("fitted", {}) for d in docs]
                bins.setdefault(e, {}).setdefault(f"nl{tag}", {})[f"n{int(n)}"] = [m["snr_bins"] for m in ms]
                for s, m in enumerate(ms):
                    rows.append({"estimator": e, "class": m["class"], "noise_level": float(nl), "size": int(n),
                                 "seed": s, **{k: m["overall"][k] for k in ("r2", *SUMMARY_KEYS)},
                                 "r2_ci_lo": m["overall"]["r2_ci"][0], "r2_ci_hi": m["overall"]["r2_ci"][1]})
    best = {}
    for nl in exp["noise_levels"]:
        tag = f"nl{noise_tag(nl)}"
        for n in exp["sizes"]:
            key = f"n{int(n)}"
            ranked = sorted(exp["estimators"], key=lambda e: -out[e][tag][key]["r2"])
            top = out[ranked[0]][tag][key]
            entry = {"estimator": ranked[0], "r2": top["r2"]}
            if len(ranked) > 1:
                second = out[ranked[1]][tag][key]
                entry["runner_up"] = ranked[1]
                entry["margin"] = top["r2"] - second["r2"]
                entry["tie"] = bool(second["r2_ci_seeds"][1] >= top["r2_ci_seeds"][0])
            best.setdefault(tag, {})[key] = entry
    nmax = f"n{max(int(n) for n in exp['sizes'])}"
    at = {}
    if default_noise_level is not None and f"nl{noise_tag(default_noise_level)}" in best:
        tag = f"nl{noise_tag(default_noise_level)}"
        at = {e: out[e][tag][nmax] for e in exp["estimators"]}
    lowest = f"nl{noise_tag(min(exp['noise_levels']))}"
    at_lowest = {e: out[e][lowest][nmax] for e in exp["estimators"]}
    comparisons = {}
    for variant, ref in compare_pairs(exp).items():
        for e in (variant, ref):
            if e not in exp["estimators"]:
                raise InputError(f"experiments.{name}.compare: '{e}' is not one of the experiment's estimators")
        entry = {}
        levels = {"at_highest_noise": max(exp["noise_levels"])}
        if default_noise_level is not None and default_noise_level in exp["noise_levels"]:
            levels = {"at_default": default_noise_level, **levels}
        for key, nl in levels.items():
            tag = noise_tag(nl)
            diffs = [cells[(variant, tag, int(nmax[1:]), s)]["metrics"]["overall"]["r2"]
                     - cells[(ref, tag, int(nmax[1:]), s)]["metrics"]["overall"]["r2"] for s in range(int(exp["seeds"]))]
            r2v, r2r = out[variant][f"nl{tag}"][nmax]["r2"], out[ref][f"nl{tag}"][nmax]["r2"]
            entry[key] = {"noise_level": float(nl), "size": int(nmax[1:]), "r2": r2v, "r2_reference": r2r,
                          "r2_diff": float(np.mean(diffs)), "r2_diff_ci": t_interval(diffs, confidence),
                          "r2_rel_percent": 100.0 * (r2v - r2r) / abs(r2r) if r2r else None}
        comparisons[variant] = {"reference": ref, **entry}
    metrics = {"experiment": name, "track": exp.get("track"), "confidence": confidence, "var_prior": var_prior,
               "n_test": n_test, "noise_levels": [float(v) for v in exp["noise_levels"]],
               "sizes": [int(v) for v in exp["sizes"]], "seeds": list(range(int(exp["seeds"]))),
               "n_cells": len(expected), "n_seeds": int(exp["seeds"]), "size_min": min(int(v) for v in exp["sizes"]),
               "size_max": max(int(v) for v in exp["sizes"]), "noise_min": float(min(exp["noise_levels"])),
               "noise_max": float(max(exp["noise_levels"])),
               "default_noise_level": default_noise_level,
               "estimators": {e: labels[e] for e in exp["estimators"]}, "cells": out, "best": best,
               "at_default": at, "at_lowest_noise": at_lowest, "comparisons": comparisons}
    return metrics, {"fitted": fitted, "snr_bins": bins}, rows


def run_cell(p, train_path, val_path, test_path, grid_path, model_dir, threads=1, provenance=None):
    """Train one cell's estimator, save its model folder, reload it and score it on the test set.

    ``p``: the cell's parameter block (:func:`pfslogg.workflow.rule_params` of rule ``run_cell``).
    The evaluation uses the model as reloaded from ``model_dir``, so what is scored is what is kept.
    Returns ``(metrics, details, predictions)`` for the results JSON and the predictions table.
    """
    import time

    from .data.dataset import SpectraSet, check_same_wave
    from .data.views import NoisyView
    from .estimators import FitContext, load, make_estimator
    from .evaluation import evaluate, param_edges, prior_variance

    t0 = time.perf_counter()
    nl = float(p["noise_level"])
    train_set, val_set, test_set = SpectraSet(train_path), SpectraSet(val_path), SpectraSet(test_path)
    for ds in (val_set, test_set):
        if len(ds.wave) != len(train_set.wave):
            raise InputError(f"{ds.path}: {len(ds.wave)} pixels, the training set {train_path} has {len(train_set.wave)}")
    train = NoisyView(train_set, nl, n=p["size"], rng_seed=p["seed"])
    val = NoisyView(val_set, nl, noise_seed=p["val_noise_seed"])
    test = NoisyView(test_set, nl, noise_seed=p["test_noise_seed"])
    est = make_estimator(p["class"], p["hyper"], random_state=p["seed"], where=f"estimators.{p['estimator']}.hyper")
    if grid_path is not None:
        from .data.gridio import read_grid
        check_same_wave(train_set.wave, read_grid(grid_path, fields=()).wave, train_path, grid_path)
    checkpoint = p["checkpoint"] if "checkpoint" in p else None   # neural cells (rule run_neural_cell) only
    t1 = time.perf_counter()
    est.fit(train, val, FitContext(grid=grid_path, ranges=p["params"], threads=threads, checkpoint_dir=checkpoint,
                                   where=f"estimators.{p['estimator']}.hyper"))
    t2 = time.perf_counter()
    est.save(model_dir, provenance=provenance)
    if checkpoint:   # the model folder is kept; the checkpoint was only for a resume
        import shutil
        shutil.rmtree(checkpoint, ignore_errors=True)
    est = load(model_dir)
    ev = p["evaluation"]
    var = prior_variance(*p["params"]["log_g"])
    scores, predictions = evaluate(est, test, var, ev["snr_bins"], n_resamples=ev["bootstrap"],
                                   confidence=ev["confidence"], seed=p["seed_index"],
                                   param_edges=param_edges(ev.get("param_bins"), p["params"]))
    t3 = time.perf_counter()
    metrics = {"estimator": p["estimator"], "class": p["class"], "label": est.label, "noise_level": nl,
               "size": int(p["size"]), "seed": int(p["seed_index"]), "n_test": int(test.n), "var_prior": var,
               "confidence": ev["confidence"], **scores}
    details = {"fitted": est.fitted(),
               "timing": {"load_s": t1 - t0, "fit_s": t2 - t1, "save_load_evaluate_s": t3 - t2}}
    return metrics, details, predictions
