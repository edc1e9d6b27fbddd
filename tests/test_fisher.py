"""Fisher information and the marginal Cramer-Rao bound on log g."""

import numpy as np
import pytest
import torch

from pfslogg import PARAMS
from pfslogg.ceilings.fisher import crlb_logg, fisher_matrix, jacobian, marginal_crlb, normalized_model, r2_max, varied_params
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator, normalization, normalize

from conftest import TINY_RANGES


def toy(seed=0, b=5, n_pix=40, k=3):
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(b, n_pix, k))
    sigma = rng.uniform(0.1, 2.0, size=(b, n_pix))
    return J, sigma


def analytic_crlb(J, sigma):
    """(J^T Sigma^-1 J)^-1 [0, 0] per spectrum, by plain matrix inversion."""
    return np.array([np.linalg.inv(j.T @ np.diag(1 / s**2) @ j)[0, 0] for j, s in zip(J, sigma)])


# -- linear-Gaussian toy model --------------------------------------------------------------------
def test_fisher_matrix_is_jt_sigma_inv_j():
    J, sigma = toy()
    info = fisher_matrix(J, sigma)
    assert info.shape == (5, 3, 3)
    for b in range(5):
        np.testing.assert_allclose(info[b], J[b].T @ np.diag(1 / sigma[b] ** 2) @ J[b], rtol=1e-12)
        np.testing.assert_allclose(info[b], info[b].T)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_marginal_crlb_with_nuisances_equals_inverse(k):
    J, sigma = toy(seed=k, k=k)
    np.testing.assert_allclose(marginal_crlb(fisher_matrix(J, sigma)), analytic_crlb(J, sigma), rtol=1e-10)


def test_marginal_crlb_other_target():
    J, sigma = toy(seed=9, k=3)
    info = fisher_matrix(J, sigma)
    expect = np.array([np.linalg.inv(i)[2, 2] for i in info])
    np.testing.assert_allclose(marginal_crlb(info, target=2), expect, rtol=1e-10)


def test_marginal_crlb_without_nuisances_is_one_over_igg():
    J, sigma = toy(seed=1, k=1)
    info = fisher_matrix(J, sigma)
    np.testing.assert_allclose(marginal_crlb(info), 1.0 / info[:, 0, 0], rtol=1e-14)


def test_nuisances_only_add_uncertainty():
    J, sigma = toy(seed=2, k=3)
    info = fisher_matrix(J, sigma)
    assert np.all(marginal_crlb(info) >= 1.0 / info[:, 0, 0])
    # a nuisance orthogonal to log g (in the noise metric) costs nothing
    J2 = J.copy()
    J2[:, :, 1] = 0.0
    J2[:, :20, 1] = 1.0
    J2[:, :, 0] = 0.0
    J2[:, 20:, 0] = 1.0
    info2 = fisher_matrix(J2[:, :, :2], sigma)
    np.testing.assert_allclose(marginal_crlb(info2), 1.0 / info2[:, 0, 0], rtol=1e-12)


def test_zero_information_gives_infinite_crlb():
    J, sigma = toy(k=2)
    J[1, :, 0] = 0.0
    out = marginal_crlb(fisher_matrix(J, sigma))
    assert np.isinf(out[1]) and np.all(np.isfinite(out[[0, 2, 3, 4]]))


def test_efficient_estimator_reaches_the_bound():
    """In a linear-Gaussian model the GLS estimator is efficient: its variance on theta_0 is the CRLB."""
    rng = np.random.default_rng(3)
    n_pix, k = 60, 3
    A = rng.normal(size=(n_pix, k))
    sigma = rng.uniform(0.5, 1.5, n_pix)
    theta = np.array([2.0, -1.0, 0.5])
    W = np.diag(1 / sigma**2)
    draws = A @ theta + sigma * rng.standard_normal((4000, n_pix))
    est = np.linalg.solve(A.T @ W @ A, A.T @ W @ draws.T)[0]
    crlb = marginal_crlb(fisher_matrix(A[None], sigma[None]))[0]
    assert np.var(est) == pytest.approx(crlb, rel=0.08)
    assert np.mean(est) == pytest.approx(theta[0], abs=4 * np.sqrt(crlb / 4000))


# -- the interpolated grid ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interp(tiny_instrument_grid):
    return GridInterpolator(read_grid(tiny_instrument_grid))


@pytest.fixture(scope="module")
def theta():
    # strictly inside cells (T_eff step 500, log_g 0.5, M_H 0.25)
    return np.array([[4130.0, 1.37, 0.07, 0.0], [5610.0, 4.21, 0.61, 0.0], [3890.0, 2.83, -0.18, 0.0]])


def np_model(interp, theta):
    return normalize(interp(theta))


def test_normalized_model_matches_data_set_normalisation(interp, theta):
    out = normalized_model(interp, torch.as_tensor(theta)).numpy()
    np.testing.assert_allclose(out, np_model(interp, theta), rtol=1e-12)
    np.testing.assert_allclose(out.mean(axis=1), 1.0)


@pytest.mark.parametrize("name", ["log_g", "T_eff", "M_H"])
def test_autograd_jacobian_matches_finite_differences(interp, theta, name):
    d = PARAMS.index(name)
    J = jacobian(interp, theta, [name])
    assert J.shape == (3, 4096, 1)
    # the model (cubic interpolation, mean normalisation) is smooth: a central difference with a
    # step far below the grid step agrees with autograd to its truncation error
    h = {"T_eff": 1e-2, "log_g": 1e-5, "M_H": 1e-5}[name]
    up, down = theta.copy(), theta.copy()
    up[:, d] += h
    down[:, d] -= h
    fd = (np_model(interp, up) - np_model(interp, down)) / (2 * h)
    scale = np.abs(fd).max()
    assert scale > 0
    np.testing.assert_allclose(J[..., 0], fd, atol=1e-7 * scale)


