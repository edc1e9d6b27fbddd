"""Track B's analysis: do mixtures of experts beat one global model, and how much of the oracle's gain
does a deployable gate keep?

:func:`summarize_mixtures` reads the cells of the mixture experiment -- each cell's results and its
predictions table (:func:`pfslogg.evaluation.evaluate`: the mixture's own prediction, every routing
of the same experts, the oracle, the true and routed bins) -- and the Bayes ceiling of the same test
spectra at each noise level, and reports, for every mixture (config ``experiments.moe.compare``:
mixture -> the global model of the same family) at every noise level and training size:

* R^2 of the global model, of the mixture's own prediction, of the oracle routing and of every
  deployable routing, each with its interval and its paired difference to the global model;
* the oracle-gain retention ``rho = (R^2_gate - R^2_global) / (R^2_oracle - R^2_global)`` of every
  routing (undefined -- flagged -- where the oracle's gain is not above zero beyond its interval);
* the *bar*: the best global model of config ``moe.bar`` (LightGBM, the MLP, the CNN); the best
  deployable mixture against it (the thesis: does any beat it beyond the interval?);
* the share of the oracle's gain that binning one axis alone keeps ([M/H] vs T_eff vs both), and the
  gain of continuous conditioning over that of the mixture with the same global model and bins;
* for the shown mixture (``moe.figure_variant``): R^2 per expert bin of the global model, oracle,
  mixture and Bayes ceiling on that bin's rows; spectra per bin (training, with the overlap margin,
  and test); the gates' accuracy, confusion and estimates outside every bin; the physics windows'
  importance.

Every comparison is paired: the same test spectra (checked row by row) under the same fixed noise, one
set of bootstrap resamples of the spectra shared by every statistic, each model's squared error
averaged over its seeds first (so an interval is that of the mean over seeds). A deployable routing
above the Bayes ceiling beyond the intervals is a bug and is reported in ``violations`` (the rule fails).
"""

import numpy as np

from .errors import InputError
from .evaluation import Paired, boot_weights, same_test_rows, squared_errors

# What the original study reported for its mixtures (REFERENCE.md; issue 15) -- claims to test.
ORIGINAL = {"ridge_moe_r2": 0.93, "ridge_global_r2": 0.86, "noise_level": 0.2, "n_experts": 9,
            "mh_share_percent": 68.7, "rho_soft": 1.00, "rho_hard": 0.72, "conditioning_share_percent": 80.0,
            "oracle_moe_r2_noise1": 0.62, "vit_r2_noise1": 0.71}


