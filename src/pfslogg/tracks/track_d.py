"""Track D: denoising -- transforms (the residual denoiser, Gaussian smoothing) trained per noise level and
scored against the noiseless test spectra by wMAE and MSE (their cells: ordinary cells of kind transform,
config ``denoising``; rule summarize_denoising gathers them and draws example spectra), and log g from
denoised spectra: each Track F estimator and the MLP trained on the denoiser's output against the same
estimator on the raw spectra and the Bayes ceiling of the raw spectra (experiment ``downstream``; rule
check_denoised_ceiling: no model on denoised spectra may beat the raw ceiling)."""

from .. import paths as P
from ..errors import InputError
from .data import ceiling_cells as experiment_ceiling_cells
from .data import ceiling_params as experiment_ceiling_params
from .data import data_results
from .registry import figure, table, track

DOWNSTREAM = "downstream"
EXPERIMENTS = (DOWNSTREAM,)
SUMMARY = "results/track_d/denoising.json"                 # rule summarize_denoising
EXAMPLES = "results/track_d/examples/{estimator}.npz"      # its example spectra, one file per transform
CEILING = "results/track_d/downstream_ceiling.json"        # rule check_denoised_ceiling
POSTERIOR = "results/track_d/posterior_samples.json"       # rule sample_posterior


def transform_cells(cfg):
    """Every transform cell of config ``denoising``: (variant, noise tag, size, seed index)."""
    d = cfg["denoising"]
    return [(t, P.noise_tag(nl), int(d["size"]), s)
            for t in d["transforms"] for nl in d["noise_levels"] for s in range(int(d["seeds"]))]


def example_paths(cfg):
    return [EXAMPLES.format(estimator=t) for t in cfg["denoising"]["transforms"]]


def _default_tag(cfg):
    return P.noise_tag(cfg["noise"]["noise_level"])


def summary_inputs(cfg):
    """Inputs of rule summarize_denoising: every transform cell's results, then the model folder of each
    transform at the default noise level (seed 0) and the test set, for the example spectra."""
    cells = [P.CELL.format(estimator=e, noise=t, size=n, seed=s) for e, t, n, s in transform_cells(cfg)]
    size = int(cfg["denoising"]["size"])
    models = [P.MODEL.format(estimator=e, noise=_default_tag(cfg), size=size, seed=0)
              for e in cfg["denoising"]["transforms"]]
    return cells + models + [P.dataset_path(cfg, "test")]


def summary_params(cfg):
    """The parameter block of rule summarize_denoising."""
    from ..config import noise_seed

    d = cfg["denoising"]
    return {"transforms": list(d["transforms"]), "noise_levels": [float(v) for v in d["noise_levels"]],
            "size": int(d["size"]), "seeds": int(d["seeds"]), "examples": int(d["examples"]),
            "default_noise_level": float(cfg["noise"]["noise_level"]), "sigma": cfg["noise"]["sigma"],
            "test_noise_seed": noise_seed(cfg, "test")}


def posterior_transform(cfg):
    """The generative transform whose draws rule sample_posterior compares with the exact posterior of log g
    (config ``denoising.posterior.transform``)."""
    return cfg["denoising"]["posterior"]["transform"]


def posterior_inputs(cfg):
    """Inputs of rule sample_posterior: the transform's model folder at the default noise level (seed 0), the
    test set, the instrument grid (the log g fit of each draw) and the Bayes ceiling's per-spectrum table."""
    t = posterior_transform(cfg)
    return {"model": P.MODEL.format(estimator=t, noise=_default_tag(cfg), size=int(cfg["denoising"]["size"]), seed=0),
            "test": P.dataset_path(cfg, "test"), "grid": P.INSTRUMENT_GRID, "bayes": P.BAYES_PER_SPECTRUM}


def posterior_params(cfg):
    """The parameter block of rule sample_posterior."""
    from ..config import noise_seed

    post = cfg["denoising"]["posterior"]
    return {"transform": post["transform"], "stars": int(post["stars"]), "samples": int(post["samples"]),
            "seed": int(post["seed"]), "noise_level": float(cfg["noise"]["noise_level"]), "sigma": cfg["noise"]["sigma"],
            "test_noise_seed": noise_seed(cfg, "test"), "snr_bins": [float(e) for e in cfg["evaluation"]["snr_bins"]],
            "params": cfg["params"]}


def ceiling_cells(cfg):
    """The downstream cells at the default noise level and the largest size, compared by rule
    check_denoised_ceiling with the Bayes ceiling of the raw test spectra."""
    return experiment_ceiling_cells(cfg, DOWNSTREAM)


def ceiling_params(cfg):
    return experiment_ceiling_params(cfg, DOWNSTREAM)


