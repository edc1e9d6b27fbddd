"""The library works however it is installed: as a wheel in a fresh virtual environment, not only as
the editable checkout the other tests import.

A wheel is built from a copy of the package sources (``pip wheel --no-deps --no-build-isolation``),
installed with ``--no-deps`` into a new venv that sees the packages of the interpreter running
pytest (the heavy dependencies come from there; :func:`make_venv`), and then, with that venv's
python and a copy of the workflow that holds no ``src/``: ``pfslogg`` is the installed copy, its
schema is package data, ``load_config`` validates ``config/config.yaml``, and ``snakemake -n
figures/r2_vs_snr.pdf`` plans the DAG.

Not ``venv --system-site-packages``: that exposes the *base* interpreter's site-packages, which are
those of pytest's interpreter only when pytest runs on a system python. Run from inside a venv
(``python3 -m venv V && V/bin/pip install -e '.[test]' && V/bin/python -m pytest``) the test venv
saw a bare Debian python without h5py or snakemake.
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


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}


def site_dirs(python):
    """The folders that the ``site`` module adds to ``python``'s sys.path -- its site-packages (a
    venv's own, plus the base's when it was made with --system-site-packages), the user site, and
    the folders its .pth files name -- as that interpreter reports them (``python -S`` leaves them
    out), minus the checkout's ``src/`` (the editable install's path). A venv inside the checkout
    (``python3 -m venv V`` in it, as the README's users do) is kept."""
    code = "import json, sys; print(json.dumps(sys.path))"
    full, bare = (json.loads(subprocess.run([str(python), *flags, "-c", code], capture_output=True, text=True,
                                            check=True, env=_clean_env(), timeout=120).stdout)
                  for flags in ((), ("-S",)))
    return [p for p in dict.fromkeys(full) if p not in bare and os.path.isdir(p)
            and not Path(p).resolve().is_relative_to((ROOT / "src").resolve())]


def make_venv(dest, python):
    """A new venv (no pip of its own) of ``python`` that sees the packages ``python`` sees: a .pth
    file in its site-packages lists ``site_dirs(python)``. Lines of a .pth file are plain sys.path
    entries, so the .pth files inside those folders (the checkout's editable install) are not run.
    Skips the test where no venv can be made."""
    dest = Path(dest)
    proc = _run([python, "-m", "venv", "--without-pip", dest], timeout=300, env=_clean_env())
    venv_python = dest / "bin" / "python"
    if proc.returncode != 0 or not venv_python.exists():
        pytest.skip(f"cannot create a virtual environment here (python -m venv failed):\n{proc.stdout[-2000:]}")
    purelib = subprocess.run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True, env=_clean_env(), timeout=120).stdout.strip()
    Path(purelib).mkdir(parents=True, exist_ok=True)
    (Path(purelib) / "_pfslogg_test_parent_site.pth").write_text("".join(f"{d}\n" for d in site_dirs(python)))
    return dest


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

    venv = make_venv(tmp / "venv", sys.executable)
    python = venv / "bin" / "python"
    env = _clean_env()
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    # pip comes from pytest's interpreter's site-packages; --ignore-installed: the checkout's
    # editable install of the same version is visible from the venv too (its dist-info, not its
    # src/), and must be neither reused nor uninstalled
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


def test_a_venv_made_from_inside_a_venv_sees_that_venvs_packages(tmp_path):
    """What ``installed`` does when pytest itself runs in a venv: the outer venv holds a module that
    the base interpreter lacks (as a user's venv holds h5py and snakemake that a bare system python
    lacks); the venv made by its python must import it, and h5py and snakemake, from there."""
    outer = make_venv(tmp_path / "outer", sys.executable)
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(subprocess.run([str(outer / "bin/python"), "-c", code], capture_output=True, text=True,
                                  check=True, timeout=120).stdout.strip())
    (purelib / "pfslogg_only_in_the_outer_venv.py").write_text("WHERE = 'outer venv'\n")
    base = subprocess.run([sys.executable, "-c", "import pfslogg_only_in_the_outer_venv"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert base.returncode != 0, "test bug: the probe module must exist in the outer venv only"

    inner = make_venv(tmp_path / "inner", outer / "bin/python")
    code = ("import json, sys, h5py, snakemake, pfslogg_only_in_the_outer_venv as m\n"
            "print(json.dumps({'prefix': sys.prefix, 'where': m.WHERE}))\n")
    proc = subprocess.run([str(inner / "bin/python"), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=_clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["prefix"]).resolve() == (tmp_path / "inner").resolve() and out["where"] == "outer venv"
