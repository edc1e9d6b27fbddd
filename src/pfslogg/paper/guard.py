"""Guard: keep hand-typed results out of the LaTeX (DESIGN.md section 5).

:func:`find_hand_typed_numbers` and :func:`find_undefined_macros` check the hand-written LaTeX; see
their docstrings for what is allowed. :func:`check_paper` runs them over ``paper/``,
:func:`check_document` checks one document (what it reads, see
:func:`~pfslogg.paper.sources.document_sources`) against its own numbers, and
:func:`check_paper_cli` is what ``python -m pfslogg check-paper`` runs.
"""

import bisect
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .sources import document_sources, mask_comments, paper_sources

# Macro names that denote results (the first folder under results/ gives the prefix).
RESULT_MACRO_PREFIXES = ("Track", "Data", "Cells")


@dataclass(frozen=True)
class Finding:
    line: int       # 1-based
    col: int        # 1-based
    text: str       # the offending token
    why: str
    context: str    # the source line

    def __str__(self):
        return f"{self.line}:{self.col}: {self.why}: {self.text!r} in: {self.context.strip()}"



def _blank(chars, start, end):
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def _group_end(text, start, open_ch, close_ch):
    """Index just past the group opening at ``start``, honouring nesting and escapes."""
    depth, i, n = 0, start, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _arguments(text, pos, max_mandatory):
    """[(kind, start, end)] of the optional '[..]' and mandatory '{..}' args after ``pos``."""
    args, i, n, mandatory = [], pos, len(text), 0
    if i < n and text[i] == "*":
        i += 1
    while i < n and mandatory < max_mandatory:
        j = i
        while j < n and text[j] in " \t\n":
            j += 1
        if j < n and text[j] == "[":
            end = _group_end(text, j, "[", "]")
            args.append(("opt", j, end))
        elif j < n and text[j] == "{":
            end = _group_end(text, j, "{", "}")
            args.append(("arg", j, end))
            mandatory += 1
        else:
            break
        i = end
    return args


# Commands whose arguments may hold digits freely: name -> which mandatory args ('all' or a
# set of 0-based positions); optional [...] args of these commands are always allowed.
_ALLOWED_ARGS = {
    **{c: "all" for c in ("ref", "eqref", "autoref", "pageref", "cref", "Cref", "nameref",
                          "label", "includegraphics", "input", "include", "bibliography",
                          "bibliographystyle", "usepackage", "RequirePackage", "documentclass",
                          "graphicspath", "url", "doi", "hspace", "vspace", "setlength",
                          "addtolength", "linespread", "setstretch", "resizebox", "rule",
                          "fontsize", "setcounter", "addtocounter", "hypersetup", "sisetup",
                          "definecolor", "color", "geometry", "cmidrule", "multicolumn",
                          "DeclareSIUnit", "nocite")},
    "href": {0}, "scalebox": {0}, "textcolor": {0},
}
_ALLOWED_RE = re.compile(r"[cC]ite[a-zA-Z]*|citep|citet|citealp|citealt")
_ARG_COUNT = {"setlength": 2, "addtolength": 2, "resizebox": 3, "rule": 2, "fontsize": 2,
              "setcounter": 2, "addtocounter": 2, "definecolor": 3, "href": 2, "scalebox": 2,
              "textcolor": 2, "multicolumn": 2, "DeclareSIUnit": 2}
_TABULAR_ENVS = {"tabular": 1, "tabular*": 2, "tabularx": 2, "longtable": 1, "array": 1}
_DEFINE_CMDS = {"newcommand", "renewcommand", "providecommand", "DeclareRobustCommand"}
_STRETCH_MACROS = {"arraystretch", "baselinestretch"}
# siunitx commands whose first argument(s) are numbers: hand-typed unless in the facts file.
_SIUNITX_NUMERIC = {"num": 1, "SI": 1, "qty": 1, "numrange": 2, "SIrange": 2, "qtyrange": 2,
                    "numlist": 1, "SIlist": 1, "qtylist": 1, "ang": 1, "tablenum": 1,
                    "complexnum": 1, "complexqty": 1, "numproduct": 1, "qtyproduct": 1}

_LENGTH_RE = re.compile(
    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:(?:pt|em|ex|cm|mm|in|bp|pc|sp|dd|cc|mu|px)(?![A-Za-z])"
    r"|\s*\\(?:textwidth|linewidth|columnwidth|textheight|paperwidth|paperheight|hsize|vsize|"
    r"baselineskip|parindent|parskip|tabcolsep|arraycolsep|fill|[A-Za-z]*(?:width|height|skip|"
    r"sep|indent))(?![A-Za-z]))")
