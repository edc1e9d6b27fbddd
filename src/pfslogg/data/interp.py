"""Multilinear interpolation of a grid in (T_eff, log_g, M_H, a_M).

Two implementations of the same function: NumPy for generating data sets, and PyTorch, which is
differentiable in the parameters, so that Jacobians of the interpolated model come from automatic
differentiation (``fisher``). Axes with a single node contribute weight 1. Interpolating where a
needed corner node is missing (a hole in a real grid) is an error, or -- for data-set drawing --
reported by ``covered`` so the point can be redrawn.
"""

import numpy as np

from .. import PARAMS
from ..errors import InputError


class GridInterpolator:
    """Multilinear interpolator of ``grid.flux`` (and optionally ``grid.cont``)."""

    def __init__(self, grid, what="flux"):
        self.axes = [np.asarray(grid.axes[p], float) for p in PARAMS]
        self.shape = tuple(len(a) for a in self.axes)
        self.mask = np.asarray(grid.mask, bool)
        self.values = np.asarray(getattr(grid, what)).reshape(-1, len(grid.wave))  # (n_nodes, n_pix)
        self.wave = np.asarray(grid.wave)
        self._cache = {}  # values in other dtypes / as torch tensors, made on first use

    # -- cell location -------------------------------------------------------------------------
    def _locate(self, params):
        """Lower node index (B, D) and fractional position t in [0, 1] (B, D)."""
        params = np.atleast_2d(np.asarray(params, float))
        if params.shape[-1] != len(PARAMS):
            raise InputError(f"parameters: expected {len(PARAMS)} columns {PARAMS}, got {params.shape[-1]}")
        idx = np.zeros(params.shape, dtype=np.int64)
        t = np.zeros(params.shape)
        for d, a in enumerate(self.axes):
            x = params[:, d]
            lo, hi = a[0], a[-1]
            if np.any((x < lo - 1e-9) | (x > hi + 1e-9)) or np.any(~np.isfinite(x)):
                bad = x[(x < lo - 1e-9) | (x > hi + 1e-9) | ~np.isfinite(x)][0]
                raise InputError(f"parameter {PARAMS[d]}={bad} is outside the grid's axis [{lo}, {hi}]")
            if len(a) == 1:
                continue
            i = np.clip(np.searchsorted(a, x, side="right") - 1, 0, len(a) - 2)
            idx[:, d] = i
            t[:, d] = np.clip((x - a[i]) / (a[i + 1] - a[i]), 0.0, 1.0)
        return idx, t

    def _corners(self, t):
        """The corner offsets (0/1 per dimension) that can carry weight for this batch."""
        active = [d for d in range(len(PARAMS)) if np.any(t[:, d] > 0)]
        for bits in range(1 << len(active)):
            off = np.zeros(len(PARAMS), dtype=np.int64)
            for k, d in enumerate(active):
                off[d] = (bits >> k) & 1
            yield off

    def covered(self, params):
        """Boolean (B,): True where every corner with non-zero weight exists in the grid."""
        idx, t = self._locate(params)
        ok = np.ones(len(idx), bool)
        for off in self._corners(t):
            w = np.prod(np.where(off == 1, t, 1 - t), axis=1)
            node = np.minimum(idx + off, np.array(self.shape) - 1)
            present = self.mask[tuple(node.T)]
            ok &= present | (w == 0)
        return ok

    def _params_of(self, idx, t):
        """Parameters back from (cell index, fraction)."""
        out = np.zeros(t.shape)
        for d, a in enumerate(self.axes):
            if len(a) == 1:
                out[:, d] = a[0]
            else:
                out[:, d] = a[idx[:, d]] + t[:, d] * (a[idx[:, d] + 1] - a[idx[:, d]])
        return out

    # -- NumPy -----------------------------------------------------------------------------------
    def __call__(self, params, dtype=np.float64):
        """Interpolated spectra, (B, n_pix) of ``dtype`` (float32 is what data sets store; the sum
        is accumulated in place, one corner at a time, so memory is two (B, n_pix) arrays)."""
        idx, t = self._locate(params)
        values = self._values_as(dtype)
        out = np.zeros((len(idx), values.shape[1]), dtype=dtype)
        tmp = np.empty_like(out)
        missing = np.zeros(len(idx), bool)
        for off in self._corners(t):
            w = np.prod(np.where(off == 1, t, 1 - t), axis=1)
            node = np.minimum(idx + off, np.array(self.shape) - 1)
            missing |= ~self.mask[tuple(node.T)] & (w > 0)
            flat = np.ravel_multi_index(tuple(node.T), self.shape)
            np.take(values, flat, axis=0, out=tmp)
            tmp *= w.astype(dtype)[:, None]
            out += tmp
        if missing.any():
            self._missing_error(np.atleast_2d(params)[np.argmax(missing)])
        return out

    def _values_as(self, dtype):
        if self.values.dtype != dtype:
            key = ("np", np.dtype(dtype).str)
            if key not in self._cache:
                self._cache[key] = self.values.astype(dtype)
            return self._cache[key]
        return self.values

    @staticmethod
    def _missing_error(p):
        raise InputError(f"parameters {dict(zip(PARAMS, map(float, p)))} need a grid node that is missing "
                         "(a hole in the grid)")

    # -- PyTorch -------------------------------------------------------------------------------
    def torch_values(self, dtype=None, device="cpu"):
        import torch  # only the differentiable path needs torch (its import costs seconds)

        dtype = torch.float64 if dtype is None else dtype
        key = (dtype, str(device))
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.values, dtype=dtype, device=device)
        return self._cache[key]

    def torch(self, params, cell=None):
        """Differentiable interpolation: params (B, 4) tensor -> (B, n_pix) tensor.

        ``cell``: the result of ``self._locate`` for these parameters, when the caller has it (inside
        ``torch.func`` transforms, where the tensor's values cannot be read).

        Cell indices are found without gradient; the weights are differentiable in the parameters,
        so autograd gives the exact derivative of the piecewise-multilinear model (constant within a
        cell: a finite difference over the grid step, as used by the original study).
        """
        import torch

        values = self.torch_values(params.dtype, params.device)
        idx, t_np = cell if cell is not None else self._locate(params.detach().cpu().numpy())
        for off in self._corners(t_np):
            w = np.prod(np.where(off == 1, t_np, 1 - t_np), axis=1)
            node = np.minimum(idx + off, np.array(self.shape) - 1)
            missing = ~self.mask[tuple(node.T)] & (w > 0)
            if missing.any():
                self._missing_error(self._params_of(idx, t_np)[np.argmax(missing)])
        idx_t = torch.as_tensor(idx, device=params.device)
        t = torch.zeros_like(params)
        for d, a in enumerate(self.axes):
            if len(a) == 1:
                continue
            a_t = torch.as_tensor(a, dtype=params.dtype, device=params.device)
            lo = a_t[idx_t[:, d]]
            hi = a_t[idx_t[:, d] + 1]
            t[:, d] = (params[:, d] - lo) / (hi - lo)
        out = torch.zeros(params.shape[0], values.shape[1], dtype=params.dtype, device=params.device)
        shape = torch.as_tensor(self.shape, device=params.device)
        strides = torch.as_tensor(np.cumprod((self.shape[1:] + (1,))[::-1])[::-1].copy(), device=params.device)
        for off in self._corners(t_np if t_np.size else np.zeros((0, len(PARAMS)))):
            off_t = torch.as_tensor(off, dtype=params.dtype, device=params.device)
            w = torch.prod(off_t * t + (1 - off_t) * (1 - t), dim=1)
            node = torch.minimum(idx_t + torch.as_tensor(off, device=params.device), shape - 1)
            flat = (node * strides).sum(dim=1)
            out = out + w[:, None] * values[flat]
        return out
