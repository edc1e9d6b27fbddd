"""LightGBM's optional per-star intervals of log g (issue 17): quantile boosters at the Gaussian +-1 sigma
quantiles, their half-width reported as the std.

Made-up, heteroscedastic data (no grid, a few seconds in all): the label is a smooth function of two
"pixels" plus Gaussian noise whose sd grows with a third pixel, so a good interval must be wider where
that pixel is larger.
"""

import copy
import hashlib
import json

import numpy as np
import pytest

from pfslogg.data.views import View
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, load, make_estimator
from pfslogg.estimators.base import MANIFEST
from pfslogg.estimators.boosting import Q16, Q84, STD_FLOOR
from pfslogg.evaluation import r2_score, rank_correlation
from pfslogg.uncertainty import STD, coverage, predict_with_std

N_PIX = 6
# cheap but able to learn: every pixel in every tree (only 6 of them), a short early stop
HYPER = {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20,
         "colsample_bytree": 1.0, "early_stopping_rounds": 20}


class _HeteroView(View):
    """A view of made-up arrays with fixed 'noise': pixels uniform on [0, 1]; log g = 3 + 1.5 sin(2 x0)
    + x1 + e with e ~ N(0, noise_sd), noise_sd = 0.05 + 0.45 x2 (the true per-star sd, kept in ``true_sd``)."""

    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.n, self.noise_level, self.fixed, self.params = n, 1.0, True, None
        self.wave = np.linspace(7100.0, 8850.0, N_PIX)
        self._flux = rng.uniform(0.0, 1.0, (n, N_PIX))
        self._sigma = np.full((n, N_PIX), 0.01)
        self.true_sd = 0.05 + 0.45 * self._flux[:, 2]
        self.clean = 3.0 + 1.5 * np.sin(2.0 * self._flux[:, 0]) + self._flux[:, 1]
        self.logg = self.clean + self.true_sd * rng.standard_normal(n)

    def read_rows(self, rows, rng=None):
        return self._flux[rows], self._sigma[rows]

    def snr(self):
        return np.median(self._flux / self._sigma, axis=1)


@pytest.fixture(scope="module")
def data():
    return _HeteroView(2000, 1), _HeteroView(1000, 2), _HeteroView(2000, 3)


@pytest.fixture(scope="module")
def fits(data):
    """{intervals: fitted LightGBM}, both at random_state 7."""
    train, val, _ = data
    return {on: make_estimator("lightgbm", {**HYPER, "intervals": on}, random_state=7).fit(train, val)
            for on in (False, True)}


def _test_arrays(data):
    test = data[2]
    flux, sigma = test.load(np.float64)
    return test, flux, sigma


def test_intervals_are_off_by_default_and_the_class_says_when_they_are_on(fits):
    cls = REGISTRY["lightgbm"]
    assert cls.provides_std({}) is False and cls.provides_std({"intervals": False}) is False
    assert cls.provides_std({"intervals": True}) is True
    assert make_estimator("lightgbm").intervals is False and make_estimator("lightgbm").gives_std is False
    assert fits[False].gives_std is False and fits[True].gives_std is True
    assert "quantile_iterations" not in fits[False].fitted() and fits[False].quantile_iterations_ is None
    assert (Q16, Q84) == pytest.approx((0.158655, 0.841345), abs=1e-6)
    with pytest.raises(InputError, match=r"estimators.lightgbm.hyper.intervals"):
        cls.check_hyper({"intervals": "yes"}, "estimators.lightgbm.hyper")


def test_without_intervals_return_std_is_refused_by_name(fits, data):
    _, flux, sigma = _test_arrays(data)
    with pytest.raises(InputError, match="lightgbm.*no per-star"):
        predict_with_std(fits[False], flux, sigma)
    with pytest.raises(InputError, match="without intervals"):
        fits[False].predict(flux, sigma, return_std=True)


def test_the_mean_is_the_same_with_intervals_on_or_off(fits, data):
    _, flux, sigma = _test_arrays(data)
    off, on = fits[False], fits[True]
    np.testing.assert_array_equal(on.predict(flux, sigma), off.predict(flux, sigma))
    mean, _ = on.predict(flux, sigma, return_std=True)
    np.testing.assert_array_equal(mean, off.predict(flux, sigma))
    assert on.best_iteration_ == off.best_iteration_ and on.search_ == off.search_
    fitted = on.fitted()
    q = fitted.pop("quantile_iterations")
    assert fitted == off.fitted()
    assert set(q) == {"q16", "q84"} and all(1 <= v <= HYPER["n_estimators"] for v in q.values())


