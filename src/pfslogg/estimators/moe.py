"""Models made of models (Track B): the physics-gated mixture of experts, and continuous conditioning.

**Mixture of experts** (class ``moe``): one expert per bin of the stellar parameters (``bins``:
``{column: number of equal-width bins over the prior | [edges]}``, e.g. 3 x 3 over [M/H] and T_eff),
each built by the registry from ``expert: {class, hyper}`` and trained on the training rows whose
*true* parameters lie in its bin widened by ``margin`` times the bin width on each side (the
overlap; fresh noise per pass, each expert its own stream), selected on the validation rows of the same
region. The gates are fitted on the first ``gate_rows`` training spectra held in memory (one noise
realisation: they pass over them many times). A gate (kind "gate",
:mod:`.gates`) that sees only the noisy spectrum gives every bin a probability; ``routing: soft``
predicts the probability-weighted mean of the experts, ``hard`` the most probable bin's expert.

Beside its own prediction, ``predict_all`` scores the same experts under every routing -- so that
routings are compared on identical experts and test rows:

* ``oracle``: the expert of the true bin (reads the true parameters: not deployable, the bound on
  what routing can give these experts);
* ``soft_<gate>`` and ``hard_<gate>`` for the mixture's gate (``gate``) and each of ``compare_gates``
  (fitted on the same data);
* integer columns (not scored): ``bin_true``, ``bin_<gate>`` (the gate's most probable bin) and, for
  gates that estimate the parameters, ``outside_<gate>`` (1 where the estimate lies beyond the
  prior's range: routed to the nearest outer bin, and counted).

**Continuous conditioning** (class ``conditioned``): one model given the gate's estimates of the
binned parameters as extra inputs (on the scale of the flux), instead of one model per bin.

Neither reads sigma as an input (the experts and the model may: none of the configured ones does).
"""

import logging
import time

import numpy as np

from ..errors import InputError
from ..threads import numpy_threads
from .base import REGISTRY, Composite, FitContext, derived_seed, make_part, part_spec, register
from ..binning import Binning

RIDGE_EXPERT = {"class": "ridge", "hyper": {}}
CLASSIFIER_GATE = {"class": "gate_classifier", "hyper": {"features": "windows"}}
REGRESSION_GATE = {"class": "gate_regression", "hyper": {"features": "spectrum"}}
MIN_VAL_ROWS = 10   # validation rows a bin needs to select its expert's hyper-parameters
log = logging.getLogger(__name__)


def _bins_text(bins):
    """"3 [M/H] x 3 T_eff bins" of a ``bins`` hyper-parameter (before the prior is known)."""
    from ..binning import LABELS

    parts = [f"{spec if isinstance(spec, int) else max(len(spec) - 1, 1)} {LABELS.get(a, a)}"
             for a, spec in (bins or {}).items()]
    return " x ".join(parts) + " bins"


def _label_of(spec):
    class_id = spec.get("class") if isinstance(spec, dict) else None
    return getattr(REGISTRY.get(class_id), "label", None) or str(class_id)


class _Binned(Composite):
    """A composite whose ``bins`` hyper-parameter bins the prior: checked against it with the config."""

    @classmethod
    def check_ranges(cls, hyper, ranges, where):
        Binning.from_hyper(hyper.get("bins", cls.hyper_default("bins")), ranges, f"{where}.bins")


