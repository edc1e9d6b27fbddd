"""Figures of Track C, the Bayes ceiling and the Cramer-Rao bound: where the bound holds and can be
reached (crlb_cell_position, crlb_step_size), the ceiling and the bound over the magnitude sweep (ceilings_vs_snr), the
spread of the per-spectrum bound on the test set (crlb_distribution) and how far the estimators are
from the Bayes ceiling and the Cramer-Rao bound (efficiency).

A CRLB "median" is the median of per-spectrum bounds, never a bound on a mean; the mean-CRLB R^2
(1 - mean CRLB / Var_prior) is the aggregate a model's R^2 is compared with."""

import math
import textwrap

import matplotlib.colors
import matplotlib.patches
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from ..errors import InputError
from .common import COLORS, MODEL_COLORS, R2_LABEL, SNR_LABEL, confidence, figure, load_results, log_ticks, percent

METHODS = {"cubic": ("cubic Hermite (this work)", COLORS[0], "-"),
           "linear": ("multilinear (original study)", COLORS[1], "--")}
POSITIONS = {"centre": ("o", "cell centre"), "near node": ("s", "at / next to a node")}
SIGMA_LABEL = r"$\sigma_\mathrm{min} = \sqrt{\mathrm{CRLB}}$ of $\log g$ (dex)"
NODE_STYLE = {"color": "0.55", "ls": ":", "lw": 0.8}
SNR_TICKS = (2, 3, 5, 7, 10, 15, 20, 30, 50, 100, 200)


def _one(name, inputs, kind):
    """The one results document of ``kind`` that figure ``name`` reads."""
    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: {name} reads one file of kind {kind!r}")
    return load_results(inputs[0], kind)


def _nodes(ax, nodes, label=None):
    for i, v in enumerate(nodes):
        ax.axvline(v, **NODE_STYLE, label=label if i == 0 else None)


def _chi2_level(row):
    """The confidence level of an ML row's chi^2 interval of var/CRLB (recovered from the interval)."""
    from scipy import stats

    k = row["n_draws"] - 1
    tail = stats.chi2.sf(k * row["ratio"] / row["ratio_ci"][0], k)
    return round(1 - 2 * tail, 3)


