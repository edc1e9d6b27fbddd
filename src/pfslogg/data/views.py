"""Views of a data set at a noise level: what estimators train on and are evaluated with.

A noise level and a training size are *views* of the one stored data set (DESIGN.md section 2):
the file holds the clean flux and sigma at noise level 1; a view of the first ``n`` rows adds
``noise_level * sigma * eps``. Nothing is re-simulated when a grid of noise levels or sizes changes.
The sigma a view returns with the noisy flux is, by default, estimated from that noisy flux
(``noise.sigma: estimated``; the stored one, computed from the clean flux, reveals it: ``stored`` is
the ablation): :class:`NoisyView`.

Two kinds of noise (DESIGN.md):

* **fixed** (validation, test): ``noise_seed`` given; eps is a fixed function of (seed, row), so
  every estimator, size and noise level sees the same eps on the same row (paired comparisons);
* **fresh** (training): ``noise_seed`` is None; every read draws new eps from the view's own
  generator (seeded by ``rng_seed``), so an estimator that passes over the data twice sees two
  noise realisations, as a neural network trained for several epochs should.

Every view offers the same public interface (:class:`View`), and it is the only way data reach
a model -- no model or loader reaches into another view's private state:

* ``n``, ``noise_level``, ``fixed``, ``wave``, ``n_pixels``, ``params`` (the parameter table of
  its rows), ``logg`` (true log g), ``y`` (the label a model learns: log g unless a
  :class:`TargetView` names another column), ``snr()``;
* ``read(start, stop)`` -> ``(flux, sigma)`` of rows ``[start, stop)``, ``read_rows(rows, rng)`` of
  increasing row indices (fresh noise from ``rng`` when given, else the view's own generator),
  ``batches(size)`` -> ``(start, stop, flux, sigma)``, ``load()``; ``read_clean(start, stop)`` /
  ``read_clean_rows(rows)``: the noiseless flux of the same rows (a denoiser's target);
* ``read_flux(start, stop)`` / ``read_flux_rows(rows, rng)``, ``batches(size, sigma=False)``,
  ``load(sigma=False)``: the noisy flux alone -- bitwise what ``read`` gives, with the same draws --
  for models that read no sigma (a view's estimated sigma is a third of a read's cost);
* ``noise_state()`` / ``set_noise_state(state)``: the generator state of fresh noise (None for
  fixed noise), so a streamed training run can be checkpointed and resumed exactly.

:class:`MemoryView` holds the rows of a view in memory, read once (one noise realisation, fixed
from then on): for parts that pass over the same training data many times (a mixture's gates).
:class:`FluxCache` keeps the flux reads of a view with fixed noise (a network's validation view,
read once per epoch).

Wrappers over any view: :class:`SubsetView` (rows selected by a mask, e.g. an expert's parameter
bin; with ``rng_seed`` its own stream of fresh noise, so that parts trained one after another --
or resumed after a kill -- see the same noise whatever happened before), :class:`TargetView`
(another label), :class:`MappedView` (a function applied to the flux of every batch: gate features,
extra inputs), :class:`TransformView` (a fitted denoiser applied to the flux of every batch).

:class:`~pfslogg.data.simview.SimulatorView` offers the same interface over spectra simulated from the
instrument grid when read (no file; its noise exactly a NoisyView's): the training view of the cells of
a variant with ``train_source: simulator``.
"""

import numpy as np

from ..errors import InputError
from .dataset import add_noise
from .noise import check_sigma_mode

ROW_SPAN = 4096   # rows of the file read at once when gathering scattered rows


