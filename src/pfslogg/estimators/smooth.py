"""Gaussian smoothing: the training-free baseline denoiser of Track D (a *transform*).

A transform maps a noisy spectrum to a denoised one instead of predicting log g (``kind =
"transform"``): ``transform(flux, sigma, strength=None)`` -> denoised flux (B, n_pix) float64. This
one moves each spectrum ``y`` a fraction ``s`` of the way toward its Gaussian-smoothed self::

    x_hat = y + s * (G_w * y - y)

with ``G_w`` a Gaussian kernel of standard deviation ``w`` pixels (edges: the nearest pixel repeated).
``s = 0`` returns the input exactly; ``s = 1`` is plain smoothing. It has the same form as the residual
denoiser ``x_hat = y + s g([y, sigma])`` of the original study (REFERENCE.md), with ``g`` fixed to the
smoothing residual instead of learned, so the two share one strength axis in the evaluation
(:func:`pfslogg.denoising.evaluate_transform`).

Nothing is learned unless ``widths`` is given: then ``fit`` picks the width among ``widths`` with the
lowest wMAE (:func:`pfslogg.denoising.wmae`) on (at most ``max_val`` spectra of) the validation view at
the default ``strength``; the training view is not read.
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..errors import InputError
from .base import Estimator, register


def _check_number(value, name, where, lo=0.0):
    """``value`` as a float >= ``lo`` (finite); InputError naming ``where.name`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name}: expected a number >= {lo:g}, got {value!r}") from None
    if not np.isfinite(v) or v < lo:
        raise InputError(f"{where}: {name}: expected a finite number >= {lo:g}, got {value!r}")
    return v


def _check_list(values, name, where):
    """``values`` as a non-empty list of finite floats >= 0; InputError naming ``where.name`` otherwise."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not len(values):
        raise InputError(f"{where}: {name}: expected a non-empty list of numbers >= 0, got {values!r}")
    return [_check_number(v, name, where) for v in values]


def gaussian_smooth(flux, width):
    """``flux`` (B, n_pix) convolved along the pixels with a Gaussian of standard deviation ``width``
    pixels (float64; ``width`` 0: a copy of the input)."""
    flux = np.asarray(flux, float)
    if width == 0:
        return flux.copy()
    return gaussian_filter1d(flux, float(width), axis=-1, mode="nearest", truncate=4.0)


@register
class GaussianSmoothing(Estimator):
    """x_hat = y + s (G_w * y - y): see the module docstring.

    ``width``: Gaussian sigma in pixels (1.5 pixels ~ 0.64 A, about 0.9 of the R = 5000 line-spread
    sigma at 8000 A); ``strength``: the default s; ``strengths``: the s values the evaluation sweeps;
    ``widths``: widths to choose from on the validation view (None: ``width`` as given); ``max_val``:
    the most validation spectra read for that choice; ``floor``: the wMAE's sigma floor there (flux units).
    """

    class_id = "smooth"
    label = "Gaussian smoothing"
    kind = "transform"
    _state_json = ("width_", "search_")

    def __init__(self, width=1.5, strength=1.0, strengths=(0.25, 0.5, 1.0), widths=None, max_val=2048,
                 floor=1e-6, random_state=0):
        self.width = width
        self.strength = strength
        self.strengths = strengths
        self.widths = widths
        self.max_val = max_val
        self.floor = floor
        self.random_state = random_state   # unused: nothing is random

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        _check_number(hyper.get("width", 1.5), "width", where)
        _check_number(hyper.get("strength", 1.0), "strength", where)
        _check_list(hyper.get("strengths", (0.25, 0.5, 1.0)), "strengths", where)
        if hyper.get("widths") is not None:
            _check_list(hyper["widths"], "widths", where)
        if _check_number(hyper.get("max_val", 2048), "max_val", where, lo=1) != int(hyper.get("max_val", 2048)):
            raise InputError(f"{where}: max_val: expected an integer >= 1, got {hyper['max_val']!r}")
        if not _check_number(hyper.get("floor", 1e-6), "floor", where) > 0:
            raise InputError(f"{where}: floor: expected a number > 0, got {hyper['floor']!r}")

    def fit(self, train=None, val=None, context=None):
        """Keep ``width`` or choose it among ``widths`` by validation wMAE; returns self."""
        from ..denoising import wmae

        where = context.where if context is not None else self.class_id
        self.check_hyper({k: v for k, v in self.get_params().items() if k != "random_state"}, where)
        if self.widths is None:
            self.width_, self.search_ = float(self.width), None
            return self
        if val is None:
            raise InputError(f"{where}: widths: choosing the width needs a validation view")
        n = min(int(self.max_val), val.n)
        flux, sigma = val.read(0, n)
        clean = val.read_clean(0, n)
        widths = [float(w) for w in self.widths]
        scores = [float(np.mean(wmae(self._apply(flux, w, float(self.strength)), clean, sigma, self.floor)))
                  for w in widths]
        self.width_ = widths[int(np.argmin(scores))]
        self.search_ = {"width": widths, "val_wmae": scores, "strength": float(self.strength), "n_val": n}
        return self

    @staticmethod
    def _apply(flux, width, s):
        if s == 0:
            return np.array(flux, dtype=float)   # the identity, exactly
        return flux + s * (gaussian_smooth(flux, width) - flux)

    def transform(self, flux, sigma=None, strength=None):
        """Denoised flux (B, n_pix) float64 of the noisy ``flux`` (B, n_pix); ``sigma`` is not read
        (smoothing does not weight by the noise); ``strength``: s (None: the model's ``strength``)."""
        self._check_fitted()
        s = _check_number(self.strength if strength is None else strength, "strength", self.class_id)
        flux = np.asarray(flux, dtype=float)
        if flux.ndim != 2:
            raise InputError(f"{self.class_id}: flux: expected shape (B, n_pix), got {flux.shape}")
        if not np.all(np.isfinite(flux)):
            raise InputError(f"{self.class_id}: flux: contains NaN or infinite values")
        return self._apply(flux, self.width_, s)

    def predict(self, flux, sigma=None):
        raise InputError(f"{self.class_id}: '{self.label}' is a transform (a denoiser), it does not predict "
                         "log g; call transform(flux, sigma, strength)")

    def fitted(self):
        self._check_fitted()
        return {"width": self.width_, "search": self.search_}
