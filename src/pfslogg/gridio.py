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

from . import PARAMS
from .atomic import atomic_path
from .errors import InputError


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
            self._h5.attrs[k] = v
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
    flux/cont to load (the other is None)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: grid file not found")
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: not a readable HDF5 grid file ({e})") from None
    try:
        for key in ("wave", "flux", "cont", "mask") + tuple(f"axes/{p}" for p in PARAMS):
            if key not in h5:
                raise InputError(f"{path}: grid file lacks dataset '{key}'")
        wave = h5["wave"][:]
        axes = {p: h5[f"axes/{p}"][:] for p in PARAMS}
        shape = tuple(len(axes[p]) for p in PARAMS)
        for key in ("flux", "cont"):
            if h5[key].shape != shape + (len(wave),):
                raise InputError(
                    f"{path}: '{key}' has shape {h5[key].shape}, expected {shape + (len(wave),)} "
                    "(axes lengths + wavelength length)"
                )
        mask = h5["mask"][:]
        if mask.shape != shape:
            raise InputError(f"{path}: 'mask' has shape {mask.shape}, expected {shape}")
        for p in PARAMS:
            if len(axes[p]) > 1 and not np.all(np.diff(axes[p]) > 0):
                raise InputError(f"{path}: axis '{p}' is not strictly increasing")
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()}
        if load:
            flux = h5["flux"][:] if "flux" in fields else None
            cont = h5["cont"][:] if "cont" in fields else None
            h5.close()
        else:
            flux, cont = h5["flux"], h5["cont"]
            attrs["_h5"] = h5
        return Grid(wave=wave, axes=axes, flux=flux, cont=cont, mask=mask, attrs=attrs)
    except InputError:
        h5.close()
        raise
    except (OSError, KeyError) as e:
        h5.close()
        raise InputError(f"{path}: corrupt grid file ({e})") from None


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
