"""Figures. Plotting reads results JSONs only, so restyling never reruns a computation.

``FIGURES[name](inputs, out, params)`` draws figure ``name`` from the results files ``inputs``
(recognised by their "kind") and writes it to ``out`` with reproducible bytes; ``render`` returns
the figure unsaved. Modules: common (style, registry, I/O), snr (r2_vs_snr, ceiling_calibration),
experiment (r2_vs_size, r2_vs_noise, decision), hyper (ridge_alpha, lightgbm_sensitivity,
pca_components), ceilings (crlb_cell_position, crlb_step_size, ceilings_vs_snr, crlb_distribution,
efficiency), attention (attention_maps), track_d (denoising_strength, denoising_snr, denoising_classes,
denoising_examples, downstream), track_e (linearity, error_channel).
"""

from . import attention, ceilings, experiment, hyper, snr, track_a, track_b, track_d, track_e  # noqa: F401  (register their figures)
from .common import FIGURES, load_results, render, save

__all__ = ["FIGURES", "load_results", "render", "save"]
