"""The profiles resolve the whole DAG, and per-rule resources come from profiles/default."""

import re

import yaml

from workflow_util import ROOT, copy_workflow, snakemake

RULES = {"build_raw_grid", "convolve_grid", "simulate_dataset", "describe_dataset", "describe_grid", "run_cell",
         "aggregate_experiment", "compute_fisher_ceiling", "compute_bayes_ceiling", "calibrate_ceiling", "plot_figure",
         "compute_crlb_validation", "compute_snr_sweep", "check_ceiling", "run_neural_cell", "compute_attention_maps",
         "tabulate", "collect_numbers", "compile_paper", "compute_bayes_ceiling_at_noise", "summarize_moe",
         "check_error_channel_ceiling", "summarize_denoising", "check_denoised_ceiling", "sample_posterior",
         "check_uncertainties", "check_coverage"}
RUN_RULES = RULES - {"describe_dataset"}   # the default config simulates every split


def test_slurm_profile_dry_run_resolves_the_whole_dag(tmp_path):
    wd = copy_workflow(tmp_path)
    out = snakemake(wd, "all", "-n", "--profile", str(wd / "profiles/slurm"), "--cores", "8").stdout
    jobs = set(re.findall(r"^rule (\w+):", out, flags=re.M)) | set(re.findall(r"^localrule (\w+):", out, flags=re.M))
    table = set(re.findall(r"^(\w+)\s+\d+\s*$", out, flags=re.M))
    assert RUN_RULES <= (jobs | table), f"rules missing from the dry run: {RUN_RULES - (jobs | table)}\n{out[-3000:]}"


def test_default_profile_sets_resources_for_every_rule():
    prof = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    rules_text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    defined = set(re.findall(r"^rule (\w+):", rules_text, flags=re.M))
    defined |= set(re.findall(r"^use rule \w+ as (\w+)", rules_text, flags=re.M))
    assert RULES == defined - {"all", "paper", "track_a", "track_b", "track_c", "track_d", "track_e", "track_f"}, defined
    for rule in RULES:
        assert rule in prof["set-resources"], f"profiles/default: no resources for rule {rule}"
        res = prof["set-resources"][rule]
        assert res["mem_mb"] > 0 and res["runtime"] > 0

    for rule in prof["set-threads"]:
        assert rule in RULES, f"profiles/default: threads for unknown rule {rule}"


def test_resources_reach_the_jobs(tmp_path):
    wd = copy_workflow(tmp_path)
    out = snakemake(wd, "figures/r2_vs_snr.pdf", "-n", "--cores", "2", "--configfile", "tests/configs/tiny.yaml").stdout
    block = out[out.index("rule run_cell:"):] if "rule run_cell:" in out else out[out.index("localrule run_cell:"):]
    block = block[:block.index("\n\n")] if "\n\n" in block else block
    assert "mem_mb=4000" in block and "runtime=15" in block, block


def test_slurm_profile_groups_the_cells():
    """Cells go to Slurm 20 to a job (group 'cells'), not as a burst of one job each."""
    prof = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert "cells=20" in prof["group-components"]
    assert 'group:\n        "cells"' in (ROOT / "rules/experiments.smk").read_text()
