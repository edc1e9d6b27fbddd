"""Interpolated maximum-likelihood fit: the template fit's best node, refined between the nodes.

The template fit (:mod:`.template`) can only answer with a grid node, so even without noise its log g
is quantised to the grid step. This estimator starts each spectrum at its chi^2-best node
(:meth:`TemplateEstimator.best_params`) and moves the parameters that vary in the prior ranges
(:func:`pfslogg.ceilings.fisher.varied_params`) to the least chi^2 against the interpolated grid, by
the batched Levenberg-Marquardt fit of the ceilings (:func:`pfslogg.ceilings.mlfit.ml_fit`, exact
Jacobian), then clips them to the prior -- as the Bayes ceiling refines the spectra its grid does
not resolve (:func:`pfslogg.ceilings.bayes.refine_unresolved`). The model is the data sets' clean
flux: the cubic :class:`~pfslogg.data.interp.GridInterpolator`, mean-normalised (evaluated in
float64; the data sets store its float32 values, a difference of ~1e-7 relative), so at high SNR
the estimate is efficient (its variance the Cramer-Rao bound, ``ml_variance`` in the ceilings).

Noise level 0 (sigma = 0): every pixel weighs the same (:func:`.template.chi2_sigma`), as in the
template fit. A parameter held at a grid node by the prior (a_M by default) is fixed on that node's
slice of the grid: the same function there, without the nodes that only carry its derivative.
Needs no training data; like the template fit it names the grid by path and sha256 in the model
folder and refuses a changed grid on load.
"""

import numpy as np

from .. import PARAMS
from ..errors import InputError
from .base import register
from .template import TemplateEstimator, chi2_sigma, grid_templates

LOGG = PARAMS.index("log_g")


def fixed_slice(grid, ranges):
    """``grid`` cut to one node on every axis whose prior range is a single value on a node (the
    cubic interpolant there is that node's value exactly; off a node the whole axis is kept)."""
    from ..data.gridio import Grid

    axes, flux, mask = dict(grid.axes), grid.flux, grid.mask
    for d, p in enumerate(PARAMS):
        lo, hi = ranges[p]
        at = np.flatnonzero(np.abs(np.asarray(axes[p], float) - lo) < 1e-9)
        if lo == hi and len(at) and len(axes[p]) > 1:
            axes[p] = np.asarray(axes[p])[at]
            flux, mask = np.take(flux, at, axis=d), np.take(mask, at, axis=d)
    return Grid(wave=grid.wave, axes=axes, flux=flux, cont=None, mask=mask, attrs=grid.attrs)


@register
class MLFitEstimator(TemplateEstimator):
    class_id = "mlfit"
    label = "Interpolated ML fit"
    gives_std = True

    def __init__(self, batch=128, iterations=30, random_state=0):
        self.batch = batch              # spectra per Levenberg-Marquardt batch (memory ~ batch x n_pix x 100 bytes)
        self.iterations = iterations    # most Levenberg-Marquardt steps per spectrum
        self.random_state = random_state  # unused: the fit is deterministic

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        for key in ("batch", "iterations"):
            v = hyper.get(key, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{where}.{key}: expected an integer >= 1, got {v!r}")

    def fit(self, train=None, val=None, context=None):
        where = context.where if context is not None else "estimators"
        type(self).check_hyper({"batch": self.batch, "iterations": self.iterations}, where)
        return super().fit(train, val, context)

    def _use_grid(self, path):
        from ..data.gridio import read_grid
        from ..data.interp import GridInterpolator

        grid = read_grid(path, fields=("flux",))
        self.templates_, self.node_params_ = grid_templates(path, self.ranges_, grid)
        sliced = fixed_slice(grid, self.prior())
        if not sliced.mask.all():
            # the fit may step anywhere on the grid's axes; a missing node would stop it mid-prediction
            raise InputError(f"{path}: class '{self.class_id}' needs a grid without holes, "
                             f"{int((~sliced.mask).sum())} node(s) are missing")
        self.interp_ = GridInterpolator(sliced)

    def prior(self):
        """{parameter: [lo, hi]} of every parameter: the prior ranges fitted with, else the grid's axis."""
        nodes = self.node_params_
        return {p: [float(v) for v in self.ranges_.get(p, [nodes[:, d].min(), nodes[:, d].max()])]
                for d, p in enumerate(PARAMS)}

    def fit_params(self, flux, sigma):
        """Least-chi^2 parameters (B, 4) of spectra ``flux`` (B, n_pix) with noise ``sigma``, inside the prior."""
        from ..ceilings.fisher import varied_params
        from ..ceilings.mlfit import ml_fit

        self._check_fitted()
        prior = self.prior()
        which = varied_params(prior)
        lo, hi = np.array([prior[p] for p in PARAMS]).T
        out = np.empty((len(flux), len(PARAMS)))
        b = int(self.batch)
        for a in range(0, len(flux), b):
            y, s = np.asarray(flux[a:a + b], float), chi2_sigma(sigma[a:a + b])
            theta, _ = ml_fit(self.interp_, y, s, self.best_params(y, s), which, iterations=int(self.iterations))
            out[a:a + b] = np.clip(theta, lo, hi)
        return out

    def predict(self, flux, sigma, return_std=False):
        """log g of the least-chi^2 fit; with ``return_std`` also its analytic width: the Laplace
        approximation of the posterior at the fit, sqrt((F^-1)_{log g, log g}) with F the Fisher matrix
        of the varied parameters there (the nuisance parameters marginalised; the prior's edges ignored,
        so it is too wide for a star whose posterior the prior cuts)."""
        theta = self.fit_params(flux, sigma)
        if not return_std:
            return theta[:, LOGG]
        from ..ceilings.fisher import fisher_matrix, jacobian, marginal_crlb, varied_params

        which = varied_params(self.prior())
        std = np.empty(len(theta))
        b = int(self.batch)
        for a in range(0, len(theta), b):
            info = fisher_matrix(jacobian(self.interp_, theta[a:a + b], which), chi2_sigma(sigma[a:a + b]))
            std[a:a + b] = np.sqrt(marginal_crlb(info, target=0))
        std[~(np.asarray(sigma) > 0).any(axis=1)] = 0.0    # no noise: the posterior is a point
        return theta[:, LOGG], std

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "interp_")

    def fitted(self):
        from ..ceilings.fisher import varied_params

        return {**super().fitted(), "varied": varied_params(self.prior())}
