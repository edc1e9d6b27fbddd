"""What every track shares: the data-set table and the results that describe the data."""

from .. import paths as P
from .registry import table


def ceiling_cells(cfg, experiment):
    """The results of every cell of ``experiments.<experiment>`` at the default noise level and its largest
    size, every seed: what a track's check against the Bayes ceiling of the same test spectra reads
    (rules check_error_channel_ceiling, check_denoised_ceiling)."""
    exp, tag = cfg["experiments"][experiment], P.noise_tag(cfg["noise"]["noise_level"])
    size = max(int(n) for n in exp["sizes"])
    return [P.CELL.format(estimator=e, noise=t, size=n, seed=s)
            for e, t, n, s in P.experiment_cells(exp) if n == size and t == tag]


def ceiling_params(cfg, experiment):
    """The parameter block of such a check (as check_ceiling's): the default noise level, the size."""
    exp = cfg["experiments"][experiment]
    return {"noise_level": float(cfg["noise"]["noise_level"]), "size": max(int(n) for n in exp["sizes"])}


def data_results(cfg):
    """The data sets' and the grid's summaries: every document describes its data."""
    return [P.DATASET_SUMMARY.format(split=s) for s in P.SPLITS] + [P.GRID_SUMMARY]


table("datasets", None, lambda cfg: [P.DATASET_SUMMARY.format(split=s) for s in P.SPLITS],
      "size, magnitudes and SNR distribution of the training, validation and test sets.")
