"""Gates: models of kind "gate" that route a spectrum to the experts of a mixture (Track B).

A gate sees only the noisy spectrum (never sigma, never the parameters) and ``predict(flux, sigma)``
gives the probability of each bin of its ``bins`` (explicit edges ``{column: [...]}``, set by the
mixture of experts that owns it; :class:`~pfslogg.estimators.binning.Binning`): (B, n_bins), rows
summing to 1. A soft mixture weights the experts by them, a hard one takes the most probable bin.

* ``gate_classifier`` -- classification-optimal: multinomial logistic regression of the bin label on
  the gate features (:mod:`.features`: physics windows or principal components), its inverse
  regularisation ``C`` chosen by the validation log-loss.
* ``gate_regression`` -- predicts the binned parameters ([M/H], T_eff) with regressors built by the
  registry (``regressor: {class, hyper}``, e.g. Ridge on the gate features), then turns each estimate
  into bin probabilities for a Gaussian error of its validation RMSE (outer edges open).
* ``gate_template`` -- the parameters of the chi^2-best node of the instrument grid (a template fit
  with equal pixel weights: sigma is not read), turned into probabilities the same way.
* ``gate_mixture`` -- regression-optimal: a softmax over the gate features whose weights minimise the
  mean squared error of the mixture's log g on the validation set, the experts held fixed
  (``FitContext.upstream["experts"]``, given by the mixture).

Gates with parameter estimates (regression, template) also offer ``estimates(flux, sigma)`` (B, n_axes),
which continuous conditioning (:class:`~pfslogg.estimators.moe.ConditionedEstimator`) feeds to a model.
"""

import numpy as np

from ..errors import InputError
from ..evaluation import rmse
from .base import Composite, Estimator, make_estimator, make_part, register
from ..binning import Binning
from .features import FeatureMap

FEATURES = "features.npz"
RIDGE_GATE = {"class": "ridge", "hyper": {"alphas": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}}


def softmax(logits):
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def mapped(view, fmap):
    """``view`` seen through the gate features."""
    from ..data.views import MappedView

    return MappedView(view, fmap, fmap.n_features)


class Gate(Estimator):
    """Base of the gates: the bins, and the feature map where the gate has one."""

    kind = "gate"
    label = "gate"

    def binning(self):
        if not isinstance(self.bins, dict) or not self.bins:
            raise InputError(f"{self.class_id}: bins (explicit edges per parameter) are set by the mixture of experts")
        return Binning(self.bins)

    def _fit_features(self, train, context):
        """The gate's feature map, fitted on ``train`` -- or taken from ``context.upstream["features"]``,
        where a mixture shares the maps of its gates (all fitted on the same rows): gates with the same
        features then share one principal-component fit."""
        import json

        where = f"{getattr(context, 'where', 'gate')}"
        shared = (getattr(context, "upstream", None) or {}).get("features")
        key = json.dumps([self.features, self.windows, self.colors, self.n_components], sort_keys=True)
        if shared is not None and key in shared:
            self.features_ = shared[key]
            return self.features_
        self.features_ = FeatureMap.fit(self.features, train, self.windows, self.colors, self.n_components,
                                        seed=self.random_state, where=where)
        if shared is not None:
            shared[key] = self.features_
        return self.features_

    def _save_native(self, folder):
        files = super()._save_native(folder)
        if hasattr(self, "features_"):
            np.savez(folder / FEATURES, **self.features_.arrays)
            files.append(FEATURES)
        return files

    def _load_native(self, folder):
        super()._load_native(folder)
        if (folder / FEATURES).is_file():
            with np.load(folder / FEATURES, allow_pickle=False) as z:
                self.features_ = FeatureMap({k: z[k] for k in z.files})

    def feature_names(self):
        return self.features_.names(self.windows, self.colors) if hasattr(self, "features_") else []

    def features_of(self, view):
        """Standardised gate features of every row of a view (B, F)."""
        return np.concatenate([self.features_(flux) for _, _, flux, _ in view.batches(4096, sigma=False)])

    def predict(self, flux, sigma=None):  # pragma: no cover - interface
        raise NotImplementedError


