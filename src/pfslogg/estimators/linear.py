"""Linear estimators: Ridge regression on the pixels, and Ridge on principal components.

Both end in one linear map ``log g = flux @ coef_ + intercept_`` of the noisy, mean-normalised
flux (no feature scaling: every pixel is in the same units), with the regularisation (and the
number of components) chosen by R^2 on the validation view. Ridge can read the sigma that comes
with the flux instead, or beside it (hyper-parameter ``inputs``; :func:`ridge_inputs`): the
error-channel ablation of Track E, which shows what the sigma a view gives reveals of log g.
"""

import numpy as np
from scipy import linalg

from ..data.views import MappedView
from ..errors import InputError
from ..evaluation import r2_score
from ..threads import numpy_threads
from .base import Estimator, register

INPUTS = ("flux", "sigma", "flux_sigma")   # what Ridge reads (RidgeEstimator.inputs)


def ridge_inputs(flux, sigma, inputs):
    """The features of ``inputs``: the flux (B, p); the sigma over its median per spectrum,
    sigma / median(sigma) (B, p), so that a spectrum's brightness drops out and only its shape is left;
    or both side by side (B, 2p)."""
    if inputs == "flux":
        return np.asarray(flux, float)
    if sigma is None:
        raise InputError(f"Ridge inputs '{inputs}': the view gives no sigma with the flux")
    sigma = np.asarray(sigma, float)
    shape = sigma / np.median(sigma, axis=1, keepdims=True)
    return shape if inputs == "sigma" else np.hstack([np.asarray(flux, float), shape])


def _check_inputs(inputs, where):
    if inputs not in INPUTS:
        raise InputError(f"{where}: inputs: {inputs!r}, expected one of {', '.join(INPUTS)}")


class _Linear(Estimator):
    _state_arrays = ("coef_",)

    def predict(self, flux, sigma=None):
        self._check_fitted()
        X = ridge_inputs(flux, sigma, getattr(self, "inputs", "flux"))
        return X @ np.asarray(self.coef_, float) + self.intercept_


def ridge_path(gram, xty, alphas):
    """Ridge coefficients for each alpha from the centred Gram matrix (Cholesky per alpha)."""
    eye = np.eye(len(gram))
    scale = np.trace(gram) / len(gram)  # tiny jitter so a rank-deficient Gram stays factorisable
    out = []
    for alpha in alphas:
        c = linalg.cho_factor(gram + (alpha + 1e-12 * scale) * eye, check_finite=False)
        out.append(linalg.cho_solve(c, xty, check_finite=False))
    return out


def centred_moments(view, chunk):
    """Streaming centred moments of a view: (X^T X, X^T y, mean x, mean y) with X, y centred.

    Each chunk is centred on a reference (the first chunk's mean) before its float32 product is
    accumulated in float64, so the sums lose no precision to the large mean flux.
    """
    y_all = view.y
    p = view.n_pixels
    xtx, xty, sx = np.zeros((p, p)), np.zeros(p), np.zeros(p)
    sy, ref, yref = 0.0, None, None
    from ..progress import progress

    bar = progress(total=view.n, desc="Ridge: X^T X", unit="spec")
    for a, b, X, _ in view.batches(chunk, sigma=False):
        bar.update(b - a)
        y = y_all[a:b]
        if ref is None:
            ref, yref = X.mean(0), y.mean()
        Xc = (X - ref).astype(np.float32)
        yc = y - yref
        xtx += (Xc.T @ Xc).astype(np.float64)
        xty += Xc.T.astype(np.float64) @ yc
        sx += Xc.sum(0, dtype=np.float64)
        sy += yc.sum()
    bar.close()
    n = view.n
    mx, my = sx / n, sy / n
    xtx -= n * np.outer(mx, mx)
    xty -= n * mx * my
    return xtx, xty, ref + mx, yref + my


def _scale(sd):
    """Standard deviations of the features, 1 where a feature does not vary (nothing to scale)."""
    return np.where(sd > 0, sd, 1.0)


class _InputsView(MappedView):
    """``base`` whose reads give the features of ``inputs`` (:func:`ridge_inputs`) in place of the flux
    (no sigma of their own), streamed and loaded like the flux."""

    def __init__(self, base, inputs):
        super().__init__(base, None, base.n_pixels * (2 if inputs == "flux_sigma" else 1))
        self.inputs = inputs

    def read(self, start, stop):
        return ridge_inputs(*self.base.read(start, stop), self.inputs), None

    def read_rows(self, rows, rng=None):
        return ridge_inputs(*self.base.read_rows(rows, rng), self.inputs), None