class View:
    """The public interface of every view (see the module docstring). Subclasses define
    ``n``, ``noise_level``, ``fixed``, ``wave``, ``params``, ``logg``, ``read_rows`` and
    ``snr``; ``read``, ``batches`` and ``load`` follow from them."""

    @property
    def n_pixels(self):
        return len(self.wave)

    @property
    def y(self):
        """The label a model learns (dex): log g."""
        return self.logg

    def read(self, start, stop):
        """``(flux, sigma)`` of rows ``[start, stop)``: float64 arrays (B, n_pix)."""
        return self.read_rows(np.arange(start, stop))

    def read_rows(self, rows, rng=None):  # pragma: no cover - interface
        raise NotImplementedError

    def read_flux(self, start, stop):
        """The noisy flux of rows ``[start, stop)`` alone: ``read(start, stop)[0]``, bitwise, with the same
        random draws; a view whose sigma costs work of its own (the estimated sigma) skips it. What a
        model that reads no sigma is given (the networks' log g stream, the in-memory estimators)."""
        return self.read(start, stop)[0]

    def read_flux_rows(self, rows, rng=None):
        """The noisy flux of the rows ``rows`` alone: ``read_rows(rows, rng)[0]`` (see :meth:`read_flux`)."""
        return self.read_rows(rows, rng)[0]

    def read_clean(self, start, stop):
        """The noiseless flux of rows ``[start, stop)`` (B, n_pix), float64: the target of a denoiser,
        never a model's input (a view's ``read`` is what a model sees)."""
        return self.read_clean_rows(np.arange(start, stop))

    def read_clean_rows(self, rows):  # pragma: no cover - interface
        raise InputError(f"{type(self).__name__}: this view has no noiseless flux")

    def noise_state(self):
        return None

    def set_noise_state(self, state):
        if state is not None:
            raise InputError(f"{type(self).__name__}: a view with fixed noise has no noise generator to restore")

    def batches(self, size=4096, sigma=True):
        """Yield ``(start, stop, flux, sigma)`` over the view's rows, in order; with ``sigma=False`` the
        flux alone (:meth:`read_flux`: the same values, sigma None)."""
        for start in range(0, self.n, size):
            stop = min(start + size, self.n)
            if sigma:
                flux, s = self.read(start, stop)
            else:
                flux, s = self.read_flux(start, stop), None
            yield start, stop, flux, s

    def load(self, dtype=np.float32, sigma=True):
        """All rows at once: ``(flux, sigma)`` arrays of ``dtype`` (for in-memory estimators);
        sigma is None where the view has none (a :class:`MappedView`) or ``sigma=False`` (the flux
        alone, as :meth:`batches`)."""
        X = S = None
        for a, b, flux, sigma in self.batches(sigma=sigma):
            if X is None:
                X = np.empty((self.n, flux.shape[1]), dtype=dtype)
                S = None if sigma is None else np.empty((self.n, sigma.shape[1]), dtype=dtype)
            X[a:b] = flux
            if S is not None:
                S[a:b] = sigma
        return X, S


class FreshNoise:
    """``noise_state`` / ``set_noise_state`` of a view whose fresh noise comes from its own generator
    ``_rng`` (with fixed noise, ``fixed`` true: no state, as :class:`View`)."""

    def noise_state(self):
        return None if self.fixed else self._rng.bit_generator.state

    def set_noise_state(self, state):
        if self.fixed:
            return View.set_noise_state(self, state)
        self._rng.bit_generator.state = state


