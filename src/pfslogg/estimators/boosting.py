"""Gradient-boosted trees (LightGBM) on the noisy flux, with early stopping on validation.

``learning_rate`` and ``num_leaves`` may each be a list: every combination is trained and the one
with the best validation R^2 is kept (the rest are recorded in ``search_``, for the sensitivity
figure). ``standardize`` scales every pixel to zero mean and unit variance on the training view
first -- the original study reports that this costs LightGBM 36 % of its R^2; trees split on
per-feature quantile bins, which an increasing affine map leaves unchanged, so Track F tests it.

``intervals`` (issue 17): after the search, two more boosters are trained with the quantile (pinball)
objective at the Gaussian +-1 sigma quantiles (:data:`Q16`, :data:`Q84`: 15.87 % and 84.13 %), with the
chosen learning rate and leaves, the same data and early stopping on the validation pinball loss. The
per-star std is half the width of that 68 % interval, ``(q84 - q16) / 2`` -- the interval of a quantile
fit need not be symmetric about the mean (a skewed error gives one long side), so this half-width is a
Gaussian summary of it, not the distance to either end. The mean stays the L2 booster's prediction, so
the R^2 is the same with intervals on or off.
"""

import logging

import numpy as np

from ..errors import InputError
from ..evaluation import r2_score
from .base import Estimator, register

NATIVE = "model.txt"
Q16, Q84 = 0.158655, 0.841345          # the Gaussian -1 and +1 sigma quantiles, Phi(-1) and Phi(1)
QUANTILE_FILES = {"q16": "q16.txt", "q84": "q84.txt"}
STD_FLOOR = 1e-6                       # dex: the smallest std reported (two quantile boosters may agree)


def _log_every(period, log):
    """LightGBM callback: one log line every ``period`` boosting rounds (validation L2)."""
    def callback(env):
        if (env.iteration + 1) % period == 0 and env.evaluation_result_list:
            _, name, value, _ = env.evaluation_result_list[0][:4]
            log.info("LightGBM: round %d, validation %s %.4g", env.iteration + 1, name, value)
    callback.order = 30
    return callback


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


