# Experiment grids (config experiments): one job per cell, one aggregate per experiment.
# A cell is (estimator variant, noise level, training size, seed); its path names it, so a cell
# shared by two experiments is one job. Noise levels and sizes are views of the stored data sets:
# editing a grid reruns cells, never a data-set rule. On Slurm, cells are submitted in groups
# (group "cells", --group-components in profiles/slurm) instead of one job each.


rule run_cell:
    """Train one estimator variant on one cell (noise level, training size, seed), save its model
    folder, and score it on the test set at the same noise level."""
    wildcard_constraints:
        estimator=W.estimator_pattern(config, neural=False),
    input:
        train=get_train_input,  # the training set; the instrument grid for a variant with train_source: simulator
        val=get_dataset("val"),
        test=get_dataset("test"),
        grid=W.INSTRUMENT_GRID,  # for estimators that fit templates from it; a changed grid reruns every cell
        upstream=lambda w: list(W.upstream_models(config, w.estimator, w.noise, w.size).values()),  # models it builds on
    output:
        model=directory(W.MODEL),
        metrics=W.CELL,
        predictions=W.CELL_PREDICTIONS,
    params:
        p=get_params("run_cell"),
    log:
        W.CELL_LOG,
    benchmark:
        W.CELL_BENCHMARK
    group:
        "cells"
    threads: 1
    conda:
        ENV
    shell:
        "python -m pfslogg run-cell --params {params.p:q} --threads {threads} --train {input.train} "
        "--val {input.val} --test {input.test} --grid {input.grid} --model {output.model} "
        "--out {output.metrics} --predictions {output.predictions} > {log} 2>&1"


rule run_neural_cell:
    """One cell of a neural estimator (Track A; MLPs of Tracks E/F): as run_cell, with the training
    engine's checkpoint in checkpoints/ (a pre-empted or killed job resumes where it stopped) and
    the GPU resources of profiles/default (on Slurm: --gpus, --cpus-per-gpu)."""
    wildcard_constraints:
        estimator=W.estimator_pattern(config, neural=True),
    input:
        train=get_train_input,
        val=get_dataset("val"),
        test=get_dataset("test"),
        grid=W.INSTRUMENT_GRID,
        upstream=lambda w: list(W.upstream_models(config, w.estimator, w.noise, w.size).values()),
    output:
        model=directory(W.MODEL),
        metrics=W.CELL,
        predictions=W.CELL_PREDICTIONS,
    params:
        p=get_params("run_neural_cell"),
    log:
        W.CELL_LOG,
    benchmark:
        W.CELL_BENCHMARK
    group:
        "neural"
    priority: lambda wildcards: W.cell_priority(config, wildcards.estimator)   # networks before in-memory cells
                  # (on 2 cores the headline figure's CNN and ViT set its wall time); the denoisers first
    threads: lambda wildcards: W.cell_threads(config, wildcards.estimator)   # 1 each (a class may ask for more)
    conda:
        ENV
    shell:
        "python -m pfslogg run-cell --rule run_neural_cell --params {params.p:q} --threads {threads} --train {input.train} "
        "--val {input.val} --test {input.test} --grid {input.grid} --model {output.model} "
        "--out {output.metrics} --predictions {output.predictions} > {log} 2>&1"


rule aggregate_experiment:
    """Aggregate an experiment's cells: a CSV row per cell, one JSON of means over seeds with
    intervals, the best estimator per noise level and size, and each variant of its compare against
    its reference, paired on the test spectra (what figures and macros read)."""
    input:
        get_experiment_cells,  # the cells' results, the compared cells' predictions tables, maybe the Bayes ceiling
    output:
        metrics=W.AGGREGATE,
        table=W.AGGREGATE_TABLE,
    params:
        p=get_params("aggregate_experiment"),
    log:
        "logs/aggregate_experiment/{track}_{experiment}.log",
    conda:
        ENV
    shell:
        "python -m pfslogg aggregate-experiment --params {params.p:q} --inputs {input} "
        "--out {output.metrics} --table {output.table} > {log} 2>&1"