def summarize_mixtures(p, cells, bayes):
    """The Track B summary: ``(metrics, details)``.

    ``p``: the rule's parameters (compare, bar, figure_variant, confidence, bootstrap, seed);
    ``cells``: {(estimator, noise tag, size, seed): (results document, predictions DataFrame)};
    ``bayes``: {noise tag: (results document, per-spectrum DataFrame)}.
    """
    compare, conf = p["compare"], float(p["confidence"])
    if not cells:
        raise InputError("summarize_moe: no cells")
    first_key = next(iter(cells))
    first = cells[first_key][1]
    y = first["log_g"].to_numpy(float)
    var = float(cells[first_key][0]["metrics"]["var_prior"])
    for key, (_, frame) in cells.items():
        if not same_test_rows(frame, first):
            raise InputError(f"summarize_moe: cell {key} was scored on other test rows than {first_key}: every "
                             "model must be compared on the same spectra")
    for tag, (_, frame) in bayes.items():
        if len(frame) != len(y) or not np.allclose(frame["log_g"].to_numpy(float), y):
            raise InputError(f"summarize_moe: the Bayes ceiling at noise {tag} holds other test rows than the cells")
    paired = Paired(boot_weights(len(y), p["bootstrap"], p["seed"]), var, conf)
    grid = _Grid(cells)
    bayes_e = {t: (f["post_mean"].to_numpy(float) - y) ** 2 for t, (_, f) in bayes.items()}
    variants, bars, thesis, shares, conditioning, violations = {}, {}, {}, {}, {}, []
    for tag in grid.levels:
        for n in grid.sizes(tag):
            key, level = f"n{n}", f"nl{tag}"
            bar = _bar(p["bar"], tag, n, grid, paired)
            if bar:
                bars.setdefault(level, {})[key] = bar["summary"]
            entries = {}
            for v, g in compare.items():
                if grid.frames(v, tag, n) is None or grid.frames(g, tag, n) is None:
                    continue
                entries[v] = entry = _variant_entry(grid, v, g, tag, n, paired)
                variants.setdefault(v, {"label": grid.metrics(v, tag, n)["label"],
                                        "class": grid.metrics(v, tag, n)["class"], "global": g,
                                        "global_label": grid.metrics(g, tag, n)["label"],
                                        "axes": grid.axes(v, tag, n), "cells": {}})
                variants[v]["cells"].setdefault(level, {})[key] = entry["summary"]
                if tag in bayes:
                    violations += _above_ceiling(v, tag, n, entry, bayes[tag][0], paired)
            if entries and bar:
                thesis.setdefault(level, {})[key] = _thesis(entries, bar, paired)
            found = _shares(entries, grid, tag, n, paired)
            if found:
                shares.setdefault(level, {})[key] = found
            found = _conditioning(entries, grid, tag, n, paired)
            if found:
                conditioning.setdefault(level, {})[key] = found
    show = p["figure_variant"]
    shown, details = {}, {}
    if show in compare:
        shown, details = _shown(show, compare[show], grid, bayes, bayes_e, paired)
    at = {}
    default = p.get("default_noise_level")
    for name, tag in (("at_default", _tag_of(default, grid.levels)), ("at_lowest", grid.levels[0])):
        if tag is None:
            continue
        key = f"n{max(grid.sizes(tag))}"
        lv = f"nl{tag}"
        at[name] = {"noise_level": _level(tag), "size": int(key[1:]),
                    "variants": {v: e["cells"][lv][key] for v, e in variants.items() if key in e["cells"].get(lv, {})},
                    **{k: src[lv][key] for k, src in (("bar", bars), ("thesis", thesis), ("shares", shares),
                                                        ("conditioning", conditioning)) if key in src.get(lv, {})}}
        if tag in bayes:
            at[name]["bayes"] = {k: bayes[tag][0]["metrics"]["overall"][k] for k in ("r2", "r2_ci")}
    metrics = {"experiment": p.get("experiment", "moe"), "confidence": conf, "n_test": int(len(y)), "var_prior": var,
               "n_bootstrap": int(p["bootstrap"]), "noise_levels": [_level(t) for t in grid.levels],
               "variants": variants, "bar": bars, "thesis": thesis, "shares": shares, "conditioning": conditioning,
               "bayes": {f"nl{t}": {k: d["metrics"]["overall"][k] for k in ("r2", "r2_ci")} for t, (d, _) in bayes.items()},
               "shown_variant": show, "shown": shown, **at, "n_violations": len(violations), "violations": violations, "original": ORIGINAL}
    return metrics, details


def _tag_of(level, tags):
    """The noise tag among ``tags`` of ``level`` (None when absent)."""
    if level is None:
        return None
    return next((t for t in tags if abs(_level(t) - float(level)) < 1e-12), None)


def _level(tag):
    return float(tag.replace("p", "."))


class _Grid:
    """The cells by (estimator, noise tag, size), seeds in order."""

    def __init__(self, cells):
        self.by = {}
        for (e, tag, n, s), value in cells.items():
            self.by.setdefault((e, tag, int(n)), {})[int(s)] = value
        self.levels = sorted({k[1] for k in self.by}, key=_level)

    def sizes(self, tag):
        return sorted({k[2] for k in self.by if k[1] == tag})

    def _get(self, e, tag, n):
        return self.by.get((e, tag, int(n)))

    def frames(self, e, tag, n):
        got = self._get(e, tag, n)
        return None if got is None else [got[s][1] for s in sorted(got)]

    def docs(self, e, tag, n):
        got = self._get(e, tag, n)
        return [got[s][0] for s in sorted(got)]

    def metrics(self, e, tag, n):
        return self.docs(e, tag, n)[0]["metrics"]

    def hyper(self, e, tag, n):
        return ((self.docs(e, tag, n)[0].get("provenance") or {}).get("params") or {}).get("hyper") or {}

    def axes(self, e, tag, n):
        """The parameter axes a mixture (or conditioned model) bins, from its hyper-parameters."""
        return list((self.hyper(e, tag, n).get("bins") or {}))

    def fitted(self, e, tag, n):
        return [(d.get("details") or {}).get("fitted") or {} for d in self.docs(e, tag, n)]


def _bar(names, tag, n, grid, paired):
    """The best global model of ``names`` with cells at (tag, n), by R^2 (mean over its seeds)."""
    best = None
    for e in names:
        f = grid.frames(e, tag, n)
        if f is None:
            continue
        err = squared_errors(f, "log_g_pred")
        score, reps = paired.score(err)
        if best is None or score["r2"] > best["summary"]["r2"]:
            best = {"summary": {"estimator": e, "label": grid.metrics(e, tag, n)["label"], "n_seeds": len(f),
                                **score}, "errors": err, "reps": reps}
    return best


