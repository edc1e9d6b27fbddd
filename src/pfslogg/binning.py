"""Bins of stellar parameters: the regions a mixture of experts gives one expert each (Track B), and
the bins of [M/H] and T_eff that metrics are reported in (``evaluation.param_bins``).

A :class:`Binning` is a product of per-axis edges over parameter columns (``M_H``, ``T_eff``, ...):
bin ``k`` of a 3 x 3 binning over ([M/H], T_eff) is one cell of that grid, numbered in C order
(the last axis fastest). The outer edges are *open* for routing: a parameter estimate beyond the
prior's range belongs to the nearest outer bin (and is counted as outside by :meth:`inside`), so
every spectrum has an expert -- the explicit answer to "what does the tenth expert do" -- while
the edges themselves must cover the prior (:meth:`from_hyper` refuses bins that leave part of it
without an expert).
"""

import re

import numpy as np
from scipy import special

from .errors import InputError

LABELS = {"M_H": "[M/H]", "T_eff": "T_eff", "log_g": "log g", "a_M": "[a/M]"}
# how the plain names in labels ("3 [M/H] x 3 T_eff bins") are typeset (LaTeX and matplotlib's mathtext alike)
SYMBOLS = {"T_eff": r"$T_\mathrm{eff}$", " x ": r" $\times$ ", "beta-NLL": r"$\beta$-NLL",
           "beta NLL": r"$\beta$-NLL"}


def typeset_symbols(text, escape=str):
    """``text`` with each name of :data:`SYMBOLS` typeset and the rest passed through ``escape``."""
    out = re.split("(" + "|".join(re.escape(k) for k in SYMBOLS) + ")", str(text))
    return "".join(SYMBOLS[p] if p in SYMBOLS else escape(p) for p in out)


