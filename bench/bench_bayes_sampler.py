"""Bayes ceiling against an independent sampler: emcee on ~50 test spectra of the default run.

For each of the first ``--n`` spectra of the test set (at the default noise level, with the fixed
test noise the models see), emcee samples the posterior of (T_eff, log g, M_H) under the same
prior (uniform in the config's ranges) and the same forward model (cubic interpolation of the
instrument grid, mean-normalised) from random starts; the grid posterior (``compute_bayes_ceiling``,
config ``bayes``) gives its mean and sd of log g. Printed per spectrum: z = (mean_MCMC - mean_grid)
/ (the two sampling errors in quadrature: sd / sqrt(n_eff) of the chain, and of the importance
sampling where it refined the grid) and the sd ratio; then the rms of z and the spread of the ratios. Needs the
default run's grid and test set (``snakemake figures/r2_vs_snr.pdf``) and emcee (pip install emcee).

    python bench/bench_bayes_sampler.py --n 50        # ~20 s per spectrum on one core
"""

import argparse
import json
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--start", type=int, default=0, help="first test spectrum (to continue a run)")
    ap.add_argument("--walkers", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--burn", type=int, default=500)
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--out", default=None, help="also write the per-spectrum rows as JSON here")
    a = ap.parse_args()

    import emcee

    from pfslogg import PARAMS
    from pfslogg.ceilings.bayes import grid_posterior, log_posterior
    from pfslogg.config import load_config
    from pfslogg.data.dataset import SpectraSet
    from pfslogg.data.gridio import read_grid
    from pfslogg.data.interp import GridInterpolator
    from pfslogg.data.views import NoisyView
    from pfslogg.workflow import INSTRUMENT_GRID, dataset_path, noise_seed

    cfg = load_config(a.config)
    ranges = cfg["params"]
    interp = GridInterpolator(read_grid(INSTRUMENT_GRID, fields=("flux",)))
    view = NoisyView(SpectraSet(dataset_path(cfg, "test")), cfg["noise"]["noise_level"],
                     noise_seed=noise_seed(cfg, "test"))
    flux, sigma = view.load(dtype=np.float64)
    rows_of = slice(a.start, a.start + a.n)
    flux, sigma = flux[rows_of], sigma[rows_of]
    t0 = time.perf_counter()
    grid = grid_posterior(interp, flux, sigma, ranges, spacing=cfg["bayes"]["spacing"], first_row=a.start)
    print(f"grid posterior of {a.n} spectra: {time.perf_counter() - t0:.1f} s")
    lo = np.array([ranges[p][0] for p in PARAMS], float)
    hi = np.array([ranges[p][1] for p in PARAMS], float)
    free = [i for i, p in enumerate(PARAMS) if hi[i] > lo[i]]
    g = free.index(PARAMS.index("log_g"))
    rng = np.random.default_rng(0)
    rows = []
    for k, (y, s) in enumerate(zip(flux, sigma)):
        log_prob = log_posterior(interp, y, s, lo, hi, free)

        t1 = time.perf_counter()
        start = lo[free] + rng.uniform(0, 1, (a.walkers, len(free))) * (hi - lo)[free]
        sampler = emcee.EnsembleSampler(a.walkers, len(free), log_prob, vectorize=True)
        sampler.random_state = np.random.RandomState(int(rng.integers(1 << 31))).get_state()
        sampler.run_mcmc(start, a.steps)
        chain = sampler.get_chain(discard=a.burn)[:, :, g]
        tau = max(1.0, float(emcee.autocorr.integrated_time(chain[:, :, None], quiet=True)[0]))
        n_eff = chain.size / tau
        m, sd = float(chain.mean()), float(chain.std())
        # the grid's own error: none on the grid (quadrature checked apart), sampling error where
        # importance sampling refined the spectrum
        grid_err = grid["sd"][k] / np.sqrt(grid["is_n_eff"][k]) if grid["method"][k] == 1 else 0.0
        row = {"i": a.start + k, "snr": float(view.snr()[a.start + k]), "log_g": float(view.logg[a.start + k]),
               "grid_mean": float(grid["mean"][k]),
               "grid_sd": float(grid["sd"][k]), "mcmc_mean": m, "mcmc_sd": sd, "n_eff": n_eff,
               "refined": bool(grid["method"][k] == 1),
               "z": (m - grid["mean"][k]) / np.sqrt(sd**2 / n_eff + grid_err**2), "sd_ratio": sd / grid["sd"][k]}
        rows.append(row)
        print(f"{k:3d} SNR {row['snr']:5.1f}  grid {row['grid_mean']:.3f}±{row['grid_sd']:.3f}  "
              f"MCMC {m:.3f}±{sd:.3f} (n_eff {n_eff:.0f})  z {row['z']:+.2f}  sd ratio {row['sd_ratio']:.3f}  "
              f"{time.perf_counter() - t1:.0f} s", flush=True)
    z = np.array([r["z"] for r in rows])
    ratio = np.array([r["sd_ratio"] for r in rows])
    print(f"{len(rows)} spectra: rms z {np.sqrt(np.mean(z**2)):.2f}, max |z| {np.abs(z).max():.2f}, "
          f"|z| > 3 in {np.sum(np.abs(z) > 3)}; sd ratio median {np.median(ratio):.3f}, "
          f"10-90 % {np.percentile(ratio, 10):.3f}-{np.percentile(ratio, 90):.3f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
