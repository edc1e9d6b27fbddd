"""Subaru PFS red arm, medium resolution: line-spread function and pixel grid.

The raw grid (R_raw >= 20000, log-uniform wavelengths) is convolved with a Gaussian LSF to
R = 5000 (FWHM = lambda / R, constant in log lambda, the difference kernel
sigma^2 = (1/R)^2 - (1/R_raw)^2 in ln lambda) and then sampled at the 4096 pixel centres spanning
7100-8850 A (0.4274 A/pixel; Tamura et al. 2016). Convolution is done once per grid node;
interpolation in the stellar parameters comes afterwards (both are linear in the flux, so the
order does not matter for linear interpolation, and this is far cheaper).
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..errors import InputError
from .gridio import GridWriter, read_grid

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def pixel_wave(wave_range=(7100.0, 8850.0), n_pixels=4096):
    """Pixel-centre wavelengths (A) of the arm: linear, ``n_pixels`` spanning ``wave_range``."""
    lo, hi = wave_range
    if not (hi > lo and n_pixels > 1):
        raise InputError(f"instrument.wave_range/n_pixels: expected hi > lo and n_pixels > 1, got {wave_range}, {n_pixels}")
    return np.linspace(lo, hi, int(n_pixels))


def log_step(wave):
    """The constant step in ln(lambda) of a log-uniform grid; raises if the grid is not log-uniform."""
    d = np.diff(np.log(wave))
    if np.any(d <= 0):
        raise InputError("raw grid wavelengths: expected strictly increasing values")
    if np.ptp(d) > 1e-3 * d.mean():
        raise InputError("raw grid wavelengths: expected a log-uniform grid (constant d ln lambda)")
    return d.mean()


class Instrument:
    """Convolve-and-resample operator from a raw log-uniform grid to the PFS pixels."""

    def __init__(self, raw_wave, raw_resolution, resolution=5000.0, wave_range=(7100.0, 8850.0), n_pixels=4096):
        self.raw_wave = np.asarray(raw_wave, float)
        self.wave = pixel_wave(wave_range, n_pixels)
        if raw_resolution <= resolution:
            raise InputError(f"grid resolution R={raw_resolution} must exceed the instrument's R={resolution}")
        if self.raw_wave[0] > self.wave[0] or self.raw_wave[-1] < self.wave[-1]:
            raise InputError(
                f"raw grid covers {self.raw_wave[0]:.1f}-{self.raw_wave[-1]:.1f} A, "
                f"expected to cover the instrument's {self.wave[0]:.1f}-{self.wave[-1]:.1f} A")
        dlnl = log_step(self.raw_wave)
        sigma_ln = np.sqrt(1.0 / resolution**2 - 1.0 / raw_resolution**2) * FWHM_TO_SIGMA
        self.sigma_pix = sigma_ln / dlnl  # kernel width in raw samples
        self.resolution = resolution

    def __call__(self, flux):
        """Convolve (..., n_raw) spectra and sample at the pixel centres -> (..., n_pixels)."""
        conv = gaussian_filter1d(np.asarray(flux, float), self.sigma_pix, axis=-1, mode="nearest", truncate=5.0)
        # linear interpolation at pixel centres: the convolved spectrum is oversampled ~12x
        x = np.log(self.wave)
        xp = np.log(self.raw_wave)
        idx = np.clip(np.searchsorted(xp, x) - 1, 0, len(xp) - 2)
        t = (x - xp[idx]) / (xp[idx + 1] - xp[idx])
        return conv[..., idx] * (1 - t) + conv[..., idx + 1] * t


def convolve_grid(raw_path, out_path, resolution=5000.0, wave_range=(7100.0, 8850.0), n_pixels=4096, progress=False):
    """Instrument grid from a raw grid file: same axes and mask, PFS pixels (kind='instrument')."""
    raw = read_grid(raw_path, load=False)
    h5 = raw.attrs.pop("_h5")
    try:
        r_raw = float(raw.attrs.get("resolution", 0))
        if not r_raw:
            raise InputError(f"{raw_path}: grid attribute 'resolution' missing")
        inst = Instrument(raw.wave, r_raw, resolution, wave_range, n_pixels)
        attrs = dict(raw.attrs, kind="instrument", resolution=resolution, raw_resolution=r_raw)
        nodes = list(zip(*np.nonzero(raw.mask)))
        if not nodes:
            raise InputError(f"{raw_path}: grid holds no spectra (mask all False)")
        with GridWriter(out_path, inst.wave, raw.axes, attrs, dtype="float32") as w:
            from ..progress import progress as _progress
            it = _progress(nodes, desc="convolve", unit="spec", enabled=progress)
            for idx in it:
                w.write(idx, inst(raw.flux[idx]), inst(raw.cont[idx]))
    finally:
        h5.close()
