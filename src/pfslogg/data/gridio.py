"""The HDF5 grid file: one layout for every grid source.

A grid is regular over the axes ``T_eff`` (K), ``log_g`` (dex, cgs), ``M_H`` (dex), ``a_M`` (dex).
Layout::

    /wave                      (n_wave,)                 float64, Angstrom (air)
    /axes/T_eff, /axes/log_g, /axes/M_H, /axes/a_M       float64, strictly increasing
    /flux                      (nT, ng, nM, na, n_wave)  float32, flux (arbitrary units, F_lambda)
    /cont                      (nT, ng, nM, na, n_wave)  float32, continuum, same units
    /mask                      (nT, ng, nM, na)          bool, True where the node exists
    attrs: source (synth|bosz2017|bosz2024|instrument), resolution (R of the spectra),
           kind ("raw" or "instrument"), and free-form provenance strings.

Real grids have holes (BOSZ lacks some hot low-gravity models); ``mask`` says which nodes hold
data. ``flux``/``cont`` are chunked one node per chunk, so a grid streams node by node.
"""

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import PARAMS
from ..atomic import atomic_path
from ..errors import InputError


@dataclass
class Grid:
    """An in-memory grid (see module docstring for the meaning of the fields)."""

    wave: np.ndarray
    axes: dict  # name -> 1D array, in PARAMS order
    flux: np.ndarray
    cont: np.ndarray
    mask: np.ndarray
    attrs: dict

    @property
    def shape(self):
        return tuple(len(self.axes[p]) for p in PARAMS)


class GridWriter:
    """Stream a grid to HDF5 one node at a time; atomic (temp file renamed on ``close``).

    Use as a context manager::

        with GridWriter(path, wave, axes, attrs) as w:
            w.write((i, j, k, l), flux, cont)
    """

    def __init__(self, path, wave, axes, attrs=None, dtype="float32"):
        self.path = Path(path)
        self.wave = np.asarray(wave, dtype=float)
        self.axes = {p: np.asarray(axes[p], dtype=float) for p in PARAMS}
        self.attrs = dict(attrs or {})
        self.dtype = dtype

    def __enter__(self):
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._h5 = h5py.File(tmp, "w")
        shape = tuple(len(self.axes[p]) for p in PARAMS)
        nw = len(self.wave)
        self._h5.create_dataset("wave", data=self.wave)
        for p in PARAMS:
            self._h5.create_dataset(f"axes/{p}", data=self.axes[p])
        chunks = (1, 1, 1, 1, nw)
        self.flux = self._h5.create_dataset("flux", shape=shape + (nw,), dtype=self.dtype, chunks=chunks)
        self.cont = self._h5.create_dataset("cont", shape=shape + (nw,), dtype=self.dtype, chunks=chunks)
        self.mask = np.zeros(shape, dtype=bool)
        for k, v in self.attrs.items():
            # fixed-length strings: HDF5 can loop forever on a corrupt variable-length string heap
            self._h5.attrs[k] = np.bytes_(v.encode()) if isinstance(v, str) else v
        return self

    def write(self, index, flux, cont):
        flux = np.asarray(flux)
        cont = np.asarray(cont)
        if flux.shape != self.wave.shape or cont.shape != self.wave.shape:
            raise InputError(
                f"{self.path}: spectrum at node {index} has {flux.shape[-1] if flux.ndim else 0} points, "
                f"expected {len(self.wave)} (the grid's wavelength length)"
            )
        if not (np.all(np.isfinite(flux)) and np.all(np.isfinite(cont))):
            raise InputError(f"{self.path}: spectrum at node {index} has non-finite flux or continuum")
        self.flux[index] = flux
        self.cont[index] = cont
        self.mask[index] = True

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._h5.create_dataset("mask", data=self.mask)
        finally:
            self._h5.close()
        return self._ctx.__exit__(exc_type, exc, tb)


def write_grid(path, grid: Grid):
    """Write an in-memory grid atomically."""
    with GridWriter(path, grid.wave, grid.axes, grid.attrs, dtype=grid.flux.dtype) as w:
        for idx in zip(*np.nonzero(grid.mask)):
            w.write(idx, grid.flux[idx], grid.cont[idx])


