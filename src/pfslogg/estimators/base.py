"""The estimator interface, second version (DESIGN.md section 4), and model folders.

    est = make_estimator("ridge", {"alphas": [1, 10]}, random_state=0)   # class id + hyper-parameters
    est.fit(train, val, FitContext(grid=..., ranges=..., threads=2))      # views: pfslogg.data.views
    logg = est.predict(flux, sigma)                                       # (B, n_pix) -> (B,)
    est.save("models/ridge/nl1_n20000_s0")                                # a folder, never a pickle
    est = load("models/ridge/nl1_n20000_s0")

* ``__init__`` stores its keyword arguments unchanged (scikit-learn convention); ``random_state``
  is the model's own randomness (bagging, initialisation), every class accepts it.
* The noise condition is not a hyper-parameter: ``fit`` receives views that deliver noisy flux at a
  noise level -- fresh noise per batch for training, fixed noise for validation -- and ``predict``
  gets the noisy flux and the sigma of its noise.
* ``FitContext``: what a fit may need besides the data -- the instrument grid (physics-based
  estimators), the prior ranges, the number of threads (a run-time setting, not a hyper-parameter).
* Learned state ends in ``_`` and is set only in ``fit``. A class lists it: ``_state_json`` (JSON
  values: what fit chose) and ``_state_arrays`` (NumPy arrays). ``save(folder)`` writes
  ``estimator.json`` -- format, class id, label, hyper-parameters, the JSON state, the sha256 of
  every weights file, provenance -- beside ``weights.npz`` and any native file a class writes
  (LightGBM's model text; later torch ``state_dict``). ``load`` dispatches on the class id, checks
  the files against their sha256 and never unpickles code (``np.load(allow_pickle=False)``).
* ``kind`` (a class attribute, never an ``issubclass`` test): ``"estimator"`` (predicts log g),
  ``"gate"`` (predicts the probability of each parameter bin: the router of a mixture of experts),
  ``"transform"`` (a denoiser: ``transform(flux, sigma, strength=None)`` -> flux, scored by wMAE/MSE,
  never by R^2 and never checked against a log g ceiling). An *encoder* is any fitted model with
  ``encode(flux, sigma)`` -> latents (the networks). ``wants_accelerator(hyper)`` says whether a
  cell of the class with those hyper-parameters runs in the GPU rule.
* **Upstream models** (``UPSTREAM``: role -> what it must be, see :data:`ROLES`): fitted models a
  class builds on, given by the workflow in ``FitContext.upstream`` (role -> loaded model; config
  ``estimators.<variant>.upstream``) and fetched with :func:`upstream_model`. A class keeps what it
  uses as a part, so its model folder stands alone.
* ``predict_all(flux, sigma, truth)``: every prediction a model offers, ``{"": predict(...)}`` for a
  plain model; a composite adds named alternatives scored beside its main prediction (a mixture
  of experts: each routing of the same experts, the oracle among them). ``truth`` (the parameter
  table of the rows) is passed by the evaluation; only alternatives that are not deployable read it.
* **Composites** (:class:`Composite`) are made of models: each part is built by the registry from its
  own ``{"class", "hyper"}`` (:func:`make_part`), fitted inside the composite's ``fit`` and saved as
  a nested model folder (``<folder>/<part>/estimator.json`` ...); the composite's manifest records
  the sha256 of each part's manifest, whose own manifest records its files', so loading checks the
  whole tree.
"""

import inspect
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

FORMAT = 1
MANIFEST = "estimator.json"
WEIGHTS = "weights.npz"
REGISTRY = {}


