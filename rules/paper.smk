# The paper: numbers as macros, then one PDF per document (main.tex, track_a.tex ... track_f.tex).
# Each document reads paper/generated/<doc>/numbers.tex, made from exactly the results JSONs it
# prints (rules/common.smk: get_numbers_inputs), and is compiled from exactly the files it reads
# (get_paper_inputs). Trace any printed number: python -m pfslogg provenance <number>.


rule collect_numbers:
    """One \\newcommand per number of the document's results JSONs, each with its file and key."""
    input:
        get_numbers_inputs,
    output:
        tex=W.NUMBERS,
        index=W.NUMBERS_INDEX,
    params:
        p=get_params("collect_numbers"),
    log:
        "logs/collect_numbers/{doc}.log",
    conda:
        ENV
    shell:
        "python -m pfslogg collect-numbers --params {params.p:q} --results results --inputs {input} "
        "--out {output.tex} --index {output.index} > {log} 2>&1"


rule compile_paper:
    """pdflatex + bibtex via latexmk, run from paper/ (latexmk -cd); auxiliary files in paper/build/."""
    input:
        get_paper_inputs,
    output:
        report(W.PDF, caption="../report/paper.rst", category="Paper", labels={"document": "{doc}"}),
    log:
        "logs/compile_paper/{doc}.log",
    conda:
        ENV
    shell:
        "latexmk -cd -pdf -interaction=nonstopmode -halt-on-error -outdir=build "
        "paper/{wildcards.doc}.tex > {log} 2>&1"
