"""Figures of what the estimators' fits chose (Track F): the Ridge penalty (ridge_alpha), the
LightGBM learning-rate x leaves search (lightgbm_sensitivity) and the number of PCA components
(pca_components). Each reads ``details.fitted`` of one experiment aggregate."""

import matplotlib.pyplot as plt
import numpy as np

from .common import MARKERS, VAL_R2_LABEL, figure, log_ticks
from ..errors import InputError
from .experiment import Aggregate, dodge, noise_xaxis

LINESTYLES = ["-", "--", ":", "-."]


def noise_colors(levels):
    """One colour a noise level, light to dark in a colour-blind-safe sequential map (viridis)."""
    cmap = plt.get_cmap("viridis")
    return {v: cmap(0.85 * (1 - i / max(1, len(levels) - 1))) for i, v in enumerate(levels)}


def search_curves(ax, agg, names, curve):
    """One validation curve a noise level (colour) and estimator (line style) from the search at the
    largest size, first seed; ``curve(fitted) -> (x, val_r2, chosen x)``. A filled marker shows
    what fit chose. Returns whether anything was drawn."""
    colors = noise_colors(agg.noise_levels)
    drawn = False
    for j, e in enumerate(names):
        for level, fitted in agg.searches(e):
            x, y, chosen = curve(fitted)
            x, y = np.asarray(x, float), np.asarray(y, float)
            label = f"$k$ = {level:g}" + (f", {agg.label(e)}" if len(names) > 1 else "")
            ax.plot(x, y, color=colors[level], ls=LINESTYLES[j % len(LINESTYLES)], lw=1.1, label=label)
            at = np.flatnonzero(np.isclose(x, chosen))
            ax.plot(x[at], y[at], "o", color=colors[level], ms=4.5, mec="black", mew=0.5)
            drawn = True
    return drawn


@figure("ridge_alpha")
def ridge_alpha(inputs, params):
    """Left: the penalty alpha Ridge chose against noise level (every size and seed). Right: the
    validation R^2 against alpha at each noise level (largest size, first seed). params: none."""
    agg = Aggregate(inputs, params)
    ridges = agg.of_class("ridge")
    if not ridges:
        agg.fail("no estimator of class 'ridge' in the aggregate")
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.0, 3.1), layout="constrained")
    sizes, nseed = agg.sizes, len(agg.seeds)
    for e in ridges:
        for j, n in enumerate(sizes):
            for level in agg.noise_levels:
                alphas = [f["alpha"] for f in agg.fitted(e, level, n) if f.get("alpha") is not None]
                for s, a in enumerate(alphas):
                    left.plot([level], [a], MARKERS[j % len(MARKERS)], color=agg.color(e), ms=3.5, alpha=0.7,
                              mew=0, transform=dodge(left, j * nseed + s, len(sizes) * nseed, level, a, 1.6))
    left.set_yscale("log")
    noise_xaxis(left, agg.noise_levels)
    left.set_ylabel(r"chosen Ridge penalty $\alpha$")
    left.set_title(f"chosen on validation ({len(sizes)} sizes × {nseed} seeds)", fontsize=8.5)
    left.grid(alpha=0.3)
    handles = [plt.Line2D([], [], ls="", marker=MARKERS[j % len(MARKERS)], color="0.3", ms=4,
                          label=f"n = {n:,}") for j, n in enumerate(sizes)]
    handles += [plt.Line2D([], [], ls="", marker="s", color=agg.color(e), label=agg.label(e))
                for e in ridges] if len(ridges) > 1 else []
    left.legend(handles=handles, loc="best", frameon=False, fontsize=7)
    if not search_curves(right, agg, ridges, lambda f: (f["search"]["alpha"], f["search"]["val_r2"], f["alpha"])):
        agg.fail(f"no Ridge alpha search at size {agg.sizes[-1]}")
    right.set_xscale("log")
    right.set_xlabel(r"Ridge penalty $\alpha$")
    right.set_ylabel(VAL_R2_LABEL)
    right.set_title(f"validation search ({agg.seed_text()}; ● chosen)", fontsize=8.5)
    right.grid(alpha=0.3)
    right.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.suptitle(f"Ridge regularisation against noise", fontsize=9)
    return fig


