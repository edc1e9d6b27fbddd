"""Figures of Track A's maps: where a network looks against where the Fisher information on log g
is (attention_maps), from a results file of kind "attention" (:func:`pfslogg.nn.maps.attention_maps`)."""

import matplotlib.pyplot as plt
import matplotlib.transforms
import numpy as np
from matplotlib.lines import Line2D

from ..errors import InputError
from .common import COLORS, TEXT_WIDTH_IN, figure, load_results

# map kind -> (legend label, colour, line width, z-order)
CURVES = {"rollout": ("attention rollout", COLORS[0], 1.0, 3),
          "cls": ("[CLS] attention, last layer", COLORS[0], 1.0, 3),
          "saliency": (r"gradient saliency $|\partial \log g/\partial f_\lambda|$", COLORS[1], 0.7, 2),
          "fisher": (r"Fisher information on $\log g$", "k", 0.8, 4)}
LINE_STYLE = {"color": "0.6", "lw": 0.5, "ls": "-", "zorder": 0}
BAND_STYLE = {"color": COLORS[2], "lw": 0.6, "ls": "--", "zorder": 0}
FLAT_STYLE = {"color": "0.35", "lw": 0.7, "ls": ":", "zorder": 1}
MERGE_A = 200.0  # lines of one species closer than this share one label (the Ca II triplet: one "Ca II")
FONT = 8.0       # pt: the smallest text; the figure is drawn at the text width, so this is its printed size
PANEL_IN = 1.3   # height of one panel (inches)


def _labels(rows, merge=MERGE_A):
    """[(x, text)] of ``rows`` ({name, wave}): one label per run of same-name lines within ``merge`` A."""
    out = []
    for r in sorted(rows, key=lambda r: r["wave"]):
        if out and out[-1][1] == r["name"] and r["wave"] - out[-1][2] <= merge:
            out[-1][0].append(r["wave"])
            out[-1][2] = r["wave"]
        else:
            out.append([[r["wave"]], r["name"], r["wave"]])
    return [(float(np.mean(ws)), name) for ws, name, _ in out]


def _rows(labels, units_per_char):
    """[(x, text, row)]: each label on the lowest row where it overlaps no other label (a label's width
    estimated as its characters times ``units_per_char``, in data units, plus one character of gap)."""
    ends, out = [], []
    for x, text in sorted(labels):
        half = 0.5 * (len(text) + 1) * units_per_char
        row = next((i for i, end in enumerate(ends) if x - half > end), len(ends))
        if row == len(ends):
            ends.append(x + half)
        ends[row] = x + half
        out.append((x, text, row))
    return out


def _group_title(name, m):
    giant, cool = name.split("_")[1] == "giants", name.split("_")[0] == "cool"
    lt, ge = "<", r"\geq"
    logg = rf"$\log g {lt if giant else ge} {m['logg_split']:g}$"
    teff = rf"$T_\mathrm{{eff}} {lt if cool else ge} {m['teff_split']:g}$ K"
    return f"{name.replace('_', ' ')} ({logg}, {teff}), n = {m['groups'][name]['n']}"


def _scores(kinds, g):
    """'rank correlation with Fisher: ... ; top-10 % share: ...' of one group's metrics."""
    short = {"rollout": "rollout", "cls": "[CLS]", "saliency": "saliency"}
    rho = ", ".join(f"{short[k]} {g['correlations'][k]:+.2f}" for k in kinds if g["correlations"][k] is not None)
    top = ", ".join(f"{100 * g['top10_share'][k]:.0f} %" for k in kinds if g["top10_share"][k] is not None)
    return rf"rank correlation with Fisher: {rho or 'n/a'}" + (f"; top-10 % share: {top}" if top else "")


