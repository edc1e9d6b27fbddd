# Figures: plotting reads results JSONs only (restyling never reruns a computation).


rule plot_r2_vs_snr:
    input:
        get_figure_inputs,
    output:
        fig=report("figures/r2_vs_snr.pdf", caption="../report/r2_vs_snr.rst", category="Track F"),
        sidecar="figures/r2_vs_snr.pdf.json",
    params:
        p=get_plot_params,
    log:
        "logs/plot_r2_vs_snr.log",
    shell:
        "python -m pfslogg plot --rule {rule} --params {params.p:q} --kind r2_vs_snr "
        "--inputs {input} --out {output.fig} > {log} 2>&1"


rule plot_ceiling_calibration:
    input:
        "results/track_c/ceiling_calibration.json",
    output:
        fig=report(
            "figures/ceiling_calibration.pdf", caption="../report/ceiling_calibration.rst", category="Track C"
        ),
        sidecar="figures/ceiling_calibration.pdf.json",
    log:
        "logs/plot_ceiling_calibration.log",
    shell:
        "python -m pfslogg plot --rule {rule} --params '{{}}' --kind ceiling_calibration "
        "--inputs {input} --out {output.fig} > {log} 2>&1"
