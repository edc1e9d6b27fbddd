"""Fisher information and Cramer-Rao ceilings on log g (DESIGN.md section 3).

For a spectrum with noiseless model mu(theta) (the interpolated instrument grid, normalised by its
mean exactly as the data sets are) and independent Gaussian pixel noise sigma_i::

    I = J^T diag(1/sigma^2) J,        J = d mu / d theta   (n_pix x n_par, exact: analytic, checked by autograd)

The marginal CRLB on log g, with the other varied parameters (T_eff, M_H; plus a_M when it varies)
as nuisances, is the Schur complement::

    CRLB = 1 / (I_gg - I_gn I_nn^{-1} I_ng) = (I^{-1})_gg

and the ceiling R^2_max = 1 - CRLB / Var_prior(log g). A ceiling below 0 is reported as 0: the
prior mean already reaches R^2 = 0 (the original study reports 0 likewise). "3D" is the bound
with T_eff and M_H as nuisances, "4D" adds a_M (unknown to the estimator even where the data set
holds it fixed).

What the exact gradient means: J is the derivative of the model as interpolated
(``pfslogg.data.interp``). With the cubic (C1) interpolant it is continuous; at a node it is the
finite difference over the two neighbouring nodes -- exactly the original study's "central
differences on the grid with step = grid step" -- and between nodes it moves smoothly to the next
node's. With the multilinear interpolant J is constant in a cell and jumps at every node, so the
bound depends on where a point sits in its cell (:func:`cell_profile`); :func:`fd_jacobian` and
:func:`step_sensitivity` show how a finite-difference bound depends on its step.

Per pixel, :func:`fisher_logg_map` splits the marginal information on log g over the pixels (where
it sits in the spectrum; the attention maps of :mod:`pfslogg.nn.maps` are compared with it).
"""

import numpy as np

from .. import PARAMS
from ..data.interp import normalization, normalize


def normalized_model(interp, theta, stencil=None):
    """mu(theta): interpolated flux divided by its mean over pixels, as the data sets' clean flux
    (torch, differentiable; ``stencil``: ``interp.stencil(theta)`` inside torch.func transforms)."""
    return normalize(interp.torch(theta, stencil))


def jacobian(interp, theta, which):
    """d mu / d theta_k for k in ``which`` (parameter names): (B, n_pix, len(which)), float64.

    The exact derivative of the interpolated model (:meth:`GridInterpolator.derivatives`), through
    the mean normalisation by the quotient rule: d(f / m) = df / m - f dm / m^2, m = mean(f).
    :func:`jacobian_autograd` computes the same by forward-mode automatic differentiation.
    """
    return model_and_jacobian(interp, theta, which)[1]


def model_and_jacobian(interp, theta, which):
    """(mu (B, n_pix), :func:`jacobian` (B, n_pix, k)) from one pass over the grid nodes."""
    flux, grad = interp.derivatives(np.asarray(theta, float), which)
    m = normalization(flux)                       # (B, 1)
    dm = grad.mean(axis=1, keepdims=True)         # (B, 1, k)
    mu = flux / m
    grad /= m[..., None]
    grad -= (mu / m)[..., None] * dm
    return mu, grad


def jacobian_autograd(interp, theta, which):
    """:func:`jacobian` by forward-mode AD in PyTorch: one Jacobian-vector product per parameter."""
    import torch

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


def crlb_logg(interp, theta, sigma, ranges, batch=256, progress=False, nuisance=None):
    """Marginal CRLB on log g for each spectrum (parameters ``theta`` (B, 4), noise ``sigma``).

    ``nuisance``: the parameters marginalised over (default: those that vary in ``ranges``)."""
    return fisher_information(interp, theta, sigma, ranges, batch, progress, nuisance)[1]


def fisher_information(interp, theta, sigma, ranges, batch=256, progress=False, nuisance=None):
    """(information matrices (B, k, k) with log g first, marginal CRLB (B,)) of each spectrum."""
    from ..progress import progress as _progress

    which = ["log_g"] + list(varied_params(ranges)[1:] if nuisance is None else nuisance)
    info = np.empty((len(theta), len(which), len(which)))
    for a in _progress(range(0, len(theta), batch), desc="Fisher CRLB", unit="batch", enabled=progress):
        J = jacobian(interp, theta[a:a + batch], which)
        info[a:a + batch] = fisher_matrix(J, sigma[a:a + batch])
    return info, marginal_crlb(info, target=0)


def schur_decay(info):
    """Marginal / unmarginalised information on log g, (I^-1)_gg^-1 / I_gg, in (0, 1] (B,): the
    fraction of the information that survives not knowing the nuisances."""
    return 1.0 / marginal_crlb(info, target=0) / info[:, 0, 0]


