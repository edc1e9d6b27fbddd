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


PRIOR = {"M_H": [-0.25, 0.75], "T_eff": [3750.0, 6000.0], "a_M": [0.0, 0.0], "log_g": [1.0, 5.0]}
NOISE = {"exp_time": 900.0, "exposures": 12, "mag": [20.5, 22.5], "noise_level": 1.0,
         "seeing": [0.5, 1.5], "throughput": 2.2}
EVALUATION = {"bootstrap": 1000, "confidence": 0.95, "snr_bins": [2.0, 3.0, 4.5, 7.0]}
# the metrics of results/data/grid.json (rule describe_grid), as pfslogg.paper.describe_grid writes them
GRID = {"source": "synth", "kind": "instrument", "resolution": 5000, "raw_resolution": 20000,
        "n_pixels": 4096, "wave_range": [7100, 8850], "dispersion": 0.42735, "n_nodes": 2160,
        "axes": {"T_eff": {"min": 3500, "max": 6250, "step": 250, "n": 12},
                 "log_g": {"min": 0.5, "max": 5, "step": 0.5, "n": 10},
                 "M_H": {"min": -0.5, "max": 0.75, "step": 0.25, "n": 6},
                 "a_M": {"min": -0.25, "max": 0.25, "step": 0.25, "n": 3}},
        "model": {"gravity_coupling": 0.8, "line_formation_factor": 0.2, "logg_pivot": 3.0,
                  "max_depth": 0.9, "oi_nlte_base": 0.1, "oi_nlte_slope": 0.12,
                  "paschen_stark_scale": 0.5, "saturation_dilution": 1.0, "tau_layer": 0.3,
                  "tio_scale": 1.0, "vdw_enhancement": 1.5, "xi_kms": 2.0},
        "lines": {"named": 32, "pseudo": 290}}
HYPER = {"ridge": {"alpha": 10.0, "val_r2_by_alpha": {"0.1": 0.4312, "10.0": 0.4523}},
         "lightgbm": {"alpha": 10.0, "best_iteration": 417},
         "template": {"alpha": 10.0, "n_templates": 450}}


def _estimator_metrics(name, label, r2, bins_r2):
    bins = []
    for (lo, hi), b in zip(BINS, bins_r2):
        bins.append({"lo": lo, "hi": hi, "n": 200, "snr_median": (lo + hi) / 2, "r2": b,
                     "r2_ci": [b - 0.05, b + 0.05], "mae": 0.5 + b / 10, "rmse": 0.7 + b / 10})
    return {"estimator": name, "label": label, "n_train": 20000, "n_test": 2000, "noise_level": 1.0,
            "var_prior": 4 / 3,
            "overall": {"r2": r2, "r2_ci": [r2 - 0.02, r2 + 0.02], "mae": 0.61, "rmse": 0.84},
            "snr_bins": bins, "hyper": HYPER[name], "converged": True}


def _split_summary(split, n, mag, snr):
    return {"split": split, "n": n, "mag_range": mag, "snr_median": snr[0], "snr_p05": snr[1],
            "snr_p95": snr[2], "snr_min": snr[1] - 1, "snr_max": snr[2] + 3}


