"""The README's report command works right after the README's main command, as the README writes them.

Both commands are read from README.md (the Quick start's snakemake command and the Usage table's
``--report`` row), so the test follows the README, not a copy of it; only ``--configfile`` with the
tiny configuration is added. The main command starts from a copy of the shared tiny run (which
built the same target with the same configuration), so it has little or nothing left to do.
"""

import re
import shlex
import shutil

import pytest

from workflow_util import ROOT, TINY, snakemake

pytestmark = pytest.mark.e2e


def _section(text, title):
    m = re.search(rf"^##+ {re.escape(title)}\s*$(.*?)(?=^##? |\Z)", text, flags=re.M | re.S)
    assert m, f"README.md has no section '{title}'"
    return m.group(1)


def readme_commands(readme=ROOT / "README.md"):
    """(main command, report command) of the README, each as the argument list after ``snakemake``."""
    text = readme.read_text()
    quick = _section(text, "Quick start")
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.S)
    assert block, "README.md: no bash block in Quick start"
    mains = [m.group(1) for line in block.group(1).splitlines()
             for m in [re.search(r"(?:^|&&\s*)(snakemake\s[^&;|#]*?)\s*(?:&&|;|\||#|$)", line)] if m]
    assert len(mains) == 1, f"README.md Quick start: expected one snakemake command, found {mains}"
    rows = re.findall(r"^\|\s*`(snakemake\s[^`]*--report\s[^`]*)`\s*\|", _section(text, "Usage"), flags=re.M)
    assert len(rows) == 1, f"README.md Usage table: expected one --report row, found {rows}"
    main, report = (shlex.split(c) for c in (mains[0], rows[0]))
    return main[1:], report[1:]


def test_readme_commands_are_the_documented_ones():
    main, report = readme_commands()
    assert main[0] == "figures/r2_vs_snr.pdf" and "--cores" in main, main
    assert "--report" in report and report[report.index("--report") + 1] == "report.html", report
    # the report names what to report: right after the main command, that is the main command's target
    assert main[0] in report, f"the report command must name the main command's target {main[0]}: {report}"


def test_report_right_after_the_main_command(tiny_run, tmp_path):
    main, report = readme_commands()
    wd = tmp_path / "wd"
    shutil.copytree(tiny_run, wd, symlinks=True)
    snakemake(wd, *main, "--configfile", TINY)
    proc = snakemake(wd, *report, "--configfile", TINY, check=False)
    assert proc.returncode == 0, f"snakemake {shlex.join(report)} failed:\n{proc.stdout[-6000:]}"
    html = wd / "report.html"
    assert html.is_file(), proc.stdout[-3000:]
    assert "r2_vs_snr.pdf" in html.read_text(errors="replace")
