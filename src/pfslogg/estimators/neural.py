"""Neural estimators (Track A): MLP, MLP with a linear shortcut, 1D CNN, spectral ViT.

All share :class:`NeuralEstimator`: hyper-parameters as keyword arguments (the engine's, below, and
each class's ``MODEL`` ones), ``fit`` through the one engine (:func:`pfslogg.nn.engine.train`),
``predict(flux, sigma)`` in batches in eval mode (float32; deterministic), and a model folder of
``estimator.json`` plus ``module.npz`` (the torch ``state_dict``, one array per key, read back
with ``allow_pickle=False``); loading rebuilds the network from the hyper-parameters and the
stored pixel count.

``sigma`` is not used: a network is trained at one noise level (the condition of its cell) and
learns from the noisy flux alone, as the original study's networks did.

Importing this module does not import torch (seconds): :mod:`pfslogg.nn` is imported in the
methods that need it.
"""

import inspect

import numpy as np

from ..errors import InputError
from ..uncertainty import PIT, STD_LOSSES, VARIANCE_LOSSES
from .base import Estimator, register

NATIVE = "module.npz"

# Hyper-parameters of every neural estimator and their defaults (the engine's TrainConfig).
ENGINE = {
    "epochs": 20,              # passes over the training view (at most)
    "batch_size": 256,         # spectra per step
    "lr": 1e-3,                # peak AdamW learning rate
    "weight_decay": 0.01,      # AdamW decoupled weight decay (matrices only)
    "warmup_fraction": 0.05,   # share of the steps in the linear warm-up
    "min_lr_ratio": 0.01,      # the cosine ends at min_lr_ratio * lr
    "clip": 1.0,               # gradient-norm clip (0: none)
    "patience": 5,             # epochs without a better validation R^2 before stopping
    "loss": "mse",             # on the standardised log g: "mse", "l1"; "gaussian_nll" or "beta_nll" add a variance
                               # head and a per-star std (predict(..., return_std=True))
    "standardize": "global",   # input scale: "global" (one number) or "pixel"
    "amp": None,               # bf16 autocast of the forward pass: None on CUDA only; true on CPU too (AVX-512 BF16:
                               # convolutions 1.3-1.9x faster a step, the ViT 1.1x with its attention in float32; bench/bench_nn.py --amp)
    "block_size": 1024,        # rows per HDF5 read
    "buffer_blocks": 4,        # blocks shuffled together
    "dropout": 0.1,            # in every network
    "extra_labels": [],        # parameters learned beside log g by a second head (multi-label): T_eff, M_H, a_M
    "components": 5,           # loss "mdn": Gaussians in the mixture posterior over log g and extra_labels
}
EXTRA_LABELS = ("T_eff", "M_H", "a_M")


