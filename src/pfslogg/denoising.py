"""Track D: how well a denoiser recovers the noiseless spectrum, by strength, SNR and kind of pixel.

A *transform* (a denoiser, ``kind == "transform"``) maps the noisy flux ``y`` of a view to an estimate
``x_hat`` of the noiseless flux ``x0``: ``model.transform(flux, sigma, strength=None)`` -> (B, n_pix)
float64, the strength ``s`` scaling its correction (``x_hat = y + s g(y, sigma)`` for the residual
denoiser of the original study; ``s = 0`` is the identity). It is scored against ``x0`` (the view's
``read_clean``), never by log g:

* **wMAE** per spectrum: ``mean_pixels |x_hat - x0| / max(sigma, floor)`` (dimensionless: the error in
  units of the noise; the original study's loss and headline metric, REFERENCE.md: 20 / 34 / 47 %
  improvement at s = 0.05 / 0.1 / 0.2); ``sigma`` is the sigma the view gives with the noisy flux (what
  the denoiser is told), ``floor`` (flux units) keeps noiseless pixels finite;
* **MSE** per spectrum: ``mean_pixels (x_hat - x0)^2`` (flux units squared);
* **improvement** over the noisy input (the identity, ``x_hat = y``): ``100 (1 - mean(metric of x_hat) /
  mean(metric of y))`` %, means over the spectra (a ratio of means, so a few hopeless spectra do not
  dominate as they would a mean of ratios); exactly 0 for the identity, positive when the denoiser
  helps. Its interval is a paired percentile bootstrap over spectra: every strength and the identity
  are resampled with the same weights, so the pairing of the same spectra is kept.

Each is reported over all spectra, per SNR bin of the view (``lo <= snr < hi``) and per pixel class
(:func:`pixel_classes`: line cores, OH sky lines, continuum), because a smoother that wins in the
continuum can lose in the cores of the lines that carry log g. :func:`evaluate_transform` streams the
view batch by batch; :func:`example_spectra` gives the arrays of the example figure
(:mod:`pfslogg.plots.track_d`).
"""

import numpy as np

from .errors import InputError

PIXEL_CLASSES = ("line_cores", "sky_lines", "continuum")
CLASS_LABELS = {"all": "all pixels", "line_cores": "line cores", "sky_lines": "OH sky lines",
                "continuum": "continuum"}
METRICS = ("wmae", "mse")
RESOLUTION = 5000.0     # PFS red arm, medium resolution (REFERENCE.md)
CORE_FWHM = 1.0         # line core half-width, in resolution elements (FWHM = lambda / R)
SKY_FACTOR = 2.0        # sky-line pixels: OH-model variance above this many times its median
MIN_COUNT = 10          # SNR bins with fewer spectra are not reported
_BOOT_CELLS = 4_000_000  # bootstrap weights drawn at once: replicates x spectra (memory ~32 MB)


# -- per-spectrum metrics -----------------------------------------------------------------------------
def _pair(denoised, clean, where):
    x, x0 = np.asarray(denoised, float), np.asarray(clean, float)
    if x.ndim != 2 or x.shape != x0.shape:
        raise InputError(f"{where}: denoised {x.shape} and clean {x0.shape}: expected two arrays (B, n_pix) "
                         "of one shape")
    return x, x0


def _mask(mask, n_pix, where):
    if mask is None:
        return slice(None)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (n_pix,) or not mask.any():
        raise InputError(f"{where}: mask: expected a boolean array ({n_pix},) with at least one pixel, "
                         f"got {mask.dtype} {mask.shape}")
    return mask


def check_floor(floor, where="floor"):
    """``floor`` as a float > 0 (finite); InputError naming ``where`` otherwise."""
    try:
        f = float(floor)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a number > 0, got {floor!r}") from None
    if not (np.isfinite(f) and f > 0):
        raise InputError(f"{where}: expected a finite number > 0, got {floor!r}")
    return f


