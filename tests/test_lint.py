"""The workflow as its best users write it: lint-clean, every rule documented, logged, with an env."""

import re

from workflow_util import ROOT, TINY, copy_workflow, snakemake


def _rules():
    """{rule name: its text} of every rule in rules/*.smk and the Snakefile."""
    out = {}
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in re.finditer(r"^rule (\w+):", text, flags=re.M)]
        for (a, name), (b, _) in zip(starts, starts[1:] + [(len(text), None)]):
            out[name] = text[a:b]
    return out


TARGETS = {"all", "paper", "track_a", "track_b", "track_c", "track_d", "track_e", "track_f"}


def test_snakemake_lint_is_clean(tmp_path):
    wd = copy_workflow(tmp_path)
    proc = snakemake(wd, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Congratulations" in proc.stdout, proc.stdout[-3000:]


def test_every_rule_has_a_docstring_and_every_job_rule_a_log_and_an_env():
    rules = _rules()
    assert len(rules) >= 15
    for name, text in rules.items():
        assert re.search(r'^rule \w+:\n    """', text), f"rule {name}: no docstring (what --list-rules prints)"
        if name in TARGETS:
            continue
        assert "\n    log:" in text, f"rule {name}: no log"
        assert "\n    conda:" in text, f"rule {name}: no conda env"


def test_training_and_evaluation_rules_record_their_cost():
    rules = _rules()
    for name in ("run_cell", "run_neural_cell", "simulate_dataset", "compute_fisher_ceiling", "compute_bayes_ceiling",
                 "calibrate_ceiling", "compute_crlb_validation", "compute_snr_sweep", "compute_attention_maps",
                 "summarize_moe"):
        assert "\n    benchmark:" in rules[name], f"rule {name}: no benchmark"


def test_list_rules_describes_every_rule(tmp_path):
    wd = copy_workflow(tmp_path)
    out = snakemake(wd, "--list-rules").stdout
    for name in _rules():
        m = re.search(rf"^{name} \((\w.*)", out, flags=re.M)
        assert m, f"--list-rules gives no description of {name}:\n{out[-2000:]}"


def test_cli_help_describes_every_command():
    """One entry point: `python -m pfslogg --help` lists each command (one per rule) with a help
    line, and the provenance audit."""
    import subprocess
    import sys

    from pfslogg.cli import COMMANDS

    out = subprocess.run([sys.executable, "-m", "pfslogg", "--help"], capture_output=True, text=True, check=True).stdout
    for name in [*COMMANDS, "provenance"]:
        assert re.search(rf"^\s+{name}\s*\n?\s+\w", out, flags=re.M), f"{name} has no help line:\n{out}"
    rules = _rules()
    for name in COMMANDS:
        if name != "check-paper":
            assert name.replace("-", "_") in rules, f"command {name} is named after no rule"


def test_paper_target_compiles_every_track_document(tmp_path):
    """The DAG of ``snakemake paper`` (a dry run on the tiny config): rule paper reads the PDF of the
    whole study and of every registered track, and each is a compile_paper job."""
    from pfslogg.tracks import TRACKS

    wd = copy_workflow(tmp_path)
    out = snakemake(wd, "paper", "-n", "--cores", "2", "--configfile", TINY).stdout
    m = re.search(r"^rule paper:\n    input: (.*)$", out, flags=re.M)
    assert m, out[-3000:]
    pdfs = {"paper/build/main.pdf"} | {f"paper/build/{t.doc}.pdf" for t in TRACKS.values()}
    assert set(m.group(1).split(", ")) == pdfs
    for pdf in pdfs:
        assert re.search(rf"^rule compile_paper:\n(    .*\n)*?    output: {re.escape(pdf)}$", out, flags=re.M), pdf
