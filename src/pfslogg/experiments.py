"""Experiment grids: estimator variants x noise levels x training sizes x seeds (DESIGN.md section 5).

An experiment (config ``experiments.<name>``) lists estimator variants (config ``estimators``),
noise levels, training sizes and a number of seeds. Each combination is a *cell*: one job that
trains the variant on the first ``size`` training spectra at that noise level (fresh noise per
batch, generator seeded by the cell's seed) and scores it on the test set at the same noise level
(the one fixed test noise, scaled); a variant with ``train_source: simulator`` trains instead on
``size`` spectra simulated from the instrument grid when read, stars of its own (:func:`run_cell`).
A cell belongs to no experiment: two experiments that share a cell share its job and its file.
:func:`aggregate` turns the cells of an experiment into one table (CSV, a row per cell) and one JSON
(means over seeds with intervals, the best estimator per noise level and size, and each variant of
the experiment's ``compare`` against its reference) that figures, tables and macros read. A
comparison is paired on the test spectra: it reads the predictions tables of both cells
(:func:`compared_cells`), averages each spectrum's squared error over seeds and bootstraps the
spectra with one set of resampling weights for both models (:class:`pfslogg.evaluation.Paired`, as
Track B does), so that it has an interval with one seed too. The JSON also says, for every
hyper-parameter a cell's fit searched over, whether the value it chose is the smallest or the
largest searched (:func:`search_edges`): an optimum at the edge of its grid means that the search
was truncated.
"""

import math
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


# hyper-parameter values with words of their own: ('loss', 'l1') -> 'absolute-error loss'
VALUE_WORDS = {("loss", "l1"): "absolute-error loss", ("loss", "beta_nll"): "beta-NLL loss",
               ("loss", "mdn"): "mixture-density loss", ("loss", "mse"): "squared-error loss"}


def _hyper_words(key, value):
    """One hyper-parameter in words: ('kernel_size', 21) -> 'kernel size 21', ('loss', 'l1') ->
    'absolute-error loss' (:data:`VALUE_WORDS`), ('standardize', True) -> 'standardize', a list as its values
    joined by '/'."""
    if isinstance(value, str) and (key, value) in VALUE_WORDS:
        return VALUE_WORDS[key, value]
    key = str(key).replace("_", " ")
    if value is True:
        return key
    if value is False or value is None:
        return f"no {key}"
    if isinstance(value, (list, tuple)):
        return f"{key} " + "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, dict):
        return f"{key} " + ", ".join(_hyper_words(k, v) for k, v in value.items())
    return f"{key} " + (f"{value:g}" if isinstance(value, float) else str(value).replace("_", " "))


def cell_variant(doc):
    """What :func:`variant_labels` needs of a cell results document: its class, its class's label and
    the hyper-parameters its rule was given (with the sigma it saw and, for a variant trained on the
    simulator, its train_source, which tell variants apart too)."""
    m = doc["metrics"]
    params = (doc.get("provenance") or {}).get("params") or {}
    hyper = params.get("hyper")
    if params.get("sigma") is not None:
        hyper = {**(hyper or {}), "sigma": params["sigma"]}
    if params.get("train_source") is not None:
        hyper = {**(hyper or {}), "train_source": params["train_source"]}
        mag = ((params.get("simulator") or {}).get("noise") or {}).get("mag")
        if mag is not None:   # the magnitudes of the simulated stars (train_mag, or the training split's)
            hyper["train_mag"] = mag
    return {"class": m.get("class"), "label": m.get("label") or m.get("estimator"), "hyper": hyper}


