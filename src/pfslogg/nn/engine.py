"""The one training engine of every neural estimator (DESIGN.md section 4).

    result = train(module, train_view, val_view, TrainConfig(epochs=20, lr=1e-3), context)
    result = train(denoiser, train_view, val_view, config, context, target=CleanSpectrumTarget())

What is learned is a *target* (:mod:`.targets`): by default :class:`~.targets.LoggTarget` -- ``module``
a :class:`~pfslogg.nn.models.Standardized` network (raw flux (B, n_pix) -> standardised log g (B,)),
loss ``config.loss`` on the standardised label, score R^2; or :class:`~.targets.CleanSpectrumTarget`
-- ``module`` a :class:`~pfslogg.nn.denoiser.ResidualDenoiser`, loss the sigma-weighted absolute
error to the clean spectrum, score the wMAE gain over the identity. The engine:

* sets the module's input scales from the first training block and (log g) its label scales from
  the training log g (dex) -- on a fresh start; a resumed run takes them from the checkpoint;
* streams batches with fresh noise from the HDF5 file (:mod:`.data`); AdamW; a learning rate that
  rises linearly over the first ``warmup_fraction`` of the steps and then falls along a cosine to
  ``min_lr_ratio * lr`` (set every step); gradient-norm clipping at ``clip``; the target's loss;
* after every epoch scores the validation view (fixed noise) with the target: loss and score
  (log g: R^2 = 1 - MSE / Var(log g), :func:`pfslogg.evaluation.r2_score`); keeps the weights of
  the best score and stops after ``patience`` epochs without a better one; the best weights are
  loaded at the end;
* runs the forward pass under bf16 autocast (flag ``amp``; None = on CUDA, off on CPU; True on
  CPU too: oneDNN's bf16 convolutions and matrix products, weights, optimiser and loss in float32 --
  the CNN's step 1.3x, the denoiser's 1.7x, the ViT's 1.1x faster on an AVX-512-BF16 core -- its attention
  stays float32 (:mod:`.vit`), whose bf16 backward was 7x slower --, so a variant asks for it,
  ``bench/bench_nn.py --amp``) and, on CUDA only, through ``torch.compile``
  (flag ``compile``; None = on for CUDA; refused on CPU, where it made the CNN 2x slower);
* shows a tqdm bar per epoch with the running training loss, logs one line per epoch (train
  loss, val loss, val R^2, lr) and, when it loads a checkpoint, where it resumes (logger
  ``pfslogg.nn.engine``), and returns (and writes, with a checkpoint folder) the per-epoch log
  ``epoch, train_loss, val_loss, val_r2, lr, seconds, spectra_per_s`` (``val_r2``: the target's
  score column, ``val_gain`` for a denoiser).

Checkpoints (``context.checkpoint_dir``; None: none), written atomically after every epoch::

    <checkpoint_dir>/checkpoint.pt   torch.save of tensors and one JSON string (loaded with
                                     torch.load(weights_only=True): no code is unpickled):
                                     model, best (state dicts), optimizer, scheduler, torch_rng,
                                     cuda_rng, meta (JSON: version, signature = config + hyper,
                                     epoch, batch, step, stream generator states, python random
                                     state, best_r2 (the best score, whatever the target),
                                     best_epoch, bad_epochs, history, finished); a target other
                                     than log g adds its spec to the signature (log g adds
                                     nothing: older checkpoints still resume)
    <checkpoint_dir>/history.csv     the per-epoch log

SIGTERM (Slurm pre-emption or time limit): the current batch is finished, a checkpoint of that
point is written (mid-epoch: with the generator states of the epoch's start and the number of
batches done, which a resumed run replays without training), and :class:`Preempted` is raised
(exit status 143). A rerun with the same folder resumes and ends with bitwise the same weights as
an uninterrupted run (on CPU; CUDA kernels are not bitwise deterministic). A folder whose run
finished returns its result without training; one written for another configuration is refused.
"""

import csv
import io
import json
import logging
import math
import os
import random
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, write_text
from ..errors import InputError
from ..progress import progress
from .data import BlockStream, loader
from .targets import COLUMNS, LOSSES, CleanSpectrumTarget, LoggTarget, Target, denoise, evaluate, predict  # noqa: F401
from .trainconfig import TrainConfig, check_config  # noqa: F401  (torch-free: the configuration check needs no torch)

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
VERSION = 1


