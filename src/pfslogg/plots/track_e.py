"""Figures of Track E: linearity (R^2 against noise level of an experiment's estimators, and each
compared variant's paired difference to its reference at every noise level), probing (R^2 of latent probes
against Ridge on the raw flux) and error_channel (R^2 of models fed the estimated or the stored sigma
against the Bayes ceiling of the same test spectra)."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from ..errors import InputError
from .common import COLORS, MARKERS, R2_LABEL, SNR_LABEL, figure, load_results, log_ticks, percent
from .experiment import Aggregate, dodge, estimator_legend, noise_xaxis, num, zero_line
from .track_a import VERDICT_COLORS


def _differences(agg, e):
    """[(noise level, difference, lo, hi, verdict)] of variant e against its reference, every level the
    aggregate compared it at, in increasing noise."""
    comp = (agg.m.get("comparisons") or {})[e]
    rows = [(num(c["noise_level"]), num(c["r2_diff"]), *(num(v) for v in c["r2_diff_ci"]), c.get("verdict"))
            for c in comp.values() if isinstance(c, dict) and "r2_diff" in c]
    if not rows:
        agg.fail(f"no comparison of {e!r} with {comp.get('reference')!r}")
    return sorted(rows)


@figure("linearity")
def linearity(inputs, params):
    """Top: R^2 against noise level at the largest training size of every estimator of the aggregate
    (intervals over seeds). Bottom: each compared variant (the MLP with a linear shortcut) minus its
    reference (the plain MLP) at every noise level it was compared at, with the paired bootstrap interval
    over the test spectra and the marker coloured by the verdict (gain, loss, no difference).
    params: confidence (optional; must match the aggregate's)."""
    agg = Aggregate(inputs, params)
    levels, n = agg.noise_levels, agg.sizes[-1]
    variants = list(agg.m.get("comparisons") or {})
    if not variants:
        agg.fail("no comparisons: the figure draws each compared variant's difference to its reference")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.8, 5.4), sharex=True, layout="constrained",
                                      gridspec_kw={"height_ratios": [3, 2]})
    means = []
    for i, e in enumerate(agg.names):
        y, err = agg.r2(e, [(level, n) for level in levels])
        means.append(y)
        top.errorbar(levels, y, yerr=err, color=agg.color(e), marker=agg.marker(e), ms=3.5, capsize=2, lw=1.1,
                     transform=dodge(top, i, len(agg.names), levels, [y - err[0], y + err[1]]))
    # the means set the axis: with few seeds an interval over seeds can run far outside what R^2 takes
    lowest = float(np.nanmin(np.concatenate(means)))
    top.set_ylim(min(lowest, 0.0) - 0.1, 1.05)
    top.set_ylabel(R2_LABEL)
    top.grid(alpha=0.3)
    zero_line(top)
    top.set_title(f"log g $R^2$ against noise, training size {n:,}; {agg.interval_text()}", fontsize=8.5)
    for i, e in enumerate(variants):
        rows = _differences(agg, e)
        x = np.array([r[0] for r in rows])
        d, lo, hi = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
        trans = dodge(bottom, i, len(variants), x, [lo, hi])
        bottom.errorbar(x, d, yerr=[d - lo, hi - d], fmt="none", ecolor="0.3", elinewidth=0.9, capsize=2,
                        transform=trans)
        bottom.plot(x, d, color=agg.color(e), lw=0.8, ls=":", transform=trans)
        bottom.scatter(x, d, s=22, zorder=3, marker=agg.marker(e), transform=trans, edgecolors="0.2", linewidths=0.5,
                       c=[VERDICT_COLORS.get(r[4], "0.8") for r in rows])
    bottom.axhline(0, color="0.4", lw=0.7)
    ref = (agg.m["comparisons"][variants[0]] or {}).get("reference")
    bottom.set_ylabel(f"$\\Delta R^2$ to {agg.label(ref)}" if len(variants) == 1 and ref in agg.names
                      else "$\\Delta R^2$ to its reference")
    bottom.grid(alpha=0.3)
    bottom.set_title(f"paired difference, {percent(agg.confidence)} bootstrap interval over the test spectra",
                     fontsize=8)
    noise_xaxis(bottom, levels)
    estimator_legend(fig, agg, agg.names)
    handles = [Patch(color=c, label=w) for w, c in VERDICT_COLORS.items()]
    bottom.legend(handles=handles, loc="best", frameon=False, fontsize=7)
    return fig


def _efficiency(inputs):
    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: the figure reads one efficiency file")
    return inputs[0], load_results(inputs[0], "efficiency")["metrics"]


