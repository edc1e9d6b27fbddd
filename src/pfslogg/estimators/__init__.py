"""Estimators of log g behind one interface (DESIGN.md section 4); see :mod:`.base`.

Importing this package registers every estimator class: ``REGISTRY`` maps a class id (the
``class`` of a variant in config ``estimators:``) to its class. Neural estimators join later in
``nn/`` through the same ``@register``.
"""

from .base import REGISTRY, Estimator, FitContext, load, make_estimator, register
from . import boosting, linear, neural, template  # noqa: F401  (register the classes)

__all__ = ["REGISTRY", "Estimator", "FitContext", "load", "make_estimator", "register"]
