# The data path: raw grid -> instrument grid -> data sets (+ their summaries).


rule build_raw_grid:
    """Raw high-resolution grid: the embedded forward model or the BOSZ files (config grid.source)."""
    output:
        W.RAW_GRID,
    params:
        p=get_params("build_raw_grid"),
    log:
        "logs/build_raw_grid.log",
    benchmark:
        "benchmarks/build_raw_grid.tsv"
    conda:
        ENV
    shell:
        "python -m pfslogg build-raw-grid --params {params.p:q} --out {output} > {log} 2>&1"


rule convolve_grid:
    """Convolve the raw grid to R~5000 and resample it onto the 4096 PFS pixels, once per node."""
    input:
        W.RAW_GRID,
    output:
        W.INSTRUMENT_GRID,
    params:
        p=get_params("convolve_grid"),
    log:
        "logs/convolve_grid.log",
    benchmark:
        "benchmarks/convolve_grid.tsv"
    conda:
        ENV
    shell:
        "python -m pfslogg convolve-grid --params {params.p:q} --input {input} --out {output} > {log} 2>&1"


rule simulate_dataset:
    """Draw a data set from the instrument grid and the exposure model (pfsspec layout)."""
    input:
        grid=W.INSTRUMENT_GRID,
    output:
        data=W.DATASET,
        summary=W.DATASET_SUMMARY,
    params:
        p=get_params("simulate_dataset"),
    log:
        "logs/simulate_dataset/{split}.log",
    benchmark:
        "benchmarks/simulate_dataset/{split}.tsv"
    wildcard_constraints:
        split="|".join(SIMULATED_SPLITS) or "(?!)",
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg simulate-dataset --params {params.p:q} --threads {threads} --grid {input.grid} "
        "--split {wildcards.split} --out {output.data} --summary {output.summary} > {log} 2>&1"


rule describe_dataset:
    """Summarise an existing (pfsspec layout) data set configured for a split (datasets.<split>.path)."""
    input:
        data=get_dataset_of,
    output:
        summary=W.DATASET_SUMMARY,
    params:
        p=get_params("describe_dataset"),
    log:
        "logs/describe_dataset/{split}.log",
    wildcard_constraints:
        split="|".join(EXTERNAL_SPLITS) or "(?!)",
    conda:
        ENV
    shell:
        "python -m pfslogg describe-dataset --params {params.p:q} --split {wildcards.split} "
        "--input {input.data} --summary {output.summary} > {log} 2>&1"


rule describe_grid:
    """Numbers that describe the instrument grid (axes, resolving powers, model settings) for the text."""
    input:
        W.INSTRUMENT_GRID,
    output:
        W.GRID_SUMMARY,
    log:
        "logs/describe_grid.log",
    conda:
        ENV
    shell:
        "python -m pfslogg describe-grid --grid {input} --out {output} > {log} 2>&1"
