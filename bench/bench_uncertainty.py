"""Per-star sigma(log g) of the estimators that give one, against the exact posterior (issue 17).

    python bench/bench_uncertainty.py [--n 2000] [--config config/config.yaml]

After the main job (it reads data/grid/instrument.h5, data/datasets/test.h5 and the Bayes ceiling's
per-spectrum table results/track_c/bayes_per_spectrum.csv): fits every estimator class with
``gives_std`` that needs no training data (the template fit: the sd over its grid nodes weighted by
exp(-chi^2/2); the interpolated ML fit: the Laplace width from the Fisher matrix at the fit) on the grid,
predicts the first ``--n`` test spectra at the default noise level (the models' test noise) with their
std, and prints :func:`pfslogg.uncertainty.calibration` overall and per SNR bin: coverage of the 68 % and
95 % Gaussian intervals, the PIT histogram's largest deviation from uniform, and the std against the
exact posterior sd of the same spectra (median ratio, share within 20 %, rank correlation). The Bayes
posterior itself is printed as the reference row (its mean +- sd).
"""

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GRID_ONLY = ("mlfit", "template")   # estimator classes with a per-star std and no training


def show(name, cal, seconds=None):
    o = cal["overall"]
    extra = f"  ({seconds:.0f} s)" if seconds is not None else ""
    print(f"{name}: n {o['n']}, coverage68 {o['coverage68']:.3f}, coverage95 {o['coverage95']:.3f}, PIT max dev "
          f"{o['pit_max_deviation']:.2f}, std/post sd median {o.get('sd_ratio_median', float('nan')):.3f} "
          f"[{o.get('sd_ratio_q16', float('nan')):.3f}, {o.get('sd_ratio_q84', float('nan')):.3f}], within 20 % "
          f"{o.get('within20', float('nan')):.3f}, rank corr {o.get('sd_rank_correlation')}{extra}")
    print(f"  {'SNR bin':>11s} {'n':>5s} {'cov68':>6s} {'cov95':>6s} {'PITdev':>6s} {'ratio':>6s} {'within20':>8s}")
    for b in cal["snr_bins"]:
        print(f"  {b['lo']:5.1f}-{b['hi']:<5.1f} {b['n']:5d} {b['coverage68']:6.3f} {b['coverage95']:6.3f} "
              f"{b['pit_max_deviation']:6.2f} {b.get('sd_ratio_median') or float('nan'):6.3f} "
              f"{b.get('within20') or float('nan'):8.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--config", default="config/config.yaml")
    a = ap.parse_args()

    import pandas as pd

    from pfslogg.config import load_config, noise_seed
    from pfslogg.data.dataset import SpectraSet
    from pfslogg.data.views import NoisyView
    from pfslogg.estimators import FitContext, make_estimator
    from pfslogg.uncertainty import calibration, predict_with_std

    cfg = load_config(ROOT / a.config)
    view = NoisyView(SpectraSet(ROOT / "data/datasets/test.h5"), float(cfg["noise"]["noise_level"]),
                     noise_seed=noise_seed(cfg, "test"), sigma=cfg["noise"]["sigma"])
    rows = np.arange(min(a.n, view.n))
    flux, sigma = view.read_rows(rows)
    y, snr = np.asarray(view.logg, float)[rows], np.asarray(view.snr(), float)[rows]
    table = pd.read_csv(ROOT / "results/track_c/bayes_per_spectrum.csv")
    if len(table) != view.n:
        raise SystemExit(f"results/track_c/bayes_per_spectrum.csv: {len(table)} rows, the test view {view.n}")
    post_mean, post_sd = table["post_mean"].to_numpy(float)[rows], table["post_sd"].to_numpy(float)[rows]
    edges = cfg["evaluation"]["snr_bins"]
    show("Bayes posterior (reference)", calibration(y, post_mean, post_sd, snr, edges, post_sd=post_sd))
    ctx = FitContext(grid=str(ROOT / "data/grid/instrument.h5"), ranges=cfg["params"])
    for cls in GRID_ONLY:   # the classes that fit on the grid alone (a conformal or ensemble model needs data)
        t0 = time.perf_counter()
        est = make_estimator(cls).fit(None, None, ctx)
        mean, std = predict_with_std(est, flux, sigma)
        show(cls, calibration(y, mean, std, snr, edges, post_sd=post_sd), time.perf_counter() - t0)


if __name__ == "__main__":
    main()