class NoisyView(FreshNoise, View):
    """Rows ``[0, n)`` of a :class:`~pfslogg.data.dataset.SpectraSet` at ``noise_level``.

    ``sigma`` (config ``noise.sigma``): which sigma reads return with the noisy flux --
    ``"estimated"`` (default), the estimate from that same noisy flux and the row's observing
    conditions (:meth:`~pfslogg.data.noise.ExposureModel.estimate_sigma` times the noise level: a
    function of what is observed, deterministic for fixed noise, no extra random draws for fresh
    noise), or ``"stored"``, the file's sigma (from the clean flux) times the noise level, which
    reveals the clean spectrum. At noise level 0 sigma is 0 in both modes."""

    def __init__(self, dataset, noise_level, n=None, noise_seed=None, rng_seed=None, sigma="estimated"):
        if noise_level < 0 or not np.isfinite(noise_level):
            raise InputError(f"noise level {noise_level}: expected a finite number >= 0")
        n = dataset.n if n is None else int(n)
        if not 1 <= n <= dataset.n:
            raise InputError(f"{dataset.path}: a view of {n} spectra was asked for, the data set holds "
                             f"{dataset.n} (training sizes must not exceed datasets.<split>.n)")
        if noise_seed is None and rng_seed is None:
            raise InputError("NoisyView: give noise_seed (fixed noise) or rng_seed (fresh noise)")
        self.dataset = dataset
        self.noise_level = float(noise_level)
        self.n = n
        self.noise_seed = noise_seed
        self._rng = None if noise_seed is not None else np.random.default_rng(rng_seed)
        self.sigma_mode = check_sigma_mode(sigma)
        self._observing = dataset.exposure_model() if sigma == "estimated" else None

    def _sigma(self, flux, error, rows):
        """What reads return as sigma for the noisy ``flux`` of view rows ``rows`` (see the class)."""
        if self._observing is None or self.noise_level == 0:
            return error * self.noise_level
        model, mag, seeing = self._observing
        return model.estimate_sigma(flux, mag[rows], seeing[rows], self.noise_level)

    @property
    def fixed(self):
        return self.noise_seed is not None

    @property
    def wave(self):
        return self.dataset.wave

    @property
    def logg(self):
        return self.dataset.logg[: self.n]

    @property
    def params(self):
        return self.dataset.params.iloc[: self.n]

    def _noisy(self, start, stop):
        if self.fixed:
            return self.dataset.noisy(start, stop, self.noise_level, seed=self.noise_seed)
        return self.dataset.noisy(start, stop, self.noise_level, rng=self._rng)

    def read(self, start, stop):
        flux, error = self._noisy(start, stop)
        return flux, self._sigma(flux, error, slice(start, start + len(flux)))

    def read_flux(self, start, stop):
        return self._noisy(start, stop)[0]

    def read_rows(self, rows, rng=None):
        """``(flux, sigma)`` of the rows ``rows`` (increasing indices into the view), read span by span
        (contiguous reads of at most ROW_SPAN file rows); fresh noise is drawn for these rows only,
        from ``rng`` when given, else from the view's generator."""
        return self._read_rows(rows, rng, True)

    def read_flux_rows(self, rows, rng=None):
        return self._read_rows(rows, rng, False)[0]

    def _read_rows(self, rows, rng, with_sigma):
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.n or np.any(np.diff(rows) <= 0)):
            raise InputError(f"{self.dataset.path}: rows must be increasing indices in [0, {self.n})")
        flux = np.empty((len(rows), self.n_pixels))
        sigma = np.empty_like(flux) if with_sigma else None
        i = 0
        while i < len(rows):
            a = int(rows[i])
            j = int(np.searchsorted(rows, a + ROW_SPAN, side="left"))
            b = int(rows[j - 1]) + 1
            f, e = self.dataset.read_rows(rows[i:j])
            if self.noise_level > 0:
                eps = self.dataset.fixed_noise(a, b, self.noise_seed)[rows[i:j] - a] if self.fixed \
                    else (rng or self._rng).standard_normal(f.shape)
                f = add_noise(f, e, eps, self.noise_level)
            flux[i:j] = f
            if with_sigma:
                sigma[i:j] = self._sigma(f, e, rows[i:j])
            i = j
        return flux, sigma

    def read_clean_rows(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.n or np.any(np.diff(rows) <= 0)):
            raise InputError(f"{self.dataset.path}: rows must be increasing indices in [0, {self.n})")
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):   # contiguous: one read
            return self.dataset.read(int(rows[0]), int(rows[-1]) + 1)[0].astype(float)
        out, i = np.empty((len(rows), self.n_pixels)), 0
        while i < len(rows):   # span by span, as read_rows
            j = int(np.searchsorted(rows, rows[i] + ROW_SPAN, side="left"))
            out[i:j] = self.dataset.read_rows(rows[i:j])[0]
            i = j
        return out

    def snr(self):
        """Per-spectrum SNR at this noise level: median(flux / (noise_level * error)); inf at 0."""
        with np.errstate(divide="ignore"):
            return self.dataset.snr(1.0)[: self.n] / self.noise_level if self.noise_level > 0 else \
                np.full(self.n, np.inf)