def make_results_tree(root):
    """A tiny workflow root that mirrors the workflow's results (the same files, keys and
    provenance parameters, made-up values): data inputs, results/data/{train,val,test,grid}.json,
    track F estimators, track C ceiling and calibration, a figure with its sidecar and
    rules/baselines.smk. Returns ``root``. A macro the paper uses must exist here too."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(root):
        Path("data").mkdir()
        Path("data/train.h5").write_bytes(b"train spectra")
        Path("data/test.h5").write_bytes(b"test spectra")
        Path("data/grid.h5").write_bytes(b"instrument grid")
        Path("rules").mkdir()
        Path("rules/baselines.smk").write_text(RULES_SMK)
        Path("Snakefile").write_text('include: "rules/baselines.smk"\n')

        def results(path, metrics, rule, inputs, params=None):
            write_json(path, {"metrics": metrics,
                              "provenance": make_block(rule, inputs, params,
                                                       command=f"python -m pfslogg.{rule} --fake")})

        for split, n, mag, snr in (("train", 20000, [20.5, 22.5], (8.3, 3.0, 21.4)),
                                   ("val", 2000, [20.5, 22.5], (8.2, 2.9, 21.3)),
                                   ("test", 2000, [20.5, 22.5], (8.1, 3.0, 27.0))):
            results(f"results/data/{split}.json", _split_summary(split, n, mag, snr),
                    f"simulate_{split}", [f"data/{split if split != 'val' else 'train'}.h5"],
                    {"chunk_size": 1024, "noise": NOISE, "params": PRIOR, "seed": 7,
                     "split": {"n": n}})
        results("results/data/grid.json", GRID, "describe_grid", ["data/grid.h5"])
        for name, label, r2, bins_r2 in ESTIMATORS:
            results(f"results/track_f/{name}.json", _estimator_metrics(name, label, r2, bins_r2),
                    f"train_{name}", ["data/train.h5", "data/test.h5", "results/data/test.json"],
                    {"estimator": name, "alpha": 10.0, "evaluation": EVALUATION, "noise_level": 1.0,
                     "params": PRIOR, "seed": 7})
        band = {"r2max_p10": 0.3, "r2max_p90": 0.9, "r2max_mean_crlb": 0.42}
        results("results/track_c/fisher.json",
                {"var_prior": 4 / 3, "n": 2000, "nuisance": ["T_eff", "M_H"],
                 "overall": {"n": 2000, "r2max_median": 0.8123, "r2max_p10": 0.41,
                             "r2max_p90": 0.97, "r2max_mean_crlb": 0.6841},
                 "snr_bins": [{"lo": lo, "hi": hi, "n": 200, "snr_median": (lo + hi) / 2,
                               "r2max_median": 0.5 + i / 10, **band}
                              for i, (lo, hi) in enumerate(BINS)]},
                "fisher_ceiling", ["data/test.h5"],
                {"evaluation": EVALUATION, "noise_level": 1.0, "params": PRIOR})
        snrs, originals = [3.0, 4.6, 7.1, 24.0], [0.366, 0.74, 0.891, 0.9906]
        results("results/track_c/ceiling_calibration.json",
                {"points": [{"snr": s_, "r2max_median": o + 0.01, "r2max_p10": o - 0.2,
                             "r2max_p90": min(o + 0.1, 0.999), "original": o}
                            for s_, o in zip(snrs, originals)], "n_spectra": 500},
                "calibrate_ceiling", ["data/test.h5"],
                {"ceiling": {"n_spectra": 500, "original": originals, "snr": snrs},
                 "noise": NOISE, "params": PRIOR, "seed": 7})
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
        "TrackCCeilingCalibrationPointsFourOriginal": "0.9906",  # quoted from the original study
        "TrackCCeilingCalibrationPointsTwoOriginal": "0.74",     # as given, no padding
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
        for _, words, _, _, _ in paper._walk(metrics, (), "", "x"):
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


# ---------------------------------------------------------------------------------- per document


def test_numbers_from_selected_files_only(tree, tmp_path):
    files = ["results/track_c/fisher.json", "results/data/test.json"]
    numbers = paper.collect_numbers(tree / "results", files=[tree / f for f in files])
    assert {n.file for n in numbers} == set(files)
    # paths relative to the results folder's parent work as well
    with contextlib.chdir(tree):
        assert paper.collect_numbers("results", files=files) == numbers
    assert paper.collect_numbers(tree / "results", files=[]) == []
    with pytest.raises(InputError, match="not found"):
        paper.collect_numbers(tree / "results", files=[tree / "results/track_x/none.json"])
    outside = tmp_path / "elsewhere.json"
    write_json(outside, {"metrics": {"r2": 0.1}, "provenance": {}})
    with pytest.raises(InputError, match="not under the results folder"):
        paper.collect_numbers(tree / "results", files=[outside])


def test_rule_parameters_become_cfg_macros_printed_as_given(numbers):
    cfg = {m: n for m, n in numbers.items() if "Cfg" in m}
    assert cfg["DataTrainCfgParamsTEffLo"].formatted == "3750"
    assert cfg["DataTrainCfgParamsMHLo"].formatted == "-0.25"
    assert cfg["DataTrainCfgNoiseThroughput"].formatted == "2.2"
    assert cfg["DataTrainCfgNoiseExposures"].formatted == "12"
    assert cfg["TrackFRidgeCfgEvaluationConfidence"].formatted == "0.95"
    n = cfg["DataTrainCfgNoiseSeeingHi"]
    assert (n.file, n.key, n.section, n.path) == ("results/data/train.json",
                                                  "provenance.params.noise.seeing[1]",
                                                  "provenance.params", ("noise", "seeing", 1))
    assert all(n.section == "metrics" for m, n in numbers.items() if "Cfg" not in m)


def test_model_settings_are_printed_as_given_and_keys_without_letters_take_the_parent_rule(numbers):
    assert numbers["DataGridModelGravityCoupling"].formatted == "0.8"
    assert numbers["DataGridModelXiKms"].formatted == "2"
    assert numbers["DataGridAxesMHMin"].formatted == "-0.5"
    assert numbers["DataGridAxesLogGStep"].formatted == "0.5"
    # val_r2_by_alpha["0.1"]: an R^2, three decimals
    assert numbers["TrackFRidgeHyperValRtwoByAlphaZeroOne"].formatted == "0.431"


def test_numbers_cli_with_files(tree, tmp_path):
    out = tmp_path / "gen" / "track_c" / "numbers.tex"
    with contextlib.chdir(tree):
        assert paper.main(["numbers", "results", str(out), "--files",
                           "results/track_c/fisher.json"]) == 0
    index = json.loads(out.with_suffix(".json").read_text())
    assert set(index["files"]) == {"results/track_c/fisher.json"}
    assert index["macros"]["TrackCFisherOverallRtwomaxMedian"]["section"] == "metrics"


def test_document_sources_follow_inputs_tables_figures_and_bibliography():
    main = paper.document_sources(PAPER, "main")
    base = PAPER.as_posix()
    rel = [p.removeprefix(base + "/") for p in main]
    assert rel[0] == "main.tex"
    for expected in ("preamble.tex", "facts.tex", "generated/main/numbers.tex", "sections/intro.tex",
                     "sections/data.tex", "generated/tables/datasets.tex",
                     "generated/tables/leaderboard.tex", "generated/tables/ceiling.tex",
                     "generated/tables/calibration.tex", "refs.bib",
                     "figures/r2_vs_snr.pdf", "figures/ceiling_calibration.pdf"):
        assert expected in rel, expected
    assert len(rel) == len(set(rel)) and not any("#" in p for p in rel)
    track_f = paper.document_sources(PAPER, "track_f")
    assert f"{base}/generated/track_f/numbers.tex" in track_f
    assert "figures/ceiling_calibration.pdf" not in track_f
    assert f"{base}/generated/tables/calibration.tex" not in track_f
    track_c = paper.document_sources(PAPER, "track_c")
    assert "figures/r2_vs_snr.pdf" not in track_c
    assert f"{base}/generated/tables/leaderboard.tex" not in track_c
    # every hand-written file a document reads exists
    for doc in ("main", "track_c", "track_f", "track_a"):
        for path in paper.document_sources(PAPER, doc):
            if path.startswith(base + "/") and "/generated/" not in path:
                assert Path(path).is_file(), path


def test_check_document_finds_undefined_macros_in_what_it_reads(tree, tmp_path):
    work = build_fake_paper(tree, _copy_paper(tmp_path / "paper"))
    only_c = paper.collect_numbers(tree / "results", files=[
        tree / "results/track_c/fisher.json", tree / "results/track_c/ceiling_calibration.json",
        *[tree / f"results/data/{s}.json" for s in ("train", "val", "test", "grid")]])
    numbers_c = paper.numbers_tex(only_c)
    assert paper.check_document(work, "track_c", numbers_c) == []
    problems = paper.check_document(work, "track_f", numbers_c)
    assert any("TrackFRidgeOverallRtwo is not defined in the numbers of track_f" in p for p in problems)
    (work / "sections" / "results_ceiling.tex").write_text(
        (work / "sections" / "results_ceiling.tex").read_text() + "\n$R^2 = 0.47$, \\TrackCFisherNope\n")
    problems = paper.check_document(work, "track_c", numbers_c)
    assert any("hand-typed decimal: '0.47'" in p for p in problems)
    assert any("\\TrackCFisherNope is not defined" in p for p in problems)
    assert paper.main(["guard", str(work), "--doc", "track_c"]) == 1


# ---------------------------------------------------------------------------------- grid description


def test_describe_grid_reads_axes_resolution_and_model(tmp_path):
    from conftest import make_fake_grid

    grid = make_fake_grid(tmp_path / "grid.h5", n_pixels=64)
    m = paper.describe_grid(grid)
    assert m["n_pixels"] == 64 and m["resolution"] == 5000 and m["kind"] == "instrument"
    assert m["axes"]["T_eff"] == {"min": 3500, "max": 6000, "step": 500, "n": 6}
    assert m["axes"]["a_M"] == {"min": 0, "max": 0, "step": 0, "n": 1}
    assert m["wave_range"] == [7100, 8850] and m["n_nodes"] == 6 * 10 * 6
    assert "model" not in m and "lines" not in m   # not a synth grid
    out = tmp_path / "results" / "data" / "grid.json"
    with contextlib.chdir(tmp_path):
        assert paper.main(["describe-grid", "--grid", "grid.h5", "--out", "results/data/grid.json"]) == 0
    doc = json.loads(out.read_text())
    assert doc["provenance"]["rule"] == "describe_grid"
    assert doc["provenance"]["command"].startswith("python -m pfslogg.paper describe-grid")
    assert list(doc["provenance"]["inputs"]) == ["grid.h5"]
    numbers = {n.macro: n for n in paper.collect_numbers(tmp_path / "results")}
    assert numbers["DataGridAxesTEffStep"].formatted == "500"


def test_describe_grid_of_a_synth_grid_counts_lines():
    from pfslogg.data.synth import line_table

    named = line_table()["named"]
    assert named.sum() > 20 and (~named).sum() > 100   # what the paper's line-list sentence states


def test_describe_grid_of_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a readable grid file"):
        paper.describe_grid(tmp_path / "none.h5")


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
    assert labels[1:] == ["LightGBM", "Ridge", "Template fit", "Fisher ceiling"]
    assert "\\toprule" in table and "S[table-format=-1.3]" in table


def test_leaderboard_from_explicit_files(tree):
    files = [tree / "results/track_f/ridge.json", tree / "results/track_f/template.json"]
    table = paper.leaderboard_tex(tree / "results", files=files)
    assert "Ridge" in table and "Template fit" in table and "LightGBM" not in table
    assert "Fisher ceiling &" not in table
    assert "%   results/track_f/ridge.json" in table
    with pytest.raises(InputError, match="no estimator results"):
        paper.leaderboard_tex(tree / "results", files=[tree / "results/track_c/fisher.json"])


def test_leaderboard_without_ceiling_and_with_missing_bins(tree, tmp_path):
    (tree / "results/track_c/fisher.json").unlink()
    doc = json.loads((tree / "results/track_f/template.json").read_text())
    doc["metrics"]["snr_bins"] = doc["metrics"]["snr_bins"][:2]
    write_json(tree / "results/track_f/template.json", doc)
    table = paper.leaderboard_tex(tree / "results")
    assert "Fisher ceiling &" not in table and "\\TrackCFisher" not in table
    template_row = next(line for line in table.splitlines() if line.startswith("Template fit"))
    assert template_row.count("{--}") == 1


def test_leaderboard_needs_estimators(tmp_path):
    write_json(tmp_path / "results/track_c/fisher.json", {"metrics": {"n": 1}, "provenance": {}})
    with pytest.raises(InputError, match="no estimator results"):
        paper.leaderboard_tex(tmp_path / "results")


@pytest.mark.parametrize("name, macros", [
    ("ceiling", ["\\TrackCFisherSnrBinsOneRtwomaxMedian", "\\TrackCFisherOverallRtwomaxPninety",
                 "\\TrackCFisherSnrBinsThreeRtwomaxMeanCrlb", "\\TrackCFisherSnrBinsTwoLo"]),
    ("calibration", ["\\TrackCCeilingCalibrationPointsOneSnr",
                     "\\TrackCCeilingCalibrationPointsFourOriginal",
                     "\\TrackCCeilingCalibrationPointsTwoRtwomaxPten"]),
    ("datasets", ["\\DataTrainN", "\\DataTestSnrPninetyfive", "\\DataValMagRangeLo"]),
])
def test_track_tables_use_macros_only(tree, tmp_path, name, macros):
    numbers_tex = paper.numbers_tex(paper.collect_numbers(tree / "results"))
    out = tmp_path / f"{name}.tex"
    assert paper.main(["table", name, str(tree / "results"), str(out)]) == 0
    table = out.read_text()
    assert paper.find_hand_typed_numbers(table) == []
    assert paper.find_undefined_macros(table, numbers_tex) == []
    for m in macros:
        assert m in table, m
    assert "\\toprule" in table and "\\bottomrule" in table


def test_datasets_table_orders_splits(tree):
    table = paper.datasets_tex(tree / "results")
    rows = [line.split("&")[0].strip() for line in table.splitlines() if line.startswith(("Train", "Valid", "Test"))]
    assert rows == ["Training", "Validation", "Test"]


def test_ceiling_and_calibration_tables_need_their_results(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(InputError, match="Fisher-ceiling"):
        paper.ceiling_tex(tmp_path / "results")
    with pytest.raises(InputError, match="calibration"):
        paper.calibration_tex(tmp_path / "results")


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


# ---------------------------------------------------------------------------------- documents


def _copy_paper(dst):
    shutil.copytree(PAPER, dst, ignore=shutil.ignore_patterns("build", "generated"))
    return dst


def _fake_figure(path):
    """A small valid PDF figure (the fake tree's figures are placeholders)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [0.2, 0.5, 0.7])
    fig.savefig(path)
    plt.close(fig)


def build_fake_paper(tree, work):
    """Everything the documents read, from the fake tree: numbers of every document (all results
    files), the tables, and figures at ``work/../figures``. Returns ``work``."""
    for doc in ("main", "track_a", "track_c", "track_f"):
        paper.write_numbers_tex(tree / "results", work / "generated" / doc / "numbers.tex")
    for name, writer in paper.TABLES.items():
        writer(tree / "results", work / "generated" / "tables" / f"{name}.tex")
    for fig in ("r2_vs_snr", "ceiling_calibration"):
        _fake_figure(work.parent / "figures" / f"{fig}.pdf")
    return work


@pytest.mark.parametrize("doc", ["main", "track_c", "track_f", "track_a"])
def test_documents_compile_with_bibliography_and_no_undefined_references(tree, tmp_path, doc):
    work = build_fake_paper(tree, _copy_paper(tmp_path / "paper"))
    run = _latex(work, f"{doc}.tex", ("latexmk", "-pdf", "-interaction=nonstopmode",
                                      "-halt-on-error", "-outdir=build"))
    assert run.returncode == 0, run.stdout[-3000:]
    log = (work / "build" / f"{doc}.log").read_text(errors="replace")
    assert "undefined" not in log.lower(), [l for l in log.splitlines() if "ndefined" in l]
    assert "Overfull \\hbox" not in log, [l for l in log.splitlines() if "Overfull" in l]
    assert (work / "build" / f"{doc}.pdf").is_file()
    assert paper.check_document(work, doc, (work / "generated" / doc / "numbers.tex").read_text()) == []


def test_missing_numbers_tex_is_an_error(tmp_path):
    work = _copy_paper(tmp_path / "paper")
    run = _latex(work, "main.tex")
    assert run.returncode != 0
    assert "generated/main/numbers.tex is missing" in run.stdout


def test_every_track_document_exists_and_cites_only_known_keys():
    bib = (PAPER / "refs.bib").read_text()
    keys = set(re.findall(r"@\w+\{(\w+),", bib))
    for t in "abcdef":
        assert (PAPER / f"track_{t}.tex").is_file()
    for path in paper.paper_sources(PAPER):
        for group in re.findall(r"\\cite[a-z]*(?:\[[^\]]*\])*\{([^}]*)\}", path.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, (path.name, key)