def variant_labels(variants, compare=None):
    """``{name: label}`` that tells the variants of one experiment apart in words, never by their ids.

    ``variants``: ``{name: {"label": its class's label, "class": class id, "hyper": its hyper-parameters
    or None}}`` in order; ``compare``: ``{variant: reference}``. A variant whose label no other variant
    shares keeps it ("ViT"). Otherwise its label adds, after a comma, the hyper-parameters in which it
    differs from its base -- its reference in ``compare`` when of the same class, else the first variant
    of its class that is a reference, else the first of its class: "ViT, patch 32", "CNN, kernel size 21".
    Where that still leaves two labels alike (no hyper-parameters known), the variant's id follows in words."""
    compare = compare or {}
    counts = {}
    for v in variants.values():
        counts[v["label"]] = counts.get(v["label"], 0) + 1
    refs = set(compare.values())
    out = {}
    for name, v in variants.items():
        if counts[v["label"]] == 1:
            out[name] = v["label"]
            continue
        same = [n for n, w in variants.items() if w.get("class") == v.get("class")]
        base = compare.get(name) if compare.get(name) in same else next((n for n in same if n in refs), same[0])
        mine, theirs = v.get("hyper") or {}, variants[base].get("hyper") or {}
        diff = [_hyper_words(k, mine.get(k)) for k in list(dict.fromkeys([*mine, *theirs]))
                if mine.get(k) != theirs.get(k)]
        out[name] = ", ".join([v["label"], *diff])
    seen = {}
    for name, label in out.items():
        seen.setdefault(label, []).append(name)
    for label, names in seen.items():
        if len(names) > 1:
            for name in names:
                out[name] = f"{label} ({name.replace('_', ' ')})"
    return out


def comparison_groups(names, comparisons):
    """``([(reference, [its variants])], rest)``: the estimators ``names`` (in their order) grouped as an
    aggregate's ``comparisons`` ({variant: {"reference": ...}}) pair them -- each reference followed by the
    variants compared with it (a variant that is a reference too heads its own group as well) -- and the
    names in no comparison (what the ablation table and figure show)."""
    ref_of = {v: c.get("reference") for v, c in (comparisons or {}).items() if isinstance(c, dict)}
    refs = [e for e in names if e in ref_of.values()]
    groups = [(r, [e for e in names if ref_of.get(e) == r]) for r in refs]
    shown = {e for r, members in groups for e in (r, *members)}
    return groups, [e for e in names if e not in shown]


def comparison_levels(exp, default_noise_level=None):
    """``{key: noise level}`` at which the pairs of ``compare`` are compared (at the largest size):
    ``at_default`` (when the experiment has the default level) and ``at_highest_noise``; with
    ``compare_at: all``, every noise level of the experiment instead, as ``at_nl<tag>`` in increasing
    order (``at_nl0``, ``at_nl0p1``, ...)."""
    if exp.get("compare_at") == "all":
        return {f"at_nl{noise_tag(v)}": float(v) for v in sorted(exp["noise_levels"])}
    levels = {"at_highest_noise": max(exp["noise_levels"])}
    if default_noise_level is not None and default_noise_level in exp["noise_levels"]:
        levels = {"at_default": default_noise_level, **levels}
    return levels


def compared_cells(exp, default_noise_level=None):
    """The cells whose predictions tables the comparisons read: each variant of ``compare`` and its
    reference at every level of :func:`comparison_levels`, the largest size, every seed; in the order of
    :func:`experiment_cells`."""
    names = {e for pair in compare_pairs(exp).items() for e in pair}
    tags = {noise_tag(nl) for nl in comparison_levels(exp, default_noise_level).values()}
    size = max(int(n) for n in exp["sizes"])
    return [c for c in experiment_cells(exp) if c[0] in names and c[1] in tags and c[2] == size]


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
EDGES = ("lowest", "highest", "inside")


