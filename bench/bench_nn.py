"""Training throughput of the neural networks on CPU: spectra/s and achieved FLOP/s of forward + backward + AdamW.

    python bench/bench_nn.py [--threads 2] [--batch 256] [--seconds 6] [--only vit_default,cnn_default]
    python bench/bench_nn.py --threads 1 --batch 32 --only vit_default,cnn_default --compile --repeat 8
    python bench/bench_nn.py --threads 1 --batch 32 --only vit_default --profile 5 --ops

For each network -- the laptop defaults (the estimators' default hyper-parameters), the residual
denoiser and the conditional diffusion network of Track D, and the paper sizes -- builds it through
its estimator (``make_estimator(...).build(4096)``), makes a batch of random spectra of 4096 pixels
through the estimator's own training target (``target.batch``: what the engine does to every batch
the stream yields; timed apart as "prep"), runs the engine's ``train_step`` (AdamW over the engine's
two parameter groups, gradient clipping at 1) for about ``--seconds`` after one warm-up step, and
prints (s/step: the median step, with the 1-minute load average beside it) the parameter count, the batch used (the paper sizes use ``--paper-batch``), seconds per step,
spectra/s, what one epoch over 20k spectra and 15 epochs would cost, and:

* GFLOP/step: the FLOPs of one training step's forward + backward, counted once, outside the timing,
  by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products, convolutions, attention;
  multiply-add = 2 FLOPs; element-wise ops, norms and the optimiser are not counted);
* GFLOP/s achieved (GFLOP/step / s/step) and its fraction of the *matmul peak*: the best of a few
  float32 square GEMMs (1024 and 2048) at the same thread count, measured first;
* with ``--ops``: the same FLOP-counted ops (every matmul / convolution / attention call of a step,
  recorded with copies of their inputs) replayed alone, best of 3: their time per step and GFLOP/s
  (what the step would reach if everything else -- element-wise ops, autograd, the optimiser, Python
  -- were free), and the ops taking the most of that time with their shapes.

``--amp``: the forward pass under bf16 autocast (the engine's ``amp``; the peak stays float32's). Measured
2026-12-05, 1 thread, batch 32 (ms/step, float32 -> bf16): CNN 30.6 -> 24.3, ViT (dropout 0) 22.1 -> 19.5 (46.6
before its attention left autocast: pfslogg.nn.vit), MLP 7.1 -> 6.4; on 2 threads the denoiser 47.5 -> 27.4 and the diffusion network 53.4 -> 27.5.

``--compile``: time the network under ``torch.compile`` (CPU inductor); the warm-up step's time is
reported as the compile time. ``--repeat N``: train N steps twice from the same seed and report
whether the losses agree bitwise (and, with ``--compile``, whether they equal eager's). ``--profile
K``: the top ops by self CPU time over K steps (torch.profiler). Excludes data reading (the engine's
stream: HDF5 read, fresh noise and sigma estimate, about 0.2 ms a spectrum on one core, so about 10 %
of an epoch of the default CNN or ViT at batch 32 on one thread) and validation.

Chosen defaults (laptop scale, config/config.yaml: 20k training spectra, 10-20 epochs on 2 cores):
ViT patch 64 -> 64 tokens, width 64, 2 layers, 4 heads, MLP 128 (~76 k parameters); CNN kernel 9,
8 channels doubling over 4 blocks, pooling by 4 (~25 k parameters): each of similar cost, about
500-650 spectra/s on one core of the (shared) development machine, so 20k x 15 epochs take 8-10 min;
two OpenMP threads help only on an otherwise idle machine (on a busy one they stall each other).
"""

import argparse
import os
import statistics
import time

