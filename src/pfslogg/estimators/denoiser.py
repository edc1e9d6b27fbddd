"""The residual denoiser of Track D as a model (a *transform*): x_hat = y + s g([y, sigma], s).

    est = make_estimator("denoiser", {"epochs": 10}, random_state=0, kinds=("transform",))
    est.fit(train, val, FitContext(threads=1))          # views: noisy flux + sigma, and read_clean
    x_hat = est.transform(flux, sigma)                  # (B, n_pix) -> (B, n_pix) float64, s = strength
    est.save("models/denoiser/nl1_n6000_s0"); est = load(...)

The network is :class:`pfslogg.nn.denoiser.ResidualDenoiser` (a small 1D U-Net; ``patch``,
``channels``, ``levels``, ``factor``, ``kernel_size``), trained by the one engine
(:func:`pfslogg.nn.engine.train`) with the clean-spectrum target
(:class:`pfslogg.nn.targets.CleanSpectrumTarget`): each training spectrum gets fresh noise and a
strength ``s`` drawn from ``strengths``; the loss is the sigma-weighted absolute error to the
noiseless flux, ``wMAE = mean |x_hat - x0| / max(sigma, sigma_floor)`` (``sigma_floor`` in flux
units, continuum ~ 1); validation scores it at ``strength`` (the s a downstream model applies) as
the gain over the identity, ``1 - wMAE(x_hat) / wMAE(y)``, which picks the best epoch and stops
training early. The engine's hyper-parameters (:data:`pfslogg.estimators.neural.ENGINE`, but
``loss`` -- always wMAE -- and ``dropout`` -- none; ``lr`` 3e-3 by default) apply as for every
neural estimator; the model folder is ``estimator.json`` plus ``module.npz`` (the ``state_dict``,
no pickle), and loading rebuilds the network from the hyper-parameters and the pixel count.

Importing this module does not import torch.
"""

import math
from functools import partial

import numpy as np

from ..errors import InputError
from .base import Estimator, register, wave_range
from .neural import ENGINE, NeuralEstimator, _make_init

MODEL = {
    "strengths": (0.05, 0.1, 0.2),   # s drawn per training spectrum (and swept by the Track D evaluation)
    "strength": 0.2,                 # s of transform() by default: what a downstream model applies
    "sigma_floor": 1e-3,             # the wMAE's sigma floor, flux units (continuum ~ 1)
    "patch": 4,                      # pixels folded into channels before the U-Net
    "channels": 16,                  # U-Net width at the finest level (doubles per level)
    "levels": 2,                     # coarser resolutions below the finest
    "factor": 4,                     # down-sampling per level
    "kernel_size": 5,                # positions per convolution (odd)
}
HYPER = {**{k: v for k, v in ENGINE.items() if k not in ("loss", "dropout")},
         "lr": 3e-3,   # 1e-3 learns too slowly from the zero-started output (validation gain 0.33 vs 0.44 after
                       # 175 steps of 128 spectra, 512 pixels)
         **MODEL}


