"""The estimator interface (fit/predict/save/load) and the classical estimators on small data sets.

Data sets come from the 512-pixel variant of the tiny grid (``coarse_instrument_grid``): Ridge's
eigendecomposition costs n_pix^3, and 4096 pixels would take ~10 s per fit on 2 cores.
"""

import pickle

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, Estimator, LightGBMEstimator, RidgeEstimator, TemplateEstimator, make_estimator
from pfslogg.evaluation import prior_variance, r2
from pfslogg.data.gridio import read_grid

from conftest import DEFAULT_NOISE, TINY_RANGES

ALPHAS = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]   # config/config.yaml
VAR = prior_variance(*TINY_RANGES["log_g"])


@pytest.fixture(scope="module")
def splits(coarse_instrument_grid, tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    out = {}
    for name, n, seed in (("train", 800, 1), ("val", 200, 2), ("test", 200, 3)):
        simulate_dataset(coarse_instrument_grid, root / f"{name}.h5", n, TINY_RANGES, seed=seed,
                         noise=DEFAULT_NOISE, chunk_size=256)
        out[name] = SpectraSet(root / f"{name}.h5")
    return out


@pytest.fixture(scope="module")
def ridge0(splits):
    """Ridge fitted at noise level 0."""
    return RidgeEstimator(alphas=ALPHAS, noise_level=0.0).fit(splits["train"], splits["val"])


def test_registry_has_the_classical_estimators():
    assert {"ridge", "lightgbm", "template"} <= set(REGISTRY)


def test_init_stores_arguments_unchanged():
    alphas = (1.0, 2.0)
    est = make_estimator("ridge", alphas=alphas, noise_level=0.5, random_state=3)
    assert est.alphas is alphas and est.noise_level == 0.5 and est.random_state == 3
    assert not [k for k in vars(est) if k.endswith("_")]   # no learned state before fit


def test_fit_returns_self(splits):
    est = RidgeEstimator(alphas=[1.0], noise_level=0.0)
    assert est.fit(splits["train"], splits["val"]) is est


def test_ridge_noiseless_r2_near_one(ridge0, splits):
    test = splits["test"]
    flux, error = test.read()
    assert r2(test.logg, ridge0.predict(flux, error), VAR) > 0.99


def test_ridge_alpha_chosen_among_configured(ridge0):
    assert ridge0.alpha_ in ALPHAS
    assert set(ridge0.val_scores_) == set(ALPHAS)
    assert ridge0.val_scores_[ridge0.alpha_] == max(ridge0.val_scores_.values())
    s = ridge0.summary()
    assert s["alpha"] == ridge0.alpha_ and s["val_r2_by_alpha"] == ridge0.val_scores_


def test_ridge_streaming_equals_one_chunk(ridge0, splits):
    """Accumulating X^T X chunk by chunk gives the same fit as all rows at once."""
    small = RidgeEstimator(alphas=ALPHAS, noise_level=0.0, chunk=97).fit(splits["train"], splits["val"])
    assert small.alpha_ == ridge0.alpha_
    np.testing.assert_allclose(small.coef_, ridge0.coef_, rtol=1e-6, atol=1e-8 * np.abs(ridge0.coef_).max())
    assert small.intercept_ == pytest.approx(ridge0.intercept_, rel=1e-6)


def test_ridge_matches_sklearn_at_the_chosen_alpha(ridge0, splits):
    from sklearn.linear_model import Ridge

    X, _ = splits["train"].read()
    ref = Ridge(alpha=ridge0.alpha_).fit(X, splits["train"].logg)
    Xt, _ = splits["test"].read()
    np.testing.assert_allclose(ridge0.predict(Xt), ref.predict(Xt), atol=1e-5)


def test_ridge_with_noise_is_worse_but_learns_and_is_seeded(splits):
    a = RidgeEstimator(alphas=ALPHAS, noise_level=1.0, random_state=5).fit(splits["train"], splits["val"])
    b = RidgeEstimator(alphas=ALPHAS, noise_level=1.0, random_state=5).fit(splits["train"], splits["val"])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    test = splits["test"]
    X, E = test.noisy(0, test.n, 1.0, seed=9)
    score = r2(test.logg, a.predict(X, E), VAR)
    assert 0.0 < score < 0.99


def test_predict_before_fit_raises():
    for est in (RidgeEstimator(), LightGBMEstimator(), TemplateEstimator()):
        with pytest.raises(RuntimeError, match="not fitted"):
            est.predict(np.ones((2, 512)), np.ones((2, 512)))


def test_save_before_fit_raises(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeEstimator().save(tmp_path / "m.pkl")
    assert list(tmp_path.iterdir()) == []


def test_save_load_round_trip(ridge0, splits, tmp_path):
    path = tmp_path / "models" / "ridge.pkl"
    ridge0.save(path)
    est = Estimator.load(path)
    assert isinstance(est, RidgeEstimator) and est.alpha_ == ridge0.alpha_
    X, E = splits["test"].read()
    np.testing.assert_array_equal(est.predict(X, E), ridge0.predict(X, E))
    assert [p.name for p in path.parent.iterdir()] == ["ridge.pkl"]


def test_lightgbm_beats_the_mean(splits, tmp_path):
    est = make_estimator("lightgbm", n_estimators=150, learning_rate=0.1, num_leaves=15, colsample_bytree=0.3,
                         early_stopping_rounds=20, noise_level=1.0, random_state=0)
    assert est.fit(splits["train"], splits["val"]) is est
    assert 1 <= est.best_iteration_ <= 150
    test = splits["test"]
    X, E = test.noisy(0, test.n, 1.0, seed=9)
    pred = est.predict(X, E)
    assert pred.shape == (test.n,)
    score = r2(test.logg, pred, VAR)
    assert score > 0.2                               # predicting the mean gives ~0
    assert score > r2(test.logg, np.full(test.n, splits["train"].logg.mean()), VAR) + 0.2
    est.save(tmp_path / "lgb.pkl")
    np.testing.assert_array_equal(Estimator.load(tmp_path / "lgb.pkl").predict(X, E), pred)


def node_spectra(grid_path, ranges):
    """(flux, log g) of every grid node inside ``ranges``, median-normalised like the data sets."""
    g = read_grid(grid_path)
    mesh = np.stack(np.meshgrid(*[g.axes[p] for p in PARAMS], indexing="ij"), axis=-1)
    keep = g.mask.copy()
    for d, p in enumerate(PARAMS):
        keep &= (mesh[..., d] >= ranges[p][0]) & (mesh[..., d] <= ranges[p][1])
    flux = g.flux[keep].astype(float)
    return flux / np.median(flux, axis=1, keepdims=True), mesh[keep]


def test_template_recovers_logg_exactly_at_nodes(coarse_instrument_grid):
    est = TemplateEstimator(grid_path=str(coarse_instrument_grid), ranges=TINY_RANGES).fit()
    flux, theta = node_spectra(coarse_instrument_grid, TINY_RANGES)
    assert len(flux) == len(est.templates_) == 5 * 9 * 5
    # templates only from inside the ranges
    for d, p in enumerate(PARAMS):
        assert est.node_params_[:, d].min() >= TINY_RANGES[p][0] and est.node_params_[:, d].max() <= TINY_RANGES[p][1]
    # any positive error works at noise 0; scale the flux too (the fit has a free scale factor)
    error = 0.05 * flux * np.random.default_rng(0).uniform(0.5, 2.0, flux.shape)
    pred = est.predict(3.7 * flux, 3.7 * error)
    np.testing.assert_array_equal(pred, theta[:, 1])
    assert est.summary() == {"n_templates": 225}


def test_template_on_noisy_data_set(coarse_instrument_grid, splits):
    est = TemplateEstimator(grid_path=str(coarse_instrument_grid), ranges=TINY_RANGES).fit(splits["train"], splits["val"])
    test = splits["test"]
    X, E = test.noisy(0, test.n, 1.0, seed=9)
    pred = est.predict(X, E)
    assert set(np.unique(pred)) <= set(np.arange(1.0, 5.01, 0.5))
    assert r2(test.logg, pred, VAR) > 0.3


def test_template_without_grid_rejected():
    with pytest.raises(InputError, match="grid_path"):
        TemplateEstimator().fit()


def test_template_ranges_without_nodes_rejected(coarse_instrument_grid):
    with pytest.raises(InputError, match="no grid node"):
        TemplateEstimator(grid_path=str(coarse_instrument_grid),
                          ranges={**TINY_RANGES, "T_eff": [4100.0, 4200.0]}).fit()


def test_unknown_estimator_name():
    with pytest.raises(InputError, match="estimators: unknown estimator 'xgboost'"):
        make_estimator("xgboost")


def test_bad_hyperparameter_names_the_estimator():
    with pytest.raises(InputError, match="estimators.ridge"):
        make_estimator("ridge", alpha=3.0)


def test_load_missing_model(tmp_path):
    with pytest.raises(InputError, match="m.pkl.*not found"):
        Estimator.load(tmp_path / "m.pkl")


_GOOD = pickle.dumps(RidgeEstimator(), protocol=pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("content", [
    b"",
    b"not a pickle at all",
    _GOOD[: len(_GOOD) // 2],
    b"\x89HDF\r\n\x1a\n" + bytes(range(64)),
    pickle.dumps({"coef_": [1, 2]}),
    b"cno_such_module\nModel\n.",
    b"I12x\n.",
])
def test_corrupt_model_file(tmp_path, content):
    path = tmp_path / "m.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match="m.pkl"):
        Estimator.load(path)
