"""The error channel (issue 16, Track E): how much a model learns about log g from sigma alone, with
the stored sigma (computed from the clean flux) and with sigma estimated from the noisy flux
(``noise.sigma``, :meth:`pfslogg.data.noise.ExposureModel.estimate_sigma`).

For each mode, at noise level 1: Ridge (standardised features, RidgeCV over a few alphas, chosen by
leave-one-out on the training rows) on the noisy flux alone, on sigma / median(sigma) alone and on
[flux, sigma / median(sigma)], trained on the first ``--n-train`` training spectra (one fixed noise
draw) and scored on the validation and test sets (their fixed noise); and the template fit, which
weights its chi^2 by 1 / sigma^2. R^2 = 1 - MSE / Var_prior(log g), as everywhere. Also the ratio
of the estimated to the true sigma (per pixel) on the validation set.

Expected: with ``stored`` sigma alone predicts log g almost perfectly (it is a function of the clean
spectrum); with ``estimated`` it is no better than the flux alone (it is a function of the flux).

    nice -n 10 python bench/bench_error_channel.py [--data data/datasets] [--grid data/grid/instrument.h5]
        [--n-train 3000] [--threads 2]

Needs the default data sets and instrument grid (``snakemake`` builds them). Prints a table; not a test.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ALPHAS = (1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5)
NOISE_LEVEL = 1.0


def features(kind, flux, sigma):
    rel = sigma / np.median(sigma, axis=1, keepdims=True)
    return {"flux": flux, "sigma": rel, "flux+sigma": np.hstack([flux, rel])}[kind]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "datasets"))
    ap.add_argument("--grid", default=str(ROOT / "data" / "grid" / "instrument.h5"))
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(a.threads))

    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pfslogg.data.dataset import SpectraSet
    from pfslogg.data.views import NoisyView
    from pfslogg.estimators import FitContext, make_estimator
    from pfslogg.evaluation import prior_variance

    sets = {s: SpectraSet(Path(a.data) / f"{s}.h5") for s in ("train", "val", "test")}
    ranges = {k: list(v) for k, v in json.loads(sets["train"].attrs["config"])["ranges"].items()}
    var = prior_variance(*ranges["log_g"])

    def r2(y, pred):
        return 1.0 - float(np.mean((np.asarray(pred) - y) ** 2)) / var

    rows, t0 = [], time.perf_counter()
    ratio = None
    for mode in ("stored", "estimated"):
        train = NoisyView(sets["train"], NOISE_LEVEL, n=a.n_train, noise_seed=11, sigma=mode)
        held = {s: NoisyView(sets[s], NOISE_LEVEL, noise_seed=12 + i, sigma=mode)
                for i, s in enumerate(("val", "test"))}
        Xtr, Str = train.load(np.float64)
        data = {s: v.load(np.float64) for s, v in held.items()}
        if mode == "estimated":
            true = NoisyView(sets["val"], NOISE_LEVEL, noise_seed=12, sigma="stored").load(np.float64)[1]
            ratio = data["val"][1] / true
        for kind in ("flux", "sigma", "flux+sigma"):
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
            model.fit(features(kind, Xtr, Str), train.y)
            scores = {s: r2(held[s].y, model.predict(features(kind, *data[s]))) for s in held}
            rows.append((mode, f"ridge[{kind}]", float(model[-1].alpha_), scores))
        tmpl = make_estimator("template", {}, random_state=0)
        tmpl.fit(None, None, FitContext(grid=a.grid, ranges=ranges))
        rows.append((mode, "template", None, {s: r2(held[s].y, tmpl.predict(*data[s])) for s in held}))

    print(f"error channel at noise level {NOISE_LEVEL:g}: R^2 of log g (train {a.n_train} spectra, "
          f"val {sets['val'].n}, test {sets['test'].n}; {time.perf_counter() - t0:.0f} s)")
    print(f"{'sigma':<10} {'model':<20} {'alpha':>8} {'R2 val':>8} {'R2 test':>8}")
    for mode, name, alpha, s in rows:
        al = f"{alpha:8.0e}" if alpha is not None else f"{'-':>8}"
        print(f"{mode:<10} {name:<20} {al} {s['val']:8.4f} {s['test']:8.4f}")
    q = np.percentile(ratio, [1, 5, 50, 95, 99])
    print(f"estimated / true sigma per pixel (val): mean {ratio.mean():.4f}, sd {ratio.std():.4f}, "
          f"percentiles 1/5/50/95/99: {' '.join(f'{v:.3f}' for v in q)}")


if __name__ == "__main__":
    main()
