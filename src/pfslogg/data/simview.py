"""Training on the simulator: a view whose rows are drawn from the forward model, not read from a file.

:class:`SimulatorView` is a :class:`~pfslogg.data.views.View` of ``n`` spectra that are simulated
when they are read -- the same prior (uniform over ``ranges``, points in holes of a real grid
redrawn), the same interpolator, exposure model and normalisation as
:func:`~pfslogg.data.dataset.simulate_dataset` -- so a training size is a number of simulated
spectra with no disk behind it (issue 17). Nothing big is kept: the parameter table (n rows, what
any view of a data set file holds too) and the last two blocks of simulated spectra.

Seeding (the stars): rows come in chunks of ``chunk_size`` (config ``datasets.chunk_size``); chunk
``c`` draws its parameters, magnitudes and seeings with :func:`~pfslogg.data.dataset.draw_chunk_params`
-- what :func:`~pfslogg.data.dataset.simulate_dataset` draws a file's chunks with, from
``np.random.default_rng([seed, c])`` -- and simulates their spectra with
:func:`~pfslogg.data.dataset.simulate_chunk`, so

* the parameters of every row are known without simulating any flux (``params``, ``logg``, ``y``);
  the clean flux of a row is computed from them on demand, reproducibly (``read_clean``);
* row ``i`` is a function of ``(seed, i)`` alone: every chunk is drawn whole (``chunk_size`` rows,
  the rows past ``n`` dropped), so views of different ``n`` nest -- the first rows of a larger view
  are a smaller one;
* rows equal, bitwise (clean flux and sigma as stored: float32; parameters), those of the data set
  file ``simulate_dataset(grid, out, N, ranges, seed, noise, chunk_size)`` in every *full* chunk of
  that file: all of them when ``N`` is a multiple of ``chunk_size``. A file's last, short chunk draws
  fewer values, which shifts its random stream; ``dataset_n=N`` draws that chunk short as well, so
  the view is row for row the first ``n`` rows of the file of ``N`` (``from_config`` can do this for
  the train split).

Noise: exactly :class:`~pfslogg.data.views.NoisyView`'s, on top of the clean flux and the sigma at
noise level 1 -- fresh (``rng_seed``: every read draws new eps from the view's generator, one
``standard_normal((rows, n_pix))`` per read; ``noise_state`` / ``set_noise_state`` for checkpoints),
or fixed (``noise_seed``: eps a function of (noise seed, row), blocks of ``NOISE_BLOCK`` rows as
:meth:`~pfslogg.data.dataset.SpectraSet.fixed_noise`); sigma ``"estimated"`` (from the noisy flux and
the row's magnitude and seeing) or ``"stored"`` (of the clean flux), times the noise level. With the
same generator state, a read gives bitwise the noisy flux and sigma that a ``NoisyView`` of the
matching file gives.

Cost: simulating a spectrum is an interpolation over 4^3 grid nodes and the exposure model (about
as much as reading a stored one plus its noise; ``bench/bench_simulator.py`` measures both against
the networks' training speed). Only the rows read are simulated: a scattered read
(:class:`~pfslogg.data.views.SubsetView`) costs its rows, not their chunks; ``snr()`` simulates
every row once (and keeps the n values).

In the workflow: the cells of a variant with ``train_source: simulator`` (config
``estimators.<name>.train_source``) train on ``SimulatorView.from_config(cfg, grid, noise_level,
n=size, rng_seed=<the cell's seed>, sigma=<the variant's sigma>, seed=split_seed(cfg, "simulator"))``
-- the training split's settings (:func:`simulator_settings`, carried by the cell's parameter block)
with stars of their own, not the training file's; validation and test are the files
(:func:`pfslogg.experiments.run_cell`).
"""

from collections import OrderedDict

import numpy as np
import pandas as pd

from .. import PARAMS
from ..errors import InputError
from .dataset import PARAM_COLUMNS, add_noise, draw_chunk_params, fixed_noise_rows, simulate_chunk, spectrum_snr
from .interp import GridInterpolator
from .noise import ExposureModel, check_sigma_mode
from .views import FreshNoise, View

NOISE_KEYS = ("exposures", "exp_time", "throughput", "mag", "seeing")
TABLE_COLUMNS = tuple(c for c in PARAM_COLUMNS if c != "snr")   # snr needs the flux: snr()
CACHE_BLOCKS = 2   # simulated blocks kept (a denoiser reads a block's noisy and clean flux in turn)


