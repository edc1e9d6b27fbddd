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
"""

import contextlib
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


def register(cls):
    """Class decorator: make ``cls`` constructible by its ``class_id``."""
    REGISTRY[cls.class_id] = cls
    return cls


def make_estimator(class_id, hyper=None, random_state=0, where="estimators"):
    """An unfitted estimator of class ``class_id`` with ``hyper`` (dict); InputError naming ``where``."""
    if class_id not in REGISTRY:
        raise InputError(f"{where}: unknown estimator class '{class_id}', expected one of {sorted(REGISTRY)}")
    cls = REGISTRY[class_id]
    hyper = dict(hyper or {})
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "random_state"}
    unknown = sorted(set(hyper) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown hyper-parameter(s) {unknown} of class '{class_id}', "
                         f"expected some of {sorted(allowed)}")
    return cls(**hyper, random_state=random_state)


@dataclass
class FitContext:
    """What a fit may use besides the training and validation views."""

    grid: str = None          # instrument grid file (physics-based estimators)
    ranges: dict = field(default_factory=dict)   # prior ranges of the parameters
    threads: int = 1          # CPU threads the estimator may use
    checkpoint_dir: str = None   # where an iterative fit keeps its checkpoint (resume after a kill)
    device: str = None        # torch device for neural estimators (None: cuda when present, else cpu)


class Estimator:
    """Base class: hyper-parameters, fitted check, model folders."""

    class_id = None
    label = None
    _state_json = ()      # names of the JSON-valued learned attributes (end in "_")
    _state_arrays = ()    # names of the array-valued learned attributes

    def get_params(self):
        """The constructor's keyword arguments, as stored."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def fit(self, train, val, context=None):  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, flux, sigma):  # pragma: no cover - interface
        raise NotImplementedError

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
                "hyper": _jsonable(self.get_params()),
                "state": {a: _jsonable(getattr(self, a)) for a in self._state_json},
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


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


@contextlib.contextmanager
def numpy_threads(n):
    """Limit BLAS threads inside the block (threadpoolctl when available)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=max(1, int(n))):
        yield


def r2_score(y, yhat):
    """R^2 of predictions against their own targets' variance (validation-set model selection)."""
    y = np.asarray(y, float)
    return float(1.0 - np.mean((np.asarray(yhat, float) - y) ** 2) / np.var(y))