def grid_edge(searched, chosen, where="search"):
    """Where ``chosen`` lies among the values ``searched``: "lowest" or "highest" where it is the smallest
    or the largest of two or more distinct values, "inside" between them; None where fewer than two
    distinct values were searched (nothing was chosen). InputError where ``chosen`` is not one of them."""
    values = sorted({float(v) for v in searched})
    if len(values) < 2:
        return None
    c = float(chosen)
    hit = [i for i, v in enumerate(values) if math.isclose(c, v, rel_tol=1e-9, abs_tol=1e-12)]
    if not hit:
        raise InputError(f"{where}: the chosen value {chosen!r} is not one of the values searched {list(searched)}")
    return EDGES[0] if hit[0] == 0 else EDGES[1] if hit[0] == len(values) - 1 else EDGES[2]


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def search_edges(fitted, where="search"):
    """Where each hyper-parameter that a cell's fits searched over landed, from ``fitted`` (the fitted
    dict of each seed: the chosen value under its name, the values searched under ``search.<name>``;
    the scores there, such as ``val_r2``, have no chosen value and are skipped). Returns {"n_seeds",
    "lowest": {name: smallest value searched}, "highest": {name: largest}, "n_at_lowest": {name: seeds
    that chose the smallest}, "n_at_highest": {...}, "edge": {name: "lowest", "highest", "both" (the
    seeds differ) or "inside"}}, or None where no seed searched over two values or more. Keyed by the
    statistic first, so that each value's macro takes its hyper-parameter's precision rule."""
    per = {}
    for s, f in enumerate(fitted):
        search = f.get("search") if isinstance(f, dict) else None
        if not isinstance(search, dict):
            continue
        for name, values in search.items():
            chosen = f.get(name)
            if not (isinstance(values, list) and values and all(map(_number, values)) and _number(chosen)):
                continue
            edge = grid_edge(values, chosen, f"{where}, seed {s}: {name}")
            if edge is not None:
                per.setdefault(name, []).append((edge, min(values), max(values)))
    if not per:
        return None
    out = {"n_seeds": len(fitted), "lowest": {}, "highest": {}, "n_at_lowest": {}, "n_at_highest": {}, "edge": {}}
    for name, rows in per.items():
        lo, hi = sum(r[0] == "lowest" for r in rows), sum(r[0] == "highest" for r in rows)
        out["lowest"][name], out["highest"][name] = min(r[1] for r in rows), max(r[2] for r in rows)
        out["n_at_lowest"][name], out["n_at_highest"][name] = lo, hi
        out["edge"][name] = "both" if lo and hi else "lowest" if lo else "highest" if hi else "inside"
    return out


def aggregate(name, exp, cells, confidence, default_noise_level=None, predictions=None, n_boot=1000, seed=0):
    """Aggregate the cells of experiment ``name``.

    ``cells``: {(estimator, noise tag, size, seed index): cell results document (kind "estimator")};
    ``predictions``: {cell: (file name, predictions table)} of at least :func:`compared_cells` (what the
    comparisons read); ``n_boot``, ``seed``: the paired bootstrap's resamples and seed.
    Returns ``(metrics, details, rows)``: the aggregate's metrics and details (format in
    /tmp/spec_frame.md, kept in the docstring of pfslogg.workflow) and the CSV rows (one per cell).
    """
    expected = experiment_cells(exp)
    missing = [c for c in expected if c not in cells]
    if missing:
        raise InputError(f"experiments.{name}: results of cell {missing[0]} missing")
    rows, out, fitted, bins, labels, searches = [], {}, {}, {}, {}, {}
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
                labels[e] = cell_variant(docs[0])
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
                if all("labels" in m for m in ms):   # a multi-label model: the other parameters' R^2, mean over seeds
                    cell["labels"] = {k: {"r2": float(np.mean([m["labels"][k]["overall"]["r2"] for m in ms])),
                                          "rmse": float(np.mean([m["labels"][k]["overall"]["rmse"] for m in ms]))}
                                      for k in ms[0]["labels"]}
                out.setdefault(e, {}).setdefault(f"nl{tag}", {})[f"n{int(n)}"] = cell
                fitted.setdefault(e, {}).setdefault(f"nl{tag}", {})[f"n{int(n)}"] = \
                    [d.get("details", {}).get("fitted", {}) for d in docs]
                edges = search_edges(fitted[e][f"nl{tag}"][f"n{int(n)}"],
                                     f"experiments.{name}: cell ({e}, {tag}, {n}) details.fitted")
                if edges is not None:
                    searches.setdefault(e, {}).setdefault(f"nl{tag}", {})[f"n{int(n)}"] = edges
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
    comparisons = _compare(name, exp, cells, out, predictions or {}, confidence, default_noise_level, n_boot,
                           seed)
    training = convergence(fitted)
    named = variant_labels({e: labels[e] for e in exp["estimators"]}, compare_pairs(exp))
    metrics = {"experiment": name, "track": exp.get("track"), "confidence": confidence, "var_prior": var_prior,
               "n_test": n_test, "noise_levels": [float(v) for v in exp["noise_levels"]],
               "sizes": [int(v) for v in exp["sizes"]], "seeds": list(range(int(exp["seeds"]))),
               "n_cells": len(expected), "n_seeds": int(exp["seeds"]), "size_min": min(int(v) for v in exp["sizes"]),
               "size_max": max(int(v) for v in exp["sizes"]), "noise_min": float(min(exp["noise_levels"])),
               "noise_max": float(max(exp["noise_levels"])),
               "default_noise_level": default_noise_level,
               "estimators": {e: {"class": labels[e]["class"], "label": named[e]} for e in exp["estimators"]},
               "cells": out, "best": best,
               "at_default": at, "at_lowest_noise": at_lowest, "comparisons": comparisons}
    if searches:   # {estimator: {noise tag: {size key: search_edges}}}: where each search's choice landed
        metrics["searches"] = searches
    if training:
        metrics["training"] = training
    return metrics, {"fitted": fitted, "snr_bins": bins}, rows


