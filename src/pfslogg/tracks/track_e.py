"""Track E: linear shortcuts, latent probes and the error channel -- Ridge across noise levels and the MLP
with a linear shortcut (w^T x + g(x)) against the plain MLP at every noise level (experiment ``linearity``);
Ridge on the frozen, pooled latents of the ViT and the CNN against Ridge on the raw flux (experiment
``probing``: how much of log g the latents hold, and how much wavelength locality matters); Ridge that
reads the sigma given with the flux, under the stored sigma (computed from the clean flux: the leak) and
the estimated one, beside the Bayes ceiling of the same test spectra (experiment ``error_channel``, rule
check_error_channel_ceiling: the ceiling check on its cells, the stored-sigma ones reported apart)."""

from .. import paths as P
from ..errors import InputError
from .data import ceiling_cells as experiment_ceiling_cells
from .data import ceiling_params as experiment_ceiling_params
from .data import data_results
from .registry import figure, table, track

LINEARITY, ERROR_CHANNEL, PROBING = "linearity", "error_channel", "probing"
EXPERIMENTS = (LINEARITY, ERROR_CHANNEL, PROBING)
CEILING = "results/track_e/error_channel_ceiling.json"   # rule check_error_channel_ceiling


def _aggregates(cfg):
    return [P.aggregate_path(cfg, e) for e in EXPERIMENTS]


def ceiling_cells(cfg):
    """The results of every cell of experiments.error_channel (its one noise level, the default, the largest
    size, every seed): what rule check_error_channel_ceiling compares with the Bayes ceiling."""
    return experiment_ceiling_cells(cfg, ERROR_CHANNEL)


def ceiling_params(cfg):
    """The parameter block of rule check_error_channel_ceiling (as check_ceiling's)."""
    return experiment_ceiling_params(cfg, ERROR_CHANNEL)


def _check(cfg, where):
    exp, default = cfg["experiments"][ERROR_CHANNEL], float(cfg["noise"]["noise_level"])
    if [float(v) for v in exp["noise_levels"]] != [default]:
        raise InputError(f"{where}: experiments.{ERROR_CHANNEL}.noise_levels: expected [{default:g}] (noise.noise_level: "
                         f"the Bayes ceiling of the same test spectra), got {exp['noise_levels']}")
    if not P.compare_pairs(cfg["experiments"][LINEARITY]):
        raise InputError(f"{where}: experiments.{LINEARITY}.compare: required: the MLP with a shortcut -> the plain MLP")


track("e", "linear shortcuts, latent probes and the error channel", experiments=EXPERIMENTS, rules=("check_error_channel_ceiling",),
      params={"check_error_channel_ceiling": ceiling_params},
      results=lambda cfg: _aggregates(cfg) + [CEILING],
      text=lambda cfg: data_results(cfg) + [P.BAYES, P.FISHER] + _aggregates(cfg) + [CEILING],
      check=_check)

figure("linearity", "e", lambda cfg: [P.aggregate_path(cfg, LINEARITY)],
       "Track E: R2 against noise level of Ridge, the MLP and the MLP with a linear shortcut (intervals over seeds), "
       "and the shortcut's paired difference to the MLP per noise level with its interval and verdict.")
figure("error_channel", "e", lambda cfg: [CEILING],
       "Track E: R2 of Ridge on the flux, on sigma alone and on [flux, sigma], under the stored and the estimated "
       "sigma, against the Bayes ceiling of the same test spectra, overall and per SNR bin.")
table("linearity", "e", lambda cfg: [P.aggregate_path(cfg, LINEARITY)],
      "Track E: R2 of Ridge, the MLP and the MLP with a shortcut per noise level, and the shortcut's paired "
      "difference to the MLP with its interval and verdict.")
table("linearity_findings", "e", lambda cfg: [P.aggregate_path(cfg, LINEARITY)],
      "Track E: the MLP with a shortcut against the plain MLP at every noise level, as sentences whose verdict "
      "words come from the paired intervals.")
table("error_channel", "e", lambda cfg: [P.aggregate_path(cfg, ERROR_CHANNEL), CEILING],
      "Track E: R2 of the error-channel variants against Ridge on the flux and against the Bayes ceiling.")
table("probing", "e", lambda cfg: [P.aggregate_path(cfg, PROBING)],
      "Track E: R2 of Ridge on the pooled latents of the frozen ViT and CNN (mean, wavelength segments, attention) "
      "against Ridge on the raw flux, with paired differences and verdicts.")
figure("probing", "e", lambda cfg: [P.aggregate_path(cfg, PROBING)],
       "Track E: R2 of each latent probe (encoder, pooling) against Ridge on the raw flux, with intervals over seeds "
       "and the paired difference's verdict.")
table("probing_findings", "e", lambda cfg: [P.aggregate_path(cfg, PROBING)],
      "Track E: each latent probe against Ridge on the raw flux, as sentences whose verdict words come from the "
      "paired intervals.")
