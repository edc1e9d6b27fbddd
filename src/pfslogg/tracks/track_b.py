"""Track B: the physics-gated mixture of experts -- experts per bin of [M/H] and T_eff, routed by gates
that see only the spectrum, against one global model of the same family, the best global model,
the oracle routing and the Bayes ceiling per bin (pfslogg.mixtures)."""

from .. import paths as P
from ..errors import InputError
from .data import data_results
from .registry import figure, table, track

EXPERIMENT = "moe"   # required; every experiment of track b joins the summary (e.g. moe_sizes)


def experiments(cfg):
    """The Track B experiments: every one with ``track: b`` (``moe`` first)."""
    names = [n for n, x in cfg["experiments"].items() if x["track"] == "b"]
    return sorted(names, key=lambda n: (n != EXPERIMENT, n))


def noise_levels(cfg):
    return sorted({float(v) for n in experiments(cfg) for v in cfg["experiments"][n]["noise_levels"]})


def compare(cfg):
    """mixture -> its global model, over the Track B experiments."""
    out = {}
    for n in experiments(cfg):
        out.update(P.compare_pairs(cfg["experiments"][n]))
    return out


def summary_cells(cfg):
    """[estimator, noise tag, size, seed index, results path] of every cell the summary reads: the Track B
    experiments' cells, then those of the bar's estimators that are not in them (config moe.bar): the
    headline figure's cells (seed 0, default noise level, whole training set) where it draws them."""
    cells = {c for n in experiments(cfg) for c in P.experiment_cells(cfg["experiments"][n])}
    out = [[e, t, n, s, P.CELL.format(estimator=e, noise=t, size=n, seed=s)] for e, t, n, s in sorted(cells)]
    inside = {c[0] for c in cells}
    level, size = P.noise_tag(cfg["noise"]["noise_level"]), int(cfg["datasets"]["train"]["n"])
    for e in cfg["moe"]["bar"]:
        if e not in inside and e in cfg["figure"]["estimators"]:
            out.append([e, level, size, 0, P.CELL.format(estimator=e, noise=level, size=size, seed=0)])
    return out


def summary_inputs(cfg):
    """Inputs of rule summarize_moe: every cell's results and predictions, then the Bayes ceiling (results
    and per spectrum) at each noise level of the Track B experiments."""
    files = [c[-1] for c in summary_cells(cfg)]
    out = files + [f[:-len(".json")] + ".csv" for f in files]
    for level in noise_levels(cfg):
        out += list(P.bayes_paths(cfg, level))
    return out


def extra_bayes_levels(cfg):
    """The experiment's noise levels other than the default: the Bayes ceiling is computed there too."""
    return [v for v in noise_levels(cfg) if v != float(cfg["noise"]["noise_level"])]


def _check(cfg, where):
    from ..config import check_configured

    spec = cfg["experiments"][EXPERIMENT]
    names = spec["estimators"]
    if not P.compare_pairs(spec):
        raise InputError(f"{where}: experiments.{EXPERIMENT}.compare: required: each mixture -> the global model "
                         "of the same family it is measured against")
    show = cfg["moe"]["figure_variant"]
    if show not in compare(cfg) or cfg["estimators"][show]["class"] != "moe":
        raise InputError(f"{where}: moe.figure_variant: '{show}' must be a variant of class 'moe' compared with its "
                         "global model in a Track B experiment (experiments.<name>.compare, track b)")
    for e in cfg["moe"]["bar"]:
        check_configured(cfg, e, "moe.bar", where)
    if not any(e in names for e in cfg["moe"]["bar"]):
        raise InputError(f"{where}: moe.bar: none of {cfg['moe']['bar']} is in experiments.{EXPERIMENT}.estimators "
                         "(the bar must be measured at every noise level of the experiment)")


def summary_params(cfg):
    """The parameter block of rule summarize_moe."""
    return {"experiments": experiments(cfg), "compare": compare(cfg), "bar": cfg["moe"]["bar"],
            "figure_variant": cfg["moe"]["figure_variant"], "cells": summary_cells(cfg),
            "bayes": {P.noise_tag(v): list(P.bayes_paths(cfg, v)) for v in noise_levels(cfg)},
            "default_noise_level": cfg["noise"]["noise_level"], "confidence": cfg["evaluation"]["confidence"],
            "bootstrap": cfg["evaluation"]["bootstrap"], "seed": cfg["seed"]}


track("b", "mixture of experts", experiments=(EXPERIMENT,), rules=("summarize_moe",),
      params={"summarize_moe": summary_params},
      results=lambda cfg: [P.aggregate_path(cfg, n) for n in experiments(cfg)] + [P.MOE],
      text=lambda cfg: data_results(cfg) + [P.MOE, P.BAYES, P.FISHER],   # the data and metric sections cite Fisher
      check=_check,
      extra_jobs=lambda cfg: [("compute_bayes_ceiling_at_noise", {"noise": P.noise_tag(v)})
                              for v in extra_bayes_levels(cfg)])


def _moe(cfg):
    return [P.MOE]


figure("moe_routing", "b", _moe,
       "Track B: R2 of each mixture under every routing (oracle, gates soft and hard) against its global model "
       "and the best global model, per noise level.")
figure("moe_rho", "b", _moe,
       "Track B: oracle-gain retention rho = (R2_gate - R2_global) / (R2_oracle - R2_global) per gate and routing, "
       "with bootstrap intervals.")
figure("moe_bins", "b", _moe,
       "Track B: R2 per expert bin of the global model, the mixture (oracle and deployable) and the Bayes ceiling "
       "on the same rows.")
figure("moe_coverage", "b", _moe,
       "Track B: training and test spectra per expert bin (with the overlap margin) and the gates' estimates "
       "outside every bin.")
figure("moe_gate", "b", _moe,
       "Track B: confusion of the gates' most probable bin with the true bin, and the importance of the physics "
       "windows.")
table("moe_summary", "b", _moe,
      "Track B: each mixture against its global model and the best global model, per noise level.")
table("moe_rho", "b", _moe, "Track B: oracle-gain retention per gate and routing.")
table("moe_findings", "b", _moe, "Track B: the findings as sentences, each qualifying word chosen from the intervals.")
