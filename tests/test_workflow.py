"""The contract between the Snakemake rules and the commands (pfslogg.workflow), without Snakemake.

(a) every path the workflow writes is a relative constant of pfslogg.workflow, and the rule files
    name no results/data/models/figures path themselves;
(b) the parameter block of rule run_cell has exactly the keys that the command reads;
(c) every configuration key documented in config/schema.yaml reaches the parameter block of at
    least one job (or changes the set of jobs): a key that reaches nothing is a key the pipeline
    silently ignores;
(d) editing an experiment grid (noise levels, sizes) or the default noise level never changes a
    data-set rule (the data sets are stored at noise level 1; levels and sizes are views).
"""

import copy
import inspect
import io
import json
import os
import re
import tokenize
from pathlib import Path

import jsonschema
import pytest
import yaml

from pfslogg import workflow as W
from pfslogg.config import SCHEMA as SCHEMA_PATH, load_config
from pfslogg.estimators import REGISTRY
from pfslogg.experiments import experiment_cells, noise_tag, parse_noise_tag, run_cell

from conftest import TINY_RANGES, simulate_splits

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONFIG)


def snapshot(cfg):
    """{(rule, wildcards as JSON): parameter block as JSON} over every job of the DAG."""
    out = {}
    for rule, w in W.jobs(cfg):
        key = (rule, json.dumps(w, sort_keys=True))
        assert key not in out, key
        out[key] = json.dumps(W.rule_params(rule, cfg, **w), sort_keys=True, default=str)
    return out


# -- (a) paths -----------------------------------------------------------------------------------
PATH_ROOTS = {"data", "results", "models", "figures", "paper", "logs", "benchmarks", "checkpoints"}


def _path_constants():
    return {k: v for k, v in vars(W).items() if k.isupper() and isinstance(v, str) and "/" in v}


def _check_relative(path, what):
    assert not os.path.isabs(path) and not path.startswith("~"), f"{what} = {path!r} is absolute"
    parts = Path(path).parts
    assert ".." not in parts, f"{what} = {path!r} leaves the working directory"
    assert parts[0] in PATH_ROOTS, f"{what} = {path!r} is outside {sorted(PATH_ROOTS)}"


def test_path_constants_are_relative():
    consts = _path_constants()
    assert {"RAW_GRID", "INSTRUMENT_GRID", "DATASET", "MODEL", "CELL", "AGGREGATE", "FIGURE", "FISHER"} <= set(consts)
    for name, path in consts.items():
        if name == "CELL_NAME":
            assert not os.path.isabs(path)
            continue
        _check_relative(path, f"pfslogg.workflow.{name}")


def test_paths_from_the_config_are_relative(cfg):
    paths = [W.dataset_path(cfg, s) for s in W.SPLITS]
    paths += [W.aggregate_path(cfg, e, table=t) for e in cfg["experiments"] for t in (False, True)]
    paths += [p for e in cfg["experiments"] for p in W.experiment_cell_paths(cfg, e)]
    paths += [p for f in W.FIGURE_TRACKS for p in W.figure_inputs(cfg, f)]
    paths += [p for t in W.TABLES for p in W.table_inputs(cfg, t)]
    paths += [p for d in W.PAPER_DOCS for p in W.doc_results(cfg, d)]
    for p in paths:
        _check_relative(p, "path")


HARD_CODED = re.compile(r"(?<![\w./-])(results|data|models|figures)/")


def hard_coded_paths(text):
    """(line, string) of every string literal in Snakemake code that names a results/data/models/
    figures path, except log and benchmark files and the docstrings of rules (comments skipped)."""
    toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL)]
    out = []
    for i, t in enumerate(toks):
        if t.type != tokenize.STRING:
            continue
        docstring = (i >= 5 and toks[i - 1].type == tokenize.INDENT and toks[i - 2].type == tokenize.NEWLINE
                     and toks[i - 3].string == ":" and toks[i - 5].string in ("rule", "checkpoint"))
        body = re.sub(r"^[a-zA-Z]*", "", t.string)
        if docstring or body.strip("\"'").startswith(("logs/", "benchmarks/")):
            continue
        if HARD_CODED.search(body):
            out.append((t.start[0], t.string))
    return out


