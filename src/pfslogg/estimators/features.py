"""Gate features: what a mixture of experts routes on, computed from the noisy flux only (Track B).

Two families (``features`` of a gate):

* ``"windows"`` -- physics: an equivalent-width-like index per spectral window (line band
  ``[lo, hi]`` in A), ``1 - mean(flux in the band) / mean(flux in the two sidebands)`` with sidebands
  of the band's width on either side (a pseudo-continuum), and continuum colours
  ``ln(mean(flux in band 1) / mean(flux in band 2))``. The default windows are the Ca II triplet,
  Na I doublet, Mg I, K I, O I, an Fe I line and a TiO band head (air wavelengths of
  /work/shared/REFERENCE.md: Cenarro et al. 2001 for the triplet bands; Schiavon et al. 1997 for
  Na I), and one red/blue continuum colour (T_eff).
* ``"spectrum"`` -- the whole spectrum: the first ``n_components`` principal components of the
  noisy training flux with every pixel scaled by its sd over the training rows (fitted on at most
  ``pca_rows`` rows). Unscaled, the top components are the noise of the sky-line pixels, whose
  variance dwarfs the stars' differences (validation R^2 of T_eff from 32 components: 0.25 on the
  fake grid of the tests, against 0.98 scaled).

Each feature is standardised by its training mean and sd. Never sigma: the stored sigma is computed
from the noiseless flux and would reveal the clean spectrum (DESIGN.md section 3).
"""

import numpy as np

from ..errors import InputError

# name -> [lo, hi] (A): line bands; sidebands of the same width on each side are the pseudo-continuum
WINDOWS = {
    "Ca II 8498": [8490.0, 8506.0], "Ca II 8542": [8531.0, 8553.0], "Ca II 8662": [8650.0, 8674.0],
    "Na I 8183/8195": [8177.0, 8201.0], "Mg I 8807": [8802.0, 8812.0], "K I 7699": [7694.0, 7704.0],
    "O I 7774": [7768.0, 7780.0], "Fe I 8689": [8684.0, 8693.0], "TiO 7589": [7589.0, 7640.0],
}
# name -> [lo1, hi1, lo2, hi2] (A): ln(mean flux in band 1 / mean flux in band 2)
COLORS = {"continuum 8700-8850 / 7100-7250": [8700.0, 8850.0, 7100.0, 7250.0]}
KINDS = ("windows", "spectrum")


def _band(wave, lo, hi):
    return (wave >= lo) & (wave <= hi)


def window_weights(wave, windows, colors, where="features"):
    """Weight matrices ``(num, den)`` (n_pix, F) and the colour flags (F,) of the window features:
    each column averages the flux over its band (num) and its pseudo-continuum (den). InputError
    naming ``where.windows.<name>`` (or ``colors``) for a band, or sideband, outside the pixels."""
    wave = np.asarray(wave, float)
    num, den, color = [], [], []

    def mean_weights(mask, key, what):
        if mask.sum() < 1:
            raise InputError(f"{where}.{key}: its {what} holds no pixel")
        return mask / mask.sum()

    for name, band in (windows or {}).items():
        key = f"windows.{name}"
        if not isinstance(band, (list, tuple)) or len(band) != 2 or not band[0] < band[1]:
            raise InputError(f"{where}.{key}: expected [lo, hi] in A with lo < hi, got {band!r}")
        lo, hi = float(band[0]), float(band[1])
        w = hi - lo
        if lo - w < wave[0] or hi + w > wave[-1]:
            raise InputError(f"{where}.{key}: the band [{lo:g}, {hi:g}] A with its sidebands [{lo - w:g}, "
                             f"{hi + w:g}] lies outside the pixels [{wave[0]:g}, {wave[-1]:g}] A")
        num.append(mean_weights(_band(wave, lo, hi), key, "band"))
        den.append(mean_weights(_band(wave, lo - w, lo - 1e-9) | _band(wave, hi + 1e-9, hi + w), key, "sidebands"))
        color.append(False)
    for name, bands in (colors or {}).items():
        key = f"colors.{name}"
        if not isinstance(bands, (list, tuple)) or len(bands) != 4 or not (bands[0] < bands[1] and bands[2] < bands[3]):
            raise InputError(f"{where}.{key}: expected [lo1, hi1, lo2, hi2] in A, got {bands!r}")
        if min(bands) < wave[0] or max(bands) > wave[-1]:
            raise InputError(f"{where}.{key}: bands {list(bands)} lie outside the pixels [{wave[0]:g}, {wave[-1]:g}] A")
        num.append(mean_weights(_band(wave, bands[0], bands[1]), key, "first band"))
        den.append(mean_weights(_band(wave, bands[2], bands[3]), key, "second band"))
        color.append(True)
    if not num:
        raise InputError(f"{where}: no windows or colours to compute features from")
    return np.stack(num, 1), np.stack(den, 1), np.asarray(color)