def _make_init(defaults):
    """An ``__init__`` that stores the keyword arguments ``defaults`` names (and nothing else),
    with a real signature, so get_params/make_estimator/load see every hyper-parameter."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in defaults.items()]
    sig = inspect.Signature(params)

    def __init__(self, **kwargs):
        sig.bind(self, **kwargs)   # TypeError on an unknown keyword
        for k, v in defaults.items():
            setattr(self, k, kwargs.get(k, v))

    __init__.__signature__ = sig
    return __init__


class NeuralEstimator(Estimator):
    """Base of the neural estimators: subclasses set ``class_id``, ``label``, ``MODEL`` (their
    hyper-parameters with defaults; may override ENGINE's) and ``_network(n_pix, wave)``."""

    MODEL = {}
    accelerator = True   # trained by the engine: its cells run in the GPU rule (run_neural_cell)
    threads = 1          # torch threads on CPU: one a cell, two cells side by side on a laptop's 2 cores. The main
    # job from clean (2026-12-03, idle): 316 s with the CNN and ViT on one thread each against 403 s on two (CPU
    # 506 s against 608 s: a second OpenMP thread buys 1.2-1.4x per cell, not 2x; on a shared machine it stalls
    # 10-50x, bench/bench_nn.py); R2 the same within the seed noise (ViT 0.773/0.770, CNN 0.766/0.769).
    # More on a bigger machine: --set-threads run_neural_cell=8. The thread count is part of a cell's
    # bitwise identity (a resume must use the same count).
    _state_json = ("n_pixels_", "label_mean_", "label_std_", "best_epoch_", "best_val_r2_", "epochs_run_",
                   "train_seconds_", "spectra_per_s_", "n_params_", "history_")

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.__init__ = _make_init({**ENGINE, **cls.MODEL, "random_state": 0})

    # -- what subclasses define ----------------------------------------------------------------
    def _network(self, n_pix, wave=None):  # pragma: no cover - interface
        """The bare network: standardised flux (B, n_pix) -> standardised log g (B,)."""
        raise NotImplementedError

    def _check(self, n_pix):
        """InputError for hyper-parameters that do not fit ``n_pix`` pixels (subclasses add)."""

    # -- shared --------------------------------------------------------------------------------
    def _bad(self, key, expected):
        raise InputError(f"estimators.{self.class_id}.hyper.{key}: got {getattr(self, key)!r}, expected {expected}")

    def _config(self):
        from ..nn.trainconfig import TrainConfig

        keys = set(inspect.signature(TrainConfig).parameters) - {"seed"}
        return TrainConfig(**{k: getattr(self, k) for k in keys if hasattr(self, k)}, seed=int(self.random_state))

    def _module(self, n_pix, wave=None):
        from ..nn.models import Standardized

        mdn = self.loss == "mdn"
        return Standardized(self._network(n_pix, wave), n_pix, variance=self.loss in VARIANCE_LOSSES,
                            extra=len(self.extra_labels), mixture=int(self.components) if mdn else 0)

    def _check_labels(self):
        extra = list(self.extra_labels or ())
        if any(c not in EXTRA_LABELS for c in extra) or len(set(extra)) != len(extra):
            self._bad("extra_labels", f"distinct names among {list(EXTRA_LABELS)} (log g is always learned)")
        if extra and self.loss in VARIANCE_LOSSES:
            self._bad("extra_labels", f"none with loss {self.loss!r} (a variance head learns log g alone)")
        if self.loss == "mdn" and not (isinstance(self.components, (int, np.integer)) and self.components >= 1):
            self._bad("components", "an integer >= 1 (Gaussians in the mixture posterior)")

    @property
    def gives_std(self):
        """Whether the network gives a per-star std: a variance head (loss "gaussian_nll" or "beta_nll") or a
        mixture posterior (loss "mdn")."""
        return self.loss in STD_LOSSES

    @classmethod
    def provides_std(cls, hyper):
        return hyper.get("loss", cls.MODEL.get("loss", ENGINE["loss"])) in STD_LOSSES

    def build(self, n_pix, wave=None):
        """The unfitted module for ``n_pix`` pixels (checks the hyper-parameters first)."""
        from ..nn.trainconfig import check_config

        check_config(self._config(), f"estimators.{self.class_id}.hyper")
        self._check(n_pix)
        self._check_labels()
        return self._module(n_pix, wave)

    def _target(self, module):
        """What the engine learns for this network (:class:`~pfslogg.nn.targets.LoggTarget`): log g with
        the configured loss, the extra labels beside it, the mixture head's likelihood for loss 'mdn'."""
        from ..nn.targets import LoggTarget

        return LoggTarget(self.loss, self.extra_labels, mixture=getattr(module, "mix_head", None))

    def fit(self, train, val, context=None, on_batch=None):
        """Train on ``train`` (fresh noise; its generator is consumed), select on ``val``. Returns self."""
        import torch

        from ..nn.engine import train as run
        from ..nn.models import count_params

        n_pix = train.n_pixels
        with torch.random.fork_rng(devices=[]):   # the caller's torch RNG is left as it was
            torch.manual_seed(int(self.random_state))
            module = self.build(n_pix, train.wave)
            signature = {"class": self.class_id, "hyper": self._jsonable_params(), "n_train": int(train.n),
                         "noise_level": float(train.noise_level), "n_pixels": int(n_pix)}
            result = run(module, train, val, self._config(), context, signature, on_batch,
                         target=self._target(module))
        self.module_ = module.cpu()
        self.n_pixels_ = int(n_pix)
        self.label_mean_, self.label_std_ = float(module.y_mean), float(module.y_std)
        self.best_epoch_, self.best_val_r2_ = int(result.best_epoch), float(result.best_val_r2)
        self.epochs_run_, self.train_seconds_ = int(result.epochs_run), float(result.seconds)
        self.spectra_per_s_ = float(result.spectra_per_s)
        self.n_params_ = count_params(module)
        self.history_ = {k: [float(v) for v in vs] for k, vs in result.history.items()}
        return self

    def _jsonable_params(self):
        import json

        from .base import jsonable

        return json.loads(json.dumps(jsonable(self.get_params())))

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "module_")

    def predict(self, flux, sigma=None, return_std=False):
        """log g (B,) in dex of noisy flux (B, n_pix); ``sigma`` is not used. ``return_std``: also the
        per-star sd of the variance head (loss "gaussian_nll"/"beta_nll"; InputError without one)."""
        from ..nn.engine import predict, resolve_device

        self._check_fitted()
        flux = np.asarray(flux)
        if flux.ndim != 2 or flux.shape[1] != self.n_pixels_:
            raise InputError(f"{self.class_id}.predict: flux of shape {flux.shape}, expected (B, {self.n_pixels_})")
        if return_std and not self.gives_std:
            raise InputError(f"{self.class_id}.predict: return_std needs a variance head or a mixture (hyper loss one "
                             f"of {list(STD_LOSSES)}; this one has loss {self.loss!r})")
        device = resolve_device(None)   # CUDA when present (float32 there too)
        return predict(self.module_.to(device), flux, batch_size=512, device=device, return_std=return_std)

    def predict_all(self, flux, sigma, truth=None):
        """:meth:`Estimator.predict_all`, with ``label:<name>`` for each of ``extra_labels`` (their
        predictions in their units; :func:`pfslogg.evaluation.evaluate` scores them against the truth)."""
        from ..evaluation import LABEL

        out = super().predict_all(flux, sigma, truth)
        if self.extra_labels:
            extra = self.predict_labels(flux)
            out.update({f"{LABEL}{c}": extra[:, k] for k, c in enumerate(self.extra_labels)})
        if self.loss == "mdn" and truth is not None and "log_g" in truth:   # the exact PIT of the truth
            out[PIT] = self.predict_cdf(flux, np.asarray(truth["log_g"], float))
        return out

    def predict_cdf(self, flux, logg):
        """The mixture posterior's CDF of log g at ``logg`` (B,) for noisy flux (B, n_pix): the exact PIT of
        the truth (loss "mdn" only)."""
        self._check_fitted()
        if self.loss != "mdn":
            raise InputError(f"{self.class_id}.predict_cdf: needs a mixture posterior (hyper loss mdn), this one has "
                             f"loss {self.loss!r}")
        flux, logg = np.asarray(flux, np.float32), np.asarray(logg, np.float32)
        if logg.shape != (len(flux),):
            raise InputError(f"{self.class_id}.predict_cdf: {logg.shape} log g values for {len(flux)} spectra")
        out = self._batched(lambda m, x, y: m.logg_cdf(x, y), flux, len(flux), extra=(logg,))
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def predict_labels(self, flux, sigma=None):
        """The ``extra_labels`` (B, k) float64 in their units of noisy flux (B, n_pix); eval mode, batches."""
        self._check_fitted()
        if not self.extra_labels:
            raise InputError(f"{self.class_id}.predict_labels: this network learns log g alone (hyper extra_labels)")
        out = self._batched(lambda m, x: m.extra_labels(x), np.asarray(flux, np.float32), len(flux))
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.extra_labels)))

    def _batched(self, fn, flux, n, batch=512, extra=()):
        """``[fn(module, x, *e).float() as NumPy]`` over batches x of float32 ``flux`` rows [0, n) and e the
        same rows of each array in ``extra`` (as tensors), the trained module in eval mode without gradients
        (CUDA when present), its mode restored after."""
        import torch

        from ..nn.engine import resolve_device

        device = resolve_device(None)
        module = self.module_.to(device)
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                return [fn(module, *(torch.from_numpy(a[i:i + batch]).to(device) for a in (flux, *extra)))
                        .float().cpu().numpy() for i in range(0, n, batch)]
        finally:
            module.train(was)

    def encode(self, flux, sigma=None):
        """Latents (B, T, D) float32 of noisy flux (B, n_pix): the trained network's trunk
        (:meth:`pfslogg.nn.models.Standardized.encode`), eval mode, batches of 512; T tokens along
        the wavelength axis (:meth:`token_spans`). ``sigma`` is not used (as in :meth:`predict`)."""
        self._check_fitted()
        flux = np.asarray(flux, np.float32)
        if flux.ndim != 2 or flux.shape[1] != self.n_pixels_:
            raise InputError(f"{self.class_id}.encode: flux of shape {flux.shape}, expected (B, {self.n_pixels_})")
        out = self._batched(lambda m, x: m.encode(x), flux, max(len(flux), 1))   # an empty batch gives (0, T, D)
        return np.concatenate(out).astype(np.float32, copy=False)

    def token_spans(self):
        """(T, 2) int array: the pixel span [start, stop) of every token of :meth:`encode`."""
        self._check_fitted()
        return np.asarray(self.module_.token_spans(), dtype=np.int64)

    def fitted(self):
        self._check_fitted()
        return {"n_params": self.n_params_, "best_epoch": self.best_epoch_, "epochs_run": self.epochs_run_,
                "best_val_r2": self.best_val_r2_, "train_seconds": self.train_seconds_,
                "spectra_per_s": self.spectra_per_s_, "history": self.history_}

    def _save_native(self, folder):
        state = {k: v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}   # no pickle
        np.savez(folder / NATIVE, **state)
        return [NATIVE]

    def _load_native(self, folder):
        import torch

        module = self._module(int(self.n_pixels_))
        try:
            with np.load(folder / NATIVE, allow_pickle=False) as z:
                state = {k: torch.from_numpy(z[k]) for k in z.files}
            module.load_state_dict(state)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise InputError(f"{folder / NATIVE}: unreadable network weights ({type(e).__name__}: {e})") from None
        self.module_ = module.eval()


