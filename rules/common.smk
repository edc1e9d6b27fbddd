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


wildcard_constraints:
    split="|".join(SPLITS),
    estimator="|".join(ESTIMATORS),


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
    if track == "c":
        return ["results/track_c/fisher.json", "figures/ceiling_calibration.pdf"]
    if track == "f":
        return [f"results/track_f/{e}.json" for e in ESTIMATORS] + ["figures/r2_vs_snr.pdf"]
    raise ValueError(f"unknown track {track}")
