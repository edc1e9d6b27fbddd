# pfslogg: from a spectral grid to the paper on stellar surface gravity (log g).
# Table of contents: configuration + validation, rule files, one target per paper track.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/baselines.smk"
include: "rules/ceiling.smk"
include: "rules/figures.smk"
include: "rules/tables.smk"
include: "rules/paper.smk"


rule all:
    # everything built so far: the tracks' results, figures, tables and PDFs, and the whole paper
    input:
        get_track_targets("c"),
        get_track_targets("f"),
        "paper/build/main.pdf",
    default_target: True


rule track_c:
    # Track C: Fisher / Cramer-Rao ceilings (results, figure, tables, paper/build/track_c.pdf)
    input:
        get_track_targets("c"),


rule track_f:
    # Track F: baselines Ridge, LightGBM, template fit (results, figure, table, paper/build/track_f.pdf)
    input:
        get_track_targets("f"),


rule paper:
    # the whole study: paper/build/main.pdf
    input:
        "paper/build/main.pdf",
