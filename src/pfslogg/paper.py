"""Paper machinery: every reported number becomes a LaTeX macro; tables use the macros; a guard
keeps hand-typed results out of the LaTeX (DESIGN.md section 5).

Numbers
-------
:func:`collect_numbers` walks ``results/**/*.json`` (files ``{"metrics": ..., "provenance": ...}``;
JSON files without ``metrics`` are not results files and are skipped, as are hidden files such as
the temporary files of :mod:`pfslogg.atomic`) -- or exactly the results files it is given, as the
workflow does per document -- and turns every numeric leaf of ``metrics`` into a :class:`Number`,
and every numeric leaf of ``provenance.params`` (the rule's parameters: prior ranges, noise
settings, bootstrap size...) into one named with ``Cfg``. :func:`write_numbers_tex` writes them as
``paper/generated/<doc>/numbers.tex``, one ``\\newcommand{\\Name}{value}`` each, preceded by
``% <json path> :: <key path> = <raw value>``, plus a machine-readable index ``numbers.json``
(macro -> file, section, key, raw and formatted value, sha256 of the results file) that
:mod:`pfslogg.audit` reads. Output order is deterministic: files sorted by path, keys in the order
of the JSON document. The output holds no timestamp, so identical results give byte-identical files.

Macro names (LaTeX control words are letters only)::

    \\ <path words> [Cfg] <key words>

* path words: the results file's path relative to ``results/`` without ``.json``, split on
  ``/``, ``_``, ``-`` and other non-alphanumerics; each word is capitalised:
  ``track_f/ridge.json`` -> ``TrackFRidge``, ``data/test.json`` -> ``DataTest``;
* ``Cfg`` for a number of ``provenance.params`` (nothing for ``metrics``);
* key words: each dict key split the same way and capitalised (``snr_median`` -> ``SnrMedian``);
  digits inside a word are spelled in lower case (``r2`` -> ``Rtwo``, ``r2max`` -> ``Rtwomax``,
  ``p10`` -> ``Pten``; leading zeros are spelled, ``p05`` -> ``Pzerofive``);
* a list of exactly two numbers (a confidence interval or range) gives ``Lo`` and ``Hi``;
* any other list element is named by its 1-based position, spelled and capitalised
  (``snr_bins[0]`` -> ``SnrBinsOne``, ``[11]`` -> ``Twelve``, ``[20]`` -> ``Twentyone``).

Examples: ``results/track_f/ridge.json`` ``overall.r2`` -> ``\\TrackFRidgeOverallRtwo``;
``snr_bins[2].r2_ci[0]`` -> ``\\TrackFRidgeSnrBinsThreeRtwoCiLo``; ``results/track_c/fisher.json``
``overall.r2max_p10`` -> ``\\TrackCFisherOverallRtwomaxPten``; ``results/data/train.json``
``provenance.params.noise.throughput`` -> ``\\DataTrainCfgNoiseThroughput``.
Spelling can map two different keys to one name (``r2`` and ``r_2``); :func:`collect_numbers`
raises :class:`~pfslogg.errors.InputError` naming both sources instead of writing either.

Precision (:data:`PRECISION_RULES`, first match on the nearest dict key with a letter in it,
lower-cased): R^2-like (``r2*``, ``*_r2*``, ``rho``) 3 decimals; errors (``mae``, ``rmse``,
``mse``, ``bias``...) 3 decimals; SNR (``snr*``, bin edges ``lo``/``hi``) 1 decimal; ``var_prior``
3 decimals; fractions 3 decimals; percentages 1 decimal; magnitudes up to 2 decimals; counts (``n``,
``n_*``, ``*_count``...) integer; hyper-parameters and values quoted from the original study
(``original*``, ``alpha``, ``lr``, ``noise_level``...) as given (shortest round-trip form), and so
are the rule parameters (``Cfg``) and everything below a ``model`` or ``axes`` key (settings, not
measurements). A JSON integer that no rule claims is written as an integer, any other float with
3 significant digits. Values are plain, siunitx-parsable strings (``20000``, ``-0.123``,
``1.5e-5``): write ``\\num{\\Macro}`` where digit grouping or a proper minus sign matters; NaN is
written ``{--}``. Strings, booleans and nulls are not numbers and are skipped.

Tables
------
One small function per table, each reading the results files it is given (the rule's inputs) and
referring to values only through the macros above (so the table and the text cannot disagree):
:func:`write_leaderboard_tex` (R^2 per estimator and SNR bin, with CIs, plus the Fisher ceiling),
:func:`write_ceiling_tex` (the ceiling per SNR bin), :func:`write_calibration_tex` (the ceiling
at the original study's SNR points beside its values), :func:`write_datasets_tex` (sizes,
magnitudes and SNR of the data sets). :data:`TABLES` maps names to them.

Documents
---------
:func:`document_sources` lists every file a document reads (its ``\\input`` tree, generated
numbers and tables, figures, bibliography): the workflow's input function for rule
``compile_paper``. :func:`describe_grid` writes the numbers that describe the instrument grid
(``results/data/grid.json``, rule ``describe_grid``).

Guard
-----
:func:`find_hand_typed_numbers` and :func:`find_undefined_macros` check the hand-written LaTeX; see
their docstrings for what is allowed; :func:`check_document` checks one document against its own
numbers. ``python -m pfslogg.paper guard [--doc DOC --numbers NUMBERS.tex]`` runs them over
``paper/``.
"""

import argparse
import bisect
import difflib
import json
import math
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_json, write_text
from .errors import InputError
from .provenance import sha256_file