def test_hard_coded_path_finder_finds_them():
    text = ('rule x:\n    """Writes results/x.json."""\n    output:\n        "results/x.json",\n'
            '    log:\n        "logs/x.log",\n    shell:\n        "cmd --out figures/a.pdf > {log}"\n'
            '# a comment about data/grid.h5\nY = f"models/{name}"\nZ = W.CELL\n')
    assert [line for line, _ in hard_coded_paths(text)] == [4, 8, 10]


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in
                                        [*ROOT.glob("rules/*.smk"), ROOT / "Snakefile"]))
def test_rule_files_take_paths_from_the_workflow_module(path):
    found = hard_coded_paths((ROOT / path).read_text())
    assert not found, f"{path}: hard-coded paths (use pfslogg.workflow constants W.*): {found}"


# -- (b) the run_cell parameter block --------------------------------------------------------------
class Recorder(dict):
    """A dict that records which keys are read."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.read = set()

    def __getitem__(self, k):
        self.read.add(k)
        return super().__getitem__(k)

    def get(self, k, default=None):
        self.read.add(k)
        return super().get(k, default)


@pytest.fixture(scope="module")
def small_sets(coarse_instrument_grid, tmp_path_factory):
    out = simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("wf"),
                          (("train", 400, 1), ("val", 100, 2), ("test", 100, 3)))
    return out


def test_run_cell_params_are_what_the_command_reads(cfg, small_sets, coarse_instrument_grid, tmp_path):
    """Run the cell of rule_params("run_cell") (config/config.yaml, wildcards as Snakemake passes
    them: strings) through pfslogg.experiments.run_cell, which is what `pfslogg run-cell` calls:
    every key it reads is in the block, and every key of the block is read."""
    assert cfg["params"] == TINY_RANGES                     # the small data sets share the config's prior
    p = W.rule_params("run_cell", cfg, estimator="ridge", noise="0p5", size="300", seed="1")
    rec = Recorder(p)
    rec["evaluation"] = ev = Recorder(p["evaluation"])
    rec.read.clear()
    metrics, details, pred = run_cell(rec, small_sets["train"], small_sets["val"], small_sets["test"],
                                      str(coarse_instrument_grid), tmp_path / "model", threads=1)
    assert rec.read == set(p), f"never read: {set(p) - rec.read}"
    assert ev.read == set(cfg["evaluation"]), f"evaluation keys never read: {set(cfg['evaluation']) - ev.read}"
    # what the block says is what was done
    assert metrics["estimator"] == "ridge" and metrics["class"] == "ridge" and metrics["label"] == "Ridge"
    assert metrics["noise_level"] == 0.5 and metrics["size"] == 300 and metrics["seed"] == 1
    assert metrics["sigma"] == cfg["noise"]["sigma"] == "estimated"
    assert metrics["confidence"] == cfg["evaluation"]["confidence"] and metrics["n_test"] == 100
    assert metrics["var_prior"] == pytest.approx(4 / 3)
    edges = cfg["evaluation"]["snr_bins"]
    assert metrics["snr_bins"] and all((b["lo"], b["hi"]) in zip(edges, edges[1:]) for b in metrics["snr_bins"])
    assert details["fitted"]["alpha"] in cfg["estimators"]["ridge"]["hyper"]["alphas"]
    assert details["fitted"]["search"]["alpha"] == cfg["estimators"]["ridge"]["hyper"]["alphas"]
    assert len(pred["log_g_pred"]) == 100 and (tmp_path / "model" / "estimator.json").is_file()


def test_run_cell_params_keys(cfg):
    p = W.rule_params("run_cell", cfg, estimator="lightgbm_search", noise="0p2", size="2000", seed="0")
    assert set(p) == {"estimator", "class", "hyper", "noise_level", "size", "seed_index", "seed",
                      "val_noise_seed", "test_noise_seed", "sigma", "params", "evaluation"}
    assert p["class"] == "lightgbm" and p["hyper"] == cfg["estimators"]["lightgbm_search"]["hyper"]
    assert p["size"] == 2000 and p["seed_index"] == 0 and isinstance(p["seed"], int)
    assert p["val_noise_seed"] != p["test_noise_seed"]
    assert json.loads(json.dumps(p)) == p                   # passed to the command as JSON
    # the cell's seed is the same for every estimator, noise level and size (paired comparisons)
    q = W.rule_params("run_cell", cfg, estimator="ridge", noise="2", size="6000", seed="0")
    assert q["seed"] == p["seed"] and q["val_noise_seed"] == p["val_noise_seed"]
    assert W.rule_params("run_cell", cfg, estimator="ridge", noise="2", size="6000", seed="1")["seed"] != p["seed"]


def test_run_cell_noise_level_parses_back_from_the_tag(cfg):
    levels = {cfg["noise"]["noise_level"]} | {v for e in cfg["experiments"].values() for v in e["noise_levels"]}
    for rule, w in W.jobs(cfg):
        if rule == "run_cell":
            assert W.rule_params(rule, cfg, **w)["noise_level"] in levels
    for nl in levels:
        p = W.rule_params("run_cell", cfg, estimator="ridge", noise=noise_tag(nl), size="2000", seed="0")
        assert p["noise_level"] == nl and parse_noise_tag(noise_tag(nl)) == nl
        assert re.fullmatch(r"\d+(p\d+)?", noise_tag(nl))       # the wildcard constraint of rules/common.smk


def test_jobs_hold_every_cell_once(cfg):
    cells = [w for r, w in W.jobs(cfg) if r in ("run_cell", "run_neural_cell")]
    for r, w in W.jobs(cfg):   # neural variants train in run_neural_cell (checkpoint, GPU), the rest in run_cell
        if r in ("run_cell", "run_neural_cell"):
            assert (r == "run_neural_cell") == W.is_neural(cfg, w["estimator"]), (r, w)
    keys = {(w["estimator"], w["noise"], w["size"], w["seed"]) for w in cells}
    assert len(keys) == len(cells)
    for name, exp in cfg["experiments"].items():
        assert set(experiment_cells(exp)) <= keys, name
    # the figure's cells: default noise level, whole training set, seed 0
    for e in cfg["figure"]["estimators"]:
        assert (e, noise_tag(cfg["noise"]["noise_level"]), cfg["datasets"]["train"]["n"], 0) in keys


def test_aggregate_inputs_hold_the_predictions_of_the_compared_cells(cfg):
    """Rule aggregate_experiment pairs each comparison on the test spectra: its inputs are the cells'
    results, then the predictions table of every compared cell (variant and reference, at the default
    and the highest noise level -- every level with compare_at: all --, largest size, every seed) and no other, then the Bayes ceiling where it
    bounds the power laws -- the order the command reads them in."""
    default = cfg["noise"]["noise_level"]
    for name, exp in cfg["experiments"].items():
        inputs = W.aggregate_inputs(cfg, name)
        cells = W.experiment_cell_paths(cfg, name)
        tables = [p for p in inputs if p.endswith(".csv")]
        assert inputs[:len(cells)] == cells and inputs[len(cells):len(cells) + len(tables)] == tables, name
        assert inputs[len(cells) + len(tables):] == ([W.BAYES] if W.bounds_scaling(cfg, name) else []), name
        assert all(t[:-len(".csv")] + ".json" in cells for t in tables), name
        pairs = {v: r for v, r in (exp.get("compare") or {}).items() if r is not None}
        levels = {noise_tag(nl) for nl in exp["noise_levels"]          # compare_at all: every level
                  if exp.get("compare_at") == "all" or nl in (default, max(exp["noise_levels"]))}
        size = max(exp["sizes"])
        expect = {W.CELL_PREDICTIONS.format(estimator=e, noise=t, size=size, seed=s) for v, r in pairs.items()
                  for e in (v, r) for t in levels for s in range(exp["seeds"])}
        assert set(tables) == expect and len(tables) == len(expect), name
    ablations = cfg["experiments"]["ablations"]
    assert len([p for p in W.aggregate_inputs(cfg, "ablations") if p.endswith(".csv")]) == len(
        ablations["estimators"]) * ablations["seeds"]                  # every variant and reference is compared
    assert not any(p.endswith(".csv") for p in W.aggregate_inputs(cfg, "scaling"))   # no compare, no table
    assert W.rule_params("aggregate_experiment", cfg, experiment="ablations")["seed"] == cfg["seed"]


# -- (c) every documented config key reaches a job ----------------------------------------------------
def _resolve(node):
    if "$ref" in node:
        base = dict(SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[-1]])
        base.update({k: v for k, v in node.items() if k != "$ref"})
        return base
    return node


def _get(cfg, path):
    node = cfg
    for k in path:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def documented_keys(cfg):
    """(key path, schema node) of every leaf documented in the schema; maps (additionalProperties)
    are walked over the config's entries, and a map or free object that is empty in the config is
    itself a leaf."""
    out = []

    def walk(node, path):
        node = _resolve(node)
        props = node.get("properties")
        extra = node.get("additionalProperties")
        value = _get(cfg, path)
        if props is None and not isinstance(extra, dict) and node.get("type") != "object":
            out.append((path, node))
            return
        for k, sub in (props or {}).items():
            walk(sub, path + (k,))
        entries = [k for k in (value or {}) if k not in (props or {})]
        if isinstance(extra, dict):
            for k in entries:
                walk(extra, path + (k,))
        elif props is None:                                    # a free object (estimators.<v>.hyper)
            for k in entries:
                out.append((path + (k,), {}))
        if props is None and not entries:
            out.append((path, node))                             # an empty map: itself a leaf

    walk(SCHEMA, ())
    return out


def _other_estimator(cfg, avoid):
    return next(e for e in cfg["estimators"] if e not in avoid)


def _change_value(v):
    """A sensible change of a hyper-parameter value of unknown schema."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, float):
        return v / 2 if v else 0.1
    if isinstance(v, (list, tuple)):
        return list(v[:-1]) if len(v) > 1 else [_change_value(v[0])]
    if isinstance(v, str):
        return v + "_other"
    if isinstance(v, dict) and "class" in v:            # a composite's part: change its hyper-parameters
        hyper = dict(v.get("hyper") or {})
        if hyper:
            key = next(iter(hyper))
            return {**v, "hyper": {**hyper, key: _change_value(hyper[key])}}
        name, par = next((k, q) for k, q in inspect.signature(REGISTRY[v["class"]].__init__).parameters.items()
                         if k not in ("self", "random_state", "bins"))
        return {**v, "hyper": {name: _change_value(par.default)}}
    if isinstance(v, dict) and v:                        # bins, named gates: change the first entry
        key = next(iter(v))
        return {**v, key: _change_value(v[key])}
    if v is None:                                        # compare_gates: null -> one gate to compare
        return {"template": {"class": "gate_template"}}
    raise AssertionError(f"no perturbation for {v!r}")


