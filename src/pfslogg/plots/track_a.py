"""Figures of Track A (neural estimators), each read from experiment aggregates (kind
"experiment"): R^2 against training size with the fitted power law (scaling_law), the per-epoch
training log of the networks (training_curves) and the R^2 of each ablation variant against its own
reference, with the paired differences the ablation table prints (ablations).

Each takes ``params``: ``noise_level`` (default: the aggregate's default_noise_level, or its only
level) and ``confidence`` (optional; must match the aggregate's), and the figure's own keys below.
"""

import math

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import Patch

from ..errors import InputError
from ..experiments import comparison_groups, variant_labels
from ..scaling import power_law
from .common import R2_LABEL, SIZE_LABEL, figure, percent
from .experiment import Aggregate, dodge, num

EXTRAPOLATE_TO = 1_000_000   # the scaling curves run on to the original study's largest size


def size_label(n):
    """1000000 -> '1M', 50000 -> '50k', 500 -> '500'."""
    n = float(n)
    return f"{n / 1e6:g}M" if n >= 1e6 else (f"{n / 1e3:g}k" if n >= 1e3 else f"{n:g}")


def noise_level(agg, params):
    """The noise level a Track A figure draws: params noise_level, else the aggregate's default
    (when it has cells there), else its only level."""
    level = params.get("noise_level")
    if level is None:
        default = agg.m.get("default_noise_level")
        if default is not None and float(default) in agg.noise_levels:
            level = default
        elif len(agg.noise_levels) == 1:
            level = agg.noise_levels[0]
        else:
            agg.fail(f"noise levels {agg.noise_levels} and no default_noise_level: give params noise_level")
    if float(level) not in agg.noise_levels:
        agg.fail(f"no cells at noise level {float(level):g} (levels: {agg.noise_levels})")
    return float(level)


def variant_label(agg, e, params):
    """params labels[e], else the words the aggregate names it by (pfslogg.experiments.variant_labels,
    which the tables use too: "ViT, patch 32", never a variant id)."""
    labels = params.get("labels") or {}
    if e in labels:
        return str(labels[e])
    return variant_labels({x: {"label": agg.label(x), "class": agg.m["estimators"][x].get("class")}
                           for x in agg.names})[e]


# -------------------------------------------------------------------------------- scaling_law

def _fit(agg, e, level):
    """(fit, note) of estimator e: the power law the aggregate stored (metrics["power_law"][e], fitted
    by aggregate_experiment with pfslogg.scaling) when it was made at this noise level, else None and
    what the legend says instead (nothing for a skipped fit: fewer than 4 sizes). A figure never
    fits: without a stored fit at this level no curve is drawn."""
    fit = (agg.m.get("power_law") or {}).get(e)
    if isinstance(fit, dict) and "skipped" in fit:
        return None, ""
    if not isinstance(fit, dict) or not fit:
        return None, ": no power law stored"
    if num(fit.get("noise_level")) != level:
        return None, f": power law stored at noise level {num(fit.get('noise_level')):g} only"
    return fit, ""


def _reference_lines(ax, source, names, level):
    """Horizontal lines at the R^2 of the reference estimators of ``source`` at its largest size."""
    styles = [(0, (1, 1.5)), (0, (5, 1.5, 1, 1.5)), (0, (3, 1.5))]
    for i, e in enumerate(names):
        if e not in source.names:
            source.fail(f"no reference estimator {e!r} (estimators: {', '.join(source.names)})")
        sizes = [n for n in source.sizes if source.cell(e, level, n)]
        if not sizes:
            source.fail(f"no cells of reference estimator {e!r} at noise level {level:g}")
        r2 = num(source.cell(e, level, sizes[-1])["r2"])
        ax.axhline(r2, color="0.25", lw=1.0, ls=styles[i % len(styles)], zorder=1,
                   label=f"{source.label(e)}, N = {size_label(sizes[-1])}: {r2:.3f}")


