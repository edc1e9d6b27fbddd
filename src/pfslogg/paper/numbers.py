"""Numbers: every numeric leaf of a results file's ``metrics`` becomes a LaTeX macro
(DESIGN.md section 5).

:func:`collect_numbers` walks ``results/**/*.json`` (files ``{"kind": ..., "metrics": ...,
"details": ..., "provenance": ...}``; JSON files without ``metrics`` are not results files and are
skipped, as are hidden files such as the temporary files of :mod:`pfslogg.atomic`) -- or exactly
the results files it is given, as the workflow does per document -- and turns every numeric leaf
of ``metrics`` into a :class:`Number`, and every numeric leaf of ``provenance.params`` (the rule's
parameters: prior ranges, noise settings, bootstrap size...) into one named with ``Cfg``. The
top-level ``details`` (what a fit chose, timings, per-seed breakdowns) never becomes a macro.
:func:`write_numbers_tex` writes them as ``paper/generated/<doc>/numbers.tex``, one
``\\newcommand{\\Name}{value}`` each, preceded by ``% <json path> :: <key path> = <raw value>``,
plus a machine-readable index ``numbers.json`` (macro -> file, section, key, raw and formatted
value, sha256 of the results file) that :mod:`pfslogg.audit` reads. Output order is
deterministic: files sorted by path, keys in the order of the JSON document. The output holds no
timestamp, so identical results give byte-identical files.

Macro names (LaTeX control words are letters only)::

    \\ <path words> [Cfg] <key words>

* path words: the results file's path relative to ``results/`` without ``.json``, split on
  ``/``, ``_``, ``-`` and other non-alphanumerics; each word is capitalised:
  ``track_f/ridge.json`` -> ``TrackFRidge``, ``data/test.json`` -> ``DataTest``,
  ``cells/ridge/nl0p1_n2000_s0.json`` -> ``CellsRidgeNlzeroponeNtwothousandSzero``;
* ``Cfg`` for a number of ``provenance.params`` (nothing for ``metrics``);
* key words: each dict key split the same way and capitalised (``snr_median`` -> ``SnrMedian``);
  digits inside a word are spelled in lower case (``r2`` -> ``Rtwo``, ``r2max`` -> ``Rtwomax``,
  ``p10`` -> ``Pten``, ``nl0p1`` -> ``Nlzeropone``, ``n20000`` -> ``Ntwentythousand``; leading
  zeros are spelled, ``p05`` -> ``Pzerofive``);
* a list of exactly two numbers (a confidence interval or range) gives ``Lo`` and ``Hi``;
* any other list element is named by its 1-based position, spelled and capitalised
  (``snr_bins[0]`` -> ``SnrBinsOne``, ``[11]`` -> ``Twelve``, ``[20]`` -> ``Twentyone``).

Examples: ``results/track_f/ridge.json`` ``overall.r2`` -> ``\\TrackFRidgeOverallRtwo``;
``snr_bins[2].r2_ci[0]`` -> ``\\TrackFRidgeSnrBinsThreeRtwoCiLo``; ``results/track_c/fisher.json``
``overall.r2max_p10`` -> ``\\TrackCFisherOverallRtwomaxPten``; ``results/data/train.json``
``provenance.params.noise.throughput`` -> ``\\DataTrainCfgNoiseThroughput``;
``results/track_f/benchmark.json`` ``cells.ridge.nl0p1.n20000.r2`` ->
``\\TrackFBenchmarkCellsRidgeNlzeroponeNtwentythousandRtwo``.
Spelling can map two different keys to one name (``r2`` and ``r_2``); :func:`collect_numbers`
raises :class:`~pfslogg.errors.InputError` naming both sources instead of writing either.

Precision (:data:`PRECISION_RULES`, first match on the nearest dict key with a letter in it,
lower-cased): R^2-like (``r2*``, ``*_r2*``, ``rho``) and efficiencies (``eta*``, ``*_eta*``) 3 decimals; errors (``mae``, ``rmse``,
``mse``, ``bias``...) and ``slope`` 3 decimals; SNR (``snr*``, bin edges ``lo``/``hi``) 1 decimal;
``var_prior`` 3 decimals; fractions 3 decimals; percentages 1 decimal; magnitudes up to 2
decimals; counts (``n``, ``n_*``, ``*_count``...) integer; hyper-parameters, settings and values
quoted from the original study (``original*``, ``alpha``, ``lr``, ``noise_level(s)``,
``confidence``...) as given (shortest round-trip form), and so are the rule parameters (``Cfg``)
and everything below a ``model`` or ``axes`` key (settings, not measurements). A JSON integer that
no rule claims is written as an integer, any other float with 3 significant digits. Values are
plain, siunitx-parsable strings (``20000``, ``-0.123``, ``1.5e-5``): write ``\\num{\\Macro}``
where digit grouping or a proper minus sign matters; NaN is written ``{--}``. Strings, booleans
and nulls are not numbers and are skipped -- except the words of :data:`WORD_KEYS` (``verdict``:
"gain", "loss" or "no difference", chosen from a difference's interval by
:func:`pfslogg.evaluation.verdict`), each a macro of its text, written without ``\\num`` (so that
the text qualifies a result only through what the results say).

:class:`MacroLookup` finds the macro of a value by (file, key path): the tables of
:mod:`pfslogg.paper.tables` cite every value through it.
"""

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_json, write_text
from ..errors import InputError
from ..provenance import sha256_file

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
    PrecisionRule("efficiency", r"(.*_)?eta(_.*)?", _fixed(3)),      # R^2 over R^2: eta_bayes, eta_crlb_min...
    PrecisionRule("percentage", r"(.*_)?(pct|percent|improvement)(_.*)?", _fixed(1)),   # before 'error': wmae_improvement
    PrecisionRule("error", r"(.*_)?(mae|rmse|mse|wmae|bias|mad|nmad|std|sigma|crlb)(_.*)?", _fixed(3)),
    PrecisionRule("slope", r"(.*_)?slope(_.*)?", _fixed(3)),
    PrecisionRule("SNR", r"(.*_)?snr(_.*)?|lo|hi", _fixed(1)),
    PrecisionRule("prior variance", r"var_prior|var(_.*)?", _fixed(3)),
    PrecisionRule("fraction", r"(.*_)?(frac|fraction|retention|accuracy)(_.*)?", _fixed(3)),
    PrecisionRule("magnitude", r"(.*_)?mag(_.*)?", _trimmed(2)),
    PrecisionRule("hyper-parameter", r"alpha|alphas|lambda|l2|lr|.*_lr|learning_rate|"
                                     r"weight_decay|dropout|(.*_)?noise_levels?|confidence|"
                                     r"scale|s|.*_scale|tol|strength|strengths",
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
# Dict keys whose string value (letters and spaces) is a word the results choose: a macro of its text.
WORD_KEYS = ("verdict",)
WORD_RULE = "word chosen from the results"
_WORD = re.compile(r"[A-Za-z]+( [A-Za-z]+)*")
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
    raw: object       # the value in the JSON (int or float; str for a word of WORD_KEYS)
    formatted: str    # what the macro expands to
    rule: str         # name of the precision rule used
    section: str = "metrics"   # where ``path`` starts: 'metrics' or 'provenance.params'

    def tex(self):
        return (f"% {self.file} :: {self.key} = {_raw_repr(self.raw)}\n"
                f"\\newcommand{{\\{self.macro}}}{{{self.formatted}}}\n")


def _raw_repr(x):
    return repr(x) if isinstance(x, float) else str(x)


def is_number(x):
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
        pair = len(node) == 2 and all(is_number(v) for v in node)
        for i, v in enumerate(node):
            word = ("Lo", "Hi")[i] if pair else index_word(i)
            yield from _walk(v, path + (i,), words + word, nearest_key, as_given)
    elif is_number(node) or (isinstance(node, str) and nearest_key in WORD_KEYS):
        yield path, words, nearest_key, node, as_given
    # other strings, booleans, None: not numbers


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
    """The parsed results file (``kind``, ``metrics``, ``provenance``, maybe ``details``), or None
    when the JSON is not a results file (no 'metrics': a figure's sidecar, a configuration)."""
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


def rel_posix(path, root):
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


PARAMS_SECTION = "provenance.params"
PARAMS_WORD = "Cfg"


def selected_files(results_dir, files):
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
    and printed as given. Only ``metrics`` and ``provenance.params`` are walked, never the
    top-level ``details``. Raises InputError on unreadable files or colliding macro names.
    """
    results_dir = Path(results_dir)
    if files is not None and not list(files):
        return []  # a document that prints no result yet
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: results folder not found")
    root = Path(root) if root is not None else results_dir.resolve().parent
    paths = results_files(results_dir) if files is None else selected_files(results_dir, files)
    numbers, seen = [], {}
    for path in paths:
        doc = load_results(path)
        if doc is None:
            continue
        rel = path.relative_to(results_dir).with_suffix("")
        prefix = "".join(camel_words(part) for part in rel.parts)
        if not prefix or not prefix[0].isalpha():
            raise InputError(f"{path}: its path gives no letters to start a macro name with")
        file = rel_posix(path, root)
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
            if isinstance(value, str):   # a word of WORD_KEYS
                if not _WORD.fullmatch(value):
                    raise InputError(f"{file} :: {key}: expected words of letters and spaces, got {value!r}")
                formatted, rule = value, WORD_RULE
            else:
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


class MacroLookup:
    """Macro names by (results file, key path), for tables that must cite numbers by macro."""

    def __init__(self, numbers):
        # a key path can be both a metric and a rule parameter (``seed``: the seed's index in the
        # metrics, the derived seed in provenance.params); the metric wins, the parameter is the fallback
        ordered = sorted(numbers, key=lambda n: n.section != PARAMS_SECTION)
        self._by = {(n.file, n.path): n for n in ordered}

    def get(self, file, *path):
        """``\\Macro`` for the value at ``path`` in ``file``, or None if there is none."""
        n = self._by.get((file, tuple(path)))
        return None if n is None else "\\" + n.macro

    def cell(self, file, *path, missing="{--}"):
        m = self.get(file, *path)
        return m if m is not None else missing

