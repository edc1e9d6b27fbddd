# Track C: Fisher / Cramer-Rao ceilings.


rule compute_fisher_ceiling:
    # marginal CRLB on log g per test spectrum (exact Jacobian of the interpolated model)
    input:
        grid="data/grid/instrument.h5",
        test=get_dataset("test"),
    output:
        metrics="results/track_c/fisher.json",
        per_spectrum="results/track_c/fisher_per_spectrum.csv",
    params:
        p=get_fisher_params,
    log:
        "logs/compute_fisher_ceiling.log",
    shell:
        "python -m pfslogg fisher --rule {rule} --params {params.p:q} --grid {input.grid} "
        "--test {input.test} --out {output.metrics} --per-spectrum {output.per_spectrum} > {log} 2>&1"


rule calibrate_ceiling:
    # median R2_max at the original study's SNR points (information-content calibration)
    input:
        grid="data/grid/instrument.h5",
    output:
        "results/track_c/ceiling_calibration.json",
    params:
        p=get_calibration_params,
    log:
        "logs/calibrate_ceiling.log",
    shell:
        "python -m pfslogg ceiling-calibration --rule {rule} --params {params.p:q} "
        "--grid {input.grid} --out {output} > {log} 2>&1"
