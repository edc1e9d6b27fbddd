"""Guard: no result is typed by hand into the LaTeX, and every result macro it uses is defined.

The hand-written sources are ``paper/*.tex`` and ``paper/sections/**/*.tex``. Numbers typed by
hand are allowed only in the ``\\newcommand`` definitions of ``paper/facts.tex`` (instrument and
physics facts) and in contexts that are not results (citations, labels, lengths, ...).
The undefined-macro check needs a numbers.tex: it is generated here from the results tree of
``test_paper.make_results_tree``, which mirrors the results the workflow writes. A macro the text
uses for a results file or key the tree lacks fails this test: add it to the tree. Each document is
also checked against the numbers of exactly the results files the workflow gives it, and
test_paper_e2e.py checks the documents against the numbers of a real (tiny) run.
"""

import shutil
from pathlib import Path

import pytest

from pfslogg import paper
from test_paper import _copy_paper, build_fake_paper, make_results_tree

PAPER = Path(__file__).resolve().parents[1] / "paper"


@pytest.fixture(scope="module")
def numbers_tex(tmp_path_factory):
    root = make_results_tree(tmp_path_factory.mktemp("wf"))
    out = root / "paper/generated/numbers.tex"
    paper.write_numbers_tex(root / "results", out)
    return out.read_text()


def test_paper_sources_exist():
    names = {p.relative_to(PAPER).as_posix() for p in paper.paper_sources(PAPER)}
    assert {"main.tex", "preamble.tex", "facts.tex", *(f"track_{t}.tex" for t in "abcdef")} <= names
    assert any(n.startswith("sections/") for n in names)


def test_paper_has_no_hand_typed_results_and_no_undefined_macros(numbers_tex):
    assert paper.check_paper(PAPER, numbers_tex) == []


def test_guard_catches_a_planted_hand_typed_number(tmp_path, numbers_tex):
    work = tmp_path / "paper"
    shutil.copytree(PAPER, work, ignore=shutil.ignore_patterns("build", "generated"))
    planted = work / "sections" / "planted.tex"
    planted.write_text("Ridge regression reaches\n$R^2 = 0.47$ at low SNR.\n")
    assert [(f.line, f.col, f.text) for f in paper.find_hand_typed_numbers(planted.read_text())] == [
        (2, 8, "0.47")]
    problems = paper.check_paper(work, numbers_tex)
    assert len(problems) == 1 and "planted.tex:2:8: hand-typed decimal: '0.47'" in problems[0]
    # and so does what the command line runs (python -m pfslogg check-paper)
    assert paper.check_paper_cli(work) == problems


def test_guard_catches_a_planted_undefined_macro(tmp_path, numbers_tex):
    tex = "Ridge: $R^2 = \\TrackFRidgeOverallRthree$, n = \\DataTestN, \\PFSResolution.\n"
    assert paper.find_undefined_macros(tex, numbers_tex) == ["TrackFRidgeOverallRthree"]
    work = tmp_path / "paper"
    (work / "sections").mkdir(parents=True)
    (work / "x.tex").write_text(tex)
    problems = paper.check_paper(work, numbers_tex)
    assert problems == [f"{work / 'x.tex'}: \\TrackFRidgeOverallRthree is not defined in "
                        "numbers.tex (did you mean \\TrackFRidgeOverallRtwo?)"]


