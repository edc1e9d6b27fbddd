"""The interpolated maximum-likelihood fit (class ``mlfit``): the template fit's best node refined by
Levenberg-Marquardt on the cubic, mean-normalised grid.

Data sets come from the 512-pixel variant of the tiny grid (``coarse_instrument_grid``), drawn
uniformly in the prior, so their parameters lie between the nodes (log g step 0.5 dex). The generic
interface tests (arguments stored, save/load in a fresh process, manifest) run on it in
``tests/test_estimators.py``.
"""

import json
import re
import shutil

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, load, make_estimator
from pfslogg.estimators.base import MANIFEST
from pfslogg.estimators.mlfit import MLFitEstimator, fixed_slice
from pfslogg.evaluation import prior_variance, r2

from conftest import DEFAULT_NOISE, TINY_RANGES, make_fake_grid

LOGG = PARAMS.index("log_g")
VAR = prior_variance(*TINY_RANGES["log_g"])


@pytest.fixture(scope="module")
def test_set(coarse_instrument_grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("mlfit") / "test.h5"
    simulate_dataset(coarse_instrument_grid, path, 120, TINY_RANGES, seed=21, noise=DEFAULT_NOISE, chunk_size=64)
    return SpectraSet(path)


@pytest.fixture(scope="module")
def fitted(coarse_instrument_grid):
    """(template, mlfit) fitted on the grid alone: neither learns from training data."""
    ctx = FitContext(grid=str(coarse_instrument_grid), ranges=TINY_RANGES)
    return make_estimator("template").fit(None, None, ctx), make_estimator("mlfit").fit(None, None, ctx)


def load_view(test_set, noise_level):
    view = NoisyView(test_set, noise_level, noise_seed=13)
    X, S = view.load(np.float64)
    return view, X, S


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_mlfit_recovers_off_node_parameters_without_noise(fitted, test_set):
    """Noiseless spectra between the nodes: the template fit is stuck on the 0.5 dex node grid, the
    ML fit lands on the truth (to float32 rounding of the data)."""
    template, mlfit = fitted
    view, X, S = load_view(test_set, 0.0)
    truth = view.params[list(PARAMS)].to_numpy()
    g = truth[:, LOGG]
    assert np.mean(np.abs(g - np.round(g * 2) / 2) > 0.05) > 0.7     # most stars well off a node
    e_tmpl, e_ml = rmse(template.predict(X, S), g), rmse(mlfit.predict(X, S), g)
    print(f"noiseless off-node log g RMSE: template {e_tmpl:.3f} dex, mlfit {e_ml:.2g} dex")
    assert e_tmpl > 0.1                      # node quantisation: ~0.5 / sqrt(12) = 0.14 dex
    assert e_ml < 1e-3, e_ml
    assert r2(g, mlfit.predict(X, S), VAR) > 0.99999
    theta = mlfit.fit_params(X, S)
    assert np.max(np.abs(theta[:, 0] - truth[:, 0])) < 1.0                # T_eff, K
    assert np.max(np.abs(theta[:, 2] - truth[:, 2])) < 1e-3               # M_H, dex
    np.testing.assert_array_equal(theta[:, 3], 0.0)                       # a_M: fixed by the prior


def test_mlfit_zero_sigma_weighs_every_pixel_the_same(fitted, test_set):
    """Noise level 0 gives sigma = 0: no division by zero, and the fit is the unweighted one."""
    _, mlfit = fitted
    _, X, S = load_view(test_set, 0.0)
    assert not S.any()
    with np.errstate(divide="raise", invalid="raise"):
        pred = mlfit.predict(X, S)
    assert np.all(np.isfinite(pred))
    np.testing.assert_array_equal(pred, mlfit.predict(X, np.ones_like(S)))


def test_mlfit_beats_template_with_noise_and_stays_in_the_prior(fitted, test_set):
    template, mlfit = fitted
    for nl, margin in ((0.2, 0.01), (1.0, 0.0)):
        view, X, S = load_view(test_set, nl)
        r_t, r_m = r2(view.logg, template.predict(X, S), VAR), r2(view.logg, mlfit.predict(X, S), VAR)
        print(f"noise level {nl}: R2 template {r_t:.4f}, mlfit {r_m:.4f}")
        assert r_m > r_t + margin, (nl, r_t, r_m)
    view, X, S = load_view(test_set, 3.0)        # low SNR: fits that run into the prior's edges are clipped
    theta = mlfit.fit_params(X, S)
    for d, p in enumerate(PARAMS):
        assert TINY_RANGES[p][0] <= theta[:, d].min() and theta[:, d].max() <= TINY_RANGES[p][1], p


def test_mlfit_batches_give_the_same_predictions(coarse_instrument_grid, test_set, fitted):
    ctx = FitContext(grid=str(coarse_instrument_grid), ranges=TINY_RANGES)
    small = make_estimator("mlfit", {"batch": 7}).fit(None, None, ctx)
    _, X, S = load_view(test_set, 1.0)
    np.testing.assert_allclose(small.predict(X, S), fitted[1].predict(X, S), rtol=0, atol=1e-9)


def test_mlfit_save_load_round_trip_and_changed_grid_refused(coarse_instrument_grid, test_set, tmp_path):
    grid = tmp_path / "grid.h5"
    shutil.copy(coarse_instrument_grid, grid)
    est = make_estimator("mlfit", {"iterations": 20}).fit(None, None, FitContext(grid=str(grid), ranges=TINY_RANGES))
    assert est.fitted() == {"n_templates": 225, "varied": ["log_g", "T_eff", "M_H"]}
    est.save(tmp_path / "m")
    m = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert m["class"] == "mlfit" and m["label"] == "Interpolated ML fit" and m["files"] == {}
    assert m["state"]["grid_"]["path"] == str(grid)          # the grid is named, not copied
    _, X, S = load_view(test_set, 1.0)
    again = load(tmp_path / "m")
    assert type(again) is MLFitEstimator and again.iterations == 20
    np.testing.assert_array_equal(again.predict(X, S), est.predict(X, S))
    with open(grid, "ab") as fh:                             # any change of the file
        fh.write(b"\0")
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "m")) + ".*" + re.escape(str(grid)) + ".*changed") as e:
        load(tmp_path / "m")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("hyper, key", [({"batch": 0}, "batch"), ({"batch": 2.5}, "batch"), ({"batch": True}, "batch"),
                                        ({"iterations": 0}, "iterations"), ({"iterations": "30"}, "iterations")])