def perturb(cfg, path, node):
    """A changed value for the key at ``path`` that stays within its schema."""
    v = _get(cfg, path)
    p = path
    if p[0] == "estimators" and p[2:] == ("class",):
        return next(c for c in sorted(REGISTRY) if c != v)
    if p[0] == "estimators" and p[2] == "hyper":
        if len(p) == 4:
            return _change_value(v)
        cls = REGISTRY[_get(cfg, p[:2] + ("class",))]     # an empty hyper block: set one keyword
        name, par = next((k, q) for k, q in inspect.signature(cls.__init__).parameters.items()
                         if k not in ("self", "random_state"))
        return {name: _change_value(par.default)}
    if p[0] == "experiments" and p[2] == "compare":
        names = cfg["experiments"][p[1]]["estimators"]
        if len(p) == 4:
            return next((e for e in names if e not in (p[3], v)), None)   # null: the comparison dropped
        others = [e for e in cfg["estimators"] if e not in names[:1]]
        return {names[0]: others[0]}
    if p[0] == "experiments" and p[2] == "reference":   # one of the experiment's own variants (any other if it has one)
        return next((e for e in cfg["experiments"][p[1]]["estimators"] if e != v), None) or _other_estimator(cfg, [v])
    if p == ("attention", "estimator"):                # another variant of class vit
        return next(e for e, x in cfg["estimators"].items() if x["class"] == "vit" and e != v)
    if p[-1] == "estimators":                       # lists of variant names
        return v[:-1] if len(v) > 1 else [_other_estimator(cfg, v)]
    if p == ("moe", "figure_variant"):                 # another mixture of the Track B experiment
        return next(e for x in cfg["experiments"].values() if x["track"] == "b" for e in x.get("compare", {})
                    if e != v and cfg["estimators"][e]["class"] == "moe")
    if p == ("denoising", "transforms"):               # one transform fewer
        return v[:-1]
    if p == ("denoising", "posterior", "transform"):  # another transform (the config check then asks for sample())
        return next(t for t in cfg["denoising"]["transforms"] if t != v)
    if p == ("moe", "bar"):
        return v[:-1]
    if p[:2] == ("evaluation", "param_bins"):
        return v + 1
    if p == ("grid", "root"):
        return "/data/bosz"
    if p[0] == "datasets" and p[-1] == "path":
        return f"external/{p[1]}.h5"
    if p[0] == "estimators" and len(p) == 4 and p[2] == "upstream":   # one role: another cell of its variant
        up = v if isinstance(v, str) else v["variant"]
        return {"variant": up, "size": 123}
    if p[0] == "estimators" and p[2:] == ("upstream",):   # another upstream cell (or one where there was none)
        role, spec = next(iter((v or {"transform": p[1]}).items()))
        up = spec if isinstance(spec, str) else spec["variant"]
        return {role: {"variant": up, "size": 123}}
    if p[0] == "estimators" and p[2:] == ("label",):      # a variant's own words
        return f"{v or p[1]} (renamed)"
    if p[0] == "estimators" and p[2:] == ("sigma",):      # a variant's own sigma: the other than it sees now
        return "stored" if (v or cfg["noise"]["sigma"]) == "estimated" else "estimated"
    if node.get("type") == "boolean":                    # a switch (compare_by_snr): the other way
        return not v
    if "enum" in node and v is None:                    # an optional choice (compare_at): set it
        return node["enum"][-1]
    if "enum" in node:
        return node["enum"][(node["enum"].index(v) + 1) % len(node["enum"])]
    t = node.get("type")
    if t == ["number", "null"]:                                   # a number that may be switched off
        return None if v is not None else 0.5
    if t == "string" and node.get("pattern") == "^[a-f]$":
        return "c" if v != "c" else "d"
    if t == "integer":
        return v - 1 if "maximum" in node and v + 1 > node["maximum"] else v + 1
    if t == "number":
        new = v * 1.1 if v else 0.5
        top = node.get("exclusiveMaximum", node.get("maximum"))
        return v * 0.9 if top is not None and new >= top else new
    if t == "array" and node.get("minItems") == node.get("maxItems") == 2:     # a [lo, hi] range
        lo, hi = v if v is not None else cfg["noise"]["mag"]
        return [lo, lo + (hi - lo) / 2] if hi > lo else [lo, lo + 0.25]
    if t == "array":
        last = v[-1]
        if node.get("items", {}).get("type") == "integer":
            return v[:-1] + [last - 1]
        return v[:-1] + [last * 0.99 if last else 0.1]
    raise AssertionError(f"{'.'.join(p)}: no perturbation for a schema node {node}")