@pytest.mark.parametrize("tex", [
    "see \\citep[p.~3.2]{Bohlin2017} and \\citet{a1.2}",
    "Section~\\ref{sec:3.1}, Eq.~\\eqref{eq:1.5}, \\label{fig:0.5}, \\autoref{t:2.5}",
    "\\includegraphics[width=0.48\\textwidth, scale=0.5]{figures/r2_v1.5.pdf}",
    "text % R^2 was 0.47 in the old run",
    "\\hspace{1.5em}\\vspace{-0.5ex} \\\\[2pt] \\rule{0.4pt}{1.2ex}",
    "\\begin{tabular}{l S[table-format=1.3]} a & b \\end{tabular}",
    "\\begin{tabular*}{0.9\\textwidth}{@{}l S[table-format=-1.3]@{}} \\end{tabular*}",
    "\\renewcommand{\\arraystretch}{1.2}",
    "\\url{https://example.org/v1.2} \\href{https://arxiv.org/abs/1610.01644}{the probes paper}",
    "\\documentclass[11pt]{article} \\usepackage[margin=2.5cm]{geometry}",
    "\\setlength{\\tabcolsep}{0.5em} width 0.8\\linewidth",
    "$R^2 = \\TrackFRidgeOverallRtwo$ on \\num{\\DataTestN} spectra",
    "Ca\\,\\textsc{ii} at 8542 and the year 2017, 3D, 12 exposures",
    "50\\textbackslash{} and \\% alone",
])
def test_allowed_contexts_are_not_flagged(tex):
    assert paper.find_hand_typed_numbers(tex) == []


@pytest.mark.parametrize("tex, token", [
    ("R^2 = 0.47", "0.47"),
    ("an SNR of 12.5", "12.5"),
    ("R^2 of .5", ".5"),
    ("improves by 47\\% here", "47\\%"),
    ("improves by 47\\,\\% here", "47\\,\\%"),
    ("\\num{0.47}", "0.47"),
    ("\\SI{2000}{\\angstrom}", "2000"),
    ("\\href{https://x.org}{0.47}", "0.47"),
    ("\\newcommand{\\Fake}{0.47}", "0.47"),
    ("giants ($\\log g < 3.5$)", "3.5"),
    ("0.47 in the brightest bin", "0.47"),
    ("\\caption{R^2 reaches 0.61}", "0.61"),
    ("\\textbf{-0.12}", "0.12"),
])
def test_hand_typed_numbers_are_flagged(tex, token):
    found = paper.find_hand_typed_numbers(tex)
    assert [f.text for f in found] == [token], found


def test_facts_file_may_define_numbers_but_not_type_them_loose():
    facts = "\\newcommand{\\PFSWave}{\\SI{7100}{\\angstrom}}\n\\newcommand{\\ABZero}{48.6}\n"
    assert paper.find_hand_typed_numbers(facts, facts=True) == []
    assert [f.text for f in paper.find_hand_typed_numbers(facts)] == ["7100", "48.6"]
    assert [f.text for f in paper.find_hand_typed_numbers(facts + "loose 0.5 here\n", facts=True)] == ["0.5"]


def test_undefined_macro_check_ignores_other_macros_and_local_definitions(numbers_tex):
    tex = ("\\section{x} \\PFSResolution \\Tracking \\Database \\TrackFRidgeOverallRtwo "
           "\\newcommand{\\TrackLocalThing}{x} \\TrackLocalThing % \\TrackFCommentedOut\n")
    assert paper.find_undefined_macros(tex, numbers_tex) == []
    assert paper.find_undefined_macros("\\DataTrainNTotal", numbers_tex) == ["DataTrainNTotal"]


def test_comment_masking_keeps_escaped_percent_and_positions():
    text = "a 50\\% b % comment 0.5\nnext\\\\% c"
    masked = paper.mask_comments(text)
    assert len(masked) == len(text)
    assert masked.startswith("a 50\\% b ") and "comment" not in masked and masked.count("\n") == 1
    assert masked.endswith("next\\\\   ")


# What pfslogg.workflow.doc_results (+ the tables' inputs) gives each document, in the tree's files.
DATA = [f"results/data/{s}.json" for s in ("train", "val", "test", "grid")]
TRACK_C = DATA + ["results/track_c/fisher.json", "results/track_c/ceiling_calibration.json"] + [
    f"results/track_c/{k}.json" for k in ("bayes", "crlb_validation", "snr_sweep", "efficiency", "uncertainties",
                                                "coverage")]
TRACK_F = DATA + [f"results/track_f/{e}.json" for e in ("ridge", "lightgbm", "template", "benchmark", "pitfalls",
                                                         "physics", "sensitivity")] + [
    "results/track_c/bayes.json", "results/track_c/fisher.json"]
