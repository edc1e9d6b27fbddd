"""Views of a data set at a noise level: what estimators train on and are evaluated with.

A noise level and a training size are *views* of the one stored data set (DESIGN.md section 2):
the file holds the clean flux and sigma at noise level 1; a view of the first ``n`` rows adds
``noise_level * sigma * eps``. Nothing is re-simulated when a grid of noise levels or sizes changes.

Two kinds of noise (DESIGN.md):

* **fixed** (validation, test): ``noise_seed`` given; eps is a fixed function of (seed, row), so
  every estimator, size and noise level sees the same eps on the same row (paired comparisons);
* **fresh** (training): ``noise_seed`` is None; every batch draws new eps from the view's own
  generator (seeded by ``rng_seed``), so an estimator that passes over the data twice sees two
  noise realisations, as a neural network trained for several epochs should.

Every batch is ``(start, stop, flux, sigma)``: the noisy flux and the standard deviation of the
noise it carries, ``noise_level * error`` (zero at noise level 0).
"""

import numpy as np

from ..errors import InputError


class NoisyView:
    """Rows ``[0, n)`` of a :class:`~pfslogg.data.dataset.SpectraSet` at ``noise_level``."""

    def __init__(self, dataset, noise_level, n=None, noise_seed=None, rng_seed=None):
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

    @property
    def fixed(self):
        return self.noise_seed is not None

    @property
    def wave(self):
        return self.dataset.wave

    @property
    def n_pixels(self):
        return len(self.dataset.wave)

    @property
    def logg(self):
        return self.dataset.logg[: self.n]

    @property
    def params(self):
        return self.dataset.params.iloc[: self.n]

    def _noisy(self, start, stop):
        if self.fixed:
            flux, error = self.dataset.noisy(start, stop, self.noise_level, seed=self.noise_seed)
        else:
            flux, error = self.dataset.noisy(start, stop, self.noise_level, rng=self._rng)
        return flux, error * self.noise_level

    def batches(self, size=4096):
        """Yield ``(start, stop, flux, sigma)`` over the view's rows, float64 arrays."""
        for start in range(0, self.n, size):
            stop = min(start + size, self.n)
            flux, sigma = self._noisy(start, stop)
            yield start, stop, flux, sigma

    def load(self, dtype=np.float32):
        """All rows at once: ``(flux, sigma)`` arrays of ``dtype`` (for in-memory estimators)."""
        X = np.empty((self.n, self.n_pixels), dtype=dtype)
        S = np.empty_like(X)
        for a, b, flux, sigma in self.batches():
            X[a:b], S[a:b] = flux, sigma
        return X, S

    def snr(self):
        """Per-spectrum SNR at this noise level: median(flux / (noise_level * error)); inf at 0."""
        with np.errstate(divide="ignore"):
            return self.dataset.snr(1.0)[: self.n] / self.noise_level if self.noise_level > 0 else \
                np.full(self.n, np.inf)
