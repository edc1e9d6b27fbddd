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


rule all:
    input:
        get_track_targets("c"),
        get_track_targets("f"),
    default_target: True


rule track_c:
    # Track C: Fisher / Cramer-Rao ceilings
    input:
        get_track_targets("c"),


rule track_f:
    # Track F: baselines (Ridge, LightGBM, template fit)
    input:
        get_track_targets("f"),