@figure("crlb_cell_position")
def crlb_cell_position(inputs, params):
    """Left: sigma_min along log g through a few grid cells at one star, cubic and multilinear.
    Right: var(ML) / CRLB of maximum-likelihood fits at cell centres and next to nodes.
    inputs: one results file of kind "crlb_validation"."""
    doc = _one("crlb_cell_position", inputs, "crlb_validation")
    m, prof = doc["metrics"], doc["details"]["profile"]
    nodes = m["profile"]["nodes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.0, 3.0), layout="constrained")
    for method, (label, col, ls) in METHODS.items():
        left.plot(prof["log_g"], prof[method], color=col, ls=ls, label=label)
    _nodes(left, nodes, "grid nodes of log g")
    star = m["profile"]["star"]
    left.set_title(rf"$T_\mathrm{{eff}}$ = {star['T_eff']:g} K, [M/H] = {star['M_H']:+g}, "
                   f"SNR = {m['profile']['snr']:g}")
    left.set_xlabel(r"$\log g$ (dex)")
    left.set_ylabel(SIGMA_LABEL)
    left.legend(loc="lower right", frameon=False)
    left.grid(alpha=0.3)

    rows = m["ml"]["rows"]
    width = float(np.ptp(prof["log_g"])) or 1.0
    levels = {_chi2_level(r) for r in rows}
    right.axhspan(0.8, 1.2, color="0.9", lw=0, label="±20 %")
    right.axhline(1, color="k", lw=0.8)
    _nodes(right, nodes)
    for r in rows:
        _, col, _ = METHODS[r["method"]]
        x = r["log_g"] + (-0.005 if r["method"] == "cubic" else 0.005) * width
        lo, hi = r["ratio_ci"]
        right.errorbar(x, r["ratio"], yerr=[[r["ratio"] - lo], [hi - r["ratio"]]], color=col,
                       fmt=POSITIONS[r["position"]][0], ms=3.5, capsize=1.5, lw=0.9)
    handles = [matplotlib.patches.Patch(color="0.9", label="±20 %")]
    handles += [Line2D([], [], color=col, marker="o", ls="none", ms=4, label=label.split(" (")[0])
                for label, col, _ in METHODS.values()]
    handles += [Line2D([], [], color="0.3", marker=mk, ls="none", ms=4, mfc="none", label=lab)
                for mk, lab in POSITIONS.values()]
    right.legend(handles=handles, loc="upper left", frameon=False, ncol=2, fontsize=7)
    right.set_xlim(left.get_xlim())
    lo = min(0.7, min(r["ratio_ci"][0] for r in rows) - 0.05)
    hi = max(1.3, max(r["ratio_ci"][1] for r in rows) + 0.05)
    right.set_ylim(lo, hi + 0.25 * (hi - lo))   # room for the legend
    level = " / ".join(percent(v) for v in sorted(levels))
    right.set_title(f"ML fits at SNR {m['ml']['snr']:g}, {rows[0]['n_draws']} noise draws "
                    f"({level} $\\chi^2$ interval)")
    right.set_xlabel(r"$\log g$ (dex)")
    right.set_ylabel(r"$\mathrm{var}(\widehat{\log g}_\mathrm{ML})\,/\,\mathrm{CRLB}$")
    right.grid(alpha=0.3)
    return fig


@figure("crlb_step_size")
def crlb_step_size(inputs, params):
    """CRLB from central finite differences over the exact CRLB against the step (a fraction of the
    grid step), median and 10-90 % over points, for both interpolants, at random points and on grid
    nodes. inputs: one results file of kind "crlb_validation"."""
    m = _one("crlb_step_size", inputs, "crlb_validation")["metrics"]
    sens = m["step_sensitivity"]
    fig, ax = plt.subplots(figsize=(4.6, 3.3), layout="constrained")
    where_style = {"random": ("random points", "o", 0.18), "nodes": ("grid nodes", "s", 0.10)}
    fractions = set()
    for method, (label, col, _) in METHODS.items():
        for where, (wlabel, mk, alpha) in where_style.items():
            rows = sens.get(method, {}).get(where)
            if not rows:
                continue
            f = [r["fraction"] for r in rows]
            fractions.update(f)
            ls = "-" if where == "random" else "--"
            ax.fill_between(f, [r["ratio_p10"] for r in rows], [r["ratio_p90"] for r in rows],
                            color=col, alpha=alpha, lw=0)
            ax.plot(f, [r["ratio_median"] for r in rows], color=col, ls=ls, marker=mk, ms=3.5,
                    mfc=col if where == "random" else "white", label=f"{label.split(' (')[0]}, {wlabel}")
    ax.axhline(1, color="k", lw=0.8)
    ax.axvline(1, color="0.4", ls=":", lw=1)
    ax.set_xscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.35 * (hi - lo))   # room for the legend
    ax.text(1.06, lo + 0.02 * (hi - lo), "original study:\nstep = grid step", fontsize=7, color="0.3",
            va="bottom", ha="left")
    ax.set_xlabel("finite-difference step / grid step")
    ax.set_ylabel(r"$\mathrm{CRLB}_\mathrm{FD}\,/\,\mathrm{CRLB}_\mathrm{exact}$")
    ax.set_title("lines: median over points; bands: 10–90 %", fontsize=8.5)
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="upper left", frameon=False, ncol=2, fontsize=7)
    return fig


def _band(ax, x, c, field, color, label, ls="-", alpha=0.18):
    """The median of ``{field}_*`` in ``c`` rows (per-spectrum values) with its 10-90 % band."""
    ax.fill_between(x, [r[f"{field}_p10"] for r in c], [r[f"{field}_p90"] for r in c], color=color,
                    alpha=alpha, lw=0)
    ax.plot(x, [r[f"{field}_median"] for r in c], color=color, ls=ls, label=label)


