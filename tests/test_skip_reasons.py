"""Why a test skipped is on the screen: pytest runs with ``-ra`` (pyproject.toml), and the skips of
``conftest.require_tools`` fold into one summary line per missing tool -- whether the tool is
required in a test or in a (session) fixture that many tests share -- while under CI they fail,
naming every missing tool."""

import os
import re
import shutil
import subprocess
import sys

from workflow_util import ROOT

TESTS = '''
import pytest
from conftest import require_tools


@pytest.fixture(scope="session")
def shared():
    require_tools("pfslogg-missing-a", "pfslogg-missing-b")


@pytest.mark.parametrize("i", range(3))
def test_shared_fixture(shared, i):
    pass


@pytest.mark.parametrize("i", range(2))
def test_in_the_body(i):
    require_tools("pfslogg-missing-b")


def test_tool_present():
    require_tools("{present}")
'''


def _pytest(tmp_path, ci):
    shutil.copy(ROOT / "tests/conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_needs_tools.py").write_text(TESTS.format(present=os.path.basename(sys.executable)))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    if ci:
        env["CI"] = "true"
    # the project's pytest configuration (addopts and all), no -r flag of our own
    return subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
                           str(tmp_path), "-p", "no:cacheprovider", "test_needs_tools.py"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def test_one_summary_line_per_missing_tool(tmp_path):
    out = _pytest(tmp_path, ci=False).stdout
    assert "1 passed, 5 skipped" in out, out[-3000:]
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 2, out[-3000:]
    assert re.fullmatch(r"SKIPPED \[3\] conftest\.py:\d+: needs pfslogg-missing-a: not on PATH", skipped[0]), skipped
    assert re.fullmatch(r"SKIPPED \[2\] conftest\.py:\d+: needs pfslogg-missing-b: not on PATH", skipped[1]), skipped


def test_under_ci_a_missing_tool_fails_naming_every_one(tmp_path):
    out = _pytest(tmp_path, ci=True).stdout
    assert "2 failed, 1 passed, 3 errors" in out, out[-3000:]   # errors: in the shared fixture's setup
    assert "CI must run this test but pfslogg-missing-a, pfslogg-missing-b are not on PATH" in out
    assert "CI must run this test but pfslogg-missing-b is not on PATH" in out
    assert not [line for line in out.splitlines() if line.startswith("SKIPPED")]