def make_optimizer(module, lr, weight_decay):
    """The engine's AdamW: decoupled weight decay on matrices only (biases, norms, CLS tokens: none), fused --
    one kernel per parameter instead of about ten passes over it, on CPU as on CUDA (the MLP's optimiser step
    on one thread 9.7 -> 2.1 ms; it was 35 % of the step). The same update as the unfused loop up to rounding."""
    decay = [p for p in module.parameters() if p.ndim >= 2]
    other = [p for p in module.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": other, "weight_decay": 0.0}], lr=lr, fused=True)


class Preempted(SystemExit):
    """Training stopped by SIGTERM after saving its checkpoint; rerun to resume. Exit status 143."""

    def __init__(self, message):
        super().__init__(143)
        self.message = message

    def __str__(self):
        return self.message


@dataclass
class TrainResult:
    """What a fit reports: the per-epoch log (lists by column) and its summary."""

    history: dict = field(default_factory=lambda: {c: [] for c in COLUMNS})   # columns: the target's
    best_epoch: int = 0           # 1-based epoch of the restored weights
    best_score: float = -math.inf  # the target's validation score there (log g: R^2)
    epochs_run: int = 0
    seconds: float = 0.0          # training time (no validation)
    spectra_per_s: float = 0.0    # training throughput over all epochs

    @property
    def best_val_r2(self):
        """The best validation score under its log g name (R^2 for log g)."""
        return self.best_score


def lr_factor(step, total, warmup, min_ratio):
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based) of ``total``:
    linear rise to 1 over ``warmup`` steps, then a cosine down to ``min_ratio`` at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup - 1))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def train_step(model, opt, sched, x, z, loss_fn, clip, amp):
    """One AdamW step on a batch x (B, n_pix), z (B,) standardised: (loss, gradient norm before
    clipping). ``x`` may be a tuple of input tensors (``model(*x)``) and ``z`` anything ``loss_fn``
    takes (a target's label). Gradients are clipped to norm ``clip`` (0: not) before the step."""
    inputs = x if isinstance(x, (tuple, list)) else (x,)
    with torch.autocast(inputs[0].device.type, dtype=torch.bfloat16, enabled=amp):
        pred = model(*inputs)
    loss = loss_fn(pred.float(), z)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)
    opt.step()
    sched.step()
    return loss.detach(), norm


@contextmanager
def sigterm_flag():
    """Within the block, SIGTERM sets ``flag["term"]`` instead of killing (main thread only)."""
    flag = {"term": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["term"] = True

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, old)


def save_checkpoint(path, tensors, meta):
    """Write ``tensors`` (dict of tensors / state dicts) and ``meta`` (JSON) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({**tensors, "meta": json.dumps(meta)}, tmp)


def load_checkpoint(path):
    """(tensors, meta) of a checkpoint, without unpickling code; InputError if unreadable."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        return ck, json.loads(ck.pop("meta"))
    except Exception as e:  # a truncated or foreign file
        raise InputError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e}); delete it to start over") from None


