"""The contract between the Snakemake rules and the commands: paths, parameter blocks, cells, targets.

Every path the workflow writes is named once (:mod:`pfslogg.paths`, re-exported here for the rule
files), every rule's parameter block -- the one JSON object passed as ``--params`` and recorded in
Snakemake's metadata and in each results JSON -- is built by :func:`rule_params`, the single
place where the keys that the commands of :mod:`pfslogg.cli` read are made, and what each figure,
table, document and track target reads comes from the one registry of :mod:`pfslogg.tracks`.
Tests check both sides against each other without Snakemake.
"""

from .config import noise_seed, split_seed
from .errors import InputError
from .experiments import cell_seed, experiment_cells, noise_tag, parse_noise_tag
from .paths import *  # noqa: F401,F403  (the rule files read every path as W.<NAME>)
from .paths import CHECKPOINT, FIGURE, PDF, SPLITS, TABLE, bayes_paths, bounds_scaling, dataset_path
from .tracks import FIGURES, TABLES as TABLE_ENTRIES, TRACKS


def _variant_class(cfg, estimator):
    """(registered class or None, hyper-parameters) of a configured variant."""
    from .estimators import REGISTRY

    v = cfg["estimators"][estimator]
    return REGISTRY.get(v["class"]), v.get("hyper") or {}


def is_neural(cfg, estimator):
    """Whether a variant's cell runs in the GPU rule (run_neural_cell): asked of its class with its
    hyper-parameters (``wants_accelerator``: a network, or a composite with a network among its parts)."""
    cls, hyper = _variant_class(cfg, estimator)
    return cls is not None and cls.wants_accelerator(hyper)


def cell_threads(cfg, estimator):
    """CPU threads of one cell of a variant (the rule's ``threads``; Snakemake caps it at --cores):
    asked of its class with its hyper-parameters (``cpu_threads``)."""
    cls, hyper = _variant_class(cfg, estimator)
    return 1 if cls is None else cls.cpu_threads(hyper)


def estimator_pattern(cfg, neural):
    """Wildcard regex of the variants whose cells run (or do not run) in the GPU rule: which of
    run_cell and run_neural_cell makes a cell (a pattern that matches nothing when there are none)."""
    import re

    names = [re.escape(e) for e in cfg["estimators"] if is_neural(cfg, e) == neural]
    return "|".join(names) if names else "(?!x)x"


# -- the registry: what each figure, table, document and track target reads --------------------------
FIGURE_TRACKS = {name: f.track for name, f in FIGURES.items()}
TABLES = tuple(TABLE_ENTRIES)
CAPTIONS = {**{n: t.caption for n, t in TABLE_ENTRIES.items()}, **{n: f.caption for n, f in FIGURES.items()}}


def figure_inputs(cfg, figure):
    if figure not in FIGURES:
        raise InputError(f"figure '{figure}': unknown, expected one of {sorted(FIGURES)}")
    return FIGURES[figure].inputs(cfg)


def table_inputs(cfg, table):
    if table not in TABLE_ENTRIES:
        raise InputError(f"table '{table}': unknown, expected one of {sorted(TABLE_ENTRIES)}")
    return TABLE_ENTRIES[table].inputs(cfg)


def doc_results(cfg, doc):
    """Results JSONs whose numbers the text of ``doc`` prints (its tables add their own): a track's
    document its track's, the main paper every track's."""
    tracks = [t for t in TRACKS.values() if doc in ("main", t.doc)]
    return list(dict.fromkeys(f for t in sorted(tracks, key=lambda t: t.letter) for f in t.text(cfg)))


def track_outputs(cfg, letter):
    """The inputs of target ``track_<letter>``: its results, figures, tables and PDF."""
    t = TRACKS[letter]
    return (list(t.results(cfg)) + [FIGURE.format(figure=n) for n, f in FIGURES.items() if f.track == letter]
            + [TABLE.format(table=n) for n, x in TABLE_ENTRIES.items() if x.track == letter]
            + [PDF.format(doc=t.doc)])


