"""Figures of one experiment grid (Track F): an aggregate of kind "experiment" (noise level x
training-set size x seed cells per estimator). R^2 against size (r2_vs_size) and against noise
(r2_vs_noise), and which estimator wins where (decision)."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch, Rectangle
from matplotlib.transforms import offset_copy

from ..errors import InputError
from ..experiments import noise_tag
from .common import COLORS, MARKERS, NOISE_LABEL, R2_LABEL, SIZE_LABEL, confidence, figure, load_results, \
    log_ticks, percent


def noise_key(level):
    """The key of a noise level in an aggregate: 0 -> 'nl0', 0.5 -> 'nl0p5'."""
    return "nl" + noise_tag(level)


def num(x):
    """A number of a results JSON as float; null (how NaN is written) -> NaN."""
    return np.nan if x is None else float(x)


def size_text(n):
    """2000 -> '2k', 500 -> '500'."""
    return f"{n / 1000:g}k" if n >= 1000 else f"{n:g}"


class Aggregate:
    """One experiment aggregate, read from the single input of a Track F figure."""

    def __init__(self, inputs, params):
        if len(inputs) != 1:
            raise InputError(f"{', '.join(inputs) or '(none)'}: the figure reads one aggregate of kind 'experiment'")
        self.path = inputs[0]
        doc = load_results(self.path, "experiment")
        self.m, self.details = doc["metrics"], doc["details"]
        self.names = list(self.m["estimators"])
        self.noise_levels = sorted(float(x) for x in self.m["noise_levels"])
        self.sizes = sorted(int(n) for n in self.m["sizes"])
        self.seeds = list(self.m.get("seeds", [0]))
        self.confidence = confidence(params, [(self.path, self.m)])
        self.title = self.m.get("experiment", "experiment")

    def fail(self, what):
        raise InputError(f"{self.path}: {what}")

    def label(self, e):
        return self.m["estimators"][e].get("label", e)

    def color(self, e):
        return COLORS[self.names.index(e) % len(COLORS)]

    def marker(self, e):
        return MARKERS[self.names.index(e) % len(MARKERS)]

    def of_class(self, cls):
        return [e for e in self.names if self.m["estimators"][e]["class"] == cls]

    def cell(self, e, level, n):
        """The cell (mean over seeds) of estimator e, or None where the grid has none."""
        return self.m["cells"].get(e, {}).get(noise_key(level), {}).get(f"n{n}")

    def fitted(self, e, level, n):
        """What fit chose, one dict a seed (an empty list where the grid has none)."""
        return self.details.get("fitted", {}).get(e, {}).get(noise_key(level), {}).get(f"n{n}") or []

    def searches(self, e):
        """(noise level, fitted of the first seed) at the largest size, where fit recorded a search."""
        firsts = [(level, self.fitted(e, level, self.sizes[-1])[:1]) for level in self.noise_levels]
        return [(level, f[0]) for level, f in firsts if f and f[0].get("search")]

    def r2(self, e, cells):
        """Mean R^2 and its interval over seeds (as error-bar lengths) of estimator e at ``cells``,
        (noise level, size) pairs; NaN where the grid has no such cell."""
        found = [self.cell(e, level, n) for level, n in cells]
        y = np.array([num(c["r2"]) if c else np.nan for c in found], float)
        ci = np.array([c["r2_ci_seeds"] if c else (np.nan, np.nan) for c in found], float).reshape(-1, 2)
        return y, np.abs(np.stack([y - ci[:, 0], ci[:, 1] - y]))

    def interval_text(self):
        if len(self.seeds) < 2:
            return "one seed, no interval"
        return f"bars: {percent(self.confidence)} interval over {len(self.seeds)} seeds"

    def seed_text(self):
        return f"n = {size_text(self.sizes[-1])}, seed {self.seeds[0]}"


def dodge(ax, i, k, x, y, step=3.0):
    """A data transform shifted sideways by step points for series i of k, so error bars of series
    at the same x stay apart on any axis scale. Matplotlib leaves what is drawn with it out of the
    data limits, so the points (x, y) (y: one or more rows) are added to them here."""
    xy = np.column_stack([np.broadcast_to(x, np.shape(y)).ravel(), np.ravel(y)]).astype(float)
    ax.update_datalim(xy[np.isfinite(xy).all(axis=1)])
    ax.autoscale_view()
    return offset_copy(ax.transData, fig=ax.figure, x=(i - (k - 1) / 2) * step, y=0, units="points")


def zero_line(ax):
    """A line at R^2 = 0 (no better than the prior mean) where the data reach below it."""
    if ax.dataLim.y0 < 0:
        ax.axhline(0, color="0.5", lw=0.6)


def noise_xaxis(ax, levels):
    """Noise levels on the x axis: logarithmic, or symmetric-log (linear between 0 and the smallest
    positive level) when noise level 0 is one of them; the axis label says which."""
    positive = [v for v in levels if v > 0]
    if not positive:
        words = "linear axis"
    elif min(levels) > 0:
        ax.set_xscale("log")
        ax.set_xlim(min(levels) / 1.3, max(levels) * 1.3)
        words = "log axis"
    else:
        ax.set_xscale("symlog", linthresh=min(positive), linscale=0.3)
        ax.set_xlim(-0.25 * min(positive), max(levels) * 1.4)
        words = f"symlog axis, linear below {min(positive):g}"
    log_ticks(ax.xaxis, levels)
    ax.set_xlabel(f"{NOISE_LABEL}\n({words})")


def estimator_legend(fig, agg, names):
    handles = [plt.Line2D([], [], color=agg.color(e), marker=agg.marker(e), ms=4, label=agg.label(e)) for e in names]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(names), 4), frameon=False)


def grid_shape(k):
    """Columns x rows of k small multiples: one row up to 3, two columns for 4, then rows of 3."""
    ncols = k if k <= 3 else (2 if k == 4 else 3)
    return ncols, -(-k // ncols)


@figure("r2_vs_size")
def r2_vs_size(inputs, params):
    """R^2 against training-set size per estimator, one panel per noise level (shared y).
    params: confidence (optional; must match the aggregate's)."""
    agg = Aggregate(inputs, params)
    levels, sizes = agg.noise_levels, agg.sizes
    ncols, nrows = grid_shape(len(levels))
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(7.0, 0.6 + 2.2 * ncols), 0.9 + 1.9 * nrows),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    for ax in axes.flat[len(levels):]:
        ax.set_visible(False)
    for ax, level in zip(axes.flat, levels):
        for i, e in enumerate(agg.names):
            y, err = agg.r2(e, [(level, n) for n in sizes])
            ax.errorbar(sizes, y, yerr=err, color=agg.color(e), marker=agg.marker(e), ms=3.5, capsize=2,
                        lw=1.1, transform=dodge(ax, i, len(agg.names), sizes, [y - err[0], y + err[1]]))
        ax.set_xscale("log")
        ax.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
        ax.set_title(f"noise level $k$ = {level:g}", fontsize=8.5)
        ax.grid(alpha=0.3)
        zero_line(ax)
    log_ticks(axes[0, 0].xaxis, sizes, "{:,}")
    for ax in axes[-1]:
        ax.set_xlabel(SIZE_LABEL)
    for r in range(nrows):  # a panel whose lower neighbour is hidden labels its own x axis
        for c in range(ncols):
            if r < nrows - 1 and (r + 1) * ncols + c >= len(levels):
                axes[r, c].xaxis.set_tick_params(labelbottom=True)
                axes[r, c].set_xlabel(SIZE_LABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel(r"$R^2$ on held-out spectra")
    fig.suptitle(f"log g $R^2$ against training-set size; {agg.interval_text()}", fontsize=9)
    estimator_legend(fig, agg, agg.names)
    return fig


@figure("r2_vs_noise")
def r2_vs_noise(inputs, params):
    """R^2 against noise level at the largest training-set size, per estimator. Noise level 0 is
    drawn on a symmetric-log axis (linear between 0 and the smallest positive level).
    params: confidence (optional; must match the aggregate's)."""
    agg = Aggregate(inputs, params)
    levels, n = agg.noise_levels, agg.sizes[-1]
    fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
    for i, e in enumerate(agg.names):
        y, err = agg.r2(e, [(level, n) for level in levels])
        ax.errorbar(levels, y, yerr=err, color=agg.color(e),
                    marker=agg.marker(e), ms=3.5, capsize=2, lw=1.1, label=agg.label(e),
                    transform=dodge(ax, i, len(agg.names), levels, [y - err[0], y + err[1]]))
    noise_xaxis(ax, levels)
    ax.set_ylabel(R2_LABEL)
    zero_line(ax)
    ax.grid(alpha=0.3)
    ax.set_title(f"log g $R^2$ against noise, training size {n:,}\n{agg.interval_text()}",
                 fontsize=8.5)
    ax.legend(loc="best", frameon=False)
    return fig


def _best_two(agg, level, n):
    """(best, runner-up) estimators by mean R^2 in a cell of the grid, as (name, cell) pairs."""
    ranked = sorted(((e, c) for e in agg.names if (c := agg.cell(e, level, n)) and np.isfinite(num(c["r2"]))),
                    key=lambda ec: -ec[1]["r2"])
    return (ranked + [None, None])[:2]


def _text_color(rgb):
    return "white" if 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 0.45 else "black"


@figure("decision")
def decision(inputs, params):
    """Noise level x training-set size map naming the best estimator (highest mean R^2) of each
    cell and its R^2; a cell is a tie (lighter, hatched, runner-up named) when the runner-up's
    interval over seeds overlaps the best's. params: confidence (optional)."""
    agg = Aggregate(inputs, params)
    levels, sizes = agg.noise_levels, agg.sizes
    fig, ax = plt.subplots(figsize=(min(7.0, 1.4 + 1.1 * len(sizes)), max(2.8, 1.4 + 0.5 * len(levels))),
                           layout="constrained")
    used = []
    for r, level in enumerate(levels):
        for c, n in enumerate(sizes):
            best, second = _best_two(agg, level, n)
            if best is None:
                ax.text(c, r, "–", ha="center", va="center", color="0.4")
                continue
            e, cell = best
            if e not in used:
                used.append(e)
            tie = second is not None and num(second[1]["r2_ci_seeds"][1]) >= num(cell["r2_ci_seeds"][0])
            rgb = np.array(to_rgb(agg.color(e)))
            face = 0.4 * rgb + 0.6 if tie else rgb
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=face, lw=0, hatch="//" if tie else None,
                                   edgecolor=0.7 * rgb + 0.3 if tie else "none"))
            text = f"{agg.label(e)}\n{cell['r2']:.3f}" + (f"\n≈ {agg.label(second[0])}" if tie else "")
            ax.text(c, r, text, ha="center", va="center", fontsize=7, linespacing=1.15,
                    color=_text_color(face), fontweight="normal" if tie else "bold")
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(-0.5, len(levels) - 0.5)
    ax.set_xticks(range(len(sizes)), [f"{n:,}" for n in sizes])
    ax.set_yticks(range(len(levels)), [f"{v:g}" for v in levels])
    for k in range(1, len(sizes)):
        ax.axvline(k - 0.5, color="white", lw=1.5)
    for k in range(1, len(levels)):
        ax.axhline(k - 0.5, color="white", lw=1.5)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_xlabel(SIZE_LABEL)
    ax.set_ylabel(NOISE_LABEL.replace(" (", "\n("))
    ax.set_title(f"Best log g estimator by noise and training size\ncell: highest mean $R^2$ "
                 f"over {len(agg.seeds)} seed{'s' if len(agg.seeds) > 1 else ''}", fontsize=8.5)
    handles = [Patch(facecolor=agg.color(e), label=agg.label(e)) for e in agg.names if e in used]
    handles.append(Patch(facecolor="0.85", edgecolor="0.45", hatch="//", lw=0,
                         label=f"tie (≈ runner-up): {percent(agg.confidence)} intervals overlap"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    return fig
