"""The Bayes (minimum mean squared error) ceiling on log g (DESIGN.md section 3).

For a test spectrum y with known noise sigma (``noise.sigma``: see the end), the posterior
mean of log g under the data set's prior and forward model has the least mean squared error of any
estimator. Here::

    p(theta | y)  ~  prior(theta) * exp(-chi2(theta) / 2),   chi2 = sum_i (y_i - mu_i(theta))^2 / sigma_i^2

with mu(theta) the interpolated instrument grid divided by its mean over pixels -- the clean flux of
the data sets, made the same way (``GridInterpolator``, cubic, in float32, mean-normalised) -- and the
prior uniform over the config's ``params`` ranges (over the part of the box the grid covers: data
sets redraw points that fall into holes). The integrals over theta are sums over a regular
midpoint grid inside the ranges (:func:`grid_axes`); the nuisance parameters (T_eff, M_H, and
a_M when it varies) are summed out with log g. For every spectrum against every template::

    chi2 = sum(r^2 / s^2) - 2 (r / s^2) @ d.T + (1 / s^2) @ (d^2).T,   r = y - f_ref, d = f - f_ref

one matrix product per chunk of templates (``f_ref`` a fixed reference template: it keeps the
terms small, so float32 products stay accurate), and the posterior sums are carried over the
chunks with a running log-sum-exp, so memory holds the spectra and one chunk of templates, never
all spectra x all templates (a chunk whose weights for a spectrum are all below e^-60 of its best
adds nothing and is skipped for it). R^2_Bayes = 1 - mean((posterior mean - true log g)^2) / Var_prior,
the same aggregate as every model's R^2 (``pfslogg.evaluation.summarize``). The same weights give the
posterior mean and sd of the other varied parameters (T_eff, M_H, a_M when it varies: one more small
product per chunk), each scored against its own uniform prior's variance: their Bayes ceilings
(``labels`` in the metrics of :func:`bayes_ceiling`).

What the ceiling conditions on: the noisy flux and a given sigma in a Gaussian likelihood, the prior
(uniform in the ranges), and the forward model exactly as interpolated and normalised for the data
sets. It is therefore the ceiling for estimators that know the exact forward model and prior; a
real estimator that faces model error (another grid, an unknown continuum, a misjudged sigma) does
worse, and the ceiling says nothing about that gap. What it does not include: the quadrature error of the parameter grid, which the convergence check
(halving the spacing; ``tests/test_bayes.py``) bounds, and sampling error of the test set, which
the bootstrap intervals show. Per spectrum, ``n_eff`` = (sum w)^2 / sum w^2 over the templates
says how many grid points carry the posterior: below 10 (bright stars, whose posterior is narrower
than the grid step) the grid's mean is quantised, and :func:`refine_unresolved` computes that
spectrum's moments by importance sampling around its maximum-likelihood point instead (same model,
same prior; ``method`` and ``is_n_eff`` in the per-spectrum table). Checked against emcee on
test spectra: ``bench/bench_bayes_sampler.py``.

Which sigma (config ``noise.sigma``, the one the models get):

* ``estimated`` (default): sigma estimated from the noisy flux and the known magnitude and seeing
  (:meth:`~pfslogg.data.noise.ExposureModel.estimate_sigma`), a function of y. The posterior then
  conditions on the noisy flux (and the observing conditions) alone, and a model that also reads
  that sigma has nothing more to learn from it. The likelihood is a plug-in, though: the exact
  posterior given y would give each template its own sigma(theta, magnitude, seeing), which
  differs from the estimate by the noise in y+ and in the spectrum's mean flux (about 1 % per pixel
  at noise level 1: ``bench/bench_error_channel.py``). This is the posterior mean under the plug-in
  likelihood, a close approximation of the Bayes-optimal estimator given y rather than an exact
  bound; ``check_ceiling`` compares models with it within the intervals.
* ``stored``: the true sigma of the clean spectrum, with which the noise was drawn -- the posterior
  given y with that sigma known, but not given what sigma itself says about theta (it is a function
  of the clean spectrum), so a model fed the stored sigma can beat it: the error-channel leak
  (issue 16, Track E), kept as the ablation.
"""

import time

import numpy as np

from .. import PARAMS
from ..data.interp import axis_stencil, normalization, normalize
from ..errors import InputError

LOGG = PARAMS.index("log_g")
LIVE = 60.0   # a chunk whose weights are all below e^-LIVE of a spectrum's best is skipped for it


def other_params(ranges):
    """The parameters besides log g that ``ranges`` varies (hi > lo), in PARAMS order: those whose
    posterior mean and sd come out of the same sums as log g's (a fixed one has nothing to estimate)."""
    return [p for p in PARAMS if p != "log_g" and ranges[p][1] > ranges[p][0]]


