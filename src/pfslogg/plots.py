"""Figures. Plotting reads results JSONs only, so restyling never reruns a computation."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .errors import InputError  # noqa: E402

STYLE = {"font.size": 9, "axes.labelsize": 9, "legend.fontsize": 7.5, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "lines.linewidth": 1.4, "savefig.bbox": "tight", "pdf.fonttype": 42}
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
SNR_LABEL = r"per-pixel SNR $=\mathrm{median}(f/\sigma)$"
R2_LABEL = r"$R^2 = 1-\mathrm{MSE}/\mathrm{Var}_\mathrm{prior}(\log g)$"


def _load(path):
    try:
        with open(path) as fh:
            return json.load(fh)["metrics"]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read results JSON ({e})") from None


def _save(fig, out):
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=str(out).rsplit(".", 1)[-1])
    plt.close(fig)


def plot_r2_vs_snr(inputs, out, params):
    """R^2 per SNR bin for each estimator (bootstrap band) and the Fisher ceiling band."""
    results = [_load(p) for p in inputs]
    ceiling = [r for r in results if "estimator" not in r]
    models = [r for r in results if "estimator" in r]
    order = params.get("estimators") or [m["estimator"] for m in models]
    models.sort(key=lambda m: order.index(m["estimator"]) if m["estimator"] in order else len(order))
    edges = params["snr_bins"]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 3.3))
        for c in ceiling:
            b = c["snr_bins"]
            x = [r["snr_median"] for r in b]
            ax.fill_between(x, [r["r2max_p10"] for r in b], [r["r2max_p90"] for r in b], color="0.8",
                            lw=0, label="Fisher ceiling, 10–90 %")
            ax.plot(x, [r["r2max_median"] for r in b], color="0.25", ls="--", label="Fisher ceiling, median")
        for i, m in enumerate(models):
            b = m["snr_bins"]
            x = np.array([r["snr_median"] for r in b])
            y = np.array([r["r2"] for r in b])
            lo = np.array([r["r2_ci"][0] for r in b])
            hi = np.array([r["r2_ci"][1] for r in b])
            col = COLORS[i % len(COLORS)]
            ax.fill_between(x, lo, hi, color=col, alpha=0.2, lw=0)
            ax.plot(x, y, color=col, marker=MARKERS[i % len(MARKERS)], ms=3.5,
                    label=f"{m.get('label', m['estimator'])} (all: {m['overall']['r2']:.2f})")
        ax.set_xscale("log")
        ax.set_xlim(edges[0], edges[-1])
        ticks = [t for t in (2, 3, 5, 7, 10, 15, 20, 30, 50, 100) if edges[0] <= t <= edges[-1]]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.02)
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_xlabel(SNR_LABEL)
        ax.set_ylabel(R2_LABEL)
        n = models[0]["n_test"] if models else ceiling[0]["n"]
        ax.set_title(f"log g on held-out spectra (N = {n}), 95 % bootstrap bands", fontsize=8.5)
        ax.grid(alpha=0.3, which="major")
        ax.legend(loc="lower right", frameon=False)
        _save(fig, out)


def plot_ceiling_calibration(inputs, out, params):
    """Median Fisher R^2_max of the embedded model vs the original study's (BOSZ) values."""
    (res,) = [_load(p) for p in inputs]
    pts = res["points"]
    s = np.array([p["snr"] for p in pts])
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 3.0))
        orig = np.array([p["original"] for p in pts])
        ax.fill_between(s, orig - 0.1, np.minimum(orig + 0.1, 1.0), color="C1", alpha=0.15, lw=0,
                        label="original ±0.1 (calibration target)")
        ax.plot(s, orig, "s--", color="C1", ms=4, label="original study (BOSZ, finite differences)")
        med = np.array([p["r2max_median"] for p in pts])
        yerr = [med - [p["r2max_p10"] for p in pts], np.array([p["r2max_p90"] for p in pts]) - med]
        ax.errorbar(s, med, yerr=yerr, fmt="o-", color="C0", ms=4, capsize=2,
                    label="embedded model (median, 10–90 %)")
        ax.set_xscale("log")
        ax.set_xticks([2, 3, 5, 7, 10, 20, 30])
        ax.set_xticklabels(["2", "3", "5", "7", "10", "20", "30"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(SNR_LABEL)
        ax.set_ylabel(r"marginal Fisher ceiling $R^2_\mathrm{max}$")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", frameon=False)
        _save(fig, out)
