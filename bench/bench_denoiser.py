"""Throughput of the residual denoiser (Track D) on CPU: training and forward spectra/s.

    python bench/bench_denoiser.py [--threads 2] [--batch 256] [--seconds 6] [--only default,wide]

For each size -- the default (the estimator's hyper-parameters) and a few variants -- builds the
network through the estimator (``make_estimator("denoiser", ...).build(4096)``), sets its scales
from fake spectra (flux 1 + 0.05 N(0, 1), sigma 0.05-0.1), and times for about ``--seconds`` each:

* training steps -- forward, wMAE loss (:class:`pfslogg.nn.targets.CleanSpectrumTarget`), backward,
  AdamW -- on batches of ``--batch`` spectra with strengths drawn from the default list;
* the forward pass as ``transform`` runs it (eval mode, no gradients, batches of 512).

Each rate is the median over the timed steps (robust to another process taking a core for a
while). Excludes data reading and validation. Prints the parameter count, spectra/s of both, and
what one training epoch over 6000 spectra (config ``denoising.size``) x 20 epochs would cost.
"""

import argparse
import statistics
import time

N_PIX = 4096
SIZES = {   # name -> hyper-parameters beyond the class defaults
    "default": {},
    "narrow": {"channels": 8},
    "wide": {"channels": 32},
    "deep": {"levels": 3},
}


def timed(fn, seconds, min_steps=3):
    """Median seconds of ``fn()`` over calls for about ``seconds`` (after one warm-up call)."""
    fn()
    times, t0 = [], time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - t0 < seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=6.0, help="timing per network and pass")
    ap.add_argument("--only", default=",".join(SIZES))
    a = ap.parse_args()

    from pfslogg.allocator import reuse_freed_memory
    reuse_freed_memory()   # as every workflow job runs (pfslogg.cli.main)
    import torch

    from pfslogg.estimators import make_estimator
    from pfslogg.nn.denoiser import count_params
    from pfslogg.nn.engine import make_optimizer, train_step
    from pfslogg.nn.targets import CleanSpectrumTarget, denoise

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    clean = 1.0 + 0.05 * torch.randn(a.batch, N_PIX, generator=gen)
    sigma = 0.05 + 0.05 * torch.rand(a.batch, N_PIX, generator=gen)
    flux = clean + sigma * torch.randn(a.batch, N_PIX, generator=gen)
    print(f"torch {torch.__version__}, {a.threads} threads, {N_PIX} pixels; training: forward + wMAE + backward "
          f"+ AdamW (batch {a.batch}); forward: transform (eval, batches of 512)")
    print(f"{'size':<8} {'params':>8} {'train/s':>8} {'forward/s':>10} {'6k x 20 epochs':>15}")
    for name in a.only.split(","):
        est = make_estimator("denoiser", SIZES[name], kinds=("transform",))
        module = est.build(N_PIX)
        module.fit_scales(flux.double())
        target = CleanSpectrumTarget(est.strengths, est.strength, est.sigma_floor)
        pick = torch.randint(len(est.strengths), (a.batch,), generator=gen)
        s = torch.tensor(est.strengths, dtype=torch.float32)[pick]
        opt = make_optimizer(module, 1e-4, est.weight_decay)   # the engine's AdamW, the class's decay
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        module.train()
        dt_train = timed(lambda: train_step(module, opt, sched, (flux, sigma, s), (clean, sigma), target.loss, 1.0,
                                            False), a.seconds)
        f64, s64 = flux.double().numpy(), sigma.double().numpy()
        dt_fwd = timed(lambda: denoise(module, f64, s64, est.strength, 512), a.seconds)
        train_rate, fwd_rate = a.batch / dt_train, a.batch / dt_fwd
        print(f"{name:<8} {count_params(module):>8,} {train_rate:>8.0f} {fwd_rate:>10.0f} "
              f"{6000 * 20 / train_rate / 60:>11.1f} min", flush=True)


if __name__ == "__main__":
    main()
