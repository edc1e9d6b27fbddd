"""Interpolation in (T_eff, log_g, M_H, a_M), cubic Hermite (default) and multilinear: exactness,
NumPy/torch agreement, autograd derivatives (continuous across nodes for cubic), range and hole errors."""

import numpy as np
import pytest
import torch

from pfslogg import PARAMS
from pfslogg.errors import InputError
from pfslogg.data.gridio import Grid, read_grid
from pfslogg.data.interp import GridInterpolator

AXES = {
    "T_eff": np.array([3500.0, 4000.0, 4500.0, 5250.0]),   # uneven step on purpose
    "log_g": np.array([1.0, 1.5, 2.0, 3.0, 4.0]),
    "M_H": np.array([-0.5, 0.0, 0.5]),
    "a_M": np.array([0.0, 0.4]),
}
N_PIX = 7


def mesh(axes):
    return np.stack(np.meshgrid(*[axes[p] for p in PARAMS], indexing="ij"), axis=-1)  # (..., 4)


def grid_of(fn, axes=AXES, holes=()):
    """In-memory grid whose node spectra are fn(theta) -> (N_PIX,)."""
    m = mesh(axes)
    flux = np.apply_along_axis(fn, -1, m)
    mask = np.ones(m.shape[:-1], bool)
    for h in holes:
        mask[h] = False
        flux[h] = 0.0  # what an unwritten node of a grid file holds
    return Grid(wave=np.linspace(7100, 8850, N_PIX), axes={p: axes[p] for p in PARAMS}, flux=flux,
                cont=np.ones_like(flux), mask=mask, attrs={"kind": "instrument"})


COEF = np.random.default_rng(0).normal(size=(4, N_PIX))
SCALE = np.array([1e-3, 1.0, 1.0, 1.0])


def linear(theta):
    return 2.0 + (np.asarray(theta) * SCALE) @ COEF


def nonlinear(theta):
    t, g, m, a = theta
    return np.sin(np.arange(N_PIX) + t / 700.0) * np.exp(-0.3 * g) + m**2 * np.cos(np.arange(N_PIX)) + a**3 + t * g / 1e4


def random_points(n, axes=AXES, seed=1):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(axes[p][0], axes[p][-1], n) for p in PARAMS], axis=1)


@pytest.mark.parametrize("method", ["cubic", "linear"])
def test_exact_for_linear_functions(method):
    interp = GridInterpolator(grid_of(linear), method=method)
    theta = random_points(200)
    np.testing.assert_allclose(interp(theta), np.apply_along_axis(linear, 1, theta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["cubic", "linear"])
def test_exact_for_multilinear_cross_terms(method):
    """Both tensor products reproduce T_eff * log_g * M_H products exactly (one cell or many)."""
    fn = lambda th: np.full(N_PIX, th[0] * th[1] * th[2] / 1e3 + th[3] * th[1])
    interp = GridInterpolator(grid_of(fn), method=method)
    theta = random_points(100, seed=4)
    np.testing.assert_allclose(interp(theta)[:, 0], np.apply_along_axis(fn, 1, theta)[:, 0], rtol=1e-12)


@pytest.mark.parametrize("method", ["cubic", "linear"])
def test_reproduces_node_values_exactly(method):
    g = grid_of(nonlinear)
    interp = GridInterpolator(g, method=method)
    nodes = mesh(AXES).reshape(-1, 4)
    np.testing.assert_array_equal(interp(nodes), g.flux.reshape(-1, N_PIX))


def test_reproduces_node_values_of_a_grid_file(tiny_instrument_grid):
    g = read_grid(tiny_instrument_grid)
    interp = GridInterpolator(g)
    idx = [(0, 0, 0, 0), (5, 9, 5, 0), (2, 4, 3, 0)]
    theta = np.array([[g.axes[p][i] for p, i in zip(PARAMS, ix)] for ix in idx])
    out = interp(theta)
    assert out.shape == (3, 4096)
    for row, ix in zip(out, idx):
        np.testing.assert_array_equal(row, g.flux[ix].astype(float))


def test_linear_midpoint_is_mean_of_neighbours():
    g = grid_of(nonlinear)
    interp = GridInterpolator(g, method="linear")
    theta = np.array([[4000.0, 2.5, 0.0, 0.0]])  # halfway between log_g 2 and 3
    np.testing.assert_allclose(interp(theta)[0], 0.5 * (g.flux[1, 2, 1, 0] + g.flux[1, 3, 1, 0]), rtol=1e-12)


def test_cubic_midpoint_on_even_steps_is_catmull_rom():
    """On even steps the cubic is Catmull-Rom: the midpoint is (-f0 + 9 f1 + 9 f2 - f3) / 16."""
    g = grid_of(nonlinear)
    interp = GridInterpolator(g)
    theta = np.array([[4000.0, 1.75, 0.0, 0.0]])  # halfway between log_g 1.5 and 2 (nodes 1.0 .. 2.0 even)
    f = g.flux[1, :, 1, 0]
    # nodes 1.0, 1.5, 2.0, 3.0: the slope at 2.0 spans 1.5..3.0 (uneven), so build it by hand
    m1 = (f[2] - f[0]) / 1.0
    m2 = (f[3] - f[1]) / 1.5
    want = 0.5 * (f[1] + f[2]) + 0.125 * 0.5 * (m1 - m2)
    np.testing.assert_allclose(interp(theta)[0], want, rtol=1e-12)
    even = {**AXES, "log_g": np.array([1.0, 1.5, 2.0, 2.5, 3.0])}
    g = grid_of(nonlinear, axes=even)
    f = g.flux[1, :, 1, 0]
    np.testing.assert_allclose(GridInterpolator(g)(theta)[0], (-f[0] + 9 * f[1] + 9 * f[2] - f[3]) / 16, rtol=1e-12)


def test_cubic_exact_for_quadratics_inside_even_axes():
    """Finite-difference slopes are exact for quadratics on even steps, so the cubic reproduces them
    in every cell but the two end cells (one-sided slopes there)."""
    even = {**AXES, "log_g": np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5])}
    fn = lambda th: np.full(N_PIX, 0.7 * th[1] ** 2 - th[1])
    interp = GridInterpolator(grid_of(fn, axes=even))
    theta = random_points(100, axes=even, seed=8)
    theta[:, 1] = np.random.default_rng(9).uniform(1.5, 3.0, 100)
    np.testing.assert_allclose(interp(theta)[:, 0], 0.7 * theta[:, 1] ** 2 - theta[:, 1], rtol=1e-12)
    linear_interp = GridInterpolator(grid_of(fn, axes=even), method="linear")
    assert np.abs(linear_interp(theta)[:, 0] - (0.7 * theta[:, 1] ** 2 - theta[:, 1])).max() > 1e-3