class PosteriorAccumulator:
    """Posterior moments of log g for spectra ``y`` (N, n_pix) with noise ``sigma``, accumulated over
    chunks of templates (:meth:`add`) with a running log-sum-exp; :meth:`result` gives them.

    ``dtype``: of the matrix products (float32 or float64; the sums are float64). ``reference``: the
    template subtracted from spectra and templates (default: the mean of the first chunk).
    ``others``: names of further parameters (of PARAMS, not log g) whose posterior mean and sd are
    accumulated with the same weights, read from the ``theta`` columns that :meth:`add` then needs:
    one more (N x C) @ (C x 2k) product per chunk, small next to the chi^2 product (N x 2 n_pix x C).
    """

    def __init__(self, y, sigma, dtype=np.float64, reference=None, others=()):
        self.y = np.asarray(y, float)
        self.sigma = np.asarray(sigma, float)
        if self.y.ndim != 2 or self.sigma.shape != self.y.shape:
            raise InputError(f"posterior: flux {self.y.shape} and sigma {self.sigma.shape} must be 2D of equal shape")
        if not (self.sigma > 0).all() or not np.isfinite(self.sigma).all():
            raise InputError("posterior: sigma must be finite and > 0 (the Bayes ceiling needs noise)")
        self.n_pix = self.y.shape[1]
        self.dtype = np.dtype(dtype)
        n = len(self.y)
        self.log_max = np.full(n, -np.inf)
        self.s0, self.s1, self.s2, self.sq = (np.zeros(n) for _ in range(4))
        self.chi2_min = np.full(n, np.inf)
        self.g0 = None            # log g the moments are centred on (first chunk's mean)
        self.reference = None if reference is None else np.asarray(reference, float)
        self.n_templates = 0
        self.best_theta = None    # parameters of each spectrum's best template (when add() gets theta)
        self.product_s = 0.0      # seconds spent in the chi^2 matrix products (benchmarks)
        self.others = [str(p) for p in others]
        bad = [p for p in self.others if p not in PARAMS or p == "log_g"]
        if bad or len(set(self.others)) != len(self.others):
            raise InputError(f"posterior: others {self.others}: expected distinct parameters of {PARAMS} besides log_g")
        self.other_cols = [PARAMS.index(p) for p in self.others]
        self.st = np.zeros((n, 2 * len(self.others)))   # [sum w t, sum w t^2] of the others, t centred on t0
        self.t0 = None            # the others' values the moments are centred on (first chunk's mean)

    def _start(self, first):
        """lhs = [r / sigma^2, 1 / sigma^2] in the products' dtype and c0 = sum(r^2 / sigma^2), r = y - f_ref."""
        if self.reference is None:
            self.reference = np.asarray(first, float).mean(axis=0)
        w = np.multiply(self.sigma, self.sigma)
        np.reciprocal(w, out=w)
        r = self.y - self.reference
        self.lhs = np.empty((len(r), 2 * self.n_pix), dtype=self.dtype)
        np.multiply(r, w, out=self.lhs[:, :self.n_pix], casting="same_kind")
        self.lhs[:, self.n_pix:] = w
        r *= r
        r *= w
        self.c0 = r.sum(axis=1)
        self.ref = self.reference.astype(self.dtype)
        self.y = self.sigma = None   # all that is needed is in lhs and c0

    def add(self, templates, logg, log_prior=None, theta=None):
        """One chunk: templates (C, n_pix), their log g (C,), log prior weights (C,) or None (equal);
        ``theta`` (C, 4): their parameters, to keep each spectrum's best template's (``best_theta``) and
        for the moments of ``others`` (then required)."""
        templates = np.asarray(templates)
        n_pix = self.n_pix
        if templates.ndim != 2 or templates.shape[1] != n_pix:
            raise InputError(f"posterior: templates {templates.shape}, expected (C, {n_pix})")
        if self.others and (theta is None or np.shape(theta) != (len(templates), len(PARAMS))):
            raise InputError(f"posterior: the moments of {self.others} need theta ({len(templates)}, {len(PARAMS)}), "
                             f"got {None if theta is None else np.shape(theta)}")
        if len(templates) == 0:
            return
        if self.others:
            t = np.asarray(theta, float)[:, self.other_cols]
        if self.n_templates == 0:
            self._start(templates)
            self.g0 = float(np.mean(logg))
            if self.others:
                self.t0 = t.mean(axis=0)
        rhs = np.empty((len(templates), 2 * n_pix), dtype=self.dtype)   # [-2 d, d^2]
        d = rhs[:, :n_pix]
        np.subtract(templates, self.ref, out=d)
        np.multiply(d, d, out=rhs[:, n_pix:])
        d *= -2.0
        t0 = time.perf_counter()
        prod = self.lhs @ rhs.T
        self.product_s += time.perf_counter() - t0
        chi2 = np.add(prod, self.c0[:, None])                           # float64
        del prod
        chunk_min = chi2.min(axis=1)
        if theta is not None:
            if self.best_theta is None:
                self.best_theta = np.full((len(chi2), np.shape(theta)[1]), np.nan)
            better = chunk_min < self.chi2_min
            self.best_theta[better] = np.asarray(theta)[np.argmin(chi2[better], axis=1)]
        self.chi2_min = np.minimum(self.chi2_min, chunk_min)
        if log_prior is None:
            chunk_max = -0.5 * chunk_min
        else:
            chi2 *= -0.5
            chi2 += np.asarray(log_prior, float)[None, :]
            chunk_max = chi2.max(axis=1)
        new_max = np.maximum(self.log_max, chunk_max)
        with np.errstate(invalid="ignore"):           # exp(-inf) = 0 on the first chunk; -inf - -inf: no weight yet
            scale = np.where(np.isneginf(new_max), 1.0, np.exp(self.log_max - new_max))
        for acc in (self.s0, self.s1, self.s2):
            acc *= scale
        self.sq *= scale * scale
        if self.others:
            self.st *= scale[:, None]
        # rows whose best weight in this chunk is below e^-LIVE of their best so far add nothing
        live = np.flatnonzero(chunk_max > new_max - LIVE)
        w = chi2 if len(live) == len(chi2) else chi2[live]
        if log_prior is None:
            w *= -0.5
        w -= new_max[live, None]
        np.exp(w, out=w)                              # the weights
        g = np.asarray(logg, float) - self.g0
        moments = w @ np.stack([np.ones_like(g), g, g * g], axis=1)
        self.s0[live] += moments[:, 0]
        self.s1[live] += moments[:, 1]
        self.s2[live] += moments[:, 2]
        self.sq[live] += np.einsum("ij,ij->i", w, w)
        if self.others:   # a separate product: log g's sums stay as they were, bit for bit
            t -= self.t0
            self.st[live] += w @ np.concatenate([t, t * t], axis=1)
        self.log_max = new_max
        self.n_templates += len(templates)

    def result(self):
        """dict of (N,) arrays: ``mean``, ``sd`` (posterior of log g), ``n_eff`` (effective number of
        templates), ``chi2_min`` (best template's chi^2) and ``log_evidence`` (log sum of the
        weights, up to a constant shared by all spectra); ``best_theta`` (N, 4) or None; ``params``:
        {name: {"mean": (N,), "sd": (N,)}} of the ``others`` (posterior mean and sd of each; {} if none)."""
        if self.n_templates == 0:
            raise InputError("posterior: no templates (is the prior box outside the grid?)")
        m1 = self.s1 / self.s0
        var = np.maximum(self.s2 / self.s0 - m1 * m1, 0.0)
        k = len(self.others)
        params = {}
        for j, p in enumerate(self.others):
            mj = self.st[:, j] / self.s0
            vj = np.maximum(self.st[:, k + j] / self.s0 - mj * mj, 0.0)
            params[p] = {"mean": self.t0[j] + mj, "sd": np.sqrt(vj)}
        return {"mean": self.g0 + m1, "sd": np.sqrt(var), "n_eff": self.s0 ** 2 / self.sq,
                "chi2_min": self.chi2_min, "log_evidence": self.log_max + np.log(self.s0),
                "best_theta": self.best_theta, "params": params}


