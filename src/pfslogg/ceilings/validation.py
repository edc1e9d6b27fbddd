"""Is the CRLB right, and can it be reached? The checks of the Cramer-Rao bound on the project's grid.

:func:`crlb_validation` runs, on the instrument grid, for the cubic interpolant (the project's forward
model) and the multilinear one (the original study's):

* ``node_jumps``: the per-spectrum bound just above / just below the nearest node of each varied axis
  over random points (the multilinear bound jumps; the cubic one is continuous);
* ``cell_profile``: the bound along log g through a few cells at one star and one noise -- whether it
  depends on where the point sits in its cell;
* ``step_sensitivity``: the bound from central finite differences with step = f x grid step over the
  exact one, at random points and on grid nodes (the original study's method: f = 1 on nodes);
* ``ml``: maximum-likelihood fits (:mod:`pfslogg.ceilings.mlfit`) over many noise draws at high SNR,
  at cell centres and next to log g nodes: var(ML) / CRLB with its interval;
* ``interpolation_error``: held-out nodes -- every other node of one axis left out, the rest
  interpolated there -- the rms error of the normalised flux, also in units of the per-pixel noise
  at SNR 10 (how far the interpolant is from the model it stands for between nodes).
"""

import numpy as np

from .. import PARAMS
from ..data.dataset import draw_params
from ..data.gridio import Grid
from ..data.interp import GridInterpolator, normalization, normalize
from ..data.noise import ETC_SEEING
from .fisher import cell_profile, crlb_logg, grid_steps, step_sensitivity, varied_params
from .mlfit import ml_variance

REFERENCE_MAG = 21.5
METHODS = ("cubic", "linear")


def _sigma(interp, exposure, theta, mag=REFERENCE_MAG):
    flux = interp(theta)
    return exposure.sigma(flux, np.full(len(theta), mag), np.full(len(theta), ETC_SEEING)) / normalization(flux)


def _scaled_to_snr(interp, sigma, theta, snr):
    mu = normalize(interp(theta))
    return sigma * np.median(mu / sigma, axis=1, keepdims=True) / snr


def _nodes_near(interp, theta, d):
    """Each point moved onto its nearest node of axis ``d``."""
    a = interp.axes[d]
    out = theta.copy()
    out[:, d] = a[np.argmin(np.abs(a[None, :] - theta[:, d:d + 1]), axis=1)]
    return out


def node_jumps(interps, exposure, theta, ranges, eps=1e-7):
    """Per method and varied axis: CRLB(node + eps) / CRLB(node - eps) at the nearest interior node."""
    out = {}
    for method, interp in interps.items():
        out[method] = {}
        for p in varied_params(ranges):
            d = PARAMS.index(p)
            a = interp.axes[d]
            at = _nodes_near(interp, theta, d)
            at = at[(at[:, d] > max(a[0], ranges[p][0])) & (at[:, d] < min(a[-1], ranges[p][1]))]
            sigma = _sigma(interp, exposure, at)
            up, down = at.copy(), at.copy()
            up[:, d] += eps * (a[1] - a[0])
            down[:, d] -= eps * (a[1] - a[0])
            ratio = crlb_logg(interp, up, sigma, ranges) / crlb_logg(interp, down, sigma, ranges)
            big = np.maximum(ratio, 1 / ratio)
            out[method][p] = {"n": int(len(at)), "jump_median": float(np.median(big)),
                              "jump_p90": float(np.percentile(big, 90)), "jump_max": float(big.max())}
    return out


def interpolation_error(grid, snr=10.0):
    """Held-out nodes (module docstring) of every axis with >= 5 nodes, per method."""
    out = {}
    flux = np.asarray(grid.flux, float)
    for d, p in enumerate(PARAMS):
        a = np.asarray(grid.axes[p], float)
        if len(a) < 5:
            continue
        keep = np.arange(0, len(a), 2)
        held = np.arange(1, len(a) - 1, 2)
        sub = Grid(wave=grid.wave, axes={**grid.axes, p: a[keep]}, flux=np.take(flux, keep, axis=d),
                   cont=None, mask=np.take(grid.mask, keep, axis=d), attrs=grid.attrs)
        truth = np.moveaxis(np.take(flux, held, axis=d), d, 0)                   # (held, ..., n_pix)
        ok = np.moveaxis(np.take(grid.mask, held, axis=d), d, 0)
        mesh = np.stack(np.meshgrid(*[grid.axes[q] if q != p else a[held] for q in PARAMS], indexing="ij"), -1)
        mesh = np.moveaxis(mesh, d, 0)[ok]
        truth = normalize(truth[ok])
        out[p] = {"step_held_out": float(np.median(np.diff(a[keep])))}
        for method in METHODS:
            interp = GridInterpolator(sub, method=method)
            fine = interp.covered(mesh)
            rms = np.sqrt(np.mean((normalize(interp(mesh[fine])) - truth[fine]) ** 2, axis=1))
            out[p][method] = {"n": int(fine.sum()), "rms_median": float(np.median(rms)),
                              "rms_p90": float(np.percentile(rms, 90)),
                              "rms_over_noise_median": float(np.median(rms) * snr)}
    return out


