# Track D: denoising -- the transforms' cells are ordinary cells of kind transform (rules/experiments.smk:
# trained, saved, scored against the noiseless test spectra by wMAE and MSE; config `denoising`), the
# estimators on denoised spectra are ordinary experiment cells whose upstream transform's model folder is
# an input (experiments.downstream); one rule gathers the transforms and draws example spectra, one
# compares the downstream cells with the Bayes ceiling of the raw spectra.

from pfslogg.tracks import track_d as TRACK_D


rule summarize_denoising:
    """The denoisers against the noisy input: wMAE and MSE improvement per noise level, strength, SNR bin and
    pixel class (from their cells), and example test spectra (noisy, noiseless, denoised) per transform."""
    input:
        TRACK_D.summary_inputs(config),  # the transform cells' results, their model folders, the test set
    output:
        summary=TRACK_D.SUMMARY,
        examples=TRACK_D.example_paths(config),
    params:
        p=get_params("summarize_denoising"),
    log:
        "logs/summarize_denoising.log",
    benchmark:
        "benchmarks/summarize_denoising.tsv"
    conda:
        ENV
    shell:
        "python -m pfslogg summarize-denoising --params {params.p:q} --inputs {input} --out {output.summary} "
        "--examples {output.examples} > {log} 2>&1"


use rule check_ceiling as check_denoised_ceiling with:
    input:
        bayes=W.BAYES,
        fisher=W.FISHER,
        cells=TRACK_D.ceiling_cells(config),
    output:
        TRACK_D.CEILING,
    params:
        p=get_params("check_denoised_ceiling"),
    log:
        "logs/check_denoised_ceiling.log",


rule sample_posterior:
    """Draws of the generative denoiser (config denoising.posterior) for test spectra spread over the SNR, each
    fitted for log g, against the exact posterior of log g of the same noisy spectra (the Bayes ceiling's table)."""
    input:
        **TRACK_D.posterior_inputs(config),
    output:
        TRACK_D.POSTERIOR,
    params:
        p=get_params("sample_posterior"),
    log:
        "logs/sample_posterior.log",
    benchmark:
        "benchmarks/sample_posterior.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg sample-posterior --params {params.p:q} --threads {threads} --trained {input.model} "
        "--test {input.test} --grid {input.grid} --bayes {input.bayes} --out {output} > {log} 2>&1"


rule track_d:
    """Track D: denoisers scored against the noiseless spectra, and log g from denoised spectra against the raw
    spectra and their Bayes ceiling (results, figures, tables, paper/build/track_d.pdf)."""
    input:
        W.track_outputs(config, "d"),
