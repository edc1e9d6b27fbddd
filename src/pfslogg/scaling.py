"""Scaling laws (Track A): how R^2 grows with the training-set size.

:func:`power_law_fit` fits ``R^2(N) = R^2_inf - a N^(-b)`` (three parameters; ``0 < b < 2``,
``R^2_inf <= 1``, ``a >= 0``, so the curve never falls with more data) to the mean R^2 of an
estimator at four or more training sizes, weighted by the half-widths of their intervals where
given. It reports the fit, its predictions at the sizes of the original study (50k, 100k, 200k,
1M spectra) and the size at which the curve reaches given R^2 targets (e.g. LightGBM's R^2 at the
full size); a prediction or size outside the fitted sizes is marked ``"extrapolated": true``.
:func:`scaling_summary` applies it to every estimator of an experiment aggregate at one noise level;
the aggregate rule stores that under ``metrics["power_law"]`` (one entry per estimator: the fit, or
``{"skipped": reason}``), which the ``scaling_law`` figure and the ``scaling`` table read.

Every number of a fit is a plain JSON number (strings and booleans never become macros), and keys
are chosen so that the paper's precision rules apply: ``r2`` (3 decimals), ``n_train`` (integer).
"""

import math

import numpy as np

from .errors import InputError
from .experiments import noise_tag

PREDICT_SIZES = (50_000, 100_000, 200_000, 1_000_000)   # the original study's sizes (REFERENCE.md)
MIN_SIZES = 4                                           # three parameters and one degree of freedom
B_BOUNDS = (1e-3, 2.0 - 1e-3)                           # 0 < b < 2
R2_INF_MAX = 1.0
AT_CAP_TOL = 1e-6                                       # an R^2_inf this close to its bound is at the cap
MAX_SIZE_TO_REACH = 1e12                                # beyond: no size is reported

def power_law(n, r2_inf, a, b):
    """``R^2_inf - a n^(-b)`` at training sizes ``n``."""
    return r2_inf - a * np.asarray(n, float) ** (-b)


def _sigmas(lo_hi, n):
    """Weights of the fit: half-widths of the intervals; missing or zero ones take the smallest
    positive half-width; None (unweighted) when there is none."""
    if lo_hi is None:
        return None
    ci = np.asarray([[np.nan, np.nan] if c is None else [np.nan if v is None else v for v in c]
                     for c in lo_hi], float)
    if ci.shape != (n, 2):
        raise InputError(f"power-law fit: {len(ci)} intervals for {n} sizes; give one [lo, hi] per size")
    half = (ci[:, 1] - ci[:, 0]) / 2
    good = np.isfinite(half) & (half > 0)
    if not good.any():
        return None
    return np.where(good, half, half[good].min())


def _size_to_reach(target, r2_inf, c, b, n_ref, lo, hi):
    out = {"r2": float(target)}
    if not target < r2_inf or c <= 0:
        return {**out, "n_train": None, "extrapolated": None,
                "why": f"the fitted asymptote R^2_inf = {r2_inf:.4f} does not exceed the target"}
    log_n = math.log(n_ref) + (math.log(c) - math.log(r2_inf - target)) / b
    if log_n > math.log(MAX_SIZE_TO_REACH):
        return {**out, "n_train": None, "extrapolated": True, "why": f"beyond {MAX_SIZE_TO_REACH:.0e} spectra"}
    n = max(1, math.ceil(math.exp(log_n)))
    return {**out, "n_train": n, "extrapolated": bool(n > hi or n < lo)}


