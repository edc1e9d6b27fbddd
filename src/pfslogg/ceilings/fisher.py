"""Fisher information and Cramer-Rao ceilings on log g (DESIGN.md section 3).

For a spectrum with noiseless model mu(theta) (the interpolated instrument grid, normalised by its
mean exactly as the data sets are) and independent Gaussian pixel noise sigma_i::

    I = J^T diag(1/sigma^2) J,        J = d mu / d theta   (n_pix x n_par, automatic differentiation)

The marginal CRLB on log g, with the other varied parameters (T_eff, M_H; plus a_M when it varies)
as nuisances, is the Schur complement::

    CRLB = 1 / (I_gg - I_gn I_nn^{-1} I_ng) = (I^{-1})_gg

and the ceiling R^2_max = 1 - CRLB / Var_prior(log g). A ceiling below 0 is reported as 0: the
prior mean already reaches R^2 = 0 (the original study reports 0 likewise).
"""

import numpy as np
import torch

from .. import PARAMS
from ..data.interp import normalize


def normalized_model(interp, theta, stencil=None):
    """mu(theta): interpolated flux divided by its mean over pixels, as the data sets' clean flux
    (torch, differentiable; ``stencil``: ``interp.stencil(theta)`` inside torch.func transforms)."""
    return normalize(interp.torch(theta, stencil))


def jacobian(interp, theta, which):
    """d mu / d theta_k for k in ``which`` (parameter names): (B, n_pix, len(which)), float64.

    Forward-mode AD: one Jacobian-vector product per parameter.
    """
    theta_np = np.array(theta, dtype=float)
    stencil = interp.stencil(theta_np)
    theta = torch.from_numpy(theta_np)
    cols = []
    for name in which:
        tangent = torch.zeros_like(theta)
        tangent[:, PARAMS.index(name)] = 1.0
        _, jv = torch.func.jvp(lambda t: normalized_model(interp, t, stencil), (theta,), (tangent,))
        cols.append(jv)
    return torch.stack(cols, dim=-1).numpy()


def fisher_matrix(J, sigma):
    """I = J^T diag(1/sigma^2) J per spectrum: J (B, n_pix, k), sigma (B, n_pix) -> (B, k, k)."""
    Jw = J / np.asarray(sigma, float)[..., None]
    return np.einsum("bpi,bpj->bij", Jw, Jw)


def marginal_crlb(info, target=0):
    """(I^{-1})[target, target] by the Schur complement over the other parameters; inf where the
    information on the target is zero. ``info``: (B, k, k)."""
    info = np.asarray(info, float)
    k = info.shape[-1]
    nuis = [i for i in range(k) if i != target]
    igg = info[:, target, target]
    if not nuis:
        eff = igg
    else:
        ign = info[:, target][:, nuis]
        inn = info[:, nuis][:, :, nuis]
        eff = igg - np.einsum("bi,bi->b", ign, np.linalg.solve(inn, ign[..., None])[..., 0])
    with np.errstate(divide="ignore"):
        return np.where(eff > 0, 1.0 / np.maximum(eff, 1e-300), np.inf)


def varied_params(ranges):
    """log_g first, then the other parameters whose range is not a single value."""
    return ["log_g"] + [p for p in PARAMS if p != "log_g" and ranges[p][1] > ranges[p][0]]


def crlb_logg(interp, theta, sigma, ranges, batch=256, progress=False):
    """Marginal CRLB on log g for each spectrum (parameters ``theta`` (B, 4), noise ``sigma``)."""
    from ..progress import progress as _progress

    which = varied_params(ranges)
    out = np.empty(len(theta))
    for a in _progress(range(0, len(theta), batch), desc="Fisher CRLB", unit="batch", enabled=progress):
        J = jacobian(interp, theta[a:a + batch], which)
        out[a:a + batch] = marginal_crlb(fisher_matrix(J, sigma[a:a + batch]), target=0)
    return out


def r2_max(crlb, var_prior):
    """Ceiling per spectrum, clipped to [0, 1]."""
    return np.clip(1.0 - np.asarray(crlb) / var_prior, 0.0, 1.0)


def fisher_ceiling(interp, test, noise_level, ranges, snr_edges, var_prior, min_count=10):
    """The Fisher ceiling of a test set: (metrics, per-spectrum table).

    ``test``: a :class:`~pfslogg.data.dataset.SpectraSet` on the pixels of ``interp``; the noise is
    ``noise_level`` times its stored sigma. Per SNR bin (and over all spectra): the median and
    10/90th percentiles of the per-spectrum R^2_max -- a summary, not a bound on a mean -- and
    ``r2max_mean_crlb`` = 1 - mean(CRLB)/Var_prior, the same aggregate as a model's R^2.
    """
    from ..evaluation import bin_index

    theta = test.params[list(PARAMS)].to_numpy(float)
    sigma = np.empty((test.n, len(test.wave)))
    for s, e in test.chunks():
        sigma[s:e] = test.read(s, e)[1] * noise_level
    crlb = crlb_logg(interp, theta, sigma, ranges, progress=True)
    r2m = r2_max(crlb, var_prior)
    snr = test.snr(noise_level)

    def band(sel):
        return {"n": int(sel.sum()), "r2max_median": float(np.median(r2m[sel])),
                "r2max_p10": float(np.percentile(r2m[sel], 10)), "r2max_p90": float(np.percentile(r2m[sel], 90)),
                "r2max_mean_crlb": float(max(0.0, 1 - np.mean(np.minimum(crlb[sel], 1e6)) / var_prior))}

    idx = bin_index(snr, snr_edges)
    bins = []
    for b in range(len(snr_edges) - 1):
        sel = idx == b
        if sel.sum() >= min_count:
            bins.append({"lo": float(snr_edges[b]), "hi": float(snr_edges[b + 1]),
                         "snr_median": float(np.median(snr[sel])), **band(sel)})
    metrics = {"n": int(test.n), "var_prior": var_prior, "noise_level": float(noise_level),
               "nuisance": varied_params(ranges)[1:], "overall": band(np.ones(test.n, bool)), "snr_bins": bins}
    return metrics, {"log_g": test.logg, "snr": snr, "crlb": crlb, "r2max": r2m}
