"""The library works however it is installed: as a wheel in a fresh virtual environment, not only as
the editable checkout the other tests import.

A wheel is built from a copy of the package sources (``pip wheel --no-deps --no-build-isolation``),
installed with ``--no-deps`` into a new venv that sees the system's site-packages (the heavy
dependencies come from there), and then, with that venv's python and a copy of the workflow that
holds no ``src/``: ``pfslogg`` is the installed copy, its schema is package data, ``load_config``
validates ``config/config.yaml``, and ``snakemake -n figures/r2_vs_snr.pdf`` plans the DAG.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workflow_util import ROOT, copy_workflow

pytestmark = pytest.mark.e2e
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in", "src")


def _run(cmd, timeout, **kw):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, wheel path, environment with the venv's bin first on PATH)."""
    tmp = tmp_path_factory.mktemp("install")
    # build from a copy: an in-tree build would write build/ and *.egg-info into the checkout
    tree = tmp / "source"
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        elif src.is_file():
            tree.mkdir(exist_ok=True)
            shutil.copy2(src, tree / name)
    dist = tmp / "dist"
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--disable-pip-version-check", "-w", dist, tree], timeout=600)
    wheels = sorted(dist.glob("pfslogg-*.whl"))
    assert proc.returncode == 0 and len(wheels) == 1, (
        "pip wheel --no-deps --no-build-isolation failed: it needs the build backend of pyproject.toml "
        "(setuptools>=64) installed here; with build isolation pip would fetch it from the network\n"
        + proc.stdout[-4000:])

    venv = tmp / "venv"
    proc = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], timeout=300)
    python = venv / "bin" / "python"
    if proc.returncode != 0 or not python.exists():
        pytest.skip(f"cannot create a virtual environment here (python -m venv failed):\n{proc.stdout[-2000:]}")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    # pip comes from the system site-packages; --ignore-installed: the checkout's editable install
    # of the same version is visible from the venv too, and must be neither reused nor uninstalled
    proc = _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                 "--disable-pip-version-check", wheels[0]], timeout=600, env=env, cwd=tmp)
    assert proc.returncode == 0, f"pip install --no-deps of the wheel into the venv failed:\n{proc.stdout[-4000:]}"
    return venv, wheels[0], env


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    """A copy of the workflow without src/ and without config/schema.yaml (in the checkout, a link into
    src/): whatever validates the configuration must find the schema in the installed package."""
    wd = copy_workflow(tmp_path_factory.mktemp("installed_wf"))
    (wd / "config" / "schema.yaml").unlink(missing_ok=True)
    assert not (wd / "src").exists()
    return wd


def test_wheel_ships_the_schema(installed):
    _, wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "pfslogg/schema.yaml" in names, sorted(n for n in names if not n.endswith(".py"))
    assert "pfslogg/__main__.py" in names and "pfslogg/config.py" in names


def test_installed_package_is_the_wheel_and_loads_the_config(installed, workflow_copy):
    venv, _, env = installed
    code = ("import json, sys, pfslogg\n"
            "from pfslogg.config import SCHEMA, load_config\n"
            "cfg = load_config('config/config.yaml')\n"
            "print(json.dumps({'file': pfslogg.__file__, 'schema': str(SCHEMA), 'schema_file': SCHEMA.is_file(),\n"
            "                  'prefix': sys.prefix, 'keys': sorted(cfg)}))\n")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=workflow_copy, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    venv_dir, here = venv.resolve(), Path(out["file"]).resolve()
    assert here.is_relative_to(venv_dir), f"pfslogg imported from {here}, not from the venv {venv_dir}"
    assert not here.is_relative_to(ROOT / "src"), f"pfslogg imported from the checkout: {here}"
    assert Path(out["prefix"]).resolve() == venv_dir
    schema = Path(out["schema"])
    assert out["schema_file"] and schema.is_relative_to(venv_dir) and schema.name == "schema.yaml", out
    assert {"grid", "datasets", "experiments", "estimators"} <= set(out["keys"]), out["keys"]


def test_dry_run_of_the_headline_figure_with_the_installed_package(installed, workflow_copy):
    venv, _, env = installed
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "snakemake", "-n", "figures/r2_vs_snr.pdf",
                           "--cores", "1"], cwd=workflow_copy, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "plot_figure" in proc.stdout, proc.stdout[-3000:]