@figure("error_channel")
def error_channel(inputs, params):
    """Left: R^2 over the whole test set of every model of an efficiency file (check_error_channel_ceiling)
    -- those fed the ceiling's sigma filled, those fed another (``other_sigma``: the stored sigma) hatched --
    with its bootstrap interval, against the Bayes ceiling (line, band: its interval). Right: R^2 per SNR
    bin of the same models and the ceiling. params: confidence (unused but accepted)."""
    path, m = _efficiency(inputs)
    other = m.get("other_sigma") or {}
    # the words of each model: its label with what tells it from another of its class, the sigma it saw
    # among them (efficiency.labels)
    models = [(e, m["overall"]["models"][e], m["labels"][e], False) for e in m["estimators"]]
    models += [(e, other["overall"]["models"][e], other["labels"][e], True)
               for e in other.get("estimators", [])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.0, 3.4), layout="constrained",
                                      gridspec_kw={"width_ratios": [1, 1.2]})
    bayes, (blo, bhi) = num(m["overall"]["bayes_r2"]), (num(v) for v in m["overall"]["bayes_r2_ci"])
    y = np.arange(len(models))
    for k, (e, row, label, leak) in enumerate(models):
        color = COLORS[k % len(COLORS)]
        r2, (lo, hi) = num(row["r2"]), (num(v) for v in row["r2_ci"])
        left.barh([k], [r2], color=color, alpha=0.45 if leak else 0.85, hatch="//" if leak else None,
                  edgecolor=color)
        left.errorbar([r2], [k], xerr=[[r2 - lo], [hi - r2]], fmt="none", ecolor="0.15", capsize=2, elinewidth=0.9)
        bins = (other if leak else m)["snr_bins"]
        right.plot([np.sqrt(b["lo"] * b["hi"]) for b in bins], [num(b["models"].get(e, {}).get("r2")) for b in bins],
                   color=color, marker=MARKERS[k % len(MARKERS)], ms=3.5, lw=1.1, ls="--" if leak else "-",
                   label=label)
    left.axvspan(blo, bhi, color="0.8", alpha=0.6, lw=0)
    left.axvline(bayes, color="0.1", lw=1.2, label="Bayes ceiling")
    left.set_yticks(y, [label.replace(", ", ",\n", 1) for _, _, label, _ in models], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel(R2_LABEL)
    left.grid(axis="x", alpha=0.3)
    left.legend(loc="lower right", frameon=False, fontsize=7)
    mode = other.get("ceiling_sigma")
    left.set_title(f"whole test set (ceiling: {mode or 'the same'} sigma)", fontsize=8)
    mids = [np.sqrt(b["lo"] * b["hi"]) for b in m["snr_bins"]]
    right.plot(mids, [num(b["bayes_r2"]) for b in m["snr_bins"]], color="0.1", lw=1.6, label="Bayes ceiling")
    right.fill_between(mids, [num(b["bayes_r2_ci"][0]) for b in m["snr_bins"]],
                       [num(b["bayes_r2_ci"][1]) for b in m["snr_bins"]], color="0.8", alpha=0.6, lw=0)
    right.set_xscale("log")
    log_ticks(right.xaxis, sorted({b["lo"] for b in m["snr_bins"]} | {b["hi"] for b in m["snr_bins"]}))
    right.set_xlabel(SNR_LABEL)
    right.set_ylabel("$R^2$ in the SNR bin")
    right.grid(alpha=0.3)
    zero_line(right)
    fig.legend(*right.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False, fontsize=7)
    right.set_title("per SNR bin (at the bins' geometric centres)", fontsize=8)
    return fig


@figure("probing")
def probing(inputs, params):
    """Left: R^2 of every estimator of the probing aggregate at its one noise level and largest size (bars,
    intervals over seeds), Ridge on the raw flux drawn as a line with its interval. Right: each probe's
    paired difference to its reference with the bootstrap interval over the test spectra, coloured by the
    verdict. params: confidence (optional; must match the aggregate's)."""
    agg = Aggregate(inputs, params)
    level, n = agg.noise_levels[0], agg.sizes[-1]
    comps = agg.m.get("comparisons") or {}
    if not comps:
        agg.fail("no comparisons: the figure draws each probe's difference to its reference")
    refs = {c.get("reference") for c in comps.values()}
    bars = [e for e in agg.names if e not in refs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.0, 0.32 * len(bars) + 1.6), sharey=True, layout="constrained")
    y = np.arange(len(bars))
    for k, e in enumerate(bars):
        (r2,), (lo, hi) = agg.r2(e, [(level, n)])
        left.barh([k], [r2], color=agg.color(e), alpha=0.85)
        left.errorbar([r2], [k], xerr=[lo, hi], fmt="none", ecolor="0.15", capsize=2, elinewidth=0.9)
        if e in comps:
            d = next(c for c in comps[e].values() if isinstance(c, dict) and "r2_diff" in c
                     and num(c["noise_level"]) == num(level))
            dv, (dlo, dhi) = num(d["r2_diff"]), (num(v) for v in d["r2_diff_ci"])
            right.errorbar([dv], [k], xerr=[[dv - dlo], [dhi - dv]], fmt="none", ecolor="0.3", capsize=2, elinewidth=0.9)
            right.scatter([dv], [k], s=28, zorder=3, color=VERDICT_COLORS.get(d.get("verdict"), "0.8"),
                          edgecolors="0.2", linewidths=0.5)
    for i, ref in enumerate(sorted(r for r in refs if r in agg.names)):
        (r2,), (lo, hi) = agg.r2(ref, [(level, n)])
        left.axvline(r2, color="0.1", lw=1.2, ls=("-", "--", ":")[i % 3], label=f"{agg.label(ref)} (raw flux)")
        left.axvspan(r2 - float(lo[0]), r2 + float(hi[0]), color="0.8", alpha=0.5, lw=0)
    left.set_yticks(y, [agg.label(e).replace(", ", ",\n", 1) for e in bars], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel(R2_LABEL)
    left.grid(axis="x", alpha=0.3)
    left.legend(loc="lower right", frameon=False, fontsize=7)
    left.set_title(f"noise level {level:g}, {n:,} training spectra; {agg.interval_text()}", fontsize=8)
    right.axvline(0, color="0.4", lw=0.7)
    right.set_xlabel("$\\Delta R^2$ to its reference")
    right.grid(axis="x", alpha=0.3)
    right.set_title(f"paired difference, {percent(agg.confidence)} bootstrap interval", fontsize=8)
    handles = [Patch(color=c, label=w) for w, c in VERDICT_COLORS.items()]
    right.legend(handles=handles, loc="best", frameon=False, fontsize=7)
    return fig
