"""Data sets of noisy PFS spectra in the PFS ``pfsspec`` ``dataset.h5`` layout.

File layout (readable by the original study's tools, and existing files of theirs are read here)::

    spectrumdataset/wave          (n_pix,)     float64, A
    dataset/arrays/flux/value     (N, n_pix)   float32, clean flux normalised by its mean over pixels
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
import functools
import json
import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .. import PARAMS
from ..atomic import atomic_path
from ..errors import InputError
from .gridio import read_grid
from .interp import GridInterpolator, normalization
from .noise import ExposureModel, check_sigma

NOISE_BLOCK = 1024
PARAM_COLUMNS = ("T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "redshift", "snr", "seeing")
FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
WAVE_KEY = "spectrumdataset/wave"
PARAMS_KEY = "dataset/params"

log = logging.getLogger(__name__)


def _name_rows(rows, first=5):
    """'row 7', 'rows 2, 5, 9' or 'rows 2, 5, 7, 8, 9 and 3 more' (rows: ints or 'a-b' strings)."""
    rows = list(rows)
    head = ", ".join(str(r) for r in rows[:first])
    more = f" and {len(rows) - first} more" if len(rows) > first else ""
    one = len(rows) == 1 and "-" not in str(rows[0])
    return f"{'row' if one else 'rows'} {head}{more}"


def draw_params(rng, n, ranges):
    """Uniform draws over ``ranges`` (dict name -> [lo, hi]); returns (n, 4) in PARAMS order."""
    cols = []
    for p in PARAMS:
        lo, hi = ranges[p]
        cols.append(rng.uniform(lo, hi, n) if hi > lo else np.full(n, float(lo)))
    return np.stack(cols, axis=1)


def draw_chunk_params(interp, ranges, noise, seed, c, m, grid_path):
    """The stars of row chunk ``c`` (``m`` rows): ``(theta (m, 4) in PARAMS order, mag (m,), seeing (m,))``.

    The generator is seeded by ``(seed, c)``: a chunk's content does not depend on which thread makes
    it or in which order chunks are made. Draws, in this order: the parameters (uniform over
    ``ranges``), redraws of the points that fall into holes of the grid of ``interp`` (up to 100
    rounds; InputError naming ``grid_path`` beyond), the magnitudes (``noise["mag"]``), the seeings
    (``noise["seeing"]``). :func:`simulate_dataset` and :class:`~pfslogg.data.simview.SimulatorView`
    both draw their rows here, so that they hold the same stars.
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
    return theta, mag, seeing


def simulate_chunk(interp, exposure, theta, mag, seeing):
    """Clean flux and sigma at noise level 1, float32 (m, n_pix) each, of the stars ``theta`` (m, 4)
    observed at magnitudes ``mag`` and seeings ``seeing``: interpolated in the grid of ``interp``, sigma
    of the :class:`~pfslogg.data.noise.ExposureModel` ``exposure``, both divided by the flux's
    normalisation. Row by row: any subset of the rows gives the values of the whole, bitwise."""
    flux = interp(theta, dtype=np.float32)
    sigma = exposure.sigma(flux, mag, seeing)
    inv = (1.0 / normalization(flux)).astype(np.float32)
    flux *= inv
    sigma *= inv
    return flux, sigma


def _make_chunk(interp, exposure, ranges, noise, seed, c, m, grid_path):
    """Rows of chunk ``c`` (``m`` of them): (flux, sigma, parameter table), float32 spectra
    (:func:`draw_chunk_params`, then :func:`simulate_chunk`)."""
    theta, mag, seeing = draw_chunk_params(interp, ranges, noise, seed, c, m, grid_path)
    flux, sigma = simulate_chunk(interp, exposure, theta, mag, seeing)
    snr = spectrum_snr(flux, sigma)
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
                from ..progress import progress as _progress
                it = _progress(range(len(starts)), desc=f"simulate {out_path.name}", unit="chunk", enabled=progress)
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


def spectrum_snr(flux, sigma):
    """The project's SNR of every spectrum (DESIGN.md): the median over its pixels of flux / sigma, (B,) in
    the arrays' own precision (the ``snr`` column of a data set holds the float32 values at noise level 1)."""
    return np.median(flux / sigma, axis=1)


def add_noise(flux, error, eps, noise_level):
    """``flux + noise_level * error * eps``, bitwise, computed in ``eps``'s buffer (it is overwritten):
    one temporary fewer per read, the training stream's commonest array operation."""
    eps *= error if noise_level == 1 else noise_level * error
    eps += flux
    return eps


