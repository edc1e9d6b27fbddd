"""Metrics: R^2 against the prior variance, MAE/RMSE, bootstrap intervals, per-SNR-bin metrics."""

import numpy as np
import pytest

from pfslogg.errors import InputError
from pfslogg.evaluation import (
    bin_index,
    bootstrap_r2_ci,
    mae,
    metrics_by_snr,
    prior_variance,
    r2,
    rmse,
    summarize,
)


def test_prior_variance_uniform():
    assert prior_variance(1.0, 5.0) == pytest.approx(4.0 / 3.0, rel=1e-15)
    assert prior_variance(0.0, 1.0) == pytest.approx(1.0 / 12.0)
    # matches the sample variance of a large uniform draw
    x = np.random.default_rng(0).uniform(1, 5, 200_000)
    assert np.var(x) == pytest.approx(prior_variance(1, 5), rel=0.01)


@pytest.mark.parametrize("lo,hi", [(5.0, 1.0), (2.0, 2.0)])
def test_prior_variance_rejects_empty_range(lo, hi):
    with pytest.raises(InputError, match="log_g"):
        prior_variance(lo, hi)


def test_r2_hand_computed():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    yhat = np.array([1.5, 2.0, 2.0, 4.5])
    # errors 0.5, 0, -1, 0.5 -> MSE = (0.25 + 0 + 1 + 0.25) / 4 = 0.375; 1 - 0.375 / (4/3) = 0.71875
    assert r2(y, yhat, 4.0 / 3.0) == 0.71875
    assert mae(y, yhat) == pytest.approx(0.5)
    assert rmse(y, yhat) == pytest.approx(np.sqrt(0.375))


def test_r2_uses_prior_variance_not_sample_variance():
    """Predicting the prior mean gives R^2 = 0 against the prior, whatever the test sample's spread."""
    y = np.array([2.9, 3.0, 3.1])
    assert r2(y, np.full(3, 3.0), prior_variance(1, 5)) == pytest.approx(1 - (0.02 / 3) / (4 / 3))
    y = np.random.default_rng(1).uniform(1, 5, 100_000)
    assert r2(y, np.full_like(y, 3.0), prior_variance(1, 5)) == pytest.approx(0.0, abs=0.01)
    assert r2(y, y, 4 / 3) == 1.0


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    rng = np.random.default_rng(2)
    widths = []
    for n in (100, 1600):
        y = rng.uniform(1, 5, n)
        yhat = y + rng.normal(0, 0.4, n)
        point = r2(y, yhat, 4 / 3)
        lo, hi = bootstrap_r2_ci(y, yhat, 4 / 3, n_resamples=400, seed=0)
        assert lo < point < hi
        widths.append(hi - lo)
    # width ~ 1/sqrt(n): 16x the spectra, ~4x narrower
    assert widths[1] < widths[0] / 2.5


def test_bootstrap_ci_deterministic_and_level():
    rng = np.random.default_rng(3)
    y = rng.uniform(1, 5, 300)
    yhat = y + rng.normal(0, 0.5, 300)
    a = bootstrap_r2_ci(y, yhat, 4 / 3, n_resamples=300, seed=7)
    assert a == bootstrap_r2_ci(y, yhat, 4 / 3, n_resamples=300, seed=7)
    lo68, hi68 = bootstrap_r2_ci(y, yhat, 4 / 3, confidence=0.68, n_resamples=300, seed=7)
    assert a[0] < lo68 and hi68 < a[1]


@pytest.mark.parametrize("n, confidence, n_resamples, seed", [(2, 0.95, 1000, 0), (37, 0.68, 999, 5),
                                                            (2000, 0.95, 1000, 0), (1421, 0.9, 200, 11)])
def test_bootstrap_ci_is_scipys_percentile_bootstrap_bit_for_bit(n, confidence, n_resamples, seed):
    """The interval written out in numpy (no scipy.stats import in every cell) is scipy's, digit for digit:
    the results of runs before the change keep their bytes."""
    from scipy import stats

    rng = np.random.default_rng(n)
    y = rng.uniform(1, 5, n)
    yhat = y + rng.normal(0, 0.7, n)
    sq = (yhat - y) ** 2
    ref = stats.bootstrap((sq,), lambda s, axis=-1: 1.0 - np.mean(s, axis=axis) / (4 / 3), vectorized=True,
                          n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                          random_state=np.random.default_rng(seed)).confidence_interval
    assert bootstrap_r2_ci(y, yhat, 4 / 3, confidence=confidence, n_resamples=n_resamples, seed=seed) == (
        float(ref.low), float(ref.high))