@register
class MLPEstimator(NeuralEstimator):
    """Multi-layer perceptron on the standardised pixels (``hidden``: widths of the hidden layers)."""

    class_id = "mlp"
    label = "MLP"
    MODEL = {"hidden": (512, 128)}
    threads = 1   # too small for a second core: 34.5 s a cell on one thread, 31.0 s on two (same bytes),
                  # so two MLP cells side by side finish in about half the time of two on both cores

    def _check(self, n_pix):
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            self._bad("hidden", "a non-empty list of widths >= 1")

    def _network(self, n_pix, wave=None):
        from ..nn.models import MLP

        return MLP(n_pix, self.hidden, self.dropout)


@register
class ShortcutMLPEstimator(MLPEstimator):
    """MLP with a linear shortcut: log g = w^T x + b + g(x), g an MLP that starts at zero."""

    class_id = "mlp_shortcut"
    label = "MLP + linear shortcut"

    def _network(self, n_pix, wave=None):
        from ..nn.models import ShortcutMLP

        return ShortcutMLP(n_pix, self.hidden, self.dropout)


@register
class CNNEstimator(NeuralEstimator):
    """Small-kernel 1D CNN (:class:`pfslogg.nn.models.CNN`): ``depth`` blocks of Conv1d (kernel
    ``kernel_size`` pixels, ``dilation``), batch norm, GELU, max-pool by ``pool``; widths from
    ``channels`` doubling per block up to ``max_channels``; average pooling to ``positions`` bins;
    linear head. Defaults: the laptop CNN (bench/bench_nn.py)."""

    class_id = "cnn"
    label = "CNN"
    MODEL = {"kernel_size": 9, "dilation": 1, "channels": 8, "depth": 4, "max_channels": 128, "pool": 4,
             "positions": 8}

    def _check(self, n_pix):
        for key in ("kernel_size", "dilation", "channels", "depth", "max_channels", "positions"):
            if not isinstance(getattr(self, key), (int, np.integer)) or getattr(self, key) < 1:
                self._bad(key, "an integer >= 1")
        if self.kernel_size % 2 == 0:
            self._bad("kernel_size", "an odd number of pixels ('same' padding)")
        if not isinstance(self.pool, (int, np.integer)) or self.pool < 1 or n_pix // self.pool ** self.depth < 1:
            self._bad("pool", f"an integer >= 1 with pool**depth <= {n_pix} pixels")

    def _network(self, n_pix, wave=None):
        from ..nn.models import CNN

        return CNN(n_pix, self.kernel_size, self.dilation, self.channels, self.depth, self.max_channels, self.pool,
                   self.positions, self.dropout)