def power_law_fit(sizes, r2, r2_ci=None, targets=None, predict_at=PREDICT_SIZES, r2_max=None):
    """Fit ``R^2(N) = R^2_inf - a N^(-b)`` to mean R^2 values ``r2`` at training ``sizes``.

    ``r2_ci``: an interval [lo, hi] per size (e.g. over seeds); the fit weights each point by the
    inverse square of its half-width (unweighted without). Points whose R^2 is missing (None/NaN)
    are left out; at least 4 distinct sizes must remain (InputError otherwise). ``targets``:
    {name: R^2}; ``predict_at``: the sizes to predict at. ``r2_max``: an upper bound of R^2_inf
    below 1 -- the Bayes ceiling on the same test set (its upper confidence limit): no estimator can
    beat it, so neither may the curve's asymptote (without it the fits of the laptop networks put it
    above the ceiling).

    Returns ``{"r2_inf", "a", "b", "n_sizes", "size_min", "size_max", "rmse_fit", "weighted",
    "at_bound", "r2_inf_max", "at_cap", "predict": {str(N): {"n_train": N, "r2", "extrapolated"}}, "size_to_reach": {name:
    {"r2": target, "n_train": N or None, "extrapolated"[, "why"]}}}``. ``rmse_fit``: the root mean
    square of the R^2 residuals (unweighted); ``at_bound``: the parameters that ended at a bound
    (then the curve is a limit of the family, not an interior optimum); ``at_cap``: 1 when the
    fitted asymptote is the imposed bound ``r2_inf_max`` (the data did not determine it: report the
    cap, not a fitted asymptote), else 0 -- a number, so that the paper can say which (a boolean
    never becomes a macro); ``extrapolated``: N outside [size_min, size_max]."""
    from scipy.optimize import least_squares

    n_all = np.asarray(sizes, float)
    y_all = np.asarray([np.nan if v is None else v for v in r2], float)
    if n_all.shape != y_all.shape or n_all.ndim != 1:
        raise InputError(f"power-law fit: {n_all.size} sizes and {y_all.size} R^2 values; give one R^2 per size")
    sig_all = _sigmas(r2_ci, len(n_all))
    keep = np.isfinite(y_all) & np.isfinite(n_all) & (n_all > 0)
    n, y = n_all[keep], y_all[keep]
    distinct = len(set(n.tolist()))
    if distinct < MIN_SIZES or distinct != len(n):
        what = f"{distinct} distinct training sizes" if distinct == len(n) else \
            f"{len(n)} points at only {distinct} distinct sizes"
        raise InputError(f"power-law fit: {what} with a finite R^2, {MIN_SIZES} are needed for R^2_inf - a N^-b")
    sig = np.ones_like(y) if sig_all is None else sig_all[keep]
    n_ref = float(n.max())          # fit c = a n_ref^-b: well scaled whatever the sizes
    x = n / n_ref

    def resid(p):
        return (p[0] - p[1] * x ** (-p[2]) - y) / sig

    cap = R2_INF_MAX
    if r2_max is not None:
        if isinstance(r2_max, bool) or not np.isfinite(float(r2_max)) or not 0 < float(r2_max) <= R2_INF_MAX:
            raise InputError(f"power-law fit: r2_max = {r2_max!r}, expected a number in (0, {R2_INF_MAX:g}]")
        cap = float(r2_max)
    lower, upper = [-np.inf, 0.0, B_BOUNDS[0]], [cap, np.inf, B_BOUNDS[1]]
    best = None
    r_inf0 = min(cap - 1e-6, float(y[np.argmax(n)]) + 0.05)
    for b0 in (0.2, 0.5, 1.0, 1.5):
        c0 = max(r_inf0 - float(y[np.argmax(n)]), 1e-3)
        fit = least_squares(resid, [r_inf0, c0, b0], bounds=(lower, upper), method="trf",
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=20000)
        if best is None or fit.cost < best.cost - 1e-15:
            best = fit
    r_inf, c, b = (float(v) for v in best.x)
    a = c * n_ref ** b
    at_bound = [name for name, v, lo, hi in zip(("r2_inf", "a", "b"), best.x, lower, upper)
                if np.isclose(v, lo, rtol=0, atol=1e-9) or np.isclose(v, hi, rtol=0, atol=1e-9)]
    lo, hi = float(n.min()), float(n.max())
    predict = {str(int(N)): {"n_train": int(N), "r2": float(power_law(N, r_inf, a, b)),
                             "extrapolated": bool(N > hi or N < lo)} for N in predict_at}
    reach = {}
    for name, t in (targets or {}).items():
        if t is None or isinstance(t, bool) or not np.isfinite(float(t)):
            raise InputError(f"power-law fit: target {name!r} is {t!r}, expected a finite R^2")
        reach[str(name)] = _size_to_reach(float(t), r_inf, c, b, n_ref, lo, hi)
    return {"r2_inf": r_inf, "a": float(a), "b": b, "n_sizes": int(len(n)), "size_min": int(lo),
            "size_max": int(hi), "rmse_fit": float(np.sqrt(np.mean((power_law(n, r_inf, a, b) - y) ** 2))),
            "weighted": sig_all is not None, "at_bound": at_bound, "r2_inf_max": cap,
            "at_cap": int("r2_inf" in at_bound or cap - r_inf <= AT_CAP_TOL), "predict": predict,
            "size_to_reach": reach}