_DECIMAL_RE = re.compile(r"(?<![A-Za-z0-9.])\d*\.\d+")
_PERCENT_RE = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?\s*(?:\\,|~|\\ |\\thinspace\s*)?\s*\\%")
_CMD_RE = re.compile(r"\\([A-Za-z]+)")


def _allowed_mask(text, facts):
    """(masked text, findings in siunitx commands): allowed contexts blanked out."""
    chars = list(mask_comments(text))
    masked = "".join(chars)
    findings = []
    for m in _CMD_RE.finditer(masked):
        name, end = m.group(1), m.end()
        if name == "begin":
            args = _arguments(masked, end, 1)
            if args and args[0][0] == "arg":
                env = masked[args[0][1] + 1:args[0][2] - 1].strip()
                if env in _TABULAR_ENVS:
                    for _, s, e in _arguments(masked, args[0][2], _TABULAR_ENVS[env]):
                        _blank(chars, s, e)
            continue
        if name in _DEFINE_CMDS:
            bare = re.match(r"\*?\s*(\\[A-Za-z]+)", masked[end:])  # \newcommand\Name{...}
            if bare:
                target, args = bare.group(1), _arguments(masked, end + bare.end(), 1)
            else:
                args = _arguments(masked, end, 2)
                target = masked[args[0][1]:args[0][2]] if args else ""
            if facts or any(f"\\{s}" in target for s in _STRETCH_MACROS):
                for _, s, e in args:
                    _blank(chars, s, e)
            continue
        if name in _SIUNITX_NUMERIC and not facts:
            for _, s, e in [a for a in _arguments(masked, end, _SIUNITX_NUMERIC[name])
                            if a[0] == "arg"]:
                arg = masked[s:e]
                for d in re.finditer(r"(?<!#)\d[\d.,]*", arg):  # '#1': a macro's parameter
                    findings.append((s + d.start(), d.group(),
                                     f"number typed into \\{name} (facts belong in facts.tex)"))
                _blank(chars, s, e)
            continue
        rule = _ALLOWED_ARGS.get(name, "all" if _ALLOWED_RE.fullmatch(name) else None)
        if rule is None:
            continue
        args = _arguments(masked, end, _ARG_COUNT.get(name, 1))
        k = 0
        for kind, s, e in args:
            if kind == "opt" or rule == "all" or k in rule:
                _blank(chars, s, e)
            k += kind == "arg"
    masked = "".join(chars)
    masked = _LENGTH_RE.sub(lambda m: " " * len(m.group()), masked)
    return masked, findings


def find_hand_typed_numbers(tex_text, facts=False):
    """Hand-typed results in LaTeX source: a list of :class:`Finding` (empty = clean).

    Flags decimal numbers (``0.47``, ``12.5``, ``.5``), percentages (``47\\%``) and any number typed
    into a siunitx command (``\\num{0.47}``, ``\\SI{2000}{...}``), except in allowed contexts:
    comments; arguments of ``\\cite*``, ``\\ref``-like commands, ``\\label``, ``\\includegraphics``,
    ``\\input``/``\\include``, ``\\usepackage``/``\\documentclass`` options, ``\\url``/``\\href``
    targets, layout commands (``\\hspace``, ``\\setlength``, ``\\sisetup``...), table column
    specifications (``S[table-format=1.3]``), ``\\renewcommand{\\arraystretch}``; TeX lengths
    (``0.5\\textwidth``, ``1.5em``). With ``facts=True`` (the one facts file, ``paper/facts.tex``)
    the bodies of ``\\newcommand`` definitions are allowed too, siunitx included: instrument facts
    are typed there once and used by name. Integers in running text are not flagged (years,
    section counts, 'Ca II'); a result integer belongs in a macro all the same.
    """
    masked, si_findings = _allowed_mask(tex_text, facts)
    hits = list(si_findings)
    for rx, why in ((_PERCENT_RE, "hand-typed percentage"), (_DECIMAL_RE, "hand-typed decimal")):
        for m in rx.finditer(masked):
            hits.append((m.start(), m.group(), why))
            masked = masked[:m.start()] + " " * len(m.group()) + masked[m.end():]
    lines = tex_text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    findings = []
    for offset, token, why in sorted(hits):
        ln = bisect.bisect_right(starts, offset) - 1
        findings.append(Finding(ln + 1, offset - starts[ln] + 1, token, why, lines[ln]))
    return findings


_DEF_RE = re.compile(r"\\(?:newcommand|renewcommand|providecommand|DeclareRobustCommand|def)"
                     r"\*?\s*\{?\s*\\([A-Za-z]+)")


def defined_macros(tex_text):
    """Names of the macros a LaTeX text defines (``\\newcommand`` and friends, ``\\def``)."""
    return set(_DEF_RE.findall(mask_comments(tex_text)))


