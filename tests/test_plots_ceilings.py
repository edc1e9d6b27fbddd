"""Track C's figures and tables, drawn from small real results: the CRLB validation and the SNR
sweep run on the coarse grid, the Fisher ceiling of the tiny test set with a stand-in for its Bayes
ceiling (posterior means drawn around the truth with sd sigma_min, scored as bayes_ceiling scores
them: the grid posterior itself costs too much here), and the efficiency of two made-up estimators
against them (one of which beats the Bayes ceiling: a hatched cell).
Each figure renders with reproducible bytes; each table cites only macros that numbers.tex defines."""

import contextlib
import copy
import json

import numpy as np
import pytest

from pfslogg import paper
from pfslogg.ceilings.efficiency import efficiency
from pfslogg.ceilings.fisher import fisher_ceiling, outside_bins
from pfslogg.ceilings.sweep import snr_sweep
from pfslogg.ceilings.validation import crlb_validation
from pfslogg.data.dataset import SpectraSet
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.noise import ExposureModel
from pfslogg.errors import InputError
from pfslogg.evaluation import metrics_by_snr, summarize
from pfslogg.plots import FIGURES, render
from pfslogg.provenance import write_results

from conftest import TINY_RANGES

VAR = 4 / 3
SNR_EDGES = [2.0, 3.0, 4.5, 7.0, 10.0, 15.0, 22.0, 35.0]
EVALUATION = {"bootstrap": 50, "confidence": 0.95, "snr_bins": SNR_EDGES}
BAYES = {"spacing": {"T_eff": 250.0, "log_g": 0.25, "M_H": 0.25, "a_M": 0.05}, "chunk": 512, "dtype": "float32"}
VALIDATION = {"n_points": 10, "fractions": [0.01, 0.3, 1.0], "ml_snr": 50.0, "ml_draws": 40, "ml_logg": [2.25, 3.04],
              "profile": {"T_eff": 4875.0, "M_H": 0.125, "a_M": 0.0, "log_g": [2.0, 4.0], "n": 9, "snr": 10.0}}
FILES = {"crlb_validation": "results/track_c/crlb_validation.json", "snr_sweep": "results/track_c/snr_sweep.json",
         "fisher": "results/track_c/fisher.json", "bayes": "results/track_c/bayes.json",
         "efficiency": "results/track_c/efficiency.json"}
FIGURE_INPUTS = {"crlb_cell_position": ["crlb_validation"], "crlb_step_size": ["crlb_validation"],
                 "ceilings_vs_snr": ["snr_sweep"], "crlb_distribution": ["fisher", "bayes"],
                 "efficiency": ["efficiency"]}
TABLE_INPUTS = {"crlb_validation": ["crlb_validation"], "snr_sweep": ["snr_sweep"],
                "efficiency_by_snr": ["efficiency"]}
PARAMS = {"confidence": 0.95}


def _cell(bayes, name, shift, width=0.03):
    """A cell of estimator ``name`` whose R^2 is the Bayes ceiling's plus ``shift`` in every bin."""
    def row(b):
        r2 = b["r2"] + shift
        return {"lo": b.get("lo"), "hi": b.get("hi"), "r2": r2, "r2_ci": [r2 - width, r2 + width]}
    return {"metrics": {"estimator": name, "noise_level": 1.0, "snr_bins": [row(b) for b in bayes["snr_bins"]],
                        "overall": row(bayes["overall"])}}


def _bayes_stand_in(fisher_table, var_prior):
    """The metrics of a Bayes ceiling (as bayes_ceiling lays them out) from posterior means drawn
    around the truth with the spectra's sigma_min."""
    y, snr = np.asarray(fisher_table["log_g"]), np.asarray(fisher_table["snr"])
    sd = np.sqrt(np.minimum(fisher_table["crlb"], var_prior))
    mean = y + sd * np.random.default_rng(5).standard_normal(len(y))
    ev = {"n_resamples": EVALUATION["bootstrap"], "confidence": EVALUATION["confidence"], "seed": 0}
    bins = metrics_by_snr(y, mean, snr, SNR_EDGES, var_prior, **ev)
    for b in bins:
        b["post_sd_median"] = float(np.median(sd[(snr >= b["lo"]) & (snr < b["hi"])]))
    return {"n": len(y), "var_prior": var_prior, "noise_level": 1.0, "confidence": EVALUATION["confidence"],
            "overall": {**summarize(y, mean, var_prior, **ev), "post_sd_median": float(np.median(sd))},
            "snr_bins": bins}