@register
class MixtureOfExperts(_Binned):
    """Experts per parameter bin, routed by a gate on the spectrum (see the module docstring)."""

    class_id = "moe"
    PARTS = {"expert": ("estimator",), "gate": ("gate",), "compare_gates": ("gate",)}
    ROUTINGS = ("soft", "hard")
    _state_json = ("part_names_", "bins_", "gate_names_", "n_train_", "n_val_", "n_train_in_bin_", "val_accuracy_")

    def __init__(self, expert=RIDGE_EXPERT, gate=CLASSIFIER_GATE, bins={"M_H": 3}, margin=0.1, routing="soft",
                 compare_gates=None, min_rows=50, gate_rows=50000, random_state=0):
        self.expert = expert
        self.gate = gate
        self.bins = bins
        self.margin = margin
        self.routing = routing
        self.compare_gates = compare_gates
        self.min_rows = min_rows
        self.gate_rows = gate_rows
        self.random_state = random_state

    @property
    def label(self):
        return f"MoE of {_label_of(self.expert)} ({_bins_text(self.bins)})"

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        if hyper.get("routing", "soft") not in cls.ROUTINGS:
            raise InputError(f"{where}.routing: expected one of {list(cls.ROUTINGS)}, got {hyper['routing']!r}")
        margin = hyper.get("margin", 0.1)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 1:
            raise InputError(f"{where}.margin: expected a fraction of a bin's width in [0, 1], got {margin!r}")
        for key, least in (("min_rows", 2), ("gate_rows", 100)):
            rows = hyper.get(key, cls.hyper_default(key))
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < least:
                raise InputError(f"{where}.{key}: expected an integer >= {least}, got {rows!r}")
        names = list((hyper.get("compare_gates") or {}))
        if "gate" in names:
            raise InputError(f"{where}.compare_gates: the name 'gate' is the mixture's own gate; use another")

    def fit(self, train, val, context=None):
        from ..data.views import MemoryView, SubsetView

        ctx = context or FitContext()
        where, rs = ctx.where, self.random_state
        type(self).check_hyper({k: v for k, v in self.get_params().items() if k != "random_state"}, where)
        b = Binning.from_hyper(self.bins, ctx.ranges, f"{where}.bins")
        labels = b.labels()
        x_tr, x_val = b.values(train.params), b.values(val.params)
        experts, n_train, n_val = [], [], []
        for k in range(b.n_bins):
            m_tr, m_val = b.member(x_tr, k, self.margin), b.member(x_val, k, self.margin)
            for n, need, split in ((int(m_tr.sum()), self.min_rows, "training"), (int(m_val.sum()), MIN_VAL_ROWS,
                                                                                   "validation")):
                if n < need:
                    raise InputError(f"{where}.bins: bin {k + 1} of {b.n_bins} ({labels[k]}) holds {n} {split} rows "
                                     f"(margin {self.margin:g}), fewer than {need} (min_rows): use fewer bins, a wider "
                                     "margin or more spectra")
            t0 = time.perf_counter()
            expert = make_part(self.expert, derived_seed(rs, "expert", k), f"{where}.expert")
            expert.fit(SubsetView(train, m_tr, rng_seed=derived_seed(rs, "noise", k), where=f"{where}.bins"),
                       SubsetView(val, m_val, where=f"{where}.bins"),
                       ctx.part(f"experts/{k}", where=f"{where}.expert.hyper"))
            experts.append(expert)
            n_train.append(int(m_tr.sum()))
            n_val.append(int(m_val.sum()))
            log.info("expert %d/%d (%s): %d training, %d validation rows, fitted in %.1f s", k + 1, b.n_bins,
                     labels[k], n_train[-1], n_val[-1], time.perf_counter() - t0)
        self.parts_ = {f"experts/{k}": e for k, e in enumerate(experts)}
        seen = MemoryView(train, self.gate_rows)   # the gates pass over it many times: read once
        shared = {"experts": experts, "features": {}}   # gates of the same features share one map
        for name, spec, key in self._gate_specs():
            t0 = time.perf_counter()
            gate = make_part(spec, derived_seed(rs, "gate", name), f"{where}.{key}", kinds=("gate",), bins=b.to_json())
            with numpy_threads(ctx.threads):   # scikit-learn's OpenMP would take every core
                gate.fit(seen, val, ctx.part(f"gates/{name}", where=f"{where}.{key}.hyper", upstream=shared))
            self.parts_[f"gates/{name}"] = gate
            log.info("gate %s (%s): fitted in %.1f s", name, gate.class_id, time.perf_counter() - t0)
        self.part_names_ = list(self.parts_)
        self.bins_ = b.to_json()
        self.gate_names_ = [name for name, _, _ in self._gate_specs()]
        self.n_train_, self.n_val_ = n_train, n_val
        self.n_train_in_bin_ = b.counts(x_tr)[0]
        flux, sigma = val.load(np.float64)
        truth = b.index(x_val)
        self.val_accuracy_ = {g: float(np.mean(self.parts_[f"gates/{g}"].predict(flux, sigma).argmax(1) == truth))
                              for g in self.gate_names_}
        return self

    def _gate_specs(self):
        """(name, spec, hyper key) of the mixture's gate and of each gate compared with it."""
        out = [("gate", self.gate, "gate")]
        for name, spec in (self.compare_gates or {}).items():
            part_spec(spec, f"compare_gates.{name}")
            out.append((str(name), spec, f"compare_gates.{name}"))
        return out

    def binning(self):
        return Binning(self.bins_)

    def experts_predict(self, flux, sigma):
        """Every expert's log g for every spectrum: (B, n_bins)."""
        self._check_fitted()
        return np.stack([self.parts_[f"experts/{k}"].predict(flux, sigma) for k in range(len(self.n_train_))], 1)

    @staticmethod
    def _route(P, w, routing):
        return (P * w).sum(1) if routing == "soft" else P[np.arange(len(P)), w.argmax(1)]

    def predict(self, flux, sigma):
        P = self.experts_predict(flux, sigma)
        return self._route(P, self.parts_["gates/gate"].predict(flux, sigma), self.routing)

    def predict_all(self, flux, sigma, truth=None):
        P = self.experts_predict(flux, sigma)
        b = self.binning()
        out = {}
        for g in self.gate_names_:
            gate = self.parts_[f"gates/{g}"]
            w = gate.predict(flux, sigma)
            for routing in self.ROUTINGS:
                out[f"{routing}_{g}"] = self._route(P, w, routing)
            out[f"bin_{g}"] = w.argmax(1).astype(np.int64)
            if hasattr(gate, "estimates"):
                out[f"outside_{g}"] = (~b.inside(gate.estimates(flux, sigma))).astype(np.int64)
        out[""] = out[f"{self.routing}_gate"]
        if truth is not None:
            k = b.index(b.values(truth))
            out["oracle"] = P[np.arange(len(P)), k]
            out["bin_true"] = k
        return out

    def fitted(self):
        self._check_fitted()
        gates = {g: self.parts_[f"gates/{g}"].fitted() for g in self.gate_names_}
        return {"bins": self.bins_, "labels": self.binning().labels(), "n_train": self.n_train_, "n_val": self.n_val_,
                "n_train_in_bin": self.n_train_in_bin_, "val_accuracy": self.val_accuracy_, "gates": gates,
                "experts": [self.parts_[f"experts/{k}"].fitted() for k in range(len(self.n_train_))]}


