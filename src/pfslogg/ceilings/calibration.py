"""Calibration of the embedded problem's information content against the original study.

The original study (REFERENCE.md) found a median marginal Fisher ceiling R^2_max (3D: log g with
T_eff and [M/H] as nuisances, over T_eff 3750-6000 K, log g 1-5, [M/H] -0.25..+0.75) of
0.366 / 0.740 / 0.891 / 0.9906 at per-pixel SNR 3.0 / 4.6 / 7.1 / 24 on real BOSZ spectra.
``ceiling_curve`` computes the same quantity for any grid: parameters drawn uniformly over the
ranges, the PFS noise shape of the exposure model (sky lines included) scaled per spectrum so that
its SNR (median of flux / sigma) equals each target value. Since sigma scales as 1/SNR, the CRLB
scales as 1/SNR^2: one Jacobian per spectrum serves every SNR.
"""

import numpy as np

from ..data.dataset import draw_params
from ..evaluation import prior_variance
from .fisher import crlb_logg, r2_max
from ..data.interp import GridInterpolator, normalization
from ..data.noise import ETC_SEEING, ExposureModel

REFERENCE_MAG = 21.5  # the shape of sigma(lambda) is taken at the original study's median magnitude


def ceiling_curve(grid, ranges, noise, snrs, n=500, seed=0):
    """[(median, p10, p90) of R^2_max] for each per-pixel SNR in ``snrs``."""
    interp = GridInterpolator(grid)
    rng = np.random.default_rng(seed)
    theta = draw_params(rng, n, ranges)
    ok = interp.covered(theta)
    theta = theta[ok]
    flux = interp(theta)
    exposure = ExposureModel(grid.wave, exposures=int(noise["exposures"]), exp_time=float(noise["exp_time"]),
                             throughput=float(noise["throughput"]))
    sigma = exposure.sigma(flux, np.full(len(flux), REFERENCE_MAG), np.full(len(flux), ETC_SEEING))
    norm = normalization(flux)
    flux, sigma = flux / norm, sigma / norm
    sigma1 = sigma * np.median(flux / sigma, axis=1, keepdims=True)  # SNR exactly 1
    crlb1 = crlb_logg(interp, theta, sigma1, ranges)
    var = prior_variance(*ranges["log_g"])
    out = []
    for s in snrs:
        r2m = r2_max(crlb1 / s**2, var)
        out.append((np.median(r2m), np.percentile(r2m, 10), np.percentile(r2m, 90)))
    return out


def calibration_points(grid, ranges, noise, ceiling, seed=0):
    """The calibration curve beside the original study's values: metrics of the results JSON, with
    the largest distance from the original and whether every point is within ``ceiling.tolerance``."""
    curve = ceiling_curve(grid, ranges, noise, ceiling["snr"], n=ceiling["n_spectra"], seed=seed)
    points = [{"snr": s, "r2max_median": float(m), "r2max_p10": float(lo), "r2max_p90": float(hi), "original": o,
               "diff": float(m) - float(o)}
              for s, (m, lo, hi), o in zip(ceiling["snr"], curve, ceiling["original"])]
    worst = max(points, key=lambda q: abs(q["diff"]))
    tol = ceiling.get("tolerance")
    return {"points": points, "n_spectra": ceiling["n_spectra"], "tolerance": tol,
            "max_abs_diff": abs(worst["diff"]), "max_abs_diff_snr": worst["snr"],
            "within_tolerance": None if tol is None else bool(abs(worst["diff"]) <= float(tol))}


def check_calibration(metrics, where="ceiling.tolerance"):
    """InputError (one line) when a calibration point is further from the original than the
    tolerance: the embedded problem no longer holds the original study's information on log g."""
    from ..errors import InputError

    if metrics["within_tolerance"] is False:
        bad = [q for q in metrics["points"] if abs(q["diff"]) > float(metrics["tolerance"])]
        text = "; ".join(f"SNR {q['snr']:g}: {q['r2max_median']:.3f} vs {q['original']:g}" for q in bad)
        raise InputError(f"{where}: the median Fisher ceiling R2_max is further than {metrics['tolerance']:g} from "
                         f"the original study's ({text}): recalibrate grid.gravity_coupling")
