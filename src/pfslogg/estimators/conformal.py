"""Per-star sigma rescaled on held-out stars (issue 17): normalised split-conformal calibration.

Class ``conformal`` builds on an upstream model that gives a per-star std (config ``upstream: {model:
<variant>}``: that variant's cell at the same noise level and training size, seed 0, trained once). Its
fit predicts held-out spectra with their std and sets a factor: the finite-sample conformal quantile of
the normalised residuals |y - mean| / std at the 68.3 % level (the ceil((n + 1) 0.683)-th smallest of n),
so that mean +- factor std holds the truth for 68.3 % of exchangeable stars. The mean is the upstream
model's, untouched (same R^2). The model is kept as a part (``upstream/model``), so the folder stands
alone.

* **One factor** (``snr_bins: null``, the default) corrects a model whose sigma is too narrow or too wide
  by the same factor everywhere, not one that is right at some SNR and wrong at another.
* **One factor per SNR bin** (``snr_bins: [edges]``; Mondrian conformal, Vovk et al. 2005): the stars are
  grouped by their SNR, median(flux / sigma) of what the model is given (so a prediction needs sigma),
  and each group gets its own quantile -- coverage then holds per bin, not only on average. Below the
  first edge and from the last edge up are bins of their own (len(edges) + 1 in all: the factor
  falls steeply with SNR where learned sigmas are too wide, so the bright stars beyond the last edge
  must not set the last bin's); a bin with fewer than :data:`MIN_PER_BIN` calibration stars takes the
  factor of all of them.

Which stars: ``calibrate_on: val`` (the default) uses the validation spectra (fixed noise, never seen in
training) -- but their SNR range is the training set's, narrower than the test's, so its extreme SNR
bins stay uncalibrated. ``calibrate_on: train`` uses the conformal variant's own training view: with
``train_source: simulator`` and ``train_mag`` the test's magnitudes, those are stars simulated afresh over
the test's SNR range (``n_calibration`` of them, more than the cell's size if asked: the factor per bin
then scatters less, which the +-3-point target needs; default the cell's size) with a seed of their own
(``split_seed(cfg, "calibration")``, class attribute ``simulator_stars``), never the stars a model trained
on -- neither the training file's nor the simulator-trained models' (``split_seed(cfg, "simulator")``), so
the posterior networks and the models trained at the test's magnitudes are calibrated the same way -- and
with a noise stream of their own (:func:`pfslogg.experiments.run_cell`): on the noise vectors of its
training stream a network's errors are smaller, and a factor set there covered ~2 points too few stars.
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
    upstream_means = True   # the upstream model's mean, untouched
    simulator_stars = "calibration"   # with train_source simulator: stars of their own (module docstring)
    UPSTREAM = {"model": "a fitted model that gives a per-star std"}
    _state_json = ("part_names_", "scale_", "n_val_", "val_coverage_before_", "scales_", "bin_counts_")
    _state_defaults = {"scales_": [], "bin_counts_": []}   # folders from before snr_bins: one factor

    def __init__(self, level=LEVELS[0], snr_bins=None, calibrate_on="val", n_calibration=None, random_state=0):
        self.level = level
        self.snr_bins = snr_bins
        self.calibrate_on = calibrate_on
        self.n_calibration = n_calibration
        self.random_state = random_state

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        level = hyper.get("level", cls.hyper_default("level"))
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise InputError(f"{where}.level: got {level!r}, expected a number in (0, 1) (the interval's coverage)")
        edges = hyper.get("snr_bins")
        if edges is not None and not (isinstance(edges, (list, tuple)) and len(edges) >= 2
                                      and all(isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0
                                              for e in edges) and all(b > a for a, b in zip(edges, edges[1:]))):
            raise InputError(f"{where}.snr_bins: got {edges!r}, expected null or >= 2 increasing positive SNR edges")
        on = hyper.get("calibrate_on", cls.hyper_default("calibrate_on"))
        if on not in CALIBRATE_ON:
            raise InputError(f"{where}.calibrate_on: got {on!r}, expected one of {', '.join(CALIBRATE_ON)}")
        n = hyper.get("n_calibration")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 10):
            raise InputError(f"{where}.n_calibration: got {n!r}, expected null (all) or an integer >= 10")

    @classmethod
    def check_variant(cls, cfg, name, where):
        """Calibrating on the variant's own simulated stars (``calibrate_on: train``, ``train_source:
        simulator``) is only honest when the upstream model did not train on the same simulated stars: the
        calibration seed is the conformal variants' own, so that holds unless the upstream model is one of
        them (a rescaling of a rescaling)."""
        from ..config import simulator_stars, train_source, upstream_specs

        v = cfg["estimators"][name]
        if (v.get("hyper") or {}).get("calibrate_on", cls.hyper_default("calibrate_on")) != "train":
            return
        if train_source(cfg, name) != "simulator":
            return   # the training file's stars: the upstream model's own unless it trained elsewhere
        up = upstream_specs(cfg, name).get("model")
        if (up and train_source(cfg, up["variant"]) == "simulator"
                and simulator_stars(cfg, up["variant"]) == simulator_stars(cfg, name)):
            raise InputError(f"{where}: estimators.{name}: calibrate_on train with train_source simulator would "
                             f"calibrate on the simulated stars its upstream model '{up['variant']}' was fitted on "
                             "(use calibrate_on val, or an upstream model that is not a simulator-calibrated rescaling)")

    @classmethod
    def simulated_rows(cls, hyper, size):
        """Stars simulated for calibration on them (``calibrate_on: train``): ``n_calibration`` when it asks
        for more than the cell's ``size``."""
        n = hyper.get("n_calibration")
        if hyper.get("calibrate_on", cls.hyper_default("calibrate_on")) == "train" and n is not None:
            return max(int(size), int(n))
        return int(size)

    @property
    def label(self):
        parts = getattr(self, "parts_", None)
        model = getattr(parts.get("upstream/model"), "label", None) if parts else None
        return f"{model or 'model'}, conformal sigma{' per SNR bin' if self.snr_bins is not None else ''}"

    def fit(self, train, val, context=None):
        ctx = context or FitContext()
        model = upstream_model(ctx, "model")
        if not getattr(model, "is_fitted", True):
            raise InputError(f"{upstream_key(ctx, 'model')}: '{model.class_id}' is not fitted")
        view = val if self.calibrate_on == "val" else train
        if view is None:
            raise InputError(f"{ctx.where}.calibrate_on: {self.calibrate_on!r}, but fit was given no "
                             f"{'validation' if self.calibrate_on == 'val' else 'training'} view")
        n = view.n if self.n_calibration is None else min(view.n, int(self.n_calibration))
        mean, std, snr = [], [], []
        for start in range(0, n, 2048):   # batches: a simulated calibration set is drawn as it is read
            flux, sigma = view.read(start, min(start + 2048, n))
            m, s = model.predict(flux, sigma, return_std=True)
            mean.append(np.asarray(m, float))
            std.append(np.asarray(s, float))
            snr.append(model_snr(flux, sigma) if self.snr_bins is not None else np.zeros(len(flux)))
        mean, std, snr = (np.concatenate(a) for a in (mean, std, snr))
        y = np.asarray(view.y, float)[:n]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(y - mean) / std
        ok = np.isfinite(z)
        if ok.sum() < 10:
            raise InputError(f"{ctx.where}: conformal calibration needs >= 10 {self.calibrate_on} spectra with a "
                             f"finite normalised residual, got {int(ok.sum())}")
        z, snr = z[ok], snr[ok]
        self.scale_ = conformal_quantile(z, self.level)
        self.n_val_ = int(len(z))
        self.val_coverage_before_ = float(np.mean(z <= 1.0))
        self.scales_, self.bin_counts_ = [], []
        if self.snr_bins is not None:   # Mondrian: one quantile per SNR bin, the global one where a bin is thin
            idx = _snr_bin(snr, self.snr_bins)
            for b in range(len(self.snr_bins) + 1):
                zb = z[idx == b]
                self.bin_counts_.append(int(len(zb)))
                self.scales_.append(conformal_quantile(zb, self.level) if len(zb) >= MIN_PER_BIN else self.scale_)
        self.parts_ = {"upstream/model": model}
        self.part_names_ = list(self.parts_)
        return self

    def predict(self, flux, sigma=None, return_std=False):
        self._check_fitted()
        model = self.parts_["upstream/model"]
        if not return_std:
            return model.predict(flux, sigma)
        mean, std = model.predict(flux, sigma, return_std=True)
        if self.scales_ and sigma is None:
            raise InputError("conformal.predict: a factor per SNR bin (hyper snr_bins) needs sigma, got None")
        return mean, self.rescale(std, model_snr(flux, sigma) if self.scales_ else None)

    def rescale(self, std, snr=None):
        """The upstream model's ``std`` times the factor of each star (that of its SNR bin, ``snr`` as
        :func:`model_snr` gives it, when there is one per bin): what :meth:`predict` returns as std, for a
        caller that already has the upstream model's predictions of the same spectra."""
        self._check_fitted()
        std = np.asarray(std, float)
        if not self.scales_:
            return std * self.scale_
        if snr is None:
            raise InputError("conformal.rescale: a factor per SNR bin (hyper snr_bins) needs each star's SNR")
        return std * np.asarray(self.scales_, float)[_snr_bin(np.asarray(snr, float), self.snr_bins)]

    def fitted(self):
        self._check_fitted()
        out = {"scale": self.scale_, "n_val": self.n_val_, "val_coverage_before": self.val_coverage_before_,
               "level": float(self.level), "calibrate_on": self.calibrate_on}
        if self.scales_:
            out.update({"snr_bins": [float(e) for e in self.snr_bins], "scales": list(self.scales_),
                        "bin_counts": list(self.bin_counts_)})
        return out


CALIBRATE_ON = ("val", "train")   # hyper calibrate_on: the validation spectra, or the variant's training view
MIN_PER_BIN = 50                   # calibration stars a bin needs for a factor of its own


def conformal_quantile(z, level):
    """The split-conformal quantile of scores ``z`` at ``level``: the ceil((n + 1) level)-th smallest of n
    (the largest when that rank exceeds n)."""
    z = np.sort(np.asarray(z, float))
    k = min(len(z), math.ceil((len(z) + 1) * float(level)))
    return float(z[k - 1])


def model_snr(flux, sigma):
    """The SNR of what a model is given (:func:`pfslogg.data.dataset.spectrum_snr` of its noisy flux and
    sigma, in float64; inf where sigma is 0)."""
    from ..data.dataset import spectrum_snr

    with np.errstate(divide="ignore", invalid="ignore"):
        return spectrum_snr(np.asarray(flux, float), np.asarray(sigma, float))


def _snr_bin(snr, edges):
    """The bin (0 .. len(edges)) of every SNR: 0 below the first edge, k for edges[k - 1] <= snr < edges[k],
    len(edges) from the last edge up (and NaN)."""
    return np.searchsorted(np.asarray(edges, float), snr, side="right")