def fisher_logg_map(interp, theta, sigma, ranges, nuisance=None):
    """Per-pixel Fisher information on log g, marginal over the nuisances: (B, n_pix), unnormalised:
    where the information that an ideal estimator uses sits.

    ``theta`` (B, 4), ``sigma`` (B, n_pix); nuisances: ``nuisance``, by default the other parameters
    that vary in ``ranges``. With J = d mu / d theta (exact, :func:`jacobian`), weights
    w = 1 / sigma^2, b = I_nn^{-1} I_ng the regression of dmu/dlog g on the nuisance derivatives,
    the part of dmu/dlog g no nuisance explains is r = J_g - J_n b, and r_i^2 w_i summed over pixels
    is the marginal information 1 / CRLB (the Schur complement): each row sums to it. Normalised per
    spectrum the map does not depend on the noise level (a common factor of sigma cancels)."""
    which = ["log_g"] + list(varied_params(ranges)[1:] if nuisance is None else nuisance)
    J = jacobian(interp, theta, which)
    w = 1.0 / np.asarray(sigma, float) ** 2
    resid = J[..., 0]
    if len(which) > 1:
        info = fisher_matrix(J, sigma)
        b = np.linalg.solve(info[:, 1:, 1:], info[:, 1:, :1])[..., 0]     # (B, k-1)
        resid = resid - np.einsum("bpi,bi->bp", J[..., 1:], b)
    return resid ** 2 * w


def grid_steps(interp, theta):
    """Local grid step of every parameter at each point (B, 4): the width of its cell (0 on a
    single-node axis)."""
    out = np.zeros((len(theta), len(PARAMS)))
    for d, (a, (_, _, i, _)) in enumerate(zip(interp.axes, interp.stencil(theta))):   # the interpolant's cells
        if len(a) > 1:
            out[:, d] = a[i + 1] - a[i]
    return out


def fd_jacobian(interp, theta, which, steps):
    """Central finite differences of the normalised model, (B, n_pix, len(which)): column k is
    (mu(theta + h e_k) - mu(theta - h e_k)) / 2h with ``steps`` (B, 4) the step h of every parameter
    per point; one-sided (over h) where a side leaves the grid. The original study's method is this
    on grid nodes with h = the grid step."""
    theta = np.asarray(theta, float)
    steps = np.asarray(steps, float)
    cols = []
    for name in which:
        d = PARAMS.index(name)
        a = interp.axes[d]
        up, down = theta.copy(), theta.copy()
        up[:, d] = np.minimum(theta[:, d] + steps[:, d], a[-1])
        down[:, d] = np.maximum(theta[:, d] - steps[:, d], a[0])
        width = (up[:, d] - down[:, d])[:, None]
        cols.append((normalize(interp(up)) - normalize(interp(down))) / width)
    return np.stack(cols, axis=-1)


def step_sensitivity(interp, theta, sigma, ranges, fractions, nuisance=None):
    """CRLB from finite differences with step = ``f`` x the local grid step, over the exact CRLB, for
    each f in ``fractions``: {"fraction", "ratio_median", "ratio_p10", "ratio_p90"} rows."""
    which = ["log_g"] + list(varied_params(ranges)[1:] if nuisance is None else nuisance)
    exact = marginal_crlb(fisher_matrix(jacobian(interp, theta, which), sigma))
    rows = []
    for f in fractions:
        J = fd_jacobian(interp, theta, which, f * grid_steps(interp, theta))
        ratio = marginal_crlb(fisher_matrix(J, sigma)) / exact
        rows.append({"fraction": float(f), "ratio_median": float(np.median(ratio)),
                     "ratio_p10": float(np.percentile(ratio, 10)), "ratio_p90": float(np.percentile(ratio, 90))})
    return rows


def cell_profile(interp, theta0, logg, sigma, ranges, nuisance=None):
    """Marginal CRLB along a line of log g values through ``theta0`` (4,), noise ``sigma`` (n_pix,)
    fixed: shows whether the bound depends on where a point sits in its grid cell."""
    theta = np.repeat(np.asarray(theta0, float)[None], len(logg), axis=0)
    theta[:, PARAMS.index("log_g")] = logg
    return crlb_logg(interp, theta, np.repeat(np.asarray(sigma, float)[None], len(logg), axis=0), ranges,
                     nuisance=nuisance)


def r2_max(crlb, var_prior):
    """Ceiling per spectrum, clipped to [0, 1]."""
    return np.clip(1.0 - np.asarray(crlb) / var_prior, 0.0, 1.0)