@figure("scaling_law")
def scaling_law(inputs, params):
    """Held-out R^2 against training-set size (log axis) per estimator at one noise level, with its
    interval over seeds and the fitted power law R^2_inf - a N^-b (dashed; lighter where it runs on
    to 1M spectra, past the largest size: extrapolation) and horizontal lines at reference estimators.
    The original study's ViT is not drawn: it was trained and tested on BOSZ spectra, another problem
    than these data's, so its R^2 does not belong on these axes. The curves are the fits the aggregate stored
    (metrics["power_law"]); an estimator without one at the noise level drawn gets no curve, and its
    legend entry says so.
    inputs: the scaling aggregate, then optionally a second aggregate holding the references (the
    Track F benchmark). params: reference (list of estimator names, read from the second input, else
    the first), estimators (which to draw; default all), noise_level, confidence."""
    if len(inputs) not in (1, 2):
        raise InputError(f"{', '.join(inputs) or '(none)'}: figure scaling_law reads one experiment aggregate "
                         "and optionally a second one with the reference estimators")
    agg = Aggregate(inputs[:1], params)
    source = Aggregate(inputs[1:], params) if len(inputs) == 2 else agg
    level = noise_level(agg, params)
    names = list(params.get("estimators") or agg.names)
    for e in names:
        if e not in agg.names:
            agg.fail(f"no estimator {e!r} (estimators: {', '.join(agg.names)})")
    sizes = agg.sizes
    fig, ax = plt.subplots(figsize=(5.6, 4.4), layout="constrained")
    right = max(EXTRAPOLATE_TO, sizes[-1]) * 1.5
    ax.axvspan(sizes[-1] * 1.15, right, color="0.93", lw=0, zorder=0)
    ax.text(math.sqrt(sizes[-1] * 1.15 * right), 0.02, "extrapolation", transform=ax.get_xaxis_transform(),
            ha="center", va="bottom", fontsize=7, color="0.4")
    caps = set()   # the bounds of R^2_inf below 1 (the Bayes ceiling, aggregate_experiment)
    curves = False
    for i, e in enumerate(names):
        y, err = agg.r2(e, [(level, n) for n in sizes])
        fit, note = _fit(agg, e, level)
        label = variant_label(agg, e, params) + note
        if fit:
            curves = True
            if num(fit.get("r2_inf_max", 1.0)) < 1.0:
                caps.add(round(float(fit["r2_inf_max"]), 6))
            at_cap = " (at the cap)" if fit.get("at_cap") or "r2_inf" in (fit.get("at_bound") or []) else ""
            label += rf": $R^2_\infty$ = {fit['r2_inf']:.2f}{at_cap}, $b$ = {fit['b']:.2f}"
            inside = np.geomspace(sizes[0], sizes[-1], 80)
            beyond = np.geomspace(sizes[-1], max(EXTRAPOLATE_TO, sizes[-1]), 60)
            curve = (fit["r2_inf"], fit["a"], fit["b"])
            ax.plot(inside, power_law(inside, *curve), color=agg.color(e), ls="--", lw=1.0, zorder=2)
            ax.plot(beyond, power_law(beyond, *curve), color=agg.color(e), ls="--", lw=1.0, alpha=0.4, zorder=2)
        ax.errorbar(sizes, y, yerr=err, color=agg.color(e), marker=agg.marker(e), ms=4, capsize=2, lw=0,
                    elinewidth=1.0, label=label, zorder=3,
                    transform=dodge(ax, i, len(names), sizes, [y - err[0], y + err[1]]))
    _reference_lines(ax, source, list(params.get("reference") or []), level)
    for cap in sorted(caps):   # the Bayes ceiling that bounds every asymptote
        ax.axhline(cap, color="0.1", lw=1.4, zorder=1,
                   label=rf"bound of $R^2_\infty$: Bayes ceiling (upper limit) {cap:.3f}")
    if curves:
        ax.plot([], [], color="0.3", ls="--", lw=1.0, label=r"fit $R^2_\infty - q\,n_\mathrm{train}^{-b}$")
        ax.plot([], [], color="0.3", ls="--", lw=1.0, alpha=0.4, label="fit, extrapolation")
    handles, labels = ax.get_legend_handles_labels()     # the estimators (error bars) first
    order = sorted(range(len(handles)), key=lambda i: not isinstance(handles[i], ErrorbarContainer))
    ax.set_xscale("log")
    ax.set_xlim(sizes[0] / 1.5, right)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: size_label(v)))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(SIZE_LABEL + " (log axis)")
    ax.set_ylabel(R2_LABEL)
    ax.grid(alpha=0.3)
    ax.set_title(f"log g $R^2$ against training-set size, noise level $k$ = {level:g}\n"
                 f"{agg.interval_text()}", fontsize=8.5)
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center", ncol=2,
               frameon=False, fontsize=7)
    return fig


# -------------------------------------------------------------------------------- training_curves

ROWS = (("loss", "loss\n(standardised log g)"), ("val_r2", "validation $R^2$"), ("lr", "learning rate"))


def _histories(agg, e, level, size):
    """What fit recorded, one dict a seed, for the seeds whose fit kept a per-epoch history."""
    return [f for f in agg.fitted(e, level, size) if isinstance(f, dict) and f.get("history")]


