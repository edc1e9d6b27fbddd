"""Diffusion denoiser (issue 16) vs the residual denoiser on the default data: wMAE improvement over
the noisy input, and sampling throughput. Not a test; a few minutes on 2 CPU cores.

    python bench/bench_diffusion.py [--n-train 1500] [--epochs 4] [--n-test 100] [--threads 2]

Trains (small n, channels 8) the plain DDPM (bound None), the bounded-noise variant (lambda 0.5) and
the residual denoiser on ``data/datasets/train.h5`` at noise level 1 (fresh noise), selects on 200
spectra of ``val.h5``, scores ``n_test`` spectra of ``test.h5`` (fixed noise): mean wMAE (sigma floor
1e-3) of the noisy input and of each transform at its default strength (diffusion: s = 1, the mean of
``n_samples`` posterior samples), improvement = 1 - wMAE / wMAE(noisy). Throughput: spectra/s of one
posterior sample on ``threads`` torch threads.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView
from pfslogg.estimators import FitContext, make_estimator

DATA = Path(__file__).resolve().parents[1] / "data" / "datasets"


def wmae(x, clean, sigma, floor=1e-3):
    return float(np.mean(np.abs(x - clean) / np.maximum(sigma, floor)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-samples", type=int, default=2)
    ap.add_argument("--models", default="plain,bounded,denoiser")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sets = {k: SpectraSet(DATA / f"{k}.h5") for k in ("train", "val", "test")}
    te = NoisyView(sets["test"], 1.0, n=a.n_test, noise_seed=13)
    flux, sigma = te.read(0, te.n)
    clean = te.read_clean(0, te.n)
    noisy = wmae(flux, clean, sigma)
    print(f"test: {te.n} spectra x {flux.shape[1]} pixels, noisy-input wMAE {noisy:.4f}", flush=True)
    engine = {"channels": 8, "epochs": a.epochs, "batch_size": 16, "lr": 5e-3, "block_size": 256,
              "buffer_blocks": 2, "patience": 10}
    specs = {"plain": ("diffusion", {"bound": None, "n_samples": a.n_samples}),
             "bounded": ("diffusion", {"bound": 0.5, "n_samples": a.n_samples}),
             "denoiser": ("denoiser", {})}
    for name in a.models.split(","):
        cls, hyper = specs[name]
        tr = NoisyView(sets["train"], 1.0, n=a.n_train, rng_seed=0)
        va = NoisyView(sets["val"], 1.0, n=200, noise_seed=11)
        est = make_estimator(cls, {**engine, **hyper}, random_state=0, kinds=("transform",))
        t0 = time.perf_counter()
        est.fit(tr, va, FitContext(threads=a.threads))
        t1 = time.perf_counter()
        x = est.transform(flux, sigma)
        t2 = time.perf_counter()
        w = wmae(x, clean, sigma)
        extra = ""
        if cls == "diffusion":
            per = (t2 - t1) / (te.n * a.n_samples)
            extra = f", t_max {est.t_max_}, sampling {1 / per:.1f} spectra/s per posterior sample"
        print(f"{name:9s} wMAE {w:.4f}  improvement {1 - w / noisy:+.1%}  (fit {t1 - t0:.0f} s, "
              f"transform {t2 - t1:.1f} s{extra})", flush=True)


if __name__ == "__main__":
    main()