def test_mlfit_bad_hyper_parameters_named(hyper, key, coarse_instrument_grid):
    with pytest.raises(InputError, match=rf"estimators\.v\.hyper\.{key}: expected an integer >= 1"):
        make_estimator("mlfit", hyper, where="estimators.v.hyper")
    est = MLFitEstimator(**hyper)                            # built around the registry: fit checks too
    with pytest.raises(InputError, match=rf"estimators\.w\.{key}: expected an integer >= 1"):
        est.fit(None, None, FitContext(grid=str(coarse_instrument_grid), ranges=TINY_RANGES, where="estimators.w"))
    with pytest.raises(InputError, match=r"'alpha'.*mlfit"):
        make_estimator("mlfit", {"alpha": 1.0}, where="estimators.v.hyper")


def test_mlfit_needs_the_grid(test_set):
    with pytest.raises(InputError, match="class 'mlfit' needs the instrument grid"):
        make_estimator("mlfit").fit(None, None, FitContext(ranges=TINY_RANGES))


def test_mlfit_refuses_a_grid_with_holes(tmp_path):
    grid = make_fake_grid(tmp_path / "holes.h5", n_pixels=64, holes=[(0, 0, 0, 0), (5, 9, 5, 0)])
    with pytest.raises(InputError, match=re.escape(str(grid)) + ".*needs a grid without holes, 2 node"):
        make_estimator("mlfit").fit(None, None, FitContext(grid=str(grid), ranges=TINY_RANGES))


def test_a_parameter_fixed_on_a_node_is_fitted_on_its_slice(tmp_path):
    """a_M held at a node by the prior: the sliced grid is the same function (bit for bit) where
    the data are, so the fit sees the data sets' model, without the nodes that carry only d/d a_M."""
    axes = {"T_eff": np.arange(4000.0, 5501.0, 500.0), "log_g": np.arange(1.0, 4.01, 1.0),
            "M_H": np.array([-0.5, 0.0, 0.5]), "a_M": np.array([-0.25, 0.0, 0.25])}
    path = make_fake_grid(tmp_path / "am.h5", axes=axes, n_pixels=64)
    ranges = {"T_eff": [4000.0, 5500.0], "log_g": [1.0, 4.0], "M_H": [-0.5, 0.5], "a_M": [0.0, 0.0]}
    grid = read_grid(path, fields=("flux",))
    sliced = fixed_slice(grid, ranges)
    assert sliced.shape == (4, 4, 3, 1) and sliced.flux.shape == (4, 4, 3, 1, 64)
    rng = np.random.default_rng(3)
    theta = np.column_stack([rng.uniform(*ranges[p], 50) for p in PARAMS])
    full, cut = GridInterpolator(grid), GridInterpolator(sliced)
    np.testing.assert_array_equal(cut(theta, dtype=np.float32), full(theta, dtype=np.float32))
    which = ["log_g", "T_eff", "M_H"]
    for a, b in zip(cut.derivatives(theta, which), full.derivatives(theta, which)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    # off a node, or a varied axis: the whole axis stays
    assert fixed_slice(grid, {**ranges, "a_M": [0.1, 0.1]}).shape == (4, 4, 3, 3)
    assert fixed_slice(grid, {**ranges, "a_M": [-0.25, 0.25]}).shape == (4, 4, 3, 3)
    est = make_estimator("mlfit").fit(None, None, FitContext(grid=str(path), ranges=ranges))
    assert est.interp_.shape == (4, 4, 3, 1)
    y = cut(theta[:5], dtype=np.float32).astype(float)
    y /= y.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(est.predict(y, np.zeros_like(y)), theta[:5, LOGG], atol=1e-4)