def find_undefined_macros(tex_text, numbers_tex, prefixes=RESULT_MACRO_PREFIXES):
    """Result macros (names starting with a prefix, e.g. ``\\TrackF...``) that ``tex_text`` uses
    but neither ``numbers_tex`` (the text of numbers.tex) nor ``tex_text`` itself defines; sorted."""
    pattern = re.compile(r"(?:%s)[A-Z]" % "|".join(map(re.escape, prefixes)))
    defined = defined_macros(numbers_tex) | defined_macros(tex_text)
    text = _IFDEFINED_RE.sub(lambda m: m.group(0) if m.group(1) in defined else _else_branch(m.group(2)),
                             mask_comments(tex_text))
    used = {m for m in _CMD_RE.findall(text) if pattern.match(m)}
    return sorted(used - defined)


# \ifdefined\Name ... [\else ...] \fi: LaTeX skips the first branch when \Name is undefined (a result another
# configuration makes: the default has no kernel-63 CNN), so its macros need not exist then; the \else branch runs
_IFDEFINED_RE = re.compile(r"\\ifdefined\\([A-Za-z]+)(.*?)\\fi(?![A-Za-z])", re.S)
_ELSE_RE = re.compile(r"\\else(?![A-Za-z])")


def _else_branch(block):
    """What LaTeX reads of an ``\\ifdefined`` block whose macro is undefined: its ``\\else`` branch, or nothing."""
    parts = _ELSE_RE.split(block, maxsplit=1)
    return parts[1] if len(parts) == 2 else ""


def _undefined_problems(file, text, numbers_tex, defined, where):
    """Lines for the result macros ``text`` uses that ``numbers_tex`` lacks, with a hint."""
    problems = []
    for name in find_undefined_macros(text, numbers_tex):
        near = difflib.get_close_matches(name, defined, n=1)
        hint = f" (did you mean \\{near[0]}?)" if near else ""
        problems.append(f"{file}: \\{name} is not defined in {where}{hint}")
    return problems


def check_paper(paper_dir, numbers_tex=None, facts_name="facts.tex"):
    """All guard problems of the hand-written LaTeX under ``paper_dir`` as readable lines.

    ``numbers_tex``: the text of numbers.tex for the undefined-macro check (None skips it).
    """
    problems = []
    defined = defined_macros(numbers_tex) if numbers_tex is not None else set()
    for path in paper_sources(paper_dir):
        text = path.read_text()
        for f in find_hand_typed_numbers(text, facts=path.name == facts_name):
            problems.append(f"{path}:{f}")
        if numbers_tex is not None:
            problems += _undefined_problems(path, text, numbers_tex, defined, "numbers.tex")
    return problems


def check_document(paper_dir, doc, numbers_tex):
    """Guard problems of one document: every result macro that its hand-written LaTeX and its
    generated tables use must be defined in its own numbers.tex (text ``numbers_tex``), and
    its hand-written LaTeX holds no hand-typed result. Returns readable lines (empty = clean)."""
    paper_dir = Path(paper_dir)
    base = paper_dir.as_posix().rstrip("/")
    problems = []
    defined = defined_macros(numbers_tex)
    for path in document_sources(paper_dir, doc):
        if not path.startswith(base + "/") or not path.endswith(".tex"):
            continue
        rel = path[len(base) + 1:]
        file = paper_dir / rel
        if rel.startswith("generated/") and rel.endswith("/numbers.tex"):
            continue
        if not file.is_file():
            problems.append(f"{file}: read by {doc}.tex but missing")
            continue
        text = file.read_text()
        if not rel.startswith("generated/"):
            for f in find_hand_typed_numbers(text, facts=file.name == "facts.tex"):
                problems.append(f"{file}:{f}")
        problems += _undefined_problems(file, text, numbers_tex, defined, f"the numbers of {doc}")
    return problems


def check_paper_cli(paper_dir, numbers_path=None, doc=None):
    """The guard as ``python -m pfslogg check-paper`` runs it: problem lines (empty = clean).

    ``paper_dir``: the paper folder (``paper``); ``numbers_path``: a numbers.tex whose macros the
    text may use (None: the undefined-macro check is skipped for the whole paper, and with ``doc``
    every result macro counts as undefined); ``doc``: check only this document (``main``,
    ``track_f``...) and what it reads, see :func:`check_document`. InputError if ``paper_dir`` or
    ``numbers_path`` is missing."""
    paper_dir = Path(paper_dir)
    if not paper_dir.is_dir():
        raise InputError(f"{paper_dir}: paper folder not found")
    numbers = None
    if numbers_path is not None:
        try:
            numbers = Path(numbers_path).read_text()
        except OSError as exc:
            raise InputError(f"{numbers_path}: cannot read numbers.tex: {exc}") from None
    if doc is not None:
        return check_document(paper_dir, doc, numbers or "")
    return check_paper(paper_dir, numbers)
