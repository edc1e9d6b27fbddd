"""The contract between the Snakemake rules and the commands: paths, parameter blocks, cells.

Every path the workflow writes is named once here (``rules/*.smk`` use these constants), and
every rule's parameter block -- the one JSON object passed as ``--params`` and recorded in
Snakemake's metadata and in each results JSON -- is built by :func:`rule_params`, the single
place where the keys that the commands of :mod:`pfslogg.cli` read are made. Tests check both
sides against each other without Snakemake.
"""

from .config import TRACK_A_EXPERIMENTS, TRACK_F_EXPERIMENTS, noise_seed, split_seed  # the tracks read these
from .errors import InputError
from .experiments import cell_seed, experiment_cells, noise_tag, parse_noise_tag

SPLITS = ("train", "val", "test")

# -- paths ------------------------------------------------------------------------------------
RAW_GRID = "data/grid/raw.h5"
INSTRUMENT_GRID = "data/grid/instrument.h5"
DATASET = "data/datasets/{split}.h5"
DATASET_SUMMARY = "results/data/{split}.json"
GRID_SUMMARY = "results/data/grid.json"
CELL_NAME = "{estimator}/nl{noise}_n{size}_s{seed}"
MODEL = f"models/{CELL_NAME}"
CELL = f"results/cells/{CELL_NAME}.json"
CELL_PREDICTIONS = f"results/cells/{CELL_NAME}.csv"
CELL_LOG = f"logs/run_cell/{CELL_NAME}.log"
CELL_BENCHMARK = f"benchmarks/run_cell/{CELL_NAME}.tsv"
CHECKPOINT = f"checkpoints/{CELL_NAME}"   # a neural cell's training checkpoint (removed when it finishes)
AGGREGATE = "results/track_{track}/{experiment}.json"
AGGREGATE_TABLE = "results/track_{track}/{experiment}.csv"
FISHER = "results/track_c/fisher.json"
FISHER_PER_SPECTRUM = "results/track_c/fisher_per_spectrum.csv"
BAYES = "results/track_c/bayes.json"
BAYES_PER_SPECTRUM = "results/track_c/bayes_per_spectrum.csv"
CALIBRATION = "results/track_c/ceiling_calibration.json"
CRLB_VALIDATION = "results/track_c/crlb_validation.json"
SNR_SWEEP = "results/track_c/snr_sweep.json"
EFFICIENCY = "results/track_c/efficiency.json"
ATTENTION = "results/track_a/attention.json"
FIGURE = "figures/{figure}.pdf"
FIGURE_SIDECAR = "figures/{figure}.pdf.json"
TABLE = "paper/generated/tables/{table}.tex"
NUMBERS = "paper/generated/{doc}/numbers.tex"
NUMBERS_INDEX = "paper/generated/{doc}/numbers.json"
PDF = "paper/build/{doc}.pdf"
PAPER_DOCS = ("main",) + tuple(f"track_{t}" for t in "abcdef")


def dataset_path(cfg, split):
    """A split's data set: the configured existing file (datasets.<split>.path) or the simulated one."""
    return cfg["datasets"][split].get("path") or DATASET.format(split=split)


def external_splits(cfg):
    return [s for s in SPLITS if cfg["datasets"][s].get("path")]


def aggregate_path(cfg, experiment, table=False):
    track = cfg["experiments"][experiment]["track"]
    return (AGGREGATE_TABLE if table else AGGREGATE).format(track=track, experiment=experiment)


def cell_path(estimator, noise_level, size, seed, template=CELL):
    return template.format(estimator=estimator, noise=noise_tag(noise_level), size=int(size), seed=int(seed))


def experiment_cell_paths(cfg, experiment, template=CELL):
    return [template.format(estimator=e, noise=tag, size=n, seed=s)
            for e, tag, n, s in experiment_cells(cfg["experiments"][experiment])]


def bounds_scaling(cfg, experiment):
    """Whether an experiment's power laws are bounded by the Bayes ceiling: a scaling experiment
    (one with a ``reference``) run at the default noise level, the level of results/track_c/bayes.json."""
    spec = cfg["experiments"][experiment]
    return bool(spec.get("reference")) and float(cfg["noise"]["noise_level"]) in map(float, spec["noise_levels"])