def _noise_level(agg_metrics, noise_level):
    if noise_level is None:
        noise_level = agg_metrics.get("default_noise_level")
    if noise_level is None:
        raise InputError(f"experiment {agg_metrics.get('experiment')!r}: no noise level given and no "
                         "default_noise_level in the aggregate")
    return float(noise_level)


def _cells(agg_metrics, estimator, noise_level):
    """{size: cell} of ``estimator`` at ``noise_level`` in an experiment aggregate's metrics."""
    by_size = agg_metrics["cells"].get(estimator, {}).get("nl" + noise_tag(noise_level), {})
    return {int(c["size"]): c for c in by_size.values()}


def reference_r2(agg_metrics, estimator, noise_level=None, size=None):
    """Mean R^2 of ``estimator`` in an experiment aggregate at ``noise_level`` (default: its
    default_noise_level) and ``size`` (default: the largest it has there): a target for
    :func:`scaling_summary`. InputError when the aggregate lacks the cell or its R^2."""
    level = _noise_level(agg_metrics, noise_level)
    cells = _cells(agg_metrics, estimator, level)
    where = f"experiment {agg_metrics.get('experiment')!r}"
    if not cells:
        raise InputError(f"{where}: no cells of {estimator!r} at noise level {level:g}")
    n = max(cells) if size is None else int(size)
    if n not in cells or cells[n].get("r2") is None:
        raise InputError(f"{where}: no R^2 of {estimator!r} at noise level {level:g} and size {n}")
    return float(cells[n]["r2"])


def scaling_summary(agg_metrics, noise_level=None, estimators=None, targets=None, predict_at=PREDICT_SIZES,
                    r2_max=None):
    """:func:`power_law_fit` of every estimator of an experiment aggregate (its metrics) at
    ``noise_level`` (default: the aggregate's default_noise_level), weighted by the intervals over
    seeds: ``{estimator: fit + {"noise_level"}}``, or ``{estimator: {"skipped": reason}}`` for one
    with fewer than 4 sizes there. ``estimators``: which (default: all, in the aggregate's order);
    ``targets``: {name: R^2}, e.g. ``{"lightgbm": reference_r2(benchmark, "lightgbm")}``; ``r2_max``:
    the bound of every R^2_inf (:func:`power_law_fit`)."""
    level = _noise_level(agg_metrics, noise_level)
    names = list(agg_metrics["estimators"]) if estimators is None else list(estimators)
    out = {}
    for e in names:
        if e not in agg_metrics["estimators"]:
            raise InputError(f"experiment {agg_metrics.get('experiment')!r}: no estimator {e!r} to fit")
        cells = _cells(agg_metrics, e, level)
        sizes = sorted(n for n, c in cells.items() if c.get("r2") is not None and np.isfinite(c["r2"]))
        if len(sizes) < MIN_SIZES:
            out[e] = {"skipped": f"noise level {level:g}: {len(sizes)} training sizes with an R^2, "
                                 f"{MIN_SIZES} are needed for a power law"}
            continue
        fit = power_law_fit(sizes, [cells[n]["r2"] for n in sizes], [cells[n].get("r2_ci_seeds") for n in sizes],
                            targets, predict_at, r2_max)
        out[e] = {"noise_level": level, **fit}
    return out