def _variant_entry(grid, v, g, tag, n, paired):
    """A mixture (or conditioned model) against its global model at one noise level and size."""
    fv, fg = grid.frames(v, tag, n), grid.frames(g, tag, n)
    eg = squared_errors(fg, "log_g_pred")
    sg, rg = paired.score(eg)
    errors = {"": squared_errors(fv, "log_g_pred")}
    names = sorted(c[len("log_g_pred_"):] for c in fv[0].columns if c.startswith("log_g_pred_"))
    errors.update({r: squared_errors(fv, f"log_g_pred_{r}") for r in names})
    scores = {name: paired.score(e) for name, e in errors.items()}
    main, rmain = scores[""]
    out = {"n_seeds": len(fv), "global": sg, "main": {**main, **paired.diff(main["r2"], rmain, sg["r2"], rg)},
           "routings": {}}
    oracle = scores.get("oracle")
    if oracle:
        so, ro = oracle
        out["oracle"] = {**so, **paired.diff(so["r2"], ro, sg["r2"], rg)}
        out["oracle"]["gain_above_zero"] = bool(out["oracle"]["diff_ci"][0] is not None
                                                and out["oracle"]["diff_ci"][0] > 0)
    for r in names:
        if r == "oracle":
            continue
        s, rr = scores[r]
        entry = {**s, **paired.diff(s["r2"], rr, sg["r2"], rg)}
        if oracle:
            gain = oracle[0]["r2"] - sg["r2"]
            with np.errstate(divide="ignore", invalid="ignore"):
                entry["rho"] = float((s["r2"] - sg["r2"]) / gain) if gain != 0 else None
                entry["rho_ci"] = paired.interval((rr - rg) / (oracle[1] - rg))
            entry["rho_defined"] = out["oracle"]["gain_above_zero"]
        out["routings"][r] = entry
    return {"summary": out, "global": g, "errors": errors, "reps": {k: v[1] for k, v in scores.items()},
            "global_reps": rg}


def _above_ceiling(v, tag, n, entry, bayes_doc, paired):
    """Deployable predictions (not the oracle) above the Bayes ceiling beyond both intervals."""
    out = []
    b_hi = bayes_doc["metrics"]["overall"]["r2_ci"][1]
    for name, reps in entry["reps"].items():
        if name == "oracle":
            continue   # reads the true parameters: the ceiling conditions on the spectrum only
        lo = paired.interval(reps)[0]
        if lo is not None and b_hi is not None and lo > b_hi:
            out.append({"variant": v, "routing": name or "main", "noise_level": _level(tag), "size": int(n),
                        "r2_ci_lo": lo, "bayes_r2_ci_hi": b_hi})
    return out


def _thesis(entries, bar, paired):
    """The best deployable prediction (a mixture's own or one of its routings, or a conditioned model;
    selected on the test set, so optimistic) against the bar."""
    best = None
    for v, entry in entries.items():
        for name, reps in entry["reps"].items():
            if name == "oracle":
                continue
            r2 = 1.0 - float(entry["errors"][name].mean()) / paired.var
            if best is None or r2 > best[2]:
                best = (v, name, r2, reps)
    v, name, r2, reps = best
    d = paired.diff(r2, reps, bar["summary"]["r2"], bar["reps"])
    return {"variant": v, "routing": name or "main", "r2": r2, "r2_ci": paired.interval(reps),
            "bar": bar["summary"]["estimator"], "bar_r2": bar["summary"]["r2"], "diff_bar": d["diff"],
            "diff_bar_ci": d["diff_ci"], "beats_bar": bool(d["diff_ci"][0] is not None and d["diff_ci"][0] > 0),
            "below_bar": bool(d["diff_ci"][1] is not None and d["diff_ci"][1] < 0)}


def _gain_reps(entry):
    return entry["reps"]["oracle"] - entry["global_reps"]


def _shares(entries, grid, tag, n, paired):
    """For mixtures that bin one axis: the share of the oracle gain of the mixture that bins every axis
    (same global model) they keep, in percent with its interval."""
    out = {}
    with_oracle = {v: e for v, e in entries.items() if "oracle" in e["reps"]}
    for v, e in with_oracle.items():
        axes = grid.axes(v, tag, n)
        full = [w for w, f in with_oracle.items() if f["global"] == e["global"]
                and grid.hyper(w, tag, n).get("expert") == grid.hyper(v, tag, n).get("expert")
                and set(axes) < set(grid.axes(w, tag, n))]
        if len(axes) != 1 or not full:
            continue
        w = full[0]
        gain, ref = e["summary"]["oracle"]["diff"], with_oracle[w]["summary"]["oracle"]["diff"]
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = 100.0 * _gain_reps(e) / _gain_reps(with_oracle[w])
        out[v] = {"axes": axes, "reference": w, "share_percent": 100.0 * gain / ref if ref else None,
                  "share_percent_ci": paired.interval(reps),
                  "defined": with_oracle[w]["summary"]["oracle"]["gain_above_zero"]}
    return out