def aggregate_inputs(cfg, experiment):
    """Inputs of rule aggregate_experiment: the experiment's cells, then the Bayes ceiling where its
    power laws are bounded by it (:func:`bounds_scaling`)."""
    return experiment_cell_paths(cfg, experiment) + ([BAYES] if bounds_scaling(cfg, experiment) else [])


def figure_cells(cfg):
    """The cells drawn in figures/r2_vs_snr.pdf: each figure estimator at the default noise level,
    trained on the whole training set, seed 0."""
    return [cell_path(e, cfg["noise"]["noise_level"], cfg["datasets"]["train"]["n"], 0)
            for e in cfg["figure"]["estimators"]]


def is_neural(cfg, estimator):
    """Whether a variant's class is a neural estimator (trained by pfslogg.nn.engine)."""
    from .estimators import REGISTRY
    from .estimators.neural import NeuralEstimator

    cls = REGISTRY.get(cfg["estimators"][estimator]["class"])
    return cls is not None and issubclass(cls, NeuralEstimator)


def estimator_pattern(cfg, neural):
    """Wildcard regex of the variants whose class is (or is not) neural: which of run_cell and
    run_neural_cell makes a cell (a pattern that matches nothing when there are none)."""
    import re

    names = [re.escape(e) for e in cfg["estimators"] if is_neural(cfg, e) == neural]
    return "|".join(names) if names else "(?!x)x"


def attention_model(cfg):
    """The model folder whose attention is mapped: config attention.estimator, default noise level,
    whole training set, seed 0 (the cell drawn in figures/r2_vs_snr.pdf when it is listed there)."""
    return cell_path(cfg["attention"]["estimator"], cfg["noise"]["noise_level"], cfg["datasets"]["train"]["n"], 0,
                     template=MODEL)


def efficiency_cells(cfg):
    """Every cell at the default noise level and the full training size, all seeds, of every
    experiment (and the figure's cells): the models compared with the ceilings on the same test set."""
    level, n = noise_tag(cfg["noise"]["noise_level"]), int(cfg["datasets"]["train"]["n"])
    cells = {c for x in cfg["experiments"].values() for c in experiment_cells(x) if c[1] == level and c[2] == n}
    cells |= {(e, level, n, 0) for e in cfg["figure"]["estimators"]}
    return [CELL.format(estimator=e, noise=t, size=m, seed=s) for e, t, m, s in sorted(cells)]


# -- figures and tables: what each reads ---------------------------------------------------------
def figure_inputs(cfg, figure):
    if figure == "r2_vs_snr":
        return figure_cells(cfg) + [BAYES, FISHER]
    if figure == "ceiling_calibration":
        return [CALIBRATION]
    if figure in ("crlb_cell_position", "crlb_step_size"):
        return [CRLB_VALIDATION]
    if figure == "ceilings_vs_snr":
        return [SNR_SWEEP]
    if figure == "crlb_distribution":
        return [FISHER, BAYES]
    if figure == "efficiency":
        return [EFFICIENCY]
    if figure in ("scaling_law", "training_curves"):
        return [aggregate_path(cfg, "scaling")]
    if figure == "ablations":
        return [aggregate_path(cfg, "ablations")]
    if figure == "attention_maps":
        return [ATTENTION]
    if figure == "lightgbm_sensitivity":
        return [aggregate_path(cfg, "sensitivity")]
    if figure in ("r2_vs_size", "r2_vs_noise", "decision", "ridge_alpha", "pca_components"):
        return [aggregate_path(cfg, "benchmark")]
    raise InputError(f"figure '{figure}': unknown, expected one of {sorted(FIGURE_TRACKS)}")


FIGURE_TRACKS = {"r2_vs_snr": "f", "ceiling_calibration": "c", "r2_vs_size": "f", "r2_vs_noise": "f",
                 "decision": "f", "ridge_alpha": "f", "pca_components": "f", "lightgbm_sensitivity": "f",
                 "crlb_cell_position": "c", "crlb_step_size": "c", "ceilings_vs_snr": "c", "crlb_distribution": "c",
                 "efficiency": "c", "scaling_law": "a", "training_curves": "a", "ablations": "a",
                 "attention_maps": "a"}


