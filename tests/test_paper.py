"""Paper machinery: numbers.tex macros from results JSON, the leaderboard table, the LaTeX skeleton.

``make_results_tree`` writes a small workflow root (inputs, results with real provenance blocks,
a figure with its sidecar, a rule file); test_audit.py and test_tex_guard.py use it too.
"""

import contextlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pfslogg import paper
from pfslogg.atomic import write_json
from pfslogg.errors import InputError
from pfslogg.provenance import make_block

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "paper"

BINS = [(2.0, 3.0), (3.0, 4.5), (4.5, 7.0)]
# (estimator, label, overall r2, per-bin r2): lightgbm's bin 2 equals ridge's overall after rounding.
ESTIMATORS = [
    ("ridge", "Ridge", 0.4712, [0.2113, 0.3876, 0.5521]),
    ("lightgbm", "LightGBM", 0.5387, [0.2502, 0.4709, 0.6188]),
    ("template", "Template fit", 0.4021, [0.1234, 0.3301, 0.4745]),
]

RULES_SMK = """\
# baselines: one rule per estimator
rule train_ridge:
    input: "data/train.h5"
    shell: "python -m pfslogg.train ridge"

use rule train_ridge as train_lightgbm with:
    shell: "python -m pfslogg.train lightgbm"

rule train_template:
    shell: "python -m pfslogg.train template"
"""


def _estimator_metrics(name, label, r2, bins_r2):
    bins = []
    for (lo, hi), b in zip(BINS, bins_r2):
        bins.append({"lo": lo, "hi": hi, "n": 200, "snr_median": (lo + hi) / 2, "r2": b,
                     "r2_ci": [b - 0.05, b + 0.05], "mae": 0.5 + b / 10, "rmse": 0.7 + b / 10})
    return {"estimator": name, "label": label, "n_train": 20000, "n_test": 2000, "noise_level": 1.0,
            "var_prior": 4 / 3,
            "overall": {"r2": r2, "r2_ci": [r2 - 0.02, r2 + 0.02], "mae": 0.61, "rmse": 0.84},
            "snr_bins": bins, "hyper": {"alpha": 10.0}, "converged": True}


