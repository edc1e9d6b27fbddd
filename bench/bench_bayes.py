"""Benchmark of the Bayes ceiling (``pfslogg.ceilings.bayes``): spectra/s, GFLOP/s, and the ratio to
a plain matrix multiply of the same shape measured in the same run.

Builds (or reuses) the synthetic instrument grid of the default shape used by ``bench_dataset.py``
(12 x 10 x 6 x 3 nodes x 4096 pixels) and a test set of N spectra drawn from it (default 10,000,
the test magnitudes of config/config.yaml), then computes the posterior moments of every spectrum
over the grid of config/config.yaml's ``bayes`` section, in blocks of ``bayes.block`` spectra as
the rule does. The chi^2 products are 2 N M (2 n_pix) flops (M templates); "plain" is the same
number of (block x 2 n_pix) @ (2 n_pix x chunk) products of random arrays, timed on a sample of
chunks beside each block; "in-run products" is the time inside the run's own products (the share
of the run they take is the ratio under the same load, which a shared machine makes vary).
Target (issue 9): 10,000 spectra in <= 3 minutes on 2 cores, >= 0.7 of the plain product.

    python bench/bench_bayes.py [--n 10000] [--threads 2] [--dtype float32 float64]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dataset import NOISE, RANGES, build_grid  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def plain_seconds(rows, n_templates, n_pix, chunk, dtype, threads, sample=4):
    """Seconds of the plain (rows x 2 n_pix) @ (2 n_pix x chunk) products covering rows x n_templates,
    from ``sample`` timed products of random arrays."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    lhs = rng.standard_normal((rows, 2 * n_pix)).astype(dtype)
    rhs = rng.standard_normal((chunk, 2 * n_pix)).astype(dtype)
    with threadpool_limits(threads):
        lhs @ rhs.T                                        # warm-up
        t0 = time.perf_counter()
        for _ in range(sample):
            lhs @ rhs.T
    return (time.perf_counter() - t0) / sample * n_templates / chunk


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="test spectra")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    ap.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "out"))
    a = ap.parse_args()

    from pfslogg.ceilings.bayes import grid_axes, grid_chunks, grid_posterior, refine_unresolved
    from pfslogg.data.dataset import SpectraSet, simulate_dataset
    from pfslogg.data.gridio import read_grid
    from pfslogg.data.interp import GridInterpolator
    from pfslogg.data.views import NoisyView

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    bayes = cfg["bayes"]
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    grid_path = work / "grid_default_shape.h5"
    if not grid_path.exists():
        build_grid(grid_path)
    data = work / f"bayes_test_{a.n}.h5"
    if not data.exists():
        simulate_dataset(grid_path, data, a.n, RANGES, seed=5, noise=dict(NOISE, mag=[19.5, 23.0]), threads=a.threads)
    interp = GridInterpolator(read_grid(grid_path, fields=("flux",)))
    view = NoisyView(SpectraSet(data), 1.0, noise_seed=1)
    n_pix = len(view.wave)
    axes = grid_axes(RANGES, spacing=bayes["spacing"])
    m = int(np.prod([len(v) for v in axes.values()]))
    flops = 2.0 * a.n * m * 2 * n_pix
    print(f"{a.n} spectra x {m} templates ({' x '.join(str(len(v)) for v in axes.values())}, spacing "
          f"{bayes['spacing']}) x {n_pix} pixels; block {bayes['block']}, chunk {bayes['chunk']}, "
          f"{a.threads} threads: {flops / 1e12:.2f} Tflop")

    print(f"load average at the start {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    t0 = time.perf_counter()
    n_tpl = sum(len(th) for th, _ in grid_chunks(interp, axes, bayes["chunk"]))
    t_tpl = time.perf_counter() - t0
    print(f"templates alone: {n_tpl} in {t_tpl:.1f} s ({n_tpl / t_tpl:.0f}/s), once per block of spectra")

    for dtype in a.dtype:
        t_load = t_post = plain = t_prod = t_refine = 0.0
        n_refined = 0
        for start, stop, flux, sigma in _timed(view.batches(bayes["block"])):
            t_load += _timed.last
            # the plain product measured beside each block: the same load on the shared machine
            plain += plain_seconds(stop - start, m, n_pix, bayes["chunk"], dtype, a.threads)
            t1 = time.perf_counter()
            out = grid_posterior(interp, flux, sigma, RANGES, spacing=bayes["spacing"], chunk=bayes["chunk"],
                                 dtype=np.dtype(dtype), threads=a.threads, refine=False)
            t_post += time.perf_counter() - t1
            t_prod += out["product_s"]
            t1 = time.perf_counter()   # the bright stars' narrow posteriors: importance sampling
            refine_unresolved(interp, flux, sigma, RANGES, out, first_row=start)
            t_refine += time.perf_counter() - t1
            n_refined += int((out["method"] == 1).sum())
        print(f"{dtype}: {t_post:6.1f} s ({a.n / t_post:6.0f} spectra/s, {flops / t_post / 1e9:5.1f} GFLOP/s); "
              f"plain matmul of the same shape {plain:6.1f} s ({flops / plain / 1e9:5.1f} GFLOP/s): "
              f"ratio {plain / t_post:.2f}; in-run products {t_prod:.1f} s ({flops / t_prod / 1e9:.1f} GFLOP/s, "
              f"{t_prod / t_post:.2f} of the time); reading + noise {t_load:.1f} s; "
              f"importance sampling of {n_refined} unresolved posteriors {t_refine:.1f} s; "
              f"{'OK' if t_post + t_load + t_refine <= 180 else 'MISSED'} (<= 180 s for the run: "
              f"{t_post + t_load + t_refine:.1f} s; load average {os.getloadavg()[0]:.2f})")


def _timed(it):
    """Iterate ``it``, leaving the seconds each item took in ``_timed.last``."""
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        _timed.last = time.perf_counter() - t0
        yield item


if __name__ == "__main__":
    main()
