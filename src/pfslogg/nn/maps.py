"""Where a fitted network looks, against where the Fisher information on log g is (Track A).

:func:`attention_maps` takes the first ``n_spectra`` rows of the test set seen through the same
fixed noise the models are scored on (:class:`~pfslogg.data.views.NoisyView` with the test noise
seed) and computes, per spectrum, each normalised to sum 1 over pixels:

* ``cls`` and ``rollout`` -- the [CLS] attention of the last layer and the attention rollout
  (:mod:`pfslogg.nn.attention`; a ViT only, ``None`` for other networks);
* ``saliency`` -- the gradient saliency |d log g / d flux| (any neural estimator);
* ``fisher`` -- the per-pixel Fisher information on log g with the other varied parameters as
  nuisances (:func:`pfslogg.ceilings.fisher.fisher_logg_map`): where the information that an ideal
  estimator uses sits.

The maps are averaged per stellar type -- giants (log g < 3.5) or dwarfs, cool (T_eff < 4750 K) or
warm -- and over all spectra, and each network map is compared with the Fisher map of the same
spectra: the Spearman rank correlation over pixels, the share of the map's mass in the 10 % of
pixels with the most Fisher information (0.10 for a flat map) and the share within +-5 A of the
gravity-sensitive lines (:func:`line_list`; the flat map's share is ``metrics["flat"]``).

The normalised Fisher map of a spectrum does not depend on the noise level (a common factor of
sigma cancels), so at noise level 0 the stored sigma is used.
"""

import numpy as np

from .. import PARAMS
from ..ceilings.fisher import fisher_logg_map, varied_params
from ..errors import InputError
from ..evaluation import rank_correlation

LOGG_SPLIT = 3.5        # dex: giants below, dwarfs at or above
TEFF_SPLIT = 4750.0     # K: cool below, warm at or above
GROUPS = {              # name -> (giant?, cool?)
    "cool_giants": (True, True), "warm_giants": (True, False),
    "cool_dwarfs": (False, True), "warm_dwarfs": (False, False),
}
TOP_FRACTION = 0.10     # share of pixels with the most Fisher information
LINE_HALF_WIDTH = 5.0   # A on each side of a line centre
MAX_POINTS = 1024       # points of a map in the details
# The gravity-sensitive features of /work/shared/REFERENCE.md, taken from the synth model's line list.
LINE_SPECIES = ("Ca II", "Na I", "K I", "Mg I", "O I")


def line_list(wave=None):
    """The gravity-sensitive lines: [{"name", "wave"}] (Ca II triplet, Na I, K I, Mg I, O I; air
    wavelengths of :mod:`pfslogg.data.synth`), those inside ``wave``'s range when given."""
    from ..data.synth import named_lines

    out = [{"name": label.rsplit(" ", 1)[0], "wave": float(w)} for label, w in named_lines()
           if label.rsplit(" ", 1)[0] in LINE_SPECIES]
    return _inside(sorted(out, key=lambda r: r["wave"]), wave)


def band_heads(wave=None):
    """The TiO band heads of :mod:`pfslogg.data.synth`: [{"name": "TiO", "wave"}], inside ``wave``."""
    from ..data.synth import tio_band_heads

    return _inside([{"name": "TiO", "wave": float(w)} for w in tio_band_heads()], wave)


def _inside(rows, wave):
    if wave is None:
        return rows
    return [r for r in rows if wave[0] <= r["wave"] <= wave[-1]]


def line_mask(wave, lines, half_width=LINE_HALF_WIDTH):
    """Pixels within ``half_width`` A of any line centre (bool, n_pix)."""
    wave = np.asarray(wave, float)
    centres = np.array([r["wave"] for r in lines], float)
    if not len(centres):
        return np.zeros(len(wave), bool)
    return (np.abs(wave[:, None] - centres[None, :]) <= half_width).any(1)


def normalize_rows(maps):
    """Each row divided by its sum (a row of zeros becomes flat): (n, n_pix) float64."""
    maps = np.asarray(maps, float)
    total = maps.sum(1, keepdims=True)
    flat = np.full_like(maps, 1.0 / maps.shape[1])
    return np.where(total > 0, maps / np.where(total > 0, total, 1.0), flat)


def group_index(params):
    """Group number (index into GROUPS) of every row of a parameter table."""
    giant = params["log_g"].to_numpy(float) < LOGG_SPLIT
    cool = params["T_eff"].to_numpy(float) < TEFF_SPLIT
    keys = list(GROUPS.values())
    return np.array([keys.index((bool(g), bool(c))) for g, c in zip(giant, cool)], int)