def fisher_ceiling(interp, test, noise_level, ranges, snr_edges, var_prior, min_count=10):
    """The Cramer-Rao (Fisher) bound of a test set: (metrics, per-spectrum table, details with histograms of
    sigma_min = sqrt(CRLB), overall and per SNR bin).

    ``test``: a :class:`~pfslogg.data.dataset.SpectraSet` on the pixels of ``interp``; the noise is
    ``noise_level`` times its stored sigma. Per SNR bin (and over all spectra): the median and
    10/90th percentiles of the per-spectrum R^2_max -- a summary, not a bound on a mean -- and
    ``r2max_mean_crlb`` = 1 - mean(CRLB)/Var_prior, the same aggregate as a model's R^2; and
    ``outside_bins`` (:func:`outside_bins`), how many spectra lie below or above every SNR bin
    (their sigma_min histograms: details ``below`` and ``above``).
    """
    from ..evaluation import bin_index, rows_by_snr

    theta = test.params[list(PARAMS)].to_numpy(float)
    # The true sigma(theta, magnitude, seeing) -- the stored one times the noise level -- whatever
    # noise.sigma says: the bound is a property of the likelihood the noise was drawn from (the
    # information on log g of a spectrum given the true noise), not of what a model is given as sigma.
    # (That sigma also depends on theta: the information it adds per pixel is 1 / (2 N (S + V0)) of the
    # mean's -- N (S + V0) the pixel's variance in e^2, ~1e-4 here -- and is neglected.)
    sigma = np.empty((test.n, len(test.wave)))
    for s, e in test.chunks():
        sigma[s:e] = test.read(s, e)[1] * noise_level
    crlb = crlb_logg(interp, theta, sigma, ranges, progress=True)
    r2m = r2_max(crlb, var_prior)
    snr = test.snr(noise_level)

    sigma_min = np.sqrt(np.minimum(crlb, 1e6))

    def band(sel):
        return {"n": int(sel.sum()), "sigma_min_median": float(np.median(sigma_min[sel])),
                "r2max_median": float(np.median(r2m[sel])),
                "r2max_p10": float(np.percentile(r2m[sel], 10)), "r2max_p90": float(np.percentile(r2m[sel], 90)),
                "r2max_mean_crlb": float(max(0.0, 1 - np.mean(np.minimum(crlb[sel], 1e6)) / var_prior))}

    idx = bin_index(snr, snr_edges)
    bins = rows_by_snr(snr, snr_edges, lambda sel, b: {"snr_median": float(np.median(snr[sel])), **band(sel)},
                       min_count)
    below, above = outside_masks(snr, snr_edges)
    metrics = {"n": int(test.n), "var_prior": var_prior, "noise_level": float(noise_level),
               "nuisance": varied_params(ranges)[1:], "overall": band(np.ones(test.n, bool)), "snr_bins": bins,
               "outside_bins": outside_bins(snr, snr_edges)}
    edges = np.logspace(np.log10(max(sigma_min.min(), 1e-3)) - 1e-9, np.log10(sigma_min.max()) + 1e-9, 41)
    details = {"sigma_min_histogram": {"edges": edges.tolist(), "all": np.histogram(sigma_min, edges)[0].tolist(),
                                       "bins": [{"lo": b["lo"], "hi": b["hi"], "counts": np.histogram(
                                           sigma_min[idx == k], edges)[0].tolist()}
                                                for k, b in enumerate(_bins_by_lo(bins, snr_edges))],
                                       "below": np.histogram(sigma_min[below], edges)[0].tolist(),
                                       "above": np.histogram(sigma_min[above], edges)[0].tolist()}}
    return metrics, {"log_g": test.logg, "snr": snr, "crlb": crlb, "r2max": r2m}, details


def outside_masks(snr, edges):
    """``(below, above)``: the spectra that no SNR bin of ``edges`` holds (see
    :func:`pfslogg.evaluation.bin_index`), with SNR below the first edge and at or above the last."""
    snr = np.asarray(snr, float)
    return snr < edges[0], snr >= edges[-1]


def outside_bins(snr, edges):
    """``{"snr_min", "snr_max"}`` (the outer edges) and ``{"n_below", "n_above"}``, the counts of
    :func:`outside_masks`."""
    below, above = outside_masks(snr, edges)
    return {"snr_min": float(edges[0]), "snr_max": float(edges[-1]),
            "n_below": int(below.sum()), "n_above": int(above.sum())}


def _bins_by_lo(bins, edges):
    """The rows of ``bins`` in the order of ``edges``, with empty rows for bins left out (too few spectra)."""
    by_lo = {b["lo"]: b for b in bins}
    return [by_lo.get(float(lo), {"lo": float(lo), "hi": float(hi)}) for lo, hi in zip(edges[:-1], edges[1:])]
