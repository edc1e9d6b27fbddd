# The paper: numbers as macros, then one PDF per document (main.tex, track_a.tex ... track_f.tex).
# Each document reads paper/generated/<doc>/numbers.tex, made from exactly the results JSONs it
# prints (rules/common.smk: get_numbers_inputs), and is compiled from exactly the files it
# reads (get_paper_inputs). Trace any printed number: python -m pfslogg provenance <number>.


wildcard_constraints:
    doc="|".join(PAPER_DOCS),


rule describe_grid:
    # numbers that describe the instrument grid (axes, resolving powers, model settings) for the text
    input:
        "data/grid/instrument.h5",
    output:
        "results/data/grid.json",
    log:
        "logs/describe_grid.log",
    shell:
        "python -m pfslogg.paper describe-grid --rule {rule} --grid {input} --out {output} > {log} 2>&1"


rule collect_numbers:
    # one \newcommand per number of the document's results JSONs, each with its file and key
    input:
        get_numbers_inputs,
    output:
        tex="paper/generated/{doc}/numbers.tex",
        index="paper/generated/{doc}/numbers.json",
    log:
        "logs/collect_numbers/{doc}.log",
    shell:
        "python -m pfslogg.paper numbers results {output.tex} --index {output.index} "
        "--files {input} > {log} 2>&1"


rule compile_paper:
    # pdflatex + bibtex via latexmk, run from paper/ (latexmk -cd); auxiliary files in paper/build/
    input:
        get_paper_inputs,
    output:
        report("paper/build/{doc}.pdf", caption="../report/paper.rst", category="Paper",
               labels={"document": "{doc}"}),
    log:
        "logs/compile_paper/{doc}.log",
    shell:
        "latexmk -cd -pdf -interaction=nonstopmode -halt-on-error -outdir=build "
        "paper/{wildcards.doc}.tex > {log} 2>&1"
