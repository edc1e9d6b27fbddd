"""Figures of Track D (denoisers): improvement of wMAE and MSE over the noisy input against the strength
s, per SNR bin and per pixel class, and example spectra (noisy, clean, denoised) with the Ca II triplet
enlarged.

Each figure reads the metrics of :func:`pfslogg.denoising.evaluate_transform` -- one dict per model, or a
list of them (one curve or bar group per model), or results documents holding them under ``metrics`` --
or the arrays of :func:`pfslogg.denoising.example_spectra`. ``draw_*`` return the figure unsaved,
``plot_*`` write it to ``out`` (PDF, or any format by its suffix) with the project's style and
reproducible bytes (:mod:`.common`).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from ..denoising import CLASS_LABELS
from ..errors import InputError
from .common import COLORS, MARKERS, SNR_LABEL, STYLE, TEXT_WIDTH_IN, figure, log_ticks, percent, save

CA_TRIPLET = (8498.02, 8542.09, 8662.14)   # A, air (REFERENCE.md)
CA_WINDOW = (8475.0, 8685.0)               # A: the zoom panel of the example figure
METRIC_LABELS = {"wmae": r"wMAE = mean $|\hat x - x_0| / \sigma$", "mse": r"MSE = mean $(\hat x - x_0)^2$"}
STRENGTH_STYLES = ["-", "--", ":", "-."]


def _models(metrics):
    """A list of metrics dicts from one dict, a results document or a list of either."""
    items = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    if not items:
        raise InputError("track_d figure: no metrics given")
    out = []
    for m in items:
        if isinstance(m, dict) and "overall" not in m and isinstance(m.get("metrics"), dict):
            m = m["metrics"]
        if not isinstance(m, dict) or not isinstance(m.get("overall"), dict) or "strengths" not in m:
            raise InputError("track_d figure: expected the metrics of evaluate_transform (keys 'overall', "
                             f"'strengths', 'snr_bins'), got {type(m).__name__} "
                             f"{sorted(m) if isinstance(m, dict) else ''}")
        out.append(m)
    return out


def _label(m):
    return (m.get("model") or {}).get("label") or (m.get("model") or {}).get("class") or "model"


def _num(x):
    return np.nan if x is None else float(x)


def _err(rows, key):
    """(values, [below, above] error-bar lengths) of ``key`` over result rows (NaN where missing)."""
    y = np.array([_num(r.get(key)) for r in rows])
    ci = np.array([[_num(v) for v in (r.get(f"{key}_ci") or [None, None])] for r in rows]).reshape(-1, 2)
    below, above = np.clip(y - ci[:, 0], 0, None), np.clip(ci[:, 1] - y, 0, None)
    return y, np.nan_to_num(np.vstack([below, above]))


def _confidence(models):
    levels = {float(m.get("confidence", 0.95)) for m in models}
    if len(levels) > 1:
        raise InputError(f"track_d figure: intervals at different confidence levels {sorted(levels)}")
    return levels.pop()


def _pick(m, strengths):
    """The strength rows of ``m`` to draw: those of ``strengths`` (None: all)."""
    rows = m["overall"]["strengths"]
    if strengths is None:
        return [r["strength"] for r in rows]
    have = {float(r["strength"]) for r in rows}
    missing = [s for s in strengths if float(s) not in have]
    if missing:
        raise InputError(f"track_d figure: {_label(m)} was not evaluated at strength(s) {missing}, "
                         f"only {sorted(have)}")
    return [float(s) for s in strengths]


def _row(rows, s):
    return next(r for r in rows if float(r["strength"]) == float(s))


def metric_name(metric):
    return {"wmae": "wMAE", "mse": "MSE"}[metric]


def _zero(ax):
    ax.axhline(0, color="0.4", lw=0.7, zorder=0)


def _legend_below(fig, handles, ncol=3):
    fig.legend(handles=handles, loc="outside lower center", ncol=min(ncol, len(handles)), frameon=False,
               fontsize=7)


def _legend_grid(fig, groups):
    """A legend below the axes with one row per group (a model) and one column per member (a strength):
    matplotlib fills legends column by column, so the handles go in transposed, blanks padding short rows."""
    ncol = max(len(g) for g in groups)
    blank = Line2D([], [], color="none", label=" ")
    handles = [g[j] if j < len(g) else blank for j in range(ncol) for g in groups]
    _legend_below(fig, handles, ncol=ncol)


def _model_handles(models):
    return [Line2D([], [], color=COLORS[i % len(COLORS)], marker=MARKERS[i % len(MARKERS)], ms=4,
                   label=_label(m)) for i, m in enumerate(models)]


# -- (a) improvement against the strength ------------------------------------------------------------
def draw_strength(metrics):
    """wMAE (left) and MSE (right) improvement over the noisy input (%) against the strength s, one line
    per model, from the identity (s = 0, exactly 0) through every evaluated s, with the paired bootstrap
    interval over the test spectra."""
    models = _models(metrics)
    conf = _confidence(models)
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.9), layout="constrained")
    for ax, metric in zip(axes, ("wmae", "mse")):
        for i, m in enumerate(models):
            rows = [m["overall"]["identity"]] + list(m["overall"]["strengths"])
            x = np.array([float(r["strength"]) for r in rows])
            y, err = _err(rows, f"{metric}_improvement")
            ax.errorbar(x, y, yerr=err, color=COLORS[i % len(COLORS)], marker=MARKERS[i % len(MARKERS)], ms=3.5,
                        capsize=2, lw=1.2, elinewidth=0.9)
        _zero(ax)
        ax.set_xlabel("strength $s$ ($s = 0$: the noisy input)")
        ax.set_ylabel(f"{metric_name(metric)} improvement (%)")
        ax.grid(alpha=0.3)
        ax.set_title(METRIC_LABELS[metric], fontsize=8.5)
    n = models[0].get("n")
    spectra = f"{n:,} test spectra; " if isinstance(n, int) else ""
    fig.suptitle(f"Improvement over the noisy input against strength ({spectra}{percent(conf)} paired bootstrap "
                 "intervals)", fontsize=9)
    _legend_below(fig, _model_handles(models))
    return fig


# -- (b) improvement per SNR bin ----------------------------------------------------------------------
def draw_snr(metrics, strengths=None):
    """wMAE (left) and MSE (right) improvement (%) per SNR bin (at the bins' geometric centres, log
    axis), one line per model and strength (colour: model; line style: strength), with intervals.
    ``strengths``: the strengths drawn (None: every evaluated one)."""
    models = _models(metrics)
    conf = _confidence(models)
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 3.0), layout="constrained")
    groups, edges = [], set()
    for i, m in enumerate(models):
        groups.append([])
        bins = m.get("snr_bins") or []
        if not bins:
            raise InputError(f"track_d figure: {_label(m)}: no SNR bin holds enough test spectra")
        mids = np.array([np.sqrt(b["lo"] * b["hi"]) if b["lo"] > 0 else 0.5 * b["hi"] for b in bins])
        edges |= {b["lo"] for b in bins} | {b["hi"] for b in bins}
        for j, s in enumerate(_pick(m, strengths)):
            color, ls = COLORS[i % len(COLORS)], STRENGTH_STYLES[j % len(STRENGTH_STYLES)]
            for ax, metric in zip(axes, ("wmae", "mse")):
                rows = [_row(b["strengths"], s) for b in bins]
                y, err = _err(rows, f"{metric}_improvement")
                ax.errorbar(mids * (1 + 0.03 * (j - 1)), y, yerr=err, color=color, ls=ls,
                            marker=MARKERS[i % len(MARKERS)], ms=3, capsize=1.5, lw=1.1, elinewidth=0.8)
            groups[-1].append(Line2D([], [], color=color, ls=ls, marker=MARKERS[i % len(MARKERS)], ms=3,
                                     label=f"{_label(m)}, $s$ = {s:g}"))
    for ax, metric in zip(axes, ("wmae", "mse")):
        ax.set_xscale("log")
        ticks = sorted(e for e in edges if e > 0)
        log_ticks(ax.xaxis, ticks)
        ax.set_xlabel(SNR_LABEL)
        ax.set_ylabel(f"{metric_name(metric)} improvement (%)")
        _zero(ax)
        ax.grid(alpha=0.3)
        ax.set_title(METRIC_LABELS[metric], fontsize=8.5)
    fig.suptitle(f"Denoising per SNR bin ({percent(conf)} paired bootstrap intervals over the bin's spectra)",
                 fontsize=9)
    _legend_grid(fig, groups)
    return fig


# -- (c) improvement per pixel class ------------------------------------------------------------------
def draw_classes(metrics, strengths=None):
    """wMAE (top) and MSE (bottom) improvement (%) on all pixels and on each pixel class (line cores,
    OH sky lines, continuum: :func:`pfslogg.denoising.pixel_classes`), one bar per model and strength
    with its interval. ``strengths``: the strengths drawn (None: every evaluated one)."""
    models = _models(metrics)
    conf = _confidence(models)
    names = ["all"] + list(models[0]["overall"]["classes"])
    bars = [(i, m, s) for i, m in enumerate(models) for s in _pick(m, strengths)]
    fig, axes = plt.subplots(2, 1, figsize=(TEXT_WIDTH_IN, 4.4), layout="constrained", sharex=True)
    width = 0.8 / len(bars)
    x = np.arange(len(names))
    groups = [[] for _ in models]
    for k, (i, m, s) in enumerate(bars):
        j = _pick(m, strengths).index(s)
        color = COLORS[i % len(COLORS)]
        alpha = 0.95 - 0.55 * j / max(len(_pick(m, strengths)) - 1, 1)
        for ax, metric in zip(axes, ("wmae", "mse")):
            rows = [_row(m["overall"]["strengths"], s)] + \
                   [_row(m["overall"]["classes"][c]["strengths"], s) for c in names[1:]]
            y, err = _err(rows, f"{metric}_improvement")
            pos = x - 0.4 + width * (k + 0.5)
            ax.bar(pos, y, width * 0.92, color=color, alpha=alpha, edgecolor=color, lw=0.6)
            ax.errorbar(pos, y, yerr=err, fmt="none", ecolor="0.15", capsize=1.5, elinewidth=0.8)
        groups[i].append(plt.Rectangle((0, 0), 1, 1, color=color, alpha=alpha, label=f"{_label(m)}, $s$ = {s:g}"))
    fractions = {c: v.get("fraction") for c, v in (models[0].get("pixel_classes") or {}).items()}
    ticks = [CLASS_LABELS.get(c, c) + (f"\n({100 * fractions[c]:.0f} % of pixels)" if fractions.get(c) else "")
             for c in names]
    for ax, metric in zip(axes, ("wmae", "mse")):
        _zero(ax)
        ax.set_ylabel(f"{metric_name(metric)} improvement (%)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(METRIC_LABELS[metric], fontsize=8.5)
    axes[1].set_xticks(x, ticks)
    fig.suptitle(f"Denoising per pixel class ({percent(conf)} paired bootstrap intervals over spectra)", fontsize=9)
    _legend_grid(fig, groups)
    return fig


# -- (d) example spectra ------------------------------------------------------------------------------
def draw_examples(examples, window=CA_WINDOW, max_spectra=3):
    """One row per example spectrum (at most ``max_spectra``, lowest SNR first): the whole arm (left: the
    noisy input in grey, the denoised flux at the largest strength, the noiseless flux in black; the Ca II
    window shaded) and the Ca II triplet window (right, ``window`` in A, the lines marked: the denoised
    flux at every strength). The y range is the noiseless flux +- 3 sigma of the noise."""
    ex = examples
    try:
        wave = np.asarray(ex["wave"], float)
        noisy, clean = np.atleast_2d(ex["noisy"]), np.atleast_2d(ex["clean"])
        strengths, den = np.atleast_1d(ex["strengths"]), np.asarray(ex["denoised"], float)
    except (KeyError, TypeError) as e:
        raise InputError(f"track_d examples: expected the arrays of example_spectra ({e})") from None
    if den.shape != (len(strengths), len(noisy), len(wave)) or clean.shape != noisy.shape \
            or noisy.shape[1] != len(wave):
        raise InputError(f"track_d examples: noisy {noisy.shape}, clean {clean.shape}, denoised {den.shape}: "
                         f"expected (k, {len(wave)}), (k, {len(wave)}), (m, k, {len(wave)})")
    # lowest SNR first, at most max_spectra of them
    order = np.argsort(np.atleast_1d(ex["snr"]), kind="stable") if "snr" in ex else np.arange(len(noisy))
    order = order[: int(max_spectra)]
    k = len(order)
    label = str(ex.get("label", "denoiser"))
    fig, axes = plt.subplots(k, 2, figsize=(TEXT_WIDTH_IN, 1.9 * k + 0.6), layout="constrained", squeeze=False,
                             gridspec_kw={"width_ratios": [2.2, 1]})
    zoom = (wave >= window[0]) & (wave <= window[1])
    colors = [COLORS[(j + 1) % len(COLORS)] for j in range(len(strengths))]
    sigma = np.atleast_2d(ex["sigma"]) if "sigma" in ex else None
    for r, q in enumerate(order):
        # the noise of the spectrum: its median sigma (else the robust scatter of noisy - clean)
        d = noisy[q] - clean[q]
        noise = float(np.median(sigma[q])) if sigma is not None and sigma.shape == noisy.shape \
            else 1.4826 * float(np.median(np.abs(d - np.median(d))))
        # the whole arm holds the noisy input, the strongest denoising and the truth; the window every strength
        panels = ((axes[r, 0], slice(None), [len(strengths) - 1]), (axes[r, 1], zoom, range(len(strengths))))
        for ax, sel, drawn in panels:
            ax.plot(wave[sel], noisy[q, sel], color="0.65", lw=0.5)
            for j in drawn:
                ax.plot(wave[sel], den[j, q, sel], color=colors[j], lw=0.8)
            ax.plot(wave[sel], clean[q, sel], color="k", lw=0.8)
            # y range: the truth +- 3 sigma of the noise (sky-line spikes of the noisy input run off it)
            lo, hi = float(np.min(clean[q, sel])), float(np.max(clean[q, sel]))
            ax.set_ylim(lo - 3 * noise - 0.03 * (hi - lo), hi + 3 * noise + 0.03 * (hi - lo))
            ax.grid(alpha=0.25)
        for c in CA_TRIPLET:
            axes[r, 1].axvline(c, color="0.5", lw=0.6, ls=":")
        axes[r, 0].axvspan(*window, color="0.9", lw=0, zorder=0)
        axes[r, 1].set_xlim(*window)
        desc = []
        if "snr" in ex:
            desc.append(f"SNR {float(np.atleast_1d(ex['snr'])[q]):.1f}")
        if "log_g" in ex:
            desc.append(f"log g {float(np.atleast_1d(ex['log_g'])[q]):.2f}")
        if "rows" in ex:
            desc.append(f"test row {int(np.atleast_1d(ex['rows'])[q])}")
        axes[r, 0].set_title(", ".join(desc), fontsize=8, loc="left")
        axes[r, 1].set_title("Ca II triplet", fontsize=8, loc="left")
        axes[r, 0].set_ylabel("normalised flux")
    axes[-1, 0].set_xlabel(r"wavelength ($\mathrm{\AA}$)")
    axes[-1, 1].set_xlabel(r"wavelength ($\mathrm{\AA}$)")
    handles = [Line2D([], [], color="0.65", lw=1, label="noisy input"),
               Line2D([], [], color="k", lw=1, label="noiseless")]
    handles += [Line2D([], [], color=colors[j], lw=1.2, label=f"{label}, $s$ = {float(s):g}")
                for j, s in enumerate(strengths)]
    _legend_below(fig, handles, ncol=len(handles))
    return fig


def draw_posterior_samples(metrics, details):
    """Top: for each example star (lowest SNR first) the histogram of the log g fitted to each draw of the
    generative denoiser, the exact posterior of log g of the noisy spectrum (a normal curve of its mean and
    sd), the true log g and the ML fit to the noisy spectrum. Bottom: every sampled star's ratio of the
    draws' sd to the exact posterior sd against its SNR (log axes; 1: a posterior sampler)."""
    try:
        samples = np.asarray(details["samples"], float)
        snr, t = np.asarray(details["snr"], float), np.asarray(details["log_g"], float)
        pm, ps, ml = (np.asarray(details[k], float) for k in ("post_mean", "post_sd", "ml"))
        ex = [int(i) for i in details["examples"]]
    except (KeyError, TypeError) as e:
        raise InputError(f"posterior_samples figure: expected the details of sample_posterior ({e})") from None
    if samples.ndim != 2 or samples.shape[1] != len(snr) or not ex:
        raise InputError(f"posterior_samples figure: samples {samples.shape} for {len(snr)} stars")
    ex = sorted(ex, key=lambda i: snr[i])
    fig = plt.figure(figsize=(TEXT_WIDTH_IN, 4.6), layout="constrained")
    grid = fig.add_gridspec(2, len(ex), height_ratios=[1, 1.05])
    for j, i in enumerate(ex):
        ax = fig.add_subplot(grid[0, j])
        lo = min(samples[:, i].min(), pm[i] - 3.5 * ps[i], t[i]) - 0.05
        hi = max(samples[:, i].max(), pm[i] + 3.5 * ps[i], t[i]) + 0.05
        ax.hist(samples[:, i], bins=np.linspace(lo, hi, 41), density=True, color=COLORS[1], alpha=0.55,
                label="fits to the draws")
        x = np.linspace(lo, hi, 300)
        ax.plot(x, np.exp(-0.5 * ((x - pm[i]) / ps[i]) ** 2) / (ps[i] * np.sqrt(2 * np.pi)), color=COLORS[0],
                lw=1.2, label="exact posterior (mean, sd)")
        ax.axvline(t[i], color="k", lw=1, label="true log g")
        ax.axvline(ml[i], color="0.45", lw=1, ls=":", label="ML fit to the noisy spectrum")
        ax.set_title(f"SNR {snr[i]:.1f}", fontsize=8, loc="left")
        ax.set_xlabel(r"$\log g$")
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel("density")
    ax = fig.add_subplot(grid[1, :])
    ratio = samples.std(0, ddof=1) / ps
    ax.scatter(snr, ratio, s=9, color=COLORS[1], alpha=0.7, lw=0)
    ax.axhline(1.0, color=COLORS[0], lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = np.nanmin(snr), np.nanmax(snr)
    log_ticks(ax.xaxis, [v for v in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200) if lo / 1.2 <= v <= hi * 1.2])
    rlo, rhi = np.nanmin(ratio), np.nanmax(ratio)
    log_ticks(ax.yaxis, [v for v in (0.01, 0.03, 0.1, 0.3, 1, 3, 10) if rlo / 1.5 <= v <= rhi * 1.5] or [1])
    ax.set_xlabel(SNR_LABEL)
    ax.set_ylabel("sd of the draws / posterior sd")
    med = metrics["overall"]["sd_ratio_median"]
    ax.set_title(f"{len(snr)} stars, {samples.shape[0]} draws each: median ratio {med:.2f}", fontsize=8, loc="left")
    ax.grid(alpha=0.25, which="both")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=4, frameon=False)
    return fig