@register
class ClassifierGate(Gate):
    """Multinomial logistic regression of the bin on the gate features (classification-optimal)."""

    class_id = "gate_classifier"
    label = "classifier gate"
    _state_json = ("C_", "classes_", "val_log_loss_", "val_accuracy_", "search_")
    _state_arrays = ("coef_", "intercept_")

    def __init__(self, bins=None, features="windows", windows=None, colors=None, n_components=32,
                 C=(0.1, 1.0, 10.0), random_state=0):
        self.bins = bins
        self.features = features
        self.windows = windows
        self.colors = colors
        self.n_components = n_components
        self.C = C
        self.random_state = random_state

    def fit(self, train, val, context=None):
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        b = self.binning()
        self._fit_features(train, context)
        Z, Zv = self.features_of(train), self.features_of(val)
        y, yv = b.index(b.values(train.params)), b.index(b.values(val.params))
        classes = np.unique(y)
        if len(classes) < 2:
            raise InputError(f"{getattr(context, 'where', 'gate')}: the training rows fall in fewer than two bins")
        best, search = None, []
        m = LogisticRegression(max_iter=500, tol=1e-4, warm_start=True)   # each C starts from the last solution
        for c in sorted(float(c) for c in np.atleast_1d(self.C)):
            m.set_params(C=c).fit(Z, y)
            p = self._scatter(m.predict_proba(Zv), m.classes_, b.n_bins)
            loss = float(log_loss(yv, np.clip(p, 1e-12, 1), labels=np.arange(b.n_bins)))
            search.append({"C": float(c), "val_log_loss": loss})
            if best is None or loss < best[0]:
                best = (loss, c, m.coef_.copy(), m.intercept_.copy(), m.classes_.copy(), p)
        loss, self.C_, coef, intercept, classes, p = best
        self.coef_, self.intercept_ = coef.astype(float), intercept.astype(float)
        if self.coef_.shape[0] == 1:   # scikit-learn's binary form: one logit for the second class
            self.coef_ = np.vstack([-0.5 * self.coef_, 0.5 * self.coef_])
            self.intercept_ = np.array([-0.5 * self.intercept_[0], 0.5 * self.intercept_[0]])
        self.classes_ = [int(k) for k in classes]
        self.val_log_loss_, self.val_accuracy_ = loss, float(np.mean(p.argmax(1) == yv))
        self.search_ = search
        return self

    @staticmethod
    def _scatter(p, classes, n_bins):
        out = np.zeros((len(p), n_bins))
        out[:, np.asarray(classes, int)] = p
        return out

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "features_")

    def predict(self, flux, sigma=None):
        self._check_fitted()
        p = softmax(self.features_(flux) @ np.asarray(self.coef_).T + np.asarray(self.intercept_))
        return self._scatter(p, self.classes_, self.binning().n_bins)

    def importance(self):
        """Per feature: the largest |coefficient| over the bins (features standardised: comparable)."""
        return np.abs(np.asarray(self.coef_)).max(0)

    def fitted(self):
        self._check_fitted()
        return {"C": self.C_, "val_log_loss": self.val_log_loss_, "val_accuracy": self.val_accuracy_,
                "features": self.feature_names(), "importance": [float(v) for v in self.importance()],
                "search": self.search_}


class _ParameterGate(Composite, Gate):
    """A gate that estimates the binned parameters, then gives each bin the probability that the
    true value lies in it for a Gaussian error of the validation RMSE (per axis)."""

    _state_json = ("part_names_", "scale_", "val_rmse_", "val_accuracy_", "val_outside_")

    def estimates(self, flux, sigma=None):  # pragma: no cover - interface
        raise NotImplementedError

    def _calibrate(self, val):
        b = self.binning()
        flux, sigma = val.load(np.float64)
        est, truth = self.estimates(flux, sigma), b.values(val.params)
        self.val_rmse_ = {a: rmse(truth[:, j], est[:, j]) for j, a in enumerate(b.axes)}
        self.scale_ = [max(self.val_rmse_[a], 1e-6) for a in b.axes]
        self.val_accuracy_ = float(np.mean(b.index(est) == b.index(truth)))
        self.val_outside_ = int(np.sum(~b.inside(est)))

    def predict(self, flux, sigma=None):
        self._check_fitted()
        return self.binning().probabilities(self.estimates(flux, sigma), self.scale_)

    def fitted(self):
        self._check_fitted()
        return {"val_rmse": self.val_rmse_, "val_accuracy": self.val_accuracy_, "val_outside": self.val_outside_}


