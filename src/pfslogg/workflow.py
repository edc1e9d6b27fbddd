"""The contract between the Snakemake rules and the commands: paths, parameter blocks, cells, targets.

Every path the workflow writes is named once (:mod:`pfslogg.paths`, re-exported here for the rule
files), every rule's parameter block -- the one JSON object passed as ``--params`` and recorded in
Snakemake's metadata and in each results JSON -- is built by :func:`rule_params`, the single
place where the keys that the commands of :mod:`pfslogg.cli` read are made, and what each figure,
table, document and track target reads comes from the one registry of :mod:`pfslogg.tracks`.
Tests check both sides against each other without Snakemake.
"""

from .config import noise_seed, simulator_stars, split_seed, train_source
from .errors import InputError
from .experiments import cell_seed, experiment_cells, noise_tag, parse_noise_tag
from .paths import *  # noqa: F401,F403  (the rule files read every path as W.<NAME>)
from .paths import (CHECKPOINT, FIGURE, INSTRUMENT_GRID, MODEL, PDF, SPLITS, TABLE, bayes_paths, bounds_scaling,
                    dataset_path)
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


def cell_priority(cfg, estimator):
    """Scheduling priority of a network's cell (run_neural_cell's ``priority``): 1, so networks -- the longest
    one-thread jobs -- start before the in-memory cells (priority 0); a cell that needs more threads gets one
    more than the threads it needs, more than the summed priorities of the one-thread cells that would fill its
    cores. Snakemake's scheduler ranks a set of jobs by the sum of their priorities first and never holds a
    core idle for a larger job, so without this the denoisers (2 threads) waited until the last one-thread cell
    was done and ran alone at the end of a paper run, their dependants after them. A transform (a denoiser:
    other cells and the posterior-sample check build on it) gets 2 on one thread, so that it starts before the
    one-thread networks all the same."""
    threads = cell_threads(cfg, estimator)
    if threads > 1:
        return threads + 1
    cls, _ = _variant_class(cfg, estimator)
    return 2 if getattr(cls, "kind", None) == "transform" else 1


def estimator_pattern(cfg, neural):
    """Wildcard regex of the variants whose cells run (or do not run) in the GPU rule: which of
    run_cell and run_neural_cell makes a cell (a pattern that matches nothing when there are none)."""
    import re

    names = [re.escape(e) for e in cfg["estimators"] if is_neural(cfg, e) == neural]
    return "|".join(names) if names else "(?!x)x"


def upstream_cells(cfg, estimator, noise, size):
    """``{role: (variant, noise tag, size, seed)}``: the cells whose fitted models a cell of ``estimator``
    at noise tag ``noise`` and training size ``size`` builds on (estimators.<estimator>.upstream: the
    upstream variant at the cell's noise level and size, seed 0, unless the config names others). One
    upstream cell serves every downstream cell that names it: it is trained once."""
    from .config import upstream_specs

    out = {}
    for role, spec in upstream_specs(cfg, estimator).items():
        tag = str(noise) if spec["noise_level"] is None else noise_tag(spec["noise_level"])
        n = int(size) if spec["size"] is None else \
            int(cfg["datasets"]["train"]["n"]) if spec["size"] == "all" else int(spec["size"])
        out[role] = (spec["variant"], tag, n, int(spec["seed"]))
    return out


def upstream_models(cfg, estimator, noise, size):
    """``{role: model folder}`` of a cell's upstream models (inputs of its job; :func:`upstream_cells`)."""
    return {role: MODEL.format(estimator=v, noise=t, size=n, seed=s)
            for role, (v, t, n, s) in upstream_cells(cfg, estimator, noise, size).items()}


def with_upstream(cfg, cells):
    """``cells`` (estimator, noise tag, size, seed) and, recursively, every cell they build on."""
    out, todo = set(), list(cells)
    while todo:
        c = todo.pop()
        if c in out:
            continue
        out.add(c)
        todo += list(upstream_cells(cfg, c[0], c[1], c[2]).values())
    return out


# The patterns of the wildcards whose values have a fixed form (rules/common.smk's wildcard_constraints;
# pfslogg.profiling reads jobs back from their file paths with them).
WILDCARD_PATTERNS = {"noise": r"\d+(?:p\d+)?", "size": r"\d+", "seed": r"\d+", "track": "[a-f]"}

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


