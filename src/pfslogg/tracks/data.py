"""What every track shares: the data-set table and the results that describe the data."""

from .. import paths as P
from .registry import table


def data_results(cfg):
    """The data sets' and the grid's summaries: every document describes its data."""
    return [P.DATASET_SUMMARY.format(split=s) for s in P.SPLITS] + [P.GRID_SUMMARY]


table("datasets", None, lambda cfg: [P.DATASET_SUMMARY.format(split=s) for s in P.SPLITS],
      "size, magnitudes and SNR distribution of the training, validation and test sets.")