@register
class LightGBMEstimator(Estimator):
    class_id = "lightgbm"
    label = "LightGBM"
    # quantile_iterations_: {"q16": best iteration, "q84": ...} of the quantile boosters, None without intervals
    _state_json = ("best_iteration_", "learning_rate_", "num_leaves_", "search_", "quantile_iterations_")
    _state_arrays = ("mean_", "scale_")

    def __init__(self, n_estimators=600, learning_rate=0.1, num_leaves=31, min_child_samples=20,
                 colsample_bytree=0.2, subsample=0.8, early_stopping_rounds=30, max_bin=63,
                 bin_sample=5000, standardize=False, intervals=False, random_state=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.early_stopping_rounds = early_stopping_rounds
        self.max_bin = max_bin
        self.bin_sample = bin_sample
        self.standardize = standardize
        self.intervals = intervals
        self.random_state = random_state

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        if not isinstance(hyper.get("intervals", False), bool):
            raise InputError(f"{where}.intervals: expected true or false, got {hyper['intervals']!r}")
        b = hyper.get("bin_sample")
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise InputError(f"{where}.bin_sample: expected a positive whole number of spectra, got {b!r}")

    @classmethod
    def provides_std(cls, hyper):
        """A per-star std only with the ``intervals`` hyper-parameter (default off)."""
        return bool((hyper or {}).get("intervals", False))

    @property
    def gives_std(self):
        return bool(self.intervals)

    def _features(self, flux):
        x = np.asarray(flux, np.float32)
        return (x - self.mean_) / self.scale_ if self.standardize else x

    def fit(self, train, val, context=None):
        import lightgbm as lgb

        X, _ = train.load(sigma=False)
        Xv, _ = val.load(sigma=False)
        if self.standardize:
            self.mean_ = X.mean(0, dtype=np.float64).astype(np.float32)
            self.scale_ = np.maximum(X.std(0, dtype=np.float64), 1e-12).astype(np.float32)
            X -= self.mean_
            X /= self.scale_
            Xv = (Xv - self.mean_) / self.scale_
        else:
            self.mean_ = np.zeros(0, np.float32)
            self.scale_ = np.zeros(0, np.float32)
        dtrain = lgb.Dataset(X, label=train.y, params=self._dataset_params(context), free_raw_data=False)
        dval = lgb.Dataset(Xv, label=val.y, reference=dtrain)
        lrs, leaves = _as_list(self.learning_rate), _as_list(self.num_leaves)
        val_r2 = [[None] * len(leaves) for _ in lrs]
        iters = [[None] * len(leaves) for _ in lrs]
        best = None
        log = logging.getLogger(__name__)
        for i, lr in enumerate(lrs):
            for j, nl in enumerate(leaves):
                log.info("LightGBM: learning rate %g, %d leaves, %d training spectra", lr, nl, train.n)
                booster, it = self._train(lgb, self._params(lr, nl, context), dtrain, dval, log)
                s = r2_score(val.y, booster.predict(Xv, num_iteration=it))
                val_r2[i][j], iters[i][j] = s, it
                if best is None or s > best[0]:
                    best = (s, booster, it, float(lr), int(nl))
        _, self.booster_, self.best_iteration_, self.learning_rate_, self.num_leaves_ = best
        self.search_ = {"learning_rate": [float(v) for v in lrs], "num_leaves": [int(v) for v in leaves],
                        "val_r2": val_r2, "best_iteration": iters}
        self.quantile_boosters_ = self.quantile_iterations_ = None
        if self.intervals:
            boosters, self.quantile_iterations_ = {}, {}
            for name, alpha in (("q16", Q16), ("q84", Q84)):
                log.info("LightGBM: quantile %g (learning rate %g, %d leaves)", alpha, self.learning_rate_,
                         self.num_leaves_)
                params = {**self._params(self.learning_rate_, self.num_leaves_, context),
                          "objective": "quantile", "alpha": alpha, "metric": "quantile"}
                boosters[name], self.quantile_iterations_[name] = self._train(lgb, params, dtrain, dval, log)
            self.quantile_boosters_ = boosters
        return self

    def _dataset_params(self, context):
        """How the training spectra are binned: ``max_bin`` bins per pixel at the quantiles of ``bin_sample``
        training spectra (LightGBM's ``bin_construct_sample_cnt``; all of them when there are fewer), no
        exclusive-feature bundling (no pixel of a spectrum is zero, so nothing bundles: the search for
        bundles cost ~2 s per 20,000 spectra and changed no tree). Binning 20,000 spectra of 4,096 pixels
        on one thread: 15 s at LightGBM's default sample (200,000, i.e. every spectrum), 6 s at 5,000."""
        return {"max_bin": int(self.max_bin), "bin_construct_sample_cnt": int(self.bin_sample),
                "enable_bundle": False, "data_random_seed": int(self.random_state),
                "num_threads": int(context.threads if context else 1), "verbosity": -1}

    def _params(self, lr, nl, context):
        """LightGBM parameters of the L2 fit at learning rate ``lr`` with ``nl`` leaves (deterministic).
        Histograms column-wise: a cell of 20,000 spectra 17.3 s against 19.9 s row-wise on one thread
        (2026-12-05), the same predictions bitwise."""
        return {
            "objective": "regression", "learning_rate": float(lr), "num_leaves": int(nl),
            "min_child_samples": int(self.min_child_samples), "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample, "subsample_freq": 1 if self.subsample < 1 else 0,
            "max_bin": int(self.max_bin), "seed": int(self.random_state), "deterministic": True,
            "force_col_wise": True, "num_threads": int(context.threads if context else 1), "verbosity": -1,
        }

    def _train(self, lgb, params, dtrain, dval, log):
        """(booster, best iteration): boosting with early stopping on the validation set's first metric."""
        try:
            booster = lgb.train(params, dtrain, num_boost_round=int(self.n_estimators), valid_sets=[dval],
                                callbacks=[lgb.early_stopping(int(self.early_stopping_rounds), verbose=False),
                                           _log_every(100, log)])
        except lgb.basic.LightGBMError as e:
            raise InputError(f"estimators: LightGBM rejected the hyper-parameters ({e})") from None
        return booster, int(booster.best_iteration or self.n_estimators)

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "booster_") and hasattr(self, "quantile_boosters_")

    def predict(self, flux, sigma=None, return_std=False):
        """log g of the L2 booster; with ``return_std`` (only with ``intervals``) also the per-star std,
        ``max(|q84 - q16| / 2, STD_FLOOR)`` of the two quantile boosters: the absolute value, so that
        quantiles that cross (q84 < q16, possible where the two are fitted apart) give the same width
        as sorted ones, never a negative std."""
        self._check_fitted()
        x = self._features(flux)
        mean = self.booster_.predict(x, num_iteration=self.best_iteration_)
        if not return_std:
            return mean
        if self.quantile_boosters_ is None:
            raise InputError(f"class '{self.class_id}': fitted without intervals, so it gives no per-star "
                             "standard deviation (hyper-parameter intervals: true)")
        q16, q84 = (self.quantile_boosters_[k].predict(x, num_iteration=self.quantile_iterations_[k])
                    for k in ("q16", "q84"))
        return mean, np.maximum(np.abs(q84 - q16) / 2, STD_FLOOR)

    def fitted(self):
        self._check_fitted()
        out = {"learning_rate": self.learning_rate_, "num_leaves": self.num_leaves_,
               "best_iteration": self.best_iteration_, "search": self.search_}
        if self.quantile_iterations_ is not None:
            out["quantile_iterations"] = dict(self.quantile_iterations_)
        return out

    def _save_native(self, folder):
        (folder / NATIVE).write_text(self.booster_.model_to_string(num_iteration=self.best_iteration_))
        files = [NATIVE]
        if self.quantile_boosters_ is not None:
            for k, f in QUANTILE_FILES.items():
                (folder / f).write_text(self.quantile_boosters_[k].model_to_string(
                    num_iteration=self.quantile_iterations_[k]))
                files.append(f)
        return files

    def _load_native(self, folder):
        import lightgbm as lgb

        try:
            self.booster_ = lgb.Booster(model_str=(folder / NATIVE).read_text())
        except (OSError, lgb.basic.LightGBMError) as e:
            raise InputError(f"{folder / NATIVE}: unreadable LightGBM model ({e})") from None
        iters = self.quantile_iterations_
        if bool(self.intervals) != (iters is not None) or (iters is not None and (
                not isinstance(iters, dict) or set(iters) != set(QUANTILE_FILES)
                or not all(isinstance(v, int) and v >= 1 for v in iters.values()))):
            raise InputError(f"{folder}: hyper-parameter intervals={self.intervals!r} does not fit the learned "
                             f"quantile_iterations_ {iters!r}")
        self.quantile_boosters_ = None
        if iters is not None:
            boosters = {}
            for k, f in QUANTILE_FILES.items():
                try:
                    boosters[k] = lgb.Booster(model_str=(folder / f).read_text())
                except (OSError, lgb.basic.LightGBMError) as e:
                    raise InputError(f"{folder / f}: unreadable LightGBM model ({e})") from None
            self.quantile_boosters_ = boosters