def _set(cfg, path, value):
    node = cfg
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value


# Documented keys that may reach no job, each with the reason (expected: none).
REACHES_NOTHING_BY_DESIGN = {}


def test_documented_keys_are_found(cfg):
    keys = {".".join(p) for p, _ in documented_keys(cfg)}
    assert {"seed", "grid.root", "grid.margin_nodes", "params.a_M", "instrument.n_pixels", "noise.noise_level",
            "datasets.chunk_size", "datasets.train.mag", "datasets.test.path", "estimators.ridge.class",
            "estimators.ridge.hyper.alphas", "estimators.lightgbm_search.hyper.num_leaves",
            "estimators.template.hyper", "experiments.benchmark.noise_levels", "experiments.sensitivity.seeds",
            "experiments.pitfalls.compare.ridge_small_alpha", "experiments.benchmark.compare",
            "evaluation.confidence", "ceiling.original", "figure.estimators"} <= keys
    assert {p[0] for p, _ in documented_keys(cfg)} == set(SCHEMA["properties"])


def test_every_documented_config_key_reaches_a_job(cfg):
    base = snapshot(cfg)
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    dead, invalid = [], []
    for path, node in documented_keys(cfg):
        name = ".".join(path)
        new, ref = copy.deepcopy(cfg), base
        if path[0] == "estimators" and path[2:] == ("train_mag",) and new["estimators"][path[1]].get(
                "train_source") != "simulator":   # a variant's magnitudes need simulated stars: compare with those
            new["estimators"][path[1]]["train_source"] = "simulator"
            ref = snapshot(new)
        value = perturb(cfg, path, node)
        assert value != _get(cfg, path), name
        _set(new, path, value)
        errors = [e.message for e in validator.iter_errors(new)]
        if errors:
            invalid.append(f"{name} = {value!r}: {errors[0]}")
            continue
        if snapshot(new) == ref and name not in REACHES_NOTHING_BY_DESIGN:
            dead.append(name)
    assert not invalid, f"test bug: perturbations outside the schema: {invalid}"
    assert not dead, f"documented config keys that change no job's parameters: {dead}"