@pytest.fixture(scope="module")
def tree(tmp_path_factory, coarse_instrument_grid, tiny_instrument_grid, tiny_dataset):
    """A workflow root with Track C's results, computed by the library on the test grids."""
    root = tmp_path_factory.mktemp("trackc")
    coarse = read_grid(coarse_instrument_grid)
    interp = GridInterpolator(coarse)
    docs = {}
    docs["crlb_validation"] = crlb_validation(coarse, TINY_RANGES, ExposureModel(coarse.wave), VALIDATION, seed=3)
    docs["snr_sweep"] = (snr_sweep(interp, ExposureModel(interp.wave), TINY_RANGES, [19.0, 21.0, 22.0, 23.0], 3, 0.8,
                                   VAR, BAYES, EVALUATION, seed=1), None)
    tiny = GridInterpolator(read_grid(tiny_instrument_grid, fields=("flux",)))
    test = SpectraSet(tiny_dataset)
    fm, table, fd = fisher_ceiling(tiny, test, 1.0, TINY_RANGES, SNR_EDGES, VAR, min_count=5)
    docs["fisher"] = (fm, fd)
    bm = _bayes_stand_in(table, VAR)
    docs["bayes"] = (bm, None)
    cells = {"ridge": [_cell(bm, "ridge", -0.2), _cell(bm, "ridge", -0.1)], "leaky": [_cell(bm, "leaky", 0.2, 0.01)]}
    docs["efficiency"] = (efficiency(bm, fm, cells), None)
    with contextlib.chdir(root):
        for kind, (metrics, details) in docs.items():
            write_results(FILES[kind], metrics, "test", [], kind=kind, details=details)
    return root


def _inputs(tree, kinds):
    return [str(tree / FILES[k]) for k in kinds]


def test_every_track_c_figure_and_table_is_registered():
    assert set(FIGURE_INPUTS) <= set(FIGURES)
    assert set(TABLE_INPUTS) <= set(paper.TABLES)


@pytest.mark.parametrize("name", sorted(FIGURE_INPUTS))
def test_figure_renders_reproducibly(tree, tmp_path, name):
    inputs = _inputs(tree, FIGURE_INPUTS[name])
    first, second = tmp_path / "a" / f"{name}.pdf", tmp_path / "b" / f"{name}.pdf"
    FIGURES[name](inputs, first, dict(PARAMS, figure=name))
    FIGURES[name](inputs, second, dict(PARAMS, figure=name))
    data = first.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000
    assert data == second.read_bytes()


@pytest.mark.parametrize("name", sorted(FIGURE_INPUTS))
def test_wrong_kind_is_one_line_naming_the_file(tree, tmp_path, name):
    wrong = str(tree / FILES["snr_sweep" if name != "ceilings_vs_snr" else "efficiency"])
    with pytest.raises(InputError) as e:
        FIGURES[name]([wrong], tmp_path / "out.pdf", dict(PARAMS, figure=name))
    assert wrong in str(e.value) and "kind" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out.pdf").exists()


def test_cell_position_marks_nodes_and_the_20_percent_band(tree):
    fig = render("crlb_cell_position", _inputs(tree, ["crlb_validation"]), PARAMS)
    left, right = fig.axes
    m = json.loads((tree / FILES["crlb_validation"]).read_text())["metrics"]
    assert "SNR = 10" in left.get_title() and "4875 K" in left.get_title()
    assert [t.get_text() for t in left.get_legend().get_texts()][:2] == ["cubic Hermite (this work)",
                                                                       "multilinear (original study)"]
    nodes = [ln.get_xdata()[0] for ln in left.get_lines() if ln.get_linestyle() == ":"]
    assert nodes == m["profile"]["nodes"]
    assert "95 % $\\chi^2$ interval" in right.get_title()
    assert "±20 %" in [t.get_text() for t in right.get_legend().get_texts()]