# --------------------------------------------------------------------------------------------
# Macro names
# --------------------------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def spell_int(n):
    """English words of a non-negative integer, lower case, no spaces: 21 -> 'twentyone'."""
    if n < 0:
        raise ValueError(f"spell_int: negative {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    for scale, word in _SCALES:
        if n >= scale:
            rest = n % scale
            return spell_int(n // scale) + word + (spell_int(rest) if rest else "")
    raise AssertionError("unreachable")


def _spell_digits(run):
    """A digit run as words; leading zeros are spelled so that '05' and '5' differ."""
    stripped = run.lstrip("0")
    zeros = len(run) - len(stripped)
    if not stripped:  # all zeros
        return "zero" * len(run)
    return "zero" * zeros + spell_int(int(stripped))


def camel_words(text):
    """'snr_bins' -> 'SnrBins', 'r2_ci' -> 'RtwoCi', 'track_f' -> 'TrackF' (letters only)."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    out = []
    for word in re.split(r"[^A-Za-z0-9]+", ascii_text):
        if not word:
            continue
        word = re.sub(r"\d+", lambda m: _spell_digits(m.group()), word)
        out.append(word[0].upper() + word[1:])
    return "".join(out)


def index_word(i):
    """0-based list index -> capitalised 1-based word: 0 -> 'One'."""
    return spell_int(i + 1).capitalize()


# --------------------------------------------------------------------------------------------
# Precision
# --------------------------------------------------------------------------------------------

def _no_negative_zero(s):
    return s[1:] if re.fullmatch(r"-0\.?0*", s) else s


def _fixed(decimals):
    return lambda x: _no_negative_zero(f"{x:.{decimals}f}")


def _integer(x):
    return str(int(round(x)))


def _trimmed(max_dec, min_dec=1):
    """At most ``max_dec`` decimals, trailing zeros dropped down to ``min_dec``."""
    def fmt(x):
        whole, frac = f"{x:.{max_dec}f}".split(".")
        frac = frac.rstrip("0").ljust(min_dec, "0")
        return _no_negative_zero(f"{whole}.{frac}" if frac else whole)
    return fmt


def _exp(s):
    """Python exponent '1e-05' -> siunitx/TeX-friendly '1e-5'."""
    m = re.fullmatch(r"(-?[\d.]+)e([+-])0*(\d+)", s)
    if not m:
        return s
    mant, sign, exp = m.groups()
    return f"{mant}e{'-' if sign == '-' else ''}{exp}"


def _as_given(x):
    """The shortest form that reads back as ``x`` (integral values without '.0')."""
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e15):
        return str(int(x))
    return _exp(repr(float(x)))


def _significant(digits):
    def fmt(x):
        if x == 0:
            return "0"
        mag = math.floor(math.log10(abs(x)))
        if -3 <= mag < 6:
            s = f"{x:.{max(0, digits - 1 - mag)}f}"
            # rounding can add a digit (9.996 -> 10.00): redo with the new magnitude
            if len(s.lstrip("-").replace(".", "").lstrip("0")) > digits and "." in s:
                s = f"{x:.{max(0, digits - 2 - mag)}f}"
            return s
        return _exp(f"{x:.{digits - 1}e}")
    return fmt


@dataclass(frozen=True)
class PrecisionRule:
    name: str
    pattern: str  # regular expression, full match on the lower-cased nearest dict key
    fmt: object   # float -> str


# First match wins. The key is the nearest dict key of a leaf: 'r2' for overall.r2,
# 'r2_ci' for overall.r2_ci[0], 'r2max_median' for snr_bins[3].r2max_median.
PRECISION_RULES = (
    PrecisionRule("quoted from the original study", r"original(_.*)?|.*_original", _as_given),
    PrecisionRule("count", r"n|n_.*|.*_n|num_.*|.*_count|count|.*epochs?|seed|.*_seed|"
                           r".*_size", _integer),
    PrecisionRule("R^2-like", r"(.*_)?(r2\w*|rho)(_.*)?|.*r2.*", _fixed(3)),
    PrecisionRule("error", r"(.*_)?(mae|rmse|mse|wmae|bias|mad|nmad|std|sigma|crlb)(_.*)?", _fixed(3)),
    PrecisionRule("SNR", r"(.*_)?snr(_.*)?|lo|hi", _fixed(1)),
    PrecisionRule("prior variance", r"var_prior|var(_.*)?", _fixed(3)),
    PrecisionRule("fraction", r"(.*_)?(frac|fraction|retention|accuracy)(_.*)?", _fixed(3)),
    PrecisionRule("percentage", r"(.*_)?(pct|percent|improvement)(_.*)?", _fixed(1)),
    PrecisionRule("magnitude", r"(.*_)?mag(_.*)?", _trimmed(2)),
    PrecisionRule("hyper-parameter", r"alpha|alphas|lambda|l2|lr|.*_lr|learning_rate|"
                                     r"weight_decay|dropout|noise_level|scale|s|.*_scale|tol",
                  _as_given),
)
DEFAULT_RULE = PrecisionRule("default", r".*", _significant(3))
INTEGER_RULE = PrecisionRule("JSON integer", r".*", lambda x: str(int(x)))


def precision_rule(key, value):
    """The rule that formats ``value`` found under dict key ``key``."""
    k = str(key).lower()
    for rule in PRECISION_RULES:
        if re.fullmatch(rule.pattern, k):
            if rule.fmt is _integer and not float(value).is_integer():
                break  # a non-integral 'count' is not a count: use the default
            return rule
    if isinstance(value, int):
        return INTEGER_RULE
    return DEFAULT_RULE


AS_GIVEN_RULE = PrecisionRule("configuration (as given)", r".*", _as_given)
# Dict keys whose whole subtree holds inputs (model settings), printed as given.
AS_GIVEN_KEYS = ("model", "axes")


def format_value(key, value, as_given=False):
    """(formatted string, rule name) of a numeric leaf under dict key ``key``; ``as_given``
    for configuration values (a rule's parameters, a model's settings), printed as typed."""
    if isinstance(value, float) and math.isnan(value):
        return "{--}", "not a number"
    if isinstance(value, float) and math.isinf(value):
        return ("{$\\infty$}" if value > 0 else "{$-\\infty$}"), "infinite"
    rule = AS_GIVEN_RULE if as_given else precision_rule(key, value)
    return rule.fmt(value), rule.name


# --------------------------------------------------------------------------------------------
# Collecting numbers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    """One reported number: a numeric leaf of a results file's ``metrics``."""

    macro: str        # LaTeX macro name without the backslash
    file: str         # results file, posix path relative to the workflow root
    key: str          # key path inside metrics, e.g. 'snr_bins[2].r2_ci[0]'
    path: tuple       # the same as a tuple of dict keys (str) and list indices (int)
    raw: object       # the value in the JSON (int or float)
    formatted: str    # what the macro expands to
    rule: str         # name of the precision rule used
    section: str = "metrics"   # where ``path`` starts: 'metrics' or 'provenance.params'

    def tex(self):
        return (f"% {self.file} :: {self.key} = {_raw_repr(self.raw)}\n"
                f"\\newcommand{{\\{self.macro}}}{{{self.formatted}}}\n")


def _raw_repr(x):
    return repr(x) if isinstance(x, float) else str(x)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def key_path_str(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _walk(node, path, words, nearest_key, as_given=False):
    """Yield (path tuple, macro words, nearest dict key, value, as_given) for each numeric leaf.

    The nearest key decides the precision; a key without letters (``"0.01"`` in
    ``val_r2_by_alpha``) says nothing about its value, so the key above it is used instead.
    Everything below a key of :data:`AS_GIVEN_KEYS` is printed as given."""
    if isinstance(node, dict):
        for k, v in node.items():
            word = camel_words(k)
            if not word:
                raise InputError(f"metrics key {k!r} at {key_path_str(path) or '<top>'}: "
                                 "has no letters or digits to name a macro by")
            near = k if re.search(r"[A-Za-z]", str(k)) else nearest_key
            yield from _walk(v, path + (k,), words + word, near, as_given or k in AS_GIVEN_KEYS)
    elif isinstance(node, list):
        pair = len(node) == 2 and all(_is_number(v) for v in node)
        for i, v in enumerate(node):
            word = ("Lo", "Hi")[i] if pair else index_word(i)
            yield from _walk(v, path + (i,), words + word, nearest_key, as_given)
    elif _is_number(node):
        yield path, words, nearest_key, node, as_given
    # strings, booleans, None: not numbers


def results_files(results_dir):
    """Results JSON files under ``results_dir``, sorted; hidden files and folders skipped."""
    results_dir = Path(results_dir)
    files = []
    for p in sorted(results_dir.rglob("*.json")):
        rel = p.relative_to(results_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        files.append(p)
    return files


def load_results(path):
    """The parsed results file, or None when the JSON is not a results file (no 'metrics')."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read results JSON: {exc}") from None
    if not isinstance(doc, dict) or "metrics" not in doc:
        return None
    if not isinstance(doc["metrics"], dict):
        raise InputError(f"{path}: 'metrics' must be an object, got {type(doc['metrics']).__name__}")
    if not isinstance(doc.get("provenance"), dict):
        raise InputError(f"{path}: has 'metrics' but no 'provenance' block; every number must be "
                         "traceable (see pfslogg.provenance.write_results)")
    return doc


def _rel_posix(path, root):
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


PARAMS_SECTION = "provenance.params"
PARAMS_WORD = "Cfg"


def _selected_files(results_dir, files):
    """``files`` (paths under ``results_dir``, given relative to the current folder, to the
    results folder's parent, or absolute) as sorted absolute-free Paths; InputError if one is
    missing or lies outside ``results_dir``."""
    results_abs = results_dir.resolve()
    out = set()
    for f in files:
        f = Path(f)
        candidates = [f] if f.is_absolute() else [f, results_abs.parent / f]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise InputError(f"{f}: results file not found")
        try:
            rel = hit.resolve().relative_to(results_abs)
        except ValueError:
            raise InputError(f"{f}: not under the results folder {results_dir}") from None
        out.add(results_dir / rel)
    return sorted(out)


def collect_numbers(results_dir, root=None, files=None, params=True):
    """Every numeric leaf of the results files under ``results_dir`` as a :class:`Number`.

    ``files``: only these results files (each under ``results_dir``; a document's numbers come
    from exactly the files it uses); default: every results file there. ``root`` is the workflow
    root that file paths are given relative to (default: the folder holding ``results_dir``).
    With ``params`` the numbers of each file's ``provenance.params`` (the rule's parameters: prior
    ranges, noise settings, bootstrap size...) become macros too, named with ``Cfg`` after the
    file's words (``results/data/train.json`` ``params.T_eff[0]`` -> ``\\DataTrainCfgParamsTEffLo``)
    and printed as given. Raises InputError on unreadable files or colliding macro names.
    """
    results_dir = Path(results_dir)
    if files is not None and not list(files):
        return []  # a document that prints no result yet
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: results folder not found")
    root = Path(root) if root is not None else results_dir.resolve().parent
    paths = results_files(results_dir) if files is None else _selected_files(results_dir, files)
    numbers, seen = [], {}
    for path in paths:
        doc = load_results(path)
        if doc is None:
            continue
        rel = path.relative_to(results_dir).with_suffix("")
        prefix = "".join(camel_words(part) for part in rel.parts)
        if not prefix or not prefix[0].isalpha():
            raise InputError(f"{path}: its path gives no letters to start a macro name with")
        file = _rel_posix(path, root)
        leaves = [("metrics", prefix, "", leaf) for leaf in _walk(doc["metrics"], (), "", rel.name)]
        cfg = doc["provenance"].get("params")
        if params and isinstance(cfg, dict):
            leaves += [(PARAMS_SECTION, prefix + PARAMS_WORD, PARAMS_SECTION + ".", leaf)
                       for leaf in _walk(cfg, (), "", rel.name, as_given=True)]
        for section, head, key_head, (kpath, words, nearest, value, as_given) in leaves:
            macro = head + words
            key = key_head + key_path_str(kpath)
            if macro in seen:
                other = seen[macro]
                raise InputError(
                    f"macro name collision: \\{macro} from {file} :: {key} and from "
                    f"{other.file} :: {other.key}; rename one of the keys or files")
            formatted, rule = format_value(nearest, value, as_given=as_given)
            number = Number(macro, file, key, kpath, value, formatted, rule, section)
            seen[macro] = number
            numbers.append(number)
    return numbers


def numbers_tex(numbers):
    """The text of numbers.tex for ``numbers``."""
    files = sorted({n.file for n in numbers})
    head = ["% Generated by pfslogg.paper.write_numbers_tex -- do not edit.",
            "% One macro per reported number, from the 'metrics' of the results JSON files below.",
            "% Each macro is preceded by:  % <json path> :: <key path> = <raw value>",
            "% Trace any macro or printed value:  python -m pfslogg provenance <macro or number>",
            f"% {len(numbers)} numbers from {len(files)} files:"]
    head += [f"%   {f}" for f in files]
    body, current = [], None
    for n in numbers:
        if n.file != current:
            body.append(f"\n% ---- {n.file}\n")
            current = n.file
        body.append(n.tex())
    return "\n".join(head) + "\n" + "".join(body)


def numbers_index(numbers, root=None):
    """The machine-readable index written beside numbers.tex (what the audit reads)."""
    root = Path(root) if root is not None else Path.cwd()
    files = {}
    for f in sorted({n.file for n in numbers}):
        p = Path(f) if Path(f).is_absolute() else root / f
        files[f] = {"sha256": sha256_file(p)}
    return {
        "generator": "pfslogg.paper.write_numbers_tex",
        "files": files,
        "macros": {n.macro: {"file": n.file, "key": n.key, "path": list(n.path), "raw": n.raw,
                             "formatted": n.formatted, "rule": n.rule, "section": n.section}
                   for n in numbers},
    }


def write_numbers_tex(results_dir, out_path, index_path=None, root=None, files=None):
    """Write numbers.tex (and its index, default ``out_path`` with ``.json``) from the results
    files under ``results_dir`` (``files``: only these, see :func:`collect_numbers`); return the
    numbers."""
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    numbers = collect_numbers(results_dir, root=root, files=files)
    out_path = Path(out_path)
    index_path = Path(index_path) if index_path is not None else out_path.with_suffix(".json")
    write_text(out_path, numbers_tex(numbers))
    write_json(index_path, numbers_index(numbers, root=root))
    return numbers


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def tex_escape(text):
    return "".join(_TEX_SPECIAL.get(c, c) for c in str(text))


class MacroLookup:
    """Macro names by (results file, key path), for tables that must cite numbers by macro."""

    def __init__(self, numbers):
        self._by = {(n.file, n.path): n for n in numbers}

    def get(self, file, *path):
        """``\\Macro`` for the value at ``path`` in ``file``, or None if there is none."""
        n = self._by.get((file, tuple(path)))
        return None if n is None else "\\" + n.macro

    def cell(self, file, *path, missing="{--}"):
        m = self.get(file, *path)
        return m if m is not None else missing


def _tabular(colspec, header, body, sources, note, pre=()):
    """A booktabs tabular with a comment header naming its sources; ``pre``: lines before it
    (local settings such as ``\\setlength{\\tabcolsep}{...}``: the includer groups them)."""
    lines = ["% Generated by pfslogg.paper -- do not edit. Values are macros of numbers.tex.",
             *[f"% {line}" for line in note],
             "% Sources:", *[f"%   {s}" for s in sources], *pre,
             f"\\begin{{tabular}}{{{colspec}}}", r"\toprule", *header, r"\midrule", *body,
             r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def _bin_key(b, where):
    if not isinstance(b, dict) or not (_is_number(b.get("lo")) and _is_number(b.get("hi"))):
        raise InputError(f"{where}: every snr_bins entry needs numeric 'lo' and 'hi'")
    return (round(float(b["lo"]), 6), round(float(b["hi"]), 6))


def _table_sources(results_dir, files, root, default):
    """[(file relative to root, parsed results document)] of the table's sources: ``files`` when
    given, else the ``default`` paths under ``results_dir`` (missing ones skipped)."""
    if files is None:
        files = [p for p in default if p.is_file()]
    else:
        files = _selected_files(results_dir, files)
    out = []
    for path in files:
        if path.name.startswith("."):
            continue
        doc = load_results(path)
        if doc is not None:
            out.append((_rel_posix(path, root), doc["metrics"]))
    return out


def _is_estimator(m):
    return "estimator" in m


def _is_fisher(m):
    return (not _is_estimator(m) and isinstance(m.get("snr_bins"), list)
            and all(isinstance(b, dict) and "r2max_median" in b for b in m["snr_bins"])
            and isinstance(m.get("overall"), dict))


def leaderboard_tex(results_dir, numbers=None, root=None, estimators_dir="track_f",
                    ceiling="track_c/fisher.json", files=None):
    """The text of the leaderboard table (see :func:`write_leaderboard_tex`).

    ``files``: the results files to tabulate (estimator results: metrics with ``estimator``; the
    Fisher ceiling: metrics with ``snr_bins`` of ``r2max_median``); default: every estimator
    results file in ``results_dir/estimators_dir`` and ``results_dir/ceiling``.
    """
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    est_dir = results_dir / estimators_dir
    default = (sorted(est_dir.glob("*.json")) if est_dir.is_dir() else []) + [results_dir / ceiling]
    sources = _table_sources(results_dir, files, root, default)
    if numbers is None:
        numbers = collect_numbers(results_dir, root=root,
                                  files=None if files is None else [root / f for f, _ in sources])
    macros = MacroLookup(numbers)

    rows = []
    for file, m in sources:
        if not _is_estimator(m):
            continue
        if not isinstance(m.get("overall"), dict) or not isinstance(m.get("snr_bins"), list):
            raise InputError(f"{file}: estimator results need 'overall' and 'snr_bins'")
        rows.append((file, m))
    if not rows:
        raise InputError(f"{est_dir if files is None else 'the given files'}: no estimator results "
                         "(JSON files whose metrics have 'estimator') to make the leaderboard from")
    ceilings = [(f, m) for f, m in sources if _is_fisher(m)]

    def overall_r2(row):
        r2 = row[1]["overall"].get("r2")
        return -math.inf if not _is_number(r2) or math.isnan(r2) else r2

    rows.sort(key=lambda r: (-overall_r2(r), str(r[1]["estimator"])))

    # SNR bins: the union over estimators, by edges; each bin named by the first file that has it.
    bins = {}
    for file, m in rows:
        for i, b in enumerate(m["snr_bins"]):
            bins.setdefault(_bin_key(b, file), (file, i))
    bin_keys = sorted(bins)

    header_bins = []
    for bk in bin_keys:
        file, i = bins[bk]
        lo, hi = macros.get(file, "snr_bins", i, "lo"), macros.get(file, "snr_bins", i, "hi")
        header_bins.append(f"{{\\num{{{lo}}}--\\num{{{hi}}}}}")
    nb = len(bin_keys)
    header = [f" & \\multicolumn{{{nb}}}{{c}}{{$R^2$ per bin of SNR}} & \\\\",
              f"\\cmidrule(lr){{2-{nb + 1}}}",
              "Estimator & " + " & ".join(header_bins) + " & {All} \\\\"]

    body, source_files = [], [f for f, _ in rows]
    for file, m in rows:
        index = {_bin_key(b, file): i for i, b in enumerate(m["snr_bins"])}
        r2, ci = [], []
        for bk in bin_keys:
            i = index.get(bk)
            r2.append(macros.cell(file, "snr_bins", i, "r2") if i is not None else "{--}")
            ci.append(_ci_cell(macros, file, "snr_bins", i, "r2_ci") if i is not None else "{}")
        r2.append(macros.cell(file, "overall", "r2"))
        ci.append(_ci_cell(macros, file, "overall", "r2_ci"))
        label = tex_escape(m.get("label") or m["estimator"])
        body.append(f"{label} & " + " & ".join(r2) + " \\\\")
        body.append(" & " + " & ".join(ci) + " \\\\[2pt]")

    for file, m in ceilings:
        index = {_bin_key(b, file): i for i, b in enumerate(m.get("snr_bins", []))}
        cells = [macros.cell(file, "snr_bins", index[bk], "r2max_median") if bk in index
                 else "{--}" for bk in bin_keys]
        cells.append(macros.cell(file, "overall", "r2max_median"))
        body.append(r"\midrule")
        body.append("Fisher ceiling & " + " & ".join(cells) + " \\\\")
        source_files.append(file)

    note = ["R^2 = 1 - MSE / Var_prior(log g) in every bin (one denominator for all);",
            "SNR = median(flux / (noise_level * error)) of each spectrum;",
            "second row of each estimator: bootstrap confidence interval of R^2;",
            "last row: the median Fisher ceiling R^2_max of the spectra of each bin."]
    colspec = "@{}l" + " S[table-format=-1.3]" * (nb + 1) + "@{}"
    return _tabular(colspec, header, body, source_files, note,
                    pre=[r"\setlength{\tabcolsep}{4pt}"])


def _ci_cell(macros, file, *path):
    lo, hi = macros.get(file, *path, 0), macros.get(file, *path, 1)
    if lo is None or hi is None:
        return "{}"
    return f"{{\\scriptsize[\\num{{{lo}}}, \\num{{{hi}}}]}}"


def write_leaderboard_tex(results_dir, out_path, numbers=None, root=None, files=None):
    """Write the estimator x SNR-bin R^2 table (booktabs + siunitx ``tabular``, no float).

    Rows: the estimators (``files`` whose metrics have ``estimator``; default
    ``results/track_f/*.json``), best overall R^2 first, each with a second row holding its
    confidence intervals; then the Fisher ceiling (median R^2_max, ``results/track_c/fisher.json``)
    when present. Columns: the SNR bins, then all spectra. Every value is a macro of numbers.tex.
    The table is wide (an interval under each value): the includer fits it to the text width
    (``\\fittable`` of paper/preamble.tex) and sets ``\\caption``/``\\label``::

        \\begin{table}\\centering \\caption{...}\\label{tab:leaderboard}
        \\fittable{generated/tables/leaderboard}\\end{table}
    """
    text = leaderboard_tex(results_dir, numbers=numbers, root=root, files=files)
    write_text(out_path, text)
    return text


def ceiling_tex(results_dir, numbers=None, root=None, files=None, default="track_c/fisher.json"):
    """The text of the Fisher-ceiling table (see :func:`write_ceiling_tex`)."""
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    sources = [(f, m) for f, m in _table_sources(results_dir, files, root, [results_dir / default])
               if _is_fisher(m)]
    if len(sources) != 1:
        raise InputError(f"ceiling table: expected exactly one Fisher-ceiling results file "
                         f"(metrics with snr_bins of r2max_median), got {len(sources)}")
    file, m = sources[0]
    numbers = numbers if numbers is not None else collect_numbers(results_dir, root=root,
                                                                  files=[root / file])
    macros = MacroLookup(numbers)
    header = [r"{SNR bin} & {$N$} & {median SNR} & \multicolumn{3}{c}{$R^2_{\max}$ per spectrum}"
              r" & {$1-\langle\mathrm{CRLB}\rangle/\mathrm{Var}_\mathrm{prior}$} \\",
              r"\cmidrule(lr){4-6}",
              r" & & & {median} & {10\,th pct.} & {90\,th pct.} & \\"]

    def row(label, *path):
        cells = [macros.cell(file, *path, key) for key in
                 ("n", "snr_median", "r2max_median", "r2max_p10", "r2max_p90", "r2max_mean_crlb")]
        if path == ("overall",):
            cells[1] = "{}"
        return f"{label} & " + " & ".join(cells) + " \\\\"

    body = []
    for i, b in enumerate(m["snr_bins"]):
        _bin_key(b, file)
        lo, hi = macros.get(file, "snr_bins", i, "lo"), macros.get(file, "snr_bins", i, "hi")
        body.append(row(f"\\num{{{lo}}}--\\num{{{hi}}}", "snr_bins", i))
    body += [r"\midrule", row("All", "overall")]
    note = ["R^2_max = 1 - CRLB / Var_prior(log g) per test spectrum, clipped to [0, 1];",
            "CRLB: marginal Cramer-Rao bound on log g (Schur complement over the nuisances);",
            "last column: the ceiling of the bin's mean CRLB (no clipping per spectrum)."]
    colspec = ("@{}l S[table-format=4.0] S[table-format=2.1] S[table-format=1.3] "
               "S[table-format=1.3] S[table-format=1.3] S[table-format=1.3]@{}")
    return _tabular(colspec, header, body, [file], note)


def write_ceiling_tex(results_dir, out_path, numbers=None, root=None, files=None):
    """Write the Fisher-ceiling table: per SNR bin of the test set (and all spectra) the number
    of spectra, their median SNR, the median and 10th/90th percentiles of R^2_max per spectrum,
    and the ceiling of the mean CRLB. Values are macros of numbers.tex."""
    text = ceiling_tex(results_dir, numbers=numbers, root=root, files=files)
    write_text(out_path, text)
    return text


def calibration_tex(results_dir, numbers=None, root=None, files=None,
                    default="track_c/ceiling_calibration.json"):
    """The text of the ceiling-calibration table (see :func:`write_calibration_tex`)."""
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    sources = [(f, m) for f, m in _table_sources(results_dir, files, root, [results_dir / default])
               if isinstance(m.get("points"), list)]
    if len(sources) != 1:
        raise InputError(f"calibration table: expected exactly one calibration results file "
                         f"(metrics with 'points'), got {len(sources)}")
    file, m = sources[0]
    numbers = numbers if numbers is not None else collect_numbers(results_dir, root=root,
                                                                  files=[root / file])
    macros = MacroLookup(numbers)
    header = [r"{SNR} & \multicolumn{3}{c}{this work: $R^2_{\max}$} & {original study} \\",
              r"\cmidrule(lr){2-4}",
              r" & {median} & {10\,th pct.} & {90\,th pct.} & {median $R^2_{\max}$} \\"]
    body = []
    for i, pt in enumerate(m["points"]):
        if not isinstance(pt, dict):
            raise InputError(f"{file}: every entry of 'points' must be an object")
        cells = [macros.cell(file, "points", i, k) for k in
                 ("snr", "r2max_median", "r2max_p10", "r2max_p90", "original")]
        body.append(" & ".join(cells) + " \\\\")
    note = ["Median marginal Fisher ceiling of parameters drawn from the prior, at the SNR points",
            "of the original study's grid; last column: the original study's values (comparison)."]
    colspec = ("@{}S[table-format=2.1] S[table-format=1.3] S[table-format=1.3] "
               "S[table-format=1.3] S[table-format=1.4]@{}")
    return _tabular(colspec, header, body, [file], note)


def write_calibration_tex(results_dir, out_path, numbers=None, root=None, files=None):
    """Write the ceiling-calibration table: per SNR point, this work's median and 10th/90th
    percentile R^2_max, and the original study's median (quoted for comparison)."""
    text = calibration_tex(results_dir, numbers=numbers, root=root, files=files)
    write_text(out_path, text)
    return text


_SPLIT_LABELS = {"train": "Training", "val": "Validation", "test": "Test"}


def datasets_tex(results_dir, numbers=None, root=None, files=None):
    """The text of the data-set table (see :func:`write_datasets_tex`)."""
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    default = [results_dir / "data" / f"{s}.json" for s in _SPLIT_LABELS]
    sources = [(f, m) for f, m in _table_sources(results_dir, files, root, default)
               if isinstance(m.get("split"), str) and _is_number(m.get("n"))]
    if not sources:
        raise InputError("data-set table: no data-set summaries (metrics with 'split' and 'n')")
    order = list(_SPLIT_LABELS)
    sources.sort(key=lambda fm: (order.index(fm[1]["split"]) if fm[1]["split"] in order
                                 else len(order), fm[1]["split"]))
    numbers = numbers if numbers is not None else collect_numbers(
        results_dir, root=root, files=[root / f for f, _ in sources])
    macros = MacroLookup(numbers)
    header = [r"Data set & {$N$} & {magnitude (AB)} & \multicolumn{3}{c}{SNR} \\",
              r"\cmidrule(lr){4-6}",
              r" & & & {median} & {5\,th pct.} & {95\,th pct.} \\"]
    body = []
    for file, m in sources:
        label = _SPLIT_LABELS.get(m["split"], tex_escape(m["split"]))
        lo, hi = macros.get(file, "mag_range", 0), macros.get(file, "mag_range", 1)
        mag = f"{{\\num{{{lo}}}--\\num{{{hi}}}}}" if lo and hi else "{--}"
        cells = [macros.cell(file, "n"), mag] + [macros.cell(file, k) for k in
                                                 ("snr_median", "snr_p05", "snr_p95")]
        body.append(f"{label} & " + " & ".join(cells) + " \\\\")
    note = ["SNR = median over pixels of flux / sigma (noise level 1) of each spectrum;",
            "magnitudes drawn uniformly over the range given."]
    colspec = "@{}l S[table-format=6.0] c S[table-format=2.1] S[table-format=2.1] S[table-format=2.1]@{}"
    return _tabular(colspec, header, body, [f for f, _ in sources], note)


def write_datasets_tex(results_dir, out_path, numbers=None, root=None, files=None):
    """Write the data-set table: per split (training, validation, test) its size, magnitude
    range and the median and 5th/95th percentiles of its SNR. Values are macros of numbers.tex."""
    text = datasets_tex(results_dir, numbers=numbers, root=root, files=files)
    write_text(out_path, text)
    return text


# name -> writer(results_dir, out_path, files=None): later tracks add their own tables here.
TABLES = {"leaderboard": write_leaderboard_tex, "ceiling": write_ceiling_tex,
          "calibration": write_calibration_tex, "datasets": write_datasets_tex}


# --------------------------------------------------------------------------------------------
# Guard against hand-typed results
# --------------------------------------------------------------------------------------------

# Macro names that denote results (the first folder under results/ gives the prefix).
RESULT_MACRO_PREFIXES = ("Track", "Data")


@dataclass(frozen=True)
class Finding:
    line: int       # 1-based
    col: int        # 1-based
    text: str       # the offending token
    why: str
    context: str    # the source line

    def __str__(self):
        return f"{self.line}:{self.col}: {self.why}: {self.text!r} in: {self.context.strip()}"


def mask_comments(text):
    """``text`` with every TeX comment (unescaped ``%`` to end of line) blanked, same length."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "%":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
            continue
        i += 1
    return "".join(out)


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
    used = {m for m in _CMD_RE.findall(mask_comments(tex_text)) if pattern.match(m)}
    return sorted(used - defined_macros(numbers_tex) - defined_macros(tex_text))


def paper_sources(paper_dir):
    """The hand-written LaTeX: ``paper/*.tex`` and ``paper/sections/**/*.tex``, sorted."""
    paper_dir = Path(paper_dir)
    return sorted([*paper_dir.glob("*.tex"), *(paper_dir / "sections").rglob("*.tex")])


def check_paper(paper_dir, numbers_tex=None, facts_name="facts.tex"):
    """All guard problems of the hand-written LaTeX under ``paper_dir`` as readable lines.

    ``numbers_tex``: the text of numbers.tex for the undefined-macro check (None skips it).
    """
    problems = []
    for path in paper_sources(paper_dir):
        text = path.read_text()
        for f in find_hand_typed_numbers(text, facts=path.name == facts_name):
            problems.append(f"{path}:{f}")
        if numbers_tex is not None:
            defined = defined_macros(numbers_tex)
            for name in find_undefined_macros(text, numbers_tex):
                near = difflib.get_close_matches(name, defined, n=1)
                hint = f" (did you mean \\{near[0]}?)" if near else ""
                problems.append(f"{path}: \\{name} is not defined in numbers.tex{hint}")
    return problems


# --------------------------------------------------------------------------------------------
# Documents: what each one reads
# --------------------------------------------------------------------------------------------

# Commands whose argument names a file the document reads, and the extension they default to.
_INPUT_CMDS = {"input": ".tex", "include": ".tex", "fittable": ".tex", "includegraphics": ".pdf",
               "bibliography": ".bib"}
_INPUT_RE = re.compile(r"\\(%s)\*?\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}" % "|".join(_INPUT_CMDS))


def document_sources(paper_dir, doc):
    """Every file the document ``<paper_dir>/<doc>.tex`` reads, as workflow paths, in order of
    first use: its hand-written LaTeX (followed through ``\\input``/``\\include``), the generated
    numbers and tables (``generated/...``, also via ``\\fittable``), the figures
    (``\\includegraphics{figures/x.pdf}``: figures are named by their workflow path) and the
    bibliography. ``\\jobname`` stands for ``doc``. Files that do not exist yet (generated ones)
    are listed all the same; a hand-written file that is missing is listed too, so that the
    build says which one. Paths are ``<paper_dir>/...`` except figures (workflow root)."""
    paper_dir = Path(paper_dir)
    base = paper_dir.as_posix().rstrip("/")
    out, seen_tex = [], set()

    def add(path):
        if path not in out:
            out.append(path)

    def visit(rel):
        path = f"{base}/{rel}"
        add(path)
        if path in seen_tex or rel.startswith("generated/"):
            return
        seen_tex.add(path)
        file = paper_dir / rel
        if not file.is_file():
            return
        text = mask_comments(file.read_text())
        for m in _INPUT_RE.finditer(text):
            cmd = m.group(1)
            for name in m.group(2).split(",") if cmd == "bibliography" else [m.group(2)]:
                name = name.strip().replace("\\jobname{}", doc).replace("\\jobname", doc)
                if not name or "#" in name or "\\" in name:
                    continue  # a macro's parameter (\\input{#1}) or a name made by macros
                if not Path(name).suffix:
                    name += _INPUT_CMDS[cmd]
                if cmd == "includegraphics":
                    add(name)
                elif cmd == "bibliography":
                    add(f"{base}/{name}")
                else:
                    visit(name)

    visit(f"{doc}.tex")
    return out


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
        for name in find_undefined_macros(text, numbers_tex):
            near = difflib.get_close_matches(name, defined, n=1)
            hint = f" (did you mean \\{near[0]}?)" if near else ""
            problems.append(f"{file}: \\{name} is not defined in the numbers of {doc}{hint}")
    return problems


# --------------------------------------------------------------------------------------------
# The grid, described for the paper
# --------------------------------------------------------------------------------------------

def describe_grid(grid_path):
    """Numbers that describe an instrument grid file (``pfslogg.gridio`` layout) for the paper:
    resolving powers, pixels, wavelength range and dispersion, the parameter axes (first and
    last node, step, count), the number of nodes, the embedded model's settings (``model``
    attribute of synth grids) and the size of its line list."""
    import h5py
    import numpy as np

    from . import PARAMS

    try:
        with h5py.File(grid_path, "r") as h5:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()}
            wave = h5["wave"][:]
            axes = {p: h5["axes"][p][:] for p in PARAMS}
            mask = h5["mask"][:]
    except (OSError, KeyError) as exc:
        raise InputError(f"{grid_path}: not a readable grid file ({exc})") from None

    def num(x):
        x = float(x)
        return int(x) if x.is_integer() else round(x, 6)

    metrics = {"source": str(attrs.get("source", "unknown")), "kind": str(attrs.get("kind", "")),
               "resolution": num(attrs["resolution"]) if "resolution" in attrs else None,
               "raw_resolution": num(attrs["raw_resolution"]) if "raw_resolution" in attrs else None,
               "n_pixels": int(len(wave)), "wave_range": [num(wave[0]), num(wave[-1])],
               "dispersion": float(np.mean(np.diff(wave))) if len(wave) > 1 else None,
               "n_nodes": int(np.count_nonzero(mask)), "axes": {}}
    for p in PARAMS:
        a = np.asarray(axes[p], float)
        metrics["axes"][p] = {"min": num(a[0]), "max": num(a[-1]),
                              "step": num(np.median(np.diff(a))) if len(a) > 1 else 0, "n": int(len(a))}
    if attrs.get("model"):
        try:
            metrics["model"] = json.loads(attrs["model"])
        except ValueError:
            raise InputError(f"{grid_path}: attribute 'model' is not JSON") from None
    if metrics["source"] == "synth":
        from .data.synth import line_table

        named = line_table()["named"]
        metrics["lines"] = {"named": int(named.sum()), "pseudo": int((~named).sum())}
    return {k: v for k, v in metrics.items() if v is not None}


def write_grid_description(grid_path, out_path, rule="describe_grid", command=None):
    """Write :func:`describe_grid` of ``grid_path`` as a results file (with provenance)."""
    from .atomic import write_json as _write_json
    from .provenance import make_block, now

    started = now()
    metrics = describe_grid(grid_path)
    _write_json(out_path, {"metrics": metrics,
                           "provenance": make_block(rule, [str(grid_path)], None, started=started,
                                                    command=command)})
    return metrics


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def main(argv=None):
    """``python -m pfslogg.paper {numbers,table,guard,describe-grid} ...``; returns the exit status."""
    import shlex

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m pfslogg.paper", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("numbers", help="write numbers.tex and numbers.json from results/")
    p.add_argument("results", help="results folder, e.g. results")
    p.add_argument("out", help="numbers.tex to write, e.g. paper/generated/main/numbers.tex")
    p.add_argument("--index", help="index JSON (default: OUT with .json)")
    p.add_argument("--files", nargs="*", help="only these results files (default: all under RESULTS)")
    p = sub.add_parser("table", help="write one LaTeX table")
    p.add_argument("name", choices=sorted(TABLES))
    p.add_argument("results")
    p.add_argument("out")
    p.add_argument("--files", nargs="*", help="the results files to tabulate (default: the usual ones)")
    p = sub.add_parser("guard", help="check the hand-written LaTeX for hand-typed results")
    p.add_argument("paper", nargs="?", default="paper")
    p.add_argument("--numbers", help="numbers.tex for the undefined-macro check")
    p.add_argument("--doc", help="check only this document (main, track_f...) and what it reads")
    p = sub.add_parser("describe-grid", help="write the numbers describing a grid file (results JSON)")
    p.add_argument("--grid", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rule", default="describe_grid", help="Snakemake rule name (provenance)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "numbers":
            numbers = write_numbers_tex(args.results, args.out, index_path=args.index, files=args.files)
            print(f"{args.out}: {len(numbers)} macros")
        elif args.cmd == "table":
            TABLES[args.name](args.results, args.out, files=args.files)
            print(f"{args.out}: table {args.name}")
        elif args.cmd == "describe-grid":
            write_grid_description(args.grid, args.out, rule=args.rule,
                                   command="python -m pfslogg.paper " + shlex.join(argv))
            print(f"{args.out}: grid {args.grid} described")
        else:
            numbers = Path(args.numbers).read_text() if args.numbers else None
            if args.doc:
                problems = check_document(args.paper, args.doc, numbers or "")
            else:
                problems = check_paper(args.paper, numbers)
            for line in problems:
                print(line)
            if problems:
                print(f"{len(problems)} problem(s)", file=sys.stderr)
                return 1
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
