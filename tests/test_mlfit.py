"""The CRLB can be reached: maximum-likelihood fits with the true (cubic, mean-normalised) forward
model have the variance the bound says, at cell centres and next to log g nodes; the exact gradient
at a node is the original study's finite difference; the bound is continuous across nodes."""

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg.ceilings.fisher import cell_profile, fd_jacobian, grid_steps, step_sensitivity
from pfslogg.ceilings.mlfit import ml_fit, ml_fit_scipy, ml_variance
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator, normalization, normalize
from pfslogg.data.noise import ExposureModel
from pfslogg.errors import InputError

from conftest import TINY_RANGES

WHICH = ["log_g", "T_eff", "M_H"]


def sigma_at(interp, theta, snr):
    """PFS noise shape (sky lines) for ``theta`` (B, 4), normalised like the data, at per-pixel SNR ``snr``."""
    flux = interp(theta)
    sig = ExposureModel(interp.wave).sigma(flux, np.full(len(theta), 21.5), np.full(len(theta), 0.8)) / normalization(flux)
    return sig * np.median(normalize(flux) / sig, axis=1, keepdims=True) / snr


@pytest.fixture(scope="module")
def cubic(coarse_instrument_grid):
    return GridInterpolator(read_grid(coarse_instrument_grid))


def test_batched_fit_equals_scipy_least_squares(cubic):
    theta = np.array([[4750.0, 2.25, 0.125, 0.0]] * 3)
    sigma = sigma_at(cubic, theta, 30.0)
    rng = np.random.default_rng(4)
    y = normalize(cubic(theta)) + sigma * rng.standard_normal(sigma.shape)
    start = theta + [[60.0, 0.1, -0.05, 0.0]]
    mine, chi2 = ml_fit(cubic, y, sigma, start, WHICH)
    ref = ml_fit_scipy(cubic, y, sigma, start, WHICH)
    assert np.all(np.abs(mine - ref) <= 1e-5 * np.array([1000, 1, 1, 1])), (mine, ref)
    assert np.all(chi2 < len(cubic.wave) * 1.3)   # a fit, not a failure: chi2 ~ n_pix


@pytest.mark.parametrize("logg", [2.25, 3.75, 3.04, 2.97, 4.01])   # cell centres, within 0.05 dex of a node
def test_ml_reaches_the_crlb_within_20_percent(cubic, logg):
    """400 noise draws at SNR 50: var(ML log g) / CRLB within 20 % (the sampling interval is about
    +-14 %), and the ML estimate is unbiased within 4 standard errors."""
    theta = np.array([4750.0, logg, 0.125, 0.0])
    sigma = sigma_at(cubic, theta[None], 50.0)[0]
    r = ml_variance(cubic, theta, sigma, WHICH, n_draws=400, seed=int(logg * 100))
    assert abs(r["ratio"] - 1) < 0.2, r
    assert r["ratio_ci"][0] < 1 < r["ratio_ci"][1] or abs(r["ratio"] - 1) < 0.2
    assert abs(r["bias"]) < 4 * r["bias_se"], r


def test_the_cubic_bound_is_continuous_across_a_node_and_the_linear_one_jumps(coarse_instrument_grid):
    grid = read_grid(coarse_instrument_grid)
    theta0 = np.array([4750.0, 3.0, 0.125, 0.0])
    sigma = sigma_at(GridInterpolator(grid), theta0[None], 20.0)[0]
    logg = np.array([3.0 - 1e-7, 3.0 + 1e-7])
    jump = {}
    for method in ("cubic", "linear"):
        c = cell_profile(GridInterpolator(grid, method=method), theta0, logg, sigma, TINY_RANGES)
        jump[method] = abs(c[1] / c[0] - 1)
    assert jump["cubic"] < 1e-5
    assert jump["linear"] > 100 * jump["cubic"]


def test_exact_gradient_at_a_node_is_the_original_central_difference(cubic):
    """At a node of an even axis, d flux / d theta of the cubic model is (f(node+1) - f(node-1)) / 2h:
    the original study's finite difference on the grid with step = grid step."""
    theta = np.array([[4500.0, 3.0, 0.25, 0.0]])     # a node of every axis
    steps = grid_steps(cubic, theta)
    _, grad = cubic.derivatives(theta, WHICH)
    for k, name in enumerate(WHICH):
        d = PARAMS.index(name)
        up, down = theta.copy(), theta.copy()
        up[0, d] += steps[0, d]
        down[0, d] -= steps[0, d]
        np.testing.assert_allclose(grad[0, :, k], (cubic(up) - cubic(down))[0] / (2 * steps[0, d]), rtol=1e-10)


def test_finite_differences_converge_to_the_exact_bound(cubic):
    rng = np.random.default_rng(2)
    theta = np.column_stack([rng.uniform(4000, 5500, 20), rng.uniform(1.5, 4.5, 20), rng.uniform(-0.2, 0.6, 20),
                             np.zeros(20)])
    sigma = sigma_at(cubic, theta, 10.0)
    rows = step_sensitivity(cubic, theta, sigma, TINY_RANGES, [1e-4, 1.0])
    assert rows[0]["ratio_p10"] == pytest.approx(1, abs=1e-3) and rows[0]["ratio_p90"] == pytest.approx(1, abs=1e-3)
    assert rows[1]["ratio_median"] != pytest.approx(1, abs=1e-3)   # a full grid step is not a derivative
    J = fd_jacobian(cubic, theta[:2], ["log_g"], 1e-4 * grid_steps(cubic, theta[:2]))
    assert J.shape == (2, len(cubic.wave), 1)


def test_ml_variance_refuses_a_target_other_than_log_g(cubic):
    with pytest.raises(InputError, match="log_g"):
        ml_variance(cubic, np.array([4750.0, 2.25, 0.125, 0.0]), np.ones(len(cubic.wave)), ["T_eff", "log_g"])