# What a model named for an upstream role must be (checked on classes when the config is read, and on
# the loaded models in fit): role -> (test on the class, what is expected, in words).
# The test takes the class and the variant's hyper-parameters (what a model of the class gives may depend on them).
ROLES = {
    "transform": (lambda cls, hyper=None: getattr(cls, "kind", None) == "transform",
                  "a variant of kind 'transform' (a denoiser: transform(flux, sigma) -> flux)"),
    "encoder": (lambda cls, hyper=None: callable(getattr(cls, "encode", None)),
                "a variant whose model has encode(flux, sigma) -> latents (a network)"),
    "model": (lambda cls, hyper=None: getattr(cls, "kind", None) == "estimator" and cls.provides_std(hyper or {}),
              "a variant of kind 'estimator' that gives a per-star std (predict(..., return_std=True))"),
}


def upstream_key(context, role):
    """``estimators.<variant>.upstream.<role>``: the config key of a fit's upstream model, for messages."""
    return f"{str(getattr(context, 'where', None) or 'estimators').removesuffix('.hyper')}.upstream.{role}"


def upstream_model(context, role):
    """The fitted upstream model of ``role`` from ``context.upstream``; InputError naming
    ``estimators.<variant>.upstream.<role>`` when it is missing or is not what the role needs."""
    where = upstream_key(context, role)
    model = (getattr(context, "upstream", None) or {}).get(role)
    test, expected = ROLES[role]
    if model is None:
        raise InputError(f"{where}: required, expected {expected}")
    if not test(type(model), model.get_params() if hasattr(model, "get_params") else None):
        raise InputError(f"{where}: a model of class '{getattr(model, 'class_id', type(model).__name__)}', "
                         f"expected {expected}")
    return model


def wave_range(wave):
    """``[first, last, n]`` of a wavelength grid (A, A, pixels), rounded: what a fitted model records of
    the grid it learned, so that a model built on it can refuse data of another grid."""
    wave = np.asarray(wave, float)
    return [round(float(wave[0]), 4), round(float(wave[-1]), 4), int(len(wave))]


def check_same_grid(model, wave, where):
    """InputError naming ``where`` when ``model`` (with ``wave_range_``) was fitted on another wavelength grid."""
    mine = getattr(model, "wave_range_", None)
    if mine is not None and list(mine) != wave_range(wave):
        raise InputError(f"{where}: a model fitted on another wavelength grid ({mine[0]:g}-{mine[1]:g} A, {mine[2]} "
                         f"pixels); the data have {wave_range(wave)[0]:g}-{wave_range(wave)[1]:g} A, "
                         f"{wave_range(wave)[2]} pixels")


def register(cls):
    """Class decorator: make ``cls`` constructible by its ``class_id``."""
    REGISTRY[cls.class_id] = cls
    return cls


def registered(class_id, where="estimators", kinds=("estimator",)):
    """The class registered as ``class_id``, of one of ``kinds``; InputError naming ``where``."""
    cls = REGISTRY.get(class_id)
    if cls is None or cls.kind not in kinds:
        choices = sorted(k for k, c in REGISTRY.items() if c.kind in kinds)
        raise InputError(f"{where}: unknown {' or '.join(kinds)} class '{class_id}', expected one of {choices}")
    return cls


def make_estimator(class_id, hyper=None, random_state=0, where="estimators", kinds=("estimator",)):
    """An unfitted model of class ``class_id`` with ``hyper`` (dict); InputError naming ``where``
    for an unknown class (or one not of ``kinds``) or hyper-parameter."""
    cls = registered(class_id, where, kinds)
    hyper = dict(hyper or {})
    cls.check_hyper(hyper, where)
    return cls(**hyper, random_state=random_state)


