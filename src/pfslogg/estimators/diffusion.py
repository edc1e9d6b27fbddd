"""A conditional diffusion (DDPM) denoiser of Track D as a model (a *transform*).

    est = make_estimator("diffusion", {"bound": 0.5}, random_state=0, kinds=("transform",))
    est.fit(train, val, FitContext(threads=1))       # views: noisy flux + sigma, and read_clean
    x_hat = est.transform(flux, sigma)               # (B, n_pix) -> (B, n_pix) float64, s = strength
    xs = est.sample(flux, sigma, n=8, seed=1)        # (8, B, n_pix) posterior samples
    est.save("models/diffusion/..."); est = load(...)

The network is :class:`pfslogg.nn.diffusion.ConditionalDiffusion` (a DDPM on the standardised clean
spectrum, conditioned on the noisy flux and its sigma; its module docstring defines ``steps`` (T),
``schedule`` and what the **bounded noise** ``bound`` = lambda means: None = plain DDPM, sampled from
pure noise; a number = trained on ``t <= t_lambda`` and sampled SDEdit-style from the observation
noised to ``sqrt(1 - abar) <= lambda``). It is trained by the one engine (:func:`pfslogg.nn.engine.
train`) with :class:`pfslogg.nn.targets.DiffusionTarget` (MSE on eps; validation: minus the wMAE of
the one-step x0 prediction, which picks the best epoch and stops early). The engine's hyper-
parameters (:data:`pfslogg.estimators.neural.ENGINE` but ``loss`` and ``dropout``) apply as for every
neural estimator.

``transform(flux, sigma, strength)``: with ``m`` the mean of ``n_samples`` posterior samples (seeds
``sample_seed``; deterministic), ``x_hat = y + s (m - y)``: ``s = 0`` is the identity (``flux`` back
bitwise, no sampling), ``s = 1`` the posterior mean, in between a blend (the Track D evaluation sweeps
``strengths``). The last posterior mean is cached (keyed by the bytes of flux and sigma), so a
strength sweep over the same spectra samples once. Model folder: ``estimator.json`` plus
``module.npz`` (the ``state_dict``, no pickle); loading rebuilds the network from the hyper-
parameters and the pixel count.

Measured (bench/bench_diffusion.py: 3000 spectra of the default data at noise level 1, 10 epochs of 16,
channels 8, 2 samples): bounded noise lambda = 0.5 (the default) cuts the wMAE of the noisy input by
42 %, plain DDPM raises it (x 2: its 50-step chain from pure noise drifts); on the 512-pixel test grid
both learn (bounded -22 %, plain -46 %). Sampling, one thread: ~210 spectra/s (bounded, 8 steps) and
~30 spectra/s (plain, 50 steps) per posterior sample of 4096 pixels.

Importing this module does not import torch.
"""

import hashlib
import math
from functools import partial

import numpy as np

from ..errors import InputError
from .base import Estimator, register
from .denoiser import DenoiserEstimator, _number
from .neural import ENGINE, NeuralEstimator, _make_init

MODEL = {
    "steps": 50,                 # T, diffusion steps (training and ancestral sampling)
    "schedule": "linear",        # beta schedule: "linear" or "cosine" (plain sampling blew up with cosine)
    "bound": 0.5,                # lambda of bounded noise (None: plain DDPM from pure noise, which failed at 4096 px)
    "n_samples": 4,              # posterior samples averaged by transform()
    "sample_seed": 0,            # seed of transform()'s samples
    "strengths": (0.5, 1.0),     # s swept by the Track D evaluation: x_hat = y + s (mean sample - y)
    "strength": 1.0,             # s of transform() by default (1: the posterior mean)
    "sigma_floor": 1e-3,         # the validation wMAE's sigma floor, flux units
    "patch": 4,                  # pixels folded into channels before the U-Net
    "channels": 16,              # U-Net width at the finest level (doubles per level)
    "levels": 2,                 # coarser resolutions below the finest
    "factor": 4,                 # down-sampling per level
    "kernel_size": 5,            # positions per convolution (odd)
}
HYPER = {**{k: v for k, v in ENGINE.items() if k not in ("loss", "dropout")}, "lr": 2e-3, **MODEL}


