"""envs/*.yaml must list every runtime dependency of pyproject.toml with the same pin."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"tables": "pytables"}


def _split(req):
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req.strip())
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_env_files_match_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for env in sorted((ROOT / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        flat = []
        for d in spec["dependencies"]:
            flat.extend(d["pip"] if isinstance(d, dict) else [d])
        listed = dict(_split(x) for x in flat if not x.startswith("-e") and not x.startswith("python="))
        for req in deps:
            name, pin = _split(req)
            name = CONDA_NAMES.get(name, name)
            assert name in listed, f"{env.name}: missing dependency {name}"
            assert listed[name] == pin, f"{env.name}: {name} pinned '{listed[name]}', pyproject says '{pin}'"
