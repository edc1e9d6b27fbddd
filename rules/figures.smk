# Figures and tables read results JSONs only (restyling never reruns a computation); one generic
# rule each, driven by the registry of pfslogg.tracks (what each reads, its caption, its parameters).


rule plot_figure:
    """Draw one figure (pfslogg.plots.FIGURES) from the results JSONs it shows."""
    input:
        get_figure_inputs,
    output:
        fig=report(W.FIGURE, caption="../report/figure.rst", category="Figures", labels={"figure": "{figure}"}),
        sidecar=W.FIGURE_SIDECAR,
    params:
        p=get_params("plot_figure"),
        caption=lambda wildcards: W.FIGURES[wildcards.figure].caption,
    log:
        "logs/plot_figure/{figure}.log",
    conda:
        ENV
    shell:
        "python -m pfslogg plot-figure --params {params.p:q} --inputs {input} --out {output.fig} > {log} 2>&1"


rule tabulate:
    """Write one LaTeX table (booktabs + siunitx) whose every value is a macro of numbers.tex."""
    input:
        get_table_inputs,
    output:
        report(W.TABLE, caption="../report/table.rst", category="Tables", labels={"table": "{table}"}),
    params:
        p=get_params("tabulate"),
        caption=lambda wildcards: W.TABLE_ENTRIES[wildcards.table].caption,
    log:
        "logs/tabulate/{table}.log",
    conda:
        ENV
    shell:
        "python -m pfslogg tabulate --params {params.p:q} --results results --inputs {input} "
        "--out {output} > {log} 2>&1"
