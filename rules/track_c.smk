# Track C: the Bayes (posterior-mean) ceiling and the Fisher / Cramer-Rao bounds.


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


rule track_c:
    """Track C: Bayes and Fisher / Cramer-Rao ceilings (results, figure, tables, paper/build/track_c.pdf)."""
    input:
        W.BAYES,
        W.FISHER,
        W.CALIBRATION,
        W.FIGURE.format(figure="ceiling_calibration"),
        expand(W.TABLE, table=["ceiling", "calibration"]),
        W.PDF.format(doc="track_c"),