def history_csv(history):
    """The per-epoch log as CSV text (header: its columns, in order: COLUMNS for log g)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(history))
    w.writerows(zip(*history.values()))
    return out.getvalue()


def resolve_device(context):
    device = getattr(context, "device", None)
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


class Trainer:
    """The state of one fit: built by :func:`train`, which documents it."""

    def __init__(self, module, train_view, val_view, cfg, context, signature, on_batch, target):
        self.module, self.val, self.cfg, self.target = module, cached_validation(val_view), cfg, target
        self.device = resolve_device(context)
        cuda = self.device.type == "cuda"
        if cfg.compile and not cuda:
            raise InputError(f"nn.compile: only on CUDA (torch.compile); the device is {self.device}")
        self.amp = cuda if cfg.amp is None else bool(cfg.amp)
        self.folder = Path(context.checkpoint_dir) if getattr(context, "checkpoint_dir", None) else None
        spec = target.spec()
        self.signature = {"config": asdict(cfg), **(signature or {}), **({} if spec is None else {"target": spec})}
        self.on_batch = on_batch
        self.stream = BlockStream(train_view, cfg.batch_size, cfg.block_size, cfg.buffer_blocks, cfg.seed, target)
        self.n_batches = self.stream.n_batches()
        total = cfg.epochs * self.n_batches
        warmup = round(cfg.warmup_fraction * total)
        module.to(self.device)
        self.model = torch.compile(module) if (cuda if cfg.compile is None else cfg.compile) else module
        self.opt = make_optimizer(module, cfg.lr, cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, partial(lr_factor, total=total, warmup=warmup, min_ratio=cfg.min_lr_ratio))
        self.loader = loader(self.stream, pin_memory=cuda)
        self.loader.generator = torch.Generator().manual_seed(0)   # DataLoader's seed draw leaves torch's RNG alone
        self.result = TrainResult(history={c: [] for c in target.columns})
        self.epoch = self.batch = self.step = self.bad = 0
        self.best, self.finished, self.running = None, False, [0.0, 0, 0.0]   # loss sum, spectra, seconds
        self.epoch_state = None

    # -- checkpoints --------------------------------------------------------------------------
    def _meta(self):
        r = self.result
        return {"version": VERSION, "signature": self.signature, "epoch": self.epoch, "batch": self.batch,
                "step": self.step, "stream": self.epoch_state, "python_random": _py_random_state(),
                "best_r2": r.best_score if math.isfinite(r.best_score) else None, "best_epoch": r.best_epoch,
                "bad_epochs": self.bad, "history": r.history, "seconds": r.seconds, "running": self.running,
                "finished": self.finished}

    def save(self):
        if self.folder is None:
            return
        cuda = self.device.type == "cuda"
        tensors = {"model": self.module.state_dict(), "best": self.best or {}, "optimizer": self.opt.state_dict(),
                   "scheduler": self.sched.state_dict(), "torch_rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state_all() if cuda else []}
        save_checkpoint(self.folder / CHECKPOINT, tensors, self._meta())
        write_text(self.folder / HISTORY, history_csv(self.result.history))

    def restore(self):
        """Load the checkpoint of the folder, if any; True when one was loaded."""
        path = self.folder / CHECKPOINT if self.folder else None
        if path is None or not path.is_file():
            return False
        ck, meta = load_checkpoint(path)
        if meta.get("version") != VERSION or meta.get("signature") != json.loads(json.dumps(self.signature)):
            raise InputError(f"{path}: a checkpoint of another configuration (hyper-parameters, data size or "
                             "version differ); delete the folder to start over")
        self.module.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["torch_rng"])
        if ck["cuda_rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
        random.setstate(_py_random_tuple(meta["python_random"]))
        self.best = {k: v.to(self.device) for k, v in ck["best"].items()} or None
        self.epoch, self.batch, self.step, self.bad = meta["epoch"], meta["batch"], meta["step"], meta["bad_epochs"]
        self.epoch_state, self.finished, self.running = meta["stream"], meta["finished"], meta["running"]
        r = self.result
        r.history, r.seconds, r.best_epoch = meta["history"], meta["seconds"], meta["best_epoch"]
        r.best_score = -math.inf if meta["best_r2"] is None else meta["best_r2"]
        self.stream.set_state(self.epoch_state)
        if self.finished:
            log.info("resumed from %s: its run had finished after epoch %d; nothing left to train", path, self.epoch)
        else:   # epoch 1-based, batch: those of the epoch already trained (as the SIGTERM message says)
            log.info("resumed from %s at epoch %d, batch %d (of %d)", path, self.epoch + 1, self.batch,
                     self.n_batches)
        return True

    # -- training ---------------------------------------------------------------------------
    def run(self):
        cfg = self.cfg
        if not self.restore():
            self.target.fit_scales(self.module, self.stream, cfg.standardize)
            self.module.to(self.device)
            self.epoch_state = self.stream.state()
        with sigterm_flag() as flag:
            while not self.finished and self.epoch < cfg.epochs:
                self._epoch(flag)
                self._end_epoch()
        if self.best is not None:
            self.module.load_state_dict(self.best)
        self.finished = True
        self.save()
        r = self.result
        r.epochs_run = len(r.history["epoch"])
        n_seen = sum(s * t for s, t in zip(r.history["spectra_per_s"], r.history["seconds"]))
        r.spectra_per_s = n_seen / r.seconds if r.seconds > 0 else 0.0
        return r

    def _epoch(self, flag):
        """Train one epoch (or its rest, after a mid-epoch resume); on SIGTERM save and raise."""
        cfg, module, target = self.cfg, self.module, self.target
        self.stream.set_state(self.epoch_state)
        skip = self.batch
        self.model.train()
        bar = progress(total=self.n_batches, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="batch")
        bar.update(skip)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        shown = time.monotonic()
        for i, batch in enumerate(self.loader):
            if i < skip:   # replayed after a resume: the same reads and noise draws, no training
                continue
            x, z = target.batch(module, batch, self.device)
            n = len(batch[0])
            loss, _ = train_step(self.model, self.opt, self.sched, x, z, target.loss, cfg.clip, self.amp)
            loss_sum += loss * n
            self.running[1] += n
            self.batch, self.step = i + 1, self.step + 1
            if time.monotonic() - shown >= bar.mininterval:   # reading the loss syncs a GPU: as often as it redraws
                shown = time.monotonic()
                self._show_loss(bar, loss_sum)
            bar.update(1)
            if self.on_batch is not None:
                self.on_batch(self.epoch, i)
            if flag["term"]:
                self._show_loss(bar, loss_sum)
                bar.close()
                self._preempt(loss_sum, time.perf_counter() - t0)
        self._show_loss(bar, loss_sum)
        bar.close()
        self.running[0] += float(loss_sum)
        self.running[2] += time.perf_counter() - t0

    def _show_loss(self, bar, loss_sum):
        """The epoch's running mean training loss (the target's) as the bar's postfix."""
        if self.running[1]:
            bar.set_postfix_str(f"train loss {(self.running[0] + float(loss_sum)) / self.running[1]:.4g}",
                                refresh=False)

    def _preempt(self, loss_sum, seconds):
        self.running[0] += float(loss_sum)
        self.running[2] += seconds
        self.save()
        where = self.folder or "nowhere (no checkpoint_dir)"
        raise Preempted(f"SIGTERM: training stopped in epoch {self.epoch + 1}, batch {self.batch}; checkpoint in "
                        f"{where}; rerun to resume")

    def _end_epoch(self):
        """Validate, log, keep the best weights, count towards early stopping, checkpoint."""
        loss_sum, n, seconds = self.running
        target = self.target
        val_loss, score = target.evaluate(self.module, self.val, self.cfg.eval_batch, self.device)
        r = self.result
        row = {"epoch": self.epoch + 1, "train_loss": loss_sum / max(n, 1), "val_loss": val_loss,
               target.score_column: score, "lr": self.sched.get_last_lr()[0], "seconds": seconds,
               "spectra_per_s": n / max(seconds, 1e-9)}
        for c in target.columns:
            r.history[c].append(row[c])
        log.info("epoch %d/%d: train loss %.4g, val loss %.4g, %s %.4f, lr %.3g (%.1f s, %.0f spectra/s)",
                 row["epoch"], self.cfg.epochs, row["train_loss"], val_loss, target.score_label, score, row["lr"],
                 seconds, row["spectra_per_s"])
        r.seconds += seconds
        if score > r.best_score:
            r.best_score, r.best_epoch, self.bad = score, self.epoch + 1, 0
            self.best = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        else:
            self.bad += 1
        self.epoch, self.batch, self.running = self.epoch + 1, 0, [0.0, 0, 0.0]
        self.finished = self.bad >= self.cfg.patience
        self.epoch_state = self.stream.state()
        self.save()