def moe_summary_inputs(cfg):
    """Inputs of rule summarize_moe (Track B): its cells' results and predictions, the Bayes ceilings."""
    from .tracks import track_b
    return track_b.summary_inputs(cfg)


def paper_outputs():
    """The inputs of target ``paper``: the PDF of the whole study (``main``) and of every registered
    track's document (a LaTeX skeleton of a track without results is not registered, nor built)."""
    return [PDF.format(doc="main")] + [PDF.format(doc=TRACKS[letter].doc) for letter in sorted(TRACKS)]


def all_outputs(cfg):
    """Everything built so far: every track's target and the whole paper."""
    out = [f for letter in sorted(TRACKS) for f in track_outputs(cfg, letter)] + paper_outputs()
    return list(dict.fromkeys(out))


# -- parameter blocks ----------------------------------------------------------------------------
def _variant(cfg, name):
    v = cfg["estimators"].get(name)
    if v is None:
        raise InputError(f"estimators.{name}: not configured")
    return v


def variant_sigma(cfg, name):
    """The sigma a variant's cells see with the noisy flux: its own ``sigma`` (estimators.<name>.sigma,
    the error-channel ablation of Track E) or else noise.sigma."""
    return _variant(cfg, name).get("sigma") or cfg["noise"]["sigma"]


def _stored_noise(cfg):
    """The exposure model without noise.noise_level and noise.sigma: data sets are stored at noise
    level 1 with their sigma and the calibration works at fixed SNR, so neither the default noise level
    nor which sigma views give models must rerun them."""
    return {k: v for k, v in cfg["noise"].items() if k not in ("noise_level", "sigma")}