def test_the_std_follows_the_noise_and_covers_about_68_percent(fits, data):
    test, flux, sigma = _test_arrays(data)
    est = fits[True]
    mean, std = predict_with_std(est, flux, sigma)
    assert mean.shape == std.shape == (test.n,) and np.all(std >= STD_FLOOR)
    assert r2_score(test.logg, mean) > 0.6                  # the mean itself has learned something
    rho = rank_correlation(std, test.true_sd)
    cov68 = coverage(test.logg, mean, std, 0.683)
    cov95 = coverage(test.logg, mean, std, 0.954)
    hi, lo = test.true_sd > 0.4, test.true_sd < 0.15
    print(f"LightGBM intervals: rank correlation(std, true sd) = {rho:.3f}, coverage68 = {cov68:.3f}, "
          f"coverage95 = {cov95:.3f}, median std where sd > 0.4: {np.median(std[hi]):.3f}, "
          f"where sd < 0.15: {np.median(std[lo]):.3f}")
    assert rho > 0.5
    assert np.median(std[hi]) > 2 * np.median(std[lo])
    assert 0.5 <= cov68 <= 0.85
    assert cov95 > cov68


def test_crossed_quantiles_give_the_same_positive_std(fits, data):
    _, flux, sigma = _test_arrays(data)
    est = fits[True]
    crossed = copy.copy(est)
    crossed.quantile_boosters_ = {"q16": est.quantile_boosters_["q84"], "q84": est.quantile_boosters_["q16"]}
    crossed.quantile_iterations_ = {"q16": est.quantile_iterations_["q84"], "q84": est.quantile_iterations_["q16"]}
    std = est.predict(flux, sigma, return_std=True)[1]
    np.testing.assert_array_equal(crossed.predict(flux, sigma, return_std=True)[1], std)


def test_predict_all_carries_the_std(fits, data):
    _, flux, sigma = _test_arrays(data)
    out = fits[True].predict_all(flux, sigma)
    mean, std = fits[True].predict(flux, sigma, return_std=True)
    assert set(out) == {"", STD}
    np.testing.assert_array_equal(out[""], mean)
    np.testing.assert_array_equal(out[STD], std)
    assert set(fits[False].predict_all(flux, sigma)) == {""}


def test_save_and_load_round_trip_with_intervals(fits, data, tmp_path):
    _, flux, sigma = _test_arrays(data)
    est = fits[True]
    folder = est.save(tmp_path / "on")
    m = json.loads((folder / MANIFEST).read_text())
    assert set(m["files"]) == {"model.txt", "q16.txt", "q84.txt", "weights.npz"}
    for f, sha in m["files"].items():
        assert sha == hashlib.sha256((folder / f).read_bytes()).hexdigest()
    assert m["hyper"]["intervals"] is True and m["state"]["quantile_iterations_"] == est.quantile_iterations_
    again = load(folder)
    assert again.gives_std is True and again.fitted() == est.fitted()
    for a, b in zip(again.predict(flux, sigma, return_std=True), est.predict(flux, sigma, return_std=True)):
        np.testing.assert_array_equal(a, b)
    mean, std = predict_with_std(again, flux, sigma)
    np.testing.assert_array_equal(std, est.predict(flux, sigma, return_std=True)[1])

    raw = bytearray((folder / "q84.txt").read_bytes())       # one byte changed: refused by its sha256
    raw[len(raw) // 2] ^= 0x01
    (folder / "q84.txt").write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"q84\.txt.*sha256"):
        load(folder)


def test_save_and_load_without_intervals_writes_no_quantile_files(fits, data, tmp_path):
    _, flux, sigma = _test_arrays(data)
    est = fits[False]
    folder = est.save(tmp_path / "off")
    m = json.loads((folder / MANIFEST).read_text())
    assert set(m["files"]) == {"model.txt", "weights.npz"}
    assert m["state"]["quantile_iterations_"] is None and m["hyper"]["intervals"] is False
    assert not (folder / "q16.txt").exists() and not (folder / "q84.txt").exists()
    again = load(folder)
    assert again.gives_std is False and again.fitted() == est.fitted()
    np.testing.assert_array_equal(again.predict(flux, sigma), est.predict(flux, sigma))


def test_a_manifest_whose_intervals_do_not_fit_its_state_is_refused(fits, tmp_path):
    folder = fits[False].save(tmp_path / "m")
    m = json.loads((folder / MANIFEST).read_text())
    m["hyper"]["intervals"] = True                           # says intervals, has no quantile boosters
    (folder / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(InputError, match="intervals"):
        load(folder)
