"""The discussion's generated sentences (pfslogg.paper.tables.discussion): numbers only as macros, and
every word that states a direction chosen from the numbers and their intervals -- checked by editing
the numbers of a real run's snapshot (tests/data) and reading the words back."""

import contextlib
import copy
import json
from pathlib import Path

import pytest

from pfslogg import paper
from pfslogg.provenance import write_results

DATA = Path(__file__).parent / "data"
EFFICIENCY = json.loads((DATA / "track_c_snapshot.json").read_text())["efficiency"]["metrics"]
MOE = json.loads((DATA / "track_b_snapshot.json").read_text())["metrics"]
FILES = {"discussion_ceilings": ("results/track_c/efficiency.json", "efficiency"),
         "discussion_moe": ("results/track_b/mixtures.json", "moe")}


def _text(tmp_path, name, metrics):
    path, kind = FILES[name]
    tmp_path.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(tmp_path):
        Path("in.h5").write_bytes(b"x")
        write_results(path, metrics, "r", ["in.h5"], kind=kind)
    text = paper.table_tex(name, tmp_path / "results", [tmp_path / path], root=tmp_path)
    numbers_tex = paper.numbers_tex(paper.collect_numbers(tmp_path / "results", root=tmp_path))
    assert paper.find_hand_typed_numbers(text) == []
    assert paper.find_undefined_macros(text, numbers_tex) == []
    return text


def _gap_snapshot(where):
    """The efficiency snapshot with the best estimator's gap to the Bayes ceiling largest ``where``."""
    m = copy.deepcopy(EFFICIENCY)
    bins = m["snr_bins"]
    k = {"faintest": 0, "brightest": len(bins) - 1, "middle": len(bins) // 2}[where]
    for i, b in enumerate(bins):
        for x in b["models"].values():
            x["r2"] = b["bayes_r2"] - (0.5 if i == k else 0.01 * (i + 1))
    return m


@pytest.mark.parametrize("where, words", [
    ("faintest", "is largest in the faintest bin."),
    ("brightest", "is largest in the brightest bin."),
    ("middle", "at intermediate SNR, in the bin of SNR"),
])
def test_the_largest_gap_is_named_where_it_is(tmp_path, where, words):
    text = _text(tmp_path, "discussion_ceilings", _gap_snapshot(where))
    assert words in text
    # elsewhere than at an end, which end's gap is larger is said too (here: the brightest bin's)
    assert ("smaller in the faintest bin than in the brightest" in text) == (where == "middle")


def test_the_snapshot_reads_as_its_numbers_say(tmp_path):
    text = _text(tmp_path, "discussion_ceilings", EFFICIENCY)
    faint = EFFICIENCY["snr_bins"][0]
    assert faint["crlb_mean_r2"] < faint["bayes_r2_ci"][0]
    assert "below the Bayes ceiling beyond its interval" in text
    above = [e for e, x in faint["models"].items() if x["r2"] > faint["crlb_mean_r2"]]
    assert above and len(above) < len(faint["models"]) and "some estimators score above it" in text
    best = EFFICIENCY["overall"]["models"][EFFICIENCY["best"]]   # the 5-member ensemble of wide MLPs (2026-12-06):
    assert best["r2_ci"][1] >= EFFICIENCY["overall"]["bayes_r2_ci"][0]   # its interval reaches the ceiling's
    assert "the two intervals overlap" in text and "disjoint" not in text
    apart = copy.deepcopy(EFFICIENCY)   # the wording follows the numbers
    apart["overall"]["models"][apart["best"]]["r2_ci"][1] = apart["overall"]["bayes_r2_ci"][0] - 0.01
    assert "the two intervals are disjoint" in _text(tmp_path / "apart", "discussion_ceilings", apart)


def test_a_mean_bound_above_the_bayes_interval_is_said_so(tmp_path):
    m = copy.deepcopy(EFFICIENCY)
    b = m["snr_bins"][0]
    b["crlb_mean_r2"] = b["bayes_r2_ci"][1] + 0.05
    text = _text(tmp_path, "discussion_ceilings", m)
    assert "above the Bayes ceiling beyond its interval, and no estimator scores above it." in text


@pytest.mark.parametrize("ci, verb", [([0.01, 0.05], "gains over"), ([-0.05, -0.01], "loses to"),
                                      ([-0.01, 0.01], "does not differ beyond its interval from")])
def test_moe_words_follow_the_intervals(tmp_path, ci, verb):
    m = copy.deepcopy(MOE)
    v = m["at_default"]["variants"][m["shown_variant"]]
    v["main"]["diff_ci"] = ci
    m["at_default"]["thesis"]["diff_bar_ci"] = ci
    text = _text(tmp_path, "discussion_moe", m)
    default = text[text.index("At the default noise level"):]
    assert f"Ridge (3 [M/H] $\\times$ 3 $T_\\mathrm{{eff}}$ bins) {verb} one global Ridge" in default
    thesis = {"gains over": "beats", "loses to": "falls short of",
              "does not differ beyond its interval from": "is not distinguishable from"}[verb]
    assert f"conditioned model {thesis} the best global model" in default


def test_the_best_estimator_is_named_by_its_label_never_its_id(tmp_path):
    m = copy.deepcopy(EFFICIENCY)
    m.pop("labels", None)
    assert "the best estimator reaches" in _text(tmp_path / "a", "discussion_ceilings", m)   # no labels: unnamed
    m["labels"] = {e: f"Label_{i}" for i, e in enumerate(m["estimators"])}
    text = _text(tmp_path / "b", "discussion_ceilings", m)
    i = m["estimators"].index(m["best"])
    body = text.split("%   ")[-1].split("\n", 1)[1]   # the sentences, below the source comment
    assert f"the best estimator, Label\\_{i}, reaches" in body and m["best"] not in body
