"""Track C: the Bayes (posterior-mean) ceiling and the Fisher / Cramer-Rao bounds (for unbiased estimators)."""

from .. import paths as P
from .data import data_results
from .registry import figure, table, track

UNCERTAINTIES = "results/track_c/uncertainties.json"   # rule check_uncertainties
COVERAGE = "results/track_c/coverage.json"             # rule check_coverage
RESULTS = (P.BAYES, P.FISHER, P.CALIBRATION, P.CRLB_VALIDATION, P.SNR_SWEEP, P.EFFICIENCY, UNCERTAINTIES, COVERAGE)


def uncertainty_cells(cfg):
    """The cells whose per-star std rule check_uncertainties checks: each of ``uncertainty.estimators`` at
    the default noise level, ``uncertainty.size`` spectra, seed 0."""
    u = cfg["uncertainty"]
    tag = P.noise_tag(cfg["noise"]["noise_level"])
    return [(e, tag, int(u["size"]), 0) for e in u["estimators"]]


def uncertainty_inputs(cfg):
    """Inputs of rule check_uncertainties: the Bayes ceiling's per-spectrum table, then each cell's predictions."""
    return [P.BAYES_PER_SPECTRUM] + [P.CELL_PREDICTIONS.format(estimator=e, noise=t, size=n, seed=s)
                                     for e, t, n, s in uncertainty_cells(cfg)]


def uncertainty_params(cfg):
    from ..uncertainty import rescaled_variant, variant_label

    est = cfg["estimators"]
    return {"estimators": list(cfg["uncertainty"]["estimators"]), "size": int(cfg["uncertainty"]["size"]),
            "labels": {e: variant_label(est, e) for e in cfg["uncertainty"]["estimators"] if e in est},
            "rescales": {e: u for e in cfg["uncertainty"]["estimators"] if (u := rescaled_variant(est, e))},
            "per_snr_bin": [e for e in cfg["uncertainty"]["estimators"]
                            if rescaled_variant(est, e) and (est[e].get("hyper") or {}).get("snr_bins")],
            "params": cfg["params"], "noise_level": float(cfg["noise"]["noise_level"]),
            "snr_bins": [float(e) for e in cfg["evaluation"]["snr_bins"]]}


def coverage_models(cfg):
    """Model folders rule check_coverage reads: those of the cells that rule check_uncertainties checks."""
    return [P.MODEL.format(estimator=e, noise=t, size=n, seed=s) for e, t, n, s in uncertainty_cells(cfg)]


def coverage_params(cfg):
    """Parameter block of rule check_coverage: check_uncertainties' plus the set -- ``uncertainty.coverage.n``
    stars drawn as the test set is (its magnitudes, exposure model, prior) but with seed ``split_seed(cfg,
    "coverage")`` and fixed noise of ``noise_seed(cfg, "coverage")`` -- and ``bayes`` (config ``bayes``) when the
    exact posterior of the same stars is asked for (``uncertainty.coverage.bayes``)."""
    from ..config import noise_seed, split_seed
    from ..data.simview import simulator_settings

    cov = cfg["uncertainty"].get("coverage") or {}
    s = simulator_settings(cfg, "test", seed=split_seed(cfg, "coverage"))
    return {**uncertainty_params(cfg), "sigma": cfg["noise"].get("sigma", "estimated"),
            "set": {"n": int(cov.get("n", 20000)), "seed": s["seed"], "noise_seed": noise_seed(cfg, "coverage"),
                    "noise": s["noise"], "chunk_size": int(s["chunk_size"])},
            "bayes": dict(cfg["bayes"]) if cov.get("bayes", True) else None}