def test_jacobian_columns_in_requested_order(interp, theta):
    J = jacobian(interp, theta, ["log_g", "T_eff", "M_H"])
    assert J.shape == (3, 4096, 3)
    np.testing.assert_allclose(J[..., 1], jacobian(interp, theta, ["T_eff"])[..., 0])


def test_linear_logg_derivative_of_unnormalised_flux_is_grid_difference_over_step(tiny_instrument_grid):
    """As in the original study: with linear interpolation d flux / d log g inside a cell
    = (f(node above) - f(node below)) / step."""
    interp = GridInterpolator(read_grid(tiny_instrument_grid), method="linear")
    theta = np.array([[4500.0, 2.3, 0.25, 0.0]])   # T_eff, M_H at nodes; log_g in [2.0, 2.5]
    t = torch.as_tensor(theta)
    tangent = torch.zeros_like(t)
    tangent[:, 1] = 1.0
    stencil = interp.stencil(theta)
    _, jv = torch.func.jvp(lambda x: interp.torch(x, stencil), (t,), (tangent,))
    hi, lo = theta.copy(), theta.copy()
    hi[0, 1], lo[0, 1] = 2.5, 2.0
    np.testing.assert_allclose(jv.numpy(), (interp(hi) - interp(lo)) / 0.5, rtol=1e-9, atol=1e-12)


def sigma_at_snr(interp, theta, snr, seed=0):
    """A PFS-like noise shape (sky lines), normalised flux, scaled to a per-pixel SNR ``snr``."""
    from pfslogg.data.noise import ExposureModel

    flux = interp(theta)
    sig = ExposureModel(interp.wave).sigma(flux, np.full(len(theta), 21.5), np.full(len(theta), 0.8))
    sig = sig / normalization(flux)
    mu = np_model(interp, theta)
    return sig * np.median(mu / sig, axis=1, keepdims=True) / snr


def test_crlb_scales_as_one_over_snr_squared(interp, theta):
    sigma = sigma_at_snr(interp, theta, 10.0)
    c1 = crlb_logg(interp, theta, sigma, TINY_RANGES)
    c2 = crlb_logg(interp, theta, sigma / 2, TINY_RANGES)
    assert np.all(np.isfinite(c1)) and np.all(c1 > 0)
    np.testing.assert_allclose(c2, c1 / 4, rtol=1e-10)


def test_crlb_logg_equals_manual_pipeline_and_batches(interp, theta):
    sigma = sigma_at_snr(interp, theta, 8.0)
    which = varied_params(TINY_RANGES)
    assert which == ["log_g", "T_eff", "M_H"]
    manual = marginal_crlb(fisher_matrix(jacobian(interp, theta, which), sigma))
    np.testing.assert_allclose(crlb_logg(interp, theta, sigma, TINY_RANGES), manual, rtol=1e-12)
    np.testing.assert_allclose(crlb_logg(interp, theta, sigma, TINY_RANGES, batch=2), manual, rtol=1e-12)


def test_fixing_a_nuisance_tightens_the_bound(interp, theta):
    sigma = sigma_at_snr(interp, theta, 8.0)
    three = crlb_logg(interp, theta, sigma, TINY_RANGES)
    two = crlb_logg(interp, theta, sigma, {**TINY_RANGES, "M_H": [0.0, 0.0]})
    assert np.all(two <= three * (1 + 1e-12))


def test_ceiling_in_a_sensible_range_at_snr_10(interp, theta):
    """Physics sanity: the fake stars carry information on log g: at SNR 10 the ceiling is far from 0."""
    crlb = crlb_logg(interp, theta, sigma_at_snr(interp, theta, 10.0), TINY_RANGES)
    r2m = r2_max(crlb, 4 / 3)
    assert np.all(r2m > 0.5) and np.all(r2m < 1)


def test_varied_params():
    assert varied_params({"T_eff": [4000, 5000], "log_g": [1, 5], "M_H": [0, 0], "a_M": [0, 0.4]}) == ["log_g", "T_eff", "a_M"]
    assert varied_params({"T_eff": [4000, 4000], "log_g": [1, 5], "M_H": [0, 0], "a_M": [0, 0]}) == ["log_g"]


def test_r2_max_clipping():
    var = 4 / 3
    out = r2_max(np.array([0.0, var / 4, var, 2 * var, np.inf]), var)
    np.testing.assert_allclose(out, [1.0, 0.75, 0.0, 0.0, 0.0])
    assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("method", ["cubic", "linear"])
def test_analytic_jacobian_equals_autograd(tiny_instrument_grid, method):
    """The one-pass analytic derivative and PyTorch's forward-mode AD differentiate the same model,
    on nodes (where a zero weight still carries a derivative) and between them."""
    from pfslogg.ceilings.fisher import jacobian_autograd

    interp = GridInterpolator(read_grid(tiny_instrument_grid), method=method)
    theta = np.array([[4130.0, 1.37, 0.07, 0.0], [4500.0, 3.0, 0.25, 0.0], [5999.0, 4.99, 0.74, 0.0]])
    which = ["log_g", "T_eff", "M_H"]
    np.testing.assert_allclose(jacobian(interp, theta, which), jacobian_autograd(interp, theta, which),
                               rtol=1e-9, atol=1e-12)
