"""Provenance blocks (DESIGN.md section 5) and atomic results files."""

import datetime as dt
import hashlib
import json
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from pfslogg.atomic import atomic_path, write_json
from pfslogg.provenance import config_digest, git_state, make_block, sha256_file, write_results

DESIGN_KEYS = {"rule", "command", "git_commit", "git_dirty", "config_digest", "inputs", "packages",
               "started", "finished", "host"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def inputs(tmp_path):
    a = tmp_path / "a.h5"
    b = tmp_path / "sub" / "b.csv"
    b.parent.mkdir()
    a.write_bytes(bytes(range(256)) * 10)
    b.write_text("log_g,snr\n1.0,3.0\n")
    return [a, b]


def test_block_has_every_design_key(inputs):
    block = make_block("train_ridge", inputs, params={"alpha": 1.0})
    assert DESIGN_KEYS <= set(block)
    assert block["rule"] == "train_ridge" and block["params"] == {"alpha": 1.0}
    assert block["host"] == socket.gethostname()
    json.dumps(block)  # serialisable as is


def test_inputs_sha256(inputs):
    block = make_block("r", inputs)
    assert list(block["inputs"]) == [str(p) for p in inputs]
    for p in inputs:
        assert block["inputs"][str(p)] == hashlib.sha256(p.read_bytes()).hexdigest()
    # a large file, read in several buffers
    big = inputs[0].parent / "big.bin"
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    big.write_bytes(data)
    assert sha256_file(big) == hashlib.sha256(data).hexdigest()


def test_changed_input_changes_checksum(inputs):
    before = make_block("r", inputs)["inputs"][str(inputs[1])]
    inputs[1].write_text("log_g,snr\n1.0,3.1\n")
    assert make_block("r", inputs)["inputs"][str(inputs[1])] != before


def test_config_digest_stable_and_order_independent():
    cfg = {"b": [1, 2.5], "a": {"y": None, "x": "s"}}
    reordered = {"a": {"x": "s", "y": None}, "b": [1, 2.5]}
    assert config_digest(cfg) == config_digest(reordered)
    # pinned: the canonical form must not drift, or every recorded digest goes stale
    assert config_digest(cfg) == "fcd5c610f11eb59647d9b7e53a8066441273ee64c794412a48288cf6f423a294"
    assert config_digest(cfg) == hashlib.sha256(b'{"a":{"x":"s","y":null},"b":[1,2.5]}').hexdigest()


def test_config_digest_sensitive_to_values():
    base = {"noise": {"mag": [20.5, 22.5]}, "seed": 1}
    assert config_digest(base) != config_digest({"noise": {"mag": [20.5, 22.0]}, "seed": 1})
    assert config_digest(base) != config_digest({"noise": {"mag": [22.5, 20.5]}, "seed": 1})  # list order matters
    assert config_digest(base) != config_digest({**base, "seed": 2})


def test_block_digest_of_config_or_params(inputs):
    params = {"x": 1}
    assert make_block("r", [], params=params)["params_digest"] == config_digest(params)
    cfg = {"whole": "config"}
    block = make_block("r", [], params=params, config=cfg)
    assert block["config_digest"] == config_digest(cfg) and block["params_digest"] == config_digest(params)


def test_config_digest_comes_from_the_workflow(monkeypatch):
    """Inside the workflow every job records the digest of the whole config (rules/common.smk puts
    it in the environment), beside the digest of its own parameters."""
    from pfslogg.provenance import CONFIG_DIGEST_ENV
    monkeypatch.setenv(CONFIG_DIGEST_ENV, "abc123")
    assert make_block("r", [], params={"a": 1})["config_digest"] == "abc123"
    monkeypatch.delenv(CONFIG_DIGEST_ENV)
    assert make_block("r", [], params={"a": 1})["config_digest"] is None


def test_git_state_of_the_package_repository():
    commit, dirty = make_block("r", [])["git_commit"], make_block("r", [])["git_dirty"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the package is not in a git checkout")
    assert commit == head.stdout.strip() and len(commit) == 40
    assert isinstance(dirty, bool)


def test_git_state_outside_git(tmp_path):
    assert git_state(tmp_path) == (None, None)


def test_packages_and_times(inputs):
    started = "2024-11-24T10:00:00+00:00"
    block = make_block("r", inputs, started=started)
    assert block["started"] == started
    finished = dt.datetime.fromisoformat(block["finished"])
    assert finished.tzinfo is not None and finished > dt.datetime.fromisoformat(started)
    pk = block["packages"]
    assert pk["numpy"] == metadata.version("numpy") and pk["torch"] == metadata.version("torch")
    assert "python" in pk and "pfslogg" in pk


def test_command_recorded(inputs):
    assert make_block("r", inputs, command="python -m pfslogg train --params '{}'")["command"] == \
        "python -m pfslogg train --params '{}'"
    assert isinstance(make_block("r", inputs)["command"], str)


def test_write_results(tmp_path, inputs):
    out = tmp_path / "results" / "track_f" / "ridge.json"
    metrics = {"r2": np.float64(0.75), "n": np.int64(300), "bins": np.array([0.1, 0.2])}
    write_results(out, metrics, "run_cell", inputs, params={"seed": 1}, kind="estimator", details={"t": 1.5})
    doc = json.loads(out.read_text())
    assert list(doc) == ["kind", "metrics", "details", "provenance"] and doc["kind"] == "estimator"
    assert doc["metrics"] == {"r2": 0.75, "n": 300, "bins": [0.1, 0.2]}
    assert doc["details"] == {"t": 1.5}
    assert DESIGN_KEYS <= set(doc["provenance"])
    assert doc["provenance"]["inputs"][str(inputs[0])] == sha256_file(inputs[0])
    assert sorted(p.name for p in out.parent.iterdir()) == ["ridge.json"]


def test_failing_write_leaves_no_file(tmp_path, inputs):
    out = tmp_path / "results" / "x.json"
    with pytest.raises(TypeError):
        write_results(out, {"bad": object()}, "r", inputs, kind="estimator")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []   # no temporary left either


def test_failing_write_keeps_previous_file(tmp_path, inputs):
    out = tmp_path / "x.json"
    write_results(out, {"r2": 0.5}, "r", inputs, kind="estimator")
    before = out.read_bytes()
    with pytest.raises(TypeError):
        write_results(out, {"r2": 0.6, "bad": {1, 2}}, "r", inputs, kind="estimator")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "sub", "x.json"]


def test_missing_input_leaves_no_file(tmp_path):
    out = tmp_path / "x.json"
    with pytest.raises(OSError):
        write_results(out, {"r2": 0.5}, "r", [tmp_path / "gone.h5"], kind="estimator")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_error_midway(tmp_path):
    out = tmp_path / "f.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    write_json(out, {"a": 1})
    assert json.loads(out.read_text()) == {"a": 1}


def test_sha256_cache_across_processes_follows_changes(tmp_path, monkeypatch):
    """The on-disk cache of input digests gives the true digest, and a changed file (size or
    modification time) is hashed again, never served from the cache."""
    import os

    import pfslogg.provenance as prov

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".snakemake").mkdir()
    monkeypatch.setattr(prov, "SHA_CACHE_MIN_BYTES", 0)
    f = tmp_path / "big.h5"
    f.write_bytes(b"a" * 1000)
    prov._sha256.cache_clear()
    assert prov.sha256_file(f) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert len(list((tmp_path / ".snakemake/pfslogg-sha256").iterdir())) == 1
    prov._sha256.cache_clear()
    assert prov.sha256_file(f) == hashlib.sha256(b"a" * 1000).hexdigest()   # from the cache
    f.write_bytes(b"b" * 1000)                                              # same size, new mtime
    os.utime(f, ns=(1, 2))
    prov._sha256.cache_clear()
    assert prov.sha256_file(f) == hashlib.sha256(b"b" * 1000).hexdigest()