def wmae(denoised, clean, sigma, floor, mask=None):
    """Weighted mean absolute error per spectrum, (B,) float64: the mean over pixels (those of the
    boolean ``mask`` (n_pix,) when given) of ``|denoised - clean| / max(sigma, floor)``.

    ``denoised``, ``clean``, ``sigma``: (B, n_pix) in flux units; ``floor`` > 0 in flux units."""
    x, x0 = _pair(denoised, clean, "wmae")
    sigma = np.asarray(sigma, float)
    if sigma.shape != x.shape:
        raise InputError(f"wmae: sigma: shape {sigma.shape}, expected {x.shape}")
    if not np.all(np.isfinite(sigma)):
        raise InputError("wmae: sigma: contains NaN or infinite values")
    floor = check_floor(floor, "wmae: floor")
    m = _mask(mask, x.shape[1], "wmae")
    return np.mean(np.abs(x[:, m] - x0[:, m]) / np.maximum(sigma[:, m], floor), axis=1)


def mse(denoised, clean, mask=None):
    """Mean squared error per spectrum, (B,) float64 in flux units squared: the mean over pixels (those
    of the boolean ``mask`` (n_pix,) when given) of ``(denoised - clean)^2``; inputs (B, n_pix)."""
    x, x0 = _pair(denoised, clean, "mse")
    m = _mask(mask, x.shape[1], "mse")
    return np.mean((x[:, m] - x0[:, m]) ** 2, axis=1)


# -- pixel classes ------------------------------------------------------------------------------------
def _check_wave(wave):
    wave = np.asarray(wave, float)
    if wave.ndim != 1 or len(wave) < 2 or not np.all(np.isfinite(wave)) or np.any(np.diff(wave) <= 0):
        raise InputError(f"wave: expected increasing finite wavelengths (n_pix,) in A, got shape {wave.shape}")
    return wave


def strong_lines():
    """[(label, air wavelength A)] of the strong lines whose cores :func:`pixel_classes` marks: the named
    lines of the spectrum model (:func:`pfslogg.data.synth.named_lines`: Ca II triplet, Na I, K I, O I,
    Mg I, Fe I/II, Ti II, Paschen)."""
    from .data.synth import named_lines

    return list(named_lines())


def pixel_classes(wave, resolution=RESOLUTION, core_fwhm=CORE_FWHM, sky_factor=SKY_FACTOR, lines=None):
    """Boolean masks (n_pix,) of three classes that partition the pixels of ``wave`` (A), in this order:

    * ``line_cores``: within ``core_fwhm`` resolution elements (FWHM = lambda / ``resolution``, 1.7 A at
      8542 A) of a strong line (``lines``: wavelengths in A or (label, wavelength) pairs; default
      :func:`strong_lines`), and always the pixel nearest each line inside the range (a coarse grid);
    * ``sky_lines``: not a line core, and the sky variance of the noise model
      (:func:`pfslogg.data.noise.sky_variance`: sky continuum + OH lines + detector) above ``sky_factor``
      times its median over ``wave`` -- the OH lines, ~19 % of the PFS pixels at the default 2;
    * ``continuum``: the rest.

    Returns ``{"line_cores": mask, "sky_lines": mask, "continuum": mask}``.
    """
    from .data.noise import sky_variance

    wave = _check_wave(wave)
    for name, v, lo in (("resolution", resolution, 0), ("core_fwhm", core_fwhm, 0), ("sky_factor", sky_factor, 0)):
        if not (np.isfinite(float(v)) and float(v) > lo):
            raise InputError(f"pixel_classes: {name}: expected a finite number > {lo}, got {v!r}")
    lines = strong_lines() if lines is None else lines
    centres = np.array([c[1] if isinstance(c, (tuple, list)) else c for c in lines], float)
    spacing = np.gradient(wave)
    core = np.zeros(len(wave), bool)
    for c in centres:
        if not wave[0] - spacing[0] <= c <= wave[-1] + spacing[-1]:
            continue
        i = int(np.clip(np.searchsorted(wave, c), 0, len(wave) - 1))
        half = max(core_fwhm * c / resolution, 0.5 * spacing[i] * (1 + 1e-9))
        core |= np.abs(wave - c) <= half
        core[np.argmin(np.abs(wave - c))] = True
    v0 = sky_variance(wave)
    sky = (v0 > sky_factor * np.median(v0)) & ~core
    return {"line_cores": core, "sky_lines": sky, "continuum": ~core & ~sky}


