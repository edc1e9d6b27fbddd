"""Figures of Track B (mixtures of experts), from the one summary of kind "moe" (pfslogg.mixtures):

* ``moe_routing`` -- every mixture's R^2 against its global model, its oracle routing, the bar (the best
  global model) and the Bayes ceiling, per noise level;
* ``moe_rho`` -- oracle-gain retention of every gate, soft and hard, of the shown mixture;
* ``moe_bins`` -- R^2 per expert bin: global model, oracle, mixture, Bayes ceiling on the bin's rows;
* ``moe_coverage`` -- spectra per bin (training with the overlap margin, in the bin, test) and the gates'
  estimates outside every bin;
* ``moe_gate`` -- confusion of the gate's most probable bin with the true one, importance of the windows.
"""

import matplotlib.pyplot as plt
import numpy as np

from ..binning import short
from ..errors import InputError
from .common import COLORS, R2_LABEL, confidence, figure, load_results, percent

AXIS_LABELS = {"M_H": "[M/H] (dex)", "T_eff": r"$T_\mathrm{eff}$ (K)"}
RHO_RANGE = (-1.5, 2.0)   # rho drawn within; beyond, at the edge with its value

ROUTING_NAMES = {"gate": "classifier, spectrum", "windows": "classifier, windows", "regression": "regression, spectrum",
                 "regression_windows": "regression, windows", "template": "chi2 template", "mixture": "mixture-MSE"}


class Summary:
    """The single input of a Track B figure."""

    def __init__(self, inputs, params):
        if len(inputs) != 1:
            raise InputError(f"{', '.join(inputs) or '(none)'}: the figure reads one summary of kind 'moe'")
        self.path = inputs[0]
        doc = load_results(self.path, "moe")
        self.m, self.details = doc["metrics"], doc["details"]
        self.level = confidence(params, [(self.path, self.m)])
        self.levels = [f"nl{_tag(v)}" for v in self.m["noise_levels"]]

    def largest(self, cells):
        """The entry at the largest training size of ``{"n<size>": entry}``."""
        return cells[max(cells, key=lambda k: int(k[1:]))]

    def shown(self):
        """[(noise key, metrics, details)] of the shown mixture per noise level; InputError when none."""
        out = [(lv, self.m["shown"][lv], self.details.get(lv, {})) for lv in self.levels if lv in self.m["shown"]]
        if not out:
            raise InputError(f"{self.path}: no results of the shown mixture (config moe.figure_variant)")
        return out


def _tag(v):
    return np.format_float_positional(float(v), trim="-").replace(".", "p")


def _noise_title(level_key):
    return f"noise level {level_key[2:].replace('p', '.')}"


def _err(entry):
    lo, hi = entry["r2_ci"]
    return [[entry["r2"] - lo], [hi - entry["r2"]]] if lo is not None else None