def convergence(fitted):
    """How the iterative fits of an experiment ended (networks: what the engine recorded), or None.

    ``fitted``: {estimator: {noise tag: {size key: [fitted dict per seed]}}} as :func:`aggregate`
    collects it. A fit counts when it recorded ``epochs_run`` and ``best_epoch``. It *ended while still
    improving* when its best validation epoch is the last one it ran: early stopping never fired, so
    the epoch cap ended it and more epochs may have helped; its R^2 is then a lower bound on what the
    architecture reaches with that data. ``last_gain`` is the validation R^2 gained in that last epoch
    (median over those fits). Returns {"n_fits", "n_still_improving", "still_improving": [estimator,
    ...], "last_gain_median", "estimators": {estimator: {"n_fits", "n_still_improving"}}}.
    """
    per, gains = {}, []
    for e, by_level in fitted.items():
        for by_size in by_level.values():
            for fits in by_size.values():
                for f in fits:
                    if not (isinstance(f, dict) and f.get("epochs_run") and f.get("best_epoch")):
                        continue
                    c = per.setdefault(e, {"n_fits": 0, "n_still_improving": 0})
                    c["n_fits"] += 1
                    if int(f["best_epoch"]) >= int(f["epochs_run"]):
                        c["n_still_improving"] += 1
                        r2 = (f.get("history") or {}).get("val_r2") or []
                        if len(r2) >= 2 and None not in r2[-2:]:
                            gains.append(float(r2[-1]) - float(r2[-2]))
    if not per:
        return None
    return {"n_fits": sum(c["n_fits"] for c in per.values()),
            "n_still_improving": sum(c["n_still_improving"] for c in per.values()),
            "still_improving": [e for e, c in per.items() if c["n_still_improving"]],
            "last_gain_median": float(np.median(gains)) if gains else None,
            "estimators": per}