TRACK_A = DATA + [f"results/track_f/{e}.json" for e in ("ridge", "lightgbm", "template")] + [   # figure cells
    f"results/track_a/{e}.json" for e in ("scaling", "ablations", "vit_noise", "protocols", "scaling_sim", "attention")] + [
    "results/track_c/bayes.json", "results/track_c/fisher.json"]
TRACK_B = DATA + ["results/track_b/mixtures.json", "results/track_c/bayes.json", "results/track_c/fisher.json"]
TRACK_E = DATA + [f"results/track_e/{e}.json" for e in ("linearity", "probing", "error_channel",
                                                         "error_channel_ceiling")] + [
    "results/track_c/bayes.json", "results/track_c/fisher.json"]
TRACK_D = DATA + ["results/track_c/bayes.json", "results/track_c/fisher.json"] + [
    f"results/track_d/{e}.json" for e in ("denoising", "downstream", "downstream_ceiling", "posterior_samples")]
DOC_RESULTS = {"track_c": TRACK_C, "track_f": TRACK_F,
               "main": TRACK_A + TRACK_B + TRACK_C + TRACK_D + TRACK_E + TRACK_F,
               "track_a": TRACK_A, "track_b": TRACK_B, "track_d": TRACK_D, "track_e": TRACK_E}


@pytest.mark.parametrize("doc", sorted(DOC_RESULTS))
def test_each_document_uses_only_the_numbers_of_its_own_results(tmp_path, doc):
    root = make_results_tree(tmp_path / "wf")
    work = build_fake_paper(root, _copy_paper(tmp_path / "paper"))
    files = [root / f for f in dict.fromkeys(DOC_RESULTS[doc])]
    numbers = paper.numbers_tex(paper.collect_numbers(root / "results", files=files))
    assert paper.check_document(work, doc, numbers) == []
    (work / "own.tex").write_text(numbers)
    assert paper.check_paper_cli(work, work / "own.tex", doc=doc) == []


def test_no_track_names_in_the_text_outside_a_seeref():
    """The shared sections read in the main paper: a track's name ("Track~F") may only be the fallback
    text of \\seeref (printed in a track's own document, where the section it points to is absent);
    anywhere else the main paper would print a workflow label instead of what it means (issue 19)."""
    import re

    found = []
    for path in [PAPER / "main.tex", *sorted((PAPER / "sections").glob("*.tex"))]:   # a track's title names it
        for n, line in enumerate(path.read_text().splitlines(), 1):
            text = re.sub(r"(?<!\\)%.*", "", line)                        # comments
            text = re.sub(r"\\seeref\{[^}]*\}\{[^}]*\}", "", text)        # its fallback text
            if re.search(r"Track[~ ][A-F]\b", text):
                found.append(f"{path.relative_to(PAPER)}:{n}: {line.strip()}")
    assert found == []


def test_a_block_guarded_by_ifdefined_needs_its_macros_only_when_its_macro_exists():
    """\\ifdefined\\M ... \\fi: LaTeX skips the block when \\M is undefined (a result only another
    configuration makes), so the guard asks for the block's macros only when \\M is defined."""
    from pfslogg.paper.guard import find_undefined_macros

    text = (r"a \TrackAX{} b\ifdefined\TrackAY{} and \TrackAY{} for \TrackAZ\fi; see Fig.~\ref{fig:x}"
            "\n" r"c \TrackAW")
    assert find_undefined_macros(text, r"\newcommand{\TrackAX}{1}") == ["TrackAW"]
    assert find_undefined_macros(text, r"\newcommand{\TrackAX}{1}\newcommand{\TrackAY}{2}") == ["TrackAW", "TrackAZ"]
    with_else = r"\ifdefined\TrackAY \TrackAY\else \TrackAV\fi"   # the \else branch runs when \TrackAY is undefined
    assert find_undefined_macros(with_else, "") == ["TrackAV"]
    assert find_undefined_macros(with_else, r"\newcommand{\TrackAY}{2}") == ["TrackAV"]
