"""Helpers for tests that run the Snakemake workflow in a temporary copy of the repository."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests/configs/tiny.yaml"
WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "config", "profiles", "paper", "envs", "report", "tests/configs")


def copy_workflow(dest):
    """Copy what a user's clone holds (minus generated folders) to ``dest``."""
    dest = Path(dest)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if not src.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("build", "generated", "__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir, *args, timeout=1200, env=None, check=True):
    """Run snakemake in ``workdir``; returns the CompletedProcess (stdout+stderr in .stdout)."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


def metrics_of(workdir, pattern="results/**/*.json"):
    """{relative path: metrics} of every results JSON (provenance, with its times, left out)."""
    import json
    workdir = Path(workdir)
    return {str(p.relative_to(workdir)): json.loads(p.read_text())["metrics"]
            for p in sorted(workdir.glob(pattern))}
