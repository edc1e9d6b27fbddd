"""Figures against the signal-to-noise ratio: R^2 of estimators under the Bayes ceiling, with the
band of the Cramer-Rao bound for unbiased estimators beside it (r2_vs_snr), and the calibration of
the Cramer-Rao bound against the original study (ceiling_calibration)."""

import logging
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from ..errors import InputError
from .common import MARKERS, MODEL_COLORS, R2_LABEL, SNR_LABEL, confidence, figure, load_results, log_ticks, percent

log = logging.getLogger(__name__)

# Fewer spectra than this and an R^2 says nothing: the floor of an SNR bin in
# evaluation.metrics_by_snr (min_count), applied to the overall R^2 of a legend entry too.
MIN_SPECTRA = 10
TOO_FEW = "too few spectra"


def n_spectra(m):
    """How many test spectra a model's or ceiling's results (metrics) are over (None: not recorded)."""
    return (m.get("overall") or {}).get("n", m.get("n_test", m.get("n")))


def too_few(m):
    n = n_spectra(m)
    return n is not None and n < MIN_SPECTRA


@dataclass(frozen=True)
class Ceiling:
    """How a ceiling of kind ``kind`` is drawn over its snr_bins: a line in a band. With ``field``:
    the line at ``{field}_median`` in the band between ``{field}_p10`` and ``{field}_p90`` -- a
    median of per-spectrum bounds, not a bound on the models' mean; without: the line at ``r2`` in
    its bootstrap ``r2_ci`` -- a ceiling scored like the models (the Bayes ceiling)."""
    name: str
    fill: str
    line: str
    ls: str
    field: str = None

    def draw(self, ax, m):
        if too_few(m):   # a legend entry that says so, no band and no R^2
            ax.plot([], [], color=self.line, ls=self.ls, label=f"{self.name}: {TOO_FEW} (N = {n_spectra(m)})")
            return
        b = m["snr_bins"]
        x = [r["snr_median"] for r in b]
        if self.field:
            lo, hi, y = ([r[f"{self.field}_{k}"] for r in b] for k in ("p10", "p90", "median"))
            band, label = (f"{self.name}, 10–90 % of per-spectrum bounds",
                           f"{self.name}, median of per-spectrum bounds")
        else:
            lo, hi, y = [r["r2_ci"][0] for r in b], [r["r2_ci"][1] for r in b], [r["r2"] for r in b]
            band, label = None, f"{self.name} (all: {m['overall']['r2']:.2f})"
        ax.fill_between(x, lo, hi, color=self.fill, lw=0, label=band)
        ax.plot(x, y, color=self.line, ls=self.ls, label=label)


# A further ceiling is one more entry: its results kind and how it is drawn (in this order).
CEILINGS = {"bayes": Ceiling("Bayes ceiling (posterior mean)", fill="0.75", line="k", ls="-"),
            "fisher": Ceiling("Cramér–Rao bound (unbiased)", fill="0.88", line="0.4", ls="--", field="r2max")}