# -- writing ------------------------------------------------------------------------------------------
def _write(draw, out, *args, **kw):
    before = set(plt.get_fignums())
    try:
        with plt.rc_context(STYLE):
            save(draw(*args, **kw), out)
    finally:   # a figure left open by bad input
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
    return out


def plot_strength(metrics, out):
    """Write :func:`draw_strength` of ``metrics`` to ``out``."""
    return _write(draw_strength, out, metrics)


def plot_snr(metrics, out, strengths=None):
    """Write :func:`draw_snr` of ``metrics`` to ``out``."""
    return _write(draw_snr, out, metrics, strengths=strengths)


def plot_classes(metrics, out, strengths=None):
    """Write :func:`draw_classes` of ``metrics`` to ``out``."""
    return _write(draw_classes, out, metrics, strengths=strengths)


def plot_examples(examples, out, window=CA_WINDOW, max_spectra=3):
    """Write :func:`draw_examples` of ``examples`` to ``out``."""
    return _write(draw_examples, out, examples, window=window, max_spectra=max_spectra)


# -- the registered figures (pfslogg.tracks.track_d): drawn from rule summarize_denoising's outputs ----
def _summary_cells(inputs):
    """The metrics of each transform's cell at the default noise level (seed 0), from the one ``denoising``
    summary (results/track_d/denoising.json)."""
    from .common import load_results

    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: the figure reads one denoising summary")
    doc = load_results(inputs[0], "denoising")
    m = doc["metrics"]
    from ..experiments import noise_tag

    tag = noise_tag(m["default_noise_level"])
    by_cell = (doc.get("details") or {}).get("cells") or {}
    cells = [by_cell[t][tag] for t in m["transforms"] if tag in by_cell.get(t, {})]
    if not cells:
        raise InputError(f"{inputs[0]}: no transform at the default noise level {m['default_noise_level']:g}")
    return cells