def _pair(value, where):
    """``[lo, hi]`` of a range as two finite floats with lo <= hi; InputError naming ``where``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a range [lo, hi] of two numbers, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{where}: expected finite numbers, got [{lo}, {hi}]")
    if hi < lo:
        raise InputError(f"{where}: expected lo <= hi, got [{lo}, {hi}]")
    return lo, hi


def simulator_settings(cfg, split="train", seed=None):
    """``{"seed", "noise", "chunk_size"}``: how the workflow simulates the data set of ``split`` --
    its seed (``split_seed(cfg, split)``, or ``seed`` when given), the exposure model and observing
    conditions (config ``noise`` without noise_level and sigma, ``mag`` the split's where it has its
    own) and ``datasets.chunk_size`` -- as :class:`SimulatorView` takes them, with the config's
    ``params`` as ranges (:meth:`SimulatorView.from_config`; the parameter block of a cell of a
    ``train_source: simulator`` variant carries them, :func:`pfslogg.workflow.rule_params`)."""
    from ..config import split_seed

    noise = {k: v for k, v in cfg["noise"].items() if k not in ("noise_level", "sigma")}
    noise["mag"] = cfg["datasets"][split].get("mag", noise["mag"])
    return {"seed": split_seed(cfg, split) if seed is None else int(seed), "noise": noise,
            "chunk_size": cfg["datasets"]["chunk_size"]}


class SimulatorView(FreshNoise, View):
    """``n`` spectra drawn from the forward model at ``noise_level`` (see the module docstring).

    ``grid_path``, ``ranges``, ``seed``, ``noise``, ``chunk_size``: as :func:`simulate_dataset`
    takes them (``ranges``: the config's ``params``; ``noise``: exposures, exp_time, throughput,
    mag [lo, hi], seeing [lo, hi] -- the config's ``noise`` with the split's ``mag``; other keys are
    ignored; ``seed``: the split seed, an integer >= 0). ``noise_level``, ``noise_seed``, ``rng_seed``,
    ``sigma``: as :class:`~pfslogg.data.views.NoisyView`. ``dataset_n``: reproduce the first ``n``
    rows of the file of ``dataset_n`` spectra, its short last chunk included (None: every chunk
    whole, row i a function of (seed, i) alone).

    ``params``: the parameter table (columns T_eff, log_g, M_H, a_M, C_M, mag, redshift, seeing --
    a file's columns but ``snr``, which needs the flux: :meth:`snr`), index 0..n-1; do not modify it.
    """

    def __init__(self, grid_path, n, ranges, seed, noise, noise_level, noise_seed=None, rng_seed=None,
                 sigma="estimated", chunk_size=1024, dataset_n=None):
        from .gridio import read_grid

        try:
            n = int(n)
        except (TypeError, ValueError):
            raise InputError(f"SimulatorView: n = {n!r}, expected a number of spectra") from None
        if n < 1:
            raise InputError(f"SimulatorView: n = {n}, expected at least 1 spectrum")
        if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise InputError(f"datasets.chunk_size: expected a positive integer, got {chunk_size!r}")
        if dataset_n is not None and (not isinstance(dataset_n, (int, np.integer)) or dataset_n < n):
            raise InputError(f"SimulatorView: dataset_n = {dataset_n!r}, expected an integer >= n = {n}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise InputError(f"SimulatorView: seed = {seed!r}, expected an integer >= 0")
        try:
            noise_level = float(noise_level)
        except (TypeError, ValueError):
            raise InputError(f"noise level {noise_level!r}: expected a finite number >= 0") from None
        if noise_level < 0 or not np.isfinite(noise_level):
            raise InputError(f"noise level {noise_level}: expected a finite number >= 0")
        if noise_seed is None and rng_seed is None:
            raise InputError("SimulatorView: give noise_seed (fixed noise) or rng_seed (fresh noise)")
        self.sigma_mode = check_sigma_mode(sigma)
        if not isinstance(ranges, dict):
            raise InputError(f"params: expected a mapping of parameter ranges, got {type(ranges).__name__}")
        if not isinstance(noise, dict):
            raise InputError(f"noise: expected a mapping (exposures, exp_time, throughput, mag, seeing), "
                             f"got {type(noise).__name__}")
        for k in NOISE_KEYS:
            if k not in noise:
                raise InputError(f"noise.{k}: missing (the exposure model needs {', '.join(NOISE_KEYS)})")
        missing = [p for p in PARAMS if p not in ranges]
        if missing:
            raise InputError(f"params.{missing[0]}: missing range")
        ranges = {p: list(_pair(ranges[p], f"params.{p}")) for p in PARAMS}
        conditions = {k: list(_pair(noise[k], f"noise.{k}")) for k in ("mag", "seeing")}

        grid = read_grid(grid_path, fields=("flux",))   # InputError naming the file if missing or bad
        if grid.attrs.get("kind") != "instrument":
            raise InputError(f"{grid_path}: expected an instrument-resolution grid (kind='instrument'), "
                             f"got kind={grid.attrs.get('kind')!r}")
        for p in PARAMS:
            lo, hi = ranges[p]
            a = grid.axes[p]
            if lo < a[0] - 1e-9 or hi > a[-1] + 1e-9:
                raise InputError(f"params.{p}: range [{lo}, {hi}] is outside the grid's axis [{a[0]}, {a[-1]}] "
                                 f"of {grid_path}")
        try:
            exposure = ExposureModel(grid.wave, exposures=int(noise["exposures"]), exp_time=float(noise["exp_time"]),
                                     throughput=float(noise["throughput"]))
        except (TypeError, ValueError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"noise: exposures, exp_time and throughput must be numbers ({e})") from None

        self.grid_path = grid_path
        self.n = n
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.dataset_n = None if dataset_n is None else int(dataset_n)
        self.ranges = ranges
        self.noise = dict(noise, **conditions)
        self.noise_level = noise_level
        self.noise_seed = noise_seed
        self._rng = None if noise_seed is not None else np.random.default_rng(rng_seed)
        self._interp = GridInterpolator(grid)
        self._exposure = exposure
        self._wave = np.asarray(grid.wave, float)
        self._table = None        # the parameter table, drawn on first use (_params_table)
        self._theta = self._mag = self._seeing = None   # its columns the simulation needs, as arrays
        self._snr = None          # snr at noise level 1, simulated on first use
        self._blocks = OrderedDict()   # (chunk, rows key) -> (flux, sigma) float32: the last CACHE_BLOCKS

    @classmethod
    def from_config(cls, cfg, grid_path, noise_level, n=None, noise_seed=None, rng_seed=None, sigma=None,
                    split="train", like_file=False, seed=None):
        """The view of ``n`` spectra (default: ``datasets.<split>.n``) drawn as the workflow simulates
        the data set of ``split`` (:func:`simulator_settings`: its seed, ``params``, ``noise`` with the
        split's ``mag``, ``datasets.chunk_size``); ``sigma`` defaults to ``noise.sigma``. ``like_file``:
        row for row the first ``n`` rows of that file (``dataset_n = datasets.<split>.n``; needs n <= it).
        ``seed``: other stars than the file's (default: the split's seed, ``split_seed(cfg, split)``);
        a variant with ``train_source: simulator`` trains on ``split_seed(cfg, "simulator")``'s."""
        d = cfg["datasets"][split]
        file_n = d.get("n")
        n = file_n if n is None else n
        s = simulator_settings(cfg, split, seed)
        return cls(grid_path, n, cfg["params"], s["seed"], s["noise"], noise_level, noise_seed=noise_seed,
                   rng_seed=rng_seed, sigma=cfg["noise"].get("sigma", "estimated") if sigma is None else sigma,
                   chunk_size=s["chunk_size"], dataset_n=file_n if like_file else None)

    # -- the stars -------------------------------------------------------------------------------
    def _chunk_rows(self, c):
        """How many rows chunk ``c`` draws: ``chunk_size``, or the short last chunk of ``dataset_n``."""
        if self.dataset_n is None:
            return self.chunk_size
        return min(self.chunk_size, self.dataset_n - c * self.chunk_size)

    def _draw_chunk(self, c):
        """(theta (m, 4), mag (m,), seeing (m,)) of chunk ``c``: a data set file's (draw_chunk_params)."""
        return draw_chunk_params(self._interp, self.ranges, self.noise, self.seed, c, self._chunk_rows(c),
                                 self.grid_path)

    def _params_table(self):
        if self._table is None:
            cols = np.empty((self.n, len(TABLE_COLUMNS)))
            for c, start in enumerate(range(0, self.n, self.chunk_size)):
                theta, mag, seeing = self._draw_chunk(c)
                k = min(self.chunk_size, self.n - start)
                cols[start:start + k] = np.column_stack([theta, np.zeros(len(mag)), mag, np.zeros(len(mag)),
                                                         seeing])[:k]
            self._table = pd.DataFrame(cols, columns=list(TABLE_COLUMNS))
            self._theta = np.ascontiguousarray(cols[:, :len(PARAMS)])
            self._mag = cols[:, TABLE_COLUMNS.index("mag")].copy()
            self._seeing = cols[:, TABLE_COLUMNS.index("seeing")].copy()
        return self._table

    def _simulate(self, rows):
        """Clean flux and sigma at noise level 1 of the view rows ``rows`` (increasing), float32 as a file
        stores them: :func:`~pfslogg.data.dataset.simulate_chunk`, row by row (so any subset of a chunk
        gives the same values as the whole chunk)."""
        self._params_table()
        theta, mag, seeing = self._theta[rows], self._mag[rows], self._seeing[rows]
        flux, sigma = simulate_chunk(self._interp, self._exposure, theta, mag, seeing)
        bad = ~(np.isfinite(flux).all(axis=1) & (np.isfinite(sigma) & (sigma > 0)).all(axis=1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{self.grid_path}: the spectrum simulated at {dict(zip(PARAMS, map(float, theta[i])))} "
                             f"(row {int(rows[i])}) has NaN, infinite or non-positive flux/sigma")
        return flux, sigma

    def _clean(self, rows, dtype=np.float32):
        """(flux, sigma) of the view rows ``rows`` (increasing), block by block of the chunks they fall
        in, through the small cache of the last blocks: the float32 values a file stores, as ``dtype``
        (float64: the exact same values, cast once here instead of a second pass)."""
        out_f = np.empty((len(rows), self.n_pixels), dtype)
        out_s = np.empty_like(out_f)
        if not len(rows):
            return out_f, out_s
        chunk = rows // self.chunk_size
        edges = np.flatnonzero(np.diff(chunk)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(rows)]):
            part = rows[lo:hi]
            contiguous = part[-1] - part[0] + 1 == len(part)
            key = (int(part[0]), int(part[-1]) + 1) if contiguous else part.tobytes()
            hit = self._blocks.get(key)
            if hit is None:
                hit = self._simulate(part)
                self._blocks[key] = hit
                while len(self._blocks) > CACHE_BLOCKS:
                    self._blocks.popitem(last=False)
            else:
                self._blocks.move_to_end(key)
            out_f[lo:hi], out_s[lo:hi] = hit
        return out_f, out_s

    def _check_rows(self, rows):
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.n or np.any(np.diff(rows) <= 0)):
            raise InputError(f"SimulatorView: rows must be increasing indices in [0, {self.n})")
        return rows

    # -- the View interface ------------------------------------------------------------------------
    @property
    def fixed(self):
        return self.noise_seed is not None

    @property
    def wave(self):
        return self._wave

    @property
    def params(self):
        return self._params_table()

    @property
    def logg(self):
        return self._params_table()["log_g"].to_numpy(float)

    def read_rows(self, rows, rng=None):
        """``(flux, sigma)`` float64 (B, n_pix) of the rows ``rows`` (increasing indices): the clean
        flux plus ``noise_level * sigma * eps``; fresh eps from ``rng`` when given, else from the view's
        generator (one draw of shape (B, n_pix)), or the fixed eps of these rows."""
        return self._read_rows(rows, rng, True)

    def read_flux(self, start, stop):
        return self.read_flux_rows(np.arange(start, stop))

    def read_flux_rows(self, rows, rng=None):
        return self._read_rows(rows, rng, False)[0]

    def _read_rows(self, rows, rng, with_sigma):
        rows = self._check_rows(rows)
        flux, error = self._clean(rows, np.float64)
        if self.noise_level > 0:
            eps = fixed_noise_rows(self.noise_seed, rows, self.n_pixels) if self.fixed \
                else (rng or self._rng).standard_normal(flux.shape)
            flux = add_noise(flux, error, eps, self.noise_level)
        if not with_sigma:
            return flux, None
        if self.sigma_mode == "stored" or self.noise_level == 0:
            return flux, error * self.noise_level
        return flux, self._exposure.estimate_sigma(flux, self._mag[rows], self._seeing[rows], self.noise_level)

    def read_clean_rows(self, rows):
        """The noiseless flux (B, n_pix), float64, of the rows ``rows`` (increasing indices)."""
        return self._clean(self._check_rows(rows), np.float64)[0]

    def snr(self):
        """Per-spectrum SNR at this noise level: median(flux / (noise_level * sigma)) as a file's ``snr``
        column holds it at noise level 1 (float32 arithmetic); inf at noise level 0. The first call
        simulates every row (block by block); the n values are kept."""
        if self.noise_level == 0:
            return np.full(self.n, np.inf)
        if self._snr is None:
            out = np.empty(self.n)
            for a in range(0, self.n, self.chunk_size):
                b = min(a + self.chunk_size, self.n)
                flux, sigma = self._clean(np.arange(a, b))
                out[a:b] = spectrum_snr(flux, sigma)
            self._snr = out
        return self._snr / self.noise_level
