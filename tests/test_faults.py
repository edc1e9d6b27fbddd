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

from workflow_util import ROOT, TINY, copy_workflow, metrics_of, snakemake

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
    jobs = set(re.findall(r"^\s*(?:local)?rule (\w+):", dry, flags=re.M))
    assert jobs == {"run_cell", "compute_fisher_ceiling", "compute_bayes_ceiling", "plot_figure"}, jobs
    snakemake(wd, "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", TINY)
    after = json.loads((wd / "results/cells/ridge/nl1_n1000_s0.json").read_text())
    assert after["provenance"]["inputs"]["data/datasets/test.h5"] != before["provenance"]["inputs"]["data/datasets/test.h5"]
    audit = subprocess.run([sys.executable, "-m", "pfslogg", "provenance", "results/cells/ridge/nl1_n1000_s0.json"],
                           cwd=wd, capture_output=True, text=True)
    assert audit.returncode == 0 and "STALE" not in audit.stdout, audit.stdout[-3000:]


def _jobs_of(wd):
    """PIDs of pfslogg commands whose working directory is ``wd``."""
    out = []
    for proc in os.listdir("/proc"):
        if not proc.isdigit():
            continue
        try:
            cmd = open(f"/proc/{proc}/cmdline", "rb").read()
            cwd = os.readlink(f"/proc/{proc}/cwd")
        except OSError:
            continue
        if b"pfslogg" in cmd and b"-m\0pfslogg" in cmd and cwd == str(wd):
            out.append(int(proc))
    return out


def test_kill_of_snakemake_alone_stops_its_jobs_and_the_readme_recovery_works(tiny_run, tmp_path):
    """SIGKILL of the snakemake process only (a user's Ctrl-\\, the OOM killer), not its process
    group: its running commands stop too instead of finishing as orphans, and the README's words --
    `snakemake --unlock`, then the same command again -- finish the run with the same numbers."""
    wd = copy_workflow(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", TINY]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((wd / "logs").glob("run_cell/*/*.log")):
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, "the run finished before it could be killed"
    running = _jobs_of(wd)
    assert running, "no pfslogg job was running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _jobs_of(wd):
        time.sleep(0.5)
    assert not _jobs_of(wd), "the killed workflow's jobs went on as orphans"
    readme = (ROOT / "README.md").read_text()
    assert "`snakemake --unlock` and rerun" in readme
    snakemake(wd, "--unlock", "--cores", "1", "--configfile", TINY)
    snakemake(wd, "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", TINY)   # the same command again
    mine, ref = metrics_of(wd), metrics_of(tiny_run)
    assert "results/track_c/fisher.json" in mine and all(ref[k] == v for k, v in mine.items())
    leftovers = [p for p in wd.rglob(".*.tmp*") if ".snakemake" not in p.parts]
    assert not leftovers, leftovers


def test_a_failing_job_shows_its_error_line_on_the_console(tiny_run, tmp_path):
    """The failed job's log reaches the console (show-failed-logs), ending in the command's one
    'error:' line, not only Snakemake's 'check log'."""
    import yaml
    wd = tmp_path / "wd"
    shutil.copytree(tiny_run, wd, symlinks=True)
    bad = yaml.safe_load((wd / TINY).read_text())
    bad["estimators"]["lightgbm"]["hyper"]["num_leaves"] = 1
    (wd / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = snakemake(wd, "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert "error: estimators: LightGBM rejected the hyper-parameters" in proc.stdout, proc.stdout[-3000:]
    assert "Error in rule run_cell" in proc.stdout
