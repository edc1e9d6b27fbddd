"""Metrics: R^2 against the prior variance, MAE, RMSE, bootstrap intervals, per-SNR-bin metrics.

R^2 everywhere is ``1 - MSE / Var_prior(log g)`` (DESIGN.md), with ``Var_prior`` the variance of
the log g prior of the test set -- for a uniform prior on [lo, hi], (hi - lo)^2 / 12 (4/3 for
[1, 5]). Per-SNR-bin R^2 uses the same denominator, so bins, models and ceilings share one axis.
"""

import numpy as np
from scipy import stats

from .errors import InputError


def prior_variance(lo, hi):
    """Variance of a uniform prior on [lo, hi]."""
    if not hi > lo:
        raise InputError(f"params.log_g: expected a range with hi > lo, got [{lo}, {hi}]")
    return (hi - lo) ** 2 / 12.0


def r2(y, yhat, var_prior):
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    return float(1.0 - np.mean((yhat - y) ** 2) / var_prior)


def mae(y, yhat):
    return float(np.mean(np.abs(np.asarray(yhat, float) - np.asarray(y, float))))


def rmse(y, yhat):
    return float(np.sqrt(np.mean((np.asarray(yhat, float) - np.asarray(y, float)) ** 2)))


def bootstrap_r2_ci(y, yhat, var_prior, confidence=0.95, n_resamples=1000, seed=0):
    """Percentile bootstrap interval of R^2 (resampling spectra); (lo, hi)."""
    sq = (np.asarray(yhat, float) - np.asarray(y, float)) ** 2
    if len(sq) < 2:
        return (float("nan"), float("nan"))
    res = stats.bootstrap((sq,), lambda s, axis=-1: 1.0 - np.mean(s, axis=axis) / var_prior,
                          vectorized=True, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


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


def metrics_by_snr(y, yhat, snr, edges, var_prior, n_resamples=1000, seed=0, min_count=10, confidence=0.95):
    """``summarize`` per SNR bin (bins with fewer than ``min_count`` spectra are skipped)."""
    y, yhat, snr = (np.asarray(a, float) for a in (y, yhat, snr))
    if not (y.shape == yhat.shape == snr.shape):
        raise InputError(f"predictions: shape {yhat.shape} does not match targets {y.shape} and SNR {snr.shape}")
    idx = bin_index(snr, edges)
    out = []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() < min_count:
            continue
        row = {"lo": float(edges[b]), "hi": float(edges[b + 1]), "snr_median": float(np.median(snr[sel]))}
        row.update(summarize(y[sel], yhat[sel], var_prior, n_resamples=n_resamples, seed=seed + b,
                             confidence=confidence))
        out.append(row)
    return out


def evaluate(estimator, test, var_prior, snr_bins, n_resamples=1000, confidence=0.95, seed=0, batch=2048):
    """Predict the test view with ``estimator``; (metrics, predictions table).

    metrics: ``overall`` and ``snr_bins`` (``summarize`` per SNR bin of the test view at its noise
    level), all against ``var_prior``. The table has log_g, log_g_pred and snr per spectrum.
    """
    from .progress import progress

    pred = np.empty(test.n)
    bar = progress(total=test.n, desc="predict test set", unit="spec")
    for a, b, flux, sigma in test.batches(batch):
        pred[a:b] = estimator.predict(flux, sigma)
        bar.update(b - a)
    bar.close()
    y, snr = test.logg, test.snr()
    metrics = {"overall": summarize(y, pred, var_prior, n_resamples=n_resamples, seed=seed, confidence=confidence),
               "snr_bins": metrics_by_snr(y, pred, snr, snr_bins, var_prior, n_resamples=n_resamples, seed=seed,
                                          confidence=confidence)}
    return metrics, {"log_g": y, "log_g_pred": pred, "snr": snr}