def test_ceilings_vs_snr_without_4d_and_with_it(tree, tmp_path):
    path = tree / FILES["snr_sweep"]
    doc = json.loads(path.read_text())
    assert doc["metrics"]["rows"][0]["crlb_4d"] is None      # the coarse grid has one a_M node
    labels = [t.get_text() for t in render("ceilings_vs_snr", [str(path)], PARAMS).axes[0].get_legend().get_texts()]
    assert not any("4D" in lab for lab in labels) and any("Bayes ceiling, 95 %" in lab for lab in labels)
    four = copy.deepcopy(doc)
    for r in four["metrics"]["rows"]:
        r["crlb_4d"] = {k: v * 0.95 for k, v in r["crlb_3d"].items()}
    four["metrics"].update(nuisance_4d=["T_eff", "M_H", "a_M"], parting_snr=None)
    (tmp_path / "four.json").write_text(json.dumps(four))
    fig = render("ceilings_vs_snr", [str(tmp_path / "four.json")], PARAMS)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("CRLB 4D") for lab in labels)
    assert not any("part" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(InputError, match="intervals computed at confidence 0.95, the figure asks for 0.9"):
        render("ceilings_vs_snr", [str(path)], {"confidence": 0.9})


def test_distribution_draws_non_empty_bins_and_both_reference_lines(tree):
    fig = render("crlb_distribution", _inputs(tree, ["fisher", "bayes"]), PARAMS)
    ax = fig.axes[0]
    hist = json.loads((tree / FILES["fisher"]).read_text())["details"]["sigma_min_histogram"]
    filled = [b for b in hist["bins"] if any(b["counts"])]
    outside = [k for k in ("below", "above") if any(hist[k])]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 1 + len(filled) + len(outside)
    out = json.loads((tree / FILES["fisher"]).read_text())["metrics"]["outside_bins"]
    if "above" in outside:   # the spectra above every bin are drawn and counted by the metrics' number
        assert f"≥ {out['snr_max']:g} ({out['n_above']}, no bin)" in labels
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "prior sd" in texts and "Bayes posterior sd" in texts
    with pytest.raises(InputError, match="needs a file of kind 'fisher'"):
        render("crlb_distribution", _inputs(tree, ["bayes"]), PARAMS)


def test_spectra_outside_every_snr_bin_are_counted(tree):
    """Every test spectrum is in one SNR bin or counted below / above them all (the caption's numbers)."""
    doc = json.loads((tree / FILES["fisher"]).read_text())
    m, hist = doc["metrics"], doc["details"]["sigma_min_histogram"]
    out = m["outside_bins"]
    assert (out["snr_min"], out["snr_max"]) == (SNR_EDGES[0], SNR_EDGES[-1])
    in_bins = sum(sum(b["counts"]) for b in hist["bins"])
    assert in_bins + out["n_below"] + out["n_above"] == m["n"] == sum(hist["all"])
    assert sum(hist["below"]) == out["n_below"] and sum(hist["above"]) == out["n_above"]
    assert outside_bins([1.0, 2.0, 34.9, 35.0, 50.0], [2.0, 10.0, 35.0]) == \
        {"snr_min": 2.0, "snr_max": 35.0, "n_below": 1, "n_above": 2}


def test_efficiency_hatches_a_model_above_the_bayes_ceiling(tree):
    m = json.loads((tree / FILES["efficiency"]).read_text())["metrics"]
    assert m["n_violations"] > 0 and m["estimators"] == ["ridge", "leaky"]
    fig = render("efficiency", _inputs(tree, ["efficiency"]), PARAMS)
    left, right = fig.axes[:2]
    hatched = [p for p in left.patches if p.get_hatch()]
    assert len(hatched) == len(m["snr_bins"]) + 1                   # every cell of 'leaky'
    assert [t.get_text() for t in left.get_yticklabels()] == ["ridge", "leaky"]
    assert len(left.texts) == 2 * (len(m["snr_bins"]) + 1)          # one number (or dash) per cell


@pytest.mark.parametrize("name", sorted(TABLE_INPUTS))
def test_tables_refer_to_numbers_only_through_macros(tree, tmp_path, name):
    files = [tree / FILES[k] for k in TABLE_INPUTS[name]]
    numbers = paper.numbers_tex(paper.collect_numbers(tree / "results", files=files))
    out = tmp_path / f"{name}.tex"
    text = paper.write_table(name, tree / "results", out, files)
    assert out.read_text() == text
    assert paper.find_hand_typed_numbers(text) == []
    assert paper.find_undefined_macros(text, numbers) == []
    assert "\\toprule" in text and "\\bottomrule" in text and "% Sources:" in text


@pytest.mark.parametrize("name, macros", [
    ("crlb_validation", ["\\TrackCCrlbValidationMlRowsOneRatio", "\\TrackCCrlbValidationMlRowsFourRatioCiHi",
                         "\\TrackCCrlbValidationNodeJumpsLinearLogGJumpMax"]),
    ("snr_sweep", ["\\TrackCSnrSweepRowsOneMag", "\\TrackCSnrSweepRowsFourBayesRtwoCiLo",
                   "\\TrackCSnrSweepRowsTwoCrlbThreedSchurDecayMedian"]),
    ("efficiency_by_snr", ["\\TrackCEfficiencyOverallModelsLeakyEtaBayes", "\\TrackCEfficiencyOverallBayesRtwo"]),
])
def test_tables_cite_the_expected_macros(tree, name, macros):
    text = paper.table_tex(name, tree / "results", [tree / FILES[k] for k in TABLE_INPUTS[name]])
    for m in macros:
        assert m in text, m
    if name == "snr_sweep":       # no 4D bound on this grid: a dash, not a missing cell
        assert text.count("{--}") >= 4


def test_tables_read_only_their_kind(tree):
    with pytest.raises(InputError, match="table snr_sweep: .*efficiency.json is a results file of kind 'efficiency'"):
        paper.table_tex("snr_sweep", tree / "results", [tree / FILES["efficiency"]])
