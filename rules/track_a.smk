# Track A: the neural estimators (ViT, CNN, MLPs) -- scaling with training size, ablations, the ViT
# across noise levels, attention maps -- trained by the one engine (rule run_neural_cell).


rule compute_attention_maps:
    """Attention rollout, [CLS] attention and gradient saliency of a trained ViT on test spectra, by
    stellar type, against the per-pixel Fisher information on log g."""
    input:
        model=W.attention_model(config),
        test=get_dataset("test"),
        grid=W.INSTRUMENT_GRID,
    output:
        W.ATTENTION,
    params:
        p=get_params("compute_attention_maps"),
    log:
        "logs/compute_attention_maps.log",
    benchmark:
        "benchmarks/compute_attention_maps.tsv"
    threads: 2
    conda:
        ENV
    shell:
        "python -m pfslogg compute-attention-maps --params {params.p:q} --threads {threads} "
        "--trained {input.model} --test {input.test} --grid {input.grid} --out {output} > {log} 2>&1"


rule track_a:
    """Track A: neural estimators -- scaling law, ablations, noise levels, attention maps (results, figures, tables, paper/build/track_a.pdf)."""
    input:
        W.track_outputs(config, "a"),
