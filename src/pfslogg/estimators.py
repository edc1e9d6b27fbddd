"""One scikit-learn-style interface for every log g estimator (DESIGN.md section 4).

    est = make_estimator("ridge", alphas=[...], noise_level=1.0, random_state=0)
    est.fit(train, val)                 # train/val: pfslogg.dataset.SpectraSet; returns self
    logg = est.predict(flux, error)     # (B, n_pix) noisy flux and its sigma -> (B,)
    est.save(path); est = Estimator.load(path)

``__init__`` stores its keyword arguments unchanged; learned state ends in ``_`` and is set in
``fit``. Training noise is drawn afresh per chunk ("batch") from a generator seeded by
``random_state``; validation noise is the data set's fixed noise (``val_noise_seed``).
Later tracks register their estimators with ``@register``.
"""

import pickle
from pathlib import Path

import numpy as np

from . import PARAMS
from .atomic import atomic_path
from .errors import InputError

REGISTRY = {}


def register(name):
    def deco(cls):
        REGISTRY[name] = cls
        cls.name = name
        return cls
    return deco


def make_estimator(name, **kwargs):
    if name not in REGISTRY:
        raise InputError(f"estimators: unknown estimator '{name}', expected one of {sorted(REGISTRY)}")
    try:
        return REGISTRY[name](**kwargs)
    except TypeError as e:
        raise InputError(f"estimators.{name}: bad hyper-parameters ({e})") from None


class Estimator:
    """Base class: pickling save/load and the fitted check."""

    name = "base"
    label = "Estimator"

    def _check_fitted(self):
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(self)):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    def save(self, path):
        self._check_fitted()
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path):
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: model file not found")
        try:
            with open(path, "rb") as fh:
                obj = pickle.load(fh)
        except Exception as e:  # pickle may raise anything on a corrupt or foreign file
            raise InputError(f"{path}: corrupt model file ({type(e).__name__}: {e})") from None
        if not isinstance(obj, Estimator):
            raise InputError(f"{path}: not a pfslogg estimator")
        return obj

    def summary(self):
        """Hyper-parameters chosen in fit, for the results JSON."""
        return {}


def _r2(y, yhat):
    return 1.0 - np.mean((yhat - y) ** 2) / np.var(y)


@register("ridge")
class RidgeEstimator(Estimator):
    """Ridge regression of log g on the noisy flux; alpha chosen on validation R^2.

    Streams the training set: accumulates X^T X and X^T y (centred) chunk by chunk, then one
    eigendecomposition serves every alpha. Fits an intercept; no feature scaling (all pixels are
    median-normalised flux).
    """

    label = "Ridge"

    def __init__(self, alphas=(1e-2, 1e-1, 1, 10, 100, 1000), noise_level=1.0, random_state=0,
                 val_noise_seed=0, chunk=4096):
        self.alphas = alphas
        self.noise_level = noise_level
        self.random_state = random_state
        self.val_noise_seed = val_noise_seed
        self.chunk = chunk

    def fit(self, train, val):
        rng = np.random.default_rng(self.random_state)
        n_pix = len(train.wave)
        xtx = np.zeros((n_pix, n_pix))
        xty = np.zeros(n_pix)
        sx = np.zeros(n_pix)
        y_all = train.logg
        for a, b in train.chunks(self.chunk):
            X, _ = train.noisy(a, b, self.noise_level, rng=rng)
            y = y_all[a:b]
            xtx += X.T @ X
            xty += X.T @ y
            sx += X.sum(0)
        n = train.n
        mx, my = sx / n, y_all.mean()
        xtx -= n * np.outer(mx, mx)
        xty -= n * mx * my
        evals, evecs = np.linalg.eigh(xtx)
        proj = evecs.T @ xty
        Xv, _ = val.load_noisy(self.noise_level, seed=self.val_noise_seed, dtype=float)
        yv = val.logg
        scores = {}
        best = None
        for alpha in self.alphas:
            coef = evecs @ (proj / (evals + alpha))
            score = _r2(yv, (Xv - mx) @ coef + my)
            scores[float(alpha)] = float(score)
            if best is None or score > best[0]:
                best = (score, alpha, coef)
        _, self.alpha_, self.coef_ = best
        self.intercept_ = float(my - mx @ self.coef_)
        self.val_scores_ = scores
        return self

    def predict(self, flux, error=None):
        self._check_fitted()
        return np.asarray(flux, float) @ self.coef_ + self.intercept_

    def summary(self):
        return {"alpha": float(self.alpha_), "val_r2_by_alpha": self.val_scores_}