def rule_params(rule, cfg, **w):
    """The parameter block of one job of ``rule`` (wildcards as keyword arguments)."""
    if rule == "build_raw_grid":
        return {"grid": cfg["grid"], "params": cfg["params"]}
    if rule == "convolve_grid":
        return {"instrument": cfg["instrument"]}
    if rule == "simulate_dataset":
        split = w["split"]
        return {"params": cfg["params"], "noise": _stored_noise(cfg), "split": cfg["datasets"][split],
                "chunk_size": cfg["datasets"]["chunk_size"], "seed": split_seed(cfg, split)}
    if rule == "describe_dataset":
        return {"split": w["split"], "path": dataset_path(cfg, w["split"])}
    if rule == "run_cell":
        v = _variant(cfg, w["estimator"])
        s = int(w["seed"])
        return {"estimator": w["estimator"], "class": v["class"], "hyper": v.get("hyper", {}),
                "noise_level": parse_noise_tag(str(w["noise"])), "size": int(w["size"]), "seed_index": s,
                "seed": cell_seed(cfg["seed"], s), "val_noise_seed": noise_seed(cfg, "val"),
                "test_noise_seed": noise_seed(cfg, "test"), "sigma": variant_sigma(cfg, w["estimator"]),
                "params": cfg["params"], "evaluation": cfg["evaluation"]}
    if rule == "run_neural_cell":
        return {**rule_params("run_cell", cfg, **w),
                "checkpoint": CHECKPOINT.format(estimator=w["estimator"], noise=w["noise"], size=int(w["size"]),
                                                seed=int(w["seed"]))}
    if rule == "aggregate_experiment":
        return {"experiment": w["experiment"], "spec": cfg["experiments"][w["experiment"]],
                "confidence": cfg["evaluation"]["confidence"], "bootstrap": cfg["evaluation"]["bootstrap"],
                "seed": cfg["seed"], "default_noise_level": cfg["noise"]["noise_level"],
                "bayes_bound": bounds_scaling(cfg, w["experiment"])}
    if rule == "compute_fisher_ceiling":
        return {"params": cfg["params"], "noise_level": cfg["noise"]["noise_level"],
                "evaluation": cfg["evaluation"]}
    if rule == "compute_bayes_ceiling":
        return {"params": cfg["params"], "noise_level": cfg["noise"]["noise_level"],
                "test_noise_seed": noise_seed(cfg, "test"), "sigma": cfg["noise"]["sigma"],
                "evaluation": cfg["evaluation"], "bayes": cfg["bayes"]}
    if rule == "compute_bayes_ceiling_at_noise":
        return {**rule_params("compute_bayes_ceiling", cfg), "noise_level": parse_noise_tag(str(w["noise"]))}
    if rule == "summarize_moe":
        from .tracks import track_b
        return {"experiments": track_b.experiments(cfg), "compare": track_b.compare(cfg), "bar": cfg["moe"]["bar"],
                "figure_variant": cfg["moe"]["figure_variant"], "cells": track_b.summary_cells(cfg),
                "bayes": {noise_tag(v): list(bayes_paths(cfg, v)) for v in track_b.noise_levels(cfg)},
                "default_noise_level": cfg["noise"]["noise_level"], "confidence": cfg["evaluation"]["confidence"],
                "bootstrap": cfg["evaluation"]["bootstrap"], "seed": cfg["seed"]}
    if rule == "calibrate_ceiling":
        c = {k: v for k, v in cfg["ceiling"].items() if k not in ("sweep", "validation")}
        return {"params": cfg["params"], "noise": _stored_noise(cfg), "ceiling": c, "seed": cfg["seed"]}
    if rule == "compute_crlb_validation":
        return {"params": cfg["params"], "noise": _stored_noise(cfg), "validation": cfg["ceiling"]["validation"],
                "seed": cfg["seed"]}
    if rule == "compute_snr_sweep":
        return {"params": cfg["params"], "noise": _stored_noise(cfg), "sweep": cfg["ceiling"]["sweep"],
                "bayes": cfg["bayes"], "evaluation": cfg["evaluation"], "seed": cfg["seed"]}
    if rule == "compute_attention_maps":
        return {"estimator": cfg["attention"]["estimator"], "n_spectra": cfg["attention"]["n_spectra"],
                "noise_level": cfg["noise"]["noise_level"], "test_noise_seed": noise_seed(cfg, "test"),
                "params": cfg["params"]}
    if rule == "check_ceiling":
        return {"noise_level": cfg["noise"]["noise_level"], "size": int(cfg["datasets"]["train"]["n"])}
    if rule == "check_error_channel_ceiling":
        from .tracks import track_e
        return track_e.ceiling_params(cfg)
    if rule == "plot_figure":
        f = w["figure"]
        entry = FIGURES.get(f)
        if entry is None:
            raise InputError(f"figure '{f}': unknown, expected one of {sorted(FIGURES)}")
        return {"figure": f, "confidence": cfg["evaluation"]["confidence"], **(entry.params(cfg) if entry.params else {})}
    if rule in ("tabulate", "collect_numbers", "describe_grid", "compile_paper"):
        return {k: v for k, v in w.items()}
    raise InputError(f"rule '{rule}': no parameter block defined")


def jobs(cfg):
    """Every (rule, wildcards) of the full DAG (rules with parameters), for tests and audits."""
    out = [("build_raw_grid", {}), ("convolve_grid", {})]
    for t in sorted(TRACKS.values(), key=lambda t: t.letter):
        out += [(r, {}) for r in t.rules] + (t.extra_jobs(cfg) if t.extra_jobs else [])
    for s in SPLITS:
        out.append(("describe_dataset" if cfg["datasets"][s].get("path") else "simulate_dataset", {"split": s}))
    cells = {c for name in cfg["experiments"] for c in experiment_cells(cfg["experiments"][name])}
    cells |= {(e, noise_tag(cfg["noise"]["noise_level"]), int(cfg["datasets"]["train"]["n"]), 0)
              for e in cfg["figure"]["estimators"]}
    for e, tag, n, s in sorted(cells):
        out.append(("run_neural_cell" if is_neural(cfg, e) else "run_cell",
                    {"estimator": e, "noise": tag, "size": n, "seed": s}))
    out += [("aggregate_experiment", {"experiment": x}) for x in cfg["experiments"]]
    out += [("plot_figure", {"figure": f}) for f in FIGURE_TRACKS]
    return out