def _compare(name, exp, cells, out, predictions, confidence, default_noise_level, n_boot, seed):
    """``{variant: comparison}`` of the pairs of ``compare`` at each level of :func:`comparison_levels`
    (largest size): R^2 of both (means over seeds, as in ``out``), their difference with its paired
    bootstrap interval over the test spectra (:class:`pfslogg.evaluation.Paired`, one set of resampling
    weights for every comparison; each spectrum's squared error averaged over seeds first), the word it
    earns (:func:`pfslogg.evaluation.verdict`) and, with two seeds or more, the t interval over seeds of
    the per-seed differences (``r2_diff_ci_seeds``)."""
    from .evaluation import Paired, boot_weights, same_test_rows, squared_errors, verdict

    pairs = compare_pairs(exp)
    for variant, ref in pairs.items():
        for e in (variant, ref):
            if e not in exp["estimators"]:
                raise InputError(f"experiments.{name}.compare: '{e}' is not one of the experiment's estimators")
    if not pairs:
        return {}
    wanted = compared_cells(exp, default_noise_level)
    missing = [c for c in wanted if c not in predictions]
    if missing:
        raise InputError(f"experiments.{name}: the predictions table of cell {missing[0]} is missing (a comparison "
                         "is paired on the test spectra)")
    first, frame0 = predictions[wanted[0]]
    for c in wanted:
        file, frame = predictions[c]
        if not same_test_rows(frame, frame0):
            raise InputError(f"experiments.{name}: {file} holds other test rows than {first} (or in another "
                             "order): a comparison pairs the same test spectra")
        doc = cells[c]["metrics"]
        r2 = 1.0 - float(squared_errors([frame]).mean()) / doc["var_prior"]
        if abs(r2 - doc["overall"]["r2"]) > 1e-3:
            raise InputError(f"experiments.{name}: {file} gives R^2 = {r2:.4f}, the results of its cell "
                             f"{doc['overall']['r2']:.4f}: not that cell's predictions")
    var = float(cells[wanted[0]]["metrics"]["var_prior"])
    paired = Paired(boot_weights(len(frame0), n_boot, seed), var, confidence)
    seeds, size = range(int(exp["seeds"])), max(int(n) for n in exp["sizes"])
    interval = (f"paired bootstrap over {len(frame0)} test spectra, errors averaged over {len(seeds)} "
                f"seed{'s' if len(seeds) != 1 else ''}")
    comparisons = {}
    for variant, ref in pairs.items():
        entry = {"reference": ref, "interval": interval}
        for key, nl in comparison_levels(exp, default_noise_level).items():
            tag = noise_tag(nl)
            err = {e: squared_errors([predictions[(e, tag, size, s)][1] for s in seeds]) for e in (variant, ref)}
            (_, reps), (_, ref_reps) = paired.r2(err[variant]), paired.r2(err[ref])
            r2v, r2r = out[variant][f"nl{tag}"][f"n{size}"]["r2"], out[ref][f"nl{tag}"][f"n{size}"]["r2"]
            ci = paired.diff(r2v, reps, r2r, ref_reps)["diff_ci"]
            diffs = [cells[(variant, tag, size, s)]["metrics"]["overall"]["r2"]
                     - cells[(ref, tag, size, s)]["metrics"]["overall"]["r2"] for s in seeds]
            entry[key] = {"noise_level": float(nl), "size": size, "r2": r2v, "r2_reference": r2r,
                          "r2_diff": r2v - r2r, "r2_diff_ci": ci, "verdict": verdict(ci),
                          "r2_diff_ci_seeds": t_interval(diffs, confidence) if len(diffs) > 1 else None,
                          "r2_rel_percent": 100.0 * (r2v - r2r) / abs(r2r) if r2r else None}
            if exp.get("compare_by_snr"):
                entry[key]["snr_bins"] = _compare_by_snr(err[variant], err[ref], frame0, cells[wanted[0]]["metrics"],
                                                         paired, var)
        comparisons[variant] = entry
    return comparisons


def _compare_by_snr(err, err_ref, frame, doc, paired, var, min_count=10):
    """Per SNR bin of the cells (``doc["snr_bins"]``' edges; the spectra's SNR from ``frame``) the paired
    comparison of two models' squared errors per spectrum ``err`` and ``err_ref`` (means over seeds): R^2 of
    both on the spectra of the bin, the difference, its paired bootstrap interval (the same resampling
    weights, restricted to the bin's spectra) and its verdict; bins with fewer than ``min_count`` spectra
    left out. R^2 against the prior variance ``var``, as every R^2 of a cell."""
    from .evaluation import Paired, verdict

    snr = frame["snr"].to_numpy(float)
    out = []
    for b in doc["snr_bins"]:
        rows = np.flatnonzero((snr >= b["lo"]) & (snr < b["hi"]))
        if len(rows) < min_count:
            continue
        sub = Paired(paired.w, var, paired.conf, rows=rows)
        (r2v, reps), (r2r, ref_reps) = sub.r2(err), sub.r2(err_ref)
        ci = sub.diff(r2v, reps, r2r, ref_reps)["diff_ci"]
        out.append({"lo": float(b["lo"]), "hi": float(b["hi"]), "n": int(len(rows)), "r2": r2v, "r2_reference": r2r,
                    "r2_diff": r2v - r2r, "r2_diff_ci": ci, "verdict": verdict(ci)})
    return out


