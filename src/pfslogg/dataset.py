"""Data sets of noisy PFS spectra in the PFS ``pfsspec`` ``dataset.h5`` layout.

File layout (readable by the original study's tools, and existing files of theirs are read here)::

    spectrumdataset/wave          (n_pix,)     float64, A
    dataset/arrays/flux/value     (N, n_pix)   float32, clean flux normalised by its median
    dataset/arrays/error/value    (N, n_pix)   float32, 1-sigma noise for noise level 1, same units
    dataset/params                pandas table (PyTables 'table' format): T_eff, log_g, M_H, a_M,
                                  C_M, mag, redshift, snr (+ seeing); read with
                                  pd.read_hdf(path, key='dataset/params')

The noisy flux is ``flux + noise_level * error * eps`` with eps ~ N(0, 1). Validation and test
noise is fixed: eps comes from a generator seeded by (noise seed, block of ``NOISE_BLOCK`` rows), so
the same rows always get the same noise whatever the reading order or chunking. Training noise is
drawn afresh by consumers for every batch/epoch.

SNR of a spectrum (DESIGN.md): median over pixels of flux / (noise_level * error); the ``snr``
column holds it for noise level 1.

Generation streams chunks of rows, so peak memory does not grow with N.
"""

import contextlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import PARAMS
from .atomic import atomic_path
from .errors import InputError
from .gridio import read_grid
from .interp import GridInterpolator
from .noise import ExposureModel, check_sigma