def test_bootstrap_ci_single_point_is_nan():
    assert all(np.isnan(bootstrap_r2_ci([1.0], [2.0], 4 / 3)))


def test_summarize_fields():
    rng = np.random.default_rng(4)
    y = rng.uniform(1, 5, 200)
    yhat = y + rng.normal(0, 0.3, 200)
    s = summarize(y, yhat, 4 / 3, n_resamples=200)
    assert set(s) == {"n", "r2", "r2_ci", "mae", "rmse", "bias", "slope"}
    assert s["n"] == 200 and s["r2"] == pytest.approx(r2(y, yhat, 4 / 3))
    assert abs(s["bias"]) < 0.1 and s["slope"] == pytest.approx(1.0, abs=0.05)
    shrunk = summarize(y, 3 + 0.5 * (y - 3) + 0.2, 4 / 3, n_resamples=50)   # halfway to the mean, +0.2 dex
    assert shrunk["slope"] == pytest.approx(0.5) and shrunk["bias"] == pytest.approx(0.2 + 0.5 * (3 - y.mean()))
    assert s["rmse"] == pytest.approx(0.3, rel=0.15)
    assert s["r2_ci"][0] < s["r2"] < s["r2_ci"][1]


def test_bin_index():
    edges = [2.0, 3.0, 4.5, 7.0]
    np.testing.assert_array_equal(bin_index([1.9, 2.0, 2.9, 3.0, 5.0, 6.99, 7.0, 100.0], edges),
                                  [-1, 0, 0, 1, 2, 2, -1, -1])


def test_metrics_by_snr_bins():
    rng = np.random.default_rng(5)
    n = 3000
    snr = rng.uniform(1.0, 40.0, n)
    y = rng.uniform(1, 5, n)
    yhat = y + rng.normal(0, 1.0, n) * 2.0 / snr   # error shrinks as 1/SNR
    edges = [2.0, 3.0, 4.5, 7.0, 10.0, 15.0, 22.0, 35.0]
    rows = metrics_by_snr(y, yhat, snr, edges, 4 / 3, n_resamples=100)
    assert [(r["lo"], r["hi"]) for r in rows] == list(zip(edges[:-1], edges[1:]))
    counts = [r["n"] for r in rows]
    sel = (snr >= 2) & (snr < 35)
    assert sum(counts) == sel.sum()
    for r in rows:
        assert r["lo"] <= r["snr_median"] < r["hi"]
        inbin = (snr >= r["lo"]) & (snr < r["hi"])
        assert r["r2"] == pytest.approx(r2(y[inbin], yhat[inbin], 4 / 3))   # the same denominator
    assert all(b["r2"] > a["r2"] for a, b in zip(rows, rows[1:]))


def test_metrics_by_snr_skips_sparse_bins():
    snr = np.r_[np.full(50, 2.5), np.full(5, 5.0), np.full(30, 8.0)]
    y = np.linspace(1, 5, len(snr))
    rows = metrics_by_snr(y, y + 0.1, snr, [2.0, 3.0, 7.0, 10.0], 4 / 3, n_resamples=50, min_count=10)
    assert [(r["lo"], r["n"]) for r in rows] == [(2.0, 50), (7.0, 30)]


@pytest.mark.parametrize("yhat", [np.ones(9), np.ones((10, 1)), np.r_[np.ones(9), np.nan], np.r_[np.ones(9), np.inf]])
def test_summarize_rejects_bad_predictions(yhat):
    with pytest.raises(InputError, match="predictions"):
        summarize(np.ones(10), yhat, 4 / 3)


def test_metrics_by_snr_rejects_wrong_length():
    y, snr = np.linspace(1, 5, 100), np.linspace(2, 30, 100)
    with pytest.raises(InputError, match="predictions"):
        metrics_by_snr(y, y[:50], snr, [2.0, 10.0, 35.0], 4 / 3, n_resamples=20)


def test_metrics_by_snr_rejects_nan_predictions():
    y, snr = np.linspace(1, 5, 100), np.linspace(2, 30, 100)
    yhat = y.copy()
    yhat[3] = np.nan
    with pytest.raises(InputError, match="predictions"):
        metrics_by_snr(y, yhat, snr, [2.0, 10.0, 35.0], 4 / 3, n_resamples=20)