def _conditioning(entries, grid, tag, n, paired):
    """Continuous conditioning (a model without an oracle routing) against the mixture with the same global
    model and bins: the share of the mixture's gain (its own prediction over the global model) it gets."""
    out = {}
    for v, e in entries.items():
        if "oracle" in e["reps"]:
            continue
        bins = grid.hyper(v, tag, n).get("bins")
        twins = [w for w, f in entries.items() if "oracle" in f["reps"] and grid.hyper(w, tag, n).get("bins") == bins
                 and f["global"] == e["global"]]
        if not twins:
            continue
        w = twins[0]
        gain, ref = e["summary"]["main"]["diff"], entries[w]["summary"]["main"]["diff"]
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = 100.0 * (e["reps"][""] - e["global_reps"]) / (entries[w]["reps"][""] - entries[w]["global_reps"])
        ci = entries[w]["summary"]["main"]["diff_ci"]
        out[v] = {"mixture": w, "share_percent": 100.0 * gain / ref if ref else None,
                  "share_percent_ci": paired.interval(reps), "defined": bool(ci[0] is not None and ci[0] > 0)}
    return out


def _shown(v, g, grid, bayes, bayes_e, paired):
    """The mixture the figures show, at each noise level (largest size): per expert bin the R^2 of the
    global model, the oracle, the mixture and the Bayes ceiling on the bin's rows; spectra per bin; the
    gates' test accuracy and estimates outside every bin (metrics); confusion matrices and window
    importance (details)."""
    metrics, details = {}, {}
    for tag in grid.levels:
        sizes = [n for n in grid.sizes(tag) if grid.frames(v, tag, n) and grid.frames(g, tag, n)]
        if not sizes:
            continue
        n = max(sizes)
        fv, fg, fitted = grid.frames(v, tag, n), grid.frames(g, tag, n), grid.fitted(v, tag, n)
        labels, n_bins = fitted[0]["labels"], len(fitted[0]["labels"])
        truth = fv[0]["bin_true"].to_numpy(int)
        errs = {"global": squared_errors(fg, "log_g_pred"), "oracle": squared_errors(fv, "log_g_pred_oracle"),
                "mixture": squared_errors(fv, "log_g_pred")}
        if tag in bayes_e:
            errs["bayes"] = bayes_e[tag]
        rows = []
        for k in range(n_bins):
            sel = np.flatnonzero(truth == k)
            if len(sel) < 2:
                continue
            pk = Paired(paired.w, paired.var, paired.conf, rows=sel)
            row = {"bin": k + 1, "label": labels[k], "n_test": int(len(sel)),
                   "n_train": float(np.mean([f["n_train"][k] for f in fitted])),
                   "n_train_in_bin": float(np.mean([f["n_train_in_bin"][k] for f in fitted]))}
            row.update({name: pk.score(e)[0] for name, e in errs.items()})
            rows.append(row)
        gates = {}
        conf_mats, importance = {}, {}
        for gname in fitted[0]["gates"]:
            col = f"bin_{gname}"
            acc = float(np.mean([np.mean(f[col].to_numpy(int) == f["bin_true"].to_numpy(int)) for f in fv]))
            entry = {"test_accuracy": acc}
            if f"outside_{gname}" in fv[0].columns:
                entry["test_outside"] = float(np.mean([f[f"outside_{gname}"].to_numpy(int).sum() for f in fv]))
            gates[gname] = entry
            m = np.zeros((n_bins, n_bins), int)
            for f in fv:
                np.add.at(m, (f["bin_true"].to_numpy(int), f[col].to_numpy(int)), 1)
            conf_mats[gname] = m.tolist()
            imp = [f["gates"][gname].get("importance") for f in fitted]
            if all(i is not None for i in imp):
                importance[gname] = {"features": fitted[0]["gates"][gname].get("features"),
                                     "importance": np.mean(imp, axis=0).tolist()}
        metrics[f"nl{tag}"] = {"size": int(n), "n_seeds": len(fv), "bins": rows, "gates": gates,
                               "bayes_available": tag in bayes_e}
        details[f"nl{tag}"] = {"labels": labels, "axes": grid.axes(v, tag, n),
                               "edges": fitted[0].get("bins"), "confusion": conf_mats, "importance": importance}
    return metrics, details
