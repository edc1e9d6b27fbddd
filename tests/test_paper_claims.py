"""What the paper says of its numbers (issue 19): the wording that a referee found contradicting the
numbers beside it must not come back, and the numbers that the wording now depends on are there.

* The Bayes ceiling (the R^2 of the exact posterior mean) is THE ceiling of every estimator. The
  Fisher / Cramer-Rao quantity R^2_max binds unbiased estimators only -- models that shrink toward
  the prior mean score above its median -- so it is "the Cramer-Rao bound" or "the Fisher bound",
  never a "ceiling". :func:`offences` scans the hand-written LaTeX (``paper/*.tex``,
  ``paper/sections/*.tex``, comments left out) and every string of the modules that write the
  paper's tables, figures and captions, and each failure names file:line of every offence.
* One symbol per quantity: the noise level is $k$ (text and figures), $\\eta$ the throughput,
  $\\mathcal{E}$ the efficiency.
* The power-law asymptote says when it sits at its imposed cap; the efficiency file says how many
  models score above the mean bound over the whole test set.
"""

import ast
import re
from pathlib import Path

import pytest

from pfslogg.paper.numbers import format_value
from pfslogg.paper.sources import mask_comments

ROOT = Path(__file__).resolve().parents[1]

# "Cramér–Rao" as TeX (Cram\'er--Rao, Cram\'{e}r--Rao) or plain text (Cramér–Rao, Cramer-Rao).
_CR = r"Cram(?:\\'\{?e\}?|é|e)r\s*(?:--|–|—|-)\s*Rao"
_BOUND = rf"(?:{_CR}|Fisher(?:\s*/\s*CRLB)?|(?:mean[- ])?CRLB)"
_GAP = r"[\s~]+"

# (pattern, why): each names a wording that calls the Cramer-Rao quantity a ceiling.
CEILING_WORDING = [
    (rf"{_BOUND}{_GAP}ceilings?\b", "the Cramer-Rao/Fisher quantity is a bound for unbiased estimators, not a ceiling"),
    (rf"(?:{_BOUND}|bound)[- ]based{_GAP}ceilings?\b", "a bound-based 'ceiling' is the Cramer-Rao bound, not a ceiling"),
    (r"\bmedian(?:[\s~]+(?!Bayes\b)[^\s.;:]+){0,3}[\s~]+ceilings?\b",
     "a median of per-spectrum bounds is no ceiling on any model's R^2"),
    (r"\b(?:both|two)[\s~]+ceilings\b", "there is one ceiling (Bayes) and one bound (Cramer-Rao)"),
    (r"\bceilings?[\s~]+(?:of[\s~]+)?\$?R\^\{?2\}?_\{?\\?max", "R^2_max is the Cramer-Rao bound, not a ceiling"),
    (r"\bR\^?\{?2\}?_\{?\\?max\}?\$?[\s~]+ceilings?\b", "R^2_max is the Cramer-Rao bound, not a ceiling"),
    (r"\bceiling\b[^.;]{0,80}?\bany[\s~]+unbiased[\s~]+estimator",
     "a bound on what unbiased estimators explain is the Cramer-Rao bound, not a ceiling"),
]

# One symbol per quantity: noise level k, throughput eta, efficiency \mathcal{E}.
SYMBOLS = [
    (r"noise[\s~]+level[\s~]+\$\\(?:eta|nu)\b", "the noise level is $k$"),
    (r"\bF(?:_0)?\s*\+\s*\\(?:eta|nu)\b", "the noise level is $k$: F + k sigma epsilon"),
    (r"\\nu\s*=\s*\\Track", "the noise level is $k$"),
    (r"\\eta_\\mathrm\{?(?:Bayes|CRLB|ceiling)", "the efficiency is \\mathcal{E}, eta is the throughput"),
    (r"\\eta\s*=\s*R\^2", "the efficiency is \\mathcal{E}, eta is the throughput"),
    (r"\\eta\s*>\s*1", "the efficiency is \\mathcal{E}, eta is the throughput"),
]

TEX_FILES = sorted([*ROOT.glob("paper/*.tex"), *ROOT.glob("paper/sections/*.tex")])
PY_FILES = sorted([*ROOT.glob("src/pfslogg/paper/tables/*.py"), *ROOT.glob("src/pfslogg/plots/*.py"),
                   *ROOT.glob("src/pfslogg/tracks/*.py")])


def _line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def tex_texts(path):
    """[(line, text)]: the file's LaTeX with comments blanked, as one piece (phrases can span lines)."""
    return [(1, mask_comments(Path(path).read_text()))]