def _lightgbm_search(agg):
    """The first LightGBM-class estimator whose search spans more than one setting, and its
    searches (noise level, fitted) at the largest size, first seed."""
    for e in agg.of_class("lightgbm"):
        found = [(level, f) for level, f in agg.searches(e)
                 if len(f["search"]["learning_rate"]) * len(f["search"]["num_leaves"]) > 1]
        if found:
            return e, found
    raise InputError(f"no LightGBM learning-rate x leaves search in {agg.path}")


@figure("lightgbm_sensitivity")
def lightgbm_sensitivity(inputs, params):
    """Heat maps of the validation R^2 over learning rate x number of leaves, one panel per noise
    level (at most 3: the lowest, middle and highest), largest size, first seed. params: none."""
    agg = Aggregate(inputs, params)
    e, found = _lightgbm_search(agg)
    if len(found) > 3:
        found = [found[0], found[len(found) // 2], found[-1]]
    fig, axes = plt.subplots(1, len(found), figsize=(min(7.0, 0.8 + 2.3 * len(found)), 2.9),
                             layout="constrained", squeeze=False)
    for ax, (level, f) in zip(axes[0], found):
        s = f["search"]
        z = np.array(s["val_r2"], float).reshape(len(s["learning_rate"]), len(s["num_leaves"]))
        ax.imshow(z, origin="lower", cmap="viridis", aspect="auto")
        lo, hi = np.nanmin(z), np.nanmax(z)
        for (r, c), v in np.ndenumerate(z):
            dark = np.isfinite(v) and (v - lo) < 0.55 * (hi - lo)
            ax.text(c, r, "–" if not np.isfinite(v) else f"{v:.3f}", ha="center", va="center", fontsize=6.5,
                    color="white" if dark else "black")
        r, c = np.unravel_index(np.nanargmax(z), z.shape)
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="#D55E00", lw=1.8))
        ax.set_xticks(range(z.shape[1]), [f"{v:g}" for v in s["num_leaves"]])
        ax.set_yticks(range(z.shape[0]), [f"{v:g}" for v in s["learning_rate"]])
        ax.set_xlabel("leaves per tree")
        ax.set_title(f"noise level $k$ = {level:g}", fontsize=8.5)
        ax.tick_params(length=0)
    axes[0, 0].set_ylabel("learning rate (shrinkage per tree)")
    fig.suptitle(f"{agg.label(e)}: {VAL_R2_LABEL} over the search ({agg.seed_text()})\n"
                 "colour scaled per panel, best setting boxed", fontsize=8.5)
    return fig


@figure("pca_components")
def pca_components(inputs, params):
    """Validation R^2 (best over alpha) against the number of PCA components, one line per noise
    level, from the PCA+Ridge search at the largest size, first seed. params: none."""
    agg = Aggregate(inputs, params)
    names = agg.of_class("pca_ridge")
    if not names:
        agg.fail("no estimator of class 'pca_ridge' in the aggregate")
    fig, ax = plt.subplots(figsize=(4.6, 3.3), layout="constrained")

    def best_over_alpha(f):
        s = f["search"]
        z = np.array(s["val_r2"], float).reshape(len(s["n_components"]), -1)
        return s["n_components"], np.nanmax(z, axis=1), f["n_components"]

    if not search_curves(ax, agg, names, best_over_alpha):
        agg.fail(f"no PCA components search at size {agg.sizes[-1]}")
    ax.set_xscale("log")
    comps = sorted({k for e in names for _, f in agg.searches(e) for k in f["search"]["n_components"]})
    log_ticks(ax.xaxis, comps if len(comps) <= 8 else comps[::-(-len(comps) // 8)])
    ax.set_xlabel("PCA components kept (number)")
    ax.set_ylabel(VAL_R2_LABEL + r" (best over $\alpha$)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    ax.set_title(f"{' / '.join(agg.label(e) for e in names)}: PCA components\n"
                 f"validation search at {agg.seed_text()}; ● chosen", fontsize=8.5)
    return fig