def _check(cfg, where):
    from ..config import check_configured
    from ..errors import InputError
    from ..estimators import REGISTRY

    for e in cfg["uncertainty"]["estimators"]:
        check_configured(cfg, e, "uncertainty.estimators", where)
        cls = REGISTRY[cfg["estimators"][e]["class"]]
        if not cls.provides_std(cfg["estimators"][e].get("hyper") or {}):
            raise InputError(f"{where}: uncertainty.estimators: '{e}' (class '{cls.class_id}') gives no per-star "
                             "standard deviation (predict(flux, sigma, return_std=True))")

track("c", "ceilings", rules=("compute_fisher_ceiling", "compute_bayes_ceiling", "calibrate_ceiling",
                              "compute_crlb_validation", "compute_snr_sweep", "check_ceiling", "check_uncertainties",
                              "check_coverage"),
      results=lambda cfg: list(RESULTS), text=lambda cfg: data_results(cfg) + list(RESULTS),
      params={"check_uncertainties": uncertainty_params, "check_coverage": coverage_params}, cells=uncertainty_cells,
      check=_check)

figure("ceiling_calibration", "c", lambda cfg: [P.CALIBRATION],
       "median Cramer-Rao R2_max (unbiased estimators) of the embedded model against the original study's values.")
figure("crlb_cell_position", "c", lambda cfg: [P.CRLB_VALIDATION],
       "the CRLB along log g through grid cells for the cubic and the multilinear interpolant, and "
       "maximum-likelihood variances against it.")
figure("crlb_step_size", "c", lambda cfg: [P.CRLB_VALIDATION],
       "finite-difference CRLB over the exact one against the step (fraction of the grid step).")
figure("ceilings_vs_snr", "c", lambda cfg: [P.SNR_SWEEP],
       "the Bayes ceiling, the 3D/4D Cramer-Rao bounds (median, 10-90 %; unbiased estimators only), sigma_min "
       "and the Schur decay over a sweep of magnitudes.")
figure("crlb_distribution", "c", lambda cfg: [P.FISHER, P.BAYES],
       "distribution of the per-spectrum sigma_min = sqrt(CRLB) of the test set, per SNR bin.")
figure("efficiency", "c", lambda cfg: [P.EFFICIENCY],
       "model efficiency R2_model / R2_Bayes per SNR bin and estimator, and R2_model over the R2 of the mean "
       "Cramer-Rao bound.")
table("ceiling", "c", lambda cfg: [P.FISHER],
      "the Cramer-Rao bound (unbiased estimators) per SNR bin of the test set.")
table("calibration", "c", lambda cfg: [P.CALIBRATION],
      "the Cramer-Rao bound at the original study's SNR points, beside its values.")
table("crlb_validation", "c", lambda cfg: [P.CRLB_VALIDATION],
      "maximum-likelihood variance over the CRLB at cell centres and next to log g nodes.")
table("snr_sweep", "c", lambda cfg: [P.SNR_SWEEP],
      "the Bayes ceiling and the Cramer-Rao bound over the magnitude sweep: SNR, R2_max (3D, 4D), mean-CRLB R2, "
      "R2_Bayes, Schur decay.")
table("efficiency_by_snr", "c", lambda cfg: [P.EFFICIENCY],
      "efficiency of each estimator against the Bayes ceiling per SNR bin.")
figure("uncertainty_calibration", "c", lambda cfg: [UNCERTAINTIES],
       "per-star sigma(log g) of the estimators that give one against the exact posterior: coverage of the 68 % "
       "interval and the median ratio of sigma to the posterior sd per SNR bin.")
table("uncertainties", "c", lambda cfg: [UNCERTAINTIES, COVERAGE],
      "per-star sigma(log g): accuracy of the mean and calibration of sigma against the exact posterior, per estimator "
      "(and its coverage per SNR bin on the many stars of the coverage check).")
figure("coverage_check", "c", lambda cfg: [COVERAGE],
       "coverage of every per-star 68 % interval per SNR bin on a large set of stars simulated at the test's "
       "magnitudes: each model's own sigma and its conformal rescalings, beside the exact posterior's.")