def downsample(wave, maps, max_points=MAX_POINTS):
    """Average adjacent pixels into at most ``max_points`` bins: (wave (m,), maps (..., m))."""
    n = len(wave)
    factor = -(-n // max_points)
    starts = np.arange(0, n, factor)
    counts = np.diff(np.append(starts, n))
    return (np.add.reduceat(np.asarray(wave, float), starts) / counts,
            np.add.reduceat(np.asarray(maps, float), starts, axis=-1) / counts)


def _compare(mean, top, lines):
    """Metrics of one group from its mean maps {kind: (n_pix,) or None} (``fisher`` among them)."""
    fisher = mean["fisher"]
    out = {"correlations": {}, "top10_share": {}, "line_share": {}}
    for kind, m in mean.items():
        if kind != "fisher":
            out["correlations"][kind] = None if m is None or fisher is None else rank_correlation(m, fisher)
        if m is None:
            out["top10_share"][kind] = out["line_share"][kind] = None
            continue
        out["top10_share"][kind] = None if top is None else float(m[top].sum())
        out["line_share"][kind] = float(m[lines].sum())
    return out


def attention_maps(est, test_set, noise_level, noise_seed, interp, ranges, n_spectra=400, batch=64,
                   nuisance=None, progress=True):
    """Attention / saliency maps of a fitted neural estimator against the Fisher information on log g.

    ``test_set``: a :class:`~pfslogg.data.dataset.SpectraSet` on the pixels of ``interp`` (the grid
    it was drawn from); the first ``n_spectra`` rows at ``noise_level`` with fixed noise
    ``noise_seed``. ``ranges``: the parameter ranges (which parameters vary: the nuisances).
    Returns ``(metrics, details)``, both JSON-serialisable (module docstring):

    * metrics: ``n_spectra``, ``n_pixels``, ``noise_level``, ``noise_seed``, ``logg_split``,
      ``teff_split``, ``top_fraction``, ``line_half_width``, ``flat`` {top10_share, line_share},
      ``groups`` {name: {n, correlations, top10_share, line_share}} and ``overall`` (the same);
      correlations are per network map kind, the shares per kind and for ``fisher``; None where a
      group is empty or a map does not exist;
    * details: ``estimator`` (class id), ``kinds`` (the network maps present), ``wave`` (A, the
      downsampled axis), ``maps`` {group or "overall": {kind: list or None}} -- the mean normalised
      map averaged over adjacent pixels and multiplied by n_pix (1 = a flat map) --, ``lines`` and
      ``bands`` ([{name, wave}]: the lines of the line share, the TiO heads) and ``nuisance`` (the
      parameters marginalised over in the Fisher map).
    """
    from ..data.views import NoisyView
    from ..progress import progress as _progress
    from .attention import attention_rollout, cls_attention, gradient_saliency

    est._check_fitted()
    wave = np.asarray(test_set.wave, float)
    if len(wave) != len(interp.wave) or not np.allclose(wave, interp.wave):
        raise InputError(f"{test_set.path}: {len(wave)} pixels that are not the grid's {len(interp.wave)} "
                         "(attention maps need the grid the test set was drawn from)")
    n = min(int(n_spectra), test_set.n)
    # the Fisher map is the information of the likelihood the noise was drawn from: the true sigma
    view = NoisyView(test_set, noise_level, n=n, noise_seed=noise_seed, sigma="stored")
    flux, sigma = view.load(np.float32)
    if noise_level == 0:           # the normalised Fisher map does not depend on the noise level
        sigma = test_set.read(0, n)[1]
    params = view.params
    theta = params[list(PARAMS)].to_numpy(float)
    group = group_index(params)
    onehot = np.eye(len(GROUPS))[group]                                   # (n, G)

    vit = est.class_id == "vit"
    kinds = (["cls", "rollout"] if vit else []) + ["saliency"]
    sums = {k: np.zeros((len(GROUPS), len(wave))) for k in kinds + ["fisher"]}
    for a in _progress(range(0, n, batch), desc="attention maps", unit="batch", enabled=progress):
        x = flux[a:a + batch]
        maps = {"saliency": gradient_saliency(est, x, batch_size=batch),
                "fisher": fisher_logg_map(interp, theta[a:a + batch], sigma[a:a + batch], ranges, nuisance)}
        if vit:
            maps["cls"] = cls_attention(est, x, batch_size=batch)
            maps["rollout"] = attention_rollout(est, x, batch_size=batch)
        for k, m in maps.items():
            sums[k] += onehot[a:a + batch].T @ normalize_rows(m)

    counts = onehot.sum(0)
    n_top = max(1, int(round(TOP_FRACTION * len(wave))))
    lines = line_list(wave)
    near = line_mask(wave, lines)
    names = list(GROUPS) + ["overall"]
    mean = {}
    for g, name in enumerate(names):
        c = n if name == "overall" else counts[g]
        mean[name] = {k: ((s.sum(0) if name == "overall" else s[g]) / c if c else None) for k, s in sums.items()}

    def block(name, c):
        f = mean[name]["fisher"]
        top = None if f is None else np.argsort(f)[::-1][:n_top]
        return {"n": int(c), **_compare(mean[name], top, near)}

    metrics = {"n_spectra": int(n), "n_pixels": int(len(wave)), "noise_level": float(noise_level),
               "noise_seed": int(noise_seed), "logg_split": LOGG_SPLIT, "teff_split": TEFF_SPLIT,
               "top_fraction": n_top / len(wave), "line_half_width": LINE_HALF_WIDTH,
               "flat": {"top10_share": n_top / len(wave), "line_share": float(near.mean())},
               "groups": {name: block(name, counts[g]) for g, name in enumerate(GROUPS)},
               "overall": block("overall", n)}
    small_wave, _ = downsample(wave, np.zeros(len(wave)))
    details = {"estimator": est.class_id, "kinds": kinds, "wave": small_wave.tolist(),
               "maps": {name: {k: None if m is None else (downsample(wave, m)[1] * len(wave)).tolist()
                               for k, m in mean[name].items()} for name in names},
               "lines": lines, "bands": band_heads(wave),
               "nuisance": list(varied_params(ranges)[1:] if nuisance is None else nuisance)}
    return metrics, details