@register
class RidgeEstimator(_Linear):
    """Ridge regression of log g on the noisy flux; alpha chosen on validation R^2.

    With at least as many spectra as pixels, streams the training view (fresh noise per chunk) into
    the centred Gram matrix X^T X (p x p), then one Cholesky solve per alpha; with fewer, solves the
    same problem in its dual form (X X^T + alpha I) a = y, coef = X^T a (n x n). ``alphas``: the
    values tried (a list of one fixes alpha). ``inputs`` (:func:`ridge_inputs`): ``flux`` (default),
    ``sigma`` (sigma / median(sigma) per spectrum alone) or ``flux_sigma`` (both, 2p features): with the
    stored sigma, computed from the clean flux, the last two show the error-channel leak. With sigma
    among the inputs every feature is standardised on the training set before the fit (the sigma
    shapes vary by ~1 %, the flux by ~100 %: one alpha would not suit both), and the coefficients
    are folded back, so that ``predict`` stays one linear map of the unscaled features.
    """

    class_id = "ridge"
    label = "Ridge"
    _state_json = ("intercept_", "alpha_", "search_")

    def __init__(self, alphas=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0), chunk=4096, inputs="flux",
                 random_state=0):
        self.alphas = alphas
        self.chunk = chunk
        self.inputs = inputs
        self.random_state = random_state

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        _check_inputs(hyper.get("inputs", "flux"), where)

    def fit(self, train, val, context=None):
        _check_inputs(self.inputs, context.where if context else "ridge")
        scaled = self.inputs != "flux"   # sigma shapes (~1e-2) beside the flux (~1): each feature standardised
        if scaled:   # the features as a view: streamed and loaded like the flux
            train, val = (_InputsView(v, self.inputs) for v in (train, val))
        threads = context.threads if context else 1
        alphas = [float(a) for a in self.alphas]
        with numpy_threads(threads):
            if train.n < train.n_pixels:   # fewer spectra than pixels: the n x n dual problem is cheaper
                X, _ = train.load(dtype=np.float64, sigma=False)
                mx, my = X.mean(0), train.y.mean()
                X -= mx
                sd = _scale(np.sqrt((X ** 2).mean(0))) if scaled else 1.0
                X /= sd
                duals = ridge_path(X @ X.T, train.y - my, alphas)
                coefs = [X.T @ d / sd for d in duals]   # back to the unscaled features
                del X
            else:                          # stream the p x p Gram matrix
                gram, xty, mx, my = centred_moments(train, self.chunk)
                sd = _scale(np.sqrt(np.diag(gram) / train.n)) if scaled else np.ones(len(xty))
                coefs = [c / sd for c in ridge_path(gram / np.outer(sd, sd), xty / sd, alphas)]
        Xv, _ = val.load(dtype=np.float64, sigma=False)
        scores = [r2_score(val.y, (Xv - mx) @ c + my) for c in coefs]
        best = int(np.argmax(scores))
        self.coef_ = coefs[best]
        self.alpha_ = float(self.alphas[best])
        self.intercept_ = float(my - mx @ self.coef_)
        self.search_ = {"alpha": [float(a) for a in self.alphas], "val_r2": scores}
        return self

    def fitted(self):
        self._check_fitted()
        return {"alpha": self.alpha_, "search": self.search_}


@register
class PCARidgeEstimator(_Linear):
    """Ridge regression on the first k principal components of the noisy training flux.

    PCA by scikit-learn (randomised SVD, seeded by ``random_state``) with ``max(n_components)``
    components; then for every k in ``n_components`` and every alpha a Ridge fit on the first k
    scores, chosen on validation R^2. The result is folded back into one linear map of the pixels.
    """

    class_id = "pca_ridge"
    label = "PCA + Ridge"
    _state_json = ("intercept_", "alpha_", "n_components_", "search_")

    def __init__(self, n_components=(8, 16, 32, 64, 128), alphas=(0.01, 1.0, 100.0, 10000.0), random_state=0):
        self.n_components = n_components
        self.alphas = alphas
        self.random_state = random_state

    def fit(self, train, val, context=None):
        from sklearn.decomposition import PCA

        ks = sorted(int(k) for k in self.n_components)
        kmax = min(ks[-1], train.n - 1, train.n_pixels)
        ks = [k for k in ks if k <= kmax] or [kmax]
        X, _ = train.load(sigma=False)
        with numpy_threads(context.threads if context else 1):
            pca = PCA(n_components=kmax, svd_solver="randomized", random_state=int(self.random_state)).fit(X)
            Z = pca.transform(X).astype(np.float64)
            del X
            Xv, _ = val.load(sigma=False)
            Zv = pca.transform(Xv).astype(np.float64)
        y, my = train.y, train.y.mean()
        scores, best = [], None
        for k in ks:
            zk = Z[:, :k] - Z[:, :k].mean(0)
            coefs = ridge_path(zk.T @ zk, zk.T @ (y - my), [float(a) for a in self.alphas])
            row = []
            for a, c in zip(self.alphas, coefs):
                s = r2_score(val.y, (Zv[:, :k] - Z[:, :k].mean(0)) @ c + my)
                row.append(s)
                if best is None or s > best[0]:
                    best = (s, k, float(a), c, Z[:, :k].mean(0))
            scores.append(row)
        _, k, alpha, c, zmean = best
        comps = pca.components_[:k].astype(np.float64)     # (k, n_pix)
        self.coef_ = comps.T @ c                            # flux -> log g, folded through the PCA
        self.intercept_ = float(my - (zmean + pca.mean_.astype(np.float64) @ comps.T) @ c)
        self.n_components_, self.alpha_ = int(k), alpha
        self.search_ = {"n_components": ks, "alpha": [float(a) for a in self.alphas], "val_r2": scores}
        return self

    def fitted(self):
        self._check_fitted()
        return {"n_components": self.n_components_, "alpha": self.alpha_, "search": self.search_}
