"""Model efficiency against the ceilings, and the check that no estimator beats the Bayes ceiling.

For the cells of every estimator at the default noise level and the full training size (all seeds),
per SNR bin of the test set and overall:

    eta_Bayes = R^2_model / R^2_Bayes,        eta_CRLB = R^2_model / R^2_CRLB(mean)

with R^2_model the mean over seeds, R^2_Bayes the posterior mean's R^2 on the same test spectra and
noise (``compute_bayes_ceiling``), R^2_CRLB(mean) = 1 - mean(CRLB) / Var_prior over the bin (the same
aggregate; ``compute_fisher_ceiling``). eta_CRLB above 1 is no contradiction -- the CRLB binds
unbiased estimators only -- but a model whose R^2 interval lies wholly above the Bayes interval
would beat the minimum mean squared error, which means a bug (a leak of the test noise or truth,
or a ceiling computed on another model): :func:`violations` lists such cells and the command fails.

A model fed another sigma than the ceiling's (config ``noise.sigma`` or a variant's own ``sigma``:
the stored sigma, computed from the clean flux, against a ceiling that conditions on the estimated
one) is no comparison: the ceiling never saw what that sigma reveals. Such cells are not checked
but reported apart (:func:`other_sigma`): by how much each rises above the ceiling is the
error-channel leak (Track E).

Over the whole test set (``overall``) the metrics also give the range of each efficiency over the
models (``eta_bayes_min``/``_max``, ``eta_crlb_min``/``_max``; None without a ratio) and how many of
the ``n_models`` models score ``eta_crlb`` above 1 (``n_above_crlb``): what the text says of them.

How close a learned model comes (:func:`ceiling_target`, config ``ceiling.target``): within ``gap`` of
R^2_Bayes in every SNR bin whose median SNR is at least ``gap_from_snr``, and inside the ceiling's interval
(R^2 at least its lower edge) in every bin from ``ci_from_snr`` -- per model, and which learned model comes
closest.
"""

import numpy as np

from ..errors import InputError


def _ratio(a, b):
    return float(a / b) if b is not None and b > 0 else None


def _model_row(docs, key, lo=None):
    """Mean R^2 and mean interval over seeds of one estimator, overall (lo None) or in bin ``lo``."""
    r2, ci = [], []
    for d in docs:
        m = d["metrics"]
        row = m["overall"] if lo is None else next((b for b in m["snr_bins"] if b["lo"] == lo), None)
        if row is None:
            return None
        r2.append(row["r2"])
        ci.append(row["r2_ci"])
    return {"r2": float(np.mean(r2)), "r2_ci": [float(v) for v in np.mean(ci, axis=0)], "n_seeds": len(docs)}


