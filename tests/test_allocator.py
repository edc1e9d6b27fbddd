"""The command line's allocator setting: it takes effect (freed large blocks are reused, not handed back
and faulted in again) and the command line applies it before a step runs."""

import json
import os
import subprocess
import sys

import pytest

from pfslogg import cli
from pfslogg.allocator import reuse_freed_memory

PROBE = r"""
import json, resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from pfslogg.allocator import reuse_freed_memory
    done = reuse_freed_memory()
else:
    done = None
a = np.ones((1024, 4096)); del a                 # 32 MiB, a training stream's block of float64
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones((1100, 4096)); del a             # 34 MiB: above glibc's largest default mmap threshold
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"faults": after - before, "done": done}))
"""


def _probe(mode):
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"}   # count 4 KiB faults in both runs
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_blocks_are_reused_not_faulted_in_again():
    default, tuned = _probe("default"), _probe("tuned")
    assert tuned["done"]["mallopt"] is True
    # 20 fresh 34 MiB arrays: by default each is a new mmap whose 8,800 pages (4 KiB; fewer where the
    # kernel gives huge pages unasked) fault in again; with the setting the first block's memory is reused
    assert default["faults"] >= 20
    assert tuned["faults"] < default["faults"] / 10


def test_numpy_huge_page_switch_turned_off():
    reuse_freed_memory()
    done = reuse_freed_memory()          # a second call reports the state the first one left
    assert done["numpy_huge_pages"] in (False, None)


def test_command_line_applies_it_before_the_step(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "reuse_freed_memory", lambda: calls.append("allocator"))
    monkeypatch.setattr(cli, "die_with_workflow", lambda: None)
    def step(args, params):
        """A step that records that it ran."""
        calls.append("step")

    monkeypatch.setitem(cli.COMMANDS, "describe-grid", (step, ["grid", "out"]))
    grid = tmp_path / "grid.h5"
    grid.write_bytes(b"")
    with pytest.raises(SystemExit):
        cli.main(["describe-grid", "--no-such-flag"])   # argparse rejects: nothing ran
    assert calls == []
    assert cli.main(["describe-grid", "--grid", str(grid), "--out", str(tmp_path / "o.json")]) == 0
    assert calls == ["allocator", "step"]


def test_missing_input_is_one_line_naming_it(tmp_path, capsys):
    rc = cli.main(["run-cell", "--train", str(tmp_path / "missing.h5"), "--val", "v.h5", "--test", "t.h5",
                   "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o.json"),
                   "--predictions", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert err.startswith("error: --train ") and "missing.h5: no such file or folder" in err
    assert not list(tmp_path.iterdir())