@register("lightgbm")
class LightGBMEstimator(Estimator):
    """Gradient-boosted trees (LightGBM) on the raw noisy flux; no feature scaling (trees do not
    need it); early stopping on validation."""

    label = "LightGBM"

    def __init__(self, n_estimators=2000, learning_rate=0.05, num_leaves=31, min_child_samples=20,
                 colsample_bytree=0.3, subsample=0.8, early_stopping_rounds=50, noise_level=1.0,
                 random_state=0, val_noise_seed=0, n_jobs=1):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.early_stopping_rounds = early_stopping_rounds
        self.noise_level = noise_level
        self.random_state = random_state
        self.val_noise_seed = val_noise_seed
        self.n_jobs = n_jobs

    def fit(self, train, val):
        import lightgbm as lgb

        rng = np.random.default_rng(self.random_state)
        X, _ = train.load_noisy(self.noise_level, rng=rng)
        Xv, _ = val.load_noisy(self.noise_level, seed=self.val_noise_seed)
        params = {
            "objective": "regression", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample, "subsample_freq": 1 if self.subsample < 1 else 0,
            "seed": int(self.random_state), "deterministic": True, "force_row_wise": True,
            "num_threads": int(self.n_jobs), "verbosity": -1,
        }
        dtrain = lgb.Dataset(X, label=train.logg, free_raw_data=True)
        dval = lgb.Dataset(Xv, label=val.logg, reference=dtrain)
        try:
            self.booster_ = lgb.train(params, dtrain, num_boost_round=self.n_estimators, valid_sets=[dval],
                                      callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        except lgb.basic.LightGBMError as e:
            raise InputError(f"estimators.lightgbm: LightGBM rejected the hyper-parameters ({e})") from None
        self.best_iteration_ = int(self.booster_.best_iteration or self.n_estimators)
        return self

    def predict(self, flux, error=None):
        self._check_fitted()
        return self.booster_.predict(np.asarray(flux, np.float32), num_iteration=self.best_iteration_)

    def summary(self):
        return {"best_iteration": self.best_iteration_}


@register("template")
class TemplateEstimator(Estimator):
    """Template fitting: chi^2 minimum over the instrument-grid nodes inside the prior ranges.

    Each template is median-normalised like the data; a free scale factor ``a`` is fitted
    analytically per template (chi^2_min = sum w y^2 - (sum w y t)^2 / sum w t^2, w = 1/sigma^2),
    so the whole search is two matrix products. The estimate is the log g of the best node.
    """

    label = "Template fit"

    def __init__(self, grid_path=None, ranges=None):
        self.grid_path = grid_path
        self.ranges = ranges

    def fit(self, train=None, val=None):
        from .data.gridio import read_grid

        if self.grid_path is None:
            raise InputError("estimators.template: 'grid_path' (the instrument grid) is required")
        grid = read_grid(self.grid_path)
        mesh = np.stack(np.meshgrid(*[grid.axes[p] for p in PARAMS], indexing="ij"), axis=-1)
        keep = grid.mask.copy()
        for d, p in enumerate(PARAMS):
            if self.ranges and p in self.ranges:
                lo, hi = self.ranges[p]
                keep &= (mesh[..., d] >= lo - 1e-9) & (mesh[..., d] <= hi + 1e-9)
        if not keep.any():
            raise InputError(f"{self.grid_path}: no grid node inside the ranges {self.ranges}")
        t = grid.flux[keep].astype(float)
        self.templates_ = (t / np.median(t, axis=1, keepdims=True)).astype(np.float32)
        self.node_params_ = mesh[keep]
        return self

    def chi2(self, flux, error):
        w = 1.0 / np.asarray(error, float) ** 2
        y = np.asarray(flux, float)
        t = self.templates_.astype(float)
        syt = (w * y) @ t.T
        stt = w @ (t**2).T
        syy = (w * y**2).sum(1, keepdims=True)
        return syy - syt**2 / stt

    def predict(self, flux, error):
        self._check_fitted()
        out = np.empty(len(flux))
        for a in range(0, len(flux), 512):
            best = np.argmin(self.chi2(flux[a:a + 512], error[a:a + 512]), axis=1)
            out[a:a + 512] = self.node_params_[best, PARAMS.index("log_g")]
        return out

    def summary(self):
        return {"n_templates": int(len(self.templates_))}