def _bayes_points(ax, x, rows, y, yerr=None, label="Bayes"):
    """The Bayes ceiling's points with their intervals (where the grid does not resolve a posterior,
    its moments come from importance sampling: every point is the posterior mean's R^2)."""
    ax.errorbar(np.asarray(x, float), np.asarray(y, float), yerr=None if yerr is None else np.asarray(yerr, float),
                fmt="o", color="k", mfc="k", ms=3.5, capsize=2, lw=0.9, label=label, zorder=3)


@figure("ceilings_vs_snr")
def ceilings_vs_snr(inputs, params):
    """The Bayes ceiling and the Cramer-Rao bound over the magnitude sweep, against the median SNR of
    each magnitude: (a) R^2 (median of per-spectrum CRLB R^2_max in 3D and 4D with 10-90 % bands, the mean-CRLB R^2 and
    the Bayes ceiling with its interval), (b) sigma_min and the posterior sd, (c) the Schur decay.
    inputs: one results file of kind "snr_sweep"."""
    m = _one("ceilings_vs_snr", inputs, "snr_sweep")["metrics"]
    level = confidence(params, [(inputs[0], m)])
    rows = sorted(m["rows"], key=lambda r: r["snr_median"])
    x = [r["snr_median"] for r in rows]
    dims = [(d, COLORS[i], ls) for i, (d, ls) in enumerate((("3d", "-"), ("4d", "--")))
            if all(r.get(f"crlb_{d}") for r in rows)]
    nuis = {"3d": m.get("nuisance_3d"), "4d": m.get("nuisance_4d")}

    def name(d):
        extra = f" ({', '.join(nuis[d])} unknown)" if nuis.get(d) else ""
        return f"CRLB {d.upper()}{extra}".replace("T_eff", r"$T_\mathrm{eff}$").replace("M_H", "[M/H]") \
            .replace("a_M", r"[$\alpha$/M]")

    fig, (a, b, c) = plt.subplots(3, 1, figsize=(4.6, 7.4), sharex=True, layout="constrained")
    for d, col, ls in dims:
        _band(a, x, [r[f"crlb_{d}"] for r in rows], "r2max", col, name(d), ls)
    a.plot(x, [r["crlb_3d"]["r2max_mean_crlb"] for r in rows], color=COLORS[0], ls=(0, (1, 1.5)), lw=1.6,
           label=r"CRLB 3D, $1-\langle\mathrm{CRLB}\rangle/\mathrm{Var}_\mathrm{prior}$ (aggregate)")
    r2 = [r["bayes"]["r2"] for r in rows]
    err = [[v - r["bayes"]["r2_ci"][0] for v, r in zip(r2, rows)],
           [r["bayes"]["r2_ci"][1] - v for v, r in zip(r2, rows)]]
    _bayes_points(a, x, rows, r2, err, f"Bayes ceiling, {percent(level)} bootstrap interval")
    if m.get("parting_snr") is not None:
        for ax in (a, b, c):
            ax.axvline(m["parting_snr"], color="0.35", ls="-.", lw=0.9)
        a.text(m["parting_snr"] * 0.95, 1.12, "CRLB and Bayes part", ha="right", va="center",
               fontsize=7, color="0.35")
    a.set_ylim(-0.03, 1.22)
    a.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    a.set_ylabel(R2_LABEL, fontsize=8)
    handles, labels = a.get_legend_handles_labels()
    handles.append(matplotlib.patches.Patch(color="0.8"))
    labels.append("CRLB (unbiased estimators only): median of per-spectrum bounds, 10–90 % band")
    a.legend(handles, labels, loc="lower right", frameon=False, fontsize=6.5, ncol=1, borderaxespad=0.2)
    a.text(0.01, 0.98, "(a)", transform=a.transAxes, ha="left", va="top")

    for d, col, ls in dims:
        _band(b, x, [r[f"crlb_{d}"] for r in rows], "sigma_min", col, rf"$\sigma_\mathrm{{min}}$, CRLB {d.upper()}", ls)
    sd = np.array([r["bayes"]["post_sd_median"] for r in rows])
    crlb_lo = min(r[f"crlb_{d}"]["sigma_min_p10"] for r in rows for d, _, _ in dims)
    floor = 0.5 * min([crlb_lo, *sd])
    _bayes_points(b, x, rows, sd, label="Bayes posterior sd (median)")
    b.set_yscale("log")
    b.set_ylim(floor / 1.3, None)
    b.set_ylabel(r"$\log g$ uncertainty (dex)")
    b.legend(loc="upper right", frameon=False, fontsize=6.5)
    b.text(0.01, 0.02, "(b)", transform=b.transAxes, ha="left", va="bottom")

    for d, col, ls in dims:
        _band(c, x, [r[f"crlb_{d}"] for r in rows], "schur_decay", col, f"CRLB {d.upper()}", ls)
    c.set_ylim(0, 1.05)
    c.set_ylabel("Schur decay\n(marginal / full information)", fontsize=8)
    c.legend(loc="upper right", frameon=False, fontsize=6.5, ncol=len(dims))
    c.text(0.01, 0.02, "(c)", transform=c.transAxes, ha="left", va="bottom")
    c.set_xscale("log")
    c.set_xlim(min(x) / 1.15, max(x) * 1.15)
    log_ticks(c.xaxis, [t for t in SNR_TICKS if min(x) / 1.15 <= t <= max(x) * 1.15])
    c.set_xlabel(SNR_LABEL)
    for ax in (a, b, c):
        ax.grid(alpha=0.3, which="major")
    top = a.secondary_xaxis("top")
    top.set_xticks(x, [f"{r['mag']:g}" for r in rows], fontsize=7)
    top.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    top.set_xlabel(f"AB magnitude (seeing {m['seeing']:g}″, {m['n_points']} stars each)", fontsize=8)
    return fig


