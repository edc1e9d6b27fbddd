"""Track A: neural estimators -- scaling law, ablations, noise levels, training protocols, attention maps."""

from .. import paths as P
from ..errors import InputError
from .data import data_results
from .registry import figure, table, track

EXPERIMENTS = ("scaling", "ablations", "vit_noise", "protocols", "scaling_sim")


def _aggregates(cfg):
    return [P.aggregate_path(cfg, e) for e in EXPERIMENTS]


def _check(cfg, where):
    att = cfg["attention"]["estimator"]
    if att not in cfg["estimators"] or cfg["estimators"][att]["class"] != "vit":
        raise InputError(f"{where}: attention.estimator: '{att}' must be a configured variant of class 'vit'")


def _scaling_params(cfg):
    ref = cfg["experiments"]["scaling"].get("reference")
    return {"reference": [ref] if ref else [],
            "estimators": [e for e in cfg["experiments"]["scaling"]["estimators"] if e != ref]}


track("a", "neural estimators", experiments=EXPERIMENTS, rules=("compute_attention_maps",),
      results=lambda cfg: _aggregates(cfg) + [P.ATTENTION],
      text=lambda cfg: data_results(cfg) + P.figure_cells(cfg) + [P.BAYES, P.FISHER] + _aggregates(cfg)
      + [P.ATTENTION],
      check=_check)

figure("scaling_law", "a", lambda cfg: [P.aggregate_path(cfg, "scaling")],
       "Track A: R2 against training-set size with the fitted power law and its extrapolation.", _scaling_params)
figure("training_curves", "a", lambda cfg: [P.aggregate_path(cfg, "scaling")],
       "Track A: training and validation loss, validation R2 and learning rate per epoch.")
figure("ablations", "a", lambda cfg: [P.aggregate_path(cfg, "ablations")],
       "Track A: R2 of the ViT and CNN variants (patch, tokenizer, position, loss, kernels) and MLPs.")
figure("attention_maps", "a", lambda cfg: [P.ATTENTION],
       "Track A: ViT attention and gradient saliency against wavelength, with the Fisher information on log g "
       "and the known lines.")
table("scaling", "a", lambda cfg: [P.aggregate_path(cfg, "scaling")],
      "Track A: R2 per training size, the fitted power law and its extrapolations.")
table("ablations", "a", lambda cfg: [P.aggregate_path(cfg, "ablations")],
      "Track A: R2 of the ViT and CNN variants (patch, tokenizer, position, loss, kernels) and MLPs.")
table("figure_models", None, P.figure_cells,
      "the labels of the models drawn in the headline figure, as a series of words for the captions that name them.")
table("protocols", "a", lambda cfg: [P.aggregate_path(cfg, "protocols"), P.BAYES],
      "Track A: R2 per SNR bin of the MLP trained on the file, on simulated stars and on the test's magnitudes, "
      "with the Bayes ceiling and the paired differences.")
table("scaling_sim", "a", lambda cfg: [P.aggregate_path(cfg, "scaling_sim")],
      "Track A: R2 of the MLP trained on simulated stars per training size beyond the file, with its power law.")