def table_inputs(cfg, table):
    if table == "datasets":
        return [DATASET_SUMMARY.format(split=s) for s in SPLITS]
    if table in ("ceiling",):
        return [FISHER]
    if table == "calibration":
        return [CALIBRATION]
    if table == "crlb_validation":
        return [CRLB_VALIDATION]
    if table == "snr_sweep":
        return [SNR_SWEEP]
    if table == "efficiency_by_snr":
        return [EFFICIENCY]
    if table == "scaling":
        return [aggregate_path(cfg, "scaling")]
    if table == "ablations":
        return [aggregate_path(cfg, "ablations")]
    if table == "r2_by_snr":
        return figure_cells(cfg) + [BAYES, FISHER]
    if table in ("leaderboard", "errors"):
        return [aggregate_path(cfg, "benchmark")]
    raise InputError(f"table '{table}': unknown")


TRACK_A_TABLES = ("scaling", "ablations")
TABLES = ("datasets", "ceiling", "calibration", "r2_by_snr", "leaderboard", "errors", "crlb_validation", "snr_sweep",
          "efficiency_by_snr") + TRACK_A_TABLES


def doc_results(cfg, doc):
    """Results JSONs whose numbers the text of ``doc`` prints (its tables add their own)."""
    data = [DATASET_SUMMARY.format(split=s) for s in SPLITS] + [GRID_SUMMARY]
    track_c = data + [BAYES, FISHER, CALIBRATION, CRLB_VALIDATION, SNR_SWEEP, EFFICIENCY]
    track_f = data + figure_cells(cfg) + [FISHER] + [aggregate_path(cfg, e) for e in TRACK_F_EXPERIMENTS]
    track_a = data + figure_cells(cfg) + [BAYES, FISHER] + [aggregate_path(cfg, e) for e in TRACK_A_EXPERIMENTS] + [ATTENTION]
    own = {"main": track_a + track_c + track_f, "track_c": track_c, "track_f": track_f, "track_a": track_a}
    return list(dict.fromkeys(own.get(doc, [])))


# -- parameter blocks ----------------------------------------------------------------------------
def _variant(cfg, name):
    v = cfg["estimators"].get(name)
    if v is None:
        raise InputError(f"estimators.{name}: not configured")
    return v


def _stored_noise(cfg):
    """The exposure model without noise.noise_level: data sets are stored at noise level 1 and the
    calibration works at fixed SNR, so the default noise level must not rerun them."""
    return {k: v for k, v in cfg["noise"].items() if k != "noise_level"}


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
                "test_noise_seed": noise_seed(cfg, "test"), "params": cfg["params"],
                "evaluation": cfg["evaluation"]}
    if rule == "run_neural_cell":
        return {**rule_params("run_cell", cfg, **w),
                "checkpoint": CHECKPOINT.format(estimator=w["estimator"], noise=w["noise"], size=int(w["size"]),
                                                seed=int(w["seed"]))}
    if rule == "aggregate_experiment":
        return {"experiment": w["experiment"], "spec": cfg["experiments"][w["experiment"]],
                "confidence": cfg["evaluation"]["confidence"], "bootstrap": cfg["evaluation"]["bootstrap"],
                "default_noise_level": cfg["noise"]["noise_level"],
                "bayes_bound": bounds_scaling(cfg, w["experiment"])}
    if rule == "compute_fisher_ceiling":
        return {"params": cfg["params"], "noise_level": cfg["noise"]["noise_level"],
                "evaluation": cfg["evaluation"]}
    if rule == "compute_bayes_ceiling":
        return {"params": cfg["params"], "noise_level": cfg["noise"]["noise_level"],
                "test_noise_seed": noise_seed(cfg, "test"), "evaluation": cfg["evaluation"], "bayes": cfg["bayes"]}
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
    if rule == "plot_figure":
        f = w["figure"]
        if f == "r2_vs_snr":
            return {"figure": f, "estimators": cfg["figure"]["estimators"],
                    "snr_bins": cfg["evaluation"]["snr_bins"], "confidence": cfg["evaluation"]["confidence"]}
        if f == "scaling_law":
            ref = cfg["experiments"]["scaling"].get("reference")
            return {"figure": f, "confidence": cfg["evaluation"]["confidence"], "reference": [ref] if ref else [],
                    "estimators": [e for e in cfg["experiments"]["scaling"]["estimators"] if e != ref]}
        return {"figure": f, "confidence": cfg["evaluation"]["confidence"]}
    if rule in ("tabulate", "collect_numbers", "describe_grid", "compile_paper"):
        return {k: v for k, v in w.items()}
    raise InputError(f"rule '{rule}': no parameter block defined")


