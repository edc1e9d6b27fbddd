"""Benchmark of the Fisher/CRLB ceiling (``pfslogg.ceilings.fisher.crlb_logg``): spectra per second.

Builds (or reuses) the synthetic instrument grid of the default shape used by ``bench_dataset.py``
(12 x 10 x 6 x 3 nodes x 4096 pixels), draws 1000 parameter sets over the default ranges (log g with
T_eff and [M/H] as nuisances: 3 Jacobian columns per spectrum by forward-mode AD), gives them the
exposure model's sigma, and times ``crlb_logg``.

    python bench/bench_fisher.py [--n 1000] [--batch 256] [--threads 2]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dataset import NOISE, RANGES, build_grid  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "out"))
    a = ap.parse_args()

    import torch

    from pfslogg.data.dataset import draw_params
    from pfslogg.evaluation import prior_variance
    from pfslogg.ceilings.fisher import crlb_logg, r2_max, varied_params
    from pfslogg.data.gridio import read_grid
    from pfslogg.data.interp import GridInterpolator, normalization
    from pfslogg.data.noise import ExposureModel

    torch.set_num_threads(a.threads)
    grid_path = Path(a.workdir) / "grid_default_shape.h5"
    if not grid_path.exists():
        grid_path.parent.mkdir(parents=True, exist_ok=True)
        build_grid(grid_path)
    grid = read_grid(grid_path)
    interp = GridInterpolator(grid)
    rng = np.random.default_rng(0)
    theta = draw_params(rng, a.n, RANGES)
    flux = interp(theta)
    model = ExposureModel(grid.wave, exposures=NOISE["exposures"], throughput=NOISE["throughput"])
    sigma = model.sigma(flux, rng.uniform(*NOISE["mag"], a.n), rng.uniform(*NOISE["seeing"], a.n))
    sigma /= normalization(flux)

    crlb_logg(interp, theta[:8], sigma[:8], RANGES, batch=a.batch)  # warm-up (torch dispatch, caches)
    t0 = time.perf_counter()
    crlb = crlb_logg(interp, theta, sigma, RANGES, batch=a.batch)
    wall = time.perf_counter() - t0
    r2m = r2_max(crlb, prior_variance(*RANGES["log_g"]))
    print(f"grid {grid.shape} x {len(grid.wave)} px; parameters {varied_params(RANGES)}; "
          f"torch threads {torch.get_num_threads()}, batch {a.batch}")
    print(f"crlb_logg: {a.n} spectra in {wall:.2f} s = {a.n / wall:.0f} spectra/s")
    print(f"sanity: CRLB finite for {np.isfinite(crlb).mean():.1%}; median R2_max {np.median(r2m):.3f}")


if __name__ == "__main__":
    main()