def posterior_moments(y, sigma, templates, grid_logg, log_prior=None, chunk=1024, dtype=np.float64,
                      reference=None, theta=None, others=()):
    """Posterior mean and sd of log g for spectra ``y`` (N, n_pix) with noise ``sigma`` over explicit
    ``templates`` (M, n_pix) at log g ``grid_logg`` (M,), with ``log_prior`` (M,) weights (None:
    equal; a quadrature weight belongs here too). Templates are taken ``chunk`` at a time.
    ``theta`` (M, 4): the templates' parameters, with ``others`` (names) those whose posterior mean
    and sd are wanted too. Returns :meth:`PosteriorAccumulator.result`."""
    templates = np.asarray(templates)
    grid_logg = np.asarray(grid_logg, float)
    if len(grid_logg) != len(templates):
        raise InputError(f"posterior: {len(templates)} templates but {len(grid_logg)} log g values")
    theta = None if theta is None else np.asarray(theta, float)
    acc = PosteriorAccumulator(y, sigma, dtype=dtype,
                               reference=templates.mean(axis=0) if reference is None else reference, others=others)
    for a in range(0, len(templates), int(chunk)):
        lp = None if log_prior is None else np.asarray(log_prior, float)[a:a + chunk]
        acc.add(templates[a:a + chunk], grid_logg[a:a + chunk], lp,
                theta=None if theta is None else theta[a:a + chunk])
    return acc.result()


# -- the parameter grid and its templates ------------------------------------------------------------
def grid_axes(ranges, points_per_axis=None, spacing=None):
    """Midpoint-rule nodes of every parameter inside ``ranges``: dict name -> 1-D array.

    A varied parameter (hi > lo) gets ``n`` points at lo + (k + 1/2) (hi - lo) / n, with ``n`` from
    ``points_per_axis`` (an int for all, or a dict name -> int) or from ``spacing`` (dict name ->
    largest allowed step: n = ceil((hi - lo) / step)); a fixed one its single value.
    """
    if (points_per_axis is None) == (spacing is None):
        raise InputError("bayes: give exactly one of points_per_axis and spacing")
    axes = {}
    for p in PARAMS:
        lo, hi = (float(v) for v in ranges[p])
        if not hi > lo:
            axes[p] = np.array([lo])
            continue
        if spacing is not None:
            if p not in spacing or not float(spacing[p]) > 0:
                raise InputError(f"bayes.spacing.{p}: expected a step > 0 for a varied parameter")
            n = int(np.ceil((hi - lo) / float(spacing[p]) - 1e-9))
        else:
            n = int(points_per_axis[p] if isinstance(points_per_axis, dict) else points_per_axis)
        if n < 1:
            raise InputError(f"bayes: {p} needs at least one grid point, got {n}")
        axes[p] = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    return axes