@figure("crlb_distribution")
def crlb_distribution(inputs, params):
    """Histograms of the per-spectrum sigma_min = sqrt(CRLB) of the test set, per SNR bin, for the
    spectra below and above every bin (details "below"/"above", metrics "outside_bins"; black dotted
    and dashed) and over all spectra, with the prior's sd and the median posterior sd of the Bayes
    ceiling. inputs: one results file of kind "fisher" (with details.sigma_min_histogram) and one of
    kind "bayes"."""
    docs = [load_results(p, ("fisher", "bayes")) for p in inputs]
    by = {}
    for p, d in zip(inputs, docs):
        if d["kind"] in by:
            raise InputError(f"{', '.join(inputs)}: crlb_distribution reads one 'fisher' and one 'bayes' file")
        by[d["kind"]] = d
    if "fisher" not in by:
        raise InputError(f"{', '.join(inputs) or '(none)'}: crlb_distribution needs a file of kind 'fisher'")
    fisher = by["fisher"]
    h = fisher["details"]["sigma_min_histogram"]
    edges = np.asarray(h["edges"], float)
    bins = [b for b in h["bins"] if any(b["counts"])]
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6.2, 3.3), layout="constrained")
    ax.stairs(h["all"], edges, color="0.75", fill=True, lw=0, label=f"all ({sum(h['all'])})")
    for i, b in enumerate(bins):
        col = cmap(0.92 * i / max(1, len(bins) - 1))
        ax.stairs(b["counts"], edges, color=col, lw=1.2, label=f"{b['lo']:g}–{b['hi']:g} ({sum(b['counts'])})")
    outside = fisher["metrics"].get("outside_bins") or {}
    for key, text, ls in (("below", "< {snr_min:g}", (0, (1, 1))), ("above", "≥ {snr_max:g}", (0, (4, 1.5)))):
        counts = h.get(key)
        if counts and any(counts):   # the spectra no SNR bin holds: below the first edge, at or above the last
            ax.stairs(counts, edges, color="0.25", lw=1.2, ls=ls,
                      label=f"{text.format(**outside)} ({outside.get(f'n_{key}', sum(counts))}, no bin)")
    ax.set_xscale("log")
    top = max(h["all"]) * 1.3
    prior_sd = math.sqrt(fisher["metrics"]["var_prior"])
    ax.axvline(prior_sd, color="k", ls="--", lw=1)
    ax.text(prior_sd * 1.04, top, f"prior sd\n{prior_sd:.2f} dex", fontsize=7, va="top", ha="left")
    if "bayes" in by:
        post = by["bayes"]["metrics"]["overall"]["post_sd_median"]
        ax.axvline(post, color=COLORS[3], ls="-.", lw=1.1)
        ax.text(post * 0.96, top, f"Bayes posterior sd,\nmedian {post:.2f} dex", fontsize=7, va="top",
                ha="right", color=COLORS[3])
    ax.set_ylim(0, top * 1.02)
    ax.set_xlim(edges[0], max(edges[-1], prior_sd * 1.6))
    ax.set_xlabel(SIGMA_LABEL)
    ax.set_ylabel("test spectra per bin")
    noise = fisher["metrics"].get("noise_level", 1)
    ax.set_title(f"per-spectrum Cramér–Rao bound, test set (noise level {noise:g})",
                 fontsize=8.5)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", frameon=False, fontsize=7.5,
               title="SNR bin (spectra)", title_fontsize=7.5)
    ax.grid(alpha=0.3, which="major")
    return fig