def _legend(fig, axes, ncol):
    """One legend below the panels, each label once (a panel may lack some entries)."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False, fontsize=7)


@figure("moe_routing")
def moe_routing(inputs, params):
    s = Summary(inputs, params)
    names = list(s.m["variants"])
    if not names:
        raise InputError(f"{s.path}: no mixture was compared with its global model")
    fig, axes = plt.subplots(1, len(s.levels), figsize=(3.4 * len(s.levels), 0.42 * len(names) + 1.6),
                             sharey=True, layout="constrained", squeeze=False)
    for ax, lv in zip(axes[0], s.levels):
        y = np.arange(len(names))[::-1]
        for yi, v in zip(y, names):
            cells = s.m["variants"][v]["cells"].get(lv)
            if not cells:
                continue
            c = s.largest(cells)
            ax.errorbar(c["global"]["r2"], yi + 0.18, xerr=_err(c["global"]), fmt="s", color="0.45", ms=4, capsize=2,
                        label="global model" if yi == y[0] else None)
            ax.errorbar(c["main"]["r2"], yi, xerr=_err(c["main"]), fmt="o", color=COLORS[0], ms=4.5, capsize=2,
                        label="mixture (own gate)" if yi == y[0] else None)
            if "oracle" in c:
                ax.errorbar(c["oracle"]["r2"], yi - 0.18, xerr=_err(c["oracle"]), fmt="*", color="k", ms=6,
                            capsize=2, label="oracle routing (not deployable)" if yi == y[0] else None)
            best = max(c["routings"].items(), key=lambda kv: kv[1]["r2"], default=None)
            if best:
                ax.plot(best[1]["r2"], yi, "D", mfc="none", color=COLORS[1], ms=5,
                        label="best deployable routing" if yi == y[0] else None)
        bar = s.m["bar"].get(lv)
        if bar:
            b = s.largest(bar)
            ax.axvspan(*b["r2_ci"], color=COLORS[2], alpha=0.15, lw=0)
            ax.axvline(b["r2"], color=COLORS[2], ls="--", lw=1, label=f"bar: best global ({b['label']})")
        bayes = s.m.get("bayes", {}).get(lv)
        if bayes:
            ax.axvline(bayes["r2"], color="k", lw=1, label="Bayes ceiling")
            lo, hi = ax.get_xlim()
            ax.set_xlim(lo, max(hi, bayes["r2"] + 0.05 * (hi - lo)))   # the ceiling stays in view
        ax.set_title(_noise_title(lv))
        ax.set_xlabel(R2_LABEL)
        ax.grid(alpha=0.3, axis="x")
        ax.set_yticks(np.arange(len(names))[::-1])
        ax.set_yticklabels([s.m["variants"][v]["label"] for v in names], fontsize=7)
    _legend(fig, axes, 3)
    fig.suptitle(f"Mixtures of experts against one global model ({percent(s.level)} paired bootstrap intervals, "
                 "means over seeds)", fontsize=8.5)
    return fig


@figure("moe_rho")
def moe_rho(inputs, params):
    s = Summary(inputs, params)
    entry = s.m["variants"].get(s.m.get("shown_variant"))
    if entry is None:
        raise InputError(f"{s.path}: the shown mixture (config moe.figure_variant) has no results")
    fig, axes = plt.subplots(1, len(s.levels), figsize=(3.4 * len(s.levels), 3.2), sharey=True, layout="constrained",
                             squeeze=False)
    for ax, lv in zip(axes[0], s.levels):
        cells = entry["cells"].get(lv)
        if not cells:
            continue
        c = s.largest(cells)
        gates = sorted({r.partition("_")[2] for r in c["routings"]}, key=lambda g: list(ROUTING_NAMES).index(g)
                       if g in ROUTING_NAMES else 99)
        for j, routing in enumerate(("soft", "hard")):
            for i, g in enumerate(gates):
                r = c["routings"].get(f"{routing}_{g}")
                if not r or r.get("rho") is None:
                    continue
                y = len(gates) - 1 - i + (0.15 if routing == "soft" else -0.15)
                rho, (lo, hi) = r["rho"], r["rho_ci"]
                shown = float(np.clip(rho, *RHO_RANGE))
                lo = shown if lo is None else float(np.clip(lo, *RHO_RANGE))
                hi = shown if hi is None else float(np.clip(hi, *RHO_RANGE))
                ax.errorbar(shown, y, xerr=[[shown - lo], [hi - shown]], fmt="o" if routing == "soft" else "s",
                            color=COLORS[j], ms=4, capsize=2, mfc=COLORS[j] if r.get("rho_defined") else "none",
                            label=routing if i == 0 else None)
                if shown != rho:   # beyond the drawn range: its value beside the edge
                    ax.annotate(f"{rho:.1f}", (shown, y), xytext=(4 if rho < shown else -4, 0),
                                textcoords="offset points", ha="left" if rho < shown else "right", va="center",
                                fontsize=6, color=COLORS[j])
        orig = s.m.get("original", {})
        for key, routing, col in (("rho_soft", "soft", COLORS[0]), ("rho_hard", "hard", COLORS[1])):
            if key in orig:
                ax.axvline(orig[key], color=col, ls=":", lw=1, label=f"original study, {routing} (its data)")
        ax.axvline(0, color="0.5", lw=0.8)
        ax.axvline(1, color="0.5", lw=0.8)
        ax.set_xlim(RHO_RANGE[0] - 0.1, RHO_RANGE[1] + 0.1)
        ax.set_yticks(range(len(gates))[::-1])
        ax.set_yticklabels([ROUTING_NAMES.get(g, g) for g in gates], fontsize=7)
        gain = c.get("oracle", {})
        ax.set_title(f"{_noise_title(lv)}: oracle gain {gain.get('diff', float('nan')):+.3f}", fontsize=8)
        ax.set_xlabel(r"$\rho = (R^2_\mathrm{gate}-R^2_\mathrm{global}) / (R^2_\mathrm{oracle}-R^2_\mathrm{global})$")
        ax.grid(alpha=0.3, axis="x")
    _legend(fig, axes, 4)
    fig.suptitle(f"{entry['label']}: oracle-gain retention ({percent(s.level)} intervals; open markers: "
                 "the oracle's gain is not above zero)", fontsize=8)
    return fig


@figure("moe_bins")
def moe_bins(inputs, params):
    s = Summary(inputs, params)
    shown = s.shown()
    fig, axes = plt.subplots(len(shown), 1, figsize=(6.4, 2.9 * len(shown) + 0.6), layout="constrained",
                             squeeze=False)
    series = (("global", "global model", "0.45", "s"), ("mixture", "mixture (own gate)", COLORS[0], "o"),
              ("oracle", "oracle routing", "k", "*"), ("bayes", "Bayes ceiling", COLORS[1], "_"))
    for ax, (lv, m, _) in zip(axes[:, 0], shown):
        rows = m["bins"]
        x = np.arange(len(rows))
        for j, (key, label, col, mk) in enumerate(series):
            pts = [(i, r[key]) for i, r in enumerate(rows) if key in r]
            if not pts:
                continue
            xi = np.array([i for i, _ in pts]) + (j - 1.5) * 0.17
            ax.errorbar(xi, [e["r2"] for _, e in pts], yerr=np.array([[e["r2"] - e["r2_ci"][0], e["r2_ci"][1] - e["r2"]]
                                                                      for _, e in pts]).T,
                        fmt=mk, color=col, ms=5 if mk != "_" else 10, capsize=1.5, lw=1, label=label)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{r['label']} (N={r['n_test']})" for r in rows], fontsize=5.5, rotation=25,
                           ha="right", rotation_mode="anchor")
        ax.set_ylabel(r"$R^2$ in the bin")
        ax.set_title(f"{_noise_title(lv)}, {m['size']} training spectra, {m['n_seeds']} seeds", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    _legend(fig, axes, 4)
    fig.suptitle(f"R$^2$ per expert bin (true parameters; {percent(s.level)} intervals)", fontsize=8.5)
    return fig


def ranges(edges):
    """Tick labels of bins: "3750..4500"."""
    return [f"{short(a)}..{short(b)}" for a, b in zip(edges, edges[1:])]


@figure("moe_coverage")
def moe_coverage(inputs, params):
    s = Summary(inputs, params)
    lv, m, d = s.shown()[-1]
    edges = d.get("edges") or {}
    axes_names = list(edges)
    shape = [len(edges[a]) - 1 for a in axes_names]
    if len(shape) == 1:
        shape = [1] + shape
    rows = {r["bin"] - 1: r for r in m["bins"]}
    n_bins = int(np.prod(shape))
    grid = np.array([rows[k]["n_train"] if k in rows else np.nan for k in range(n_bins)]).reshape(shape)
    fig, ax = plt.subplots(figsize=(4.6, 3.6), layout="constrained")
    im = ax.imshow(grid, cmap="Blues", origin="lower", aspect="auto")
    for k in range(n_bins):
        i, j = np.unravel_index(k, shape)
        r = rows.get(k)
        text = "no test rows" if r is None else (f"{r['n_train']:.0f} train\n({r['n_train_in_bin']:.0f} in bin)\n"
                                                 f"{r['n_test']} test")
        dark = r is not None and im.norm(r["n_train"]) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="w" if dark else "k")
    ax.set_xticks(range(shape[1]))
    ax.set_yticks(range(shape[0]))
    if len(axes_names) == 2:
        ax.set_yticklabels(ranges(edges[axes_names[0]]), fontsize=7)
        ax.set_xticklabels(ranges(edges[axes_names[1]]), fontsize=7)
        ax.set_ylabel(AXIS_LABELS.get(axes_names[0], axes_names[0]))
        ax.set_xlabel(AXIS_LABELS.get(axes_names[1], axes_names[1]))
    else:
        ax.set_xticklabels(ranges(edges[axes_names[0]]), fontsize=7)
        ax.set_yticklabels([""])
        ax.set_xlabel(AXIS_LABELS.get(axes_names[0], axes_names[0]))
    fig.colorbar(im, ax=ax, label="training spectra per expert (with margin)")
    outside = [f"{ROUTING_NAMES.get(g, g)}: {v['test_outside']:.0f}" for g, v in m["gates"].items()
               if v.get("test_outside") is not None]
    ax.set_title("Spectra per expert bin" + (f"\ntest estimates outside every bin (mean over seeds) -- "
                                             + "; ".join(outside) if outside else ""), fontsize=7)
    return fig


@figure("moe_gate")
def moe_gate(inputs, params):
    s = Summary(inputs, params)
    lv, m, d = s.shown()[-1]
    conf = np.asarray(d["confusion"]["gate"], float)
    imp = d.get("importance", {})
    name = "windows" if "windows" in imp else next(iter(imp), None)
    fig, axes = plt.subplots(1, 2 if name else 1, figsize=(8.2 if name else 4.8, 3.6), layout="constrained",
                             squeeze=False, gridspec_kw={"width_ratios": [1.6, 1]} if name else None)
    ax = axes[0, 0]
    frac = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    im = ax.imshow(frac, cmap="Greens", vmin=0, vmax=1, origin="upper")
    for (i, j), v in np.ndenumerate(frac):
        if v >= 0.01:
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5, color="w" if v > 0.6 else "k")
    labels = d.get("labels") or [str(k + 1) for k in range(len(frac))]
    ax.set_xticks(range(len(frac)))
    ax.set_yticks(range(len(frac)))
    ax.set_xticklabels([str(k + 1) for k in range(len(frac))], fontsize=7)
    ax.set_yticklabels([f"{lab}  {k + 1}" for k, lab in enumerate(labels)], fontsize=5.5)
    ax.set_xlabel("gate's most probable bin")
    ax.set_ylabel("true bin")
    acc = m["gates"]["gate"]["test_accuracy"]
    ax.set_title(f"own gate ({ROUTING_NAMES['gate']}), {_noise_title(lv)}: accuracy {acc:.2f}", fontsize=7.5)
    fig.colorbar(im, ax=ax, shrink=0.7, pad=0.02, label="share of the true bin's test spectra")
    if name:
        ax = axes[0, 1]
        feats, vals = imp[name]["features"] or [], np.asarray(imp[name]["importance"])
        order = np.argsort(vals)
        ax.barh(np.arange(len(vals)), vals[order], color=COLORS[2])
        ax.set_yticks(np.arange(len(vals)))
        ax.set_yticklabels([feats[i] if i < len(feats) else str(i) for i in order], fontsize=6.5)
        ax.set_xlabel("largest |coefficient| over bins (standardised features)")
        ax.set_title(f"{ROUTING_NAMES.get(name, name)} gate: feature importance", fontsize=7.5)
        ax.grid(alpha=0.3, axis="x")
    return fig