def _dlogg(interp, theta):
    t = torch.as_tensor(theta).requires_grad_(True)
    out = interp.torch(t)
    return np.stack([torch.autograd.grad(out[:, k].sum(), t, retain_graph=True)[0][:, 1].numpy()
                     for k in range(N_PIX)], axis=1)


def test_cubic_derivative_is_continuous_across_nodes_and_the_central_slope_at_them():
    g = grid_of(nonlinear)
    cubic, lin = GridInterpolator(g), GridInterpolator(g, method="linear")
    node = np.array([[4100.0, 2.0, 0.1, 0.1]])
    below, above = node.copy(), node.copy()
    below[0, 1] -= 1e-9
    above[0, 1] += 1e-9
    np.testing.assert_allclose(_dlogg(cubic, below), _dlogg(cubic, above), rtol=1e-6)
    assert np.abs(_dlogg(lin, below) - _dlogg(lin, above)).max() > 1e-3   # the linear one jumps
    # at the node: the finite difference over the neighbouring nodes 1.5 and 3.0
    lo, hi = node.copy(), node.copy()
    lo[0, 1], hi[0, 1] = 1.5, 3.0
    np.testing.assert_allclose(_dlogg(cubic, node), (cubic(hi) - cubic(lo)) / 1.5, rtol=1e-9)


def test_unknown_method_is_refused():
    with pytest.raises(InputError, match="interpolation method 'spline'"):
        GridInterpolator(grid_of(linear), method="spline")


def test_single_node_axis_has_weight_one():
    axes = dict(AXES, a_M=np.array([0.2]))
    g = grid_of(nonlinear, axes=axes)
    interp = GridInterpolator(g)
    theta = random_points(20, axes=axes)
    assert np.all(theta[:, 3] == 0.2)
    ref = GridInterpolator(grid_of(nonlinear))  # same function, two a_M nodes
    out = interp(theta)
    assert out.shape == (20, N_PIX) and np.all(np.isfinite(out))
    with pytest.raises(InputError, match="a_M"):
        interp(np.array([[4000.0, 2.0, 0.0, 0.0]]))
    # at the a_M node values both grids agree
    nodes = mesh({**AXES, "a_M": np.array([0.0])}).reshape(-1, 4)
    g0 = GridInterpolator(grid_of(nonlinear, axes={**AXES, "a_M": np.array([0.0])}))
    np.testing.assert_allclose(g0(nodes), ref(nodes), rtol=1e-12)


@pytest.mark.parametrize("method", ["cubic", "linear"])
def test_torch_and_numpy_agree(method):
    interp = GridInterpolator(grid_of(nonlinear), method=method)
    theta = random_points(300, seed=2)
    theta[:5] = mesh(AXES).reshape(-1, 4)[[0, 17, 40, 77, -1]]  # nodes, including the last one
    np.testing.assert_allclose(interp.torch(torch.as_tensor(theta)).numpy(), interp(theta), rtol=1e-12, atol=1e-12)