def short(x):
    """A bin edge as a label: 3 significant digits, whole numbers above 100 (K)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


class Binning:
    """Per-axis bin edges ``{column: [e0, e1, ...]}`` (increasing, at least two each)."""

    def __init__(self, edges):
        if not edges:
            raise InputError("bins: expected at least one parameter axis")
        self.edges = {str(a): np.asarray(e, float) for a, e in edges.items()}
        for a, e in self.edges.items():
            if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0) or not np.all(np.isfinite(e)):
                raise InputError(f"bins.{a}: expected at least two increasing finite edges, got {e.tolist()}")

    @classmethod
    def from_hyper(cls, bins, ranges, where="bins"):
        """Edges from a hyper-parameter ``{column: n | [edges]}``: ``n`` equal-width bins over the prior
        range ``ranges[column]`` or explicit edges, which must cover that range (else InputError naming
        ``where.column``)."""
        if not isinstance(bins, dict) or not bins:
            raise InputError(f"{where}: expected a mapping of parameter -> number of bins or list of edges, "
                             f"got {bins!r}")
        edges = {}
        for axis, spec in bins.items():
            key = f"{where}.{axis}"
            if axis not in (ranges or {}):
                raise InputError(f"{key}: not a parameter with a prior range ({', '.join(sorted(ranges or {}))})")
            lo, hi = (float(v) for v in ranges[axis])
            if isinstance(spec, bool) or not isinstance(spec, (int, list, tuple)):
                raise InputError(f"{key}: expected a number of bins or a list of edges, got {spec!r}")
            if isinstance(spec, int):
                if spec < 1:
                    raise InputError(f"{key}: expected at least 1 bin, got {spec}")
                # a fixed parameter (a prior of one value) is one bin, whatever the number asked for
                edges[axis] = np.linspace(lo, hi, spec + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
                continue
            e = [float(v) for v in spec]
            if len(e) < 2 or any(b <= a for a, b in zip(e, e[1:])):
                raise InputError(f"{key}: expected at least two increasing edges, got {list(spec)}")
            if e[0] > lo + 1e-9 or e[-1] < hi - 1e-9:
                raise InputError(f"{key}: edges [{e[0]:g}, {e[-1]:g}] do not cover the prior [{lo:g}, {hi:g}]: "
                                 "stars outside every bin would have no expert")
            edges[axis] = np.asarray(e)
        return cls(edges)

    def to_json(self):
        return {a: [float(x) for x in e] for a, e in self.edges.items()}

    @property
    def axes(self):
        return list(self.edges)

    @property
    def shape(self):
        return tuple(len(e) - 1 for e in self.edges.values())

    @property
    def n_bins(self):
        return int(np.prod(self.shape))

    def bounds(self, k):
        """``{axis: (lo, hi)}`` of bin ``k``."""
        idx = np.unravel_index(int(k), self.shape)
        return {a: (float(e[i]), float(e[i + 1])) for (a, e), i in zip(self.edges.items(), idx)}

    def labels(self):
        """One short label per bin: "[M/H] -0.25..0.0833, T_eff 3750..4500"."""
        out = []
        for k in range(self.n_bins):
            out.append(", ".join(f"{LABELS.get(a, a)} {short(lo)}..{short(hi)}" for a, (lo, hi) in self.bounds(k).items()))
        return out

    def values(self, params):
        """(B, n_axes) float values of the binned columns of a parameter table (DataFrame)."""
        missing = [a for a in self.axes if a not in params.columns]
        if missing:
            raise InputError(f"bins: the parameter table has no column {missing[0]!r}")
        return params[self.axes].to_numpy(float)

    def _axis_index(self, x, e):
        return np.clip(np.searchsorted(e, x, side="right") - 1, 0, len(e) - 2)

    def index(self, values):
        """Bin of each row of ``values`` (B, n_axes); outer edges open (beyond them: the outer bin)."""
        values = np.atleast_2d(np.asarray(values, float))
        idx = [self._axis_index(values[:, j], e) for j, e in enumerate(self.edges.values())]
        return np.ravel_multi_index(idx, self.shape).astype(np.int64)

    def inside(self, values):
        """Whether each row lies within the outer edges on every axis (bool, B)."""
        values = np.atleast_2d(np.asarray(values, float))
        ok = np.ones(len(values), bool)
        for j, e in enumerate(self.edges.values()):
            ok &= (values[:, j] >= e[0] - 1e-9) & (values[:, j] <= e[-1] + 1e-9)
        return ok

    def member(self, values, k, margin=0.0):
        """Rows within bin ``k`` widened on each side by ``margin`` times its width (the overlap of
        the experts' training sets); the outer edges are not widened beyond the prior."""
        values = np.atleast_2d(np.asarray(values, float))
        ok = np.ones(len(values), bool)
        for j, (a, (lo, hi)) in enumerate(self.bounds(k).items()):
            e, w = self.edges[a], (hi - lo) * float(margin)
            lo_, hi_ = (lo - w if lo > e[0] else -np.inf), (hi + w if hi < e[-1] else np.inf)
            ok &= (values[:, j] >= lo_) & (values[:, j] <= hi_)
        return ok

    def probabilities(self, estimates, scale):
        """P(bin k | estimate) for Gaussian errors of sd ``scale`` (per axis) around each estimate
        (B, n_axes), outer edges open: (B, n_bins), rows summing to 1. Axes independent."""
        estimates = np.atleast_2d(np.asarray(estimates, float))
        per_axis = []
        for j, e in enumerate(self.edges.values()):
            s = max(float(scale[j]), 1e-12)
            inner = e[1:-1]
            cdf = 0.5 * special.erfc(-(inner[None, :] - estimates[:, j:j + 1]) / (s * np.sqrt(2)))   # (B, m-1)
            cdf = np.concatenate([np.zeros((len(estimates), 1)), cdf, np.ones((len(estimates), 1))], axis=1)
            per_axis.append(np.diff(cdf, axis=1))                                                     # (B, m)
        out = np.ones((len(estimates), 1))
        for p in per_axis:   # C order: the last axis fastest
            out = (out[:, :, None] * p[:, None, :]).reshape(len(estimates), -1)
        return out

    def counts(self, values, margin=0.0):
        """Rows per bin: ``(in bin, in bin with margin)`` lists of length n_bins."""
        idx = self.index(values)
        inside = self.inside(values)
        plain = [int(np.sum((idx == k) & inside)) for k in range(self.n_bins)]
        widened = [int(self.member(values, k, margin).sum()) for k in range(self.n_bins)]
        return plain, widened

