# pfslogg: from a spectral grid to the paper on stellar surface gravity (log g).
# Table of contents: configuration + validation, rule files (each track's file declares its own
# target), and the two targets that span tracks.

from snakemake.utils import min_version

from pfslogg.config import SCHEMA, check_config_files, validate_config
from pfslogg.errors import InputError

min_version("9.0")


configfile: "config/config.yaml"


try:
    check_config_files(workflow.configfiles)   # Snakemake's YAML reader keeps the last of a key given twice
    validate_config(config, "config", SCHEMA)  # config/schema.yaml links to it; one line per violation
except InputError as e:
    raise WorkflowError(str(e))


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/experiments.smk"
include: "rules/track_a.smk"
include: "rules/track_b.smk"
include: "rules/track_c.smk"
include: "rules/track_d.smk"
include: "rules/track_e.smk"
include: "rules/track_f.smk"
include: "rules/figures.smk"
include: "rules/paper.smk"


rule all:
    """Everything built so far: every track's results, figures, tables and PDF, and the whole paper."""
    input:
        W.all_outputs(config),
    default_target: True


rule paper:
    """Every document: the whole study (paper/build/main.pdf) and each track's own (paper/build/track_<x>.pdf)."""
    input:
        W.paper_outputs(),