def test_torch_float32_close_to_numpy():
    interp = GridInterpolator(grid_of(nonlinear))
    theta = random_points(50, seed=3)
    out = interp.torch(torch.as_tensor(theta, dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), interp(theta), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", range(4))
def test_linear_autograd_derivative_is_cell_finite_difference(d):
    """Inside a cell the linear model is linear in each parameter: d flux / d theta_d is the
    difference of the values on the cell's two faces divided by the grid step."""
    interp = GridInterpolator(grid_of(nonlinear), method="linear")
    theta = random_points(30, seed=10 + d)
    a = AXES[PARAMS[d]]
    i = np.clip(np.searchsorted(a, theta[:, d], side="right") - 1, 0, len(a) - 2)
    theta[:, d] = np.clip(theta[:, d], a[i] + 1e-6, a[i + 1] - 1e-6)  # strictly inside the cell
    lo, hi = theta.copy(), theta.copy()
    lo[:, d], hi[:, d] = a[i], a[i + 1]
    fd = (interp(hi) - interp(lo)) / (a[i + 1] - a[i])[:, None]

    t = torch.as_tensor(theta).requires_grad_(True)
    out = interp.torch(t)
    grads = np.stack([torch.autograd.grad(out[:, k].sum(), t, retain_graph=True)[0][:, d].numpy()
                      for k in range(N_PIX)], axis=1)
    np.testing.assert_allclose(grads, fd, rtol=1e-9, atol=1e-12)


def test_forward_mode_jvp_matches_backward():
    """Inside torch.func transforms the cell comes from the caller (the tensor cannot be read)."""
    interp = GridInterpolator(grid_of(nonlinear))
    theta_np = random_points(8, seed=5)
    theta = torch.as_tensor(theta_np)
    tangent = torch.zeros_like(theta)
    tangent[:, 1] = 1.0
    stencil = interp.stencil(theta_np)
    _, jv = torch.func.jvp(lambda t: interp.torch(t, stencil), (theta,), (tangent,))
    t = theta.clone().requires_grad_(True)
    out = interp.torch(t)
    back = np.stack([torch.autograd.grad(out[:, k].sum(), t, retain_graph=True)[0][:, 1].numpy()
                     for k in range(N_PIX)], axis=1)
    np.testing.assert_allclose(jv.numpy(), back, rtol=1e-12)


@pytest.mark.parametrize("d,value", [(0, 3000.0), (0, 6000.0), (1, 0.5), (1, 4.5), (2, 0.75), (3, -0.1), (1, np.nan)])
def test_out_of_range_names_the_parameter(d, value):
    interp = GridInterpolator(grid_of(linear))
    theta = np.array([[4000.0, 2.0, 0.0, 0.0], [4000.0, 2.0, 0.0, 0.0]])
    theta[1, d] = value
    with pytest.raises(InputError, match=PARAMS[d]):
        interp(theta)
    with pytest.raises(InputError, match=PARAMS[d]):
        interp.torch(torch.as_tensor(theta))
    with pytest.raises(InputError, match=PARAMS[d]):
        interp.covered(theta)


def test_wrong_number_of_parameters():
    interp = GridInterpolator(grid_of(linear))
    with pytest.raises(InputError, match="T_eff"):
        interp(np.zeros((2, 3)))


# -- holes ----------------------------------------------------------------------------------------
HOLE = (2, 3, 1, 0)  # T_eff 4500, log_g 3.0, M_H 0.0, a_M 0.0


def test_missing_node_needed_raises_and_covered_is_false():
    interp = GridInterpolator(grid_of(nonlinear, holes=[HOLE]))
    needs = np.array([[4600.0, 2.5, 0.2, 0.1],     # cell with the hole as a lower/upper corner
                      [4500.0, 3.0, 0.0, 0.0],     # on the hole itself
                      [4300.0, 3.5, -0.2, 0.3]])
    far = np.array([[3700.0, 1.2, -0.4, 0.1], [5000.0, 1.2, 0.4, 0.3]])
    np.testing.assert_array_equal(interp.covered(np.vstack([needs, far])), [False, False, False, True, True])
    for p in needs:
        with pytest.raises(InputError, match="missing"):
            interp(p[None])
    assert np.all(np.isfinite(interp(far)))


def test_point_on_face_away_from_hole_is_covered():
    """Zero-weight corners do not count: on the log_g = 2 face the log_g = 3 hole has no weight."""
    interp = GridInterpolator(grid_of(nonlinear, holes=[HOLE]))
    on_face = np.array([[4600.0, 2.0, 0.2, 0.1]])
    assert interp.covered(on_face)[0]
    np.testing.assert_allclose(interp(on_face), GridInterpolator(grid_of(nonlinear))(on_face), rtol=1e-12)


def test_torch_missing_node_raises():
    interp = GridInterpolator(grid_of(nonlinear, holes=[HOLE]))
    with pytest.raises(InputError, match="missing"):
        interp.torch(torch.as_tensor([[4600.0, 2.5, 0.2, 0.1]], dtype=torch.float64))
