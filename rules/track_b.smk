# Track B: the physics-gated mixture of experts -- its cells are ordinary experiment cells
# (rules/experiments.smk: each trains a mixture, saves its folder of nested model folders and
# scores every routing); one rule summarises them against the global models and the Bayes ceiling.


rule summarize_moe:
    """Mixtures of experts against their global models, the best global model, the oracle routing and the
    Bayes ceiling per bin: oracle-gain retention of every gate, paired bootstrap intervals."""
    input:
        get_moe_summary_inputs,
    output:
        W.MOE,
    params:
        p=get_params("summarize_moe"),
    log:
        "logs/summarize_moe.log",
    benchmark:
        "benchmarks/summarize_moe.tsv"
    conda:
        ENV
    shell:
        "python -m pfslogg summarize-moe --params {params.p:q} --out {output} > {log} 2>&1"


rule track_b:
    """Track B: mixtures of experts -- experts per [M/H] and T_eff bin, gates on the spectrum, oracle-gain
    retention, per-bin ceilings (results, figures, tables, paper/build/track_b.pdf)."""
    input:
        W.track_outputs(config, "b"),