@register
class DiffusionEstimator(Estimator):
    """Conditional DDPM denoiser (see the module docstring): ``fit`` -> self, ``transform(flux,
    sigma, strength=None)`` -> denoised flux, ``sample(flux, sigma, n, seed)`` -> posterior samples;
    ``predict`` raises (a transform does not predict log g)."""

    class_id = "diffusion"
    label = "Diffusion denoiser"
    kind = "transform"
    accelerator = True   # trained by the engine: its cells run in the GPU rule
    threads = 1          # as the denoiser's: in bf16 177 s on two threads against ~270 s on one (2026-12-05)
    __init__ = _make_init({**HYPER, "random_state": 0})
    _state_json = ("n_pixels_", "wave_range_", "t_max_", "best_epoch_", "best_val_wmae_", "epochs_run_", "train_seconds_",
                   "spectra_per_s_", "n_params_", "history_")

    _config = NeuralEstimator._config
    _jsonable_params = NeuralEstimator._jsonable_params
    _save_native = NeuralEstimator._save_native
    _load_native = NeuralEstimator._load_native
    _bad = DenoiserEstimator._bad
    # the engine fit, the input checks and the refusal to predict are the residual denoiser's
    build = DenoiserEstimator.build
    _fit_engine = DenoiserEstimator._fit_engine
    _inputs = DenoiserEstimator._inputs
    predict = DenoiserEstimator.predict

    @classmethod
    def check_hyper(cls, hyper, where):
        """Unknown keys, then every value that needs no data (the pixel count is checked in ``fit``);
        messages name ``<where>.<key>`` (make_estimator's default: ``estimators.diffusion.hyper.<key>``)."""
        super().check_hyper(hyper, where)
        from ..nn.trainconfig import check_config

        if not str(where).endswith(".hyper"):
            where = f"{where}.{cls.class_id}.hyper"
        est = cls(**hyper)
        check_config(est._config(), where)
        est._check(None, where)

    def _check(self, n_pix, where=None):
        """InputError naming the first bad hyper-parameter (for ``n_pix`` pixels; None: any)."""
        from ..nn.schedule import SCHEDULES, bound_step

        bad = partial(self._bad, where=where)
        steps = self.steps
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or not 2 <= steps <= 10000:
            bad("steps", "an integer in [2, 10000]")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"one of {list(SCHEDULES)}")
        if self.bound is not None:
            if not (_number(self.bound) and 0 < self.bound < math.inf):
                bad("bound", "null (plain DDPM) or a finite number > 0 (the noise bound lambda)")
            if bound_step(self.steps, self.schedule, self.bound) < 1:
                bad("bound", f"a lambda at least the noise of step 1 of this schedule "
                             f"({math.sqrt(1 - _abar1(self.steps, self.schedule)):.4g})")
        for key, lo in (("n_samples", 1), ("sample_seed", 0), ("patch", 1), ("channels", 1), ("levels", 0),
                        ("factor", 2), ("kernel_size", 1)):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                bad(key, f"an integer >= {lo}")
        if self.kernel_size % 2 == 0:
            bad("kernel_size", "an odd number of positions ('same' padding)")
        s = self.strengths
        if isinstance(s, (str, bytes)) or not hasattr(s, "__len__") or not len(s) \
                or not all(_number(v) and 0 <= v <= 1 for v in s):
            bad("strengths", "a non-empty list of numbers in [0, 1]")
        if not (_number(self.strength) and 0 <= self.strength <= 1):
            bad("strength", "a number in [0, 1]")
        if not (_number(self.sigma_floor) and 0 < self.sigma_floor < math.inf):
            bad("sigma_floor", "a finite number > 0 (flux units)")
        unit = self.patch * self.factor ** self.levels
        if n_pix is not None and n_pix % unit:
            bad("patch", f"patch * factor**levels (= {unit}) dividing the {n_pix} pixels of a spectrum")

    def _module(self, n_pix, wave=None):
        from ..nn.diffusion import ConditionalDiffusion, DiffusionConfig

        return ConditionalDiffusion(DiffusionConfig(
            n_pix=int(n_pix), steps=int(self.steps), schedule=str(self.schedule),
            bound=None if self.bound is None else float(self.bound), patch=int(self.patch),
            channels=int(self.channels), levels=int(self.levels), factor=int(self.factor),
            kernel_size=int(self.kernel_size)))

    def _target(self, module):
        """What the engine learns for ``module``: the noise added at a drawn step up to its ``t_max``."""
        from ..nn.targets import DiffusionTarget

        return DiffusionTarget(module.t_max, float(self.sigma_floor))

    def fit(self, train, val, context=None, on_batch=None):
        """Train on ``train`` (fresh noise; noisy flux, sigma and ``read_clean``), select on ``val``
        (fixed noise). Returns self."""
        self._fit_engine(train, val, context, on_batch)
        self.t_max_ = int(self.module_.t_max)
        self._cache = None
        return self

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "module_")

    def sample(self, flux, sigma, n=1, seed=0):
        """``n`` posterior samples (n, B, n_pix) float64 of the noisy ``flux`` and its ``sigma`` (B,
        n_pix), flux units; deterministic for a ``seed`` (per spectrum: independent of the batch)."""
        from ..nn.diffusion import sample
        from ..nn.engine import resolve_device

        flux, sigma = self._inputs(flux, sigma, "sample")
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise InputError(f"{self.class_id}.sample: n {n!r}, expected an integer >= 1")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise InputError(f"{self.class_id}.sample: seed {seed!r}, expected an integer >= 0")
        device = resolve_device(None)   # CUDA when present; on CPU torch's threads as the caller set them
        return sample(self.module_.to(device), flux, sigma, int(n), int(seed), batch_size=256, device=device)

    def posterior_mean(self, flux, sigma):
        """The mean (B, n_pix) of ``n_samples`` samples of seed ``sample_seed`` (cached: last input)."""
        flux, sigma = self._inputs(flux, sigma, "transform")
        h = hashlib.blake2b(digest_size=16)
        for a in (flux, sigma):
            h.update(repr(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        key = (h.hexdigest(), int(self.n_samples), int(self.sample_seed))
        cache = getattr(self, "_cache", None)
        if cache is None or cache[0] != key:
            cache = (key, self.sample(flux, sigma, int(self.n_samples), int(self.sample_seed)).mean(0))
            self._cache = cache
        return cache[1]

    def transform(self, flux, sigma, strength=None):
        """Denoised flux (B, n_pix) float64: ``y + s (m - y)``, m the posterior mean of ``n_samples``
        seeded samples; ``strength``: s in [0, 1] (None: the model's ``strength``; 0 returns ``flux``
        bitwise, without sampling)."""
        s = self.strength if strength is None else strength
        if not (_number(s) and 0 <= s <= 1):
            raise InputError(f"{self.class_id}.transform: strength {s!r}, expected a number in [0, 1]")
        y, _ = self._inputs(flux, sigma, "transform")
        if s == 0:
            return y.copy()
        m = self.posterior_mean(y, sigma)
        return y + float(s) * (m - y)

    def fitted(self):
        self._check_fitted()
        return {"n_params": self.n_params_, "t_max": self.t_max_, "best_epoch": self.best_epoch_,
                "epochs_run": self.epochs_run_, "best_val_wmae": self.best_val_wmae_,
                "train_seconds": self.train_seconds_, "spectra_per_s": self.spectra_per_s_,
                "history": self.history_}


def _abar1(steps, schedule):
    from ..nn.schedule import alpha_bar

    return float(alpha_bar(steps, schedule)[1])