def efficiency(bayes, fisher, cells, names=None, target=None, learned=None):
    """Metrics: ``bayes``, ``fisher``: the metrics of the two ceilings; ``cells``: estimator -> list
    of cell results documents (same noise level and size, one per seed); ``names``: the words of each
    estimator when they were chosen among more cells than these (default :func:`labels` of ``cells``);
    ``target``: ``{gap, gap_from_snr, ci_from_snr}`` adds ``ceiling_target`` (:func:`ceiling_target`, among
    the estimators in ``learned``, default all)."""
    if not cells:
        raise InputError("efficiency: no model cells at the default noise level and training size")
    noise = {float(d["metrics"]["noise_level"]) for docs in cells.values() for d in docs}
    if noise != {float(bayes["noise_level"])}:
        raise InputError(f"efficiency: cells at noise levels {sorted(noise)}, the Bayes ceiling at {bayes['noise_level']}")
    fisher_bins = {b["lo"]: b for b in fisher["snr_bins"]}
    bins = []
    for b in bayes["snr_bins"] + [dict(bayes["overall"], lo=None, hi=None)]:
        f = fisher["overall"] if b["lo"] is None else fisher_bins.get(b["lo"])
        crlb = None if f is None else f["r2max_mean_crlb"]
        models = {}
        for name, docs in cells.items():
            m = _model_row(docs, "r2", b["lo"])
            if m is None:
                continue
            m["eta_bayes"] = _ratio(m["r2"], b["r2"])
            m["eta_crlb"] = _ratio(m["r2"], crlb)
            m["r2_minus_bayes"] = float(m["r2"] - b["r2"])   # on the same spectra; above 0 only within the intervals
            m["above_bayes"] = bool(m["r2_ci"][0] > b["r2_ci"][1])
            models[name] = m
        bins.append({"lo": b["lo"], "hi": b["hi"], "snr_median": b.get("snr_median"), "bayes_r2": b["r2"],
                     "bayes_r2_ci": b["r2_ci"], "crlb_mean_r2": crlb,
                     "crlb_median_r2": None if f is None else f["r2max_median"], "models": models})
    overall = bins.pop()
    best = max(overall["models"], key=lambda e: overall["models"][e]["r2"])
    names = labels(cells) if names is None else {e: names[e] for e in cells}
    out = {"noise_level": float(bayes["noise_level"]), "estimators": list(cells), "labels": names,
           "snr_bins": bins, "overall": overall, "best": best, "best_eta_bayes": overall["models"][best]["eta_bayes"],
           **overall_spread(overall["models"]),
           "violations": violations(bins + [overall]), "n_violations": len(violations(bins + [overall]))}
    if target:
        out["ceiling_target"] = ceiling_target(bins, target, learned=learned, names=names)
    return out


def ceiling_target(bins, target, learned=None, names=None):
    """Per model, against ``target`` = ``{gap, gap_from_snr, ci_from_snr}``: ``max_gap`` (R^2_Bayes - R^2, the
    largest over the bins with median SNR >= gap_from_snr) and ``gap_bins_met`` of ``gap_bins``; the most it
    falls below the ceiling's interval (``ci_shortfall_max``: its lower edge - R^2; <= 0 inside) and
    ``ci_bins_met`` of ``ci_bins`` over the bins from ci_from_snr; ``met`` when every bin is. ``met_by``: the
    learned models (``learned``, default all) that meet it; ``closest``: the learned model that meets the most
    of the bins (then the smallest largest gap), with its numbers as ``closest_*``."""
    gap, lo_gap, lo_ci = float(target["gap"]), float(target["gap_from_snr"]), float(target["ci_from_snr"])
    gap_bins = [b for b in bins if b.get("snr_median") is not None and b["snr_median"] >= lo_gap]
    ci_bins = [b for b in bins if b.get("snr_median") is not None and b["snr_median"] >= lo_ci]
    if not gap_bins or not ci_bins:
        raise InputError(f"ceiling.target: no SNR bin with a median SNR >= {min(lo_gap, lo_ci) if not gap_bins else lo_ci}"
                         f" (bin medians {[b.get('snr_median') for b in bins]})")
    models = {}
    for e in dict.fromkeys(e for b in bins for e in b["models"]):
        gaps = [b["bayes_r2"] - b["models"][e]["r2"] for b in gap_bins if e in b["models"]]
        short = [b["bayes_r2_ci"][0] - b["models"][e]["r2"] for b in ci_bins if e in b["models"]]
        if len(gaps) < len(gap_bins) or len(short) < len(ci_bins):
            continue   # a model without a score in a bin the target asks about
        m = {"max_gap": float(max(gaps)), "gap_bins_met": sum(g <= gap for g in gaps), "gap_bins": len(gaps),
             "ci_shortfall_max": float(max(short)), "ci_bins_met": sum(v <= 0 for v in short), "ci_bins": len(short)}
        m["met"] = bool(m["gap_bins_met"] == m["gap_bins"] and m["ci_bins_met"] == m["ci_bins"])
        models[e] = m
    pool = [e for e in models if learned is None or e in learned]
    if not pool:
        raise InputError(f"ceiling.target: none of the learned models {sorted(learned or [])} has a score in every bin")
    closest = min(pool, key=lambda e: (-(models[e]["gap_bins_met"] + models[e]["ci_bins_met"]), models[e]["max_gap"]))
    out = {"gap": gap, "gap_from_snr": lo_gap, "ci_from_snr": lo_ci, "gap_bins": len(gap_bins), "ci_bins": len(ci_bins),
           "gap_bins_from": float(gap_bins[0]["lo"]), "ci_bins_from": float(ci_bins[0]["lo"]),
           "models": models, "met_by": [e for e in pool if models[e]["met"]], "closest": closest,
           "closest_label": (names or {}).get(closest, closest)}
    out["n_met"] = len(out["met_by"])
    out.update({f"closest_{k}": v for k, v in models[closest].items()})
    return out


