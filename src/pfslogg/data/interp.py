"""Interpolation of a grid in (T_eff, log_g, M_H, a_M): the project's forward model between nodes.

``method="cubic"`` (the default, used by data sets, both ceilings and the template fit): a tensor
product of cubic Hermite interpolants, one per axis, whose slope at node k is the finite difference
over its neighbours, ``m_k = (f_{k+1} - f_{k-1}) / (x_{k+1} - x_{k-1})`` (one-sided at the ends of an
axis; Catmull-Rom on even steps, valid on uneven ones). It passes through every node, reproduces
linear functions exactly, and its derivative in every parameter is *continuous* (C1) -- across
nodes as well: at a node it equals ``m_k``; between nodes it varies smoothly. A point needs the
4 nodes around its cell on every axis (fewer at an axis end or exactly on a node).

``method="linear"``: multilinear interpolation (2 nodes per axis). Its derivative is constant
inside a cell (the finite difference over the grid step, as the original study used) and jumps at
every node, so a per-spectrum Cramer-Rao bound computed on it jumps too (median x1.5 across log g
nodes of the default grid), and near a node no estimator reaches it: kept for that comparison
(``pfslogg.ceilings.fisher``) and for grids where a cubic stencil does not fit.

Both weights are polynomials in the fractional position t of the point in its cell: per axis the
weight of the nodes (i-1, i, i+1, i+2) is ``M @ [1, t, t^2, t^3]`` with a constant (4 x 4) matrix
``M`` per point (:meth:`GridInterpolator.stencil`), so the NumPy and PyTorch paths share one
construction and PyTorch differentiates through t. Axes with a single node contribute weight 1.
Interpolating where a needed node is missing (a hole in a real grid) is an error, or -- for
data-set drawing -- reported by ``covered`` so the point can be redrawn.

:func:`normalization` is the project's one flux normalisation: the mean over pixels, a linear
(hence smooth) function of the flux -- unlike the median pixel, whose derivative runs through one
pixel that changes every ~1e-4 of a grid step and makes per-spectrum bounds jitter by x0.8-1.4.
"""

import itertools

import numpy as np

from .. import PARAMS
from ..errors import InputError

METHODS = ("cubic", "linear")
# [1, t, t^2, t^3] coefficients of the Hermite basis h00, h10, h01, h11 and of linear 1 - t, t
_H00, _H10, _H01, _H11 = (np.array(c, float) for c in ([1, 0, -3, 2], [0, 1, -2, 1], [0, 0, 3, -2], [0, 0, -1, 1]))
_L0, _L1 = np.array([1.0, -1, 0, 0]), np.array([0.0, 1, 0, 0])


def normalization(flux):
    """The divisor of the project's flux normalisation: the mean over pixels, shape (..., 1).

    Works on NumPy arrays and torch tensors alike (the Fisher Jacobian differentiates through it)."""
    return flux.mean(axis=-1, keepdims=True)


def normalize(flux):
    """``flux / normalization(flux)``: the clean flux of data sets, templates and ceilings."""
    return flux / normalization(flux)


def axis_stencil(nodes, x, method="cubic"):
    """Interpolation stencil of points ``x`` on one axis with ``nodes``.

    Returns ``(index, M, i, t)``: node indices (B, 4) of the slots (i-1, i, i+1, i+2), clipped to the
    axis; the coefficients M (B, 4 slots, 4 powers) such that the slot weights are
    ``M @ [1, t, t^2, t^3]``; the cell (lower node) i (B,) and the fraction t in [0, 1] (B,).
    """
    nodes = np.asarray(nodes, float)
    x = np.asarray(x, float)
    b, n = len(x), len(nodes)
    M = np.zeros((b, 4, 4))
    rows = np.arange(b)
    if n == 1:
        M[:, 1, 0] = 1.0
        i, t = np.zeros(b, dtype=np.int64), np.zeros(b)
    else:
        i = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, n - 2)
        h = nodes[i + 1] - nodes[i]
        t = np.clip((x - nodes[i]) / h, 0.0, 1.0)
        if method == "linear" or n == 2:   # two nodes: the cubic is the straight line
            M[:, 1] = _L0
            M[:, 2] = _L1
        else:
            M[:, 1] += _H00
            M[:, 2] += _H01
            for k, basis in ((i, _H10), (i + 1, _H11)):   # the slope terms at the cell's two nodes
                lo, hi = np.maximum(k - 1, 0), np.minimum(k + 1, n - 1)
                c = (h / (nodes[hi] - nodes[lo]))[:, None] * basis
                M[rows, hi - i + 1] += c
                M[rows, lo - i + 1] -= c
    index = np.clip(i[:, None] + np.arange(-1, 3), 0, n - 1)
    return index, M, i, t


