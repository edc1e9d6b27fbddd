"""Cells of variants that train on the simulator (estimators.<name>.train_source: simulator).

Such a cell's training view is a SimulatorView of the instrument grid (the training split's prior,
exposure model and observing conditions; its own star seed, split_seed(cfg, "simulator"), so the
stars are not the training file's), with the fresh noise a file cell's view has; validation and test
are the files. Its size may exceed datasets.train.n; its parameter block, results and provenance say
train_source: simulator; the cells of file variants are as they were.
"""

import copy
import json
import re

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg import workflow as W
from pfslogg.config import check_config, load_config, split_seed, validate_config
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.simview import SimulatorView, simulator_settings
from pfslogg.errors import InputError
from pfslogg.experiments import run_cell

from conftest import TINY_RANGES, simulate_splits
from workflow_util import ROOT, TINY, copy_workflow, snakemake

CONFIG = ROOT / "config" / "config.yaml"
RIDGE_SIM = {"class": "ridge", "hyper": {"alphas": [0.1, 10.0, 1000.0]}, "train_source": "simulator"}
N_FILE, SIZE = 200, 300   # the training file's rows; a simulator cell's size (more)


@pytest.fixture(scope="module")
def cfg():
    c = load_config(CONFIG)
    c["estimators"]["ridge_sim"] = copy.deepcopy(RIDGE_SIM)
    c["estimators"]["ridge_file"] = {k: v for k, v in RIDGE_SIM.items() if k != "train_source"}
    return c


@pytest.fixture(scope="module")
def grid(coarse_instrument_grid):
    return str(coarse_instrument_grid)   # 512 pixels


@pytest.fixture(scope="module")
def sets(cfg, grid, tmp_path_factory):
    """The training file as the workflow simulates it (its seed, noise, chunk size; N_FILE rows), and
    small validation and test sets."""
    assert cfg["params"] == TINY_RANGES   # the coarse grid covers the config's prior
    root = tmp_path_factory.mktemp("simcells")
    out = simulate_splits(grid, root, (("val", 100, 2), ("test", 100, 3)))
    s = simulator_settings(cfg, "train")
    simulate_dataset(grid, root / "train.h5", N_FILE, cfg["params"], s["seed"], s["noise"], chunk_size=s["chunk_size"])
    out["train"] = root / "train.h5"
    return out


def params(cfg, estimator, size=SIZE, seed=0, rule="run_cell"):
    return W.rule_params(rule, cfg, estimator=estimator, noise="1", size=str(size), seed=str(seed))


def test_the_parameter_block_of_a_simulator_cell(cfg):
    p = params(cfg, "ridge_sim")
    assert p["train_source"] == "simulator"
    assert p["simulator"] == {"seed": split_seed(cfg, "simulator"), "noise": simulator_settings(cfg)["noise"],
                              "chunk_size": cfg["datasets"]["chunk_size"]}
    assert p["simulator"]["seed"] not in {split_seed(cfg, s) for s in ("train", "val", "test")}
    assert json.loads(json.dumps(p)) == p
    # a file variant's block has neither key: as it was before train_source existed
    q = params(cfg, "ridge_file")
    assert "train_source" not in q and "simulator" not in q
    assert {k: v for k, v in p.items() if k not in ("train_source", "simulator", "estimator")} == \
        {k: v for k, v in q.items() if k != "estimator"}
    # what the cell trains from: the grid, not the training set
    assert W.train_input(cfg, "ridge_sim") == W.INSTRUMENT_GRID
    assert W.train_input(cfg, "ridge_file") == W.dataset_path(cfg, "train")
    # the configured variant of config/config.yaml, in the GPU rule
    assert cfg["estimators"]["mlp_sim"]["train_source"] == "simulator" and W.is_neural(cfg, "mlp_sim")
    assert params(cfg, "mlp_sim", rule="run_neural_cell")["train_source"] == "simulator"


def test_the_training_view_is_the_simulator_with_its_own_stars(cfg, grid, sets):
    """The view run_cell builds from the block is SimulatorView.from_config with the simulator's seed; with
    the train split's seed the same derivation gives the training file, row for row -- the stars differ."""
    p = params(cfg, "ridge_sim")
    view = SimulatorView(grid, p["size"], p["params"], noise_level=1.0, rng_seed=p["seed"], sigma=p["sigma"],
                         **p["simulator"])
    ref = SimulatorView.from_config(cfg, grid, 1.0, n=SIZE, rng_seed=p["seed"], sigma=p["sigma"], split="train",
                                    seed=split_seed(cfg, "simulator"))
    assert view.params.equals(ref.params) and np.array_equal(view.read(0, 50)[0], ref.read(0, 50)[0])
    file = SpectraSet(sets["train"])
    small = copy.deepcopy(cfg)
    small["datasets"]["train"]["n"] = N_FILE
    like = SimulatorView.from_config(small, grid, 1.0, rng_seed=p["seed"], like_file=True)
    cols = list(PARAMS) + ["mag", "seeing"]
    assert np.array_equal(like.params[cols].to_numpy(), file.params[cols].to_numpy())   # the file's stars
    mine = view.params[cols].to_numpy()[:N_FILE]
    assert not np.isin(mine[:, 0], file.params["T_eff"].to_numpy()).any()     # none of them
    assert view.n == SIZE > file.n


