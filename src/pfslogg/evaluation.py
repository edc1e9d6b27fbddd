"""Metrics: R^2 against the prior variance, MAE, RMSE, bootstrap intervals, metrics per bin of SNR
and per bin of any parameter column ([M/H], T_eff, both).

R^2 everywhere is ``1 - MSE / Var_prior(log g)`` (DESIGN.md), with ``Var_prior`` the variance of
the log g prior of the test set -- for a uniform prior on [lo, hi], (hi - lo)^2 / 12 (4/3 for
[1, 5]). Per-SNR-bin R^2 uses the same denominator, so bins, models and ceilings share one axis.
"""

import numpy as np

from .errors import InputError


def prior_variance(lo, hi):
    """Variance of a uniform prior on [lo, hi]."""
    if not hi > lo:
        raise InputError(f"params.log_g: expected a range with hi > lo, got [{lo}, {hi}]")
    return (hi - lo) ** 2 / 12.0


def r2(y, yhat, var_prior):
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    return float(1.0 - np.mean((yhat - y) ** 2) / var_prior)


def r2_score(y, yhat):
    """R^2 of predictions against their own targets' variance (validation-set model selection;
    the reported R^2 is :func:`r2`, against the prior variance)."""
    y = np.asarray(y, float)
    return float(1.0 - np.mean((np.asarray(yhat, float) - y) ** 2) / np.var(y))


def mae(y, yhat):
    return float(np.mean(np.abs(np.asarray(yhat, float) - np.asarray(y, float))))


def rmse(y, yhat):
    return float(np.sqrt(np.mean((np.asarray(yhat, float) - np.asarray(y, float)) ** 2)))


def bootstrap_r2_ci(y, yhat, var_prior, confidence=0.95, n_resamples=1000, seed=0):
    """Percentile bootstrap interval of R^2 (resampling spectra); (lo, hi).

    The same numbers, bit for bit, as ``scipy.stats.bootstrap(..., method="percentile", vectorized=True,
    random_state=np.random.default_rng(seed))`` with the linear quantile (tests/test_evaluation.py checks
    it): the resampled indices are drawn as scipy draws them, in one batch. Written out here because
    importing scipy.stats costs every cell about 0.7 s, more than the bootstrap itself."""
    sq = (np.asarray(yhat, float) - np.asarray(y, float)) ** 2
    if len(sq) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sq), (int(n_resamples), len(sq)))
    theta = 1.0 - np.mean(sq[idx], axis=-1) / var_prior
    alpha = (1 - confidence) / 2
    lo, hi = _linear_quantile(theta, np.array([alpha, 1 - alpha]))
    return (float(lo), float(hi))


def _linear_quantile(values, p):
    """Quantiles ``p`` of ``values`` by linear interpolation between order statistics (Hyndman & Fan's
    type 7, numpy's default), in the arithmetic of ``scipy.stats.quantile`` so that the digits match."""
    v = np.sort(np.asarray(values, float))
    n = float(len(v))
    jg = p * n + (1 - p)
    jp1 = jg // 1
    j = jp1 - 1
    g = np.where(j < 0, 0.0, jg % 1)
    j = np.clip(j, 0, n - 1).astype(np.int64)
    jp1 = np.clip(jp1, 0, n - 1).astype(np.int64)
    return (1 - g) * v[j] + g * v[jp1]


def bias(y, yhat):
    """Mean of prediction - truth (dex)."""
    return float(np.mean(np.asarray(yhat, float) - np.asarray(y, float)))