def _check(cfg, where):
    from ..config import check_configured
    from ..estimators import REGISTRY

    d = cfg["denoising"]
    for t in d["transforms"]:
        check_configured(cfg, t, "denoising.transforms", where)
        if REGISTRY[cfg["estimators"][t]["class"]].kind != "transform":
            raise InputError(f"{where}: denoising.transforms: '{t}' (class '{cfg['estimators'][t]['class']}') is not "
                             "a transform (a denoiser: spectrum in, spectrum out)")
    if len(set(d["transforms"])) != len(d["transforms"]):
        raise InputError(f"{where}: denoising.transforms: expected distinct variants, got {d['transforms']}")
    default = float(cfg["noise"]["noise_level"])
    if default not in [float(v) for v in d["noise_levels"]]:
        raise InputError(f"{where}: denoising.noise_levels: expected noise.noise_level {default:g} among them (the "
                         f"example spectra and the downstream models are at it), got {d['noise_levels']}")
    exp = cfg["experiments"][DOWNSTREAM]
    if default not in [float(v) for v in exp["noise_levels"]]:
        raise InputError(f"{where}: experiments.{DOWNSTREAM}.noise_levels: expected noise.noise_level {default:g} "
                         f"among them (the Bayes ceiling of the same test spectra), got {exp['noise_levels']}")
    t = posterior_transform(cfg)
    if t not in d["transforms"]:
        raise InputError(f"{where}: denoising.posterior.transform: '{t}' is not among denoising.transforms "
                         f"{d['transforms']} (its model at the default noise level is the one sampled)")
    if not hasattr(REGISTRY[cfg["estimators"][t]["class"]], "sample"):
        raise InputError(f"{where}: denoising.posterior.transform: '{t}' (class '{cfg['estimators'][t]['class']}') "
                         "draws no samples (sample(flux, sigma, n, seed)): expected a generative denoiser "
                         "(class diffusion)")
    if not P.compare_pairs(exp):
        raise InputError(f"{where}: experiments.{DOWNSTREAM}.compare: required: each estimator on denoised spectra "
                         "-> the same estimator on the raw spectra")


def _aggregates(cfg):
    return [P.aggregate_path(cfg, e) for e in EXPERIMENTS]


track("d", "denoising", experiments=EXPERIMENTS,
      rules=("summarize_denoising", "check_denoised_ceiling", "sample_posterior"),
      params={"summarize_denoising": summary_params, "check_denoised_ceiling": ceiling_params,
              "sample_posterior": posterior_params},
      results=lambda cfg: [SUMMARY] + example_paths(cfg) + _aggregates(cfg) + [CEILING, POSTERIOR],
      text=lambda cfg: data_results(cfg) + [P.BAYES, P.FISHER, SUMMARY] + _aggregates(cfg) + [CEILING, POSTERIOR],
      check=_check, cells=transform_cells)


def _summary(cfg):
    return [SUMMARY]


figure("denoising_strength", "d", _summary,
       "Track D: improvement of wMAE and MSE over the noisy input against the strength s, per denoiser, at the "
       "default noise level (paired bootstrap intervals over the test spectra).")
figure("denoising_snr", "d", _summary,
       "Track D: improvement of wMAE over the noisy input per SNR bin, per denoiser and strength.")
figure("denoising_classes", "d", _summary,
       "Track D: improvement of wMAE and MSE per pixel class (line cores, OH sky lines, continuum).")
figure("denoising_examples", "d", lambda cfg: example_paths(cfg)[:1],
       "Track D: example test spectra at low, typical and high SNR -- noisy, noiseless and denoised -- with the "
       "Ca II triplet enlarged.")
figure("downstream", "d", lambda cfg: [CEILING],
       "Track D: R2 of each estimator on raw and on denoised spectra against the Bayes ceiling of the raw spectra, "
       "overall and per SNR bin.")
figure("posterior_samples", "d", lambda cfg: [POSTERIOR],
       "Track D: log g fitted to draws of the diffusion denoiser for three test spectra (low, typical, high SNR) "
       "against the exact posterior of log g of the same noisy spectra; and the ratio of the draws' spread to the "
       "posterior sd for every sampled star against its SNR.")
table("denoising", "d", _summary,
      "Track D: improvement of wMAE and MSE over the noisy input per denoiser, noise level and strength.")
table("downstream", "d", lambda cfg: [P.aggregate_path(cfg, DOWNSTREAM), CEILING],
      "Track D: R2 of each estimator on denoised spectra against the same estimator on raw spectra (paired "
      "difference, interval, verdict) and the Bayes ceiling of the raw spectra.")
table("downstream_findings", "d", lambda cfg: [P.aggregate_path(cfg, DOWNSTREAM)],
      "Track D: each estimator on denoised spectra against the same estimator on raw spectra, as sentences whose "
      "verdict words come from the paired intervals.")