@figure("efficiency")
def efficiency(inputs, params):
    """Heat maps of the efficiencies E_Bayes = R^2_model / R^2_Bayes (metrics key eta_bayes) and
    E_CRLB = R^2_model / R^2_CRLB(mean) (eta_crlb) per estimator (rows, named by the metrics' labels)
    and SNR bin (columns, then all spectra); hatched: a model whose R^2 interval
    lies above the Bayes interval (a bug). inputs: one results file of kind "efficiency"."""
    m = _one("efficiency", inputs, "efficiency")["metrics"]
    names = list(m["estimators"])
    shown = m.get("labels") if isinstance(m.get("labels"), dict) else {}   # the words the paper uses
    cols = m["snr_bins"] + [m["overall"]]
    labels = [f"{b['lo']:g}–{b['hi']:g}" for b in m["snr_bins"]] + ["all"]
    values = {k: np.full((len(names), len(cols)), np.nan) for k in ("eta_bayes", "eta_crlb")}
    above = np.zeros((len(names), len(cols)), bool)
    for j, b in enumerate(cols):
        for i, n in enumerate(names):
            row = b["models"].get(n)
            if row is None:
                continue
            for k in values:
                if row.get(k) is not None:
                    values[k][i, j] = row[k]
            above[i, j] = bool(row.get("above_bayes"))
    finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
    vmax = max(1.5, float(np.max(finite)) if finite.size else 1.5)
    norm = matplotlib.colors.TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=vmax)
    cmap = plt.get_cmap("PuOr").with_extremes(bad="0.85")
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 1.35 + 0.34 * len(names)), layout="constrained")
    titles = {"eta_bayes": r"$\mathcal{E}_\mathrm{Bayes} = R^2_\mathrm{model}\,/\,R^2_\mathrm{Bayes}$",
              "eta_crlb": r"$\mathcal{E}_\mathrm{CRLB} = R^2_\mathrm{model}\,/\,"
                          r"(1-\langle\mathrm{CRLB}\rangle/\mathrm{Var}_\mathrm{prior})$"}
    for ax, (k, v) in zip(axes, values.items()):
        im = ax.imshow(np.ma.masked_invalid(v), cmap=cmap, norm=norm, aspect="auto")
        for i in range(len(names)):
            for j in range(len(cols)):
                val = v[i, j]
                if not np.isfinite(val):
                    ax.text(j, i, "–", ha="center", va="center", fontsize=7, color="0.3")
                    continue
                rgb = cmap(norm(val))[:3]
                dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.5
                ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black")
                if above[i, j]:
                    ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="////",
                                                              edgecolor="k", lw=0.8))
        ax.axvline(len(cols) - 1.5, color="white", lw=2.5)
        ax.set_xticks(range(len(cols)), labels, fontsize=6.5, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(names)), [shown.get(n, n) for n in names] if ax is axes[0] else [""] * len(names),
                      fontsize=7.5)
        ax.tick_params(length=0)
        ax.set_xlabel("SNR bin", fontsize=8)
        ax.set_title(titles[k], fontsize=8.5)
    cb = fig.colorbar(im, ax=list(axes), shrink=0.95, pad=0.01,
                      extend="min" if finite.size and finite.min() < 0 else "neither")
    cb.set_label("efficiency (1 = at the Bayes ceiling / at the bound)", fontsize=7.5)
    cb.ax.tick_params(labelsize=7)
    notes = ["grey –: nothing to divide by (R² of the ceiling or the bound ≤ 0, or bin missing)",
             r"$\mathcal{E}_\mathrm{CRLB} > 1$ is allowed (the Cramér–Rao bound binds unbiased estimators only)"]
    if above.any():
        notes.append("hatched: R² interval above the Bayes interval (a bug)")
    fig.text(0.0, -0.01, f"noise level {m['noise_level']:g}; " + "; ".join(notes), fontsize=6.5, va="top",
             ha="left", color="0.3")
    return fig