N_PIX = 4096
NETWORKS = {   # name -> (class id, hyper-parameters beyond the class defaults, paper size?)
    "mlp_default": ("mlp", {}, False),
    "cnn_default": ("cnn", {}, False),
    "vit_default": ("vit", {}, False),
    "denoiser_default": ("denoiser", {}, False),
    "diffusion_default": ("diffusion", {}, False),
    "cnn_paper": ("cnn", {"channels": 32, "depth": 6, "max_channels": 256, "pool": 2}, True),
    "vit_paper": ("vit", {"patch": 16, "dim": 256, "depth": 6, "heads": 8, "mlp": 1024, "lr": 3e-4}, True),
}
TRANSFORMS = ("denoiser", "diffusion")   # estimator kinds "transform" (make_estimator's kinds)


def load():
    """The 1-minute load average, for the record beside every timing."""
    return os.getloadavg()[0]


def matmul_peak(sizes=(1024, 2048), reps=7):
    """{n: GFLOP/s} of the best of ``reps`` float32 GEMMs (n, n) @ (n, n) at torch's thread count."""
    import torch

    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = a @ b   # warm-up
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
        out[n] = 2 * n ** 3 / best / 1e9
    return out


def flop_mapping():
    """FLOP formulas of the CPU flash-attention ops, which FlopCounterMode lacks (attention without
    dropout; in training with dropout the math path's bmm are counted anyway)."""
    import torch
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    aten = torch.ops.aten

    def fwd(q, k, v, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(q, k, v)

    def bwd(grad_out, q, k, v, *args, out_shape=None, **kwargs):
        return sdpa_backward_flop_count(grad_out, q, k, v)

    return {aten._scaled_dot_product_flash_attention_for_cpu: fwd,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: bwd}


def build(name, seed=0):
    """(estimator, module, target) of a network of NETWORKS, its weights drawn from ``seed``."""
    cls, hyper, _ = NETWORKS[name]
    return build_class(cls, hyper, seed)


def build_class(cls, hyper, seed=0):
    """(estimator, module, target) of class ``cls`` with ``hyper``, its weights drawn from ``seed``."""
    import torch

    from pfslogg.estimators import make_estimator

    est = make_estimator(cls, hyper, kinds=("transform",) if cls in TRANSFORMS else ("estimator",))
    torch.manual_seed(seed)
    module = est.build(N_PIX)
    return est, module, est._target(module)   # what the engine learns for this class and hyper


def raw_batch(target, batch, seed=0):
    """A batch as the engine's stream yields it for ``target``: random spectra around 1 of N_PIX pixels."""
    import numpy as np
    import torch

    from pfslogg.nn.targets import CleanSpectrumTarget, DiffusionTarget

    rng = np.random.default_rng(seed)
    clean = (1.0 - 0.3 * rng.random((batch, N_PIX)) ** 8).astype(np.float32)   # a continuum with lines
    sigma = np.full((batch, N_PIX), 0.05, np.float32)
    flux = (clean + sigma * rng.standard_normal((batch, N_PIX))).astype(np.float32)
    t = torch.from_numpy
    if isinstance(target, DiffusionTarget):
        return (t(flux), t(sigma), t(clean), t(rng.integers(1, target.t_max + 1, batch)),
                t(rng.integers(0, 2 ** 62, batch)))
    if isinstance(target, CleanSpectrumTarget):
        return t(flux), t(sigma), t(clean), t(rng.choice(np.float32(target.strengths), batch))
    labels = rng.uniform(1, 5, (batch, 1 + len(getattr(target, "extra", ())))).astype(np.float32)
    return t(flux), t(labels if labels.shape[1] > 1 else labels[:, 0])   # log g (and any extra labels)


def optimizer(module, est):
    """The engine's AdamW (:func:`pfslogg.nn.engine.make_optimizer`) and a constant scheduler."""
    import torch

    from pfslogg.nn.engine import make_optimizer

    opt = make_optimizer(module, est.lr, est.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def step_inputs(module, target, batch, seed=0):
    """(inputs, label, seconds of target.batch): what train_step gets, as the engine prepares it."""
    raw = raw_batch(target, batch, seed)
    t0 = time.perf_counter()
    x, z = target.batch(module, raw, "cpu")
    return x, z, time.perf_counter() - t0


def count_flops(module, target, x, z):
    """FLOPs of one forward + backward (no optimiser step) on inputs x, label z."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = x if isinstance(x, (tuple, list)) else (x,)
    with FlopCounterMode(display=False, custom_mapping=flop_mapping()) as fc:
        target.loss(module(*inputs).float(), z).backward()
    module.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def measure(model, opt, sched, target, x, z, seconds, amp=False):
    """(seconds per training step: the median of the steps timed -- robust to other work on a shared
    machine --, steps timed, seconds of the warm-up step) of ``model``."""
    from pfslogg.nn.engine import train_step

    t0 = time.perf_counter()
    train_step(model, opt, sched, x, z, target.loss, 1.0, amp)   # warm-up (and compilation)
    warm = time.perf_counter() - t0
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        train_step(model, opt, sched, x, z, target.loss, 1.0, amp)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times), warm


def losses(name, batch, steps, compile_, amp=False):
    """The losses (a list of floats) of ``steps`` training steps from seed 0 (eager or compiled)."""
    import torch

    from pfslogg.nn.engine import train_step

    est, module, target = build(name, seed=0)
    x, z, _ = step_inputs(module, target, batch)
    opt, sched = optimizer(module, est)
    model = torch.compile(module) if compile_ else module
    module.train()
    torch.manual_seed(1)   # dropout
    return [float(train_step(model, opt, sched, x, z, target.loss, 1.0, amp)[0]) for _ in range(steps)]


# -- the FLOP-counted ops alone (--ops) ---------------------------------------------------------------
def record_ops(module, target, x, z):
    """Every FLOP-counted aten call of one forward + backward: (func, args, kwargs) with copies of
    their tensors, in call order."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_map
    from torch.utils.flop_counter import flop_registry

    counted = set(flop_registry) | set(flop_mapping())

    def copy(t):
        return t.detach().clone() if isinstance(t, torch.Tensor) else t

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func._overloadpacket in counted:
                self.calls.append((func, tree_map(copy, args), tree_map(copy, kwargs)))
            return func(*args, **kwargs)

    inputs = x if isinstance(x, (tuple, list)) else (x,)
    with Record() as rec:
        target.loss(module(*inputs).float(), z).backward()
    module.zero_grad(set_to_none=True)
    return rec.calls


def replay_ops(calls, reps=3):
    """(seconds of the whole sequence, [(seconds, flops, label) per call]), best of ``reps`` each."""
    from torch.utils.flop_counter import FlopCounterMode

    per = []
    for func, args, kwargs in calls:
        with FlopCounterMode(display=False, custom_mapping=flop_mapping()) as fc:
            func(*args, **kwargs)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            func(*args, **kwargs)
            best = min(best, time.perf_counter() - t0)
        shapes = [tuple(a.shape) for a in args if hasattr(a, "shape")]
        per.append((best, fc.get_total_flops(), f"{func._overloadpacket.__name__} {shapes}"))
    total = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for func, args, kwargs in calls:
            func(*args, **kwargs)
        total = min(total, time.perf_counter() - t0)
    return total, per


def profile(model, opt, sched, target, x, z, steps, rows=15, amp=False):
    """The top ops by self CPU time over ``steps`` training steps (a table)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    from pfslogg.nn.engine import train_step

    train_step(model, opt, sched, x, z, target.loss, 1.0, amp)
    with prof(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(steps):
            train_step(model, opt, sched, x, z, target.loss, 1.0, amp)
    return p.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--paper-batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=6.0, help="timing per network")
    ap.add_argument("--only", default=",".join(NETWORKS))
    ap.add_argument("--compile", action="store_true", help="time the networks under torch.compile (CPU inductor)")
    ap.add_argument("--amp", action="store_true", help="the forward pass under bf16 autocast (the hyper-parameter amp)")
    ap.add_argument("--repeat", type=int, default=0, help="N: check that N steps give bitwise the same losses twice")
    ap.add_argument("--profile", type=int, default=0, help="K: top ops by self CPU time over K steps")
    ap.add_argument("--ops", action="store_true", help="also time the FLOP-counted ops alone")
    a = ap.parse_args()

    from pfslogg.allocator import reuse_freed_memory
    reuse_freed_memory()   # as every workflow job runs (pfslogg.cli.main)
    import torch

    from pfslogg.nn.models import count_params

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    names = a.only.split(",")
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        ap.error(f"--only: unknown {unknown}, expected some of {list(NETWORKS)}")
    peaks = matmul_peak()
    peak = max(peaks.values())
    print(f"torch {torch.__version__}, {a.threads} threads, {N_PIX} pixels; forward + backward + AdamW step"
          f"{', torch.compile (inductor)' if a.compile else ''}{', bf16 autocast' if a.amp else ''}; load {load():.2f}")
    print("matmul peak (float32 GEMM n x n, best of 7): "
          + ", ".join(f"n={n}: {g:.1f} GFLOP/s" for n, g in peaks.items()) + f"; load {load():.2f}")
    print(f"{'network':<17} {'params':>9} {'batch':>5} {'s/step':>8} {'prep ms':>7} {'spectra/s':>9} "
          f"{'20k x 15 ep':>11} {'GFLOP/step':>10} {'GFLOP/s':>8} {'of peak':>7} {'load':>5}"
          + (f" {'compile s':>9}" if a.compile else ""))
    details = []
    for name in names:
        batch = a.paper_batch if NETWORKS[name][2] else a.batch
        est, module, target = build(name)
        module.train()
        x, z, prep = step_inputs(module, target, batch)
        flops = count_flops(module, target, x, z)
        opt, sched = optimizer(module, est)
        model = torch.compile(module) if a.compile else module
        dt, _, warm = measure(model, opt, sched, target, x, z, a.seconds, a.amp)
        rate = batch / dt
        gflops = flops / dt / 1e9
        print(f"{name:<17} {count_params(module):>9,} {batch:>5} {dt:>8.4f} {1e3 * prep:>7.1f} {rate:>9.0f} "
              f"{20000 * 15 / rate / 60:>7.1f} min {flops / 1e9:>10.3f} {gflops:>8.2f} {gflops / peak:>7.1%} "
              f"{load():>5.2f}" + (f" {warm - dt:>9.1f}" if a.compile else ""), flush=True)
        if a.ops:
            total, per = replay_ops(record_ops(module, target, x, z))
            per.sort(key=lambda r: -r[0])
            lines = [f"  {name}: the {len(per)} FLOP-counted ops alone: {total:.4f} s/step = {total / dt:.0%} of the "
                     f"step, {flops / total / 1e9:.2f} GFLOP/s ({flops / total / 1e9 / peak:.0%} of peak); slowest:"]
            lines += [f"    {s * 1e3:7.2f} ms {f / 1e6:8.1f} MFLOP {f / s / 1e9 if s else 0:6.1f} GFLOP/s  {lab}"
                      for s, f, lab in per[:6]]
            details.append("\n".join(lines))
        if a.repeat:
            first = losses(name, batch, a.repeat, a.compile, a.amp)
            second = losses(name, batch, a.repeat, a.compile, a.amp)
            line = f"  {name}: {a.repeat} steps twice from seed 0: losses {'bitwise equal' if first == second else 'DIFFER'}"
            if a.compile:
                eager = losses(name, batch, a.repeat, False, a.amp)
                line += (f"; compiled vs eager: {'bitwise equal' if first == eager else 'differ'} (max |rel diff| "
                         f"{max(abs(p - q) / max(abs(q), 1e-30) for p, q in zip(first, eager)):.1e})")
            details.append(line)
        if a.profile:
            details.append(f"  {name}: top ops by self CPU time over {a.profile} steps (batch {batch}, load "
                           f"{load():.2f}):\n" + profile(model, opt, sched, target, x, z, a.profile, amp=a.amp))
    for d in details:
        print(d)


if __name__ == "__main__":
    main()
