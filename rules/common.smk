# Helpers shared by the rule files: parameter blocks passed to `python -m pfslogg <command>`
# (one JSON string each, so Snakemake's metadata records the exact parameters) and target lists.

import json

from pfslogg.config import check_config, noise_seed, split_seed
from pfslogg.errors import InputError

try:
    check_config(config, "config")
except InputError as e:
    raise WorkflowError(str(e))

SPLITS = ["train", "val", "test"]
ESTIMATORS = list(config["estimators"])
# splits read from an existing pfsspec data set (datasets.<split>.path) instead of simulated
EXTERNAL_SPLITS = [s for s in SPLITS if config["datasets"][s].get("path")]
SIMULATED_SPLITS = [s for s in SPLITS if s not in EXTERNAL_SPLITS]


wildcard_constraints:
    estimator="|".join(ESTIMATORS),


def get_dataset(split):
    """Path of a split's data set: the configured existing file, or the simulated one."""
    return config["datasets"][split].get("path") or f"data/datasets/{split}.h5"


def get_describe_params(wildcards):
    return as_json({"split": wildcards.split, "path": get_dataset(wildcards.split)})


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def get_grid_params(wildcards=None):
    return as_json({"grid": config["grid"], "params": config["params"]})


def get_instrument_params(wildcards=None):
    return as_json({"instrument": config["instrument"]})


def get_dataset_params(wildcards):
    return as_json({
        "params": config["params"],
        "noise": config["noise"],
        "split": config["datasets"][wildcards.split],
        "chunk_size": config["datasets"]["chunk_size"],
        "seed": split_seed(config, wildcards.split),
    })


def get_train_params(wildcards):
    return as_json({
        "estimator": wildcards.estimator,
        "hyper": config["estimators"][wildcards.estimator],
        "params": config["params"],
        "noise_level": config["noise"]["noise_level"],
        "seed": config["seed"],
        "val_noise_seed": noise_seed(config, "val"),
    })


def get_eval_params(wildcards):
    return as_json({
        "estimator": wildcards.estimator,
        "params": config["params"],
        "noise_level": config["noise"]["noise_level"],
        "test_noise_seed": noise_seed(config, "test"),
        "evaluation": config["evaluation"],
        "seed": config["seed"],
    })


def get_fisher_params(wildcards=None):
    return as_json({
        "params": config["params"],
        "noise_level": config["noise"]["noise_level"],
        "evaluation": config["evaluation"],
    })


def get_calibration_params(wildcards=None):
    return as_json({
        "params": config["params"],
        "noise": config["noise"],
        "ceiling": config["ceiling"],
        "seed": config["seed"],
    })


def get_plot_params(wildcards=None):
    return as_json({
        "estimators": config["figure"]["estimators"],
        "snr_bins": config["evaluation"]["snr_bins"],
    })


def get_figure_inputs(wildcards=None):
    return [f"results/track_f/{e}.json" for e in config["figure"]["estimators"]] + [
        "results/track_c/fisher.json"
    ]


def get_track_targets(track):
    """Everything a paper track builds: results, figures, tables and its PDF."""
    if track == "c":
        return [
            "results/track_c/fisher.json",
            "results/track_c/ceiling_calibration.json",
            "figures/ceiling_calibration.pdf",
            "paper/generated/tables/ceiling.tex",
            "paper/generated/tables/calibration.tex",
            "paper/build/track_c.pdf",
        ]
    if track == "f":
        return [f"results/track_f/{e}.json" for e in ESTIMATORS] + [
            "figures/r2_vs_snr.pdf",
            "paper/generated/tables/leaderboard.tex",
            "paper/build/track_f.pdf",
        ]
    raise ValueError(f"unknown track {track}")


# -- paper: tables, numbers and documents (rules/tables.smk, rules/paper.smk) -----------------
# A document's inputs are exactly the files it reads (pfslogg.paper.document_sources follows its
# \input, \fittable, \includegraphics and \bibliography), plus the numbers.tex made from exactly
# the results JSONs that it and its tables print.

from pfslogg.paper import document_sources

PAPER_DOCS = ["main"] + [f"track_{t}" for t in "abcdef"]
DATA_RESULTS = [f"results/data/{s}.json" for s in SPLITS] + ["results/data/grid.json"]


def get_leaderboard_inputs(wildcards=None):
    return [f"results/track_f/{e}.json" for e in ESTIMATORS] + ["results/track_c/fisher.json"]


def get_ceiling_table_inputs(wildcards=None):
    return ["results/track_c/fisher.json"]


def get_calibration_table_inputs(wildcards=None):
    return ["results/track_c/ceiling_calibration.json"]


def get_datasets_table_inputs(wildcards=None):
    return [f"results/data/{s}.json" for s in SPLITS]


TABLE_INPUTS = {
    "datasets": get_datasets_table_inputs,
    "leaderboard": get_leaderboard_inputs,
    "ceiling": get_ceiling_table_inputs,
    "calibration": get_calibration_table_inputs,
}


def get_doc_results(doc):
    """Results JSONs whose numbers the text of ``doc`` prints (its tables add their own)."""
    track_c = DATA_RESULTS + ["results/track_c/fisher.json", "results/track_c/ceiling_calibration.json"]
    track_f = DATA_RESULTS + [f"results/track_f/{e}.json" for e in ESTIMATORS] + ["results/track_c/fisher.json"]
    own = {"main": track_c + track_f, "track_c": track_c, "track_f": track_f}
    return list(dict.fromkeys(own.get(doc, [])))


def get_paper_tables(doc):
    prefix = "paper/generated/tables/"
    return [p[len(prefix):-len(".tex")] for p in document_sources("paper", doc) if p.startswith(prefix)]


def get_numbers_inputs(wildcards):
    files = get_doc_results(wildcards.doc)
    for table in get_paper_tables(wildcards.doc):
        files += TABLE_INPUTS[table]()
    return sorted(dict.fromkeys(files))


def get_paper_inputs(wildcards):
    return document_sources("paper", wildcards.doc)
