"""Ceilings over SNR: a sweep of magnitudes on a regular grid of stellar parameters.

For every point of a regular midpoint grid inside the prior ranges (:func:`pfslogg.ceilings.bayes.grid_axes`
with ``points`` per varied axis) and every AB magnitude of ``mags``, the noise of the exposure model
(at a fixed seeing) gives:

* the marginal CRLB in 3D (nuisances T_eff, M_H) and 4D (plus a_M, unknown to the estimator even
  where the data hold it fixed), as R^2_max per spectrum (median, 10-90 %), the "mean-CRLB" R^2
  (1 - mean CRLB / Var_prior, the aggregate of a model's R^2) and sigma_min = sqrt(CRLB);
* the Schur decay ratio, marginal / unmarginalised information on log g (the share that survives
  not knowing the nuisances; it depends on the noise only through its shape over wavelength);
* the Bayes ceiling: one noisy spectrum per point, the posterior mean over the fine parameter grid
  (config ``bayes``), scored as a model's R^2 with a bootstrap interval.

The Jacobian is computed once per point; the information matrix scales with 1/sigma^2, so each
magnitude costs a weighted product. ``parting_snr`` is where the two ceilings part: the highest SNR
of the sweep at which the mean-CRLB R^2 (3D) lies below the Bayes interval -- below it the CRLB,
which binds only unbiased estimators, is no longer a ceiling for estimators that shrink; ``parting_gap``
how far below the interval it lies there.

The Bayes ceiling is a sum over a fixed grid (config ``bayes.spacing``); where the posterior is
narrower than the grid step (bright stars) it comes from importance sampling around the maximum-
likelihood point instead (:func:`pfslogg.ceilings.bayes.refine_unresolved`). Each row gives the
median ``n_eff`` of the grid and the share of spectra so refined.
"""

import logging

import numpy as np

from .. import PARAMS
from ..data.interp import normalization, normalize
from ..errors import InputError
from .bayes import grid_axes, grid_posterior
from .fisher import fisher_matrix, jacobian, marginal_crlb, r2_max, schur_decay

log = logging.getLogger(__name__)
NUISANCE_3D = ["T_eff", "M_H"]
NUISANCE_4D = ["T_eff", "M_H", "a_M"]


def regular_points(ranges, points):
    """(n, 4) parameters on the midpoint grid with ``points`` per varied axis (fixed ones: their value)."""
    axes = grid_axes(ranges, points_per_axis={p: points if ranges[p][1] > ranges[p][0] else 1 for p in PARAMS})
    return np.stack(np.meshgrid(*[axes[p] for p in PARAMS], indexing="ij"), axis=-1).reshape(-1, len(PARAMS))


def _band(values, prefix):
    return {f"{prefix}_median": float(np.median(values)), f"{prefix}_p10": float(np.percentile(values, 10)),
            f"{prefix}_p90": float(np.percentile(values, 90))}


def _ceilings(info, var_prior):
    crlb = marginal_crlb(info, target=0)
    finite = np.minimum(crlb, 1e6)
    return {**_band(r2_max(crlb, var_prior), "r2max"),
            "r2max_mean_crlb": float(max(0.0, 1 - np.mean(finite) / var_prior)),
            **_band(np.sqrt(finite), "sigma_min"), **_band(schur_decay(info), "schur_decay")}