def _sigma_rows(metrics, figure_name, rule):
    """``(rows, styles, rescaled)`` of a per-star sigma figure: ``rows`` {label: calibration}, the exact posterior first
    ("exact posterior", when ``metrics["bayes"]`` holds one) then each estimator under its label;
    ``styles`` {label: (colour, line style)} -- the exact posterior black, each model's own sigma a colour of
    the palette (solid), a conformal variant (``metrics["rescales"]``) the colour of the model whose sigma it
    rescales, dashed (one factor) or dotted (a factor per SNR bin, ``metrics["per_snr_bin"]``), open markers:
    the same colour for the same model in every such figure; ``rescaled``: the labels of those conformal variants."""
    try:
        labels = metrics.get("labels") or {}
        rescales = metrics.get("rescales") or {}    # conformal variant -> the variant whose sigma it rescales
        rows = {**({"exact posterior": metrics["bayes"]} if metrics.get("bayes") is not None else {}),
                **{labels.get(k, k): v for k, v in metrics["estimators"].items()}}
        base = {labels.get(k, k): labels.get(v, v) for k, v in rescales.items() if v in metrics["estimators"]}
        dotted = {labels.get(k, k) for k in metrics.get("per_snr_bin") or ()}
        for cal in rows.values():
            cal["snr_bins"]
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"{figure_name}: expected the metrics of {rule} ({e})") from None
    styles, own = {}, 0
    for name in rows:
        if name in base:        # a rescaled sigma: its model's colour, dashed (dotted per SNR bin), open markers
            styles[name] = (styles.get(base[name], ("0.5",))[0], dict(ls=":" if name in dotted else "--", mfc="white"))
        elif name == "exact posterior":
            styles[name] = ("k", dict(ls="-"))
        else:   # the palette without its black, then more hues
            styles[name] = (MODEL_COLORS[own % len(MODEL_COLORS)], dict(ls="-"))
            own += 1
    return rows, styles, set(base)