@figure("denoising_strength")
def denoising_strength(inputs, params):
    """Improvement of wMAE and MSE against s per denoiser at the default noise level."""
    return draw_strength(_summary_cells(inputs))


@figure("denoising_snr")
def denoising_snr(inputs, params):
    """Improvement of wMAE and MSE per SNR bin, per denoiser and strength."""
    return draw_snr(_summary_cells(inputs))


@figure("denoising_classes")
def denoising_classes(inputs, params):
    """Improvement per pixel class (line cores, OH sky lines, continuum)."""
    return draw_classes(_summary_cells(inputs))


@figure("denoising_examples")
def denoising_examples(inputs, params):
    """Example spectra of the first transform (the learned denoiser): noisy, noiseless, denoised."""
    from ..denoising import load_examples

    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: the figure reads one file of example spectra")
    return draw_examples(load_examples(inputs[0]))


@figure("downstream")
def downstream(inputs, params):
    """R^2 of every estimator on raw and denoised spectra against the raw Bayes ceiling (check_denoised_ceiling's
    efficiency file): the error-channel figure's layout (:func:`.track_e.error_channel`)."""
    from .track_e import error_channel

    return error_channel(inputs, params)


@figure("posterior_samples")
def posterior_samples(inputs, params):
    """The generative denoiser's draws, fitted for log g, against the exact posterior (rule sample_posterior)."""
    from .common import load_results

    if len(inputs) != 1:
        raise InputError(f"{', '.join(inputs) or '(none)'}: the figure reads one posterior-samples result")
    doc = load_results(inputs[0], "posterior_samples")
    return draw_posterior_samples(doc["metrics"], doc.get("details") or {})
