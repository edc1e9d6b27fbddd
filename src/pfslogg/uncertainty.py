"""Per-star uncertainties of log g, and how to check them (issue 17).

An estimator that gives a per-star standard deviation says so with the class attribute ``gives_std``
and answers ``predict(flux, sigma, return_std=True)`` with ``(mean, std)`` (scikit-learn style);
:func:`predict_with_std` asks any model for them, with one clear error for a model that gives none.

What a shipped sigma must do, checked per SNR bin by :func:`calibration`:

* **coverage**: the Gaussian interval mean +- z sigma (z = 1 for 68.3 %, 1.96 for 95 %) holds the true
  log g in that share of the stars;
* **PIT**: u = Phi((y - mean) / sigma) is uniform on [0, 1] for a calibrated Gaussian (a U-shaped
  histogram: sigma too small; a hump: too large); reported as the histogram and its largest deviation
  from uniform;
* **against the exact posterior**: where the Bayes ceiling's per-spectrum posterior sd of the same test
  spectra is given, the ratio sigma / posterior sd (median, 16/84 % quantiles, the share within 20 %)
  and the rank correlation of the two -- coverage alone can be right on average and wrong per star.
"""

import numpy as np

from .errors import InputError

STD = "std"                 # the name of the per-star std among a model's predictions (predict_all)
PIT = "pit"                 # ... of the exact PIT of the true log g under a model's own posterior (a mixture's CDF)
LEVELS = (0.683, 0.954)     # the Gaussian one- and two-sigma intervals
PIT_BINS = 10
WITHIN = 0.2                # "within 20 % of the exact posterior sd" (issue 17's target)
TOLERANCE = 0.03            # coverage of a 68 % interval within 68.3 +- 3 points: "calibrated" (issue 17's target)
VARIANCE_LOSSES = ("gaussian_nll", "beta_nll")   # a network's losses that train a variance head (pfslogg.nn.targets)
STD_LOSSES = VARIANCE_LOSSES + ("mdn",)          # ... that give a per-star std (mdn: a mixture posterior's sd)


def predict_with_std(model, flux, sigma):
    """``(mean, std)`` of log g from ``model``; InputError naming its class when it gives no std."""
    if not getattr(model, "gives_std", False):
        raise InputError(f"class '{getattr(model, 'class_id', type(model).__name__)}' gives no per-star "
                         "standard deviation (predict(flux, sigma, return_std=True))")
    mean, std = model.predict(flux, sigma, return_std=True)
    return np.asarray(mean, float), np.asarray(std, float)


def _arrays(y, mean, std, where="calibration"):
    y, mean, std = (np.asarray(a, float) for a in (y, mean, std))
    if not (y.ndim == 1 and y.shape == mean.shape == std.shape):
        raise InputError(f"{where}: y {y.shape}, mean {mean.shape} and std {std.shape} must be equal 1-d shapes")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(y))):
        raise InputError(f"{where}: y and mean must be finite")
    if np.any(np.isnan(std)) or np.any(std < 0):
        raise InputError(f"{where}: std must be >= 0 (inf allowed: no information)")
    return y, mean, std


def coverage(y, mean, std, level):
    """Share of the stars whose true ``y`` lies in mean +- z std, z the two-sided Gaussian quantile."""
    y, mean, std = _arrays(y, mean, std, "coverage")
    if not 0 < level < 1:
        raise InputError(f"coverage: level {level!r}, expected a number in (0, 1)")
    from scipy.stats import norm   # here: importing scipy.stats costs every command that reads a config ~1 s

    z = norm.ppf(0.5 + level / 2)
    return float(np.mean(np.abs(y - mean) <= z * std))


def pit(y, mean, std):
    """Probability integral transform Phi((y - mean) / std) of every star (std 0: 0 or 1 by the sign)."""
    y, mean, std = _arrays(y, mean, std, "pit")
    d = y - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, d / np.where(std > 0, std, 1.0), np.where(d > 0, np.inf, np.where(d < 0, -np.inf, 0.0)))
    from scipy.stats import norm

    return norm.cdf(z)