def _changed_rules(cfg, path, value):
    new = copy.deepcopy(cfg)
    _set(new, path, value)
    before, after = snapshot(cfg), snapshot(new)
    return {k[0] for k in set(before) | set(after) if before.get(k) != after.get(k)}


def test_confidence_reaches_cells_aggregates_and_the_snr_figure(cfg):
    new = copy.deepcopy(cfg)
    new["evaluation"]["confidence"] = 0.9
    for rule, w in W.jobs(cfg):
        if rule in ("run_cell", "aggregate_experiment") or (rule, w) == ("plot_figure", {"figure": "r2_vs_snr"}):
            a, b = W.rule_params(rule, cfg, **w), W.rule_params(rule, new, **w)
            assert a != b, (rule, w)
            flat = json.dumps(b)
            assert '"confidence": 0.9' in flat, (rule, w)


# -- (d) experiment grids and noise levels never touch the data sets -----------------------------------
DATA_RULES = ("build_raw_grid", "convolve_grid", "simulate_dataset", "describe_dataset", "calibrate_ceiling")


@pytest.mark.parametrize("key,value", [
    (("experiments", "benchmark", "noise_levels"), [0.0, 0.3, 0.5, 1.0, 2.0, 5.0]),
    (("experiments", "benchmark", "sizes"), [1000, 2000]),
    (("experiments", "benchmark", "seeds"), 5),
    (("experiments", "benchmark", "estimators"), ["ridge", "template"]),
    (("experiments", "sensitivity", "noise_levels"), [0.7]),
    (("noise", "noise_level"), 0.5),
    (("noise", "sigma"), "stored"),
])
def test_grids_and_noise_levels_change_no_data_set(cfg, key, value):
    changed = _changed_rules(cfg, key, value)
    assert changed, f"{'.'.join(key)} changed nothing"
    assert not changed & set(DATA_RULES), f"{'.'.join(key)} reruns {sorted(changed & set(DATA_RULES))}"
    before = {json.dumps(w) for r, w in W.jobs(cfg) if r in DATA_RULES}
    new = copy.deepcopy(cfg)
    _set(new, key, value)
    assert {json.dumps(w) for r, w in W.jobs(new) if r in DATA_RULES} == before