@register
class DenoiserEstimator(Estimator):
    """Residual denoiser (see the module docstring): ``fit`` -> self, ``transform(flux, sigma,
    strength=None)`` -> denoised flux; ``predict`` raises (a transform does not predict log g)."""

    class_id = "denoiser"
    label = "Residual denoiser"
    kind = "transform"
    accelerator = True   # trained by the engine: its cells run in the GPU rule
    threads = 1          # one core: in bf16 (amp) a second thread made the default cell only 1.48x faster (142 s
    # against 210 s, 2026-12-05), so two cells side by side do more; the first cell to start (W.cell_priority)
    __init__ = _make_init({**HYPER, "random_state": 0})
    _state_json = ("n_pixels_", "wave_range_", "best_epoch_", "best_val_wmae_", "best_val_gain_", "epochs_run_",
                   "train_seconds_", "spectra_per_s_", "n_params_", "history_")

    # borrowed from the neural estimators: engine config, JSON hyper-parameters, weights file
    _config = NeuralEstimator._config
    _jsonable_params = NeuralEstimator._jsonable_params
    _save_native = NeuralEstimator._save_native
    _load_native = NeuralEstimator._load_native

    @classmethod
    def check_hyper(cls, hyper, where):
        """Unknown keys, then every value that needs no data (the pixel count is checked in ``fit``);
        messages name ``<where>.<key>`` (``where`` without a variant, e.g. make_estimator's default
        "estimators": ``estimators.denoiser.hyper.<key>``)."""
        super().check_hyper(hyper, where)
        from ..nn.trainconfig import check_config

        if not str(where).endswith(".hyper"):
            where = f"{where}.{cls.class_id}.hyper"
        est = cls(**hyper)
        check_config(est._config(), where)
        est._check(None, where)

    def _bad(self, key, expected, where=None):
        where = where or f"estimators.{self.class_id}.hyper"
        raise InputError(f"{where}.{key}: got {getattr(self, key)!r}, expected {expected}")

    def _check(self, n_pix, where=None):
        """InputError naming the first hyper-parameter that is not what it should be (for ``n_pix``
        pixels; None: whatever the pixel count); ``where``: the config key of the hyper-parameters."""
        bad = partial(self._bad, where=where)
        s = self.strengths
        if isinstance(s, (str, bytes)) or not hasattr(s, "__len__") or not len(s) \
                or not all(_number(v) and 0 < v < math.inf for v in s):
            bad("strengths", "a non-empty list of finite numbers > 0")
        if not (_number(self.strength) and 0 <= self.strength < math.inf):
            bad("strength", "a finite number >= 0")
        if not (_number(self.sigma_floor) and 0 < self.sigma_floor < math.inf):
            bad("sigma_floor", "a finite number > 0 (flux units)")
        for key, lo in (("patch", 1), ("channels", 1), ("levels", 0), ("factor", 2), ("kernel_size", 1)):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                bad(key, f"an integer >= {lo}")
        if self.kernel_size % 2 == 0:
            bad("kernel_size", "an odd number of positions ('same' padding)")
        unit = self.patch * self.factor ** self.levels
        if n_pix is not None and n_pix % unit:
            bad("patch", f"patch * factor**levels (= {unit}) dividing the {n_pix} pixels of a spectrum")

    def _target(self, module):
        """What the engine learns for ``module``: the clean spectrum, by wMAE at the strengths."""
        from ..nn.targets import CleanSpectrumTarget

        return CleanSpectrumTarget([float(s) for s in self.strengths], float(self.strength), float(self.sigma_floor))

    def _module(self, n_pix, wave=None):
        from ..nn.denoiser import DenoiserConfig, ResidualDenoiser

        return ResidualDenoiser(DenoiserConfig(n_pix=int(n_pix), patch=int(self.patch), channels=int(self.channels),
                                               levels=int(self.levels), factor=int(self.factor),
                                               kernel_size=int(self.kernel_size)))

    def build(self, n_pix, wave=None):
        """The unfitted network for ``n_pix`` pixels (checks the hyper-parameters first)."""
        from ..nn.trainconfig import check_config

        check_config(self._config(), f"estimators.{self.class_id}.hyper")
        self._check(n_pix)
        return self._module(n_pix)

    def fit(self, train, val, context=None, on_batch=None):
        """Train on ``train`` (fresh noise, its generator consumed; noisy flux, sigma and ``read_clean``
        of the same rows), select on ``val`` (fixed noise). Returns self."""
        result = self._fit_engine(train, val, context, on_batch)
        self.best_val_gain_ = float(result.best_score)
        return self

    def _fit_engine(self, train, val, context, on_batch):
        """Build the network, train it through the engine on ``self._target(module)`` and record what
        every transform trained by the engine keeps (weights, pixels, wavelength grid, best epoch and
        its validation wMAE, timings, history); the engine's result is returned for the rest."""
        import torch

        from ..nn.engine import train as run
        from ..nn.models import count_params

        if not train.noise_level > 0:
            raise InputError(f"estimators.{self.class_id}: the training view has noise level {train.noise_level}: "
                             "nothing to denoise (expected a noise level > 0)")
        n_pix = train.n_pixels
        with torch.random.fork_rng(devices=[]):   # the caller's torch RNG is left as it was
            torch.manual_seed(int(self.random_state))
            module = self.build(n_pix)
            signature = {"class": self.class_id, "hyper": self._jsonable_params(), "n_train": int(train.n),
                         "noise_level": float(train.noise_level), "n_pixels": int(n_pix)}
            result = run(module, train, val, self._config(), context, signature, on_batch,
                         target=self._target(module))
        self.module_ = module.cpu()
        self.n_pixels_ = int(n_pix)
        self.wave_range_ = wave_range(train.wave)   # the grid it learned (a downstream model checks it)
        best = int(result.best_epoch)
        self.best_epoch_ = best
        self.best_val_wmae_ = float(result.history["val_loss"][best - 1]) if best else None   # None: no epoch scored
        self.epochs_run_, self.train_seconds_ = int(result.epochs_run), float(result.seconds)
        self.spectra_per_s_ = float(result.spectra_per_s)
        self.n_params_ = count_params(module)
        self.history_ = {k: [float(v) for v in vs] for k, vs in result.history.items()}
        return result

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "module_")

    def transform(self, flux, sigma, strength=None):
        """Denoised flux (B, n_pix) float64 of the noisy ``flux`` and its ``sigma`` (B, n_pix), flux
        units; ``strength``: s (None: the model's ``strength``; 0 returns ``flux`` bitwise). Eval mode,
        float32 network, batches of 512: deterministic."""
        from ..nn.engine import denoise, resolve_device

        self._check_fitted()
        s = self.strength if strength is None else strength
        if not (_number(s) and 0 <= s < math.inf):
            raise InputError(f"{self.class_id}.transform: strength {s!r}, expected a finite number >= 0")
        flux, sigma = self._inputs(flux, sigma, "transform")
        device = resolve_device(None)   # CUDA when present (float32 there too)
        return denoise(self.module_.to(device), flux, sigma, float(s), batch_size=512, device=device)

    def _inputs(self, flux, sigma, what):
        """``(flux, sigma)`` as float64 arrays (B, n_pix) of the fitted pixel count; InputError naming
        ``<class>.<what>`` otherwise."""
        self._check_fitted()
        flux = np.asarray(flux, dtype=float)
        sigma = np.asarray(sigma, dtype=float) if sigma is not None else None
        if flux.ndim != 2 or flux.shape[1] != self.n_pixels_:
            raise InputError(f"{self.class_id}.{what}: flux of shape {flux.shape}, expected (B, {self.n_pixels_})")
        if sigma is None or sigma.shape != flux.shape:
            raise InputError(f"{self.class_id}.{what}: sigma of shape {None if sigma is None else sigma.shape}, "
                             f"expected that of the flux {flux.shape}")
        return flux, sigma

    def predict(self, flux, sigma=None):
        raise InputError(f"{self.class_id}: '{self.label}' is a transform (a denoiser), it does not predict "
                         "log g; call transform(flux, sigma, strength)")

    def fitted(self):
        self._check_fitted()
        return {"n_params": self.n_params_, "best_epoch": self.best_epoch_, "epochs_run": self.epochs_run_,
                "best_val_wmae": self.best_val_wmae_, "best_val_gain": self.best_val_gain_,
                "train_seconds": self.train_seconds_, "spectra_per_s": self.spectra_per_s_,
                "history": self.history_}


def _number(v):
    """True for a real number (not a bool), NumPy ones included."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v == v