@register
class RegressionGate(_ParameterGate):
    """Regressors of the binned parameters on the gate features (one per axis, built by the registry)."""

    class_id = "gate_regression"
    label = "regression gate"
    PARTS = {"regressor": ("estimator",)}

    def __init__(self, bins=None, features="windows", windows=None, colors=None, n_components=32,
                 regressor=RIDGE_GATE, random_state=0):
        self.bins = bins
        self.features = features
        self.windows = windows
        self.colors = colors
        self.n_components = n_components
        self.regressor = regressor
        self.random_state = random_state

    def fit(self, train, val, context=None):
        from ..data.views import TargetView
        from .base import FitContext, derived_seed

        context = context or FitContext()
        b = self.binning()
        fmap = self._fit_features(train, context)
        self.parts_ = {}
        for a in b.axes:
            part = make_part(self.regressor, derived_seed(self.random_state, "regressor", a),
                             f"{context.where}.regressor")
            part.fit(TargetView(mapped(train, fmap), a), TargetView(mapped(val, fmap), a),
                     context.part(f"regressors/{a}", where=f"{context.where}.regressor.hyper"))
            self.parts_[f"regressors/{a}"] = part
        self.part_names_ = list(self.parts_)
        self._calibrate(val)
        return self

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "features_")

    def estimates(self, flux, sigma=None):
        z = self.features_(flux)
        return np.stack([self.parts_[f"regressors/{a}"].predict(z, None) for a in self.binning().axes], 1)


@register
class TemplateGate(_ParameterGate):
    """The chi^2-best node of the instrument grid (equal pixel weights: no sigma), its parameters binned."""

    class_id = "gate_template"
    label = "template gate"

    def __init__(self, bins=None, batch=512, random_state=0):
        self.bins = bins
        self.batch = batch
        self.random_state = random_state

    def fit(self, train, val, context=None):
        b = self.binning()
        part = make_estimator("template", {"batch": self.batch}, where=f"{getattr(context, 'where', 'gate')}")
        part.fit(None, None, context)
        missing = [a for a in b.axes if a not in part.ranges_]
        if missing:
            raise InputError(f"{getattr(context, 'where', 'gate')}: the template grid has no axis {missing[0]!r}")
        self.parts_ = {"template": part}
        self.part_names_ = ["template"]
        self._calibrate(val)
        return self

    def estimates(self, flux, sigma=None):
        from .. import PARAMS

        flux = np.asarray(flux, float)
        best = self.parts_["template"].best_params(flux, np.ones_like(flux))
        return best[:, [PARAMS.index(a) for a in self.binning().axes]]


@register
class MixtureGate(Gate):
    """Softmax gate whose weights minimise the mixture's validation MSE with the experts fixed
    (regression-optimal), L2-penalised (``l2`` on the weights)."""

    class_id = "gate_mixture"
    label = "mixture-MSE gate"
    _state_json = ("val_mse_", "val_mse_uniform_", "iterations_")
    _state_arrays = ("weights_", "bias_")

    def __init__(self, bins=None, features="windows", windows=None, colors=None, n_components=32, l2=1e-3,
                 random_state=0):
        self.bins = bins
        self.features = features
        self.windows = windows
        self.colors = colors
        self.n_components = n_components
        self.l2 = l2
        self.random_state = random_state

    def fit(self, train, val, context=None):
        from scipy.optimize import minimize

        experts = (getattr(context, "upstream", None) or {}).get("experts")
        where = getattr(context, "where", "gate")
        b = self.binning()
        if not experts or len(experts) != b.n_bins:
            raise InputError(f"{where}: class 'gate_mixture' needs the {b.n_bins} fitted experts of its mixture "
                             "(FitContext.upstream['experts']): use it inside a mixture of experts")
        self._fit_features(train, context)
        flux, sigma = val.load(np.float64)
        Z = self.features_(flux)
        P = np.stack([e.predict(flux, sigma) for e in experts], 1)          # (B, K) experts' log g
        y = np.asarray(val.y, float)
        F, K, n, lam = Z.shape[1], P.shape[1], len(y), float(self.l2)

        def loss(theta):
            W, c = theta[:F * K].reshape(F, K), theta[F * K:]
            w = softmax(Z @ W + c)
            pred = (w * P).sum(1)
            r = pred - y
            g_logit = (2.0 / n) * r[:, None] * w * (P - pred[:, None])
            grad = np.concatenate([(Z.T @ g_logit + 2 * lam * W).ravel(), g_logit.sum(0)])
            return float(np.mean(r ** 2) + lam * np.sum(W ** 2)), grad

        res = minimize(loss, np.zeros(F * K + K), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.weights_, self.bias_ = res.x[:F * K].reshape(F, K), res.x[F * K:]
        self.val_mse_ = float(np.mean(((softmax(Z @ self.weights_ + self.bias_) * P).sum(1) - y) ** 2))
        self.val_mse_uniform_ = float(np.mean((P.mean(1) - y) ** 2))
        self.iterations_ = int(res.nit)
        return self

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "features_")

    def predict(self, flux, sigma=None):
        self._check_fitted()
        return softmax(self.features_(flux) @ self.weights_ + self.bias_)

    def fitted(self):
        self._check_fitted()
        return {"val_mse": self.val_mse_, "val_mse_uniform": self.val_mse_uniform_, "iterations": self.iterations_}
