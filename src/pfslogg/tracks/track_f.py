"""Track F: baselines and design principles -- the benchmark grid, the claimed pitfalls, sensitivity;
and the headline figure (figures/r2_vs_snr.pdf), which draws every track's models."""

from .. import paths as P
from .data import data_results
from .registry import figure, table, track

EXPERIMENTS = ("benchmark", "pitfalls", "sensitivity", "physics")


def _aggregates(cfg):
    return [P.aggregate_path(cfg, e) for e in EXPERIMENTS]


def _headline(cfg):
    return P.figure_cells(cfg) + [P.BAYES, P.FISHER]


def _benchmark(cfg):
    return [P.aggregate_path(cfg, "benchmark")]


track("f", "baselines", experiments=EXPERIMENTS, results=_aggregates,
      text=lambda cfg: data_results(cfg) + P.figure_cells(cfg) + [P.BAYES, P.FISHER] + _aggregates(cfg))

figure("r2_vs_snr", "f", _headline,
       "held-out R2 of each estimator (one run: seed 0) per SNR bin (bootstrap bands) under the Bayes ceiling, "
       "with the Cramer-Rao bound for unbiased estimators (median of per-spectrum bounds, 10-90 % band) beside it.",
       lambda cfg: {"estimators": cfg["figure"]["estimators"], "snr_bins": cfg["evaluation"]["snr_bins"]})
figure("r2_vs_size", "f", _benchmark,
       "R2 against training-set size per estimator, one panel per noise level (intervals over seeds).")
figure("r2_vs_noise", "f", _benchmark, "R2 against noise level at the largest training size, per estimator.")
figure("decision", "f", _benchmark, "which estimator for which noise level and training size (best mean R2; ties marked).")
figure("ridge_alpha", "f", _benchmark,
       "Ridge: the alpha chosen on validation against noise level, and validation R2 against alpha.")
figure("pca_components", "f", _benchmark, "PCA + Ridge: validation R2 against the number of principal components.")
figure("lightgbm_sensitivity", "f", lambda cfg: [P.aggregate_path(cfg, "sensitivity")],
       "LightGBM: validation R2 over learning rate x number of leaves.")
table("r2_by_snr", "f", _headline,
      "R2 per estimator (one run: seed 0) and SNR bin at the default noise level, with the Bayes ceiling and the "
      "median Cramer-Rao bound for unbiased estimators.")
table("leaderboard", "f", _benchmark,
      "R2 of every estimator across noise levels and training sizes, with intervals over seeds.")
table("search_edges", "f", lambda cfg: [P.aggregate_path(cfg, e) for e in ("benchmark", "sensitivity")],
      "whether every hyper-parameter chosen on validation lies inside its searched grid, or on its edge and at "
      "which noise levels (the conclusion then depends on the truncated search).")
table("benchmark_models", "f", _benchmark, "the words that name the benchmark grid's estimators (\\BenchmarkModels).")
table("errors", "f", _benchmark,
      "R2, RMSE, MAE, bias and slope of every estimator at the default noise level and the largest size.")
