"""Maximum-likelihood fits with the true forward model: does a correct estimator reach the CRLB?

The Cramer-Rao bound is a ceiling only if some estimator can reach it. At high SNR the maximum-
likelihood estimate (least chi^2 against the same model that made the data -- the interpolated,
mean-normalised grid, :func:`pfslogg.ceilings.fisher.normalized_model`) is efficient when the model
is smooth on the scale of the parameter errors: over many noise draws its variance of log g should
equal the marginal CRLB. With the multilinear interpolant it does not next to a log g node (the
derivative jumps there); with the cubic (C1) one it should everywhere. :func:`ml_variance` measures
the ratio and its sampling interval (the variance of n draws of a normal variable is chi^2_{n-1}
distributed).

:func:`ml_fit` is a batched Levenberg-Marquardt (Gauss-Newton with an adaptive damping) over many
spectra at once, with the exact Jacobian; :func:`ml_fit_scipy` is the same fit one spectrum at a
time with ``scipy.optimize.least_squares``, kept as an independent check of the first.
"""

import numpy as np

from .. import PARAMS
from ..data.interp import normalize
from ..errors import InputError
from .fisher import fisher_matrix, jacobian, marginal_crlb, model_and_jacobian


def _chi2(interp, theta, y, sigma):
    return np.sum(((y - normalize(interp(theta))) / sigma) ** 2, axis=1)


def _clip(interp, theta):
    lo = np.array([a[0] for a in interp.axes])
    hi = np.array([a[-1] for a in interp.axes])
    return np.clip(theta, lo, hi)


class PixelModel:
    """chi^2 and Gauss-Newton normal equations of spectra ``y`` (B, n_pix) with noise ``sigma`` over
    their pixels, from the interpolated model (:func:`ml_fit`'s default; ``idx`` picks the spectra)."""

    def __init__(self, interp, y, sigma, which):
        self.interp, self.y, self.sigma, self.which = interp, y, sigma, which

    def chi2(self, idx, theta):
        return _chi2(self.interp, theta, self.y[idx], self.sigma[idx])

    def normal_equations(self, idx, theta):
        """(J^T S^-1 J (B, k, k), J^T S^-1 (y - mu) (B, k)) at ``theta`` of the spectra ``idx``."""
        mu, J = model_and_jacobian(self.interp, theta, self.which)
        Jw = J / self.sigma[idx, :, None]
        return (np.einsum("bpi,bpj->bij", Jw, Jw),
                np.einsum("bpi,bp->bi", Jw, (self.y[idx] - mu) / self.sigma[idx]))


def ml_fit(interp, y, sigma, theta0, which, iterations=30, tol=1e-9, model=None):
    """Least-chi^2 parameters of spectra ``y`` (B, n_pix) with noise ``sigma``, starting at ``theta0``
    (B, 4); only the parameters named in ``which`` move. Returns (theta (B, 4), chi2 (B,)).

    ``model``: what gives chi2(idx, theta) and normal_equations(idx, theta) of the spectra ``idx``
    (default :class:`PixelModel`; the Bayes refinement passes one that works on a window of grid
    nodes, :class:`pfslogg.ceilings.bayes.LocalModel`)."""
    y, sigma = np.asarray(y, float), np.asarray(sigma, float)
    theta = np.array(theta0, dtype=float)
    if theta.shape != (len(y), len(PARAMS)):
        raise InputError(f"ml_fit: theta0 {theta.shape}, expected ({len(y)}, {len(PARAMS)})")
    model = PixelModel(interp, y, sigma, which) if model is None else model
    cols = [PARAMS.index(p) for p in which]
    chi2 = model.chi2(np.arange(len(y)), theta)
    damping = np.full(len(y), 1e-3)
    active = np.ones(len(y), bool)
    for _ in range(iterations):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        t = theta[idx]
        A, g = model.normal_equations(idx, t)
        diag = np.einsum("bii->bi", A)
        step = np.linalg.solve(A + damping[idx, None, None] * np.einsum("bi,ij->bij", diag, np.eye(len(cols))),
                               g[..., None])[..., 0]
        cand = t.copy()
        cand[:, cols] += step
        cand = _clip(interp, cand)
        new = model.chi2(idx, cand)
        better = new < chi2[idx]
        theta[idx[better]] = cand[better]
        chi2[idx[better]] = new[better]
        damping[idx] = np.where(better, damping[idx] / 3, damping[idx] * 4)
        small = np.max(np.abs(step) / np.maximum(np.sqrt(1.0 / np.maximum(diag, 1e-300)), 1e-300), axis=1) < tol ** 0.5
        active[idx[(better & small) | (damping[idx] > 1e8)]] = False
    return theta, chi2


def ml_fit_scipy(interp, y, sigma, theta0, which):
    """The same fit, one spectrum at a time, by ``scipy.optimize.least_squares`` (trust region)."""
    from scipy.optimize import least_squares

    cols = [PARAMS.index(p) for p in which]
    lo = np.array([interp.axes[c][0] for c in cols])
    hi = np.array([interp.axes[c][-1] for c in cols])
    out = np.array(theta0, dtype=float)
    for b in range(len(y)):
        def full(x, b=b):
            t = out[b].copy()
            t[cols] = x
            return t[None]

        res = least_squares(lambda x: ((y[b] - normalize(interp(full(x)))[0]) / sigma[b]),
                            out[b, cols], jac=lambda x: -jacobian(interp, full(x), which)[0] / sigma[b][:, None],
                            bounds=(lo, hi), x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        out[b, cols] = res.x
    return out


def ml_variance(interp, theta, sigma, which, n_draws=500, seed=0, confidence=0.95):
    """Empirical variance of the ML log g over ``n_draws`` noise draws at the point ``theta`` (4,)
    with noise ``sigma`` (n_pix,), against the marginal CRLB over ``which[1:]`` at that point
    (``seed``: anything ``np.random.default_rng`` takes).

    Returns {"var", "crlb", "ratio", "ratio_ci", "bias", "bias_se", "n_draws"}: ``ratio_ci`` is the
    interval of var / CRLB from the chi^2 distribution of a sample variance.
    """
    from scipy import stats

    if which[0] != "log_g":
        raise InputError(f"ml_variance: the first parameter must be log_g, got {which}")
    theta = np.asarray(theta, float)[None]
    sigma = np.asarray(sigma, float)[None]
    mu = normalize(interp(theta))
    rng = np.random.default_rng(seed)
    y = mu + sigma * rng.standard_normal((n_draws, mu.shape[1]))
    start = np.repeat(theta, n_draws, axis=0)
    fit, _ = ml_fit(interp, y, np.repeat(sigma, n_draws, axis=0), start, which)
    g = fit[:, PARAMS.index("log_g")]
    crlb = float(marginal_crlb(fisher_matrix(jacobian(interp, theta, which), sigma))[0])
    var = float(np.var(g, ddof=1))
    k = n_draws - 1
    alpha = 1 - confidence
    ci = [var * k / stats.chi2.ppf(1 - alpha / 2, k) / crlb, var * k / stats.chi2.ppf(alpha / 2, k) / crlb]
    return {"var": var, "crlb": crlb, "ratio": var / crlb, "ratio_ci": [float(c) for c in ci],
            "bias": float(np.mean(g) - theta[0, PARAMS.index("log_g")]), "bias_se": float(np.sqrt(var / n_draws)),
            "n_draws": int(n_draws)}