def draw_uncertainty_calibration(metrics):
    """Top left: coverage of the 68 % Gaussian interval per SNR bin for each estimator's per-star sigma and
    for the exact posterior's mean +- sd (line: 68.3 %); a conformal variant (``metrics["rescales"]``) is
    drawn in the colour of the model whose sigma it rescales, dashed (one factor) or dotted (a factor per SNR
    bin, ``metrics["per_snr_bin"]``). Top right: median ratio of sigma to the exact
    posterior sd per SNR bin (line: 1; bars: its 16-84 % quantiles over the stars). Bottom: the PIT
    histogram of each, over all test stars (flat at 1 when calibrated: a U means sigma too small, a hump
    too large)."""
    rows, styles, _ = _sigma_rows(metrics, "uncertainty_calibration", "check_uncertainties")
    n = len(rows)
    lines = math.ceil(n / 6)                        # PIT panels: at most six on a line (their titles wrap)
    cols = math.ceil(n / lines)
    fig = plt.figure(figsize=(16.0 / 2.54, (8.0 + 4.0 * lines) / 2.54), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.0, lines])
    left, right = top.subplots(1, 2)
    grid = bottom.subplots(lines, cols, sharey=True, squeeze=False)
    pits = list(grid.ravel()[:n])
    for ax in grid.ravel()[n:]:
        ax.set_visible(False)
    colors = {name: styles[name][0] for name in rows}
    for k, (name, cal) in enumerate(rows.items()):
        color, style = styles[name]
        bins = cal["snr_bins"]
        if not bins:
            continue
        x = np.sqrt([b["lo"] * b["hi"] for b in bins])
        left.plot(x, [b["coverage68"] for b in bins], marker="o", color=color, ms=3, lw=1, label=name, **style)
        if k:
            r = np.array([[b.get("sd_ratio_median") or np.nan, b.get("sd_ratio_q16") or np.nan,
                           b.get("sd_ratio_q84") or np.nan] for b in bins])
            right.errorbar(x * (1 + 0.02 * k), r[:, 0], yerr=[np.clip(r[:, 0] - r[:, 1], 0, None),
                                                              np.clip(r[:, 2] - r[:, 0], 0, None)],
                           marker="o", color=color, ms=3, lw=1, capsize=2, **style)
    left.axhline(0.683, color="0.6", lw=1.2, ls="-", zorder=0)
    right.axhline(1.0, color="0.5", lw=0.8, ls="--")
    edges = [e for cal in rows.values() for b in cal["snr_bins"] for e in (b["lo"], b["hi"])]
    ticks = [v for v in (1, 2, 3, 5, 10, 20, 30, 50, 100) if edges and min(edges) <= v <= max(edges)]
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel(SNR_LABEL)
        ax.grid(alpha=0.25, which="both")
        if ticks:
            log_ticks(ax.xaxis, ticks)
    left.set_ylim(0, 1.02)
    left.set_ylabel(r"coverage of mean $\pm\,\sigma$")
    right.set_yscale("log")
    right.set_ylim(0.05, 20)          # a template fit's 16th percentile at high SNR runs to 1e-4: off the axis
    right.set_ylabel(r"$\sigma$ / exact posterior sd")
    right.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    top.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=6.5, frameon=False)
    for ax, (name, cal) in zip(pits, rows.items()):
        hist = np.asarray(cal["overall"]["pit_histogram"], float) * len(cal["overall"]["pit_histogram"])
        edges01 = np.linspace(0, 1, len(hist) + 1)
        ax.stairs(hist, edges01, fill=True, color=colors[name], alpha=0.6)
        ax.axhline(1.0, color="0.4", lw=0.7, ls="--")
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"], fontsize=6.5)
        ax.tick_params(axis="y", labelsize=6.5)
        ax.set_title("\n".join(textwrap.wrap(name, 24)), fontsize=6.5)
        ax.set_xlabel("PIT", fontsize=7)
    for row in grid:
        row[0].set_ylabel("density", fontsize=7)
    return fig


@figure("uncertainty_calibration")
def uncertainty_calibration(inputs, params):
    """Per-star sigma against the exact posterior (rule check_uncertainties)."""
    return draw_uncertainty_calibration(_one("uncertainty_calibration", inputs, "uncertainties")["metrics"])