def slope(y, yhat):
    """Least-squares slope of the predictions against the true values: 1 without shrinkage, below 1
    when an estimator pulls its answers toward the prior mean (NaN when the truth does not vary)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    vy = np.var(y)
    return float(np.mean((y - y.mean()) * (yhat - yhat.mean())) / vy) if vy > 0 else float("nan")


def summarize(y, yhat, var_prior, n_resamples=1000, seed=0, confidence=0.95):
    """R^2 with its bootstrap CI at ``confidence``, MAE, RMSE, bias, slope and n of a set of predictions."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    if y.shape != yhat.shape:
        raise InputError(f"predictions: shape {yhat.shape} does not match targets {y.shape}")
    if not np.all(np.isfinite(yhat)):
        raise InputError("predictions: contain NaN or infinite values")
    return {"n": int(len(y)), "r2": r2(y, yhat, var_prior),
            "r2_ci": list(bootstrap_r2_ci(y, yhat, var_prior, confidence=confidence, n_resamples=n_resamples,
                                          seed=seed)),
            "mae": mae(y, yhat), "rmse": rmse(y, yhat), "bias": bias(y, yhat), "slope": slope(y, yhat)}


def bin_index(snr, edges):
    """Bin of each SNR value for ``edges`` (len k+1); -1 outside [edges[0], edges[-1])."""
    snr = np.asarray(snr, float)
    i = np.searchsorted(edges, snr, side="right") - 1
    i[(snr < edges[0]) | (snr >= edges[-1])] = -1
    return i


def rank_correlation(a, b):
    """Spearman's rank correlation of ``a`` and ``b``; None where it is undefined (fewer than 3 values, or
    either constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    r = float(spearmanr(a, b)[0])
    return r if np.isfinite(r) else None


def rows_by_snr(snr, edges, row, min_count=10):
    """``[{"lo", "hi", **row(sel, b)}]``, one per SNR bin ``b`` (``lo <= snr < hi`` of ``edges``) that holds at
    least ``min_count`` values; ``sel`` is the bin's boolean mask."""
    idx = bin_index(snr, edges)
    out = []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() >= min_count:
            out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), **row(sel, b)})
    return out


def metrics_by_snr(y, yhat, snr, edges, var_prior, n_resamples=1000, seed=0, min_count=10, confidence=0.95):
    """``summarize`` per SNR bin (bins with fewer than ``min_count`` spectra are skipped)."""
    y, yhat, snr = (np.asarray(a, float) for a in (y, yhat, snr))
    if not (y.shape == yhat.shape == snr.shape):
        raise InputError(f"predictions: shape {yhat.shape} does not match targets {y.shape} and SNR {snr.shape}")
    return rows_by_snr(snr, edges, lambda sel, b: {
        "snr_median": float(np.median(snr[sel])),
        **summarize(y[sel], yhat[sel], var_prior, n_resamples=n_resamples, seed=seed + b, confidence=confidence)},
        min_count)


def param_edges(param_bins, ranges, where="evaluation.param_bins"):
    """``{column: edges}`` of ``param_bins`` (``{column: n | [edges]}``, n equal-width bins over the prior
    ``ranges``): the binning metrics are also reported in (see :func:`metrics_by_params`). A fixed
    parameter (a prior of one value) is left out: it has nothing to bin."""
    from .binning import Binning

    varied = {a: spec for a, spec in (param_bins or {}).items() if a not in ranges or ranges[a][1] > ranges[a][0]}
    return {a: [float(x) for x in e] for a, e in Binning.from_hyper(varied, ranges, where).edges.items()} \
        if varied else {}


def metrics_by_params(y, yhat, params, edges, var_prior, n_resamples=1000, seed=0, min_count=10, confidence=0.95):
    """``summarize`` per bin of each parameter column of ``edges`` and per bin of all of them together:
    ``{"M_H": [rows], "T_eff": [rows], "M_H,T_eff": [rows]}``, each row naming its range on every axis
    (``{"M_H": [lo, hi], ...}``) beside the metrics; the outer edges are closed, bins with fewer than
    ``min_count`` spectra skipped. ``params``: the rows' parameter table (DataFrame)."""
    from .binning import Binning

    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    out = {}
    groups = [[a] for a in edges] + ([list(edges)] if len(edges) > 1 else [])
    for axes in groups:
        b = Binning({a: edges[a] for a in axes})
        x = b.values(params)
        idx, inside = b.index(x), b.inside(x)
        rows = []
        for k in range(b.n_bins):
            sel = inside & (idx == k)
            if sel.sum() < min_count:
                continue
            row = {a: list(r) for a, r in b.bounds(k).items()}
            row.update(summarize(y[sel], yhat[sel], var_prior, n_resamples=n_resamples, seed=seed + k,
                                 confidence=confidence))
            rows.append(row)
        out[",".join(axes)] = rows
    return out


