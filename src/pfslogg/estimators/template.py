"""Template fitting: the chi^2 minimum over the instrument-grid nodes inside the prior ranges.

Each template is normalised like the data (its mean over pixels); a free scale factor is fitted analytically per
template (chi^2_min = sum w y^2 - (sum w y t)^2 / sum w t^2, w = 1/sigma^2), so the whole search
is two matrix products. The estimate is the log g of the best node. Needs no training data: its
"weights" are the grid itself, which the model folder names by path and sha256 (the templates are
read again on load, and a changed grid is refused) instead of copying it into every model folder.
"""

import numpy as np

from .. import PARAMS
from ..errors import InputError
from ..data.interp import normalize
from .base import Estimator, register


def chi2_sigma(sigma):
    """``sigma`` (float64) for chi^2 weights 1 / sigma^2, with 1 where it is 0: at noise level 0 there is
    no noise to weight by, so every pixel counts the same."""
    sigma = np.asarray(sigma, float)
    return np.where(sigma > 0, sigma, 1.0)


def grid_templates(grid_path, ranges, grid=None):
    """(templates (m, n_pix) float32 normalised as the data, node parameters (m, 4)) inside ``ranges``;
    ``grid``: the grid of ``grid_path`` when the caller has read it already."""
    from ..data.gridio import read_grid

    grid = read_grid(grid_path, fields=("flux",)) if grid is None else grid
    mesh = np.stack(np.meshgrid(*[grid.axes[p] for p in PARAMS], indexing="ij"), axis=-1)
    keep = grid.mask.copy()
    for d, p in enumerate(PARAMS):
        if ranges and p in ranges:
            lo, hi = ranges[p]
            keep &= (mesh[..., d] >= lo - 1e-9) & (mesh[..., d] <= hi + 1e-9)
    if not keep.any():
        raise InputError(f"{grid_path}: no grid node inside the ranges {ranges}")
    t = grid.flux[keep].astype(float)
    return normalize(t).astype(np.float32), mesh[keep]


@register
class TemplateEstimator(Estimator):
    class_id = "template"
    learns = False   # chi2 against the grid's own spectra: nothing learned from training spectra
    label = "Template fit"
    gives_std = True
    _state_json = ("grid_", "ranges_", "n_templates_")

    def __init__(self, batch=512, random_state=0):
        self.batch = batch
        self.random_state = random_state  # unused: the fit is deterministic

    def fit(self, train=None, val=None, context=None):
        from ..provenance import sha256_file

        if context is None or not context.grid:
            raise InputError(f"estimators: class '{self.class_id}' needs the instrument grid (FitContext.grid)")
        self.grid_ = {"path": str(context.grid), "sha256": sha256_file(context.grid)}
        self.ranges_ = {p: list(v) for p, v in (context.ranges or {}).items()}
        self._use_grid(context.grid)
        self.n_templates_ = int(len(self.templates_))
        return self

    def _use_grid(self, path):
        """Read the grid ``path`` into what predict needs (fit, and load after the sha256 check)."""
        self.templates_, self.node_params_ = grid_templates(path, self.ranges_)

    def _load_native(self, folder):
        from ..provenance import sha256_file

        path = self.grid_["path"]
        try:
            sha = sha256_file(path)
        except OSError:
            raise InputError(f"{folder}: its templates come from the grid {path}, which is not there") from None
        if sha != self.grid_["sha256"]:
            raise InputError(f"{folder}: the grid {path} changed since the model was fitted (sha256 differs)")
        self._use_grid(path)

    def chi2(self, flux, sigma):
        w = 1.0 / chi2_sigma(sigma) ** 2
        y = np.asarray(flux, float)
        t = self.templates_.astype(float)
        syt = (w * y) @ t.T
        stt = w @ (t**2).T
        syy = (w * y**2).sum(1, keepdims=True)
        return syy - syt**2 / stt

    def best_params(self, flux, sigma):
        """Parameters (B, 4: T_eff, log g, [M/H], [alpha/M]) of each spectrum's chi^2-best node."""
        self._check_fitted()
        out = np.empty((len(flux), len(PARAMS)))
        b = int(self.batch)
        for a in range(0, len(flux), b):
            best = np.argmin(self.chi2(flux[a:a + b], sigma[a:a + b]), axis=1)
            out[a:a + b] = self.node_params_[best]
        return out

    def predict(self, flux, sigma, return_std=False):
        """log g of each spectrum's chi^2-best node; with ``return_std`` also its analytic width: the
        sd of log g over the nodes weighted by exp(-(chi^2 - chi^2_min) / 2), the template fit's own
        posterior on its grid (0 where one node carries it: the grid's step then limits it)."""
        if not return_std:
            return self.best_params(flux, sigma)[:, PARAMS.index("log_g")]
        self._check_fitted()
        g = self.node_params_[:, PARAMS.index("log_g")]
        mean, std = np.empty(len(flux)), np.empty(len(flux))
        b = int(self.batch)
        for a in range(0, len(flux), b):
            c = self.chi2(flux[a:a + b], sigma[a:a + b])
            best = np.argmin(c, axis=1)
            w = np.exp(-0.5 * (c - c[np.arange(len(c)), best][:, None]))
            w /= w.sum(axis=1, keepdims=True)
            m = w @ g
            mean[a:a + b] = g[best]
            std[a:a + b] = np.sqrt(np.einsum("bk,bk->b", w, (g[None, :] - m[:, None]) ** 2))
        return mean, std

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "templates_")

    def fitted(self):
        self._check_fitted()
        return {"n_templates": self.n_templates_}
