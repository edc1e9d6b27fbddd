"""The main paper's discussion: sentences that span tracks, each generated from one track's results
(:mod:`pfslogg.paper.tables.discussion`); shared (track None), so that they are built only for a
document that reads them (the main paper's sections/discussion.tex)."""

from .. import paths as P
from .registry import table

table("discussion_ceilings", None, lambda cfg: [P.EFFICIENCY],
      "the discussion: the best estimator against the Bayes ceiling, overall and per SNR bin, and the mean "
      "Cramer-Rao bound (unbiased estimators) beside it.")
table("discussion_moe", None, lambda cfg: [P.MOE],
      "the discussion: what the mixture of experts achieved, per noise level, with words from the intervals.")