def _run(p, sets, grid, folder, train=None):
    return run_cell(p, train or grid, sets["val"], sets["test"], grid, folder, threads=1)


def test_a_ridge_simulator_cell_trains_on_simulated_stars_beyond_the_file(cfg, grid, sets, tmp_path):
    p = params(cfg, "ridge_sim")
    metrics, details, pred = _run(p, sets, grid, tmp_path / "a")
    assert metrics["size"] == SIZE > N_FILE and metrics["train_source"] == "simulator"
    assert metrics["n_test"] == 100 and metrics["overall"]["r2"] > 0.3   # it learned log g
    # deterministic: the same block gives the same model and predictions (the training path is never read)
    again = _run(p, sets, grid, tmp_path / "b", train=str(tmp_path / "no-such-file.h5"))
    assert np.array_equal(pred["log_g_pred"], again[2]["log_g_pred"]) and details["fitted"] == again[1]["fitted"]
    # the same variant on the training file (its N_FILE rows): another model
    q = params(cfg, "ridge_file", size=N_FILE)
    m_file, _, pred_file = run_cell(q, sets["train"], sets["val"], sets["test"], grid, tmp_path / "c", threads=1)
    assert "train_source" not in m_file and m_file["size"] == N_FILE
    assert not np.allclose(pred["log_g_pred"], pred_file["log_g_pred"])
    # a file cell cannot have more rows than its file
    with pytest.raises(InputError, match="training sizes must not exceed"):
        run_cell(params(cfg, "ridge_file"), sets["train"], sets["val"], sets["test"], grid, tmp_path / "d")


def test_a_tiny_mlp_simulator_cell_is_deterministic(cfg, grid, sets, tmp_path):
    p = params(cfg, "mlp_sim", rule="run_neural_cell")
    p["hyper"] = {**p["hyper"], "epochs": 1, "hidden": [16], "batch_size": 64}
    runs = []
    for name in ("a", "b"):
        q = dict(p, checkpoint=str(tmp_path / f"ckpt_{name}"))
        runs.append(_run(q, sets, grid, tmp_path / name))
    (m1, d1, p1), (m2, d2, p2) = runs
    assert m1["train_source"] == "simulator" and m1["size"] == SIZE and m1["class"] == "mlp"
    assert np.array_equal(p1["log_g_pred"], p2["log_g_pred"]) and np.isfinite(p1["log_g_pred"]).all()


def test_the_results_and_provenance_say_train_source(cfg, grid, sets, tmp_path):
    """python -m pfslogg run-cell as the rule runs it (--train is the grid): the results JSON's metrics and
    provenance parameters say train_source: simulator, its inputs are the grid, val and test."""
    from pfslogg.cli import main

    p = params(cfg, "ridge_sim")
    out = tmp_path / "cell.json"
    args = ["run-cell", "--params", json.dumps(p), "--threads", "1", "--train", grid, "--val", str(sets["val"]),
            "--test", str(sets["test"]), "--grid", grid, "--model", str(tmp_path / "model"), "--out", str(out),
            "--predictions", str(tmp_path / "cell.csv")]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["metrics"]["train_source"] == "simulator"
    assert doc["provenance"]["params"]["train_source"] == "simulator"
    assert doc["provenance"]["params"]["simulator"]["seed"] == split_seed(cfg, "simulator")
    assert set(doc["provenance"]["inputs"]) == {grid, str(sets["val"]), str(sets["test"])}


def test_simulator_sizes_may_exceed_the_training_set(cfg):
    new = copy.deepcopy(cfg)
    big = new["datasets"]["train"]["n"] * 3
    new["experiments"]["simulated"] = {"track": "f", "estimators": ["mlp_sim", "ridge_sim"], "noise_levels": [1.0],
                                       "sizes": [2000, big], "seeds": 1}
    check_config(new, "config")
    new["experiments"]["simulated"]["estimators"].append("ridge_file")   # a file variant: refused
    with pytest.raises(InputError, match=re.escape(f"experiments.simulated.sizes: [{big}] exceed datasets.train.n "
                                                   f"= {cfg['datasets']['train']['n']} (its variants that train on "
                                                   "the file: ridge_file)")):
        check_config(new, "config")