def make_results_tree(root):
    """A tiny workflow root: data inputs, results (with provenance) for tracks f, c and data,
    a figure with its sidecar and rules/baselines.smk. Returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(root):
        Path("data").mkdir()
        Path("data/train.h5").write_bytes(b"train spectra")
        Path("data/test.h5").write_bytes(b"test spectra")
        Path("rules").mkdir()
        Path("rules/baselines.smk").write_text(RULES_SMK)
        Path("Snakefile").write_text('include: "rules/baselines.smk"\n')

        def results(path, metrics, rule, inputs, params=None):
            write_json(path, {"metrics": metrics,
                              "provenance": make_block(rule, inputs, params,
                                                       command=f"python -m pfslogg.{rule} --fake")})

        results("results/data/test.json",
                {"n": 2000, "snr_median": 8.1, "snr_p05": 3.0, "snr_p95": 27.0,
                 "mag_range": [20.5, 22.5]},
                "simulate_test", ["data/test.h5"], {"n": 2000, "seed": 7})
        for name, label, r2, bins_r2 in ESTIMATORS:
            results(f"results/track_f/{name}.json", _estimator_metrics(name, label, r2, bins_r2),
                    f"train_{name}", ["data/train.h5", "data/test.h5", "results/data/test.json"],
                    {"estimator": name, "alpha": 10.0})
        results("results/track_c/fisher.json",
                {"var_prior": 4 / 3, "n": 2000,
                 "overall": {"r2max_median": 0.8123, "r2max_p10": 0.41, "r2max_p90": 0.97},
                 "snr_bins": [{"lo": lo, "hi": hi, "n": 200, "snr_median": (lo + hi) / 2,
                               "r2max_median": 0.5 + i / 10, "r2max_p10": 0.3, "r2max_p90": 0.9}
                              for i, (lo, hi) in enumerate(BINS)]},
                "fisher_ceiling", ["data/test.h5"])
        results("results/track_c/ceiling_calibration.json",
                {"points": [{"snr": 3.0, "r2max_median": 0.41, "original": 0.366},
                            {"snr": 24.0, "r2max_median": 0.991, "original": 0.9906}]},
                "calibrate_ceiling", ["data/test.h5"])
        Path("figures").mkdir()
        Path("figures/r2_vs_snr.pdf").write_bytes(b"%PDF-1.4 fake figure")
        figure_inputs = [f"results/track_f/{n}.json" for n, *_ in ESTIMATORS]
        write_json("figures/r2_vs_snr.pdf.json",
                   {"provenance": make_block("plot_r2_vs_snr", figure_inputs,
                                             command="python -m pfslogg.figures r2_vs_snr")})
    return root


@pytest.fixture
def tree(tmp_path):
    return make_results_tree(tmp_path / "wf")


@pytest.fixture
def numbers(tree):
    return {n.macro: n for n in paper.collect_numbers(tree / "results")}


# ---------------------------------------------------------------------------------- names


def test_spelling_helpers():
    assert [paper.spell_int(n) for n in (0, 7, 13, 20, 21, 100, 2000, 123)] == [
        "zero", "seven", "thirteen", "twenty", "twentyone", "onehundred", "twothousand",
        "onehundredtwentythree"]
    assert paper.camel_words("r2max_p05") == "RtwomaxPzerofive"
    assert paper.camel_words("r2max_p5") == "RtwomaxPfive"
    assert paper.camel_words("snr-bins.x") == "SnrBinsX"
    assert paper.camel_words("track_f") == "TrackF"
    assert paper.index_word(0) == "One" and paper.index_word(11) == "Twelve"


def test_macro_names_follow_the_documented_scheme(numbers):
    expected = {
        "TrackFRidgeOverallRtwo": ("results/track_f/ridge.json", "overall.r2"),
        "TrackFRidgeOverallRtwoCiLo": ("results/track_f/ridge.json", "overall.r2_ci[0]"),
        "TrackFRidgeOverallRtwoCiHi": ("results/track_f/ridge.json", "overall.r2_ci[1]"),
        "TrackFRidgeSnrBinsThreeRtwo": ("results/track_f/ridge.json", "snr_bins[2].r2"),
        "TrackFRidgeSnrBinsOneLo": ("results/track_f/ridge.json", "snr_bins[0].lo"),
        "TrackFRidgeNTrain": ("results/track_f/ridge.json", "n_train"),
        "TrackFRidgeHyperAlpha": ("results/track_f/ridge.json", "hyper.alpha"),
        "TrackCFisherOverallRtwomaxPten": ("results/track_c/fisher.json", "overall.r2max_p10"),
        "TrackCCeilingCalibrationPointsTwoOriginal":
            ("results/track_c/ceiling_calibration.json", "points[1].original"),
        "DataTestMagRangeHi": ("results/data/test.json", "mag_range[1]"),
        "DataTestSnrPzerofive": ("results/data/test.json", "snr_p05"),
    }
    for macro, (file, key) in expected.items():
        assert macro in numbers, macro
        assert (numbers[macro].file, numbers[macro].key) == (file, key)
    assert all(re.fullmatch(r"[A-Za-z]+", m) for m in numbers)


def test_strings_booleans_and_nulls_are_not_numbers(numbers):
    assert not any(m.endswith(("Estimator", "Label", "Converged")) for m in numbers)


def test_values_use_the_declared_precision(numbers):
    expect = {
        "TrackFRidgeOverallRtwo": "0.471",          # R^2: 3 decimals
        "TrackFRidgeOverallRtwoCiLo": "0.451",
        "TrackFRidgeOverallMae": "0.610",           # errors: 3 decimals
        "TrackFRidgeSnrBinsTwoSnrMedian": "3.8",    # SNR: 1 decimal (3.75, half-even)
        "TrackFRidgeSnrBinsTwoLo": "3.0",
        "TrackFRidgeNTrain": "20000",               # counts: integer
        "TrackFRidgeVarPrior": "1.333",
        "TrackFRidgeNoiseLevel": "1",               # hyper-parameters as given
        "TrackFRidgeHyperAlpha": "10",
        "TrackCCeilingCalibrationPointsTwoOriginal": "0.9906",   # quoted from the original study
        "DataTestMagRangeLo": "20.5",
    }
    for macro, value in expect.items():
        assert numbers[macro].formatted == value, (macro, numbers[macro])


def test_format_value_rules():
    assert paper.format_value("r2", -0.00004) == ("0.000", "R^2-like")      # no '-0.000'
    assert paper.format_value("wall_time", 1234567.0)[0] == "1.23e6"
    assert paper.format_value("other", 0.000123456)[0] == "1.23e-4"
    assert paper.format_value("other", 9.996)[0] == "10.0"
    assert paper.format_value("other", 7)[0] == "7"
    assert paper.format_value("n", 20.5)[1] == "default"                     # not a count
    assert paper.format_value("lr", 3e-4)[0] == "0.0003"
    assert paper.format_value("r2", float("nan"))[0] == "{--}"


_SIUNITX_NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?")


@given(key=st.sampled_from(["r2", "r2_ci", "mae", "snr_median", "n", "var_prior", "original",
                            "alpha", "mag_range", "improvement", "frac_x", "something_else"]),
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12,
                                 max_value=1e12),
                       st.integers(min_value=-10**9, max_value=10**9)))
def test_formatted_values_are_plain_numbers_close_to_the_raw_value(key, value):
    text, _ = paper.format_value(key, value)
    assert _SIUNITX_NUMBER.fullmatch(text), text
    # the formatted value differs from the raw one by less than one unit in its last place
    # (or 3 significant digits), never by a shifted decimal point
    back = float(text)
    decimals = len(text.split("e")[0].split(".")[1]) if "." in text.split("e")[0] else 0
    tol = max(0.5 * 10 ** -decimals * (10 ** int(text.split("e")[1]) if "e" in text else 1),
              abs(value) * 5e-3, 0.5)
    assert math.isclose(back, value, abs_tol=tol)


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.floats(allow_nan=False), max_size=6))
def test_macro_names_are_letters_or_the_input_is_rejected(metrics):
    names = []
    try:
        for _, words, _, _ in paper._walk(metrics, (), "", "x"):
            names.append("X" + words)
    except InputError:
        return
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)


# ---------------------------------------------------------------------------------- numbers.tex


def test_numbers_tex_comment_precedes_each_macro(tree, tmp_path):
    out = tmp_path / "gen" / "numbers.tex"
    numbers = paper.write_numbers_tex(tree / "results", out)
    lines = out.read_text().splitlines()
    defs = [i for i, line in enumerate(lines) if line.startswith("\\newcommand")]
    assert len(defs) == len(numbers) > 50
    for i in defs:
        assert lines[i - 1].startswith("% results/") and " :: " in lines[i - 1]
    i = lines.index("\\newcommand{\\TrackFRidgeOverallRtwo}{0.471}")
    assert lines[i - 1] == "% results/track_f/ridge.json :: overall.r2 = 0.4712"


def test_numbers_tex_is_deterministic_and_sorted_by_file(tree, tmp_path):
    a, b = tmp_path / "a.tex", tmp_path / "b.tex"
    paper.write_numbers_tex(tree / "results", a)
    paper.write_numbers_tex(tree / "results", b)
    assert a.read_bytes() == b.read_bytes()
    files = [n.file for n in paper.collect_numbers(tree / "results")]
    assert files == sorted(files)


def test_numbers_index_json(tree, tmp_path):
    out = tmp_path / "numbers.tex"
    paper.write_numbers_tex(tree / "results", out)
    index = json.loads((tmp_path / "numbers.json").read_text())
    entry = index["macros"]["TrackFRidgeSnrBinsThreeRtwoCiHi"]
    assert entry["file"] == "results/track_f/ridge.json"
    assert entry["key"] == "snr_bins[2].r2_ci[1]"
    assert entry["path"] == ["snr_bins", 2, "r2_ci", 1]
    assert entry["formatted"] == "0.602" and math.isclose(entry["raw"], 0.6021)
    assert set(index["files"]) == {n.file for n in paper.collect_numbers(tree / "results")}
    assert all(len(v["sha256"]) == 64 for v in index["files"].values())


def test_colliding_names_are_an_error(tmp_path):
    write_json(tmp_path / "results/track_a/x.json",
               {"metrics": {"snr_median": 0.1, "snrMedian": 0.2}, "provenance": {"rule": "r"}})
    with pytest.raises(InputError, match=r"collision: \\TrackAXSnrMedian.* snrMedian .* snr_median"):
        paper.collect_numbers(tmp_path / "results")


def test_colliding_names_across_files_are_an_error(tmp_path):
    for path in ("results/track_f/ridge.json", "results/track_f_ridge.json"):
        write_json(tmp_path / path, {"metrics": {"r2": 0.1}, "provenance": {"rule": "r"}})
    with pytest.raises(InputError, match="TrackFRidgeRtwo"):
        paper.collect_numbers(tmp_path / "results")


def test_non_results_and_hidden_json_are_skipped(tmp_path):
    write_json(tmp_path / "results/track_a/x.json", {"metrics": {"r2": 0.1}, "provenance": {}})
    write_json(tmp_path / "results/track_a/config.json", {"alpha": 1.0})
    (tmp_path / "results/track_a/.x.json.abc.tmp.json").write_text("{broken")
    assert [n.macro for n in paper.collect_numbers(tmp_path / "results")] == ["TrackAXRtwo"]


@pytest.mark.parametrize("doc, message", [
    ("{not json", "cannot read"),
    ('{"metrics": {"r2": 0.1}}', "no 'provenance'"),
    ('{"metrics": [1, 2], "provenance": {}}', "must be an object"),
])
def test_bad_results_files_raise_input_error(tmp_path, doc, message):
    (tmp_path / "results").mkdir()
    (tmp_path / "results/x.json").write_text(doc)
    with pytest.raises(InputError, match=message):
        paper.collect_numbers(tmp_path / "results")


def test_missing_results_folder_raises(tmp_path):
    with pytest.raises(InputError, match="not found"):
        paper.collect_numbers(tmp_path / "nope")


def test_cli_writes_numbers_and_tables(tree, tmp_path):
    out = tmp_path / "gen" / "numbers.tex"
    assert paper.main(["numbers", str(tree / "results"), str(out)]) == 0
    assert out.is_file() and (tmp_path / "gen" / "numbers.json").is_file()
    assert paper.main(["table", "leaderboard", str(tree / "results"),
                       str(tmp_path / "gen" / "leaderboard.tex")]) == 0
    assert paper.main(["numbers", str(tmp_path / "missing"), str(out)]) == 2


# ---------------------------------------------------------------------------------- tables


def test_leaderboard_refers_to_numbers_only_through_macros(tree, tmp_path):
    numbers_tex = tmp_path / "numbers.tex"
    paper.write_numbers_tex(tree / "results", numbers_tex)
    table = paper.write_leaderboard_tex(tree / "results", tmp_path / "leaderboard.tex")
    assert (tmp_path / "leaderboard.tex").read_text() == table
    assert paper.find_hand_typed_numbers(table) == []
    assert paper.find_undefined_macros(table, numbers_tex.read_text()) == []
    body = paper.mask_comments(table)
    assert "\\TrackFRidgeSnrBinsThreeRtwo" in body and "\\TrackFRidgeOverallRtwoCiHi" in body
    assert "\\TrackCFisherSnrBinsTwoRtwomaxMedian" in body
    assert "\\TrackCFisherOverallRtwomaxMedian" in body
    rows = [line.split("&")[0].strip() for line in body.splitlines() if "&" in line]
    labels = [r for r in rows if r]
    # best overall R^2 first, ceiling last
    assert labels[1:] == ["LightGBM", "Ridge", "Template fit", "Fisher ceiling (median $R^2_{\\max}$)"]
    assert "\\toprule" in table and "S[table-format=-1.3]" in table


def test_leaderboard_without_ceiling_and_with_missing_bins(tree, tmp_path):
    (tree / "results/track_c/fisher.json").unlink()
    doc = json.loads((tree / "results/track_f/template.json").read_text())
    doc["metrics"]["snr_bins"] = doc["metrics"]["snr_bins"][:2]
    write_json(tree / "results/track_f/template.json", doc)
    table = paper.leaderboard_tex(tree / "results")
    assert "Fisher" not in table
    template_row = next(line for line in table.splitlines() if line.startswith("Template fit"))
    assert template_row.count("{--}") == 1


def test_leaderboard_needs_estimators(tmp_path):
    write_json(tmp_path / "results/track_c/fisher.json", {"metrics": {"n": 1}, "provenance": {}})
    with pytest.raises(InputError, match="no estimator results"):
        paper.leaderboard_tex(tmp_path / "results")


def _latex(cwd, name, engine=("pdflatex", "-interaction=nonstopmode", "-halt-on-error")):
    return subprocess.run([*engine, name], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_leaderboard_compiles_as_a_standalone_document(tree, tmp_path):
    gen = tmp_path / "doc" / "generated"
    paper.write_numbers_tex(tree / "results", gen / "numbers.tex")
    paper.write_leaderboard_tex(tree / "results", gen / "leaderboard.tex")
    (tmp_path / "doc" / "table.tex").write_text(r"""\documentclass{article}