def py_texts(path):
    """[(line, text)] of every string constant of a Python module (captions, labels, notes, docstrings;
    f-strings by their literal parts), implicit concatenations joined."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def offences(path, rules, texts=None):
    """['file:line: why: "matched text"'] for every match of ``rules`` in ``path``."""
    path = Path(path)
    if texts is None:
        texts = tex_texts(path) if path.suffix == ".tex" else py_texts(path)
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    out = []
    for line0, text in texts:
        for pattern, why in rules:
            for m in re.finditer(pattern, text, flags=re.IGNORECASE):
                line = line0 + _line_of(text, m.start()) - 1
                out.append(f"{name}:{line}: {why}: {' '.join(m.group().split())!r}")
    return out


def _report(found):
    return "\n" + "\n".join(found)


def test_the_sources_exist():
    assert len(TEX_FILES) >= 10 and any(p.name == "fisher.tex" for p in TEX_FILES)
    assert any(p.name == "track_f.py" for p in PY_FILES) and any(p.name == "snr.py" for p in PY_FILES)


@pytest.mark.parametrize("path", TEX_FILES + PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_cramer_rao_bound_is_never_called_a_ceiling(path):
    found = offences(path, CEILING_WORDING)
    assert not found, _report(found)


@pytest.mark.parametrize("path", TEX_FILES + PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_one_symbol_per_quantity(path):
    found = offences(path, SYMBOLS)
    assert not found, _report(found)


@pytest.mark.parametrize("text", [
    r"against a Bayes ceiling of \num{\X} and a median Cram\'er--Rao ceiling of \num{\Y}",
    "the Fisher ceiling of the\nsame spectra", r"Track C: the Bayes and Cram\'er--Rao ceilings",
    r"the median Fisher ceiling $R^2_{\max}$", "A CRLB-based ceiling there", "a bound-based ceiling at low SNR",
    "Against the mean-CRLB ceiling several models", "The two ceilings agree",
    r"turn it into a ceiling on the fraction of the prior variance that any unbiased estimator can explain",
    "Fisher/CRLB ceiling (median)", "the 3D/4D CRLB ceilings", "Cramér–Rao ceiling", "Cramer-Rao ceiling",
    r"the ceiling $R^2_{\max}$ of the spectra", "median R2max ceiling",
])
def test_the_check_catches_the_old_wording(text, tmp_path):
    found = offences(tmp_path / "x.tex", CEILING_WORDING, texts=[(7, "some text\n" + text)])
    assert found and all(f.startswith(f"{tmp_path / 'x.tex'}:") for f in found)
    assert int(found[0].split(":")[1]) >= 8     # file:line of the offence


@pytest.mark.parametrize("text", [
    r"against a Bayes ceiling of \num{\X} for the same spectra",
    r"the median Cram\'er--Rao bound $R^2_{\max}$ of the spectra of each bin, which binds unbiased estimators only",
    "the median lies above the Bayes ceiling", r"the median $R^2$ of the Bayes ceiling",
    "Because it binds only unbiased estimators, it is no ceiling on a model's $R^2$: the ceiling for every "
    "estimator is the Bayes ceiling", "The Bayes ceiling and the $R^2$ of the mean bound agree",
    r"\subsection{The Cram\'er--Rao bound for unbiased estimators}", "Fisher information on log g",
    "the median posterior standard deviation of the Bayes ceiling", "Cramér–Rao bound (unbiased)",
    "it binds unbiased estimators only and is no ceiling on estimators that shrink toward the prior mean",
])
def test_the_check_passes_legitimate_text(text, tmp_path):
    assert offences(tmp_path / "x.tex", CEILING_WORDING, texts=[(1, text)]) == []


@pytest.mark.parametrize("text, bad", [
    (r"A view adds noise at a chosen noise level $\eta$ to the stored clean flux", True),
    (r"$F+\nu\sigma\epsilon$ with noise level $\nu=\TrackCFisherNoiseLevel$", True),
    (r"every batch gets fresh noise, $F+\eta\,\sigma\,\epsilon$", True),
    (r"efficiency $\eta=R^2_\mathrm{model}/R^2_\mathrm{ceiling}$", True),
    (r"$\eta_\mathrm{Bayes} = R^2_\mathrm{model}$", True),
    (r"several models score $\eta>1$ at low SNR", True),
    (r"$S(\lambda)=\eta\,A(s)\,C(\lambda)$ and $\eta$ a throughput factor", False),
    (r"$F+k\,\sigma\,\epsilon$ at noise level $k$; $\mathcal{E}_\mathrm{Bayes}=R^2_\mathrm{model}/R^2_\mathrm{Bayes}$",
     False),
])
def test_the_symbol_check(text, bad, tmp_path):
    assert bool(offences(tmp_path / "x.tex", SYMBOLS, texts=[(1, text)])) is bad


def test_python_strings_are_read_with_their_lines(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('"""Doc."""\n\nX = 1  # a Fisher ceiling in a comment is not printed\n'
                   'LABEL = ("median Fisher "\n         "ceiling")\nF = f"{X}: the CRLB ceiling"\n')
    found = offences(src, CEILING_WORDING)
    assert [f.split(":")[1] for f in found] == ["4", "4", "6"], found   # two rules hit the label


# -- the numbers the wording reads ----------------------------------------------------------------
def test_the_power_law_says_when_its_asymptote_is_the_cap():
    from pfslogg.scaling import power_law, power_law_fit

    sizes = [1000, 2000, 6000, 20000]
    y = power_law(sizes, 0.95, 6.0, 0.4)
    capped = power_law_fit(sizes, y, r2_max=0.85)
    free = power_law_fit(sizes, y)
    under = power_law_fit(sizes, y, r2_max=0.99)
    assert capped["at_cap"] == 1 and capped["r2_inf"] == pytest.approx(capped["r2_inf_max"])
    assert free["at_cap"] == 0 and under["at_cap"] == 0 and under["r2_inf"] < 0.99
    # a plain integer, so that the macro is 1 or 0 (\ifsamenum{...AtCap}{1}{at the cap}{fitted})
    assert format_value("at_cap", capped["at_cap"])[0] == "1" and format_value("at_cap", 0)[0] == "0"


def test_the_efficiency_file_counts_the_models_above_the_mean_bound():
    from pfslogg.ceilings.efficiency import efficiency

    bins = [{"lo": 2.0, "hi": 5.0, "snr_median": 3.0, "r2": 0.6, "r2_ci": [0.55, 0.65]}]
    bayes = {"noise_level": 1.0, "snr_bins": bins, "overall": {"r2": 0.8, "r2_ci": [0.78, 0.82]}}
    fisher = {"snr_bins": [{"lo": 2.0, "r2max_mean_crlb": 0.3, "r2max_median": 0.5}],
              "overall": {"r2max_mean_crlb": 0.6, "r2max_median": 0.9}}

    def cell(name, label, r2):
        return {"metrics": {"estimator": name, "label": label, "noise_level": 1.0,
                            "snr_bins": [{"lo": 2.0, "r2": r2, "r2_ci": [r2 - 0.01, r2 + 0.01]}],
                            "overall": {"r2": r2, "r2_ci": [r2 - 0.01, r2 + 0.01]}}}

    m = efficiency(bayes, fisher, {"ridge": [cell("ridge", "Ridge", 0.64)], "vit": [cell("vit", "ViT", 0.66)],
                                   "vit_patch128": [cell("vit_patch128", "ViT", 0.5)]})
    assert m["n_models"] == 3 and m["n_above_crlb"] == 2          # 0.64 / 0.6 and 0.66 / 0.6
    assert m["eta_crlb_min"] == pytest.approx(0.5 / 0.6) and m["eta_crlb_max"] == pytest.approx(0.66 / 0.6)
    assert m["eta_bayes_min"] == pytest.approx(0.5 / 0.8) and m["eta_bayes_max"] == pytest.approx(0.66 / 0.8)
    # the words the paper names the models by: where two share a label and nothing else is known of
    # them, their ids in words; with their hyper-parameters, what tells them apart
    assert m["labels"] == {"ridge": "Ridge", "vit": "ViT (vit)", "vit_patch128": "ViT (vit patch128)"}
    cells = {"vit": [cell("vit", "ViT", 0.66)], "vit_patch128": [cell("vit_patch128", "ViT", 0.5)]}
    for e, patch in (("vit", 64), ("vit_patch128", 128)):
        cells[e][0]["metrics"]["class"] = "vit"
        cells[e][0]["provenance"] = {"params": {"hyper": {"patch": patch}, "sigma": "estimated"}}
    assert efficiency(bayes, fisher, cells)["labels"] == {"vit": "ViT", "vit_patch128": "ViT, patch 128"}
    assert format_value("n_above_crlb", m["n_above_crlb"])[0] == "2"
    # every efficiency with 3 decimals, like the R^2 it is a ratio of
    assert [format_value(k, 0.0458123)[0] for k in ("eta_bayes_min", "eta_crlb_max", "best_eta_bayes")] == ["0.046"] * 3