def snr_sweep(interp, exposure, ranges, mags, points, seeing, var_prior, bayes, evaluation, seed=0, threads=1):
    """The sweep (module docstring): metrics for the results JSON.

    ``exposure``: :class:`~pfslogg.data.noise.ExposureModel`; ``bayes``: config ``bayes`` (spacing,
    chunk, dtype); ``evaluation``: config ``evaluation`` (bootstrap, confidence).
    """
    from ..evaluation import summarize

    mags = [float(m) for m in mags]
    if len(mags) < 2 or sorted(mags) != mags:
        raise InputError(f"ceiling.sweep.mags = {mags}: expected at least two magnitudes in increasing order")
    theta = regular_points(ranges, int(points))
    theta = theta[interp.covered(theta)]
    flux = interp(theta)
    mu = normalize(flux)
    four = len(interp.axes[PARAMS.index("a_M")]) > 1
    which = ["log_g"] + (NUISANCE_4D if four else NUISANCE_3D)
    J = jacobian(interp, theta, which)
    y_true = theta[:, PARAMS.index("log_g")]
    rng = np.random.default_rng([int(seed), 31])
    rows = []
    for m in mags:
        log.info("magnitude %g: %d stars", m, len(theta))
        sigma = exposure.sigma(flux, np.full(len(theta), m), np.full(len(theta), float(seeing))) / normalization(flux)
        info = fisher_matrix(J, sigma)
        y = mu + sigma * rng.standard_normal(mu.shape)
        post = grid_posterior(interp, y, sigma, ranges, spacing=bayes["spacing"], chunk=int(bayes.get("chunk", 1024)),
                              dtype=np.dtype(bayes.get("dtype", "float32")), threads=threads, seed=int(m * 100),
                              progress=True)
        score = summarize(y_true, post["mean"], var_prior, n_resamples=evaluation["bootstrap"], seed=0,
                          confidence=evaluation["confidence"])
        rows.append({"mag": m, **_band(np.median(mu / sigma, axis=1), "snr"),
                     "crlb_3d": _ceilings(info[:, :3, :3], var_prior),
                     "crlb_4d": _ceilings(info, var_prior) if four else None,
                     "bayes": {"r2": score["r2"], "r2_ci": score["r2_ci"], "rmse": score["rmse"],
                               "post_sd_median": float(np.median(post["sd"])),
                               "n_eff_median": float(np.median(post["n_eff"])),
                               "refined_share": float(np.mean(post["method"] == 1))}})
    ends = {name: {"mag": r["mag"], "snr_median": r["snr_median"], "r2max_median_3d": r["crlb_3d"]["r2max_median"],
                   "r2max_mean_crlb_3d": r["crlb_3d"]["r2max_mean_crlb"], "bayes_r2": r["bayes"]["r2"]}
            for name, r in (("brightest", rows[0]), ("faintest", rows[-1]))}
    decay = {d: float(np.median([r[f"crlb_{d}"]["schur_decay_median"] for r in rows])) if rows[0][f"crlb_{d}"]
             else None for d in ("3d", "4d")}
    return {"n_points": int(len(theta)), "points_per_axis": int(points), "seeing": float(seeing),
            "var_prior": var_prior, "confidence": evaluation["confidence"], "four_d": four,
            "nuisance_3d": NUISANCE_3D, "nuisance_4d": NUISANCE_4D if four else None,
            "rows": rows, "parting_snr": parting_snr(rows), "parting_gap": parting_gap(rows), **ends,
            "schur_decay_3d": decay["3d"], "schur_decay_4d": decay["4d"]}


def parting_snr(rows):
    """Highest median SNR of the sweep at which the mean-CRLB R^2 (3D) lies below the Bayes ceiling's
    interval; None if it never does."""
    row = _parting_row(rows)
    return None if row is None else float(row["snr_median"])


def parting_gap(rows):
    """How far the mean-CRLB R^2 (3D) lies below the Bayes interval's lower end at ``parting_snr``
    (a positive number; None where the two never part). Printed beside the parting SNR: at the
    parting row the two can agree to the table's 3 decimals (0.9375 against 0.9382)."""
    row = _parting_row(rows)
    return None if row is None else float(row["bayes"]["r2_ci"][0] - row["crlb_3d"]["r2max_mean_crlb"])


def _parting_row(rows):
    """The row of the highest median SNR whose mean-CRLB R^2 (3D) lies below the Bayes interval, or None."""
    below = [r for r in rows if r["crlb_3d"]["r2max_mean_crlb"] < r["bayes"]["r2_ci"][0]]
    return max(below, key=lambda r: r["snr_median"]) if below else None
