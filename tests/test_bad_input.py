"""Bad input through the workflow: one clear error naming the key or file, and no partial output."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from workflow_util import copy_workflow, snakemake


@pytest.fixture()
def wd(tmp_path):
    return copy_workflow(tmp_path)


def _write_cfg(wd, **override):
    cfg = yaml.safe_load((wd / "tests/configs/tiny.yaml").read_text())
    for key, value in override.items():
        node = cfg
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    (wd / "bad.yaml").write_text(yaml.safe_dump(cfg))
    return "bad.yaml"


@pytest.mark.parametrize("override, needle", [
    ({"grid.source": "phoenix"}, "phoenix"),                    # unknown grid source (schema enum)
    ({"datasets.train": {"n": "many"}}, "many"),                 # wrong type
    ({"noise.exposures": 0}, "exposures"),                      # below minimum
    ({"params.T_eff": [3000.0, 6000.0]}, "params.T_eff"),        # outside the synth grid's axis
    ({"params.log_g": [4.0, 2.0]}, "params.log_g"),              # lo > hi
    ({"grid.source": "bosz2017"}, "grid.root"),                 # BOSZ without a folder
    ({"figure.estimators": ["ridge", "transformer_xl"]}, "transformer_xl"),           # figure names an unconfigured model
    ({"evaluation.snr_bins": [2.0, 10.0, 5.0]}, "snr_bins"),    # edges not increasing
])
def test_bad_config_stops_before_any_job(wd, override, needle):
    cfg = _write_cfg(wd, **override)
    proc = snakemake(wd, "figures/r2_vs_snr.pdf", "--cores", "1", "--configfile", cfg, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout, proc.stdout[-2000:]
    assert not (wd / "data").exists() and not (wd / "results").exists()


def _run_rule_on(wd, target):
    return snakemake(wd, target, "--cores", "1", "--configfile", "tests/configs/tiny.yaml", check=False)


def test_corrupt_grid_file_is_named_and_leaves_no_output(wd):
    (wd / "data/grid").mkdir(parents=True)
    (wd / "data/grid/raw.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)   # truncated HDF5
    proc = _run_rule_on(wd, "data/grid/instrument.h5")
    assert proc.returncode != 0
    log = (wd / "logs/convolve_grid.log").read_text()
    assert "error: data/grid/raw.h5" in log and "Traceback" not in log
    assert not (wd / "data/grid/instrument.h5").exists()
    assert [p.name for p in (wd / "data/grid").iterdir()] == ["raw.h5"], "temporary files left behind"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pfslogg", *args], cwd=cwd, capture_output=True, text=True)


def _dataset(wd, tiny_dataset):
    """A valid data set in the pfsspec layout (from tests/conftest.py), copied into the workdir."""
    import shutil
    dst = wd / "test.h5"
    shutil.copy(tiny_dataset, dst)
    return dst


@pytest.mark.parametrize("damage, needle", [
    ("nan_sigma", "NaN, infinite or <= 0"),
    ("negative_sigma", "NaN, infinite or <= 0"),
    ("wave_length", "wavelength length"),
])
def test_bad_dataset_values_are_named(wd, tiny_dataset, tiny_instrument_grid, damage, needle):
    import h5py
    path = _dataset(wd, tiny_dataset)
    with h5py.File(path, "r+") as h5:
        if damage == "nan_sigma":
            h5["dataset/arrays/error/value"][3, 10] = np.nan
        elif damage == "negative_sigma":
            h5["dataset/arrays/error/value"][5, 7] = -1.0
        else:
            wave = h5["spectrumdataset/wave"][:]
            del h5["spectrumdataset/wave"]
            h5["spectrumdataset/wave"] = wave[:-1]
    params = json.dumps({"params": {"T_eff": [4000.0, 5500.0], "log_g": [1.0, 5.0], "M_H": [-0.25, 0.5],
                                    "a_M": [0.0, 0.0]}, "noise_level": 1.0,
                         "evaluation": {"snr_bins": [2.0, 10.0, 35.0], "bootstrap": 50, "confidence": 0.95}})
    proc = _cli("compute-fisher-ceiling", "--params", params, "--grid", str(tiny_instrument_grid), "--test", str(path),
                "--out", "fisher.json", "--per-spectrum", "fisher.csv", cwd=wd)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(path.name) in last and needle in last, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (wd / "fisher.json").exists() and not (wd / "fisher.csv").exists()


def test_missing_dataset_file_is_named(wd, tiny_instrument_grid):
    proc = _cli("compute-fisher-ceiling", "--params", "{}", "--grid", str(tiny_instrument_grid), "--test", "nope.h5",
                "--out", "f.json", "--per-spectrum", "f.csv", cwd=wd)
    # the command line checks its input paths before any step runs: one line naming the option and the file
    assert proc.returncode == 2 and "error: --test nope.h5: no such file or folder" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (wd / "f.json").exists() and not (wd / "f.csv").exists()


def test_existing_pfsspec_data_set_replaces_a_simulated_split(tiny_run, tmp_path):
    """datasets.test.path: an existing pfsspec data set is read as it is, never simulated or overwritten."""
    import shutil
    wd = copy_workflow(tmp_path / "wd")
    external = tmp_path / "original" / "dataset.h5"
    external.parent.mkdir()
    shutil.copy(tiny_run / "data/datasets/test.h5", external)
    before = external.read_bytes()
    cfg = _write_cfg(wd, **{"datasets.test": {"n": 1, "path": str(external)}})
    dry = snakemake(wd, "figures/r2_vs_snr.pdf", "results/data/test.json", "--cores", "1", "--configfile", cfg,
                    "-n").stdout
    import re
    assert re.search(r"^(local)?rule describe_dataset:", dry, flags=re.M), dry[-3000:]
    assert "data/datasets/test.h5" not in dry, "the test split must not be simulated"
    snakemake(wd, "results/track_c/fisher.json", "results/data/test.json", "--cores", "2", "--configfile", cfg)
    summary = json.loads((wd / "results/data/test.json").read_text())
    assert summary["metrics"]["n"] == 300 and str(external) in summary["provenance"]["inputs"]
    fisher = json.loads((wd / "results/track_c/fisher.json").read_text())
    assert str(external) in fisher["provenance"]["inputs"]
    assert not (wd / "data/datasets/test.h5").exists() and external.read_bytes() == before


def test_a_missing_data_set_after_a_run_fails_naming_the_key(tiny_run, tmp_path):
    """After a run, a second --configfile naming a data set that does not exist must fail with one
    line naming datasets.test.path. The merged config does reach the rules (run_cell's input becomes
    /nonexistent.h5), but Snakemake takes an existing output whose producing job lacks an input for
    a source file ("No producers found, but file ... is present on disk"): without the config check
    it said "Nothing to be done" and kept the old figure."""
    import shutil
    wd = tmp_path / "wd"
    shutil.copytree(tiny_run, wd, symlinks=True)
    fig = (wd / "figures/r2_vs_snr.pdf").read_bytes()
    (wd / "m.yaml").write_text("datasets: {test: {path: /nonexistent.h5}}\n")
    proc = snakemake(wd, "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", "tests/configs/tiny.yaml",
                     "m.yaml", check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "datasets.test.path" in line]
    assert lines == ["config: datasets.test.path: /nonexistent.h5: no such data set file"], proc.stdout[-3000:]
    assert "Nothing to be done" not in proc.stdout
    assert (wd / "figures/r2_vs_snr.pdf").read_bytes() == fig


def test_a_calibration_outside_its_tolerance_fails_the_rule(tiny_run, tmp_path):
    """calibrate_ceiling refuses an embedded model whose median Cramer-Rao bound left the original
    study's values by more than ceiling.tolerance: one line naming the key and the SNR points, no
    calibration results, and the figure of the last good run left as it was."""
    import shutil
    wd = tmp_path / "wd"
    shutil.copytree(tiny_run, wd, symlinks=True)
    fig = (wd / "figures/ceiling_calibration.pdf").read_bytes()
    cfg = _write_cfg(wd, **{"ceiling.tolerance": 0.001})
    proc = snakemake(wd, "figures/ceiling_calibration.pdf", "--cores", "1", "--configfile", cfg, check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("error: ceiling.tolerance")]
    assert len(lines) == 1 and "recalibrate grid.gravity_coupling" in lines[0] and "SNR 3:" in lines[0], \
        proc.stdout[-3000:]
    assert not (wd / "results/track_c/ceiling_calibration.json").exists()
    assert (wd / "figures/ceiling_calibration.pdf").read_bytes() == fig