def _cell_label(p, est):
    """A cell's label: its variant's own words (``label`` in the block only where the variant has one), else
    the model's."""
    return p["label"] if "label" in p else est.label


def _score_transform(p, est, test, t0, t1, t2):
    """(metrics, details, per-spectrum table) of a transform's cell: wMAE and MSE against the clean test
    spectra at each of its strengths, overall, per SNR bin and per pixel class (:mod:`pfslogg.denoising`)."""
    import time

    from .denoising import evaluate_transform

    ev, d = p["evaluation"], p["denoising"]
    edges = ev["snr_bins"]
    metrics, table = evaluate_transform(est, test, list(getattr(est, "strengths", None) or [est.strength]),
                                        [[a, b] for a, b in zip(edges, edges[1:])], d["sigma_floor"],
                                        ev["bootstrap"], ev["confidence"], p["seed_index"])
    t3 = time.perf_counter()
    metrics = {"estimator": p["estimator"], "class": p["class"], "label": _cell_label(p, est), "kind": "transform",
               "noise_level": float(p["noise_level"]), "size": int(p["size"]), "seed": int(p["seed_index"]),
               "sigma": p.get("sigma", "estimated"),
               **({"train_source": p["train_source"]} if "train_source" in p else {}), "n_test": int(test.n), **metrics}
    details = {"fitted": est.fitted(), "timing": {"load_s": t1 - t0, "fit_s": t2 - t1, "save_load_evaluate_s": t3 - t2}}
    return metrics, details, table