def part_spec(spec, where):
    """``(class id, hyper)`` of a part given as ``{"class": ..., "hyper": {...}}``; InputError naming ``where``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str) \
            or not isinstance(spec.get("hyper", {}) or {}, dict) or set(spec) - {"class", "hyper"}:
        raise InputError(f"{where}: expected a mapping {{class: <registered class>, hyper: {{...}}}}, got {spec!r}")
    return spec["class"], dict(spec.get("hyper") or {})


def make_part(spec, random_state, where, kinds=("estimator",), **extra):
    """An unfitted part of a composite from its ``{"class", "hyper"}`` (plus ``extra`` hyper-parameters
    the composite sets, e.g. a gate's bins); its seed derived from the composite's."""
    class_id, hyper = part_spec(spec, where)
    return make_estimator(class_id, {**hyper, **extra}, random_state=random_state, where=f"{where}.hyper",
                          kinds=kinds)


def derived_seed(random_state, *path):
    """A seed for a part (``path``: its position, e.g. ("expert", 3)), distinct per part."""
    import hashlib

    words = [int(random_state)] + [int.from_bytes(hashlib.sha256(str(p).encode()).digest()[:4], "little")
                                   for p in path]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@dataclass
class FitContext:
    """What a fit may use besides the training and validation views."""

    grid: str = None          # instrument grid file (physics-based estimators)
    ranges: dict = field(default_factory=dict)   # prior ranges of the parameters
    threads: int = 1          # CPU threads the estimator may use
    checkpoint_dir: str = None   # where an iterative fit keeps its checkpoint (resume after a kill)
    device: str = None        # torch device for neural estimators (None: cuda when present, else cpu)
    upstream: dict = field(default_factory=dict)   # fitted models a fit builds on (a gate: the experts)
    where: str = "estimators"  # config key of the model's hyper-parameters, for messages about them

    def part(self, name, **changes):
        """The context of a composite's part ``name``: its own checkpoint sub-folder, the rest shared."""
        import dataclasses

        sub = str(Path(self.checkpoint_dir) / name) if self.checkpoint_dir else None
        return dataclasses.replace(self, checkpoint_dir=sub, **changes)


class Estimator:
    """Base class: hyper-parameters, fitted check, model folders."""

    class_id = None
    label = None
    kind = "estimator"     # "estimator" (predict: log g), "gate" (bin probabilities), "transform" (flux)
    accelerator = False    # whether a cell of the class runs in the GPU rule (see wants_accelerator)
    gives_std = False      # predict(flux, sigma, return_std=True) -> (mean, std) (pfslogg.uncertainty)
    learns = True          # fitted to training spectra (False: a fit to the model grid, the template and ML fits)
    simulator_stars = "simulator"   # with train_source simulator: whose stars (config.simulator_stars)
    upstream_means = False  # its point estimates are its upstream model's (a rescaled std only): no row of its own
    threads = 1            # CPU threads a cell of the class uses well (the scheduler reserves that many cores)
    UPSTREAM = {}          # role -> description of the fitted model the class builds on (ROLES)
    _state_json = ()      # names of the JSON-valued learned attributes (end in "_")
    _state_arrays = ()    # names of the array-valued learned attributes
    _state_defaults = {}  # JSON-valued learned attributes that older model folders lack -> the value they meant

    @classmethod
    def hyper_names(cls):
        """The hyper-parameters the class takes (its keyword arguments but ``random_state``)."""
        return set(inspect.signature(cls.__init__).parameters) - {"self", "random_state"}

    @classmethod
    def check_hyper(cls, hyper, where):
        """InputError naming ``where`` for a hyper-parameter the class does not take (composites also
        check their parts). Runs on every variant when the configuration is read."""
        allowed = cls.hyper_names()
        unknown = sorted(set(hyper) - allowed)
        if unknown:
            raise InputError(f"{where}: unknown hyper-parameter(s) {unknown} of class '{cls.class_id}', "
                             f"expected some of {sorted(allowed)}")

    @classmethod
    def check_ranges(cls, hyper, ranges, where):
        """InputError naming ``where`` for hyper-parameters that do not fit the prior ``ranges`` (a
        mixture's bins that leave part of the prior without an expert); nothing for most classes."""

    @classmethod
    def check_variant(cls, cfg, name, where):
        """InputError naming ``where`` when variant ``name`` of the configuration ``cfg`` (this class) is
        inconsistent with the variants it builds on; runs once the hyper-parameters and upstream roles
        are checked. Nothing to check by default."""

    @classmethod
    def simulated_rows(cls, hyper, size):
        """How many stars a cell of size ``size`` with ``train_source: simulator`` simulates for this class's
        fit: ``size`` (a class that calibrates on them may ask for more, :class:`~.conformal.ConformalEstimator`)."""
        return int(size)

    @classmethod
    def provides_std(cls, hyper):
        """Whether a model of this class with ``hyper`` gives a per-star std (``gives_std`` of its
        instances): the class attribute ``gives_std``; classes where it depends on the hyper-parameters
        (a network's Gaussian-NLL loss, LightGBM's intervals, an ensemble) override this and make
        ``gives_std`` an instance property. Class-level code asks this, never ``cls.gives_std``."""
        return bool(cls.gives_std)

    @classmethod
    def wants_accelerator(cls, hyper):
        """Whether a cell of this class with ``hyper`` belongs in the GPU rule: the class attribute
        ``accelerator``; a composite asks its parts."""
        return bool(cls.accelerator)

    @classmethod
    def cpu_threads(cls, hyper):
        """How many CPU threads a cell of this class with ``hyper`` uses well: the class attribute
        ``threads``; a composite the most of its parts (which are fitted one after another)."""
        return int(cls.threads)

    def get_params(self):
        """The constructor's keyword arguments, as stored."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def fit(self, train, val, context=None):  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, flux, sigma):  # pragma: no cover - interface
        raise NotImplementedError

    def predict_all(self, flux, sigma, truth=None):
        """Every prediction the model offers, by name: ``{"": predict(flux, sigma)}``, with the per-star
        std under ``"std"`` (:data:`pfslogg.uncertainty.STD`) for a class that ``gives_std``; composites
        add alternatives (arrays of log g) and integer columns named ``bin_*`` (not scored)."""
        if self.gives_std:
            from ..uncertainty import STD

            mean, std = self.predict(flux, sigma, return_std=True)
            return {"": mean, STD: std}
        return {"": self.predict(flux, sigma)}

    def fitted(self):
        """What fit chose, for the results JSON (JSON values)."""
        self._check_fitted()
        return {}

    @property
    def is_fitted(self):
        return all(hasattr(self, a) for a in (*self._state_json, *self._state_arrays))

    def _check_fitted(self):
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    # -- native files (LightGBM model text, torch state dicts): overridden by classes that have them
    def _save_native(self, folder):
        return []

    def _load_native(self, folder):
        pass

    # -- model folders ------------------------------------------------------------------------
    def save(self, folder, provenance=None):
        """Write the model folder ``folder`` atomically (a temporary folder renamed at the end)."""
        from ..provenance import sha256_file

        self._check_fitted()
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.tmp")  # deterministic: a rerun replaces a killed run's
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            files = []
            if self._state_arrays:
                np.savez(tmp / WEIGHTS, **{a: np.asarray(getattr(self, a)) for a in self._state_arrays})
                files.append(WEIGHTS)
            files += self._save_native(tmp)
            manifest = {
                "format": FORMAT, "class": self.class_id, "label": self.label,
                "hyper": jsonable(self.get_params()),
                "state": {a: jsonable(getattr(self, a)) for a in self._state_json},
                "files": {f: sha256_file(tmp / f) for f in files},
                "provenance": provenance,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


class Composite(Estimator):
    """A model made of models. Subclasses build their parts with :func:`make_part` inside ``fit``
    and keep them in ``parts_`` (name -> fitted model; a name may hold ``/`` for a nested folder,
    e.g. ``experts/3``); ``save`` writes each part as a model folder under the composite's, and
    ``load`` rebuilds them (every sha256 checked, part by part). ``part_names_`` is learned state."""

    PARTS = {}   # hyper-parameter -> kinds of the part(s) it specifies (checked with the config)

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        for key, kinds in cls.PARTS.items():
            for sub, spec in cls.part_specs(hyper, key):
                class_id, part_hyper = part_spec(spec, f"{where}.{sub}")
                part = registered(class_id, f"{where}.{sub}.class", kinds)
                part.check_hyper(part_hyper, f"{where}.{sub}.hyper")

    @classmethod
    def part_specs(cls, hyper, key):
        """``[(key path, spec)]`` of the part(s) hyper-parameter ``key`` specifies: one spec, or a
        mapping of named specs (``compare_gates``)."""
        value = hyper.get(key, cls.hyper_default(key))
        if value is None:
            return []
        if isinstance(value, dict) and "class" not in value:
            return [(f"{key}.{name}", spec) for name, spec in value.items()]
        return [(key, value)]

    @classmethod
    def hyper_default(cls, key):
        p = inspect.signature(cls.__init__).parameters.get(key)
        return None if p is None or p.default is inspect.Parameter.empty else p.default

    @classmethod
    def part_classes(cls, hyper):
        """(registered class, hyper-parameters) of every part ``hyper`` names (unknown classes left to
        ``check_hyper``): what the class-level questions of a composite ask its parts."""
        for key in cls.PARTS:
            for _, spec in cls.part_specs(hyper, key):
                class_id, part_hyper = part_spec(spec, key)
                if class_id in REGISTRY:
                    yield REGISTRY[class_id], part_hyper

    @classmethod
    def wants_accelerator(cls, hyper):
        return bool(cls.accelerator) or any(c.wants_accelerator(h) for c, h in cls.part_classes(hyper))

    @classmethod
    def cpu_threads(cls, hyper):
        return max([int(cls.threads)] + [c.cpu_threads(h) for c, h in cls.part_classes(hyper)])

    @property
    def is_fitted(self):
        return super().is_fitted and hasattr(self, "parts_")

    def _save_native(self, folder):
        files = super()._save_native(folder)
        for name, part in self.parts_.items():
            part.save(folder / name)
            files.append(f"{name}/{MANIFEST}")
        return files

    def _load_native(self, folder):
        super()._load_native(folder)
        self.parts_ = {name: load(folder / name) for name in self.part_names_}


def load(folder):
    """Rebuild a fitted estimator from its model folder; InputError naming what is wrong."""
    from ..provenance import sha256_file

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: model folder not found")
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: not a pfslogg model folder (no {MANIFEST})")
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable model manifest ({type(e).__name__}: {e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("hyper"), dict) \
            or not isinstance(m.get("state"), dict) or not isinstance(m.get("files"), dict):
        raise InputError(f"{path}: not a pfslogg model manifest of format {FORMAT}")
    cls = REGISTRY.get(m.get("class"))
    if cls is None:
        raise InputError(f"{path}: unknown estimator class {m.get('class')!r}, expected one of {sorted(REGISTRY)}")
    for f, sha in m["files"].items():
        p = folder / f
        if not p.is_file():
            raise InputError(f"{p}: missing (a truncated model folder?)")
        if sha256_file(p) != sha:
            raise InputError(f"{p}: does not match the sha256 recorded in {path} (changed or truncated)")
    try:
        est = cls(**m["hyper"])
    except TypeError as e:
        raise InputError(f"{path}: hyper-parameters do not fit class '{cls.class_id}' ({e})") from None
    for a, default in cls._state_defaults.items():   # learned state a class gained after the folder was written
        m["state"].setdefault(a, default)
    missing = [a for a in cls._state_json if a not in m["state"]]
    if missing:
        raise InputError(f"{path}: learned state lacks {missing}")
    for a in cls._state_json:
        setattr(est, a, m["state"][a])
    if cls._state_arrays:
        try:
            with np.load(folder / WEIGHTS, allow_pickle=False) as z:
                for a in cls._state_arrays:
                    setattr(est, a, z[a])
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{folder / WEIGHTS}: unreadable weights ({type(e).__name__}: {e})") from None
    est._load_native(folder)
    return est


def jsonable(x):
    """``x`` as JSON values: NumPy scalars and arrays as Python ones, dict keys as strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x
