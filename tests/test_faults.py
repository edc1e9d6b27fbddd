"""The pipeline under faults, locally: SIGKILL mid-run, reruns, changed inputs, determinism."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import pytest

from workflow_util import TINY, copy_workflow, metrics_of, snakemake

pytestmark = pytest.mark.e2e


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_numbers(tiny_run, tmp_path):
    wd = copy_workflow(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "figures/r2_vs_snr.pdf", "figures/ceiling_calibration.pdf",
           "--cores", "2", "--configfile", TINY]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (wd / "data/datasets/train.h5").exists():
        time.sleep(0.2)
    time.sleep(2.0)  # into training: jobs are running, some outputs half-written
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (wd / "figures/r2_vs_snr.pdf").exists()
    snakemake(wd, "--unlock", "--cores", "1", "--configfile", TINY)
    snakemake(wd, "figures/r2_vs_snr.pdf", "figures/ceiling_calibration.pdf", "--cores", "2",
              "--configfile", TINY, "--rerun-incomplete")
    # same config and seed: the same numbers as the uninterrupted run, every one of them
    assert metrics_of(wd) == metrics_of(tiny_run)


def test_changed_input_reruns_only_the_affected_targets_and_marks_numbers_stale(tiny_run, tmp_path):
    wd = tmp_path / "wd"
    shutil.copytree(tiny_run, wd, symlinks=True)
    before = json.loads((wd / "results/cells/ridge/nl1_n1000_s0.json").read_text())
    with h5py.File(wd / "data/datasets/test.h5", "r+") as h5:   # a changed input: one flux value
        h5["dataset/arrays/flux/value"][0, 100] *= 1.01
    audit = subprocess.run([sys.executable, "-m", "pfslogg", "provenance", "results/cells/ridge/nl1_n1000_s0.json"],
                           cwd=wd, capture_output=True, text=True)
    assert audit.returncode == 0 and "STALE" in audit.stdout, audit.stdout[-3000:]
    assert "data/datasets/test.h5" in audit.stdout
    dry = snakemake(wd, "figures/r2_vs_snr.pdf", "figures/ceiling_calibration.pdf", "--cores", "2",
                    "--configfile", TINY, "-n").stdout
    jobs = set(re.findall(r"^(?:local)?rule (\w+):", dry, flags=re.M))
    assert jobs == {"run_cell", "compute_fisher_ceiling", "plot_figure"}, jobs
    snakemake(wd, "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", TINY)
    after = json.loads((wd / "results/cells/ridge/nl1_n1000_s0.json").read_text())
    assert after["provenance"]["inputs"]["data/datasets/test.h5"] != before["provenance"]["inputs"]["data/datasets/test.h5"]
    audit = subprocess.run([sys.executable, "-m", "pfslogg", "provenance", "results/cells/ridge/nl1_n1000_s0.json"],
                           cwd=wd, capture_output=True, text=True)
    assert audit.returncode == 0 and "STALE" not in audit.stdout, audit.stdout[-3000:]