def draw_coverage_check(metrics):
    """Coverage of the 68 % interval per SNR bin on the large simulated set (rule check_coverage): left, each
    model's sigma as it gives it; right, the conformal rescalings; both with the exact posterior's (black), the
    target 68.3 +- 3 points (grey band) and the band chance allows a calibrated interval in each bin (dotted
    lines). Colours and line styles as in uncertainty_calibration."""
    from ..uncertainty import LEVELS, TOLERANCE, chance_band

    rows, styles, rescaled = _sigma_rows(metrics, "coverage_check", "check_coverage")
    try:
        counts = [(b["lo"], b["hi"], b["n"]) for b in metrics["snr_bins"]]
        n = int(metrics["n"])
    except (KeyError, TypeError) as e:
        raise InputError(f"coverage_check: expected the metrics of check_coverage ({e})") from None
    fig, axes = plt.subplots(1, 2, figsize=(16.0 / 2.54, 8.5 / 2.54), layout="constrained", sharex=True)
    x_edges = np.array([[lo, hi] for lo, hi, _ in counts])
    x = np.sqrt(x_edges[:, 0] * x_edges[:, 1])
    band = np.array([chance_band(c) for _, _, c in counts])
    for ax, which in zip(axes, ("own", "rescaled")):
        ax.axhspan(LEVELS[0] - TOLERANCE, LEVELS[0] + TOLERANCE, color="0.88", zorder=0, lw=0)
        ax.axhline(LEVELS[0], color="0.6", lw=1.0, zorder=0.5)
        for sign in (-1, 1):
            ax.plot(x, LEVELS[0] + sign * band, color="0.45", ls=(0, (1, 1.5)), lw=0.9, zorder=0.6,
                    label="chance band of a calibrated interval" if sign < 0 else None)
        for name, cal in rows.items():
            if name != "exact posterior" and (name in rescaled) != (which == "rescaled"):
                continue
            bins = cal["snr_bins"]
            if not bins:
                continue
            bx = np.sqrt([b["lo"] * b["hi"] for b in bins])
            color, style = styles[name]
            ax.plot(bx, [b["coverage68"] for b in bins], marker="o", ms=3, lw=1, color=color, label=name, **style)
        ax.set_xscale("log")
        ax.set_xlabel(SNR_LABEL)
        ax.grid(alpha=0.25, which="both")
        ticks = [v for v in (2, 3, 5, 10, 20, 30) if x_edges.min() <= v <= x_edges.max()]
        if ticks:
            log_ticks(ax.xaxis, ticks)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize=6, frameon=False, ncols=1)
    axes[0].set_title(r"each model's own $\sigma$", fontsize=8.5)
    axes[1].set_title(r"$\sigma$ rescaled by conformal factors", fontsize=8.5)
    axes[0].set_ylabel(r"coverage of mean $\pm\,\sigma$")
    right = [b["coverage68"] for name, cal in rows.items() if name in rescaled or name == "exact posterior"
             for b in cal["snr_bins"]]   # what the right panel draws, beside the target band
    axes[1].set_ylim(min(right + [LEVELS[0] - TOLERANCE]) - 0.02, max(right + [LEVELS[0] + TOLERANCE]) + 0.02)
    axes[0].set_ylim(0, 1.02)
    fig.text(0.0, -0.01, f"{n:,} stars simulated at the test set's magnitudes, "
             f"{min(c for *_, c in counts):,}-{max(c for *_, c in counts):,} per SNR bin; grey: 68.3 % $\\pm$ 3 points",
             fontsize=6.5, va="top", ha="left", color="0.3")
    return fig


@figure("coverage_check")
def coverage_check(inputs, params):
    """Coverage of every shipped interval on many simulated stars (rule check_coverage)."""
    return draw_coverage_check(_one("coverage_check", inputs, "coverage")["metrics"])