def _powers(t, xp=np):
    return xp.stack([t**0, t, t * t, t * t * t], axis=-1)


class GridInterpolator:
    """Interpolator of ``grid.flux`` (or ``grid.cont``), cubic (default) or linear (module docstring)."""

    def __init__(self, grid, what="flux", method="cubic"):
        if method not in METHODS:
            raise InputError(f"interpolation method {method!r}: expected one of {list(METHODS)}")
        self.method = method
        self.axes = [np.asarray(grid.axes[p], float) for p in PARAMS]
        self.shape = tuple(len(a) for a in self.axes)
        self.mask = np.asarray(grid.mask, bool)
        self.values = np.asarray(getattr(grid, what)).reshape(-1, len(grid.wave))  # (n_nodes, n_pix)
        self.wave = np.asarray(grid.wave)
        self._cache = {}  # values in other dtypes / as torch tensors, made on first use

    # -- stencils ------------------------------------------------------------------------------
    def _check(self, params):
        params = np.atleast_2d(np.asarray(params, float))
        if params.shape[-1] != len(PARAMS):
            raise InputError(f"parameters: expected {len(PARAMS)} columns {PARAMS}, got {params.shape[-1]}")
        for d, a in enumerate(self.axes):
            x = params[:, d]
            bad = (x < a[0] - 1e-9) | (x > a[-1] + 1e-9) | ~np.isfinite(x)
            if bad.any():
                raise InputError(f"parameter {PARAMS[d]}={x[bad][0]} is outside the grid's axis [{a[0]}, {a[-1]}]")
        return params

    def check_params(self, params):
        """``params`` as float (B, 4), each inside the grid's axes; InputError naming the first outside."""
        return self._check(params)

    def stencil(self, params):
        """Per axis ``(index (B, 4), M (B, 4, 4), cell (B,), t (B,))`` (:func:`axis_stencil`) of ``params``
        (B, 4); pass it to :meth:`torch` inside ``torch.func`` transforms, where values cannot be read."""
        params = self._check(params)
        return [axis_stencil(a, params[:, d], self.method) for d, a in enumerate(self.axes)]

    def axis_slots(self, d, x):
        """[(node index (B,), weight (B,))] of the nodes that carry weight for points ``x`` on axis ``d``."""
        index, M, _, t = axis_stencil(self.axes[d], np.asarray(x, float), self.method)
        w = np.einsum("bsk,bk->bs", M, _powers(t))
        return [(index[:, s], w[:, s]) for s in range(4) if np.any(w[:, s] != 0)]

    def axis_weights(self, d, x):
        """Dense (len(x), n_nodes) interpolation weights of points ``x`` on axis ``d``."""
        W = np.zeros((len(x), self.shape[d]))
        rows = np.arange(len(x))
        for k, w in self.axis_slots(d, x):
            np.add.at(W, (rows, k), w)
        return W

    def _combos(self, st, weights):
        """Yield (flat node index (B,), weight (B,), nodes (B, 4), slots) over the node combinations that
        carry weight; ``weights``: per axis (B, 4) slot weights (NumPy); ``slots``: the slot per axis."""
        active = [[s for s in range(4) if np.any(w[:, s] != 0)] for w in weights]
        for slots in itertools.product(*active):
            node = np.stack([st[d][0][:, s] for d, s in enumerate(slots)], axis=1)
            w = np.prod([weights[d][:, s] for d, s in enumerate(slots)], axis=0)
            yield np.ravel_multi_index(tuple(node.T), self.shape), w, node, slots

    @staticmethod
    def _needs(st):
        """Per axis (B, 4): non-zero where a node takes part in the value *or* the derivative (a node
        whose weight is 0 at a point may still carry its derivative: h10'(0) = 1)."""
        return [np.abs(M).sum(axis=-1) for _, M, _, _ in st]

    @staticmethod
    def _np_weights(st):
        return [np.einsum("bsk,bk->bs", M, _powers(t)) for _, M, _, t in st]

    def covered(self, params):
        """Boolean (B,): True where every node with non-zero weight exists in the grid."""
        st = self.stencil(params)
        ok = np.ones(len(st[0][0]), bool)
        for _, w, node, _ in self._combos(st, self._np_weights(st)):
            ok &= self.mask[tuple(node.T)] | (w == 0)
        return ok

    def _check_present(self, st, weights, params):
        for _, w, node, _ in self._combos(st, weights):
            missing = ~self.mask[tuple(node.T)] & (w != 0)
            if missing.any():
                raise InputError(f"parameters {dict(zip(PARAMS, map(float, params[np.argmax(missing)])))} need "
                                 "a grid node that is missing (a hole in the grid)")

    # -- NumPy -----------------------------------------------------------------------------------
    def _weights_matrix(self, flats, weights, dtype):
        """The sparse (B, n_nodes) CSR matrix whose row b holds weight ``weights[k][b]`` at node
        ``flats[k][b]``, in the order k of the node combinations: ``matrix @ values`` sums, for every
        point and pixel, weight x node value over the combinations in that order -- the arithmetic of
        adding the combinations one at a time (product in ``dtype``, then the running sum), in one pass
        over the nodes' rows instead of one gather of B rows per combination."""
        from scipy.sparse import csr_matrix

        b, k = len(flats[0]), len(flats)
        data = np.stack(weights, axis=1).astype(dtype, copy=False).ravel()
        return csr_matrix((data, np.stack(flats, axis=1).ravel(), np.arange(0, b * k + 1, k)),
                          shape=(b, self.values.shape[0]))

    def __call__(self, params, dtype=np.float64):
        """Interpolated spectra, (B, n_pix) of ``dtype`` (float32 is what data sets store): the weights of
        the node combinations as a sparse matrix times the node values (:meth:`_weights_matrix`)."""
        params = self._check(params)
        st = self.stencil(params)
        weights = self._np_weights(st)
        self._check_present(st, weights, params)
        values = self._values_as(dtype)
        combos = list(self._combos(st, weights))
        if not len(params) or not combos:
            return np.zeros((len(params), values.shape[1]), dtype=dtype)
        W = self._weights_matrix([c[0] for c in combos], [c[1] for c in combos], dtype)
        return np.asarray(W @ values, dtype=dtype)

    def derivatives(self, params, which):
        """Interpolated spectra and their exact derivatives in one pass over the nodes (NumPy, float64):
        ``(flux (B, n_pix), d flux / d theta (B, n_pix, len(which)))`` for the parameter names in
        ``which``. The same function :meth:`torch` differentiates (tests check one against the other),
        without its one pass per parameter."""
        params = self._check(params)
        st = self.stencil(params)
        weights = self._np_weights(st)
        slopes = []
        for d, (_, M, i, t) in enumerate(st):
            a = self.axes[d]
            if len(a) == 1:
                slopes.append(np.zeros_like(weights[d]))
                continue
            dpow = np.stack([np.zeros_like(t), np.ones_like(t), 2 * t, 3 * t * t], axis=-1)
            slopes.append(np.einsum("bsk,bk->bs", M, dpow) / (a[i + 1] - a[i])[:, None])
        needs = self._needs(st)
        self._check_present(st, needs, params)
        dims = [PARAMS.index(p) for p in which]
        values = self._values_as(np.float64)
        flats, value_w, grad_w = [], [], [[] for _ in dims]
        for flat, _, _, slots in self._combos(st, needs):
            w = [weights[d][:, s] for d, s in enumerate(slots)]
            flats.append(flat)
            value_w.append(np.prod(w, axis=0))
            for k, d in enumerate(dims):
                grad_w[k].append(np.prod([slopes[d][:, s] if e == d else w[e] for e, s in enumerate(slots)], axis=0))
        if not len(params) or not flats:
            return np.zeros((len(params), values.shape[1])), np.moveaxis(np.zeros((len(dims), len(params),
                                                                                   values.shape[1])), 0, -1)
        out = np.asarray(self._weights_matrix(flats, value_w, np.float64) @ values)
        grad = np.empty((len(dims), len(params), values.shape[1]))   # contiguous per parameter
        for k in range(len(dims)):
            grad[k] = self._weights_matrix(flats, grad_w[k], np.float64) @ values
        return out, np.moveaxis(grad, 0, -1)

    def _values_as(self, dtype):
        if self.values.dtype != dtype:
            key = ("np", np.dtype(dtype).str)
            if key not in self._cache:
                self._cache[key] = self.values.astype(dtype)
            return self._cache[key]
        return self.values

    # -- PyTorch -------------------------------------------------------------------------------
    def torch_values(self, dtype=None, device="cpu"):
        import torch  # only the differentiable path needs torch (its import costs seconds)

        dtype = torch.float64 if dtype is None else dtype
        key = (dtype, str(device))
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.values, dtype=dtype, device=device)
        return self._cache[key]

    def torch(self, params, stencil=None):
        """Differentiable interpolation: params (B, 4) tensor -> (B, n_pix) tensor.

        ``stencil``: :meth:`stencil` of these parameters, when the caller has it (inside ``torch.func``
        transforms, where the tensor's values cannot be read). The cells and node indices are found
        without gradient; the weights are polynomials in the differentiable fraction t, so autograd
        gives the exact derivative of the interpolated model (continuous for ``cubic``; constant within
        a cell -- the finite difference over the grid step -- for ``linear``).
        """
        import torch

        st = stencil if stencil is not None else self.stencil(params.detach().cpu().numpy())
        needs = self._needs(st)   # every node with a non-zero coefficient takes part, and must exist
        self._check_present(st, needs, np.stack([a[i] + t * (a[np.minimum(i + 1, len(a) - 1)] - a[i])
                                                 for a, (_, _, i, t) in zip(self.axes, st)], axis=1))
        values = self.torch_values(params.dtype, params.device)
        weights = []
        for d, (a, (_, M, i, _)) in enumerate(zip(self.axes, st)):
            M_t = torch.as_tensor(M, dtype=params.dtype, device=params.device)
            if len(a) == 1:
                t = torch.zeros_like(params[:, d])
            else:
                lo = torch.as_tensor(a[i], dtype=params.dtype, device=params.device)
                hi = torch.as_tensor(a[i + 1], dtype=params.dtype, device=params.device)
                t = (params[:, d] - lo) / (hi - lo)
            weights.append(torch.einsum("bsk,bk->bs", M_t, _powers(t, torch)))
        out = torch.zeros(params.shape[0], values.shape[1], dtype=params.dtype, device=params.device)
        for flat, _, _, slots in self._combos(st, needs):
            w = weights[0][:, slots[0]]
            for d in range(1, len(slots)):
                w = w * weights[d][:, slots[d]]
            out = out + w[:, None] * values[torch.as_tensor(flat, device=params.device)]
        return out
