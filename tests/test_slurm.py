"""The users' Slurm path for real, on the single-node cluster that .ci/slurm-up.sh starts.

The repository's profile is installed as the site profile ``slurm`` (XDG_CONFIG_HOME points at a
temporary config folder holding ``snakemake/slurm``), then the users' exact command runs:

    snakemake figures/r2_vs_snr.pdf --cores 8 --profile slurm
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from workflow_util import ROOT, TINY, copy_workflow, metrics_of, snakemake

pytestmark = pytest.mark.slurm
EXACT = ("figures/r2_vs_snr.pdf", "--cores", "8", "--profile", "slurm")


def _slurm_idle():
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.split()
    return any(s.startswith(("idle", "mix", "alloc")) for s in out)


if not _slurm_idle():
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the Slurm tests: .ci/slurm-up.sh did not leave an idle node")
    pytest.skip("no Slurm cluster here (run .ci/slurm-up.sh as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def site_profile(tmp_path_factory):
    """XDG config folder with the repository's profile installed as ``snakemake/slurm``."""
    home = tmp_path_factory.mktemp("xdg")
    shutil.copytree(ROOT / "profiles/slurm", home / "snakemake/slurm")
    return {"XDG_CONFIG_HOME": str(home)}


def _deep_merge(base, over):
    for k, v in over.items():
        base[k] = _deep_merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def _tiny_as_default(wd):
    """Make the tiny config the workflow's default, so the exact command runs at tiny scale."""
    cfg = _deep_merge(yaml.safe_load((wd / "config/config.yaml").read_text()),
                      yaml.safe_load((wd / TINY).read_text()))
    (wd / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _slurm_job_ids(log):
    return re.findall(r"(?:SLURM jobid|external jobid:?)\s*'?(\d+)", log)


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, site_profile):
    wd = copy_workflow(tmp_path_factory.mktemp("slurm"))
    _tiny_as_default(wd)
    t0 = time.time()
    proc = snakemake(wd, *EXACT, env=site_profile, timeout=1500)
    return wd, proc.stdout, time.time() - t0