def _in_prior(value, bounds):
    """The profile star's parameter, clipped into the prior (a fixed parameter takes its value)."""
    return float(np.clip(float(value), *bounds))


def ml_summary(rows):
    """Per interpolant: the range of var(ML) / CRLB, and the row farthest from 1 (``worst``)."""
    out = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        worst = max(mine, key=lambda r: abs(r["ratio"] - 1))
        out[method] = {"ratio_min": min(r["ratio"] for r in mine), "ratio_max": max(r["ratio"] for r in mine),
                       "within_20_percent": all(abs(r["ratio"] - 1) < 0.2 for r in mine),
                       "worst": {k: worst[k] for k in ("log_g", "node_distance", "ratio", "ratio_ci")}}
    return out


def crlb_validation(grid, ranges, exposure, cfg, seed=0):
    """Metrics and per-point details of all checks (module docstring). ``cfg``: config
    ``ceiling.validation`` (n_points, fractions, ml_snr, ml_draws, ml_logg, profile)."""
    interps = {m: GridInterpolator(grid, method=m) for m in METHODS}
    rng = np.random.default_rng([int(seed), 41])
    theta = draw_params(rng, int(cfg["n_points"]), ranges)
    theta = theta[interps["cubic"].covered(theta)]
    metrics = {"n_points": int(len(theta)), "nuisance": varied_params(ranges)[1:]}
    metrics["node_jumps"] = node_jumps(interps, exposure, theta, ranges)

    sens = {}
    for method, interp in interps.items():
        sigma = _sigma(interp, exposure, theta)
        nodes = theta.copy()
        for p in varied_params(ranges):
            nodes = _nodes_near(interp, nodes, PARAMS.index(p))
        sens[method] = {"random": step_sensitivity(interp, theta, sigma, ranges, cfg["fractions"]),
                        "nodes": step_sensitivity(interp, nodes, _sigma(interp, exposure, nodes), ranges,
                                                  cfg["fractions"])}
    metrics["step_sensitivity"] = sens

    prof = cfg["profile"]
    star = np.array([_in_prior(prof[p], ranges[p]) if p != "log_g" else np.mean(prof["log_g"]) for p in PARAMS])
    logg = np.linspace(*prof["log_g"], int(prof["n"]))
    details = {"profile": {"log_g": logg.tolist()}}
    for method, interp in interps.items():
        sigma = _scaled_to_snr(interp, _sigma(interp, exposure, star[None]), star[None], float(prof["snr"]))[0]
        details["profile"][method] = np.sqrt(cell_profile(interp, star, logg, sigma, ranges)).tolist()
    metrics["profile"] = {"snr": float(prof["snr"]), "star": dict(zip(PARAMS, star.tolist())),
                          "nodes": [float(v) for v in interps["cubic"].axes[1] if logg[0] <= v <= logg[-1]],
                          **{f"{m}_sigma_min_range": [float(np.min(details["profile"][m])),
                                                      float(np.max(details["profile"][m]))] for m in METHODS}}

    which = varied_params(ranges)
    ml = []
    for method, interp in interps.items():
        for k, g in enumerate(cfg["ml_logg"]):
            point = star.copy()
            point[PARAMS.index("log_g")] = float(g)
            sigma = _scaled_to_snr(interp, _sigma(interp, exposure, point[None]), point[None], float(cfg["ml_snr"]))[0]
            # the same draws for both interpolants at a point (paired), other draws at other points
            r = ml_variance(interp, point, sigma, which, n_draws=int(cfg["ml_draws"]), seed=[int(seed), 43, k])
            node_dist = float(np.min(np.abs(interp.axes[1] - g)))
            step = float(grid_steps(interp, point[None])[0, 1])
            ml.append({"method": method, "log_g": float(g), "node_distance": node_dist,
                       "position": "centre" if abs(node_dist - step / 2) < 1e-9 else "near node", **r})
    metrics["ml"] = {"snr": float(cfg["ml_snr"]), "n_draws": int(cfg["ml_draws"]), "rows": ml, **ml_summary(ml)}
    metrics["original_method"] = {m: next((r for r in sens[m]["nodes"] if r["fraction"] == 1.0), None)
                                  for m in METHODS}
    metrics["interpolation_error"] = interpolation_error(grid)
    return metrics, details