@figure("attention_maps")
def attention_maps(inputs, params):
    """One panel per stellar type (cool/warm giants/dwarfs): the network's attention rollout (or
    [CLS] attention; params "attention": "rollout" or "cls") and gradient saliency against the
    Fisher information on log g, each as density per pixel relative to a flat map (1 = flat, log y),
    with the gravity-sensitive lines and TiO band heads marked. inputs: one file of kind "attention"."""
    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: attention_maps reads one file of kind 'attention'")
    doc = load_results(inputs[0], "attention")
    m, d = doc["metrics"], doc["details"]
    att = params.get("attention", "rollout")
    if att not in ("rollout", "cls"):
        raise InputError(f"attention_maps: params.attention {att!r}, expected 'rollout' or 'cls'")
    kinds = [k for k in (att, "saliency") if k in d["kinds"]]
    wave = np.asarray(d["wave"], float)
    groups = list(m["groups"])

    # drawn at the paper's text width (included at \linewidth): FONT is then the printed size
    fig, axes = plt.subplots(len(groups), 1, figsize=(0.97 * TEXT_WIDTH_IN, PANEL_IN * len(groups) + 1.5), sharex=True,
                             sharey=True, layout="constrained")
    axes = np.atleast_1d(axes)
    positive = [v for name in groups for k in kinds + ["fisher"] for v in (d["maps"][name].get(k) or []) if v > 0]
    lo = max(min(positive, default=1e-2), 1e-3) if positive else 1e-2
    hi = max(positive, default=10.0)
    for ax, name in zip(axes, groups):
        ax.set_yscale("log")
        ax.axhline(1.0, **FLAT_STYLE)
        for r in d["lines"]:
            ax.axvline(r["wave"], **LINE_STYLE)
        for r in d["bands"]:
            ax.axvline(r["wave"], **BAND_STYLE)
        maps = d["maps"][name]
        for k in kinds + ["fisher"]:
            if maps.get(k) is not None:
                label, col, lw, z = CURVES[k]
                y = np.asarray(maps[k], float)
                ax.plot(wave, np.where(y > 0, y, np.nan), color=col, lw=lw, zorder=z)
        g = m["groups"][name]
        ax.set_title(_group_title(name, m), loc="left", fontsize=FONT + 0.5, pad=3)
        if g["n"]:
            ax.text(0.995, 0.95, _scores(kinds, g), transform=ax.transAxes, ha="right", va="top", fontsize=FONT,
                    color="0.15", zorder=5, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.8})
        else:
            ax.text(0.5, 0.5, "no spectra in this group", transform=ax.transAxes, ha="center", va="center",
                    color="0.4", fontsize=FONT)
        ax.grid(alpha=0.25, which="major", axis="y")
        ax.tick_params(labelsize=FONT)
    axes[0].set_ylim(lo / 1.5, hi * 60)   # the top decade or so holds the scores
    axes[0].set_xlim(wave[0], wave[-1])

    # the lines' names above the top panel, one label per species and run, stacked where they would overlap
    top = axes[0]
    per_char = 0.55 * FONT / 72 * (wave[-1] - wave[0]) / (0.88 * TEXT_WIDTH_IN)   # A per character
    trans = matplotlib.transforms.blended_transform_factory(top.transData, top.transAxes)
    placed = _rows(_labels(d["lines"]), per_char)
    step = 1.6 * FONT / 72 / PANEL_IN          # one text line, in axes units
    for x, text, row in placed:
        top.text(x, 1.02 + row * step, text, transform=trans, ha="center", va="bottom", fontsize=FONT,
                 color="0.2", clip_on=False)
    n_rows = 1 + max((row for _, _, row in placed), default=0)
    top.set_title(top.get_title("left"), loc="left", fontsize=FONT + 0.5, pad=4 + 1.6 * FONT * n_rows)
    axes[-1].set_xlabel(r"wavelength (Å)", fontsize=FONT + 1)
    fig.supylabel("map density per pixel / flat map", fontsize=FONT + 1)

    handles = [Line2D([], [], color=CURVES[k][1], lw=1.4, label=CURVES[k][0]) for k in kinds + ["fisher"]]
    handles += [Line2D([], [], **{**FLAT_STYLE, "lw": 1.0}, label="flat map"),
                Line2D([], [], **{**LINE_STYLE, "lw": 1.0}, label="gravity-sensitive lines"),
                Line2D([], [], **{**BAND_STYLE, "lw": 1.0}, label="TiO band heads")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=FONT)
    return fig