def test_simulate_dataset_params_are_what_the_data_depend_on(cfg):
    """Sanity of (d): the data-set rule does react to what the data depend on."""
    for key, value in ((("noise", "mag"), [21.0, 22.0]), (("datasets", "train", "n"), 100),
                       (("params", "T_eff"), [4000.0, 5000.0]), (("seed",), 1)):
        assert "simulate_dataset" in _changed_rules(cfg, key, value), key


# -- (e) targets -------------------------------------------------------------------------------------
def _snakefile_rule(name):
    text = (ROOT / "Snakefile").read_text()
    m = re.search(rf"^rule {name}:\n(.*?)(?=^\S|\Z)", text, flags=re.M | re.S)
    assert m, f"Snakefile: no rule {name}"
    return m.group(1)


def test_paper_target_builds_every_track_document(cfg):
    """``snakemake paper`` builds the whole study and the document of every registered track (the
    registry, not a list of letters), each from its LaTeX source; ``all`` builds them too."""
    from pfslogg.tracks import TRACKS

    docs = ["main"] + [t.doc for t in TRACKS.values()]
    assert {"main", "track_a", "track_b", "track_c", "track_f"} <= set(docs)
    assert set(W.paper_outputs()) == {W.PDF.format(doc=d) for d in docs}
    assert "W.paper_outputs()" in _snakefile_rule("paper")
    assert set(W.paper_outputs()) <= set(W.all_outputs(cfg))
    for d in docs:
        assert d in W.PAPER_DOCS and (ROOT / "paper" / f"{d}.tex").is_file(), d
