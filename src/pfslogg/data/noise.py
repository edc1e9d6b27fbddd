"""PFS-like exposure and noise model (red arm, medium resolution).

Signal in electrons per pixel and exposure (PFS exposure-time calculator model; REFERENCE.md)::

    S(lambda) = eta * A(seeing) * C(lambda) * 10**(-0.4 (m_AB + 48.6)) * f(lambda)

where ``f`` is the star's spectral shape in f_nu, normalised to mean 1 over the arm (so ``m_AB``
is the star's magnitude in the arm's band, a stand-in for HSC-i), ``C`` the system response per
900 s exposure, ``A`` the fibre-aperture efficiency relative to the calculator's 0.8" seeing,
and ``eta`` an overall throughput factor calibrated to the original study's data. The variance per
exposure is ``S + V0(lambda)`` with ``V0`` = sky continuum + OH sky lines + dark + read noise
(5-pixel extraction). For N exposures::

    SNR(lambda) = sqrt(N) * S / sqrt(S + V0).

Shapes follow the calculator's medium-resolution output (900 s, seeing 0.8", zenith 45 deg, new
moon): median C = 2.58e29 (2.78e29 at 710 nm falling to 2.18e29 at 885 nm), median V0 = 231 e^2,
90th percentile 1466 e^2, ~19 % of pixels above twice the median (OH lines), max ~2e5 e^2; read
noise 4 e-, dark 1e-4 e-/s. The OH forest here is a deterministic pseudo line list (fixed seed)
whose statistics match those quantiles, not the real OH wavelengths; ``bench/`` and the tests check
the quantiles.

Which sigma a model sees (config ``noise.sigma``, :data:`SIGMA_MODES`): data sets store sigma at
noise level 1 computed from the *noiseless* flux, so that sigma is a function of the clean spectrum
and reveals it (Ridge on sigma alone predicts log g; issue 16, Track E). ``estimated`` (the default)
gives models, the template fit and the Bayes ceiling :meth:`ExposureModel.estimate_sigma` of the
noisy observed flux instead -- what a reduction can know -- which carries no more than the flux does;
``stored`` keeps the stored sigma (times the noise level), the ablation that shows the leak.

Calibration of ``eta`` (``DEFAULT_THROUGHPUT``): the original study's test set (HSC-i 20.5-22.5,
seeing 0.5-1.5", 12 x 900 s) had a median SNR (median of flux/sigma per spectrum) of about 8,
spanning about 3-28; with eta = 1 (the calculator's pessimistic conditions) one exposure of a flat
AB = 20 source gives SNR ~ 5 per pixel.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

C_MEDIAN = 2.58e29          # e- per (erg/s/cm^2/Hz) per pixel per 900 s exposure, median over the arm
C_BLUE, C_RED = 2.78e29, 2.18e29
READ_NOISE = 4.0            # e- per pixel per exposure
DARK = 1e-4                 # e-/s per pixel
N_EXTRACT = 5               # pixels summed across the trace in extraction
SKY_CONTINUUM = 120.0       # e^2 per pixel per 900 s, sky continuum at new moon (rising gently to the red)
FIBRE_DIAMETER = 1.05       # arcsec
ETC_SEEING = 0.8            # arcsec: the seeing of the calculator's calibration
EXPOSURE_S = 900.0          # the calculator's exposure time; C and the sky scale with t / 900 s
DEFAULT_THROUGHPUT = 2.2    # calibrated: median SNR 8.0, 5-99 % range 3-27 for the study's magnitudes/seeing
                            # (bench/bench_noise.py prints the calibration)

SIGMA_MODES = ("estimated", "stored")   # noise.sigma: what views give models as sigma (module docstring)

# OH forest: pseudo line list (see module docstring)
_OH_SEED = 20240517
_OH_NLINES = 200
_OH_LOGAMP = (3.0, 1.0)     # log10 peak variance (e^2) per line: mean, scatter
_OH_RESOLUTION = 5000.0


def system_response(wave):
    """C(lambda): e- per pixel per 900 s per unit f_nu (erg/s/cm^2/Hz); 2.78e29 -> 2.18e29 over
    7100-8850 A with a concave shape whose median is 2.58e29."""
    x = np.clip((np.asarray(wave, float) - 7100.0) / 1750.0, 0.0, 1.0)
    return C_BLUE - (C_BLUE - C_RED) * x**1.6


def oh_lines(wave_range=(7000.0, 9000.0)):
    """Deterministic pseudo OH line list: (centres in A, peak variance in e^2 per 900 s)."""
    rng = np.random.default_rng(_OH_SEED)
    n = _OH_NLINES
    centres = np.sort(rng.uniform(*wave_range, size=n))
    amps = 10 ** rng.normal(*_OH_LOGAMP, size=n)
    return centres, amps


def sky_variance(wave, exp_time=EXPOSURE_S):
    """V0(lambda) in e^2 per pixel per exposure: sky continuum + OH lines + dark + read noise."""
    wave = np.asarray(wave, float)
    t = exp_time / EXPOSURE_S
    sky = SKY_CONTINUUM * (1.0 + 0.3 * (wave - 7100.0) / 1750.0)
    centres, amps = oh_lines()
    sig = centres / _OH_RESOLUTION / 2.3548  # LSF of the medium-resolution arm
    # sum of Gaussian lines; evaluate only within +-6 sigma of each line
    oh = np.zeros_like(wave)
    for c, a, s in zip(centres, amps, sig):
        lo, hi = np.searchsorted(wave, [c - 6 * s, c + 6 * s])
        oh[lo:hi] += a * np.exp(-0.5 * ((wave[lo:hi] - c) / s) ** 2)
    detector = N_EXTRACT * (READ_NOISE**2 + DARK * exp_time)
    return t * (sky + oh) + detector


def aperture_efficiency(seeing):
    """Fraction of a Gaussian PSF of FWHM ``seeing`` (arcsec) inside the fibre, relative to 0.8"."""
    def frac(fwhm):
        s = np.asarray(fwhm, float) / 2.3548
        return 1.0 - np.exp(-((FIBRE_DIAMETER / 2) ** 2) / (2 * s**2))
    return frac(seeing) / frac(ETC_SEEING)