@register
class ViTEstimator(NeuralEstimator):
    """Spectral Vision Transformer (:mod:`pfslogg.nn.vit`). Defaults: the laptop ViT (patch 64 ->
    64 tokens, width 64, 2 layers, 4 heads, MLP 128; bench/bench_nn.py); the paper's is patch 16,
    dim 256, depth 6, heads 8, mlp 1024, lr 3e-4. ``tokenizer``: "patch" or "overlap" (``stride``
    < ``patch``, plus a (mean, scale) token); ``position``: "learned" or "sinusoidal_wavelength"."""

    class_id = "vit"
    label = "ViT"
    MODEL = {"patch": 64, "stride": 0, "tokenizer": "patch", "position": "learned", "dim": 64, "depth": 2,
             "heads": 4, "mlp": 128, "lr": 5e-4, "weight_decay": 0.05}

    def vit_config(self, n_pix):
        from ..nn.vit import ViTConfig

        return ViTConfig(n_pix=n_pix, patch=self.patch, stride=self.stride, tokenizer=self.tokenizer,
                         position=self.position, dim=self.dim, depth=self.depth, heads=self.heads, mlp=self.mlp,
                         dropout=self.dropout)

    def _check(self, n_pix):
        from ..nn.vit import POSITIONS, TOKENIZERS

        if self.tokenizer not in TOKENIZERS:
            self._bad("tokenizer", f"one of {list(TOKENIZERS)}")
        if self.position not in POSITIONS:
            self._bad("position", f"one of {list(POSITIONS)}")
        for key in ("patch", "dim", "depth", "heads", "mlp"):
            if not isinstance(getattr(self, key), (int, np.integer)) or getattr(self, key) < 1:
                self._bad(key, "an integer >= 1")
        if self.dim % self.heads:
            self._bad("dim", f"a multiple of heads = {self.heads}")
        if self.patch > n_pix:
            self._bad("patch", f"at most the {n_pix} pixels of a spectrum")
        if self.tokenizer == "patch" and (self.stride not in (0, self.patch) or n_pix % self.patch):
            self._bad("patch", f"a divisor of the {n_pix} pixels with stride 0 (tokenizer 'patch': "
                               "non-overlapping patches that tile the spectrum)")
        if self.tokenizer == "overlap" and not (isinstance(self.stride, (int, np.integer))
                                                and 1 <= self.stride < self.patch):
            self._bad("stride", f"an integer in [1, patch = {self.patch}) for tokenizer 'overlap'")

    def _network(self, n_pix, wave=None):
        from ..nn.vit import ViT

        return ViT(self.vit_config(n_pix), wave)