def test_exact_command_goes_through_slurm(slurm_run):
    wd, log, wall = slurm_run
    ids = _slurm_job_ids(log)
    # raw grid, instrument grid, 3 data sets, the Fisher ceiling, the figure, and the 3 cells
    # submitted together as one job of group "cells" (--group-components cells=20)
    assert len(ids) >= 8, f"expected every job to be submitted to Slurm:\n{log[-3000:]}"
    assert not (wd / ".snakemake/slurm_logs/rule_run_cell").exists(), "cells must go to Slurm as a group"
    assert (wd / "figures/r2_vs_snr.pdf").read_bytes()[:5] == b"%PDF-"
    logs = list((wd / ".snakemake/slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} & set(ids), "the plugin's per-job logs carry the Slurm job ids"
    print(f"Slurm run of the tiny DAG: {wall:.0f} s, {len(ids)} jobs")


def test_slurm_result_equals_local_run(slurm_run, tiny_run):
    wd, _, _ = slurm_run
    local = metrics_of(tiny_run, "results/**/*.json")
    remote = metrics_of(wd, "results/**/*.json")
    assert remote.keys() >= {"results/cells/ridge/nl1_n1000_s0.json", "results/track_c/fisher.json"}
    for key in remote:
        assert remote[key] == local[key], f"{key} differs between the Slurm run and the local run"


def test_rule_resources_reach_sbatch(slurm_run):
    wd, _, _ = slurm_run
    logs = sorted((wd / ".snakemake/slurm_logs/rule_compute_fisher_ceiling").rglob("*.log"))
    assert logs, "no Slurm log of compute_fisher_ceiling"
    job = logs[0].stem
    info = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert info, f"scontrol knows job {job} no more (MinJobAge too short?)"
    assert re.search(r"NumCPUs=2\b", info), info
    assert re.search(r"MinMemoryNode=4000M|mem=4000M", info), info
    assert "TimeLimit=00:20:00" in info, info


def _copy_run(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_failing_rule_is_reported_and_rerun_resumes(tiny_run, tmp_path, site_profile):
    wd = _copy_run(tiny_run, tmp_path / "wd")
    bad = yaml.safe_load((wd / TINY).read_text())
    bad["estimators"]["lightgbm"]["hyper"]["num_leaves"] = 1      # LightGBM refuses: the job fails on Slurm
    (wd / "bad.yaml").write_text(yaml.safe_dump(bad))
    target = ("figures/r2_vs_snr.pdf", "--cores", "8", "--profile", "slurm")
    fail = snakemake(wd, *target, "--configfile", "bad.yaml", env=site_profile, check=False, timeout=900)
    assert fail.returncode != 0
    assert re.search(r"Error in (rule run_cell|group cells)", fail.stdout), fail.stdout[-3000:]
    assert "num_leaves" in (wd / "logs/run_cell/lightgbm/nl1_n1000_s0.log").read_text()
    assert not (wd / "models/lightgbm/nl1_n1000_s0").exists()
    ok = snakemake(wd, *target, "--configfile", TINY, env=site_profile, timeout=900).stdout
    ran = set(re.findall(r"^\s*(?:local)?rule (\w+):", ok, flags=re.M))
    assert "run_cell" in ran and not ran & {"build_raw_grid", "convolve_grid", "simulate_dataset"}, ran
    assert metrics_of(wd, "results/cells/lightgbm/nl1_n1000_s0.json") == metrics_of(tiny_run, "results/cells/lightgbm/nl1_n1000_s0.json")


def test_scancel_is_reported_and_rerun_finishes(tiny_run, tmp_path, site_profile):
    wd = _copy_run(tiny_run, tmp_path / "wd")
    # the figure goes too: Snakemake rebuilds a missing intermediate only for a target that needs it
    shutil.rmtree(wd / "models/ridge/nl1_n1000_s0")
    for p in ("results/cells/ridge/nl1_n1000_s0.json", "figures/r2_vs_snr.pdf", "figures/r2_vs_snr.pdf.json"):
        (wd / p).unlink()
    cmd = [sys.executable, "-m", "snakemake", "figures/r2_vs_snr.pdf", "--cores", "8", "--profile", "slurm",
           "--configfile", TINY]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **site_profile})
    cancelled = None
    deadline = time.time() + 300
    while time.time() < deadline and cancelled is None and proc.poll() is None:
        # only this run's jobs: other workflows may share the cluster
        for line in subprocess.run(["squeue", "-h", "-o", "%i %T %k %Z"], capture_output=True, text=True).stdout.splitlines():
            job, state, comment, workdir = line.split()
            if state == "RUNNING" and ("run_cell" in comment or comment.startswith("group")) and workdir == str(wd):
                subprocess.run(["scancel", job], check=True)
                cancelled = job
                break
        time.sleep(0.3)
    out, _ = proc.communicate(timeout=600)
    assert cancelled, f"never saw run_cell running:\n{out[-3000:]}"
    assert proc.returncode != 0
    assert re.search(r"CANCELLED|Error in (rule run_cell|group cells)", out), out[-3000:]
    assert not (wd / "models/ridge/nl1_n1000_s0").exists(), "a cancelled job's output must not be kept"
    snakemake(wd, *EXACT[:1], "--cores", "8", "--profile", "slurm", "--configfile", TINY, env=site_profile,
              timeout=900)
    assert metrics_of(wd, "results/cells/ridge/nl1_n1000_s0.json") == metrics_of(tiny_run, "results/cells/ridge/nl1_n1000_s0.json")


def test_neural_cells_ask_slurm_for_a_gpu(tiny_run, tmp_path, site_profile):
    """The paper-scale training rule (run_neural_cell) asks Slurm for one GPU and CPUs per GPU
    (profiles/default). The CI node has no GPU, so sbatch refuses the job: the refusal and the
    plugin's sbatch line show the request -- and nothing ran."""
    wd = _copy_run(tiny_run, tmp_path / "wd")
    target = "results/cells/vit/nl1_n1000_s0.json"
    proc = snakemake(wd, target, "--cores", "8", "--profile", "slurm", "--configfile", TINY, "--verbose",
                     env=site_profile, check=False, timeout=600)
    assert proc.returncode != 0
    assert re.search(r"--gpus[= ]1\b", proc.stdout) or "gres" in proc.stdout.lower(), proc.stdout[-4000:]
    assert re.search(r"--cpus-per-gpu[= ]4\b", proc.stdout), proc.stdout[-4000:]
    assert not (wd / target).exists()