@register
class ConditionedEstimator(_Binned):
    """One model whose inputs are the flux plus a gate's estimates of the binned parameters (continuous
    conditioning). The estimates join as extra columns put on the flux's scale: ``flux mean + flux
    scale * z`` with z the estimate standardised over the first training block."""

    class_id = "conditioned"
    PARTS = {"model": ("estimator",), "gate": ("gate",)}
    _state_json = ("part_names_", "axes_", "extra_mean_", "extra_sd_", "flux_mean_", "flux_scale_")
    SCALE_ROWS = 4096

    def __init__(self, model=RIDGE_EXPERT, gate=REGRESSION_GATE, bins={"M_H": 3, "T_eff": 3}, gate_rows=50000,
                 random_state=0):
        self.model = model
        self.gate = gate
        self.bins = bins
        self.gate_rows = gate_rows
        self.random_state = random_state

    @property
    def label(self):
        return f"{_label_of(self.model)} conditioned on [M/H], T_eff estimates" if set(self.bins or {}) == {"M_H", "T_eff"} \
            else f"{_label_of(self.model)} conditioned on the gate's estimates"


    def fit(self, train, val, context=None):
        from ..data.views import MappedView, MemoryView

        ctx = context or FitContext()
        where, rs = ctx.where, self.random_state
        b = Binning.from_hyper(self.bins, ctx.ranges, f"{where}.bins")
        gate = make_part(self.gate, derived_seed(rs, "gate"), f"{where}.gate", kinds=("gate",), bins=b.to_json())
        if not hasattr(gate, "estimates"):
            raise InputError(f"{where}.gate.class: '{gate.class_id}' gives no parameter estimates; continuous "
                             "conditioning needs gate_regression or gate_template")
        seen = MemoryView(train, self.gate_rows)
        with numpy_threads(ctx.threads):
            gate.fit(seen, val, ctx.part("gate", where=f"{where}.gate.hyper"))
        flux = seen.read(0, min(self.SCALE_ROWS, seen.n))[0]
        est = gate.estimates(flux, None)
        self.parts_ = {"gate": gate}
        self.axes_ = b.axes
        self.extra_mean_ = [float(v) for v in est.mean(0)]
        self.extra_sd_ = [float(max(v, 1e-12)) for v in est.std(0)]
        self.flux_mean_ = float(flux.mean())
        self.flux_scale_ = float((flux - flux.mean(0)).std())
        m = train.n_pixels + len(self.axes_)
        model = make_part(self.model, derived_seed(rs, "model"), f"{where}.model")
        model.fit(MappedView(train, self.inputs, m), MappedView(val, self.inputs, m),
                  ctx.part("model", where=f"{where}.model.hyper"))
        self.parts_["model"] = model
        self.part_names_ = list(self.parts_)
        return self

    def inputs(self, flux):
        """The model's inputs: flux (B, n_pix) with the scaled gate estimates appended (B, n_pix + n_axes)."""
        flux = np.asarray(flux, float)
        z = (self.parts_["gate"].estimates(flux, None) - self.extra_mean_) / self.extra_sd_
        return np.hstack([flux, self.flux_mean_ + self.flux_scale_ * z])

    def predict(self, flux, sigma=None):
        self._check_fitted()
        return self.parts_["model"].predict(self.inputs(flux), None)

    def fitted(self):
        self._check_fitted()
        return {"gate": self.parts_["gate"].fitted(), "model": self.parts_["model"].fitted()}