def interval_verdict(coverage68):
    """"too narrow", "calibrated" or "too wide": a 68 % interval's coverage against 68.3 % +- :data:`TOLERANCE`."""
    if coverage68 < LEVELS[0] - TOLERANCE:
        return "too narrow"
    return "too wide" if coverage68 > LEVELS[0] + TOLERANCE else "calibrated"


def gaussian_kl(mean, std, post_mean, post_sd):
    """KL(N(mean, std^2) || N(post_mean, post_sd^2)) per star, nats: how far a model's Gaussian summary of log g
    lies from the exact posterior's (its mean's offset and its width both count); inf where std is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(post_sd / std) + (std ** 2 + (mean - post_mean) ** 2) / (2 * post_sd ** 2) - 0.5


def _row(y, mean, std, post_sd=None, post_mean=None, exact_pit=None):
    from .evaluation import rank_correlation

    u = pit(y, mean, std) if exact_pit is None else exact_pit
    hist = np.histogram(u, bins=PIT_BINS, range=(0.0, 1.0))[0] / len(u)
    cov = {f"coverage{int(round(100 * lv))}": coverage(y, mean, std, lv) for lv in LEVELS}
    row = {"n": int(len(y)), **cov, "verdict": interval_verdict(cov["coverage68"]),
           "pit_histogram": [float(h) for h in hist], "pit_max_deviation": float(np.max(np.abs(hist * PIT_BINS - 1))),
           "pit_source": "gaussian" if exact_pit is None else "posterior",
           "std_median": float(np.median(std)) if np.all(np.isfinite(std)) else None}
    if exact_pit is not None:   # the central credible intervals of the model's own posterior (not its Gaussian summary)
        row.update({f"credible{int(round(100 * lv))}": float(np.mean(np.abs(u - 0.5) <= lv / 2)) for lv in LEVELS})
    if post_sd is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = std / post_sd
        ok = np.isfinite(ratio)
        rank = rank_correlation(std[ok], post_sd[ok])
        row.update({"post_sd_median": float(np.median(post_sd)),
                    "sd_ratio_median": float(np.median(ratio[ok])) if ok.any() else None,
                    "sd_ratio_q16": float(np.quantile(ratio[ok], 0.16)) if ok.any() else None,
                    "sd_ratio_q84": float(np.quantile(ratio[ok], 0.84)) if ok.any() else None,
                    f"within{int(100 * WITHIN)}": float(np.mean(np.abs(ratio[ok] - 1) <= WITHIN)) if ok.any() else None,
                    "sd_rank_correlation": rank})
        if post_mean is not None:
            kl = gaussian_kl(mean, std, post_mean, post_sd)
            row["kl_median"] = None if np.isnan(kl).any() else float(np.median(kl))
            # a calibrated std has the rms of the model's errors, the posterior sd that of the posterior mean's:
            # std / post_sd cannot come to 1 (in rms) unless the model errs as little as the posterior mean
            row["sd_ratio_rms"] = float(np.sqrt(np.mean(std ** 2) / np.mean(post_sd ** 2)))
            row["sd_ratio_floor"] = float(np.sqrt(np.mean((mean - y) ** 2) / np.mean((post_mean - y) ** 2)))
    return row


def calibration(y, mean, std, snr, edges, post_sd=None, min_count=10, post_mean=None, exact_pit=None):
    """Calibration of per-star ``std`` of log g: ``{"overall": row, "snr_bins": [row + lo, hi]}``.

    row: ``n``, ``coverage68`` and ``coverage95`` (:func:`coverage` at :data:`LEVELS`), ``verdict``
    (:func:`interval_verdict` of coverage68), ``pit_histogram``
    (shares in :data:`PIT_BINS` equal bins; 0.1 each when calibrated) and ``pit_max_deviation`` (largest
    |bin share x bins - 1|), ``std_median``; with ``post_sd`` (the exact posterior sd of the same spectra)
    also ``post_sd_median``, ``sd_ratio_median``/``_q16``/``_q84`` of std / post_sd, ``within20`` (share
    with the ratio within 20 % of 1) and ``sd_rank_correlation``; with ``post_mean`` too, ``kl_median``: the
    median over the stars of :func:`gaussian_kl` to the posterior's Gaussian summary, ``sd_ratio_rms`` =
    rms(std) / rms(post_sd) and ``sd_ratio_floor`` = rms(mean - y) / rms(post_mean - y): what ``sd_ratio_rms``
    is for a calibrated std (whose rms is the model's rms error, as the posterior sd's is the posterior
    mean's), so that no calibrated std of a model that errs more than the posterior mean matches it. ``exact_pit``: the
    model's own posterior CDF at the true log g per star (a mixture density network's): the PIT histogram
    is then that (``pit_source`` "posterior", the exact form of simulation-based calibration ranks, not
    the Gaussian summary's) and ``credible68``/``credible95`` the coverage of its central credible
    intervals. SNR bins (``lo <= snr < hi`` of
    ``edges``) with fewer than ``min_count`` stars are left out; ``coverage68_bins``: the least and the
    largest 68 % coverage over the bins and :func:`bins_verdict` of them (None without bins), with ``bins``,
    ``within_tolerance`` (the bins within 68.3 +- :data:`TOLERANCE`), ``consistent`` (the bins whose coverage lies within :func:`chance_band` of 68.3 %: a calibrated
    interval's coverage scatters by that much over a bin's stars) and that band's least and largest
    half-width (``chance_min``, ``chance_max``); each bin's row has its band (``coverage68_chance``)."""
    from .evaluation import rows_by_snr

    y, mean, std = _arrays(y, mean, std)
    snr = np.asarray(snr, float)
    if snr.shape != y.shape:
        raise InputError(f"calibration: snr {snr.shape}, expected {y.shape}")
    if post_sd is not None:
        post_sd = np.asarray(post_sd, float)
        if post_sd.shape != y.shape or np.any(~(post_sd > 0)):
            raise InputError(f"calibration: the posterior sd must be > 0 for each of the {len(y)} stars, got "
                             f"shape {post_sd.shape}")
    if post_mean is not None:
        post_mean = np.asarray(post_mean, float)
        if post_sd is None or post_mean.shape != y.shape:
            raise InputError(f"calibration: the posterior mean needs its sd and one value for each of the {len(y)} stars")
    if exact_pit is not None:
        exact_pit = np.asarray(exact_pit, float)
        if exact_pit.shape != y.shape or not np.all((exact_pit >= 0) & (exact_pit <= 1)):
            raise InputError(f"calibration: the exact PIT must be one value in [0, 1] for each of the {len(y)} stars")

    def part(a, sel):
        return None if a is None else a[sel]

    bins = rows_by_snr(snr, np.asarray(edges, float),
                       lambda sel, b: _row(y[sel], mean[sel], std[sel], part(post_sd, sel), part(post_mean, sel),
                                           part(exact_pit, sel)),
                       min_count)
    cov = [b["coverage68"] for b in bins]
    for b in bins:
        b["coverage68_chance"] = chance_band(b["n"])
    consistent = sum(abs(b["coverage68"] - LEVELS[0]) <= b["coverage68_chance"] for b in bins)
    return {"overall": _row(y, mean, std, post_sd, post_mean, exact_pit), "snr_bins": bins,
            "coverage68_bins": {"min": float(min(cov)), "max": float(max(cov)), "verdict": bins_verdict(cov),
                                "bins": len(bins), "consistent": int(consistent),
                                "within_tolerance": int(sum(interval_verdict(c) == "calibrated" for c in cov)),
                                "chance_min": float(min(b["coverage68_chance"] for b in bins)),
                                "chance_max": float(max(b["coverage68_chance"] for b in bins))}
            if cov else None}


def chance_band(n, level=LEVELS[0], confidence=0.95):
    """Half-width of the band around ``level`` that the 68 % coverage of a *calibrated* interval over ``n``
    stars falls in with probability ``confidence`` (normal approximation of the binomial): 1.96
    sqrt(0.683 x 0.317 / n), 0.075 for 148 stars, 0.051 for 325 -- wider than :data:`TOLERANCE` below ~920
    stars, so that a bin of a 2,000-star test set can miss 68 +- 3 points by chance (the exact posterior does)."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2) * np.sqrt(level * (1 - level) / max(int(n), 1)))


def bins_verdict(coverages68):
    """"calibrated in every bin" when every SNR bin's 68 % coverage is :func:`interval_verdict`'s
    "calibrated", else "not calibrated in every bin"."""
    ok = all(interval_verdict(c) == "calibrated" for c in coverages68)
    return "calibrated in every bin" if ok else "not calibrated in every bin"


def rescaled_variant(variants, name):
    """The variant whose sigma variant ``name`` rescales (its upstream ``model``: a conformal variant), or None."""
    up = ((variants.get(name) or {}).get("upstream") or {}).get("model")
    up = up if isinstance(up, str) or up is None else up.get("variant")
    return up if up in variants and up != name else None


def variant_label(variants, name):
    """Variant ``name``'s label in the uncertainty check (``variants``: config ``estimators``), naming
    where its std comes from: the model's label ("Template fit", "MLP ensemble (5)"), with "(beta NLL)"
    for a network's variance head, "(quantile intervals)" for LightGBM's, ", trained at mag lo-hi" for a
    simulator variant's own magnitudes (``train_mag``), and ", conformal sigma" (", ... per SNR bin" with
    ``snr_bins``) after the label of the upstream ``model`` whose sigma a conformal variant rescales."""
    from .estimators import make_estimator

    v = variants[name]
    if v.get("label"):   # the variant's own words
        return str(v["label"])
    hyper = v.get("hyper") or {}
    up = rescaled_variant(variants, name)
    if up is not None:
        return f"{variant_label(variants, up)}, conformal sigma{' per SNR bin' if hyper.get('snr_bins') else ''}"
    try:
        label = make_estimator(v["class"], hyper).label
    except (InputError, TypeError, KeyError):   # hyper-parameters of another class: the config check says so
        label = str(v.get("class"))
    loss = hyper.get("loss")
    if loss in VARIANCE_LOSSES:
        label = f"{label} ({loss.replace('_', ' ').replace('nll', 'NLL')})"
    elif loss == "mdn":
        label = f"{label} (posterior, mixture density)"
    elif hyper.get("intervals"):
        label = f"{label} (quantile intervals)"
    mag = v.get("train_mag")
    if isinstance(mag, (list, tuple)) and len(mag) == 2:
        label = f"{label}, trained at mag {mag[0]:g}-{mag[1]:g}"
    return label


def _accuracy(y, pred, var_prior=None):
    """R^2 (against ``var_prior`` when given, as every cell's; else the sample variance), RMSE and bias."""
    from .evaluation import r2_score

    d = np.asarray(pred, float) - y
    r2 = r2_score(y, pred) if var_prior is None else float(1.0 - np.mean(d ** 2) / var_prior)
    return {"r2": r2, "rmse": float(np.sqrt(np.mean(d ** 2))), "bias": float(np.mean(d))}


def _label_accuracy(table, bayes, column, ranges):
    """{parameter: accuracy} of the other parameters ``table`` predicts (columns ``<p>`` + ``column``:
    "_pred" for a model, "post_mean_" as a prefix for the Bayes table), scored against the truth in
    ``bayes`` with the prior variance of ``ranges``."""
    from .evaluation import prior_variance

    out = {}
    for p in sorted(ranges or {}):
        col = column.format(p)
        if p == "log_g" or col not in table or p not in bayes:
            continue
        out[p] = _accuracy(np.asarray(bayes[p], float), np.asarray(table[col], float), prior_variance(*ranges[p]))
    return out


def compare_with_posterior(bayes, tables, edges, min_count=10, ranges=None):
    """Every model's per-star std against the exact posterior of the same test spectra (rule
    check_uncertainties): ``{"estimators": {name: calibration with post_sd}, "bayes": calibration of the
    posterior's own mean +- sd, "accuracy": {"bayes" or name: {r2, rmse, bias[, labels]}}}`` (the accuracy
    of the mean beside its error bar: a calibrated sigma around a poor mean is no achievement; ``labels``:
    the same for the other parameters a model predicts -- a posterior network's T_eff and [M/H] -- and the
    Bayes posterior's means of them, against the prior variance of ``ranges``). ``bayes``: the Bayes ceiling's per-spectrum table (columns log_g, snr,
    post_mean, post_sd); ``tables``: ``{name: predictions table}`` with ``log_g_std`` (a model that gives
    a std), each on the same test spectra in the same order (checked by log_g, M_H, T_eff)."""
    from .evaluation import prior_variance, same_test_rows

    for col in ("log_g", "snr", "post_mean", "post_sd"):
        if col not in bayes:
            raise InputError(f"check_uncertainties: the Bayes table lacks column '{col}'")
    y, snr, post_sd = (np.asarray(bayes[c], float) for c in ("log_g", "snr", "post_sd"))
    var = prior_variance(*ranges["log_g"]) if ranges and "log_g" in ranges else None   # every cell's R^2
    out = {"bayes": calibration(y, np.asarray(bayes["post_mean"], float), post_sd, snr, edges, post_sd=post_sd,
                                min_count=min_count), "estimators": {},
           "accuracy": {"bayes": _accuracy(y, bayes["post_mean"], var)}}
    labels = _label_accuracy(bayes, bayes, "post_mean_{}", ranges)
    if labels:   # the posterior means of the other parameters (T_eff, [M/H]): their ceilings
        out["accuracy"]["bayes"]["labels"] = labels
    for name, t in tables.items():
        if "log_g_std" not in t:
            raise InputError(f"check_uncertainties: '{name}' has no per-star std (column log_g_std): its class "
                             "does not give one, or the cell was scored before it did (rerun the cell)")
        if not same_test_rows(t, bayes):
            raise InputError(f"check_uncertainties: '{name}' was not scored on the Bayes ceiling's test spectra "
                             "(log_g, M_H, T_eff differ)")
        out["estimators"][name] = calibration(y, np.asarray(t["log_g_pred"], float), np.asarray(t["log_g_std"], float),
                                              snr, edges, post_sd=post_sd, min_count=min_count,
                                              post_mean=np.asarray(bayes["post_mean"], float),
                                              exact_pit=np.asarray(t["log_g_pit"], float) if "log_g_pit" in t else None)
        out["accuracy"][name] = _accuracy(y, t["log_g_pred"], var)
        labels = _label_accuracy(t, bayes, "{}_pred", ranges)
        if labels:
            out["accuracy"][name]["labels"] = labels
    return out


def coverage_check(models, view, edges, posterior=None, min_count=10, batch=2048, rescales=None):
    """Coverage of every model's per-star interval on the stars of ``view`` (rule check_coverage): a set
    large enough that chance cannot move a calibrated interval's coverage in any SNR bin by more than
    :data:`TOLERANCE` -- which a 2,000-star test set cannot promise (:func:`chance_band`).

    ``models``: ``{name: fitted estimator that gives_std}``; ``view``: any view of spectra with known
    log g (stars simulated at the test's magnitudes, :class:`~pfslogg.data.simview.SimulatorView`);
    ``posterior``: optional ``(mean, sd)`` of the exact posterior of the same spectra, checked as any
    model's interval (what a calibrated interval does on these stars); ``rescales``: optional ``{name: base}``
    of models that rescale another one's std (a conformal variant and the model among ``models`` it
    rescales): their std is the base's predictions times their factors (``model.rescale``), not a second
    pass of the base model over every star (the ML fit's is minutes), after a check on the first batch
    that this is what the model itself predicts. Returns ``{"n", "n_intervals", "snr_bins": [{lo,
    hi, n}], "bin_n_min", "bin_n_max", "chance_max", "resolves_tolerance", "estimators": {name: calibration},
    "bayes": calibration or None, "accuracy": {name or "bayes": {rmse, bias}}, "calibrated_every_bin": [names],
    "calibrated_count"}``:
    ``resolves_tolerance`` is true when the widest chance band of the bins is within :data:`TOLERANCE`
    (the +-3-point target means something on these stars); ``calibrated_every_bin`` names the intervals
    within it in every bin."""
    from .estimators.conformal import model_snr
    from .evaluation import predict_view, rows_by_snr

    y, snr = np.asarray(view.logg, float), np.asarray(view.snr(), float)
    edges = np.asarray(edges, float)
    counts = rows_by_snr(snr, edges, lambda sel, b: {"n": int(sel.sum())}, min_count)
    if not counts:
        raise InputError(f"check_coverage: none of the {len(y)} stars' SNR falls in a bin of {list(edges)} with "
                         f">= {min_count} stars")
    chance = max(chance_band(c["n"]) for c in counts)
    out = {"n": int(len(y)), "n_intervals": len(models), "snr_bins": counts, "bin_n_min": min(c["n"] for c in counts),
           "bin_n_max": max(c["n"] for c in counts), "chance_max": chance, "resolves_tolerance": bool(chance <= TOLERANCE),
           "estimators": {}, "bayes": None, "accuracy": {}}
    for name, model in models.items():
        if not getattr(model, "gives_std", False):
            raise InputError(f"check_coverage: '{name}' (class '{getattr(model, 'class_id', '?')}') gives no "
                             "per-star standard deviation")
    rescales = {k: b for k, b in (rescales or {}).items() if k in models and b in models and k != b}
    preds, seen_snr = {}, None
    for name in sorted(models, key=lambda k: k in rescales):   # the bases first
        model = models[name]
        if name in rescales:
            base = preds[rescales[name]]
            if seen_snr is None:   # the SNR each model sees (of the noisy flux and the sigma it is given)
                seen_snr = np.concatenate([model_snr(f, s) for _, _, f, s in view.batches(batch)])
            flux, sigma = view.read(0, min(view.n, 256))
            m, sd = model.predict(flux, sigma, return_std=True)
            if not (np.allclose(m, base[""][: len(m)], rtol=1e-6, atol=1e-9)
                    and np.allclose(sd, model.rescale(base[STD][: len(m)], seen_snr[: len(m)]), rtol=1e-6, atol=1e-9)):
                raise InputError(f"check_coverage: '{name}' does not predict '{rescales[name]}''s mean and rescaled "
                                 "std: its upstream model is not that model")
            preds[name] = {"": base[""], STD: model.rescale(base[STD], seen_snr)}
        else:
            preds[name] = predict_view(model, view, batch, desc=f"coverage set: {name}")
    for name in models:
        mean, std, u = preds[name][""], preds[name].get(STD), preds[name].get(PIT)
        out["estimators"][name] = calibration(y, mean, std, snr, edges, min_count=min_count, exact_pit=u)
        d = np.asarray(mean, float) - y
        out["accuracy"][name] = {"rmse": float(np.sqrt(np.mean(d ** 2))), "bias": float(np.mean(d))}
    if posterior is not None:
        pm, ps = (np.asarray(a, float) for a in posterior)
        out["bayes"] = calibration(y, pm, ps, snr, edges, min_count=min_count)
        d = pm - y
        out["accuracy"]["bayes"] = {"rmse": float(np.sqrt(np.mean(d ** 2))), "bias": float(np.mean(d))}
    out["calibrated_every_bin"] = [k for k, c in out["estimators"].items()
                                   if c["coverage68_bins"]["verdict"] == "calibrated in every bin"]
    out["calibrated_count"] = len(out["calibrated_every_bin"])
    return out