def _label_params(cfg, estimator):
    """``{"label": words}`` of a variant that names itself (estimators.<name>.label), else nothing: the
    cells of the others keep their parameter block."""
    label = _variant(cfg, estimator).get("label")
    return {"label": str(label)} if label else {}


def _train_source_params(cfg, estimator):
    """``{"train_source": "simulator", "simulator": {"seed", "noise", "chunk_size"}}`` of a cell of a variant
    that trains on the simulator (:func:`pfslogg.data.simview.simulator_settings` with the stars' own seed,
    ``split_seed(cfg, "simulator")``, or ``split_seed(cfg, "calibration")`` for a class that only calibrates on
    them (:func:`pfslogg.config.simulator_stars`), and the variant's ``train_mag`` as noise.mag when it has one), else
    nothing: the cells of variants that train on the file keep the parameter block -- and Snakemake's
    rerun trigger -- they had before the key existed."""
    if train_source(cfg, estimator) != "simulator":
        return {}
    from .data.simview import simulator_settings

    settings = simulator_settings(cfg, "train", seed=split_seed(cfg, simulator_stars(cfg, estimator)))
    mag = _variant(cfg, estimator).get("train_mag")
    if mag is not None:   # the variant's own magnitudes (e.g. the test set's)
        settings["noise"]["mag"] = [float(v) for v in mag]
    return {"train_source": "simulator", "simulator": settings}


def train_input(cfg, estimator):
    """The file a cell of ``estimator`` trains from (input ``train`` of rules run_cell and
    run_neural_cell, passed as ``--train``): the training data set, or the instrument grid for a variant
    with ``train_source: simulator`` (its spectra are simulated from the grid when read; no data set file
    behind them, so the training set is no input of its cells)."""
    if train_source(cfg, estimator) == "simulator":
        return INSTRUMENT_GRID
    return dataset_path(cfg, "train")


def _stored_noise(cfg):
    """The exposure model without noise.noise_level and noise.sigma: data sets are stored at noise
    level 1 with their sigma and the calibration works at fixed SNR, so neither the default noise level
    nor which sigma views give models must rerun them."""
    return {k: v for k, v in cfg["noise"].items() if k not in ("noise_level", "sigma")}


def _upstream_params(cfg, estimator, noise, size):
    """``{"upstream": {role: model folder}}`` of a cell with upstream models, else nothing (a key that is
    absent leaves every other cell's parameters -- and Snakemake's rerun trigger -- as they were)."""
    ups = upstream_models(cfg, estimator, noise, size)
    return {"upstream": ups} if ups else {}


def _transform_params(cfg, estimator):
    """``{"denoising": ...}`` of a transform's cell (how rule run_cell scores a denoiser), else nothing."""
    if not is_transform(cfg, estimator):
        return {}
    d = cfg["denoising"]
    return {"denoising": {k: d[k] for k in ("sigma_floor", "examples")}}


def is_transform(cfg, estimator):
    """Whether a variant is a transform (a denoiser: scored by wMAE, not R^2)."""
    cls, _ = _variant_class(cfg, estimator)
    return cls is not None and cls.kind == "transform"


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
                "params": cfg["params"], "evaluation": cfg["evaluation"],
                **_upstream_params(cfg, w["estimator"], str(w["noise"]), int(w["size"])),
                **_transform_params(cfg, w["estimator"]), **_train_source_params(cfg, w["estimator"]),
                **_label_params(cfg, w["estimator"])}
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
        return {"noise_level": cfg["noise"]["noise_level"], "size": int(cfg["datasets"]["train"]["n"]),
                "target": dict(cfg["ceiling"]["target"])}
    for t in TRACKS.values():   # the rules a track brings, with their parameter blocks (tracks.registry)
        if rule in t.params:
            return t.params[rule](cfg)
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
    cells |= {c for t in TRACKS.values() for c in t.cells(cfg)}
    for e, tag, n, s in sorted(with_upstream(cfg, cells)):
        out.append(("run_neural_cell" if is_neural(cfg, e) else "run_cell",
                    {"estimator": e, "noise": tag, "size": n, "seed": s}))
    out += [("aggregate_experiment", {"experiment": x}) for x in cfg["experiments"]]
    out += [("plot_figure", {"figure": f}) for f in FIGURE_TRACKS]
    return out