def class_definitions(resolution=RESOLUTION, core_fwhm=CORE_FWHM, sky_factor=SKY_FACTOR):
    """The definition of each pixel class in words (for the results JSON)."""
    return {"line_cores": f"within {core_fwhm:g} resolution element(s) (lambda/R, R = {resolution:g}) of a "
                          "strong line of the spectrum model (Ca II triplet, Na I, K I, O I, Mg I, Fe, Paschen)",
            "sky_lines": f"not a line core; OH sky-model variance above {sky_factor:g} x its median",
            "continuum": "every other pixel"}


# -- evaluation ---------------------------------------------------------------------------------------
def check_transform(model, where="model"):
    """``model`` if it is a fitted transform (``kind == "transform"``, callable ``transform``)."""
    if getattr(model, "kind", None) != "transform" or not callable(getattr(model, "transform", None)):
        raise InputError(f"{where}: {type(model).__name__} is not a transform (expected kind 'transform' "
                         "with transform(flux, sigma, strength))")
    return model


def _strengths(model, strengths, where="strengths"):
    if strengths is None:
        strengths = getattr(model, "strengths", None) or [getattr(model, "strength", 1.0)]
    if isinstance(strengths, (str, bytes)) or not hasattr(strengths, "__len__") or not len(strengths):
        raise InputError(f"{where}: expected a non-empty list of numbers >= 0, got {strengths!r}")
    out = []
    for s in strengths:
        try:
            v = float(s)
        except (TypeError, ValueError):
            raise InputError(f"{where}: expected numbers >= 0, got {s!r}") from None
        if not (np.isfinite(v) and v >= 0):
            raise InputError(f"{where}: expected finite numbers >= 0, got {s!r}")
        out.append(v)
    return sorted(set(out))


def _snr_edges(edges, where="snr_edges"):
    try:
        pairs = [(float(lo), float(hi)) for lo, hi in edges]
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a list of [lo, hi] pairs, got {edges!r}") from None
    for lo, hi in pairs:
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise InputError(f"{where}: expected finite [lo, hi] with hi > lo, got [{lo:g}, {hi:g}]")
    return pairs


def _check_eval(n_boot, confidence, batch):
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InputError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise InputError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch: expected an integer >= 1, got {batch!r}")


def _denoise(model, flux, sigma, s):
    out = np.asarray(model.transform(flux, sigma, strength=s), dtype=float)
    if out.shape != flux.shape:
        raise InputError(f"model: {type(model).__name__}.transform gave shape {out.shape}, expected {flux.shape}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"model: {type(model).__name__}.transform at strength {s:g} gave NaN or infinite flux")
    return out


def _tag(s):
    """The column tag of strength s: 0.25 -> 's0.25'; the noisy input (None) -> 'noisy'."""
    return "noisy" if s is None else f"s{s:g}"


def _num(x):
    """A float for JSON: NaN and infinities -> None."""
    x = float(x)
    return x if np.isfinite(x) else None


def _interval(reps, confidence):
    reps = np.asarray(reps, float)
    reps = reps[np.isfinite(reps)]
    if not len(reps):
        return [None, None]
    a = (1 - confidence) / 2
    return [float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a))]