def _py_random_state():
    version, state, gauss = random.getstate()
    return [version, list(state), gauss]


def _py_random_tuple(s):
    return (s[0], tuple(s[1]), s[2])


@contextmanager
def torch_threads(n):
    """torch's intra-op threads set to ``n`` inside the block."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


VAL_CACHE_BYTES = 2 ** 30   # the validation flux kept in memory across epochs up to this size (float64)


def cached_validation(view):
    """The validation view, its flux kept after the first epoch's read when its noise is fixed and it fits
    in :data:`VAL_CACHE_BYTES` (:class:`~pfslogg.data.views.FluxCache`: the same values, noise drawn once)."""
    from ..data.views import FluxCache

    if view is None or not view.fixed or view.n * view.n_pixels * 8 > VAL_CACHE_BYTES:
        return view
    return FluxCache(view)


def train(module, train_view, val_view, config=None, context=None, signature=None, on_batch=None, target=None):
    """Fit ``module`` to ``target`` (a :mod:`.targets` object; None: log g with ``config.loss``, the
    module a :class:`~pfslogg.nn.models.Standardized` network) and return a TrainResult.

    ``train_view``: a NoisyView with fresh noise (its generator is consumed); ``val_view``: fixed
    noise. ``config``: a :class:`TrainConfig`. ``context``: a FitContext (threads, checkpoint_dir,
    device). ``signature``: JSON of what else defines the run (the estimator's hyper-parameters,
    data size) -- a checkpoint of another signature is refused. ``on_batch(epoch, batch)``: called
    after every step (tests send themselves SIGTERM from it). The module ends on the device, in
    eval mode, with the best weights.
    """
    cfg = config or TrainConfig()
    check_config(cfg)
    target = LoggTarget(cfg.loss) if target is None else target
    threads = getattr(context, "threads", None) or os.cpu_count() or 1
    with torch_threads(threads):
        trainer = Trainer(module, train_view, val_view, cfg, context, signature, on_batch, target)
        result = trainer.run()
    module.eval()
    return result
