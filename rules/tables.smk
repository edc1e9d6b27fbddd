# Tables: LaTeX (booktabs + siunitx) from results JSONs into paper/generated/tables/.
# Every value in a table is a macro of the including document's numbers.tex (rules/paper.smk),
# so a table and the text around it cannot disagree.


rule tabulate_leaderboard:
    # R2 per estimator and SNR bin, with bootstrap intervals, and the Fisher ceiling row
    input:
        get_leaderboard_inputs,
    output:
        report(
            "paper/generated/tables/leaderboard.tex",
            caption="../report/leaderboard.rst",
            category="Track F",
            labels={"table": "leaderboard"},
        ),
    log:
        "logs/tabulate/leaderboard.log",
    shell:
        "python -m pfslogg.paper table leaderboard results {output} --files {input} > {log} 2>&1"


rule tabulate_ceiling:
    # the Fisher ceiling per SNR bin of the test set
    input:
        get_ceiling_table_inputs,
    output:
        report(
            "paper/generated/tables/ceiling.tex",
            caption="../report/ceiling_table.rst",
            category="Track C",
            labels={"table": "ceiling"},
        ),
    log:
        "logs/tabulate/ceiling.log",
    shell:
        "python -m pfslogg.paper table ceiling results {output} --files {input} > {log} 2>&1"


rule tabulate_calibration:
    # the ceiling at the original study's SNR points, beside the original values
    input:
        get_calibration_table_inputs,
    output:
        report(
            "paper/generated/tables/calibration.tex",
            caption="../report/calibration_table.rst",
            category="Track C",
            labels={"table": "calibration"},
        ),
    log:
        "logs/tabulate/calibration.log",
    shell:
        "python -m pfslogg.paper table calibration results {output} --files {input} > {log} 2>&1"


rule tabulate_datasets:
    # size, magnitudes and SNR distribution of the training, validation and test sets
    input:
        get_datasets_table_inputs,
    output:
        report(
            "paper/generated/tables/datasets.tex",
            caption="../report/datasets_table.rst",
            category="Data",
            labels={"table": "datasets"},
        ),
    log:
        "logs/tabulate/datasets.log",
    shell:
        "python -m pfslogg.paper table datasets results {output} --files {input} > {log} 2>&1"
