# Raw grid -> instrument grid -> data sets.


rule build_raw_grid:
    # the raw high-resolution grid: embedded forward model or BOSZ files (config grid.source)
    output:
        "data/grid/raw.h5",
    params:
        p=get_grid_params,
    log:
        "logs/build_raw_grid.log",
    shell:
        "python -m pfslogg build-grid --rule {rule} --params {params.p:q} --out {output} > {log} 2>&1"


rule convolve_grid:
    # convolve to R~5000 and resample onto the 4096 PFS pixels, once per grid node
    input:
        "data/grid/raw.h5",
    output:
        "data/grid/instrument.h5",
    params:
        p=get_instrument_params,
    log:
        "logs/convolve_grid.log",
    shell:
        "python -m pfslogg convolve-grid --rule {rule} --params {params.p:q} "
        "--input {input} --out {output} > {log} 2>&1"


rule simulate_dataset:
    # draw parameters, interpolate, normalise, add the exposure model's sigma; pfsspec layout
    input:
        grid="data/grid/instrument.h5",
    output:
        data="data/datasets/{split}.h5",
        summary="results/data/{split}.json",
    params:
        p=get_dataset_params,
    log:
        "logs/simulate_dataset/{split}.log",
    wildcard_constraints:
        split="|".join(SIMULATED_SPLITS) or "(?!)",
    threads: 2
    shell:
        "python -m pfslogg simulate-dataset --rule {rule} --params {params.p:q} --threads {threads} --grid {input.grid} "
        "--split {wildcards.split} --out {output.data} --summary {output.summary} > {log} 2>&1"


rule describe_dataset:
    # summary of an existing (pfsspec layout) data set used for a split: size, SNR distribution
    input:
        data=lambda wildcards: get_dataset(wildcards.split),
    output:
        summary="results/data/{split}.json",
    params:
        p=get_describe_params,
    log:
        "logs/describe_dataset/{split}.log",
    wildcard_constraints:
        split="|".join(EXTERNAL_SPLITS) or "(?!)",
    shell:
        "python -m pfslogg describe-dataset --rule {rule} --params {params.p:q} --split {wildcards.split} "
        "--input {input.data} --summary {output.summary} > {log} 2>&1"