def _curve(ax, h, key, **style):
    y = np.array([num(v) for v in h[key]], float)
    x = np.asarray(h.get("epoch") or np.arange(1, len(y) + 1), float)
    ax.plot(x, y, **style)


@figure("training_curves")
def training_curves(inputs, params):
    """The per-epoch log of the neural cells of an aggregate at one noise level and size (default:
    the largest): small multiples, one column per estimator, rows training / validation loss,
    validation R^2 (the restored best epoch dotted) and the learning rate; one line per seed (the
    first darkest). params: estimators (default: every one with a history), size, noise_level."""
    agg = Aggregate(inputs, params)
    level = noise_level(agg, params)
    size = int(params.get("size") or agg.sizes[-1])
    names = [e for e in (params.get("estimators") or agg.names) if _histories(agg, e, level, size)]
    if not names:
        agg.fail(f"no training history (neural estimators) at noise level {level:g} and size {size}")
    ncols = min(len(names), 4)
    blocks = -(-len(names) // ncols)
    fig, axes = plt.subplots(3 * blocks, ncols, figsize=(min(7.2, 1.3 + 1.8 * ncols), 0.6 + 4.2 * blocks),
                             squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k // ncols // 3 * ncols + k % ncols >= len(names):
            ax.set_visible(False)
    for j, e in enumerate(names):
        col = axes[3 * (j // ncols):3 * (j // ncols) + 3, j % ncols]
        fits = _histories(agg, e, level, size)
        for s, f in enumerate(fits):
            h = f["history"]
            style = {"color": agg.color(e), "alpha": 1.0 if s == 0 else 0.4, "lw": 1.1 if s == 0 else 0.8}
            _curve(col[0], h, "train_loss", ls="-", **style)
            _curve(col[0], h, "val_loss", ls="--", **style)
            _curve(col[1], h, "val_r2", **style)
            if f.get("best_epoch"):
                col[1].axvline(f["best_epoch"], ls=":", **dict(style, lw=0.8))
        _curve(col[2], fits[0]["history"], "lr", color="0.25", lw=1.0)
        params_text = f"\n{fits[0]['n_params'] / 1e6:.2g}M parameters" if fits[0].get("n_params") else ""
        col[0].set_title(variant_label(agg, e, params) + params_text, fontsize=8.5)
        col[2].yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter(useMathText=True))
        col[2].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        for r, ax in enumerate(col):
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5, integer=True))
            if r < 2:
                ax.tick_params(labelbottom=False)
            if j % ncols == 0:
                ax.set_ylabel(ROWS[r][1])
        col[2].set_xlabel("epoch")
    handles = [plt.Line2D([], [], color="0.3", ls="-", label="training loss"),
               plt.Line2D([], [], color="0.3", ls="--", label="validation loss"),
               plt.Line2D([], [], color="0.3", ls=":", label="best epoch (weights kept)")]
    seeds = len(agg.seeds)
    if seeds > 1:
        handles.append(plt.Line2D([], [], color="0.3", alpha=0.4, label=f"lighter: seeds 2-{seeds}"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    fig.align_ylabels(axes[:, 0])
    fig.suptitle(f"Training curves, noise level $k$ = {level:g}, N = {size:,}", fontsize=9)
    return fig


# -------------------------------------------------------------------------------- ablations

VERDICT_COLORS = {"gain": "#009E73", "loss": "#D55E00", "no difference": "0.6"}


def _comparison_at(agg, e, level, size):
    """What the aggregate stored of variant e against its own reference at (level, size):
    {"reference", "r2", "r2_reference", "r2_diff", "r2_diff_ci", "verdict", ...}; a figure never
    compares by itself, so a comparison the aggregate lacks there is an error naming the file."""
    comp = (agg.m.get("comparisons") or {})[e]
    for c in comp.values():
        if isinstance(c, dict) and num(c.get("noise_level")) == level and c.get("size") == size:
            return {"reference": comp["reference"], **c}
    agg.fail(f"no comparison of {e!r} with {comp.get('reference')!r} at noise level {level:g} and size {size}")


@figure("ablations")
def ablations(inputs, params):
    """Each variant of an ablation aggregate against its OWN reference (the experiment's ``compare``;
    e.g. the CNN's kernels against the CNN, the MLP with a shortcut against the MLP), at one noise level
    and size (default: the largest): one group per reference, its R^2 a diamond (and a dotted line
    down its group), each variant a horizontal bar from its reference's R^2 to its own, so the bar's
    length is the difference the ablation table prints, with the whisker of that difference's paired
    bootstrap interval over the test spectra and the bar coloured by the word it earns (gain, loss, no
    difference). Estimators in no comparison are dots. Right margin: R^2, and for a variant the
    difference with its interval and word -- the numbers of the table (pfslogg.paper.tables.track_a).
    params: labels ({estimator: text}), estimators, size, noise_level, confidence."""
    agg = Aggregate(inputs, params)
    level = noise_level(agg, params)
    size = int(params.get("size") or agg.sizes[-1])
    names = list(params.get("estimators") or agg.names)
    groups, rest = comparison_groups(names, agg.m.get("comparisons"))
    rows = []                         # (y label, estimator or None for a group title, role)
    for ref, members in groups:
        rows.append((f"against {variant_label(agg, ref, params)}", None, None))
        rows.append((variant_label(agg, ref, params) + " (reference)", ref, "reference"))
        rows += [(variant_label(agg, e, params), e, "variant") for e in members]
    if rest:
        rows.append(("no comparison", None, None))
        rows += [(variant_label(agg, e, params), e, "alone") for e in rest]
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.24 * len(rows)), layout="constrained")
    trans = ax.get_yaxis_transform()
    xs = []

    def r2_of(e):
        cell = agg.cell(e, level, size)
        if not cell:
            agg.fail(f"no cell of {e!r} at noise level {level:g} and size {size}")
        return num(cell["r2"])

    ref_y = {}
    for y, (_, e, role) in enumerate(rows):
        if role == "reference":
            ref_y[e] = y
            r2 = r2_of(e)
            ax.plot([r2], [y], marker="D", ms=5, color="0.1", ls="none", zorder=4)
            ax.text(1.02, y, f"{r2:.3f}", transform=trans, fontsize=7, va="center", fontweight="bold")
            xs.append(r2)
        elif role == "alone":
            r2 = r2_of(e)
            ax.plot([r2], [y], marker="o", ms=4, color="0.4", ls="none", zorder=4)
            ax.text(1.02, y, f"{r2:.3f}", transform=trans, fontsize=7, va="center")
            xs.append(r2)
        elif role == "variant":
            c = _comparison_at(agg, e, level, size)
            ref, diff, word = num(c["r2_reference"]), num(c["r2_diff"]), c.get("verdict")
            lo, hi = (num(v) for v in c["r2_diff_ci"])
            bar = ax.barh([y], [diff], left=ref, height=0.62, color=VERDICT_COLORS.get(word, "0.8"), alpha=0.85,
                          zorder=2)
            bar.patches[0].set_gid(e)
            ax.errorbar([ref + diff], [y], xerr=[[diff - lo], [hi - diff]], fmt="none", ecolor="0.15",
                        elinewidth=0.9, capsize=2, zorder=3)
            ax.text(1.02, y, f"{ref + diff:.3f}  ({diff:+.3f} [{lo:+.3f}, {hi:+.3f}], {word or 'no interval'})",
                    transform=trans, fontsize=7, va="center")
            xs += [ref, ref + lo, ref + hi, ref + diff]
    for ref, members in groups:   # the line each bar of the group starts from
        last = max(y for y, (_, e, role) in enumerate(rows) if e in members and role == "variant") \
            if members else ref_y[ref]
        ax.plot([r2_of(ref)] * 2, [ref_y[ref], last + 0.4], color="0.1", lw=0.9, ls=":", zorder=1)
    ax.text(1.02, -1, "$R^2$  ($\\Delta R^2$ to its reference [paired interval], verdict)", transform=trans,
            fontsize=7, va="center", color="0.3")
    ax.set_yticks(range(len(rows)), [lab for lab, _, _ in rows])
    for tick, (_, e, role) in zip(ax.get_yticklabels(), rows):
        if e is None:
            tick.set_fontweight("bold")
        elif role == "reference":
            tick.set_fontstyle("italic")
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(len(rows) - 0.4, -1.6)
    xs = np.array([x for x in xs if np.isfinite(x)])
    pad = 0.08 * max(np.ptp(xs) if len(xs) else 0.0, 0.01)
    if len(xs):
        ax.set_xlim(xs.min() - pad, xs.max() + pad)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(R2_LABEL)
    handles = [plt.Line2D([], [], marker="D", ms=5, color="0.1", ls=":", lw=0.9, label="reference")]
    handles += [Patch(color=col, alpha=0.85, label=w) for w, col in VERDICT_COLORS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=7)
    n_test = agg.m.get("n_test")
    ax.set_title(f"Ablations: noise level $k$ = {level:g}, N = {size:,}\n"
                 f"each bar from its own reference's $R^2$ (diamond) to the variant's; whisker: the\n"
                 f"{percent(agg.confidence)} paired bootstrap interval of the difference over "
                 f"{n_test if n_test is not None else 'the'} test spectra", fontsize=8)
    return fig