def jobs(cfg):
    """Every (rule, wildcards) of the full DAG (rules with parameters), for tests and audits."""
    out = [("build_raw_grid", {}), ("convolve_grid", {}), ("compute_fisher_ceiling", {}), ("compute_bayes_ceiling", {}),
           ("calibrate_ceiling", {}), ("compute_crlb_validation", {}), ("compute_snr_sweep", {}), ("check_ceiling", {}),
           ("compute_attention_maps", {})]
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


# -- captions of the HTML report (snakemake --report), one per figure and table --------------------
CAPTIONS = {
    "r2_vs_snr": "held-out R2 of each estimator per SNR bin (bootstrap bands) under the Bayes ceiling, with the "
                 "Fisher/CRLB band (median of per-spectrum bounds) beside it.",
    "ceiling_calibration": "median Fisher R2_max of the embedded model against the original study's values.",
    "r2_vs_size": "R2 against training-set size per estimator, one panel per noise level (intervals over seeds).",
    "r2_vs_noise": "R2 against noise level at the largest training size, per estimator.",
    "decision": "which estimator for which noise level and training size (best mean R2; ties marked).",
    "ridge_alpha": "Ridge: the alpha chosen on validation against noise level, and validation R2 against alpha.",
    "pca_components": "PCA + Ridge: validation R2 against the number of principal components.",
    "lightgbm_sensitivity": "LightGBM: validation R2 over learning rate x number of leaves.",
    "crlb_cell_position": "the CRLB along log g through grid cells for the cubic and the multilinear interpolant, "
                          "and maximum-likelihood variances against it.",
    "crlb_step_size": "finite-difference CRLB over the exact one against the step (fraction of the grid step).",
    "ceilings_vs_snr": "3D/4D CRLB ceilings (median, 10-90 %), the Bayes ceiling, sigma_min and the Schur decay "
                       "over a sweep of magnitudes.",
    "crlb_distribution": "distribution of the per-spectrum sigma_min = sqrt(CRLB) of the test set, per SNR bin.",
    "efficiency": "model efficiency R2_model / R2_ceiling per SNR bin and estimator, for both ceilings.",
    "crlb_validation": "maximum-likelihood variance over the CRLB at cell centres and next to log g nodes.",
    "snr_sweep": "ceilings over the magnitude sweep: SNR, R2_max (3D, 4D), mean-CRLB R2, R2_Bayes, Schur decay.",
    "efficiency_by_snr": "efficiency of each estimator against the Bayes ceiling per SNR bin.",
    "scaling_law": "Track A: R2 against training-set size with the fitted power law and its extrapolation.",
    "training_curves": "Track A: training and validation loss, validation R2 and learning rate per epoch.",
    "ablations": "Track A: R2 of the ViT and CNN variants (patch, tokenizer, position, loss, kernels) and MLPs.",
    "attention_maps": "Track A: ViT attention and gradient saliency against wavelength, with the Fisher "
                      "information on log g and the known lines.",
    "scaling": "Track A: R2 per training size, the fitted power law and its extrapolations.",
    "datasets": "size, magnitudes and SNR distribution of the training, validation and test sets.",
    "ceiling": "the Fisher ceiling per SNR bin of the test set.",
    "calibration": "the Fisher ceiling at the original study's SNR points, beside its values.",
    "r2_by_snr": "R2 per estimator and SNR bin at the default noise level, with the Bayes and Fisher ceilings.",
    "leaderboard": "R2 of every estimator across noise levels and training sizes, with intervals over seeds.",
    "errors": "R2, RMSE, MAE, bias and slope of every estimator at the default noise level and the largest size.",
}