def predict_view(estimator, view, batch=2048, desc="predict test set"):
    """Every prediction ``estimator.predict_all`` offers for the rows of ``view`` (the true parameter
    table passed as ``truth``): ``{name: array (n,)}``, ``""`` the model's own; ``desc``: the progress bar's."""
    from .progress import progress

    out = {}
    bar = progress(total=view.n, desc=desc, unit="spec")
    params = view.params
    for a, b, flux, sigma in view.batches(batch):
        for name, v in estimator.predict_all(flux, sigma, truth=params.iloc[a:b]).items():
            v = np.asarray(v)
            if name not in out:
                out[name] = np.empty(view.n, dtype=np.int64 if v.dtype.kind in "iub" else float)
            out[name][a:b] = v
        bar.update(b - a)
    bar.close()
    return out


LABEL = "label:"   # predict_all keys of the other parameters a model predicts besides log g ("label:T_eff")


def evaluate(estimator, test, var_prior, snr_bins, n_resamples=1000, confidence=0.95, seed=0, batch=2048,
             param_edges=None, ranges=None):
    """Predict the test view with ``estimator``; (metrics, predictions table).

    metrics: ``overall`` and ``snr_bins`` (``summarize`` per SNR bin of the test view at its noise
    level), ``bins`` (per bin of the parameters of ``param_edges``, :func:`metrics_by_params`), all
    against ``var_prior``; for a model that offers alternatives (a mixture of experts: each routing),
    ``alternatives: {name: {"overall": ...}}``. The table has log_g, log_g_pred, snr and the binned
    parameters per spectrum, then ``log_g_pred_<name>`` per alternative and the model's integer
    columns (e.g. a gate's bin). A model that gives a per-star std (``gives_std``) adds the column
    ``log_g_std`` and ``metrics["uncertainty"]`` (:func:`pfslogg.uncertainty.calibration`); one with a
    posterior of its own (a mixture density network) also ``log_g_pit``, its CDF at the true log g. A model that
    predicts other parameters too (``label:<name>``, a multi-label network) adds the column ``<name>_pred``
    and ``metrics["labels"][name]``: ``overall`` and ``snr_bins`` of that parameter scored as log g is,
    against the variance of its uniform prior in ``ranges`` (as the Bayes ceiling's ``labels``).
    """
    from .uncertainty import PIT, STD, calibration

    preds = predict_view(estimator, test, batch)
    pred = preds.pop("")
    std = preds.pop(STD, None)
    exact_pit = preds.pop(PIT, None)
    labels = {k[len(LABEL):]: preds.pop(k) for k in [k for k in preds if k.startswith(LABEL)]}
    y, snr, params = test.logg, test.snr(), test.params
    ev = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    metrics = {"overall": summarize(y, pred, var_prior, **ev),
               "snr_bins": metrics_by_snr(y, pred, snr, snr_bins, var_prior, **ev)}
    if param_edges:
        metrics["bins"] = metrics_by_params(y, pred, params, param_edges, var_prior, **ev)
    table = {"log_g": y, "log_g_pred": pred, "snr": snr, **{a: params[a].to_numpy(float) for a in param_edges or {}}}
    alternatives = {n: v for n, v in preds.items() if v.dtype.kind == "f"}
    if alternatives:
        metrics["alternatives"] = {n: {"overall": summarize(y, v, var_prior, **ev)} for n, v in alternatives.items()}
    table.update({f"log_g_pred_{n}": v for n, v in alternatives.items()})
    table.update({n: v for n, v in preds.items() if v.dtype.kind != "f"})
    if std is not None:   # a per-star std: its coverage and PIT per SNR bin (pfslogg.uncertainty)
        table["log_g_std"] = std
        if exact_pit is not None:
            table["log_g_pit"] = exact_pit
        metrics["uncertainty"] = calibration(y, pred, std, snr, snr_bins, exact_pit=exact_pit)
    if labels:
        metrics["labels"] = {}
        for name, v in labels.items():
            if name not in params or not ranges or name not in ranges:
                raise InputError(f"evaluate: the model predicts '{name}', which the test view's parameters or the "
                                 "prior ranges lack")
            truth, var = params[name].to_numpy(float), prior_variance(*ranges[name])
            metrics["labels"][name] = {"var_prior": var, "overall": summarize(truth, v, var, **ev),
                                       "snr_bins": metrics_by_snr(truth, v, snr, snr_bins, var, **ev)}
            table[f"{name}_pred"] = v
    return metrics, table


