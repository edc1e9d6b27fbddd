# Track C: the Bayes (posterior-mean) ceiling and the Fisher / Cramer-Rao bounds.

from pfslogg.tracks import track_c as TRACK_C


rule compute_fisher_ceiling:
    """Marginal CRLB on log g of every test spectrum (exact Jacobian of the interpolated model)."""
    input:
        grid=W.INSTRUMENT_GRID,
        test=get_dataset("test"),
    output:
        metrics=W.FISHER,
        per_spectrum=W.FISHER_PER_SPECTRUM,
    params:
        p=get_params("compute_fisher_ceiling"),
    log:
        "logs/compute_fisher_ceiling.log",
    benchmark:
        "benchmarks/compute_fisher_ceiling.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg compute-fisher-ceiling --params {params.p:q} --threads {threads} --grid {input.grid} "
        "--test {input.test} --out {output.metrics} --per-spectrum {output.per_spectrum} > {log} 2>&1"


rule compute_bayes_ceiling:
    """Bayes ceiling: posterior mean and sd of log g of every test spectrum over a fine parameter grid."""
    input:
        grid=W.INSTRUMENT_GRID,
        test=get_dataset("test"),
    output:
        metrics=W.BAYES,
        per_spectrum=W.BAYES_PER_SPECTRUM,
    params:
        p=get_params("compute_bayes_ceiling"),
    log:
        "logs/compute_bayes_ceiling.log",
    benchmark:
        "benchmarks/compute_bayes_ceiling.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg compute-bayes-ceiling --params {params.p:q} --threads {threads} --grid {input.grid} "
        "--test {input.test} --out {output.metrics} --per-spectrum {output.per_spectrum} > {log} 2>&1"


use rule compute_bayes_ceiling as compute_bayes_ceiling_at_noise with:
    output:
        metrics=W.BAYES_AT,
        per_spectrum=W.BAYES_AT_PER_SPECTRUM,
    params:
        p=get_params("compute_bayes_ceiling_at_noise"),
    log:
        "logs/compute_bayes_ceiling/nl{noise}.log",
    benchmark:
        "benchmarks/compute_bayes_ceiling/nl{noise}.tsv"


rule calibrate_ceiling:
    """Median Fisher R2_max at the original study's SNR points (information-content calibration)."""
    input:
        grid=W.INSTRUMENT_GRID,
    output:
        W.CALIBRATION,
    params:
        p=get_params("calibrate_ceiling"),
    log:
        "logs/calibrate_ceiling.log",
    benchmark:
        "benchmarks/calibrate_ceiling.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg calibrate-ceiling --params {params.p:q} --threads {threads} "
        "--grid {input.grid} --out {output} > {log} 2>&1"


rule compute_crlb_validation:
    """Checks of the CRLB: node jumps, finite-difference steps, cell profile, ML fits against the bound."""
    input:
        grid=W.INSTRUMENT_GRID,
    output:
        W.CRLB_VALIDATION,
    params:
        p=get_params("compute_crlb_validation"),
    log:
        "logs/compute_crlb_validation.log",
    benchmark:
        "benchmarks/compute_crlb_validation.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg compute-crlb-validation --params {params.p:q} --threads {threads} "
        "--grid {input.grid} --out {output} > {log} 2>&1"


rule compute_snr_sweep:
    """Ceilings over SNR: 3D/4D CRLB, Schur decay and Bayes ceiling on a parameter grid per magnitude."""
    input:
        grid=W.INSTRUMENT_GRID,
    output:
        W.SNR_SWEEP,
    params:
        p=get_params("compute_snr_sweep"),
    log:
        "logs/compute_snr_sweep.log",
    benchmark:
        "benchmarks/compute_snr_sweep.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg compute-snr-sweep --params {params.p:q} --threads {threads} "
        "--grid {input.grid} --out {output} > {log} 2>&1"


rule check_ceiling:
    """Efficiency of every model against the Bayes ceiling and the mean Cramer-Rao bound; fails if a model beats the
    Bayes ceiling beyond the CIs."""
    input:
        bayes=W.BAYES,
        fisher=W.FISHER,
        cells=W.efficiency_cells(config),
    output:
        W.EFFICIENCY,
    params:
        p=get_params("check_ceiling"),
    log:
        "logs/check_ceiling.log",
    conda:
        ENV
    shell:
        "python -m pfslogg check-ceiling --params {params.p:q} --bayes {input.bayes} --fisher {input.fisher} "
        "--inputs {input.cells} --out {output} > {log} 2>&1"


rule check_uncertainties:
    """Per-star sigma(log g) of the estimators that give one (config uncertainty) against the exact posterior sd
    of the same test spectra: coverage, PIT and the ratio per SNR bin."""
    input:
        TRACK_C.uncertainty_inputs(config),   # the Bayes ceiling's per-spectrum table, then each cell's predictions
    output:
        TRACK_C.UNCERTAINTIES,
    params:
        p=get_params("check_uncertainties"),
    log:
        "logs/check_uncertainties.log",
    conda:
        ENV
    shell:
        "python -m pfslogg check-uncertainties --params {params.p:q} --inputs {input} --out {output} > {log} 2>&1"


rule check_coverage:
    """Coverage of the same cells' per-star intervals on a large set of stars simulated at the test's magnitudes
    (enough per SNR bin that chance moves a calibrated 68 % coverage by less than the 3-point target), beside the
    exact posterior's interval of the same stars."""
    input:
        grid=W.INSTRUMENT_GRID,   # the stars are simulated from it
        models=TRACK_C.coverage_models(config),   # each cell's model folder, in uncertainty.estimators' order
    output:
        TRACK_C.COVERAGE,
    params:
        p=get_params("check_coverage"),
    log:
        "logs/check_coverage.log",
    benchmark:
        "benchmarks/check_coverage.tsv"
    priority: 1   # a 4-minute job that nothing else waits on but the paper: start it when its cells are done, not
                  # last (it was the whole run's tail, 2026-12-05)
    threads: 1   # profiles/default: the ML fits and the networks' predictions gain little from a second thread
    conda:
        ENV
    shell:
        "python -m pfslogg check-coverage --params {params.p:q} --threads {threads} --grid {input.grid} "
        "--inputs {input.models} --out {output} > {log} 2>&1"


rule track_c:
    """Track C: the Bayes ceiling and the Fisher / Cramer-Rao bound (results, figures, tables, paper/build/track_c.pdf)."""
    input:
        W.track_outputs(config, "c"),
