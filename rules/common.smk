# Helpers shared by the rule files. Paths and parameter blocks come from the library
# (pfslogg.workflow: every path named once, every rule's --params block built in one tested
# place); the get_* functions below only adapt them to Snakemake's wildcards.

import json
import os

from pfslogg.config import check_config
from pfslogg.errors import InputError
from pfslogg.provenance import CONFIG_DIGEST_ENV as PROVENANCE_ENV, config_digest
from pfslogg import workflow as W

try:
    check_config(config, "config")
except InputError as e:
    raise WorkflowError(str(e))

# the digest of the whole configuration, for every job's provenance block (params_digest covers
# the rule's own parameters); an environment variable, so that it never changes a job's params
os.environ[PROVENANCE_ENV] = config_digest(config)

ENV = "../envs/pfslogg.yaml"
EXPERIMENTS = list(config["experiments"])
EXTERNAL_SPLITS = W.external_splits(config)
SIMULATED_SPLITS = [s for s in W.SPLITS if s not in EXTERNAL_SPLITS]


wildcard_constraints:
    estimator="|".join(config["estimators"]),
    experiment="|".join(EXPERIMENTS),
    noise=W.WILDCARD_PATTERNS["noise"],
    size=W.WILDCARD_PATTERNS["size"],
    seed=W.WILDCARD_PATTERNS["seed"],
    figure="|".join(W.FIGURE_TRACKS),
    table="|".join(W.TABLES),
    doc="|".join(W.PAPER_DOCS),
    track=W.WILDCARD_PATTERNS["track"],


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def get_params(rule_name):
    """Input function: the rule's parameter block (JSON) for a job's wildcards."""

    def params(wildcards):
        return as_json(W.rule_params(rule_name, config, **dict(wildcards.items())))

    return params


def get_dataset(split):
    return W.dataset_path(config, split)


def get_train_input(wildcards):
    """What a cell trains from: the training set, or the instrument grid (train_source: simulator)."""
    return W.train_input(config, wildcards.estimator)


def get_dataset_of(wildcards):
    return W.dataset_path(config, wildcards.split)


def get_experiment_cells(wildcards):
    return W.aggregate_inputs(config, wildcards.experiment)


def get_figure_inputs(wildcards):
    return W.figure_inputs(config, wildcards.figure)


def get_table_inputs(wildcards):
    return W.table_inputs(config, wildcards.table)


def get_moe_summary_inputs(wildcards):
    return W.moe_summary_inputs(config)


# -- paper: a document's inputs are exactly the files it reads (pfslogg.paper.document_sources
# follows its \input, \fittable, \includegraphics and \bibliography), plus the numbers.tex made
# from exactly the results JSONs that it and its tables print.
from pfslogg.paper import document_sources


def get_paper_tables(doc):
    prefix = "paper/generated/tables/"
    return [p[len(prefix):-len(".tex")] for p in document_sources("paper", doc) if p.startswith(prefix)]


def get_numbers_inputs(wildcards):
    files = W.doc_results(config, wildcards.doc)
    for table in get_paper_tables(wildcards.doc):
        files += W.table_inputs(config, table)
    return sorted(dict.fromkeys(files))


def get_paper_inputs(wildcards):
    return document_sources("paper", wildcards.doc)
