"""What every figure shares: the style and palette, the registry, reading results JSONs and
writing a figure with reproducible bytes."""

import functools
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text  # noqa: E402
import matplotlib.ticker  # noqa: E402

from ..atomic import atomic_path  # noqa: E402
from ..binning import SYMBOLS, typeset_symbols  # noqa: E402
from ..errors import InputError  # noqa: E402

STYLE = {"font.size": 9, "axes.labelsize": 9, "axes.titlesize": 9, "legend.fontsize": 7.5,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "lines.linewidth": 1.4, "savefig.bbox": "tight",
         "pdf.fonttype": 42, "svg.hashsalt": "pfslogg", "hatch.linewidth": 0.6}
# Okabe-Ito: distinguishable with every common colour-vision deficiency.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
# One colour per model in a figure that also draws the Bayes ceiling in black: the palette without its black,
# then more hues, so that an eighth model is neither black nor the first's colour again.
MODEL_COLORS = [c for c in COLORS if c != "#000000"] + ["#8C564B", "#7F7F7F", "#BCBD22", "#17BECF"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
SNR_LABEL = r"per-pixel SNR $=\mathrm{median}(f/\sigma)$"
R2_LABEL = r"$R^2 = 1-\mathrm{MSE}/\mathrm{Var}_\mathrm{prior}(\log g)$"
VAL_R2_LABEL = r"validation $R^2$"
NOISE_LABEL = r"noise level $k$ (noise $= k\,\sigma_\mathrm{PFS}$)"
SIZE_LABEL = "training-set size (spectra)"
# The text width of paper/preamble.tex (A4, 2.5 cm margins: 16 cm): a figure this wide, included at
# \linewidth, prints its fonts at their nominal size.
TEXT_WIDTH_IN = 16.0 / 2.54

# Fixed metadata so that the same figure gives the same bytes (no creation date, no random ids).
_REPRODUCIBLE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {"Software": None}}

FIGURES = {}   # name -> function(inputs: list[path], out: path, params: dict): draws and saves
_DRAW = {}     # name -> function(inputs, params) -> Figure


def figure(name):
    """Register ``draw(inputs, params) -> Figure`` as figure ``name`` of FIGURES."""
    def register(draw):
        @functools.wraps(draw)
        def plot(inputs, out, params):
            with plt.rc_context(STYLE):
                save(render(name, inputs, params), out)

        _DRAW[name] = draw
        FIGURES[name] = plot
        return draw
    return register


def render(name, inputs, params=None):
    """Draw figure ``name`` and return it unsaved (the caller closes it). A results file that lacks
    what the figure reads ends in InputError naming the inputs."""
    inputs = [str(p) for p in inputs]
    before = set(plt.get_fignums())
    try:
        with plt.rc_context(STYLE):
            return _DRAW[name](inputs, params or {})
    except (KeyError, IndexError, TypeError) as e:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        raise InputError(f"{', '.join(inputs)}: malformed results for figure {name!r} "
                         f"({type(e).__name__}: {e})") from None


def load_results(path, kind=None):
    """The whole results document (kind, metrics, details) of ``path``; ``kind``: the kind (or a
    collection of kinds) it must be. Unreadable or of another kind: one-line InputError naming it."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read results JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict):
        raise InputError(f"{path}: not a results JSON (expected an object with 'kind' and 'metrics')")
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and doc.get("kind") not in kinds:
        raise InputError(f"{path}: results of kind {doc.get('kind')!r}, expected "
                         + " or ".join(repr(k) for k in kinds))
    doc.setdefault("details", {})
    return doc


def confidence(params, sources):
    """The confidence level of the intervals drawn: ``params["confidence"]``, which must match the
    level the results were computed at (``sources``: (path, metrics) pairs that record one)."""
    recorded = {(p, float(m["confidence"])) for p, m in sources if m.get("confidence") is not None}
    level = params.get("confidence")
    if level is None:
        if len({c for _, c in recorded}) > 1:
            raise InputError(f"{', '.join(sorted(p for p, _ in recorded))}: intervals at different "
                             "confidence levels")
        return next(iter(recorded))[1] if recorded else 0.95
    for p, c in sorted(recorded):
        if abs(c - float(level)) > 1e-9:
            raise InputError(f"{p}: intervals computed at confidence {c:g}, the figure asks for {level:g}")
    return float(level)


def percent(level):
    """0.95 -> '95 %'."""
    return f"{100 * level:.3g} %"


def symbols(text):
    """Labels as the results name them ("MoE of Ridge (3 [M/H] x 3 T_eff bins)") with the parameter's
    symbol and the product's sign typeset (``binning.SYMBOLS``, which the tables use too): text that
    names a symbol (T_eff, beta-NLL; the product's ' x ' only beside one), not text that is already
    mathtext."""
    named = any(k in text for k in SYMBOLS if k == k.strip())
    return typeset_symbols(text) if named and "$" not in text else text


def _typeset(fig):
    """:func:`symbols` on every text of ``fig``: titles, legends, annotations and fixed tick labels."""
    for t in fig.findobj(matplotlib.text.Text):
        t.set_text(symbols(t.get_text()))
    for ax in fig.axes:   # tick labels given as strings live in their formatter, drawn anew at save
        for axis in (ax.xaxis, ax.yaxis):
            for f in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(f, matplotlib.ticker.FixedFormatter):
                    f.seq = [symbols(str(v)) for v in f.seq]
                elif isinstance(f, matplotlib.ticker.FuncFormatter):
                    f.func = functools.partial(_typeset_tick, f.func)


def _typeset_tick(func, x, pos=None):
    return symbols(str(func(x, pos)))


def save(fig, out):
    """Write ``fig`` to ``out`` (format from the suffix) atomically, with bytes that depend on the
    figure only, and close it. Parameter names in its texts are typeset first (:func:`symbols`)."""
    fmt = Path(out).suffix.lstrip(".").lower()
    _typeset(fig)
    try:
        with atomic_path(out) as tmp, plt.rc_context({"svg.hashsalt": "pfslogg"}):
            fig.savefig(tmp, format=fmt, metadata=_REPRODUCIBLE.get(fmt))
    finally:
        plt.close(fig)


def log_ticks(axis, values, fmt="{:g}"):
    """Major ticks at ``values`` labelled with ``fmt``, no minor labels (log and symlog axes)."""
    axis.set_ticks(list(values))
    axis.set_ticklabels([fmt.format(v) for v in values])
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