def test_an_upstream_cell_on_the_file_at_a_simulator_size_is_refused(cfg):
    new = copy.deepcopy(cfg)
    new["estimators"]["ridge_denoised_sim"] = dict(copy.deepcopy(new["estimators"]["ridge_denoised"]),
                                                   train_source="simulator")
    big = new["datasets"]["train"]["n"] * 2
    new["experiments"]["simulated"] = {"track": "f", "estimators": ["ridge_denoised_sim"], "noise_levels": [1.0],
                                       "sizes": [big], "seeds": 1}
    with pytest.raises(InputError, match=r"the upstream transform 'denoiser' of 'ridge_denoised_sim' trains on the "
                                         r"file at the size of its cell"):
        check_config(new, "config")
    new["estimators"]["ridge_denoised_sim"]["upstream"] = {"transform": {"variant": "denoiser", "size": 2000}}
    check_config(new, "config")


@pytest.mark.parametrize("value", ["disk", "Simulator", 3])
def test_a_bad_train_source_is_one_line_naming_the_key(cfg, value, grid, sets, tmp_path):
    new = copy.deepcopy(cfg)
    new["estimators"]["ridge_sim"]["train_source"] = value
    with pytest.raises(InputError, match=r"^config: estimators\.ridge_sim\.train_source: expected one of file, "
                                         r"simulator, got ") as e:
        check_config(new, "config")
    assert "\n" not in str(e.value)
    raw = {"estimators": {"x": {"class": "ridge", "train_source": value}}}
    with pytest.raises(InputError, match=r"config: estimators\.x\.train_source: expected one of 'file', 'simulator'"):
        validate_config(raw)
    p = dict(params(cfg, "ridge_sim"), train_source=value)   # a block made otherwise: run_cell refuses it too
    with pytest.raises(InputError, match=r"^estimators\.ridge_sim\.train_source: expected one of file, simulator"):
        _run(p, sets, grid, tmp_path / "m")


def test_the_cell_job_reads_the_grid_not_the_training_set(tmp_path):
    """snakemake -n of a simulator cell (tiny config, a size above datasets.train.n): the grid is its
    --train and among its inputs, the training set is neither an input nor simulated."""
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(wd, "-n", "-p", "results/cells/mlp_sim/nl1_n5000_s0.json", "--configfile", TINY, timeout=300)
    out = proc.stdout
    job = out[out.index("rule run_neural_cell:"):]
    inputs = re.search(r"input: (.*)", job).group(1).split(", ")
    assert "data/grid/instrument.h5" in inputs and "data/datasets/train.h5" not in inputs
    assert "--train data/grid/instrument.h5" in job and '"train_source":"simulator"' in job
    assert "split=train" not in out and "data/datasets/train.h5" not in out


def test_a_simulator_variant_is_labelled_by_its_train_source():
    from pfslogg.experiments import cell_variant, variant_labels

    def doc(extra):
        p = {"hyper": {"epochs": 4}, "sigma": "estimated", **extra}
        return {"metrics": {"class": "mlp", "label": "MLP"}, "provenance": {"params": p}}

    variants = {"mlp": cell_variant(doc({})), "mlp_sim": cell_variant(doc({"train_source": "simulator"}))}
    assert variant_labels(variants, {"mlp_sim": "mlp"}) == {"mlp": "MLP", "mlp_sim": "MLP, train source simulator"}


def test_stars_simulated_for_a_calibration_have_noise_no_model_trained_on(cfg, grid, sets, tmp_path, monkeypatch):
    """Fresh noise from the cell's seed is the stream the models of that seed trained on, and on those noise
    vectors a network's errors are smaller: a conformal rescaling calibrated there covered 0.676 of its stars
    and 0.661-0.665 of the same stars under other noise (2026-12-06). Stars a class calibrates on get a noise
    stream of their own (keyed by their star seed as well); a training cell keeps the cell's seed, and more stars
    than the cell's size when the calibration asks for them."""
    import pfslogg.data.simview as simview

    seen = {}

    class Stop(Exception):
        pass

    def spy(grid_path, n, ranges, **kw):
        seen.update(n=n, rng_seed=kw["rng_seed"], seed=kw["seed"])
        raise Stop

    monkeypatch.setattr(simview, "SimulatorView", spy)
    c = copy.deepcopy(cfg)
    c["estimators"]["ridge_cal"] = {"class": "conformal", "upstream": {"model": "ridge_file"},
                                    "hyper": {"calibrate_on": "train", "n_calibration": 500},
                                    "train_source": "simulator"}
    for name, rows, noise in (("ridge_sim", SIZE, lambda p: p["seed"]),
                              ("ridge_cal", 500, lambda p: [p["seed"], split_seed(c, "calibration")])):
        p = params(c, name)
        with pytest.raises(Stop):
            _run(p, sets, grid, tmp_path / name)
        assert seen["n"] == rows and seen["rng_seed"] == noise(p) and seen["seed"] == p["simulator"]["seed"]
    assert seen["rng_seed"] != params(c, "ridge_sim")["seed"]
