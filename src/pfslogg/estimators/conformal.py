"""Per-star sigma rescaled on the validation set (issue 17): normalised split-conformal calibration.

Class ``conformal`` builds on an upstream model that gives a per-star std (config ``upstream: {model:
<variant>}``: that variant's cell at the same noise level and training size, seed 0, trained once). Its
fit predicts the validation spectra (fixed noise, never seen in training) with their std and sets one
factor ``scale_``: the finite-sample conformal quantile of the normalised residuals |y - mean| / std at
the 68.3 % level (the ceil((n + 1) 0.683)-th smallest of n), so that mean +- scale std holds the truth
for 68.3 % of exchangeable stars. The mean is the upstream model's, untouched (same R^2). The model is
kept as a part (``upstream/model``), so the folder stands alone.

One factor for all stars: it corrects a model whose sigma is too narrow or too wide by the same factor
everywhere, not one that is right at some SNR and wrong at another -- and the validation set's SNR range
is the training set's (narrower than the test's), so coverage per SNR bin is still the check.
"""

import math

import numpy as np

from ..errors import InputError
from ..uncertainty import LEVELS
from .base import Composite, FitContext, register, upstream_key, upstream_model


@register
class ConformalEstimator(Composite):
    """An upstream model's mean with its std times one factor set on the validation set (module docstring)."""

    class_id = "conformal"
    kind = "estimator"
    gives_std = True
    UPSTREAM = {"model": "a fitted model that gives a per-star std"}
    _state_json = ("part_names_", "scale_", "n_val_", "val_coverage_before_")

    def __init__(self, level=LEVELS[0], random_state=0):
        self.level = level
        self.random_state = random_state

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        level = hyper.get("level", cls.hyper_default("level"))
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise InputError(f"{where}.level: got {level!r}, expected a number in (0, 1) (the interval's coverage)")

    @property
    def label(self):
        parts = getattr(self, "parts_", None)
        model = getattr(parts.get("upstream/model"), "label", None) if parts else None
        return f"{model or 'model'}, conformal sigma"

    def fit(self, train, val, context=None):
        ctx = context or FitContext()
        model = upstream_model(ctx, "model")
        if not getattr(model, "is_fitted", True):
            raise InputError(f"{upstream_key(ctx, 'model')}: '{model.class_id}' is not fitted")
        flux, sigma = val.load(np.float64)
        mean, std = model.predict(flux, sigma, return_std=True)
        y = np.asarray(val.y, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(y - np.asarray(mean, float)) / np.asarray(std, float)
        z = z[np.isfinite(z)]
        n = len(z)
        if n < 10:
            raise InputError(f"{ctx.where}: conformal calibration needs >= 10 validation spectra with a finite "
                             f"normalised residual, got {n}")
        k = min(n, math.ceil((n + 1) * float(self.level)))   # the conformal rank
        self.scale_ = float(np.sort(z)[k - 1])
        self.n_val_ = int(n)
        self.val_coverage_before_ = float(np.mean(z <= 1.0))
        self.parts_ = {"upstream/model": model}
        self.part_names_ = list(self.parts_)
        return self

    def predict(self, flux, sigma=None, return_std=False):
        self._check_fitted()
        model = self.parts_["upstream/model"]
        if not return_std:
            return model.predict(flux, sigma)
        mean, std = model.predict(flux, sigma, return_std=True)
        return mean, np.asarray(std, float) * self.scale_

    def fitted(self):
        self._check_fitted()
        return {"scale": self.scale_, "n_val": self.n_val_, "val_coverage_before": self.val_coverage_before_,
                "level": float(self.level)}