class FeatureMap:
    """flux (B, n_pix) -> standardised gate features (B, F), from its arrays (see :meth:`fit`)."""

    def __init__(self, arrays):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}

    @classmethod
    def fit(cls, kind, view, windows=None, colors=None, n_components=32, pca_rows=5000, seed=0,
            where="features"):
        """Fit the map on the training view (its first ``pca_rows`` rows for the principal components;
        all rows for the standardisation)."""
        if kind == "windows":
            num, den, color = window_weights(view.wave, WINDOWS if windows is None else windows,
                                             COLORS if colors is None else colors, where)
            raw = {"num": num.astype(np.float32), "den": den.astype(np.float32), "color": color}
        elif kind == "spectrum":
            from sklearn.decomposition import PCA

            k = int(n_components)
            m = min(view.n, int(pca_rows))
            if not 1 <= k <= min(m, view.n_pixels):
                raise InputError(f"{where}.n_components: expected 1..{min(m, view.n_pixels)}, got {n_components}")
            flux = view.read(0, m)[0]
            mean, sd = flux.mean(0), np.maximum(flux.std(0), 1e-12)
            pca = PCA(n_components=k, svd_solver="randomized", random_state=int(seed) % 2**31).fit((flux - mean) / sd)
            raw = {"pca_mean": mean.astype(np.float32), "pca_components": (pca.components_ / sd).astype(np.float32)}
        else:
            raise InputError(f"{where}.features: expected one of {list(KINDS)}, got {kind!r}")
        out = cls({**raw, "mean": np.zeros(0), "scale": np.zeros(0)})
        z = np.concatenate([out.raw(b[2]) for b in view.batches(4096, sigma=False)])
        out.arrays["mean"] = z.mean(0)
        out.arrays["scale"] = np.maximum(z.std(0), 1e-12)
        return out

    @property
    def n_features(self):
        a = self.arrays
        return int(a["num"].shape[1] if "num" in a else a["pca_components"].shape[0])

    def raw(self, flux):
        """Unstandardised features of flux (B, n_pix)."""
        a, flux = self.arrays, np.asarray(flux, np.float32)
        if "num" in a:
            n, d = flux @ a["num"], flux @ a["den"]
            d = np.where(np.abs(d) > 1e-12, d, 1e-12)
            ratio = (n / d).astype(float)
            return np.where(a["color"][None, :], np.log(np.clip(ratio, 1e-6, None)), 1.0 - ratio)
        return ((flux - a["pca_mean"]) @ a["pca_components"].T).astype(float)

    def __call__(self, flux):
        return (self.raw(flux) - self.arrays["mean"]) / self.arrays["scale"]

    def names(self, windows=None, colors=None):
        a = self.arrays
        if "num" in a:
            return list((WINDOWS if windows is None else windows)) + list((COLORS if colors is None else colors))
        return [f"PC {i + 1}" for i in range(self.n_features)]