def grid_chunks(interp, axes, chunk):
    """Yield (theta (C, 4), templates (C, n_pix) float32) over the product of ``axes`` (C order, about
    ``chunk`` at a time): the data sets' clean flux (:func:`normalized_templates`) at those points.

    The interpolation is done one axis at a time (it is a tensor product, so separable), as small
    matrix products over the regular grid instead of a gather of 4^D nodes per point: the same
    function (:class:`~pfslogg.data.interp.GridInterpolator`, cubic or linear), in float32 like the
    data sets. Points whose interpolation needs a missing node (a hole) are left
    out: the prior is zero there, as data sets redraw such points.
    """
    n_pix = interp.values.shape[1]
    values = interp.values.reshape(interp.shape + (n_pix,)).astype(np.float32)
    if not interp.mask.all():
        values[~interp.mask] = 0.0   # never weighted: covered() drops the points that would need them
    W = [interp.axis_weights(d, axes[p]).astype(np.float32) for d, p in enumerate(PARAMS)]
    # a_M first, once for all: (nM, nT, ng, fa, n_pix), M_H leading for the product below
    values = np.ascontiguousarray(np.einsum("fl,tgmlp->mtgfp", W[3], values))
    corners_t, corners_g = (interp.axis_slots(d, axes[p]) for d, p in enumerate(PARAMS[:2]))
    n_m, fa = len(axes[PARAMS[2]]), len(axes[PARAMS[3]])
    pairs = np.stack(np.meshgrid(np.arange(len(axes[PARAMS[0]])), np.arange(len(axes[PARAMS[1]])),
                                 indexing="ij"), axis=-1).reshape(-1, 2)
    step = max(1, int(chunk) // (n_m * fa))
    for a in range(0, len(pairs), step):
        it, ig = pairs[a:a + step].T
        # T_eff and log g: the (up to 4 x 4) nodes with weight per (T_eff, log g) pair -> (nM, pairs, fa, n_pix)
        part = 0.0
        for kt, wt in corners_t:
            for kg, wg in corners_g:
                w = (wt[it] * wg[ig]).astype(np.float32)
                part = part + w[None, :, None, None] * values[:, kt[it], kg[ig]]
        # M_H: a (points x nodes) product -> templates in (M_H, pair, a_M) order
        flux = (W[2] @ part.reshape(part.shape[0], -1)).reshape(-1, n_pix)
        mesh = np.meshgrid(np.arange(n_m), np.arange(len(it)), np.arange(fa), indexing="ij")
        im, ip, ia = (m.ravel() for m in mesh)
        theta = np.stack([axes[PARAMS[0]][it[ip]], axes[PARAMS[1]][ig[ip]], axes[PARAMS[2]][im],
                          axes[PARAMS[3]][ia]], axis=1)
        keep = interp.covered(theta)
        if not keep.all():
            theta, flux = theta[keep], flux[keep]
        if len(theta):
            flux *= (1.0 / normalization(flux)).astype(np.float32)
            yield theta, flux


def normalized_templates(interp, theta):
    """The data sets' clean flux at ``theta``: float32 interpolation divided by its mean over pixels."""
    flux = interp(theta, dtype=np.float32)
    flux *= (1.0 / normalization(flux)).astype(np.float32)
    return flux


def grid_posterior(interp, y, sigma, ranges, points_per_axis=None, spacing=None, chunk=1024, dtype=np.float32,
                   threads=1, progress=False, refine=True, seed=0, first_row=0):
    """Posterior moments of log g (:meth:`PosteriorAccumulator.result`) of spectra ``y`` with noise
    ``sigma`` under a uniform prior over ``ranges`` and the interpolated, mean-normalised grid
    ``interp``, summed over the regular grid of :func:`grid_axes`; BLAS limited to ``threads``.
    ``params`` holds the posterior mean and sd of the other varied parameters (:func:`other_params`),
    from the same sums. ``refine``: spectra whose posterior the grid does not resolve get theirs by
    importance sampling (:func:`refine_unresolved`); ``method`` says which (0 grid, 1 importance sampling)."""
    from ..threads import numpy_threads
    from ..progress import progress as _progress

    axes = grid_axes(ranges, points_per_axis, spacing)
    centre = np.array([[np.mean(ranges[p]) for p in PARAMS]])
    reference = normalized_templates(interp, centre)[0] if interp.covered(centre)[0] else None
    acc = PosteriorAccumulator(y, sigma, dtype=dtype, reference=reference, others=other_params(ranges))
    total = int(np.prod([len(v) for v in axes.values()]))
    bar = _progress(total=total, desc="Bayes templates", unit="tpl", enabled=progress)
    with numpy_threads(threads):
        for theta, templates in grid_chunks(interp, axes, chunk):
            acc.add(templates, theta[:, LOGG], theta=theta)
            bar.update(len(theta))
        bar.close()
        out = acc.result()
        out["method"] = np.zeros(len(y), dtype=np.int8)       # 0: grid, 1: importance sampling
        out["is_n_eff"] = np.zeros(len(y))                    # effective samples (0: not refined)
        if refine:
            refine_unresolved(interp, y, sigma, ranges, out, seed=seed, first_row=first_row, progress=progress)
    out["axes"] = {p: len(v) for p, v in axes.items()}
    out["n_templates"] = acc.n_templates
    out["product_s"] = acc.product_s
    return out


def log_posterior(interp, y, sigma, lo, hi, free):
    """The unnormalised log posterior of one spectrum ``y`` (noise ``sigma``) as a function of the
    ``free`` parameters (indices into PARAMS), the others held at ``lo``: uniform prior on [lo, hi],
    the data sets' model. Vectorised: (W, len(free)) -> (W,), -inf outside the prior (for samplers)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)

    def log_prob(x):
        theta = np.tile(lo, (len(x), 1))
        theta[:, free] = x
        inside = ((theta >= lo) & (theta <= hi)).all(axis=1)
        out = np.full(len(x), -np.inf)
        if inside.any():
            mu = normalized_templates(interp, theta[inside]).astype(float)
            out[inside] = -0.5 * (((y - mu) / sigma) ** 2).sum(axis=1)
        return out

    return log_prob


RESOLVED_N_EFF = 10.0   # grid points carrying a posterior below which the grid does not resolve it
IS_SAMPLES = 256        # importance samples per unresolved spectrum
IS_SCALE = 1.3          # proposal covariance = IS_SCALE^2 x the inverse Fisher matrix at the ML point
WINDOW = 5              # grid nodes per varied axis of a spectrum's window (LocalModel): its start cell's 4 + 1


class LocalModel:
    """chi^2 and Gauss-Newton normal equations of spectra ``y`` (B, n_pix) with noise ``sigma``
    (B, n_pix) for parameters whose interpolation needs only the nodes of a window around each
    spectrum's start point ``theta0`` (B, 4): ``width`` nodes per varied parameter (``which``) around
    the start cell (its 4 nodes, then one more on the side nearer the start point, ...: with 5 the
    whole neighbouring cell on that side), the nodes with weight on the others.

    The model is linear in the node spectra V (K, n_pix) of the window: mu(theta) = V^T w / (m . w),
    w the (K,) interpolation weights, m the nodes' means over pixels. With the residual at the start
    r0 = y - mu(theta0), u = w / (m . w) - w0 / (m . w0) and the weighted Gram matrix G = V S^-1 V^T::

        chi2(theta) = r0 S^-1 r0 - 2 u . (V S^-1 r0) + u^T G u

    and J = V^T a with a_k = dw_k / n - w (m . dw_k) / n^2, so J^T S^-1 J = a^T G a and
    J^T S^-1 (y - mu) = a^T (V S^-1 r0 - G u): once G is formed (one K x n_pix x K product per
    spectrum), every evaluation costs O(K^2) instead of a pass over the pixels of 4^D nodes. The same
    function as :func:`normalized_templates` in exact arithmetic (that one rounds the flux to float32,
    as the data sets do: they differ by ~1e-7 of the flux). Centred on r0, the terms are of the size of
    chi^2 itself, so float64 keeps them to ~1e-9.

    A point that needs a node outside its spectrum's window gets chi^2 = inf and marks the spectrum in
    ``left`` (the caller redoes it in pixel space); ``ok`` is False where the window holds a missing
    node (a hole: the caller does those spectra in pixel space too).
    """

    def __init__(self, interp, y, sigma, theta0, which, width=None):
        width = WINDOW if width is None else int(width)
        self.interp = interp
        self.dims = [PARAMS.index(p) for p in which]
        theta0 = np.asarray(theta0, float)
        n = len(theta0)
        self.start, self.size = np.zeros((n, len(PARAMS)), dtype=np.int64), []
        for d, (a, (index, M, i, t)) in enumerate(zip(interp.axes, interp.stencil(theta0))):
            if d in self.dims and len(a) > 1:
                size = min(width, len(a))
                extra = max(width - 4, 0)
                self.start[:, d] = np.clip(i - 1 - extra // 2 - (extra % 2) * (t < 0.5), 0, len(a) - size)
            else:   # a fixed parameter: the nodes with weight there
                w = np.einsum("bsk,bk->bs", M, np.stack([t ** 0, t, t * t, t ** 3], axis=-1))
                used = np.where(w != 0, index, -1)
                self.start[:, d] = np.where(w != 0, index, len(a)).min(axis=1)
                size = int((used.max(axis=1) - self.start[:, d]).max()) + 1
            self.size.append(size)
        self.left = np.zeros(n, bool)
        self.ok = np.ones(n, bool)
        K = int(np.prod(self.size))
        self.G, self.b = np.empty((n, K, K)), np.empty((n, K))
        self.c, self.m, self.u0 = np.empty(n), np.empty((n, K)), np.empty((n, K))
        values = interp.values.reshape(interp.shape + (-1,))
        w0 = self.weights(np.arange(n), theta0)[0]
        y, sigma = np.asarray(y, float), np.asarray(sigma, float)
        for j in range(n):
            sl = tuple(slice(s, s + z) for s, z in zip(self.start[j], self.size))
            self.ok[j] = interp.mask[sl].all()
            V = values[sl].reshape(K, -1).astype(float)
            self.m[j] = V.mean(axis=1)
            self.u0[j] = w0[j] / (self.m[j] @ w0[j])
            inv = 1.0 / sigma[j]
            r0 = (y[j] - self.u0[j] @ V) * inv
            V *= inv
            self.G[j] = V @ V.T
            self.b[j] = V @ r0
            self.c[j] = r0 @ r0

    def weights(self, idx, theta, derivatives=False):
        """Window weights (B, K), with ``derivatives`` also their derivatives in ``which`` (B, K, k),
        and whether the window holds every node the points need (B,)."""
        theta = self.interp.check_params(theta)
        inside = np.ones(len(theta), bool)
        per_axis, slopes = [], []
        rows = np.arange(len(theta))
        for d, (a, size) in enumerate(zip(self.interp.axes, self.size)):
            index, M, i, t = axis_stencil(a, theta[:, d], self.interp.method)
            free = d in self.dims and len(a) > 1
            w = np.einsum("bsk,bk->bs", M, np.stack([t ** 0, t, t * t, t ** 3], axis=-1))
            need = np.abs(M).sum(axis=-1) != 0 if free else w != 0   # a free one's derivative too
            pos = index - self.start[idx, d][:, None]
            fits = (pos >= 0) & (pos < size)
            inside &= (fits | ~need).all(axis=1)
            pos = np.clip(pos, 0, size - 1)
            dense = np.zeros((len(theta), size))
            for s in range(4):
                np.add.at(dense, (rows, pos[:, s]), np.where(fits[:, s], w[:, s], 0.0))
            per_axis.append(dense)
            if derivatives and free:
                dpow = np.stack([np.zeros_like(t), np.ones_like(t), 2 * t, 3 * t * t], axis=-1)
                dw = np.einsum("bsk,bk->bs", M, dpow) / (a[i + 1] - a[i])[:, None]
                dense = np.zeros((len(theta), size))
                for s in range(4):
                    np.add.at(dense, (rows, pos[:, s]), np.where(fits[:, s], dw[:, s], 0.0))
                slopes.append((d, dense))
        w = self._outer(per_axis)
        if not derivatives:
            return w, None, inside
        by_dim = dict(slopes)
        dw = np.stack([self._outer([by_dim[e] if e == d else per_axis[e] for e in range(len(per_axis))])
                       if d in by_dim else np.zeros_like(w) for d in self.dims], axis=-1)
        return w, dw, inside

    @staticmethod
    def _outer(per_axis):
        out = per_axis[0]
        for p in per_axis[1:]:
            out = (out[:, :, None] * p[:, None, :]).reshape(len(out), -1)
        return out

    def chi2(self, idx, theta):
        """chi^2 (B,) of the spectra ``idx`` at ``theta`` (B, 4); inf (and ``left``) outside the window."""
        w, _, inside = self.weights(idx, theta)
        with np.errstate(invalid="ignore", divide="ignore"):   # outside the window: no weight, inf below
            u = w / np.einsum("bk,bk->b", w, self.m[idx])[:, None] - self.u0[idx]
        Gu = np.einsum("bkl,bl->bk", self.G[idx], u)
        out = self.c[idx] + np.einsum("bk,bk->b", u, Gu - 2 * self.b[idx])
        self.left[idx[~inside]] = True
        return np.where(inside, out, np.inf)

    def normal_equations(self, idx, theta):
        """(J^T S^-1 J (B, k, k), J^T S^-1 (y - mu) (B, k)) of the spectra ``idx`` at ``theta``."""
        w, dw, inside = self.weights(idx, theta, derivatives=True)
        if not inside.all():
            raise InputError("LocalModel: normal equations outside the window")   # chi2 kept such points out
        m = self.m[idx]
        n = np.einsum("bk,bk->b", w, m)[:, None]
        u = w / n - self.u0[idx]
        a = dw / n[..., None] - (w / n ** 2)[..., None] * np.einsum("bki,bk->bi", dw, m)[:, None, :]
        Ga = np.einsum("bkl,bli->bki", self.G[idx], a)
        return (np.einsum("bki,bkj->bij", a, Ga),
                np.einsum("bki,bk->bi", a, self.b[idx] - np.einsum("bkl,bl->bk", self.G[idx], u)))

    def chi2_of_samples(self, idx, theta):
        """chi^2 (B, S) of ``S`` points per spectrum ``idx``, ``theta`` (B, S, 4) (inf outside the
        window), and which lie inside it (B, S)."""
        B, S = theta.shape[:2]
        w, _, inside = self.weights(np.repeat(idx, S), theta.reshape(B * S, -1))
        w = w.reshape(B, S, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = w / np.einsum("bsk,bk->bs", w, self.m[idx])[..., None] - self.u0[idx, None, :]
        out = self.c[idx, None] + np.einsum("bsk,bsk->bs", u, np.matmul(u, self.G[idx]) - 2 * self.b[idx, None, :])
        inside = inside.reshape(B, S)
        return np.where(inside, out, np.inf), inside


def refine_unresolved(interp, y, sigma, ranges, out, n_samples=IS_SAMPLES, seed=0, first_row=0, batch=64,
                      progress=False):
    """See :func:`_refine` (the work); BLAS on one thread here: its products are small (K x n_pix x K
    per spectrum), and a second BLAS thread only waits for a core on a shared machine (x40 slower at
    load 3 on 2 cores)."""
    from ..threads import numpy_threads

    with numpy_threads(1):
        return _refine(interp, y, sigma, ranges, out, n_samples, seed, first_row, batch, progress)


def _refine(interp, y, sigma, ranges, out, n_samples, seed, first_row, batch, progress):
    """Replace the grid's moments of the spectra with ``n_eff < RESOLVED_N_EFF`` (``out`` from the
    grid pass, changed in place) by self-normalised importance sampling of the same posterior: log g's
    and those of the other parameters in ``out["params"]``, from the same weighted draws.

    Where the posterior is narrower than the grid step (bright stars), a few grid points carry it and
    the grid's mean is quantised. For those spectra: a maximum-likelihood fit over the varied
    parameters from the best template (:func:`pfslogg.ceilings.mlfit.ml_fit`), a Gaussian proposal
    with ``IS_SCALE^2`` times the inverse Fisher matrix there, and ``n_samples`` draws weighted by
    prior x likelihood / proposal -- exact in the limit of many samples, whatever the proposal;
    ``is_n_eff`` gives the effective sample size of the weights. The same model (cubic, mean-
    normalised) and the same uniform prior as the grid. The draws of spectrum ``i`` come from a
    generator seeded by (seed, first_row + i): the same whatever the blocking.

    Vectorised over the ``batch`` spectra of a pass: fit, Fisher matrix and the likelihood of all
    draws come from each spectrum's window of grid nodes (:class:`LocalModel`, exact in float64;
    the points outside a window, rare, from the interpolator itself), and the weights of all
    spectra are formed at once.
    """
    from ..progress import progress as _progress
    from .fisher import fisher_matrix, jacobian, varied_params
    from .mlfit import ml_fit

    todo = np.flatnonzero(out["n_eff"] < RESOLVED_N_EFF)
    if not len(todo) or out.get("best_theta") is None:
        return out
    which = varied_params(ranges)
    cols = [PARAMS.index(p) for p in which]
    lo = np.array([ranges[p][0] for p in PARAMS], float)
    hi = np.array([ranges[p][1] for p in PARAMS], float)
    y, sigma = np.asarray(y, float), np.asarray(sigma, float)
    bar = _progress(total=len(todo), desc="importance sampling", unit="spec", enabled=progress)
    for a in range(0, len(todo), batch):
        idx = todo[a:a + batch]
        start = out["best_theta"][idx]
        local = LocalModel(interp, y[idx], sigma[idx], start, which)
        fit, _ = ml_fit(interp, y[idx], sigma[idx], start, which, model=local)
        redo = np.flatnonzero(local.left | ~local.ok)     # left the window, or holes in it: in pixel space
        if len(redo):
            fit[redo] = ml_fit(interp, y[idx[redo]], sigma[idx[redo]], start[redo], which)[0]
        fit = np.clip(fit, lo, hi)
        info = np.empty((len(idx), len(cols), len(cols)))
        near = local.weights(np.arange(len(idx)), fit, derivatives=True)[2] & local.ok
        if near.any():
            info[near] = local.normal_equations(np.flatnonzero(near), fit[near])[0]
        if not near.all():
            info[~near] = fisher_matrix(jacobian(interp, fit[~near], which), sigma[idx[~near]])
        chol = np.linalg.cholesky(np.linalg.inv(info) * IS_SCALE ** 2)
        z = np.stack([np.random.default_rng([int(seed), 53, int(first_row + i)]).standard_normal((n_samples, len(cols)))
                      for i in idx])                                           # (B, S, k)
        theta = np.repeat(fit[:, None, :], n_samples, axis=1)
        theta[..., cols] += np.einsum("bsk,bjk->bsj", z, chol)
        log_q = -0.5 * np.sum(z * z, axis=-1)
        inside = np.all((theta >= lo - 1e-12) & (theta <= hi + 1e-12), axis=-1)
        chi2 = np.full(inside.shape, np.inf)
        good = np.flatnonzero(local.ok)
        th = np.where(inside[good, :, None], theta[good], fit[good, None, :])   # out-of-prior points: any valid one
        chi2[good], win = local.chi2_of_samples(good, th)
        missing = np.zeros(inside.shape, bool)
        missing[good] = ~win
        missing[~local.ok] = True
        missing &= inside
        if missing.any():       # outside the window (or a window with holes): the interpolator itself
            rows, k = np.nonzero(missing)
            ok = interp.covered(theta[rows, k])
            rows, k = rows[ok], k[ok]
            inside[missing] = False
            inside[rows, k] = True
            for c in range(0, len(rows), 2048):       # memory: 2048 x n_pix at a time
                r, q = rows[c:c + 2048], k[c:c + 2048]
                mu = normalize(interp(theta[r, q]))
                chi2[r, q] = np.sum(((y[idx[r]] - mu) / sigma[idx[r]]) ** 2, axis=1)
        log_w = np.where(inside, -0.5 * chi2 - log_q, -np.inf)
        done = np.isfinite(log_w).any(axis=1)         # the others keep the grid's moments
        log_w, g = log_w[done], theta[done, :, LOGG]
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        rows = idx[done]
        out["mean"][rows], out["sd"][rows] = _weighted_moments(w, g)
        for p, mom in out.get("params", {}).items():
            mom["mean"][rows], mom["sd"][rows] = _weighted_moments(w, theta[done, :, PARAMS.index(p)])
        out["is_n_eff"][rows] = 1.0 / np.sum(w * w, axis=1)
        out["method"][rows] = 1
        bar.update(len(idx))
    bar.close()
    return out


def _weighted_moments(w, x):
    """(mean (B,), sd (B,)) of draws ``x`` (B, S) under normalised weights ``w`` (B, S)."""
    m = np.einsum("bs,bs->b", w, x)
    return m, np.sqrt(np.maximum(np.einsum("bs,bs->b", w, (x - m[:, None]) ** 2), 0.0))


def view_posterior(interp, view, ranges, bayes, threads=1):
    """The grid posterior (:func:`grid_posterior`) of every spectrum of ``view`` (any
    :class:`~pfslogg.data.views.View`: a test file's noisy view, or stars simulated when read), in blocks of
    ``bayes["block"]`` spectra: ``(post, post_others, grid)`` -- ``post``: arrays mean, sd, n_eff, chi2_min,
    method, is_n_eff of log g; ``post_others``: ``{parameter: {"mean", "sd"}}`` of the other varied
    parameters; ``grid``: the template grid's points per axis and its number of templates."""
    keys = ("mean", "sd", "n_eff", "chi2_min", "method", "is_n_eff")
    post = {k: np.empty(view.n) for k in keys}
    others = other_params(ranges)
    post_others = {p: {"mean": np.empty(view.n), "sd": np.empty(view.n)} for p in others}
    grid = {}
    for a, b, flux, error in view.batches(int(bayes.get("block", 4096))):
        out = grid_posterior(interp, flux, error, ranges, points_per_axis=bayes.get("points_per_axis"),
                             spacing=None if bayes.get("points_per_axis") else bayes["spacing"],
                             chunk=int(bayes.get("chunk", 1024)), dtype=np.dtype(bayes.get("dtype", "float32")),
                             threads=threads, progress=True, first_row=a)
        for k in keys:
            post[k][a:b] = out[k]
        for p in others:
            for k in ("mean", "sd"):
                post_others[p][k][a:b] = out["params"][p][k]
        grid = {"points": out["axes"], "n_templates": int(out["n_templates"])}
    return post, post_others, grid


def bayes_ceiling(interp, test, noise_level, noise_seed, ranges, evaluation, var_prior, bayes, threads=1,
                  sigma="estimated"):
    """The Bayes ceiling of a test set: (metrics, per-spectrum table).

    ``test``: a :class:`~pfslogg.data.dataset.SpectraSet` on the pixels of ``interp``, seen as the
    models see it (:class:`~pfslogg.data.views.NoisyView` at ``noise_level`` with the fixed test
    noise ``noise_seed``). ``evaluation``: snr_bins, bootstrap, confidence (config ``evaluation``);
    ``bayes``: spacing (or points_per_axis), chunk (templates per product), block (spectra per
    pass), dtype (config ``bayes``). The posterior mean is scored like any model's predictions
    (:func:`pfslogg.evaluation.summarize`, :func:`~pfslogg.evaluation.metrics_by_snr`, bootstrap seed
    0 as the figure's cells), plus per bin the mean posterior sd and the median ``n_eff``.
    ``sigma`` (config ``noise.sigma``): the sigma of the likelihood, as the view gives it to models --
    ``"estimated"`` from the noisy flux, or ``"stored"`` (the true sigma of the clean flux; see the
    module docstring on what each conditions on); recorded in the metrics.

    The other varied parameters (``nuisance``: T_eff, M_H, a_M when it varies) get their own Bayes
    ceiling from the same posterior: ``labels[name]`` holds ``var_prior`` ((hi - lo)^2 / 12 of its
    range), ``overall`` and ``snr_bins`` of its posterior mean scored as log g's is (plus the mean and
    median posterior sd); the table gains ``post_mean_<name>`` and ``post_sd_<name>``.
    """
    from ..data.views import NoisyView
    from ..evaluation import bin_index, metrics_by_params, metrics_by_snr, param_edges, prior_variance, summarize

    if not noise_level > 0:
        raise InputError(f"noise.noise_level = {noise_level}: the Bayes ceiling needs noise (> 0); without "
                         "noise the posterior is a point")
    view = NoisyView(test, noise_level, noise_seed=noise_seed, sigma=sigma)
    post, post_others, grid = view_posterior(interp, view, ranges, bayes, threads=threads)
    others = list(post_others)
    y, snr = view.logg, view.snr()
    ev = {"n_resamples": evaluation["bootstrap"], "confidence": evaluation["confidence"], "seed": 0}

    def extra(sel):
        return {"post_sd_mean": float(np.mean(post["sd"][sel])), "post_sd_median": float(np.median(post["sd"][sel])),
                "n_eff_median": float(np.median(post["n_eff"][sel])),
                "n_eff_below_10": float(np.mean(post["n_eff"][sel] < 10)),
                "refined_share": float(np.mean(post["method"][sel] == 1)),
                "is_n_eff_median": float(np.median(post["is_n_eff"][sel][post["method"][sel] == 1]))
                if (post["method"][sel] == 1).any() else None}

    bins = metrics_by_snr(y, post["mean"], snr, evaluation["snr_bins"], var_prior, **ev)
    idx = bin_index(snr, evaluation["snr_bins"])
    for row in bins:
        row.update(extra(idx == [float(e) for e in evaluation["snr_bins"]].index(row["lo"])))
    n_pix = len(test.wave)

    def label(p):   # the posterior mean of another parameter against its truth, scored as log g's
        truth, mean, sd = view.params[p].to_numpy(float), post_others[p]["mean"], post_others[p]["sd"]
        vp = prior_variance(*(float(v) for v in ranges[p]))
        rows = metrics_by_snr(truth, mean, snr, evaluation["snr_bins"], vp, **ev)
        for row in rows:
            sel = idx == [float(e) for e in evaluation["snr_bins"]].index(row["lo"])
            row.update({"post_sd_mean": float(np.mean(sd[sel])), "post_sd_median": float(np.median(sd[sel]))})
        return {"var_prior": vp, "overall": {**summarize(truth, mean, vp, **ev), "post_sd_mean": float(np.mean(sd)),
                                             "post_sd_median": float(np.median(sd))},
                "snr_bins": rows}

    metrics = {"n": int(view.n), "var_prior": var_prior, "noise_level": float(noise_level), "sigma": sigma,
               "confidence": evaluation["confidence"],
               "nuisance": others,
               "grid": {**grid, "dtype": str(np.dtype(bayes.get("dtype", "float32")))},
               "chi2_min_per_pixel_median": float(np.median(post["chi2_min"]) / n_pix),
               "overall": {**summarize(y, post["mean"], var_prior, **ev), **extra(np.ones(view.n, bool))},
               "snr_bins": bins,
               "labels": {p: label(p) for p in others}}
    edges = param_edges(evaluation.get("param_bins"), ranges)
    if edges:   # the same parameter bins as every model's cell
        metrics["bins"] = metrics_by_params(y, post["mean"], view.params, edges, var_prior, **ev)
    table = {"log_g": y, "snr": snr, **{a: view.params[a].to_numpy(float)   # the binned and the varied parameters
                                        for a in dict.fromkeys([*edges, *other_params(ranges)])},
             "post_mean": post["mean"], "post_sd": post["sd"], "n_eff": post["n_eff"],
             "method": post["method"].astype(int), "is_n_eff": post["is_n_eff"],   # method 0: grid, 1: importance
             **{f"post_{k}_{p}": post_others[p][k] for p in others for k in ("mean", "sd")}}
    return metrics, table