def _improvement(m, m0):
    """100 (1 - m / m0) %, elementwise; NaN where m0 is 0 or not finite."""
    m, m0 = np.asarray(m, float), np.asarray(m0, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (1.0 - m / m0)


def bootstrap_means(values, subsets, n_boot, seed):
    """Paired bootstrap of means over spectra: ``values`` (n, q) per-spectrum statistics, ``subsets`` a
    list of row selections (boolean (n,) masks or None for all rows). Returns one (n_boot, q) array of
    replicate means per subset, every subset and column resampled with the same multinomial weights
    (one draw of n spectra with replacement per replicate, seeded by ``seed``; a subset's replicate is
    the weighted mean over its rows, NaN when the draw missed all of them). Weights are drawn in chunks
    of replicates, so memory stays ~32 MB whatever n."""
    values = np.asarray(values, float)
    n = len(values)
    rng = np.random.default_rng(seed)
    sels = [np.ones(n, bool) if s is None else np.asarray(s, bool) for s in subsets]
    out = [np.empty((n_boot, values.shape[1])) for _ in sels]
    step = max(1, _BOOT_CELLS // max(n, 1))
    p = np.full(n, 1.0 / n)
    for a in range(0, n_boot, step):
        b = min(a + step, n_boot)
        w = rng.multinomial(n, p, size=b - a).astype(float)   # (r, n)
        for sel, o in zip(sels, out):
            ws = w[:, sel]
            with np.errstate(divide="ignore", invalid="ignore"):
                o[a:b] = (ws @ values[sel]) / ws.sum(1, keepdims=True)
    return out


def _rows(point, reps, strengths, confidence):
    """The result rows of one subset and one pixel class: (identity row, [row per strength]).

    ``point``: (1 + K, 2) means (identity first; columns wMAE, MSE); ``reps``: (n_boot, 1 + K, 2)."""
    rows = []
    for k, s in enumerate([0.0] + strengths):
        row = {"strength": s}
        for j, name in enumerate(METRICS):
            row[name] = _num(point[k, j])
            row[f"{name}_ci"] = _interval(reps[:, k, j], confidence)
            row[f"{name}_improvement"] = _num(_improvement(point[k, j], point[0, j]))
            row[f"{name}_improvement_ci"] = _interval(_improvement(reps[:, k, j], reps[:, 0, j]), confidence)
        rows.append(row)
    rows[0]["identity"] = True
    return rows[0], rows[1:]


def evaluate_transform(model, view, strengths, snr_edges, floor, n_boot, confidence, seed, batch=512,
                       classes=None, min_count=MIN_COUNT):
    """Score the transform ``model`` on ``view`` (fixed noise; it must offer ``read_clean``) at every
    strength of ``strengths`` (None: the model's ``strengths``) against the noisy input (the identity).

    ``snr_edges``: SNR bins as [[lo, hi], ...] (``lo <= snr < hi``, the view's :meth:`snr`); ``floor``:
    the wMAE's sigma floor (flux units); ``n_boot`` bootstrap replicates over spectra for intervals at
    ``confidence``, seeded by ``seed``; ``batch``: spectra read at once; ``classes``: pixel masks
    (default :func:`pixel_classes` of the view's wavelengths); SNR bins with fewer than ``min_count``
    spectra are left out.

    Returns ``(metrics, table)``. ``metrics`` (JSON values)::

        {"model": {"class", "label", "strength"}, "n", "noise_level", "floor", "n_boot", "confidence",
         "seed", "strengths": [s, ...],
         "pixel_classes": {name: {"n_pixels", "fraction", "definition"}},
         "overall": {"identity": row, "strengths": [row per s], "classes": {name: {"identity", "strengths"}}},
         "snr_bins": [{"lo", "hi", "n", "snr_median", "identity", "strengths", "classes"}, ...]}

    with ``row = {"strength", "wmae", "wmae_ci", "mse", "mse_ci", "wmae_improvement",
    "wmae_improvement_ci", "mse_improvement", "mse_improvement_ci"}`` (improvements in %, intervals
    [lo, hi]; the identity row has strength 0, ``identity: true`` and improvement exactly 0). ``table``
    (pandas DataFrame, one row per spectrum): ``row`` (index in the view), ``snr``, ``log_g``, then
    ``wmae_<tag>``, ``mse_<tag>`` and per class ``wmae_<class>_<tag>``, ``mse_<class>_<tag>`` with
    ``<tag>`` ``noisy`` or ``s<strength>`` (e.g. ``wmae_s0.25``).
    """
    import pandas as pd

    from .progress import progress

    check_transform(model)
    strengths = _strengths(model, strengths)
    bins = _snr_edges(snr_edges)
    floor = check_floor(floor)
    _check_eval(n_boot, confidence, batch)
    classes = pixel_classes(view.wave) if classes is None else classes
    names = list(classes)
    for c in names:
        _mask(classes[c], view.n_pixels, f"classes.{c}")
    masks = [None] + [np.asarray(classes[c]) for c in names]   # all pixels first
    n, K, C = view.n, len(strengths), len(masks)
    stats = np.empty((n, 1 + K, C, 2))   # (spectrum, identity + strengths, all + classes, wMAE / MSE)
    label = getattr(model, "label", None) or type(model).__name__
    bar = progress(total=n, desc=f"denoise ({label})", unit="spec")
    for a, b, flux, sigma in view.batches(batch):
        if sigma is None:
            raise InputError("view: gives no sigma with the flux (wMAE weights by it)")
        clean = view.read_clean(a, b)
        for k, s in enumerate([None] + strengths):
            x = flux if s is None else _denoise(model, flux, sigma, s)
            for c, m in enumerate(masks):
                stats[a:b, k, c, 0] = wmae(x, clean, sigma, floor, m)
                stats[a:b, k, c, 1] = mse(x, clean, m)
        bar.update(b - a)
    bar.close()

    snr = np.asarray(view.snr(), float)
    sels = [(lo, hi, (snr >= lo) & (snr < hi)) for lo, hi in bins]
    sels = [(lo, hi, sel) for lo, hi, sel in sels if sel.sum() >= max(int(min_count), 1)]
    flat = stats.reshape(n, -1)
    reps = bootstrap_means(flat, [None] + [sel for _, _, sel in sels], n_boot, seed)

    def block(sel, rep):
        point = flat[sel].mean(0).reshape(1 + K, C, 2)
        rep = rep.reshape(n_boot, 1 + K, C, 2)
        identity, rows = _rows(point[:, 0], rep[:, :, 0], strengths, confidence)
        cls = {}
        for c, name in enumerate(names, start=1):
            i, r = _rows(point[:, c], rep[:, :, c], strengths, confidence)
            cls[name] = {"identity": i, "strengths": r}
        return {"identity": identity, "strengths": rows, "classes": cls}

    defs = class_definitions()
    metrics = {
        "model": {"class": getattr(model, "class_id", None), "label": label,
                  "strength": _num(getattr(model, "strength", np.nan))},
        "n": int(n), "noise_level": _num(getattr(view, "noise_level", np.nan)), "floor": floor,
        "n_boot": int(n_boot), "confidence": float(confidence), "seed": int(seed), "strengths": strengths,
        "pixel_classes": {c: {"n_pixels": int(np.sum(classes[c])), "fraction": float(np.mean(classes[c])),
                              "definition": defs.get(c, c)} for c in names},
        "overall": block(slice(None), reps[0]),
        "snr_bins": [{"lo": lo, "hi": hi, "n": int(sel.sum()), "snr_median": float(np.median(snr[sel])),
                      **block(sel, rep)} for (lo, hi, sel), rep in zip(sels, reps[1:])],
    }
    table = {"row": np.arange(n), "snr": snr, "log_g": np.asarray(view.logg, float)}
    for k, s in enumerate([None] + strengths):
        for j, metric in enumerate(METRICS):
            table[f"{metric}_{_tag(s)}"] = stats[:, k, 0, j]
            for c, name in enumerate(names, start=1):
                table[f"{metric}_{name}_{_tag(s)}"] = stats[:, k, c, j]
    return metrics, pd.DataFrame(table)


# -- example spectra ----------------------------------------------------------------------------------
def example_rows(view, quantiles=(0.1, 0.5, 0.9)):
    """Rows of ``view`` (increasing) whose SNR sits nearest each quantile of the view's SNR: a low, a
    typical and a high SNR spectrum for the example figure (distinct rows; fewer if the view is small)."""
    snr = np.asarray(view.snr(), float)
    q = np.quantile(snr[np.isfinite(snr)], quantiles) if np.isfinite(snr).any() else []
    rows = {int(np.argmin(np.abs(np.where(np.isfinite(snr), snr, np.inf) - v))) for v in q}
    return sorted(rows) or [0]


def example_spectra(model, view, rows, strengths=None):
    """The arrays of the example figure for spectra ``rows`` of ``view`` (indices, read in increasing
    order): ``{"wave": (n_pix,) A, "rows": (k,), "snr": (k,), "log_g": (k,), "noisy": (k, n_pix),
    "sigma": (k, n_pix), "clean": (k, n_pix), "strengths": (m,), "denoised": (m, k, n_pix)}`` (float64;
    ``strengths`` None: the model's), plus ``"label"``: the model's label (str)."""
    check_transform(model)
    strengths = _strengths(model, strengths)
    try:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
    except (TypeError, ValueError):
        raise InputError(f"rows: expected indices into the view, got {rows!r}") from None
    if not len(rows) or rows[0] < 0 or rows[-1] >= view.n:
        raise InputError(f"rows: expected at least one index in [0, {view.n}), got {rows.tolist()}")
    flux, sigma = view.read_rows(rows)
    clean = view.read_clean_rows(rows)
    return {"wave": np.asarray(view.wave, float), "rows": rows, "snr": np.asarray(view.snr(), float)[rows],
            "log_g": np.asarray(view.logg, float)[rows], "noisy": flux, "sigma": sigma, "clean": clean,
            "strengths": np.asarray(strengths, float),
            "denoised": np.stack([_denoise(model, flux, sigma, s) for s in strengths]),
            "label": str(getattr(model, "label", None) or type(model).__name__)}


def save_examples(examples, path):
    """Write :func:`example_spectra`'s arrays to ``path`` (.npz, atomically)."""
    from .atomic import atomic_path

    arrays = {k: np.asarray(v) for k, v in examples.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_examples(path):
    """The arrays :func:`save_examples` wrote (``label`` back as str); InputError naming ``path``."""
    keys = ("wave", "noisy", "clean", "strengths", "denoised")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable example spectra ({type(e).__name__}: {e})") from None
    missing = [k for k in keys if k not in out]
    if missing:
        raise InputError(f"{path}: example spectra lack {missing}")
    if "label" in out:
        out["label"] = str(out["label"])
    return out


# -- the Track D summary (rule summarize_denoising) ---------------------------------------------------
def _headline(m):
    """The row of a cell's metrics at its model's own strength (the one downstream models use), else
    the largest strength: ``{"strength", "wmae_improvement", ... }`` overall."""
    rows = m["overall"]["strengths"]
    own = m["model"].get("strength")
    row = next((r for r in rows if own is not None and np.isclose(r["strength"], own)), rows[-1])
    return row


def summarize_transforms(p, docs, model_folders, test_path):
    """What rule summarize_denoising writes: ``(metrics, details, examples)``.

    ``p``: its parameter block (:func:`pfslogg.tracks.track_d.summary_params`: transforms, noise levels,
    seeds, examples, default noise level, sigma mode, test noise seed); ``docs``: the results documents
    of every transform cell (kind ``transform``, metrics of :func:`evaluate_transform`), in the order of
    ``p`` (transform, noise level, seed); ``model_folders``: each transform's model folder at the default
    noise level (seed 0), for the example spectra of the test set ``test_path``.

    ``metrics`` (what the text and tables print): ``{"default_noise_level", "transforms": {variant:
    {"label", "class", "strength", "by_noise": {noise tag: {"noise_level", "n_seeds", "headline": the
    overall row at the model's own strength, "identity": the noisy input's row, "strengths": the overall
    row of every strength, "classes": {pixel class: its row at the headline strength}}}}}}`` (seed 0);
    ``details["cells"][variant][noise tag]``: each cell's whole metrics (per SNR bin too: what the figures
    draw); ``examples``: one dict of arrays per transform (:func:`example_spectra`) of ``p["examples"]``
    test spectra spread over the SNR quantiles."""
    from .data.dataset import SpectraSet
    from .data.views import NoisyView
    from .estimators import load
    from .experiments import noise_tag

    transforms, levels, seeds = p["transforms"], p["noise_levels"], int(p["seeds"])
    if len(docs) != len(transforms) * len(levels) * seeds:
        raise InputError(f"summarize_denoising: {len(docs)} cell results, expected {len(transforms)} transforms x "
                         f"{len(levels)} noise levels x {seeds} seeds")
    out, i, cell_metrics = {}, 0, {}
    for t in transforms:
        entry = None
        for nl in levels:
            cells = docs[i:i + seeds]
            i += seeds
            for d in cells:
                if d["metrics"].get("estimator") != t or not np.isclose(d["metrics"]["noise_level"], nl):
                    raise InputError(f"summarize_denoising: a cell of '{d['metrics'].get('estimator')}' at noise "
                                     f"{d['metrics'].get('noise_level')} where '{t}' at {nl:g} was expected")
            m = cells[0]["metrics"]
            if entry is None:
                entry = {"label": m["label"], "class": m["class"], "strength": m["model"].get("strength"),
                         "by_noise": {}}
            head = _headline(m)
            k = next(i for i, r in enumerate(m["overall"]["strengths"]) if r is head)
            entry["by_noise"][noise_tag(nl)] = {
                "noise_level": float(nl), "n_seeds": len(cells), "headline": head,
                "identity": m["overall"]["identity"], "strengths": m["overall"]["strengths"],
                "classes": {c: v["strengths"][k] for c, v in m["overall"]["classes"].items()}}
            cell_metrics.setdefault(t, {})[noise_tag(nl)] = m
        out[t] = entry
    metrics = {"default_noise_level": float(p["default_noise_level"]), "transforms": out}
    test = SpectraSet(test_path)
    view = NoisyView(test, float(p["default_noise_level"]), noise_seed=p["test_noise_seed"], sigma=p["sigma"])
    k = int(p["examples"])
    rows = example_rows(view, tuple(np.linspace(0.1, 0.9, k)) if k > 1 else (0.5,))
    examples = [example_spectra(load(folder), view, rows) for folder in model_folders]
    details = {"example_rows": [int(r) for r in rows], "cells": cell_metrics}
    return metrics, details, examples


# -- a sampler's spread of log g against the exact posterior (rule sample_posterior) ------------------
SPREAD_BANDS = (0.8, 1.25)   # sd ratio (samples / exact posterior) inside: "comparable"; below: "narrower"


def posterior_stars(snr, n):
    """``n`` rows (increasing, distinct) spread evenly over the SNR order of ``snr``: every SNR is sampled,
    not only the typical one (fewer if there are fewer finite values)."""
    snr = np.asarray(snr, float)
    finite = np.flatnonzero(np.isfinite(snr))
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise InputError(f"stars: expected an integer >= 1, got {n!r}")
    order = finite[np.argsort(snr[finite], kind="stable")]
    if len(order) <= n:
        return np.sort(order)
    return np.unique(order[np.round(np.linspace(0, len(order) - 1, n)).astype(int)])


def _spread_row(t, samples, post_mean, post_sd, ml):
    """Metrics of a group of stars: ``t`` true log g (k,), ``samples`` (n, k) the log g of each drawn
    spectrum, the exact posterior's mean and sd (k,), ``ml`` the fit to the noisy spectrum (k,)."""
    from .evaluation import rank_correlation

    s_mean, s_sd = samples.mean(0), samples.std(0, ddof=1) if len(samples) > 1 else np.zeros(samples.shape[1])
    ratio = s_sd / post_sd
    lo, hi = np.quantile(samples, [0.16, 0.84], axis=0)

    def rms(a):
        return float(np.sqrt(np.mean(np.square(a))))

    med = float(np.median(ratio))
    return {"n": int(len(t)), "sd_ratio_median": med,
            "sd_ratio_q16": float(np.quantile(ratio, 0.16)), "sd_ratio_q84": float(np.quantile(ratio, 0.84)),
            "sd_rank_correlation": rank_correlation(s_sd, post_sd),
            "post_sd_median": float(np.median(post_sd)), "sample_sd_median": float(np.median(s_sd)),
            "coverage68_samples": float(np.mean((t >= lo) & (t <= hi))),
            "coverage68_posterior": float(np.mean(np.abs(t - post_mean) <= post_sd)),
            "mean_offset_rms_z": rms((s_mean - post_mean) / post_sd),
            "rmse_sample_mean": rms(s_mean - t), "rmse_posterior_mean": rms(post_mean - t), "rmse_ml": rms(ml - t),
            "verdict": "narrower" if med < SPREAD_BANDS[0] else "wider" if med > SPREAD_BANDS[1] else "comparable"}


def sample_posterior(sampler, fitter, view, post_mean, post_sd, stars, samples, seed=0, snr_edges=None,
                     min_count=5, examples=3, batch=16):
    """Does a generative denoiser sample the posterior of the clean spectrum? ``(metrics, details)``.

    For ``stars`` test spectra of ``view`` spread over its SNR (:func:`posterior_stars`), ``samples``
    clean spectra are drawn from ``sampler.sample(flux, sigma, n, seed)`` and each is fitted for log g by
    ``fitter.predict(spectrum, sigma)`` (the interpolated maximum-likelihood fit, :mod:`pfslogg.estimators.
    mlfit`, with the star's sigma). If the draws were samples of p(x0 | y), each drawn spectrum would be
    a noiseless model spectrum of parameters drawn from p(theta | y), and the fitted log g would be
    distributed as the exact posterior of log g -- whose mean ``post_mean`` and sd ``post_sd`` (arrays
    over the rows of ``view``: the Bayes ceiling's per-spectrum table of the same test spectra) are
    known. So the spread of the fitted log g over the draws against ``post_sd`` says whether the sampler
    is a posterior sampler (ratio ~1), a denoiser that collapses to one answer (<< 1), or noise (>> 1).

    ``metrics``: ``{"stars", "samples", "seed", "overall": row, "snr_bins": [row + lo, hi]}`` with row =
    :func:`_spread_row` (median sd ratio and its 16/84 % quantiles, rank correlation of the two sds, 68 %
    coverage of the draws' 16-84 % interval and of the exact mean +- sd, rms of the draws' mean offset
    in posterior sds, RMSE of each mean against the true log g, and the word ``verdict``: the draws are
    "narrower", "comparable" or "wider" than the posterior by the median ratio and SPREAD_BANDS);
    ``details``: per star arrays (``rows``, ``snr``, ``log_g``, ``post_mean``, ``post_sd``, ``ml``,
    ``samples`` (samples x stars)) and ``examples``: the stars nearest the 10/50/90 % SNR quantiles.
    Stars are drawn ``batch`` at a time (memory: samples x batch spectra); the result does not depend on it."""
    if not hasattr(sampler, "sample"):
        raise InputError(f"sample_posterior: model '{getattr(sampler, 'class_id', type(sampler).__name__)}' has no "
                         "sample(flux, sigma, n, seed): it is not a generative denoiser")
    if not isinstance(samples, (int, np.integer)) or isinstance(samples, bool) or samples < 2:
        raise InputError(f"samples: expected an integer >= 2 (a spread needs two draws), got {samples!r}")
    post_mean, post_sd = np.asarray(post_mean, float), np.asarray(post_sd, float)
    if post_mean.shape != (view.n,) or post_sd.shape != (view.n,):
        raise InputError(f"sample_posterior: the exact posterior covers {post_mean.shape[0]} spectra, the test "
                         f"view {view.n}: not the same test set")
    from .progress import progress

    rows = posterior_stars(view.snr(), stars)
    flux, sigma = view.read_rows(rows)
    k, n = len(rows), int(samples)
    fitted = np.empty((n, k))
    bar = progress(total=k, desc="posterior draws", unit="star")
    for a in range(0, k, batch):      # a star's draws do not depend on the batch (the sampler's seeding)
        f, s = flux[a:a + batch], sigma[a:a + batch]
        draws = sampler.sample(f, s, n, int(seed))                       # (samples, stars, n_pix)
        fitted[:, a:a + len(f)] = np.asarray(fitter.predict(draws.reshape(n * len(f), -1), np.tile(s, (n, 1))),
                                             float).reshape(n, len(f))
        bar.update(len(f))
    bar.close()
    ml = np.asarray(fitter.predict(flux, sigma), float)
    t, snr = np.asarray(view.logg, float)[rows], np.asarray(view.snr(), float)[rows]
    pm, ps = post_mean[rows], post_sd[rows]
    if not (np.all(np.isfinite(ps)) and np.all(ps > 0)):
        raise InputError("sample_posterior: the exact posterior sd must be finite and > 0 for every star")
    from .evaluation import rows_by_snr

    metrics = {"stars": int(k), "samples": int(samples), "seed": int(seed),
               "overall": _spread_row(t, fitted, pm, ps, ml),
               "snr_bins": [] if snr_edges is None else rows_by_snr(
                   snr, np.asarray(snr_edges, float),
                   lambda sel, b: _spread_row(t[sel], fitted[:, sel], pm[sel], ps[sel], ml[sel]), min_count)}
    q = np.quantile(snr, np.linspace(0.1, 0.9, examples)) if examples > 1 else [np.median(snr)]
    ex = sorted({int(np.argmin(np.abs(snr - v))) for v in q})
    details = {"rows": rows.tolist(), "snr": snr.tolist(), "log_g": t.tolist(), "post_mean": pm.tolist(),
               "post_sd": ps.tolist(), "ml": ml.tolist(), "samples": fitted.tolist(), "examples": ex}
    return metrics, details
