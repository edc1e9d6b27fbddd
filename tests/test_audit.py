"""Provenance audit: from a macro, a printed number, a figure or a results file back to the rule,
command, inputs (checksums then and now), commit and packages; STALE when an input changed."""

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pfslogg import audit, paper
from pfslogg.atomic import write_json
from test_paper import make_results_tree

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def root(tmp_path):
    """A workflow root with results, a figure sidecar, rules/baselines.smk and numbers.json."""
    root = make_results_tree(tmp_path / "wf")
    paper.write_numbers_tex(root / "results", root / "paper/generated/numbers.tex")
    return root


def run(root, *args, capsys):
    code = audit.main([*args, "--root", str(root)])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(root, *args, capsys):
    code, out, _ = run(root, *args, "--json", capsys=capsys)
    return code, json.loads(out)


def test_macro_query_prints_the_whole_chain(root, capsys):
    code, out, _ = run(root, "\\TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0
    assert "\\TrackFRidgeOverallRtwo = 0.471" in out
    assert "results/track_f/ridge.json :: overall.r2 = 0.4712" in out
    assert "rule train_ridge   defined at rules/baselines.smk:2" in out
    assert "python -m pfslogg.train_ridge --fake" in out
    assert '"estimator": "ridge"' in out                     # params
    assert "OK      data/train.h5" in out and "unchanged" in out
    assert "upstream: results/data/test.json" in out         # an input that is a results file
    assert "rule simulate_test" in out
    assert "commit" in out and "packages" in out and "python " in out and "numpy " in out
    assert "STALE" not in out and "up to date" in out


def test_macro_query_without_backslash_and_any_case(root, capsys):
    for q in ("TrackFRidgeOverallRtwo", "trackfridgeoverallrtwo"):
        code, report = run_json(root, q, capsys=capsys)
        assert code == 0 and report["kind"] == "macro"
        assert [m["macro"] for m in report["matches"]] == ["TrackFRidgeOverallRtwo"]


def test_use_rule_alias_is_located(root, capsys):
    code, report = run_json(root, "TrackFLightgbmOverallRtwo", capsys=capsys)
    assert report["matches"][0]["results"]["rule_defined_at"] == ["rules/baselines.smk:6"]


def test_rule_missing_from_rule_files_is_said(root, capsys):
    code, out, _ = run(root, "TrackCFisherOverallRtwomaxMedian", capsys=capsys)
    assert code == 0 and "rule fisher_ceiling   (no 'rule fisher_ceiling:' found in Snakefile" in out


def test_number_query_finds_every_macro_with_that_value(root, capsys):
    code, out, _ = run(root, "0.471", capsys=capsys)
    assert code == 0
    assert "2 numbers in the paper match 0.471" in out
    assert "\\TrackFRidgeOverallRtwo = 0.471" in out
    assert "\\TrackFLightgbmSnrBinsTwoRtwo = 0.471" in out


def test_number_query_matches_raw_values_that_round_to_it(root, capsys):
    code, report = run_json(root, "0.47", capsys=capsys)
    hits = {m["macro"]: m["how"] for m in report["matches"]}
    assert hits["TrackFRidgeOverallRtwo"] == "raw value rounds to it"
    assert hits["TrackFLightgbmSnrBinsTwoRtwo"] == "raw value rounds to it"
    assert hits["TrackFTemplateSnrBinsThreeRtwo"] == "raw value rounds to it"   # 0.4745
    assert "TrackFTemplateOverallRtwo" not in hits                               # 0.4021
    # printed forms of integers with grouping
    for q in ("20000", "20 000", "20,000"):
        code, report = run_json(root, q, capsys=capsys)
        assert {m["macro"] for m in report["matches"]} >= {"TrackFRidgeNTrain", "TrackFLightgbmNTrain"}


def test_figure_query_follows_the_sidecar_to_results_and_their_inputs(root, capsys):
    code, out, _ = run(root, "figures/r2_vs_snr.pdf", capsys=capsys)
    assert code == 0
    assert "figure figures/r2_vs_snr.pdf   (sidecar figures/r2_vs_snr.pdf.json)" in out
    assert "rule plot_r2_vs_snr" in out
    for name in ("ridge", "lightgbm", "template"):
        assert f"upstream: results/track_f/{name}.json" in out
    assert "rule train_ridge" in out and "rule simulate_test" in out


def test_results_path_query_lists_its_macros(root, capsys):
    code, report = run_json(root, "results/track_c/fisher.json", capsys=capsys)
    assert code == 0 and report["kind"] == "path"
    match = report["matches"][0]
    assert match["artifact"] == "results/track_c/fisher.json" and match["sidecar"] is None
    assert "TrackCFisherOverallRtwomaxMedian" in match["macros"]
    assert match["results"]["rule"] == "fisher_ceiling"
    # an absolute path works too
    code, report = run_json(root, str(root / "results/track_c/fisher.json"), capsys=capsys)
    assert code == 0 and report["matches"][0]["artifact"] == "results/track_c/fisher.json"


def test_changed_input_makes_the_number_stale(root, capsys):
    (root / "data/train.h5").write_bytes(b"different training spectra")
    code, out, _ = run(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0
    assert "CHANGED data/train.h5" in out and "<- STALE" in out
    assert "STALE: input data/train.h5 changed since results/track_f/ridge.json was made" in out
    code, report = run_json(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert report["stale"] is True


def test_change_upstream_is_found_through_the_chain(root, capsys):
    (root / "data/test.h5").write_bytes(b"other test spectra")
    code, report = run_json(root, "figures/r2_vs_snr.pdf", capsys=capsys)
    assert code == 0 and report["stale"]
    assert any("data/test.h5 changed since results/data/test.json" in r
               for r in report["stale_reasons"])


def test_vanished_input_is_stale(root, capsys):
    (root / "data/train.h5").unlink()
    code, out, _ = run(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0 and "MISSING data/train.h5" in out and "vanished" in out


def test_results_rewritten_after_numbers_tex_is_stale(root, capsys):
    path = root / "results/track_f/ridge.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["overall"]["r2"] = 0.5
    write_json(path, doc)
    code, report = run_json(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0 and report["stale"]
    reasons = " ".join(report["stale_reasons"])
    assert "changed since paper/generated/numbers.tex was generated" in reasons
    assert "is now 0.5, the paper has 0.4712" in reasons


def test_index_is_built_from_results_when_numbers_json_is_absent(root, capsys):
    (root / "paper/generated/numbers.json").unlink()
    code, report = run_json(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0 and "collected now" in report["index"]


@pytest.mark.parametrize("query, message", [
    ("TrackFRidgeOverallRthree", "did you mean \\TrackFRidgeOverallRtwo"),
    ("0.123456", "no number in the paper"),
    ("figures/none.pdf", "no results file or figure sidecar"),
])
def test_unknown_query_exits_1_with_a_message(root, capsys, query, message):
    code, out, err = run(root, query, capsys=capsys)
    assert code == 1 and out == ""
    assert "not found" in err and message in err


def test_file_without_provenance_is_not_a_match(root, capsys):
    (root / "figures/bare.pdf").write_bytes(b"%PDF")
    code, _, err = run(root, "figures/bare.pdf", capsys=capsys)
    assert code == 1 and "no provenance block, no sidecar" in err


def test_broken_index_is_an_input_error(root, capsys):
    (root / "paper/generated/numbers.json").write_text("{broken")
    code, _, err = run(root, "0.471", capsys=capsys)
    assert code == 2 and "not a numbers index" in err


def test_module_runs_as_a_command(root):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "pfslogg.audit", "0.471"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\\TrackFRidgeOverallRtwo = 0.471" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "pfslogg.audit", "NoSuchMacro"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "not found" in proc.stderr


# ---------------------------------------------------------------------------------- documents


@pytest.fixture
def docs_root(tmp_path):
    """A workflow root whose paper has per-document numbers (as rule collect_numbers writes)."""
    root = make_results_tree(tmp_path / "wf")
    gen = root / "paper/generated"
    paper.write_numbers_tex(root / "results", gen / "main/numbers.tex")
    paper.write_numbers_tex(root / "results", gen / "track_f/numbers.tex",
                            files=[root / "results/track_f/ridge.json",
                                   root / "results/data/test.json"])
    return root


def test_per_document_indexes_are_merged(docs_root, capsys):
    code, report = run_json(docs_root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0 and report["index"] == ("paper/generated/main/numbers.json, "
                                             "paper/generated/track_f/numbers.json")
    assert report["matches"][0]["documents"] == ["paper/generated/main/numbers.json",
                                                 "paper/generated/track_f/numbers.json"]
    code, out, _ = run(docs_root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert "in       main, track_f" in out
    code, report = run_json(docs_root, "TrackFLightgbmOverallRtwo", capsys=capsys)
    assert report["matches"][0]["documents"] == ["paper/generated/main/numbers.json"]


def test_rewritten_results_are_stale_in_every_document_that_prints_them(docs_root, capsys):
    path = docs_root / "results/track_f/ridge.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["overall"]["r2"] = 0.5
    write_json(path, doc)
    code, report = run_json(docs_root, "TrackFRidgeOverallRtwo", capsys=capsys)
    reasons = " ".join(report["stale_reasons"])
    assert "changed since paper/generated/main/numbers.tex was generated" in reasons
    assert "changed since paper/generated/track_f/numbers.tex was generated" in reasons


def test_cfg_macro_is_traced_to_the_rule_parameters(docs_root, capsys):
    code, out, _ = run(docs_root, "DataTestCfgNoiseThroughput", capsys=capsys)
    assert code == 0
    assert "results/data/test.json :: provenance.params.noise.throughput = 2.2" in out
    assert "rule simulate_test" in out and "STALE" not in out
    path = docs_root / "results/data/test.json"
    doc = json.loads(path.read_text())
    doc["provenance"]["params"]["noise"]["throughput"] = 3.0
    write_json(path, doc)
    code, report = run_json(docs_root, "DataTestCfgNoiseThroughput", capsys=capsys)
    assert report["matches"][0]["raw_now"] == 3.0
    assert any("is now 3.0, the paper has 2.2" in r for r in report["stale_reasons"])


# ---------------------------------------------------------------------------------- Snakemake records


def _record(root, path, rule, inputs, shellcmd, end):
    """A metadata record as Snakemake (file persistence) writes it."""
    name = base64.urlsafe_b64encode(path.encode()).decode()
    rec = {"rule": rule, "input": inputs, "log": [], "shellcmd": shellcmd, "params": [],
           "code": shellcmd, "record_format_version": 6, "starttime": end - 5, "endtime": end,
           "incomplete": False, "input_checksums": {}}
    meta = root / ".snakemake" / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / name).write_text(json.dumps(rec))


def test_inputs_without_provenance_are_followed_through_snakemake_records(root, capsys):
    now = time.time()
    (root / "data").joinpath("raw.h5").write_bytes(b"raw grid")
    os.utime(root / "data/raw.h5", (now - 100, now - 100))
    _record(root, "data/train.h5", "simulate_train", ["data/raw.h5"],
            "python -m pfslogg simulate-dataset --split train", now - 50)
    code, out, _ = run(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert code == 0
    assert "upstream: data/train.h5 (Snakemake record)" in out
    assert "python -m pfslogg simulate-dataset --split train" in out
    assert "OK      data/raw.h5   not modified since" in out
    assert "STALE" not in out
    # an input modified after the job ended makes everything downstream stale
    os.utime(root / "data/raw.h5", (now, now))
    code, report = run_json(root, "TrackFRidgeOverallRtwo", capsys=capsys)
    assert report["stale"]
    assert "input data/raw.h5 modified since data/train.h5 was made" in report["stale_reasons"]


def test_an_output_with_only_a_snakemake_record_is_a_path_match(root, capsys):
    (root / "models").mkdir()
    (root / "models/ridge.pkl").write_bytes(b"model")
    _record(root, "models/ridge.pkl", "train_ridge", ["data/train.h5"],
            "python -m pfslogg train --estimator ridge", time.time() + 10)
    code, out, _ = run(root, "models/ridge.pkl", capsys=capsys)
    assert code == 0
    assert out.startswith("output models/ridge.pkl")
    assert "rule train_ridge   defined at rules/baselines.smk:2" in out
    assert "OK      data/train.h5   not modified since" in out
    # a long path's record is split into '@'-prefixed folders, as Snakemake does
    long = "models/" + "/".join(["d" * 60] * 4) + "/m.pkl"
    name = base64.urlsafe_b64encode(long.encode()).decode()
    assert len(name) > 255
    parts = [name[i:i + 254] for i in range(0, len(name), 254)]
    target = (root / ".snakemake" / "metadata").joinpath(*["@" + p for p in parts[:-1]], parts[-1])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"rule": "train_ridge", "input": []}))
    assert audit.snakemake_record(root, long)["rule"] == "train_ridge"
    assert audit.snakemake_record(root, "models/other.pkl") is None