# -- paired comparisons on the same test spectra ------------------------------------------------------
# Two models scored on the same test spectra (under the same fixed noise) are compared through their
# squared errors per spectrum: R^2 = 1 - mean(e) / Var_prior, and one set of bootstrap resamples of the
# spectra is shared by every model, so that a difference's interval keeps the pairing (Track B's
# summary, pfslogg.mixtures, and the comparisons of an experiment aggregate, pfslogg.experiments).

# Columns of a predictions table (:func:`evaluate`) that identify a test spectrum whatever the noise level.
ROW_COLUMNS = ("log_g", "M_H", "T_eff")


def same_test_rows(frame, other):
    """Whether two predictions tables hold the same test spectra in the same order: same length, equal
    ``log_g`` and equal values in every other column of :data:`ROW_COLUMNS` both have."""
    if len(frame) != len(other) or "log_g" not in frame or "log_g" not in other:
        return False
    return all(np.array_equal(frame[c].to_numpy(float), other[c].to_numpy(float))
               for c in ROW_COLUMNS if c in frame and c in other)


def boot_weights(n, n_boot, seed):
    """(B, n) resampling counts of the spectra: one multinomial draw per bootstrap replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=int(n_boot)).astype(np.float32)


def squared_errors(frames, column="log_g_pred"):
    """Mean over seeds (one predictions table each) of the squared error of ``column`` per test spectrum."""
    return np.mean([(f[column].to_numpy(float) - f["log_g"].to_numpy(float)) ** 2 for f in frames], axis=0)


class Paired:
    """Paired statistics of models on the same rows: R^2 = 1 - mean(e) / var with e a model's squared
    error per spectrum (mean over seeds); bootstrap replicates from shared resampling weights
    (:func:`boot_weights`); ``rows``: only these spectra (the weights' columns of them)."""

    def __init__(self, weights, var_prior, confidence, rows=None):
        self.w = weights if rows is None else weights[:, rows]
        self.rows, self.var, self.conf = rows, float(var_prior), float(confidence)
        self.n = self.w.shape[1]

    def _sel(self, e):
        return e if self.rows is None else e[self.rows]

    def r2(self, e):
        """(R^2, its bootstrap replicates) of squared errors ``e``."""
        e = self._sel(e)
        return 1.0 - float(e.mean()) / self.var, 1.0 - (self.w @ e) / self.w.sum(1) / self.var

    def interval(self, reps):
        """Percentile interval at the confidence level of replicates (non-finite ones left out);
        [None, None] when none is left."""
        a = (1 - self.conf) / 2
        reps = np.asarray(reps, float)
        reps = reps[np.isfinite(reps)]
        if not len(reps):
            return [None, None]
        return [float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a))]

    def score(self, e):
        """({"r2", "r2_ci"}, replicates) of squared errors ``e``."""
        r, reps = self.r2(e)
        return {"r2": r, "r2_ci": self.interval(reps)}, reps

    def diff(self, value, reps, ref_value, ref_reps):
        """A statistic minus the same of a reference, with the interval of the paired replicates."""
        return {"diff": value - ref_value, "diff_ci": self.interval(reps - ref_reps)}


def verdict(ci):
    """The word for a difference by its interval: "gain" (above zero), "loss" (below zero) or
    "no difference" (containing zero); None without an interval."""
    lo, hi = ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
    if lo is None or hi is None:
        return None
    return "gain" if lo > 0 else ("loss" if hi < 0 else "no difference")