def read_grid(path, load=True, fields=("flux", "cont")):
    """Read a grid file, checking its layout. ``load=False`` leaves flux/cont as h5py datasets
    (the file stays open; close via ``grid.attrs['_h5'].close()``); ``fields`` says which of
    flux/cont to load (the other is None).

    Every problem -- not HDF5, corrupt, a missing or mis-shaped dataset, text where numbers belong,
    wavelengths or axes not finite and strictly increasing, a mask that is not boolean, NaN/inf
    flux at a node the mask says exists -- raises one InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: grid file not found")

    from h5py import h5t

    def why(e):
        return f"{type(e).__name__}: {' '.join(str(e).split())}"

    try:
        h5 = h5py.File(path, "r")
    except Exception as e:  # OSError for a non-HDF5 file; other types for a mangled superblock
        raise InputError(f"{path}: not a readable HDF5 grid file ({why(e)})") from None

    def dataset(key, kinds="fiu", ndim=None):
        if key not in h5:
            raise InputError(f"{path}: grid file lacks dataset '{key}'")
        d = h5[key]
        if not isinstance(d, h5py.Dataset):
            raise InputError(f"{path}: '{key}' is an HDF5 {type(d).__name__}, expected a dataset")
        if d.dtype.kind not in kinds:
            raise InputError(f"{path}: '{key}' has dtype {d.dtype}, expected "
                             + ("booleans" if kinds == "biu" else "real numbers"))
        if ndim is not None and d.ndim != ndim:
            raise InputError(f"{path}: '{key}' has shape {d.shape}, expected {ndim} dimension(s)")
        return d

    def increasing(label, a):
        if len(a) < 1:
            raise InputError(f"{path}: {label} is empty")
        if not np.all(np.isfinite(a)):
            raise InputError(f"{path}: {label} holds NaN or infinite values")
        if not np.all(np.diff(a) > 0):
            raise InputError(f"{path}: {label} is not strictly increasing")

    try:
        for key in ("wave", "flux", "cont", "mask") + tuple(f"axes/{p}" for p in PARAMS):
            if key not in h5:
                raise InputError(f"{path}: grid file lacks dataset '{key}'")
        wave = dataset("wave", ndim=1)[()].astype(float)
        increasing("'wave'", wave)
        axes = {}
        for p in PARAMS:
            axes[p] = dataset(f"axes/{p}", ndim=1)[()].astype(float)
            increasing(f"axis '{p}'", axes[p])
        shape = tuple(len(axes[p]) for p in PARAMS)
        for key in ("flux", "cont"):
            d = dataset(key)
            if d.shape != shape + (len(wave),):
                raise InputError(
                    f"{path}: '{key}' has shape {d.shape}, expected {shape + (len(wave),)} "
                    "(axes lengths + wavelength length)"
                )
        mask = dataset("mask", kinds="biu")[()]
        if mask.shape != shape:
            raise InputError(f"{path}: 'mask' has shape {mask.shape}, expected {shape}")
        if mask.dtype.kind != "b":
            if not np.all((mask == 0) | (mask == 1)):
                raise InputError(f"{path}: 'mask' holds values other than 0 and 1, expected booleans")
            mask = mask.astype(bool)
        attrs = {}
        for k in h5.attrs:
            # only the types grid writers use: a mangled datatype message (e.g. a VLEN sequence where a
            # string was written) was seen to crash HDF5 on reading; refuse it instead
            cls = h5.attrs.get_id(k).get_type().get_class() if isinstance(k, str) else None
            if cls not in (h5t.INTEGER, h5t.FLOAT, h5t.STRING, h5t.BITFIELD, h5t.ENUM):
                raise InputError(f"{path}: grid attribute {k!r} has an unexpected HDF5 type (class {cls}); "
                                 "corrupt file?")
            v = h5.attrs[k]
            if isinstance(v, bytes):
                try:
                    v = v.decode()
                except UnicodeDecodeError:
                    raise InputError(f"{path}: grid attribute '{k}' is not UTF-8 text") from None
            attrs[k] = v
        if load:
            loaded = {}
            for key in ("flux", "cont"):
                loaded[key] = h5[key][()] if key in fields else None
                if loaded[key] is not None:
                    bad = mask & ~np.isfinite(loaded[key]).all(axis=-1)
                    if bad.any():
                        node = tuple(int(i) for i in np.argwhere(bad)[0])
                        raise InputError(f"{path}: '{key}' holds NaN or infinite values at {int(bad.sum())} "
                                         f"node(s) the mask says exist, e.g. node {node}")
            flux, cont = loaded["flux"], loaded["cont"]
            h5.close()
        else:
            flux, cont = h5["flux"], h5["cont"]
            attrs["_h5"] = h5
        return Grid(wave=wave, axes=axes, flux=flux, cont=cont, mask=mask, attrs=attrs)
    except InputError:
        h5.close()
        raise
    except Exception as e:  # corrupt file content: h5py/HDF5 raise OSError, RuntimeError, KeyError, ...
        h5.close()
        raise InputError(f"{path}: corrupt grid file ({why(e)})") from None


#: Full axes of each grid source: name -> (min, max, step). BOSZ 2017 and 2024 share theirs.
_BOSZ = {"T_eff": (3500, 12000, 250), "log_g": (0.0, 5.0, 0.5), "M_H": (-2.5, 0.75, 0.25), "a_M": (-0.25, 0.5, 0.25)}
SOURCE_AXES = {
    "synth": {"T_eff": (3500, 7000, 250), "log_g": (0.0, 5.0, 0.5), "M_H": (-2.5, 0.75, 0.25), "a_M": (-0.25, 0.5, 0.25)},
    "bosz2017": _BOSZ,
    "bosz2024": _BOSZ,
}


def parse_ranges(ranges, source):
    """Check parameter ranges against a source's axes: {name: (lo, hi)} for every parameter.

    A missing parameter takes the whole axis, a scalar means a single value; unknown names,
    non-numbers, lo > hi and ranges outside the axis raise InputError naming ``ranges.<key>``.
    """
    axes = SOURCE_AXES[source]
    if ranges is None:
        ranges = {}
    if not hasattr(ranges, "items"):
        raise InputError(f"ranges: expected a mapping parameter -> [lo, hi], got {type(ranges).__name__}")
    unknown = [k for k in ranges if k not in PARAMS]
    if unknown:
        raise InputError(f"ranges: unknown parameter(s) {unknown}; expected some of {list(PARAMS)}")
    out = {}
    for p in PARAMS:
        vmin, vmax, _ = axes[p]
        v = ranges.get(p, (vmin, vmax))
        if np.ndim(v) == 0:
            v = (v, v)
        try:
            lo, hi = (float(x) for x in v)
        except (TypeError, ValueError):
            raise InputError(f"ranges.{p}: expected [lo, hi] numbers, got {v!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
            raise InputError(f"ranges.{p}: expected finite lo <= hi, got [{lo}, {hi}]")
        if lo < vmin - 1e-9 or hi > vmax + 1e-9:
            raise InputError(f"ranges.{p}: [{lo:g}, {hi:g}] is outside the {source} axis [{vmin:g}, {vmax:g}]")
        out[p] = (lo, hi)
    return out


def parse_wave_range(wave_range):
    """(lo, hi) in Angstrom from a [lo, hi] pair; InputError naming ``wave_range`` unless 0 < lo < hi."""
    try:
        lo, hi = (float(x) for x in wave_range)
    except (TypeError, ValueError):
        raise InputError(f"wave_range: expected [lo, hi] in Angstrom, got {wave_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise InputError(f"wave_range: expected 0 < lo < hi, got [{lo}, {hi}]")
    return lo, hi


def source_nodes(ranges, source, margin=1):
    """The grid nodes of ``source`` covering ``ranges`` plus ``margin`` nodes each side."""
    if int(margin) != margin or margin < 0:
        raise InputError(f"margin: expected a non-negative integer, got {margin!r}")
    rng = parse_ranges(ranges, source)
    axes = {}
    for p in PARAMS:
        vmin, vmax, step = SOURCE_AXES[source][p]
        try:
            axes[p] = axis_nodes(rng[p][0], rng[p][1], step, vmin, vmax, int(margin))
        except InputError as e:
            raise InputError(f"ranges.{p}: {e}") from None
    return axes


def axis_nodes(lo, hi, step, vmin, vmax, margin=1):
    """Nodes of a regular axis covering [lo, hi] plus ``margin`` nodes each side, clipped to
    [vmin, vmax] (the source's full axis). Raises if [lo, hi] is outside [vmin, vmax]."""
    if lo < vmin - 1e-9 or hi > vmax + 1e-9:
        raise InputError(f"range [{lo}, {hi}] is outside the grid's axis [{vmin}, {vmax}]")
    first = np.floor((lo - vmin) / step + 1e-9) - margin
    last = np.ceil((hi - vmin) / step - 1e-9) + margin
    n_max = int(round((vmax - vmin) / step))
    i = np.arange(max(0, int(first)), min(n_max, int(last)) + 1)
    return np.round(vmin + i * step, 6)