@figure("r2_vs_snr")
def r2_vs_snr(inputs, params):
    """R^2 per SNR bin of each estimator (bootstrap band) with the ceiling bands.
    inputs: experiment cells (kind "estimator") and ceilings (a kind of CEILINGS).
    params: estimators (drawing order), snr_bins (edges), confidence (of the bootstrap bands)."""
    if not inputs:
        raise InputError("r2_vs_snr: no inputs (expected experiment cells and ceilings)")
    docs = [(p, load_results(p, ("estimator", *CEILINGS))) for p in inputs]
    models = [(p, d["metrics"]) for p, d in docs if d["kind"] == "estimator"]
    ceilings = sorted(((d["kind"], d["metrics"]) for _, d in docs if d["kind"] in CEILINGS),
                      key=lambda km: list(CEILINGS).index(km[0]))
    level = confidence(params, models + [(p, d["metrics"]) for p, d in docs if d["kind"] == "bayes"])
    order = params.get("estimators") or [m["estimator"] for _, m in models]
    models.sort(key=lambda pm: order.index(pm[1]["estimator"]) if pm[1]["estimator"] in order else len(order))
    edges = params["snr_bins"]
    fig, ax = plt.subplots(figsize=(4.6, 3.3), layout="constrained")
    for kind, c in ceilings:
        CEILINGS[kind].draw(ax, c)
    for i, (_, m) in enumerate(models):
        b = m["snr_bins"]
        x = np.array([r["snr_median"] for r in b])
        col = MODEL_COLORS[i % len(MODEL_COLORS)]
        if too_few(m):
            ax.plot([], [], color=col, marker=MARKERS[i % len(MARKERS)], ms=3.5,
                    label=f"{m.get('label', m['estimator'])}: {TOO_FEW} (N = {n_spectra(m)})")
            continue
        ax.fill_between(x, [r["r2_ci"][0] for r in b], [r["r2_ci"][1] for r in b], color=col, alpha=0.2, lw=0)
        ax.plot(x, [r["r2"] for r in b], color=col, marker=MARKERS[i % len(MARKERS)], ms=3.5,
                label=f"{m.get('label', m['estimator'])} (all: {m['overall']['r2']:.2f})")
    ax.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])
    log_ticks(ax.xaxis, [t for t in (2, 3, 5, 7, 10, 15, 20, 30, 50, 100) if edges[0] <= t <= edges[-1]])
    ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.02)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel(SNR_LABEL)
    ax.set_ylabel(R2_LABEL)
    n = models[0][1]["n_test"] if models else ceilings[0][1]["n"]
    seeds = sorted({m["seed"] for _, m in models if m.get("seed") is not None})
    run = f", one run per model (seed {', '.join(map(str, seeds))})" if seeds else ""
    ax.set_title(f"log g on held-out spectra (N = {n}){run},\n{percent(level)} bootstrap bands", fontsize=8.5)
    _say_too_few(ax, models, ceilings)
    ax.grid(alpha=0.3, which="major")
    # the legend below the axes, two columns, the figure taller by its rows: inside the axes, seven
    # models and three ceiling entries hid the curves
    handles, labels = ax.get_legend_handles_labels()
    fig.set_figheight(3.3 + 0.13 * -(-len(labels) // 2))
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False, fontsize=7)
    return fig


def _say_too_few(ax, models, ceilings):
    """With too few test spectra, say so -- in the axes when no curve is left, and as a warning --
    instead of printing an R^2 of a handful of spectra (or none per SNR bin) in the legend."""
    entries = [(m.get("label", m["estimator"]), m) for _, m in models] + [(CEILINGS[k].name, m) for k, m in ceilings]
    few = [(name, n_spectra(m)) for name, m in entries if too_few(m)]
    if few:
        log.warning("r2_vs_snr: %s for an R^2 (fewer than %d): %s; drawn without one", TOO_FEW, MIN_SPECTRA,
                    ", ".join(f"{name} (N = {n})" for name, n in few))
    if entries and not any(m.get("snr_bins") for _, m in entries if not too_few(m)):
        n = max((n_spectra(m) or 0) for _, m in entries)
        ax.text(0.5, 0.5, f"{TOO_FEW}: N = {n}\n(an R$^2$ needs at least {MIN_SPECTRA} per SNR bin)",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3")
        if not few:
            log.warning("r2_vs_snr: %s: no SNR bin holds %d of the N = %d test spectra; the axes are empty",
                        TOO_FEW, MIN_SPECTRA, n)


@figure("ceiling_calibration")
def ceiling_calibration(inputs, params):
    """Median Fisher R^2_max of the embedded model vs the original study's (BOSZ) values.
    inputs: one results file of kind "calibration"; params: none."""
    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: ceiling_calibration reads one file of kind 'calibration'")
    res = load_results(inputs[0], "calibration")["metrics"]
    pts = res["points"]
    s = np.array([p["snr"] for p in pts])
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    orig = np.array([p["original"] for p in pts])
    tol = res.get("tolerance")
    if tol:
        ax.fill_between(s, orig - tol, np.minimum(orig + tol, 1.0), color="C1", alpha=0.15, lw=0,
                        label=f"original ±{tol:g} (tolerance)")
    ax.plot(s, orig, "s--", color="C1", ms=4, label="original study (BOSZ, finite differences)")
    med = np.array([p["r2max_median"] for p in pts])
    yerr = [med - [p["r2max_p10"] for p in pts], np.array([p["r2max_p90"] for p in pts]) - med]
    ax.errorbar(s, med, yerr=yerr, fmt="o-", color="C0", ms=4, capsize=2, label="embedded model (median, 10–90 %)")
    ax.set_xscale("log")
    log_ticks(ax.xaxis, [2, 3, 5, 7, 10, 20, 30])
    ax.set_xlabel(SNR_LABEL)
    ax.set_ylabel(r"Cramér–Rao bound $R^2_\mathrm{CR}$ (unbiased)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    return fig