NOISE_BLOCK = 1024
PARAM_COLUMNS = ("T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "redshift", "snr", "seeing")
FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
WAVE_KEY = "spectrumdataset/wave"
PARAMS_KEY = "dataset/params"


def draw_params(rng, n, ranges):
    """Uniform draws over ``ranges`` (dict name -> [lo, hi]); returns (n, 4) in PARAMS order."""
    cols = []
    for p in PARAMS:
        lo, hi = ranges[p]
        cols.append(rng.uniform(lo, hi, n) if hi > lo else np.full(n, float(lo)))
    return np.stack(cols, axis=1)


def _make_chunk(interp, exposure, ranges, noise, seed, c, m, grid_path):
    """Rows of chunk ``c`` (``m`` of them): (flux, sigma, parameter table), float32 spectra.

    The generator is seeded by (seed, c): a chunk's content does not depend on which thread makes
    it or in which order chunks are made.
    """
    rng = np.random.default_rng([seed, c])
    theta = draw_params(rng, m, ranges)
    for _ in range(100):  # redraw points that fall into holes of a real grid
        bad = ~interp.covered(theta)
        if not bad.any():
            break
        theta[bad] = draw_params(rng, int(bad.sum()), ranges)
    else:
        raise InputError(f"{grid_path}: too many holes in the grid for params ranges {ranges}")
    mag = rng.uniform(*noise["mag"], m)
    seeing = rng.uniform(*noise["seeing"], m)
    flux = interp(theta, dtype=np.float32)
    sigma = exposure.sigma(flux, mag, seeing)
    inv = (1.0 / np.median(flux, axis=1, keepdims=True)).astype(np.float32)
    flux *= inv
    sigma *= inv
    snr = np.median(flux / sigma, axis=1)
    table = np.column_stack([theta, np.zeros(m), mag, np.zeros(m), snr, seeing])
    return flux, sigma, table


def simulate_dataset(grid_path, out_path, n, ranges, seed, noise, chunk_size=1024, threads=1, progress=False):
    """Draw ``n`` spectra from the instrument grid and write them to ``out_path``.

    ``ranges``: parameter ranges (uniform prior); ``noise``: dict with keys exposures, exp_time,
    throughput, mag [lo, hi], seeing [lo, hi]. Row chunk ``c`` uses the generator seeded by
    ``(seed, c)``, so the data set is a deterministic function of (grid, config, seed, chunk_size),
    whatever ``threads``. Chunks are computed by ``threads`` worker threads (NumPy releases the GIL)
    with at most ``threads + 1`` chunks in memory, so peak memory does not grow with ``n``.
    """
    from concurrent.futures import ThreadPoolExecutor

    if int(n) < 1:
        raise InputError(f"datasets: n = {n}, expected at least 1 spectrum")
    for p in PARAMS:
        if p not in ranges:
            raise InputError(f"params.{p}: missing range")
    grid = read_grid(grid_path, fields=("flux",))
    if grid.attrs.get("kind") != "instrument":
        raise InputError(f"{grid_path}: expected an instrument-resolution grid (kind='instrument'), "
                         f"got kind={grid.attrs.get('kind')!r}")
    interp = GridInterpolator(grid)
    for p in PARAMS:
        lo, hi = ranges[p]
        a = grid.axes[p]
        if hi < lo:
            raise InputError(f"params.{p}: expected lo <= hi, got [{lo}, {hi}]")
        if lo < a[0] - 1e-9 or hi > a[-1] + 1e-9:
            raise InputError(f"params.{p}: range [{lo}, {hi}] is outside the grid's axis [{a[0]}, {a[-1]}] "
                             f"of {grid_path}")
    exposure = ExposureModel(grid.wave, exposures=int(noise["exposures"]), exp_time=float(noise["exp_time"]),
                             throughput=float(noise["throughput"]))
    n_pix = len(grid.wave)
    out_path = Path(out_path)
    side = out_path.with_name(f".{out_path.name}.params.tmp.h5")
    starts = list(range(0, n, chunk_size))
    with atomic_path(out_path) as tmp:
        try:
            with h5py.File(tmp, "w") as h5, h5py.File(side, "w") as hp, \
                    ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
                h5.attrs["seed"] = seed
                h5.attrs["config"] = json.dumps({"n": n, "ranges": ranges, "noise": noise, "chunk_size": chunk_size})
                h5.create_dataset(WAVE_KEY, data=grid.wave)
                rows = max(1, min(chunk_size, n, 256))
                fl = h5.create_dataset(FLUX_KEY, shape=(n, n_pix), dtype="float32", chunks=(rows, n_pix))
                er = h5.create_dataset(ERROR_KEY, shape=(n, n_pix), dtype="float32", chunks=(rows, n_pix))
                pt = hp.create_dataset("p", shape=(n, len(PARAM_COLUMNS)), dtype="float64")

                def submit(c):
                    m = min(chunk_size, n - starts[c])
                    return pool.submit(_make_chunk, interp, exposure, ranges, noise, seed, c, m, grid_path)

                ahead = max(1, int(threads))
                pending = [submit(c) for c in range(min(ahead, len(starts)))]
                it = range(len(starts))
                if progress:
                    from tqdm import tqdm
                    it = tqdm(it, desc=f"simulate {out_path.name}", unit="chunk")
                for c in it:
                    flux, sigma, table = pending.pop(0).result()
                    if c + ahead < len(starts):
                        pending.append(submit(c + ahead))
                    a, b = starts[c], starts[c] + len(flux)
                    fl[a:b] = flux
                    er[a:b] = sigma
                    pt[a:b] = table
            with h5py.File(side, "r") as hp, pd.HDFStore(tmp, "a") as store:
                for start in range(0, n, chunk_size):
                    block = hp["p"][start:start + chunk_size]
                    df = pd.DataFrame(block, columns=list(PARAM_COLUMNS),
                                      index=np.arange(start, start + len(block)))
                    store.append(PARAMS_KEY, df, format="table", index=False)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(side)


class SpectraSet:
    """Read-only access to a data set file (pfsspec layout), chunk by chunk.

    Attributes: ``path``, ``wave`` (n_pix,), ``params`` (DataFrame), ``n``.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: data set file not found")
        try:
            with h5py.File(self.path, "r") as h5:
                for key in (WAVE_KEY, FLUX_KEY, ERROR_KEY):
                    if key not in h5:
                        raise InputError(f"{self.path}: data set lacks '{key}' (expected the pfsspec dataset.h5 layout)")
                self.wave = h5[WAVE_KEY][:]
                fshape, eshape = h5[FLUX_KEY].shape, h5[ERROR_KEY].shape
                self.attrs = dict(h5.attrs)
        except OSError as e:
            raise InputError(f"{self.path}: not a readable HDF5 data set ({e})") from None
        if len(fshape) != 2 or fshape != eshape:
            raise InputError(f"{self.path}: flux {fshape} and error {eshape} must be 2D of equal shape")
        if fshape[1] != len(self.wave):
            raise InputError(f"{self.path}: flux has {fshape[1]} pixels but '{WAVE_KEY}' has {len(self.wave)} "
                             "(wavelength length must equal the number of pixels)")
        try:
            self.params = pd.read_hdf(self.path, key=PARAMS_KEY)
        except (KeyError, OSError, ValueError, TypeError) as e:
            raise InputError(f"{self.path}: cannot read parameter table '{PARAMS_KEY}' ({e})") from None
        missing = [c for c in ("T_eff", "log_g", "M_H") if c not in self.params.columns]
        if missing:
            raise InputError(f"{self.path}: parameter table lacks columns {missing}")
        if len(self.params) != fshape[0]:
            raise InputError(f"{self.path}: parameter table has {len(self.params)} rows, flux has {fshape[0]}")
        self.params = self.params.reset_index(drop=True)
        self.n = fshape[0]

    @property
    def logg(self):
        return self.params["log_g"].to_numpy(float)

    def read(self, start=0, stop=None):
        """(flux, error) rows [start, stop) as float64, checked."""
        stop = self.n if stop is None else min(stop, self.n)
        with h5py.File(self.path, "r") as h5:
            flux = h5[FLUX_KEY][start:stop].astype(float)
            error = h5[ERROR_KEY][start:stop].astype(float)
        if not np.all(np.isfinite(flux)):
            raise InputError(f"{self.path}: flux rows {start}-{stop} contain NaN or infinite values")
        check_sigma(error, f"{self.path} (rows {start}-{stop})")
        return flux, error

    def chunks(self, size=4096):
        for start in range(0, self.n, size):
            yield start, min(start + size, self.n)

    def fixed_noise(self, start, stop, seed):
        """eps for rows [start, stop): a fixed function of (seed, row), whatever the chunking."""
        out = np.empty((stop - start, len(self.wave)))
        b0, b1 = start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK
        for b in range(b0, b1 + 1):
            eps = np.random.default_rng([seed, b]).standard_normal((NOISE_BLOCK, len(self.wave)))
            lo, hi = max(start, b * NOISE_BLOCK), min(stop, (b + 1) * NOISE_BLOCK)
            out[lo - start:hi - start] = eps[lo - b * NOISE_BLOCK:hi - b * NOISE_BLOCK]
        return out

    def noisy(self, start, stop, noise_level, seed=None, rng=None):
        """(noisy flux, error) for rows [start, stop): fixed noise from ``seed`` (val/test), or a
        fresh draw from ``rng`` (training)."""
        flux, error = self.read(start, stop)
        if noise_level == 0:
            return flux, error
        if seed is None and rng is None:
            raise ValueError("SpectraSet.noisy: give a seed (fixed noise) or an rng (fresh noise)")
        eps = self.fixed_noise(start, stop, seed) if rng is None else rng.standard_normal(flux.shape)
        return flux + noise_level * error * eps, error

    def load_noisy(self, noise_level, seed=None, rng=None, dtype=np.float32):
        """All rows at once: (noisy flux, error) arrays of ``dtype`` (for in-memory estimators)."""
        X = np.empty((self.n, len(self.wave)), dtype=dtype)
        E = np.empty_like(X)
        for a, b in self.chunks():
            X[a:b], E[a:b] = self.noisy(a, b, noise_level, seed=seed, rng=rng)
        return X, E

    def snr(self, noise_level=1.0):
        """Per-spectrum SNR = median(flux / (noise_level * error)) (DESIGN.md)."""
        if "snr" in self.params.columns:
            return self.params["snr"].to_numpy(float) / max(noise_level, 1e-300)
        out = np.empty(self.n)
        for a, b in self.chunks():
            f, e = self.read(a, b)
            out[a:b] = np.median(f / e, axis=1)
        return out / max(noise_level, 1e-300)
