"""Every path the workflow writes, named once, and the functions that make a configuration's paths.

The lowest layer of the workflow's contract (:mod:`pfslogg.workflow` builds the rules' parameter
blocks on it, :mod:`pfslogg.tracks` the figures, tables and targets of each track): rules name
these constants, never a path of their own.
"""

from .experiments import compare_pairs  # noqa: F401  (for the tracks)
from .experiments import compared_cells, experiment_cells, noise_tag

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
BAYES_AT = "results/track_c/bayes_nl{noise}.json"    # the Bayes ceiling at another noise level than the default
BAYES_AT_PER_SPECTRUM = "results/track_c/bayes_nl{noise}_per_spectrum.csv"
CALIBRATION = "results/track_c/ceiling_calibration.json"
CRLB_VALIDATION = "results/track_c/crlb_validation.json"
SNR_SWEEP = "results/track_c/snr_sweep.json"
EFFICIENCY = "results/track_c/efficiency.json"
ATTENTION = "results/track_a/attention.json"
MOE = "results/track_b/mixtures.json"                # Track B: routings, oracle-gain retention, bins
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


def comparison_prediction_paths(cfg, experiment):
    """The predictions tables the comparisons of an experiment read (its ``compare``, paired on the test
    spectra): those of :func:`pfslogg.experiments.compared_cells`, in that order."""
    return [CELL_PREDICTIONS.format(estimator=e, noise=tag, size=n, seed=s)
            for e, tag, n, s in compared_cells(cfg["experiments"][experiment], cfg["noise"]["noise_level"])]


def aggregate_inputs(cfg, experiment):
    """Inputs of rule aggregate_experiment: the experiment's cells, the predictions tables its comparisons
    read (:func:`comparison_prediction_paths`), then the Bayes ceiling where its power laws are bounded by
    it (:func:`bounds_scaling`)."""
    return (experiment_cell_paths(cfg, experiment) + comparison_prediction_paths(cfg, experiment)
            + ([BAYES] if bounds_scaling(cfg, experiment) else []))


def figure_cells(cfg):
    """The cells drawn in figures/r2_vs_snr.pdf: each figure estimator at the default noise level,
    trained on the whole training set, seed 0."""
    return [cell_path(e, cfg["noise"]["noise_level"], cfg["datasets"]["train"]["n"], 0)
            for e in cfg["figure"]["estimators"]]


def attention_model(cfg):
    """The model folder whose attention is mapped: config attention.estimator, default noise level,
    whole training set, seed 0 (the cell drawn in figures/r2_vs_snr.pdf when it is listed there)."""
    return cell_path(cfg["attention"]["estimator"], cfg["noise"]["noise_level"], cfg["datasets"]["train"]["n"], 0,
                     template=MODEL)


def efficiency_cells(cfg):
    """Every cell at the default noise level and the full training size, all seeds, of every
    experiment (and the figure's cells, and the per-star sigma check's where it trains at that size):
    the models compared with the ceilings on the same test set. Variants whose class repeats its upstream
    model's point estimates (``upstream_means``: the conformal rescalings) are left out: a row the
    comparison has already."""
    from .estimators import REGISTRY

    level, n = noise_tag(cfg["noise"]["noise_level"]), int(cfg["datasets"]["train"]["n"])
    cells = {c for x in cfg["experiments"].values() for c in experiment_cells(x) if c[1] == level and c[2] == n}
    cells |= {(e, level, n, 0) for e in cfg["figure"]["estimators"]}
    unc = cfg.get("uncertainty") or {}
    if int(unc.get("size", -1)) == n:
        cells |= {(e, level, n, 0) for e in unc.get("estimators", [])
                  if not getattr(REGISTRY.get(cfg["estimators"][e]["class"]), "upstream_means", False)}
    return [CELL.format(estimator=e, noise=t, size=m, seed=s) for e, t, m, s in sorted(cells)]


def bayes_paths(cfg, noise_level):
    """(results JSON, per-spectrum CSV) of the Bayes ceiling of the test set at ``noise_level``: the
    default level's files, or those of the rule that computes it at another level."""
    if float(noise_level) == float(cfg["noise"]["noise_level"]):
        return BAYES, BAYES_PER_SPECTRUM
    tag = noise_tag(noise_level)
    return BAYES_AT.format(noise=tag), BAYES_AT_PER_SPECTRUM.format(noise=tag)
