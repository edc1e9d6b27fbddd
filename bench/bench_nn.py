"""Training throughput of the neural estimators on CPU: spectra/s of forward + backward + AdamW step.

    python bench/bench_nn.py [--threads 2] [--batch 256] [--seconds 6] [--only vit_default,cnn_default]

For each network -- the laptop defaults (the estimators' default hyper-parameters) and the paper
sizes -- builds it through the estimator (``make_estimator(...).build(4096)``), runs training steps
on random spectra of 4096 pixels for about ``--seconds`` after one warm-up step, and prints the
parameter count, the batch used (the paper sizes use ``--paper-batch``: a batch of 256 takes minutes
per step on a laptop), seconds per step, spectra/s, and what one epoch over 20k spectra and 15
epochs would cost. Excludes data reading and validation (the engine's overhead, a few %).

Chosen defaults (laptop scale, config/config.yaml: 20k training spectra, 10-20 epochs on 2 cores):
ViT patch 64 -> 64 tokens, width 64, 2 layers, 4 heads, MLP 128 (~76 k parameters); CNN kernel 9,
8 channels doubling over 4 blocks, pooling by 4 (~25 k parameters): each of similar cost, about
500-650 spectra/s on one core of the (shared) development machine, so 20k x 15 epochs take 8-10 min;
two OpenMP threads help only on an otherwise idle machine (on a busy one they stall each other).
"""

import argparse
import time

N_PIX = 4096
NETWORKS = {   # name -> (class id, hyper-parameters beyond the class defaults, paper size?)
    "mlp_default": ("mlp", {}, False),
    "cnn_default": ("cnn", {}, False),
    "vit_default": ("vit", {}, False),
    "cnn_paper": ("cnn", {"channels": 32, "depth": 6, "max_channels": 256, "pool": 2}, True),
    "vit_paper": ("vit", {"patch": 16, "dim": 256, "depth": 6, "heads": 8, "mlp": 1024, "lr": 3e-4}, True),
}


def measure(module, batch, seconds):
    """(seconds per training step, steps timed) of ``module`` on random spectra (batch, N_PIX)."""
    import torch

    from pfslogg.nn.engine import train_step

    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    x = 1.0 + 0.05 * torch.randn(batch, N_PIX)
    z = torch.randn(batch)
    module.train()
    train_step(module, opt, sched, x, z, torch.nn.functional.mse_loss, 1.0, False)   # warm-up
    steps, t0 = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - t0 < seconds:
        train_step(module, opt, sched, x, z, torch.nn.functional.mse_loss, 1.0, False)
        steps += 1
    return (time.perf_counter() - t0) / steps, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--paper-batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=6.0, help="timing per network")
    ap.add_argument("--only", default=",".join(NETWORKS))
    a = ap.parse_args()

    import torch

    from pfslogg.estimators import make_estimator
    from pfslogg.nn.models import count_params

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {a.threads} threads, {N_PIX} pixels; forward + backward + AdamW step")
    print(f"{'network':<12} {'params':>10} {'batch':>6} {'s/step':>8} {'spectra/s':>10} {'20k x 15 epochs':>16}")
    for name in a.only.split(","):
        cls, hyper, paper = NETWORKS[name]
        module = make_estimator(cls, hyper).build(N_PIX)
        batch = a.paper_batch if paper else a.batch
        dt, _ = measure(module, batch, a.seconds)
        rate = batch / dt
        print(f"{name:<12} {count_params(module):>10,} {batch:>6} {dt:>8.3f} {rate:>10.0f} "
              f"{20000 * 15 / rate / 60:>13.1f} min", flush=True)


if __name__ == "__main__":
    main()