def fnu_shape(wave, flux_lambda):
    """f_nu shape of an F_lambda spectrum, normalised to mean 1 over the given pixels."""
    fnu = np.asarray(flux_lambda, float) * np.asarray(wave, float) ** 2
    return fnu / fnu.mean(axis=-1, keepdims=True)


@dataclass(frozen=True)
class ExposureModel:
    """Per-pixel sigma from magnitude, seeing and exposures (see the module docstring)."""

    wave: np.ndarray
    exposures: int = 12
    exp_time: float = EXPOSURE_S
    throughput: float = DEFAULT_THROUGHPUT

    def __post_init__(self):
        if self.exposures < 1:
            raise InputError(f"noise.exposures: expected a positive integer, got {self.exposures}")
        if not self.throughput > 0:
            raise InputError(f"noise.throughput: expected a positive number, got {self.throughput}")
        object.__setattr__(self, "_c", system_response(self.wave) * self.exp_time / EXPOSURE_S)
        object.__setattr__(self, "_v0", sky_variance(self.wave, self.exp_time))
        object.__setattr__(self, "_wave2", np.asarray(self.wave, float) ** 2)

    @property
    def v0(self):
        return self._v0

    def _scale(self, fnu_mean, mag, seeing):
        """Per-spectrum factor throughput x aperture x 10^(-0.4 (m + 48.6)) / mean(f_nu) (float64)."""
        return (self.throughput * aperture_efficiency(seeing) * 10 ** (-0.4 * (np.asarray(mag, float) + 48.6))
                / fnu_mean)

    def signal(self, flux_lambda, mag, seeing=ETC_SEEING):
        """Electrons per pixel per exposure, shape (..., n_pix), in the dtype of ``flux_lambda``."""
        flux_lambda = np.asarray(flux_lambda)
        dtype = flux_lambda.dtype if flux_lambda.dtype in (np.float32, np.float64) else np.float64
        fnu = flux_lambda * self._wave2.astype(dtype)          # f_nu shape, not yet normalised
        scale = self._scale(fnu.mean(axis=-1, dtype=np.float64), mag, seeing)
        fnu *= np.asarray(scale, dtype)[..., None]
        fnu *= self._c.astype(dtype)
        return fnu

    def sigma(self, flux, mag, seeing=ETC_SEEING):
        """1-sigma noise of ``flux`` (any normalisation of an F_lambda spectrum, shape (..., n_pix))
        for the total of ``exposures`` exposures, in the same units (and dtype) as ``flux``."""
        flux = np.asarray(flux)
        s = self.signal(flux, mag, seeing)
        v = s + self._v0.astype(s.dtype)
        np.sqrt(v, out=v)
        v *= flux
        s *= np.sqrt(self.exposures)
        v /= s
        return v

    def estimate_sigma(self, flux, mag, seeing=ETC_SEEING, noise_level=1.0):
        """Noise sigma estimated from an *observed* (noisy) spectrum, as a reduction does: the plug-in
        ``noise_level * sqrt((K y+ + V0) / (N K^2))`` with ``y+`` the observed flux clipped at 0 and
        ``K`` the electrons per pixel and exposure per unit of ``flux`` (S = K x, :meth:`signal`),
        whose mean f_nu is the observed spectrum's own (the clean one is not known to an observer;
        where that mean is not positive -- hopeless noise -- the mean of |f_nu| stands in);
        ``mag`` and ``seeing`` are the known observing conditions, shape (...,).

        On a clean spectrum (``y = x``, ``noise_level`` 1) it equals :meth:`sigma`; it depends on the
        observed flux and the conditions only, never on the clean flux (``noise.sigma: estimated``).
        Shape (..., n_pix), in the units and dtype (float32 or float64) of ``flux``.
        """
        y = np.asarray(flux)
        dtype = y.dtype if y.dtype in (np.float32, np.float64) else np.float64
        y = y.astype(dtype, copy=False)
        fnu = y * self._wave2.astype(dtype)
        mean = fnu.mean(axis=-1, dtype=np.float64)
        if np.ndim(mean) == 0:
            mean = mean if mean > 0 else np.abs(fnu).mean(axis=-1, dtype=np.float64)
        else:   # |f_nu| only for the rows that need it (row by row the same sums)
            low = ~(mean > 0)
            if low.any():
                mean[low] = np.abs(fnu[low]).mean(axis=-1, dtype=np.float64)
        # K in float64, then cast: the per-spectrum factor alone is ~1e-36, too close to float32's
        # subnormals (where :meth:`signal` in float32 loses up to ~1e-3 of it on raw fluxes)
        k = (np.asarray(self._scale(mean, mag, seeing))[..., None] * (self._c * self._wave2)).astype(dtype, copy=False)
        v = np.maximum(y, 0, out=fnu)   # f_nu's buffer, no longer needed
        v *= k
        v += self._v0.astype(dtype)
        np.sqrt(v, out=v)
        k *= np.asarray(np.sqrt(self.exposures), dtype)
        v /= k
        if noise_level != 1:
            v *= np.asarray(noise_level, dtype)
        return v

    def snr(self, flux, mag, seeing=ETC_SEEING):
        """Per-spectrum SNR: median over pixels of flux / sigma (DESIGN.md)."""
        return np.median(np.asarray(flux, float) / self.sigma(flux, mag, seeing), axis=-1)


def check_sigma(sigma, where):
    """Raise if sigma has NaN, inf or non-positive entries."""
    sigma = np.asarray(sigma)
    bad = ~np.isfinite(sigma) | (sigma <= 0)
    if bad.any():
        raise InputError(f"{where}: {int(bad.sum())} error values are NaN, infinite or <= 0; "
                         "expected positive finite sigma")


def check_sigma_mode(mode, where="noise.sigma"):
    """``mode`` if it is one of :data:`SIGMA_MODES`, else InputError naming ``where``."""
    if mode not in SIGMA_MODES:
        raise InputError(f"{where}: expected one of {', '.join(SIGMA_MODES)}, got {mode!r}")
    return mode
