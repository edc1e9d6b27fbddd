"""Estimators of log g behind one interface (DESIGN.md section 4); see :mod:`.base`.

Importing this package registers every class: ``REGISTRY`` maps a class id (the ``class`` of a
variant in config ``estimators:``, or of a composite's part) to its class -- estimators of log g
(linear, boosting, template, the interpolated ML fit of :mod:`.mlfit`, neural, the composites of
:mod:`.moe`, :mod:`.ensemble` and :mod:`.conformal`) and the gates of :mod:`.gates` (``kind`` tells them apart).
"""

from .base import REGISTRY, Estimator, FitContext, load, make_estimator, register
from . import boosting, conformal, denoiser, diffusion, ensemble, gates, linear, mlfit, moe, neural, pipeline, probe, smooth, template  # noqa: F401  (register the classes)

__all__ = ["REGISTRY", "Estimator", "FitContext", "load", "make_estimator", "register"]