@functools.lru_cache(maxsize=2)
def _noise_block(seed, block, n_pix):
    """The fixed eps of one block of ``NOISE_BLOCK`` rows (read-only), the last two kept: reads smaller
    than a block (a validation pass of 512 rows) draw each block once, not once per read."""
    eps = np.random.default_rng([seed, block]).standard_normal((NOISE_BLOCK, n_pix))
    eps.flags.writeable = False
    return eps


def fixed_noise_rows(seed, rows, n_pix):
    """The fixed noise eps (len(rows), n_pix) of rows ``rows`` (increasing): a function of (seed, row) alone,
    standard normal draws of the row's block of ``NOISE_BLOCK`` rows from ``default_rng([seed, block])``.
    What every view with fixed noise adds -- a file's (:meth:`SpectraSet.fixed_noise`) and the
    simulator's -- so both give the same eps on the same row."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), int(n_pix)))
    block = rows // NOISE_BLOCK
    for b in np.unique(block):
        eps = _noise_block(seed, int(b), int(n_pix))
        take = block == b
        out[take] = eps[rows[take] - b * NOISE_BLOCK]
    return out


class SpectraSet:
    """Read-only access to a data set file (pfsspec layout), chunk by chunk.

    Attributes: ``path``, ``wave`` (n_pix,), ``params`` (DataFrame), ``n``, ``snr_column_disagrees``
    (rows whose stored ``snr`` is off, set by :meth:`check_snr`; None before).

    Messages about bad rows name them by their row number in the file (the first few, then a count).

    External data sets (a ``datasets.<split>.path`` not made by this project, e.g. the original
    study's pfsspec files) are read as they come, with two caveats:

    * their ``snr`` column is whatever their writer stored; :meth:`check_snr` recomputes the
      project's SNR (median over pixels of flux / error, noise level 1), warns where the column
      disagrees, and from then on :meth:`snr` returns the recomputed values (``describe-dataset``
      does this, so its summary is by the project's definition);
    * the prior variance in R^2 = 1 - MSE / var_prior comes from the config's ``params.log_g``
      range ((hi - lo)^2 / 12, :func:`pfslogg.evaluation.prior_variance`), not from the file's own
      log g distribution: set ``params.log_g`` to the range the file was drawn from.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: data set file not found")
        try:
            with h5py.File(self.path, "r") as h5:
                wave = self._dataset(h5, WAVE_KEY, "wavelengths")
                if wave.ndim != 1 or wave.shape[0] < 1:
                    raise InputError(f"{self.path}: '{WAVE_KEY}' has shape {wave.shape}, expected (n_pix,) with n_pix >= 1")
                self.wave = wave[()].astype(float)
                fshape = self._dataset(h5, FLUX_KEY, "flux").shape
                eshape = self._dataset(h5, ERROR_KEY, "errors").shape
                self.attrs = self._attrs(h5, "/")
                self._probe_params(h5)
        except InputError:
            raise
        except Exception as e:  # a corrupt file: h5py/HDF5 raise OSError, RuntimeError, KeyError, ValueError, ...
            raise InputError(f"{self.path}: not a readable HDF5 data set ({self._why(e)})") from None
        if not np.all(np.isfinite(self.wave)):
            raise InputError(f"{self.path}: '{WAVE_KEY}' holds NaN or infinite wavelengths")
        if len(fshape) != 2 or fshape != eshape:
            raise InputError(f"{self.path}: flux {fshape} and error {eshape} must be 2D of equal shape")
        if fshape[1] != len(self.wave):
            raise InputError(f"{self.path}: flux has {fshape[1]} pixels but '{WAVE_KEY}' has {len(self.wave)} "
                             "(wavelength length must equal the number of pixels)")
        if fshape[0] < 1:
            raise InputError(f"{self.path}: data set holds no spectra (flux has shape {fshape})")
        try:
            self.params = pd.read_hdf(self.path, key=PARAMS_KEY)
        except Exception as e:  # pandas/PyTables raise a zoo of types on a missing, foreign or corrupt table
            raise InputError(f"{self.path}: cannot read parameter table '{PARAMS_KEY}' ({self._why(e)})") from None
        if not isinstance(self.params, pd.DataFrame):
            raise InputError(f"{self.path}: '{PARAMS_KEY}' holds a {type(self.params).__name__}, expected a "
                             "parameter table (DataFrame)")
        missing = [c for c in ("T_eff", "log_g", "M_H") if c not in self.params.columns]
        if missing:
            raise InputError(f"{self.path}: parameter table lacks columns {missing}")
        if len(self.params) != fshape[0]:
            raise InputError(f"{self.path}: parameter table has {len(self.params)} rows, flux has {fshape[0]}")
        self._check_params()
        self.params = self.params.reset_index(drop=True)
        self.n = fshape[0]
        self.snr_column_disagrees = None
        self._snr_recomputed = None

    @staticmethod
    def _why(e):
        """An exception as one short line: '<Type>: <message>'."""
        return f"{type(e).__name__}: {' '.join(str(e).split())}"

    def _dataset(self, h5, key, what):
        """The numeric h5py dataset at ``key``; InputError if absent, a group, or not numbers."""
        if key not in h5:
            raise InputError(f"{self.path}: data set lacks '{key}' (expected the pfsspec dataset.h5 layout)")
        d = h5[key]
        if not isinstance(d, h5py.Dataset):
            raise InputError(f"{self.path}: '{key}' is an HDF5 {type(d).__name__}, expected a dataset of {what}")
        if d.dtype.kind not in "fiu":
            raise InputError(f"{self.path}: '{key}' has dtype {d.dtype}, expected real numbers ({what})")
        return d

    @staticmethod
    def _attrs(obj, name):
        """An HDF5 object's attributes as a dict, refusing (OSError) names that are not UTF-8 and types
        no writer of these files uses (VLEN sequences, compound, opaque, references): on a corrupt file
        such a type is a mangled datatype message, and reading it was seen to crash HDF5 (segfault)."""
        from h5py import h5t

        safe = (h5t.INTEGER, h5t.FLOAT, h5t.STRING, h5t.BITFIELD, h5t.ENUM)
        out = {}
        for k in obj.attrs:
            if not isinstance(k, str) or not isinstance(name, str):  # PyTables crashes on such names
                raise OSError(f"name {k!r} in {name!r} is not UTF-8 text")
            cls = obj.attrs.get_id(k).get_type().get_class()
            if cls not in safe:
                raise OSError(f"attribute {k!r} of {name!r} has an unexpected HDF5 type (class {cls})")
            out[k] = obj.attrs[k]
        return out

    @staticmethod
    def _probe_params(h5):
        """Touch with h5py what PyTables reads for the parameter table (the groups on its path, every
        object under it, all their attributes). On a corrupt file h5py's HDF5 raises here, where
        PyTables' own HDF5 build was seen to crash the interpreter (segfault) on the same bytes."""
        def touch(name, obj):
            SpectraSet._attrs(obj, name)
            if isinstance(obj, h5py.Dataset):
                obj.dtype, obj.shape  # noqa: B018 -- reads the object header

        node = h5
        for part in PARAMS_KEY.split("/"):
            if part not in node or not isinstance(node[part], h5py.Group):
                return  # absent or not a table: pd.read_hdf says what is wrong
            node = node[part]
            touch(node.name, node)
        node.visititems(touch)

    def _check_params(self):
        """Known columns must be numeric (not bool/text), unique; stellar parameters and snr finite."""
        for c in PARAM_COLUMNS:
            if c not in self.params.columns:
                continue
            col = self.params[c]
            if isinstance(col, pd.DataFrame):
                raise InputError(f"{self.path}: parameter table has column '{c}' more than once")
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                raise InputError(f"{self.path}: parameter table column '{c}' has dtype {col.dtype}, expected numbers")
            if c in PARAMS + ("snr",):
                bad = ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
                if bad.any():
                    raise InputError(f"{self.path}: parameter table column '{c}' has {int(bad.sum())} NaN or "
                                     f"infinite value(s), in {_name_rows(np.flatnonzero(bad))}")

    @property
    def logg(self):
        return self.params["log_g"].to_numpy(float)

    def read(self, start=0, stop=None):
        """(flux, error) rows [start, stop) as float64, checked."""
        stop = self.n if stop is None else min(stop, self.n)
        return self._checked(*self._span(start, stop), np.arange(start, stop))

    def read_rows(self, rows):
        """(flux, error) of the rows ``rows`` (increasing indices, within one contiguous read of the file:
        the caller keeps the span small) as float64, checked; only those rows are converted."""
        rows = np.asarray(rows, dtype=np.int64)
        a, b = int(rows[0]), int(rows[-1]) + 1
        flux, error = self._span(a, b, convert=False)
        take = rows - a
        return self._checked(flux[take].astype(float), error[take].astype(float), rows)

    def _span(self, start, stop, convert=True):
        try:
            with h5py.File(self.path, "r") as h5:
                flux, error = h5[FLUX_KEY][start:stop], h5[ERROR_KEY][start:stop]
        except Exception as e:  # corrupt chunks, or a file changed since it was opened
            rows = self._unreadable_rows(start, stop) or [f"{start}-{stop - 1}"]
            raise InputError(f"{self.path}: cannot read {_name_rows(rows)} of flux/error ({self._why(e)})") from None
        return (flux.astype(float), error.astype(float)) if convert else (flux, error)

    def _checked(self, flux, error, rows):
        bad = ~np.isfinite(flux).all(axis=1)
        if bad.any():
            named = rows[np.flatnonzero(bad)]
            verb = "contains" if len(named) == 1 else "contain"
            raise InputError(f"{self.path}: flux {_name_rows(named)} {verb} NaN or infinite values")
        bad = ~(np.isfinite(error) & (error > 0)).all(axis=1)
        if bad.any():
            check_sigma(error, f"{self.path} (error {_name_rows(rows[np.flatnonzero(bad)])})")
        return flux, error

    def _unreadable_rows(self, start, stop):
        """Row ranges ('a-b', in the file) of [start, stop) that HDF5 cannot read, probed one storage
        chunk at a time; None if even that fails."""
        try:
            bad = []
            with h5py.File(self.path, "r") as h5:
                for key in (FLUX_KEY, ERROR_KEY):
                    d = h5[key]
                    step = d.chunks[0] if d.chunks else 256
                    a = start
                    while a < stop:
                        b = min(stop, (a // step + 1) * step)
                        try:
                            d[a:b]
                        except Exception:
                            bad.append((a, b - 1))
                        a = b
            merged = []
            for a, b in sorted(bad):
                if merged and a <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            return [f"{a}-{b}" if b > a else str(a) for a, b in merged] or None
        except Exception:
            return None

    def chunks(self, size=4096):
        for start in range(0, self.n, size):
            yield start, min(start + size, self.n)

    def exposure_model(self):
        """The :class:`~pfslogg.data.noise.ExposureModel` the file was made with (its ``config``
        attribute's ``noise``: exposures, exp_time, throughput) and the observing conditions of its
        rows, ``(model, mag (n,), seeing (n,))``: what an estimate of sigma from the noisy flux needs
        (``noise.sigma: estimated``, :meth:`~pfslogg.data.noise.ExposureModel.estimate_sigma`)."""
        need = "noise.sigma: estimated needs them (or set noise.sigma: stored)"
        try:
            noise = json.loads(self.attrs["config"])["noise"]
            model = ExposureModel(self.wave, exposures=int(noise["exposures"]), exp_time=float(noise["exp_time"]),
                                  throughput=float(noise["throughput"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{self.path}: no exposure model stored with the data set (attribute 'config', key "
                             f"'noise' with exposures, exp_time, throughput: {self._why(e)}); {need}") from None
        missing = [c for c in ("mag", "seeing") if c not in self.params.columns]
        if missing:
            raise InputError(f"{self.path}: parameter table lacks columns {missing} (observing conditions); {need}")
        cond = [self.params[c].to_numpy(float) for c in ("mag", "seeing")]
        for c, v in zip(("mag", "seeing"), cond):
            if not np.isfinite(v).all():
                raise InputError(f"{self.path}: parameter table column '{c}' has NaN or infinite values; {need}")
        return model, cond[0], cond[1]

    def fixed_noise(self, start, stop, seed):
        """eps for rows [start, stop): a fixed function of (seed, row), whatever the chunking
        (:func:`fixed_noise_rows`)."""
        return fixed_noise_rows(seed, np.arange(start, stop), len(self.wave))

    def noisy(self, start, stop, noise_level, seed=None, rng=None):
        """(noisy flux, error) for rows [start, stop): fixed noise from ``seed`` (val/test), or a
        fresh draw from ``rng`` (training)."""
        flux, error = self.read(start, stop)
        if noise_level == 0:
            return flux, error
        if seed is None and rng is None:
            raise ValueError("SpectraSet.noisy: give a seed (fixed noise) or an rng (fresh noise)")
        eps = self.fixed_noise(start, stop, seed) if rng is None else rng.standard_normal(flux.shape)
        return add_noise(flux, error, eps, noise_level), error

    def load_noisy(self, noise_level, seed=None, rng=None, dtype=np.float32):
        """All rows at once: (noisy flux, error) arrays of ``dtype`` (for in-memory estimators)."""
        X = np.empty((self.n, len(self.wave)), dtype=dtype)
        E = np.empty_like(X)
        for a, b in self.chunks():
            X[a:b], E[a:b] = self.noisy(a, b, noise_level, seed=seed, rng=rng)
        return X, E

    def snr(self, noise_level=1.0):
        """Per-spectrum SNR = median(flux / (noise_level * error)) (DESIGN.md): the recomputed values
        once :meth:`check_snr` ran, else the ``snr`` column, else computed from the arrays."""
        if self._snr_recomputed is not None:
            out = self._snr_recomputed
        elif "snr" in self.params.columns:
            out = self.params["snr"].to_numpy(float)
        else:
            out = self._snr_from_arrays()
        return out / max(noise_level, 1e-300)

    def _snr_from_arrays(self, chunk_size=4096):
        """The project's SNR of every row (noise level 1), read chunk by chunk."""
        out = np.empty(self.n)
        for a, b in self.chunks(chunk_size):
            f, e = self.read(a, b)
            out[a:b] = spectrum_snr(f, e)
        return out

    def check_snr(self, tolerance=0.05, chunk_size=4096):
        """Recompute every row's SNR by the project's definition (median over pixels of flux / error,
        noise level 1; chunks of ``chunk_size`` rows) and compare with the stored ``snr`` column.

        Logs a WARNING naming the file, the number of rows whose stored value differs by more than
        ``tolerance`` (relative) and the worst row. Sets ``snr_column_disagrees`` (0 without a
        column) and makes :meth:`snr` return the recomputed values. Returns them (noise level 1).
        """
        snr = self._snr_from_arrays(chunk_size)
        self._snr_recomputed = snr
        self.snr_column_disagrees = 0
        if "snr" not in self.params.columns:
            log.info("%s: no 'snr' column; SNR computed from the arrays", self.path)
            return snr.copy()
        stored = self.params["snr"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(stored - snr) / np.abs(snr)
        rel[(stored == snr)] = 0.0   # 0 / 0
        off = ~(rel <= tolerance)
        self.snr_column_disagrees = int(off.sum())
        if off.any():
            k = int(np.argmax(np.where(np.isnan(rel), np.inf, rel)))
            log.warning("%s: the 'snr' column differs by more than %g %% from the SNR recomputed by the "
                        "project's definition (median over pixels of flux/error, noise level 1) in %d of %d "
                        "rows; worst row %d: stored %.4g, recomputed %.4g; the recomputed values are used",
                        self.path, 100 * tolerance, self.snr_column_disagrees, self.n, k, stored[k], snr[k])
        return snr.copy()


def summarize_dataset(ds, split, check_snr=False):
    """Size and SNR distribution (SNR = median flux/sigma per spectrum, noise level 1) of a data set.

    ``check_snr``: recompute the SNR from the arrays (:meth:`SpectraSet.check_snr`, for a data set not
    made here) and add ``snr_column_disagrees``, the rows whose stored ``snr`` is off by over 5 %.
    """
    snr = ds.check_snr() if check_snr else ds.snr(1.0)
    out = {"split": split, "n": int(len(snr)),
           "snr_median": float(np.median(snr)), "snr_p05": float(np.percentile(snr, 5)),
           "snr_p95": float(np.percentile(snr, 95)), "snr_min": float(snr.min()), "snr_max": float(snr.max())}
    if check_snr:
        out["snr_column_disagrees"] = int(ds.snr_column_disagrees)
    if "mag" in ds.params.columns:
        out["mag_range"] = [float(ds.params["mag"].min()), float(ds.params["mag"].max())]
    return out


def check_same_wave(data_wave, grid_wave, data_path, grid_path):
    """A data set and the instrument grid must share their pixels (an external pfsspec data set may
    not: then instrument.wave_range/n_pixels must be set to its wavelengths)."""
    if len(data_wave) != len(grid_wave) or not np.allclose(data_wave, grid_wave, atol=0.01):
        raise InputError(f"{data_path}: its {len(data_wave)} pixels ({data_wave[0]:.2f}-{data_wave[-1]:.2f} A) differ "
                         f"from the instrument grid {grid_path} ({len(grid_wave)} pixels, "
                         f"{grid_wave[0]:.2f}-{grid_wave[-1]:.2f} A); set instrument.wave_range and n_pixels to match")