def labels(cells):
    """{estimator: the words the paper names it by}: the label of its cells, with the hyper-parameters
    (and the sigma) that tell apart two of one class (:func:`pfslogg.experiments.variant_labels`)."""
    from ..experiments import cell_variant, variant_labels

    return variant_labels({e: cell_variant(docs[0]) for e, docs in cells.items() if docs})


def overall_spread(models):
    """Over the whole test set: the range of eta_Bayes and eta_CRLB over the models (None without a
    ratio), the number of models and how many of them score eta_CRLB above 1."""
    out = {"n_models": len(models)}
    for k in ("eta_bayes", "eta_crlb"):
        v = [m[k] for m in models.values() if m.get(k) is not None]
        out[f"{k}_min"], out[f"{k}_max"] = (min(v), max(v)) if v else (None, None)
    out["n_above_crlb"] = sum(1 for m in models.values() if m.get("eta_crlb") is not None and m["eta_crlb"] > 1)
    return out


def violations(bins):
    """[(estimator, bin lo)] where a model's R^2 interval lies wholly above the Bayes interval."""
    return [{"estimator": e, "lo": b["lo"], "r2": m["r2"], "r2_ci": m["r2_ci"], "bayes_r2_ci": b["bayes_r2_ci"]}
            for b in bins for e, m in b["models"].items() if m["above_bayes"]]


def split_by_sigma(cells, mode):
    """``(same, other)``: the cells (estimator -> documents) fed the ceiling's sigma ``mode`` (or that do
    not say, or a ceiling that does not say), and those fed another one."""
    same, other = {}, {}
    for name, docs in cells.items():
        fed = {d["metrics"].get("sigma") for d in docs} - {None}
        (other if mode is not None and fed - {mode} else same)[name] = docs
    return same, other


def other_sigma(bayes, fisher, cells, mode, names=None):
    """The report of the cells fed another sigma than the ceiling's ``mode`` (not checked): per SNR bin
    and overall, each model's R^2 as :func:`efficiency` gives it (``r2_minus_bayes``: its R^2 less the
    ceiling's on the same spectra), the largest ``r2_minus_bayes`` overall and in an SNR bin (with the
    bin's edges: ``snr_of_bin_max``), the sigma each was fed, and
    where a model's interval lies wholly above the ceiling's (``leaks``: the leak beyond the intervals,
    which :func:`efficiency` would call a violation)."""
    m = efficiency(bayes, fisher, cells, names)
    leaks = m.pop("violations")
    m.pop("n_violations")
    sigma = {e: sorted({str(d["metrics"].get("sigma")) for d in docs}) for e, docs in cells.items()}
    in_bins = [(r["r2_minus_bayes"], b["lo"], b["hi"]) for b in m["snr_bins"] for r in b["models"].values()]
    top = max(in_bins) if in_bins else (None, None, None)
    return {**m, "ceiling_sigma": mode, "sigma": sigma, "leaks": leaks, "n_leaks": len(leaks),
            "r2_minus_bayes_max": max(r["r2_minus_bayes"] for r in m["overall"]["models"].values()),
            "bin_r2_minus_bayes_max": top[0], "snr_of_bin_max": [top[1], top[2]]}