\usepackage{amsmath}
\usepackage{booktabs}
\usepackage{siunitx}
\input{generated/numbers}
\begin{document}
\begin{table}\centering
\caption{Leaderboard.}\label{tab:leaderboard}
\input{generated/leaderboard}
\end{table}
Ridge reaches $R^2 = \TrackFRidgeOverallRtwo$ on \num{\TrackFRidgeNTest} test spectra.
\end{document}
""")
    run = _latex(tmp_path / "doc", "table.tex")
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "doc" / "table.pdf").is_file()
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", "table.pdf", "-"], cwd=tmp_path / "doc",
                              capture_output=True, text=True).stdout
        assert "0.471" in text and "LightGBM" in text and "Fisher ceiling" in text


# ---------------------------------------------------------------------------------- skeleton


def _copy_paper(dst):
    shutil.copytree(PAPER, dst, ignore=shutil.ignore_patterns("build", "generated"))
    return dst


@pytest.mark.parametrize("doc", ["main.tex", "track_f.tex"])
def test_paper_skeleton_compiles_with_bibliography(tree, tmp_path, doc):
    work = _copy_paper(tmp_path / "paper")
    paper.write_numbers_tex(tree / "results", work / "generated" / "numbers.tex")
    run = _latex(work, doc, ("latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                             "-outdir=build"))
    assert run.returncode == 0, run.stdout[-3000:]
    log = (work / "build" / doc.replace(".tex", ".log")).read_text(errors="replace")
    assert "undefined" not in log.lower(), [l for l in log.splitlines() if "ndefined" in l]
    assert (work / "build" / doc.replace(".tex", ".pdf")).is_file()


def test_missing_numbers_tex_is_an_error(tmp_path):
    work = _copy_paper(tmp_path / "paper")
    run = _latex(work, "main.tex")
    assert run.returncode != 0
    assert "numbers.tex is missing" in run.stdout


def test_every_track_document_exists_and_cites_only_known_keys():
    bib = (PAPER / "refs.bib").read_text()
    keys = set(re.findall(r"@\w+\{(\w+),", bib))
    for t in "abcdef":
        assert (PAPER / f"track_{t}.tex").is_file()
    for path in paper.paper_sources(PAPER):
        for group in re.findall(r"\\cite[a-z]*(?:\[[^\]]*\])*\{([^}]*)\}", path.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, (path.name, key)