def run_cell(p, train_path, val_path, test_path, grid_path, model_dir, threads=1, provenance=None):
    """Train one cell's estimator, save its model folder, reload it and score it on the test set.

    ``p``: the cell's parameter block (:func:`pfslogg.workflow.rule_params` of rule ``run_cell``).
    The evaluation uses the model as reloaded from ``model_dir``, so what is scored is what is kept.
    Returns ``(metrics, details, predictions)`` for the results JSON and the predictions table.

    A cell of a variant with ``train_source: simulator`` (``p["train_source"]``) trains on ``size``
    spectra simulated from the instrument grid ``grid_path`` when read
    (:class:`~pfslogg.data.simview.SimulatorView` with ``p["simulator"]``: the stars' own seed, the
    exposure model and the training split's observing conditions, the chunk size), with the fresh noise
    a file cell's training view has (generator seeded by the cell's seed); ``train_path`` is not read
    (the workflow passes the grid there). Validation and test are the files, as for every cell.
    """
    import time

    from .config import TRAIN_SOURCES
    from .data.dataset import SpectraSet, check_same_wave
    from .data.views import NoisyView
    from .estimators import FitContext, load, make_estimator
    from .evaluation import evaluate, param_edges, prior_variance

    t0 = time.perf_counter()
    nl = float(p["noise_level"])
    source = p["train_source"] if "train_source" in p else "file"   # the key is there for simulator cells only
    if source not in TRAIN_SOURCES:
        raise InputError(f"estimators.{p['estimator']}.train_source: expected one of {', '.join(TRAIN_SOURCES)}, "
                         f"got {source!r}")
    sigma = p.get("sigma", "estimated")   # noise.sigma: which sigma the estimator sees (NoisyView)
    if source == "simulator":
        from .data.simview import SimulatorView

        if grid_path is None:
            raise InputError(f"estimators.{p['estimator']}.train_source: simulator: the cell needs the instrument "
                             "grid (--grid) to simulate its training spectra")
        from .estimators import REGISTRY

        cls = REGISTRY[p["class"]]
        rows = cls.simulated_rows(p["hyper"] or {}, p["size"])   # a calibration may ask for more
        # Fresh noise from the cell's seed is the noise stream every model of that seed trained on; stars a class
        # calibrates on (simulator_stars: "calibration") get a stream of their own, keyed by their star seed too:
        # on the training stream's noise vectors an MLP's errors are smaller (2026-12-06: a conformal factor set
        # there covered 0.676 of those stars, 0.661-0.665 of the same stars under other noise)
        rng_seed = p["seed"] if cls.simulator_stars == "simulator" \
            else [int(p["seed"]), int(p["simulator"]["seed"])]
        train = SimulatorView(grid_path, rows, p["params"], noise_level=nl, rng_seed=rng_seed, sigma=sigma,
                              **p["simulator"])
        train_wave, train_from = train.wave, f"the training spectra simulated from {grid_path}"
        val_set, test_set = SpectraSet(val_path), SpectraSet(test_path)
    else:
        train_set, val_set, test_set = SpectraSet(train_path), SpectraSet(val_path), SpectraSet(test_path)
        train_wave, train_from = train_set.wave, f"the training set {train_path}"
    for ds in (val_set, test_set):
        if len(ds.wave) != len(train_wave):
            raise InputError(f"{ds.path}: {len(ds.wave)} pixels, {train_from} has {len(train_wave)}")
    if source == "file":
        train = NoisyView(train_set, nl, n=p["size"], rng_seed=p["seed"], sigma=sigma)
    val = NoisyView(val_set, nl, noise_seed=p["val_noise_seed"], sigma=sigma)
    test = NoisyView(test_set, nl, noise_seed=p["test_noise_seed"], sigma=sigma)
    est = make_estimator(p["class"], p["hyper"], random_state=p["seed"], where=f"estimators.{p['estimator']}.hyper",
                         kinds=("estimator", "transform"))
    ups = p["upstream"] if "upstream" in p else {}   # cells with upstream models only (rule_params)
    upstream = {role: load(folder) for role, folder in ups.items()}   # trained by their own cells
    if grid_path is not None and source == "file":
        from .data.gridio import read_grid
        check_same_wave(train_set.wave, read_grid(grid_path, fields=()).wave, train_path, grid_path)
    elif source == "simulator":   # the training spectra are on the grid's pixels: the val/test sets must be too
        check_same_wave(val_set.wave, train.wave, val_path, grid_path)
    checkpoint = p["checkpoint"] if "checkpoint" in p else None   # neural cells (rule run_neural_cell) only
    t1 = time.perf_counter()
    est.fit(train, val, FitContext(grid=grid_path, ranges=p["params"], threads=threads, checkpoint_dir=checkpoint,
                                   upstream=upstream, where=f"estimators.{p['estimator']}.hyper"))
    t2 = time.perf_counter()
    est.save(model_dir, provenance=provenance)
    if checkpoint:   # the model folder is kept; the checkpoint was only for a resume
        import shutil
        shutil.rmtree(checkpoint, ignore_errors=True)
    est = load(model_dir)
    ev = p["evaluation"]
    if est.kind == "transform":   # a denoiser: scored against the clean spectra by wMAE and MSE, never by R^2
        return _score_transform(p, est, test, t0, t1, t2)
    var = prior_variance(*p["params"]["log_g"])
    scores, predictions = evaluate(est, test, var, ev["snr_bins"], n_resamples=ev["bootstrap"],
                                   confidence=ev["confidence"], seed=p["seed_index"],
                                   param_edges=param_edges(ev.get("param_bins"), p["params"]), ranges=p["params"])
    t3 = time.perf_counter()
    metrics = {"estimator": p["estimator"], "class": p["class"], "label": _cell_label(p, est), "noise_level": nl,
               "size": int(p["size"]), "seed": int(p["seed_index"]), "sigma": sigma,
               **({"train_source": source} if source != "file" else {}), "n_test": int(test.n),
               "var_prior": var, "confidence": ev["confidence"], **scores}
    details = {"fitted": est.fitted(),
               "timing": {"load_s": t1 - t0, "fit_s": t2 - t1, "save_load_evaluate_s": t3 - t2}}
    return metrics, details, predictions