class _Wrapper(View):
    """A view over another view (``base``) that passes everything through unless it says otherwise."""

    def __init__(self, base):
        if not isinstance(base, View):
            raise InputError(f"{type(self).__name__}: expected a view, got {type(base).__name__}")
        self.base = base

    n = property(lambda self: self.base.n)
    noise_level = property(lambda self: self.base.noise_level)
    fixed = property(lambda self: self.base.fixed)
    wave = property(lambda self: self.base.wave)
    params = property(lambda self: self.base.params)
    logg = property(lambda self: self.base.logg)
    y = property(lambda self: self.base.y)

    def read(self, start, stop):
        return self.base.read(start, stop)

    def read_rows(self, rows, rng=None):
        return self.base.read_rows(rows, rng)

    def read_clean_rows(self, rows):
        return self.base.read_clean_rows(rows)

    def noise_state(self):
        return self.base.noise_state()

    def set_noise_state(self, state):
        self.base.set_noise_state(state)

    def snr(self):
        return self.base.snr()


class SubsetView(_Wrapper):
    """The rows of ``base`` where ``mask`` (bool, base.n) is true, in their order; or ``rows``
    (increasing indices). Fixed noise is the base's (the same eps on the same row); fresh noise is
    drawn for the rows read from the subset's own generator (``rng_seed``) or else the base's."""

    def __init__(self, base, mask=None, rows=None, rng_seed=None, where="subset"):
        super().__init__(base)
        self._rng = None if rng_seed is None or base.fixed else np.random.default_rng(rng_seed)
        if (mask is None) == (rows is None):
            raise InputError(f"{where}: give a mask or rows, not both")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool or mask.shape != (base.n,):
                raise InputError(f"{where}: expected a boolean mask of {base.n} rows, got {mask.dtype} {mask.shape}")
            rows = np.flatnonzero(mask)
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            raise InputError(f"{where}: selects no rows")
        if rows[0] < 0 or rows[-1] >= base.n or np.any(np.diff(rows) <= 0):
            raise InputError(f"{where}: rows must be increasing indices in [0, {base.n})")
        self.rows = rows

    n = property(lambda self: len(self.rows))
    params = property(lambda self: self.base.params.iloc[self.rows])
    logg = property(lambda self: np.asarray(self.base.logg)[self.rows])
    y = property(lambda self: np.asarray(self.base.y)[self.rows])

    def read(self, start, stop):
        return self.base.read_rows(self.rows[start:stop], self._rng)

    def read_rows(self, rows, rng=None):
        return self.base.read_rows(self.rows[np.asarray(rows, dtype=np.int64)], rng or self._rng)

    def read_flux(self, start, stop):
        return self.base.read_flux_rows(self.rows[start:stop], self._rng)

    def read_flux_rows(self, rows, rng=None):
        return self.base.read_flux_rows(self.rows[np.asarray(rows, dtype=np.int64)], rng or self._rng)

    def read_clean_rows(self, rows):
        return self.base.read_clean_rows(self.rows[np.asarray(rows, dtype=np.int64)])

    def noise_state(self):
        return self.base.noise_state() if self._rng is None else self._rng.bit_generator.state

    def set_noise_state(self, state):
        if self._rng is None:
            return self.base.set_noise_state(state)
        self._rng.bit_generator.state = state

    def snr(self):
        return np.asarray(self.base.snr())[self.rows]


class TargetView(_Wrapper):
    """``base`` with another label: ``y`` is the parameter column ``column`` (e.g. "M_H", "T_eff")."""

    def __init__(self, base, column):
        super().__init__(base)
        if column not in base.params.columns:
            raise InputError(f"target '{column}': not a column of the parameter table "
                             f"({', '.join(map(str, base.params.columns))})")
        self.column = column

    y = property(lambda self: self.base.params[self.column].to_numpy(float))

    def read_flux(self, start, stop):
        return self.base.read_flux(start, stop)

    def read_flux_rows(self, rows, rng=None):
        return self.base.read_flux_rows(rows, rng)


class MappedView(_Wrapper):
    """``base`` with ``fn(flux) -> features`` (B, m) applied to the flux of every read; ``sigma`` is
    None (a feature has no noise sigma of its own). ``wave``: the features' positions (default
    0..m-1), ``n_features``: m."""

    def __init__(self, base, fn, n_features, wave=None):
        super().__init__(base)
        self.fn, self.n_features = fn, int(n_features)
        self._wave = np.arange(self.n_features, dtype=float) if wave is None else np.asarray(wave, float)

    wave = property(lambda self: self._wave)

    def _map(self, flux):
        out = np.asarray(self.fn(flux), dtype=float)
        if out.shape != (len(flux), self.n_features):
            raise InputError(f"MappedView: the feature map gave shape {out.shape}, expected "
                             f"({len(flux)}, {self.n_features})")
        return out

    def read(self, start, stop):
        return self._map(self.base.read_flux(start, stop)), None

    def read_rows(self, rows, rng=None):
        return self._map(self.base.read_flux_rows(rows, rng)), None

    def read_clean_rows(self, rows):
        raise InputError("MappedView: features have no noiseless flux")


class TransformView(_Wrapper):
    """``base`` with a fitted transform (a denoiser: ``model.transform(flux, sigma, strength)``) applied
    to the flux of every read, batch by batch; sigma passes through unchanged (what an estimator fed
    denoised spectra is told about their noise is the noisy input's sigma). The noiseless flux is the
    base's."""

    def __init__(self, base, model, strength=None):
        super().__init__(base)
        if not callable(getattr(model, "transform", None)):
            raise InputError(f"TransformView: {type(model).__name__} has no transform(flux, sigma)")
        self.model, self.strength = model, strength

    def _apply(self, flux, sigma):
        out = np.asarray(self.model.transform(flux, sigma, strength=self.strength), dtype=float)
        if out.shape != np.shape(flux):
            raise InputError(f"TransformView: the transform gave shape {out.shape}, expected {np.shape(flux)}")
        return out, sigma

    def read(self, start, stop):
        return self._apply(*self.base.read(start, stop))

    def read_rows(self, rows, rng=None):
        return self._apply(*self.base.read_rows(rows, rng))


class FluxCache(_Wrapper):
    """``base`` (fixed noise) whose flux-only reads (:meth:`read_flux`) are kept after the first, read-only:
    a validation view read once per epoch draws its fixed noise once. Bitwise what ``base`` gives;
    ``read`` (with sigma) and every other read pass through uncached."""

    def __init__(self, base):
        super().__init__(base)
        if not base.fixed:
            raise InputError("FluxCache: the view has fresh noise (every read differs); a cache needs fixed noise")
        self._cache = {}

    def read_flux(self, start, stop):
        key = (int(start), int(stop))
        if key not in self._cache:
            flux = self.base.read_flux(start, stop)
            flux.flags.writeable = False
            self._cache[key] = flux
        return self._cache[key]


class MemoryView(_Wrapper):
    """The first ``n`` rows of ``base`` (all by default) read once into memory (``dtype``): every read
    gives the same noisy flux and sigma -- one realisation of the base's noise, fixed from then on."""

    def __init__(self, base, n=None, dtype=np.float32):
        super().__init__(base)
        n = base.n if n is None else min(int(n), base.n)
        source = base if n == base.n else SubsetView(base, rows=np.arange(n))
        self._flux, self._sigma = source.load(dtype)
        self._n = n

    n = property(lambda self: self._n)
    fixed = property(lambda self: True)
    params = property(lambda self: self.base.params.iloc[: self._n])
    logg = property(lambda self: np.asarray(self.base.logg)[: self._n])
    y = property(lambda self: np.asarray(self.base.y)[: self._n])

    def read(self, start, stop):
        return self._cut(slice(start, stop))

    def read_rows(self, rows, rng=None):
        return self._cut(np.asarray(rows, dtype=np.int64))

    def _cut(self, rows):
        flux = self._flux[rows].astype(float)
        return flux, None if self._sigma is None else self._sigma[rows].astype(float)

    def noise_state(self):
        return None

    def set_noise_state(self, state):
        View.set_noise_state(self, state)

    def snr(self):
        return np.asarray(self.base.snr())[: self._n]

