"""Tables: one small builder per table, each reading exactly the results files it is given (the
rule's inputs) and referring to values only through the macros of numbers.tex, so that a table and
the text cannot disagree.

A table recognises its files by their top-level ``kind`` (``dataset``, ``bayes``, ``fisher``,
``calibration``, ``estimator``, ``experiment``, ``crlb_validation``, ``snr_sweep``,
``efficiency``), never by which keys they have; a file of a kind
the table does not read, or the wrong number of files of a kind, is an
:class:`~pfslogg.errors.InputError` naming the table. :data:`TABLES` maps each table's name to its
builder; :func:`write_table` writes one by name:

* ``datasets``: sizes, magnitudes and SNR of the data sets (``dataset`` files);
* ``ceiling``: the Fisher ceiling per SNR bin (one ``fisher`` file);
* ``calibration``: the ceiling at the original study's SNR points beside its values (one
  ``calibration`` file);
* ``r2_by_snr``: R^2 per estimator and SNR bin with confidence intervals (one ``estimator``
  cell per estimator), plus the Bayes ceiling (``bayes`` files, optional) with its intervals and
  the Fisher ceiling (``fisher`` files, optional);
* ``leaderboard``: R^2 of every estimator and training size at every noise level, with the
  interval over seeds (one ``experiment`` aggregate);
* ``errors``: R^2, RMSE, MAE, bias and slope of every estimator at the aggregate's
  ``default_noise_level`` and largest size (one ``experiment`` aggregate);
* ``crlb_validation``: var(ML) / CRLB with its interval and the ML bias per maximum-likelihood
  check, and the jump of the bound across grid nodes (one ``crlb_validation`` file);
* ``snr_sweep``: per magnitude of the sweep the median SNR, R^2_max (3D, 4D), the mean-CRLB R^2,
  the Bayes ceiling with its interval, sigma_min and the Schur decay (one ``snr_sweep`` file);
* ``efficiency_by_snr``: R^2_model / R^2_Bayes per estimator and SNR bin, with R^2_Bayes (one
  ``efficiency`` file);
* ``scaling``: R^2 of every estimator at each training size, the fitted power law (R^2_inf, b),
  its predictions at the original study's sizes (extrapolations marked) and the size reaching
  each target (one ``experiment`` aggregate with its ``power_law``, pfslogg.scaling);
* ``ablations``: R^2 of each variant with its interval and its paired difference to its
  baseline (one ``experiment`` aggregate with ``comparisons``).

Each writes a booktabs + siunitx ``tabular`` (no float): the includer sets ``\\caption`` and
``\\label`` and fits wide tables to the text width (``\\fittable`` of paper/preamble.tex)::

    \\begin{table}\\centering \\caption{...}\\label{tab:r2_by_snr}
    \\fittable{generated/tables/r2_by_snr}\\end{table}
"""

import math
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text
from ..errors import InputError
from .numbers import (MacroLookup, collect_numbers, is_number, load_results, rel_posix,
                      selected_files)

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def tex_escape(text):
    return "".join(_TEX_SPECIAL.get(c, c) for c in str(text))


@dataclass(frozen=True)
class Source:
    """One results file a table reads."""

    file: str       # posix path relative to the workflow root (as in numbers.tex)
    kind: str       # the file's top-level "kind"
    metrics: dict


def table_sources(results_dir, files, root):
    """The :class:`Source` of each of ``files`` (see :func:`~pfslogg.paper.numbers.collect_numbers`
    for how paths are given), sorted by path; InputError for a file that is not a results file
    or has no ``kind``."""
    out = []
    for path in selected_files(Path(results_dir), files):
        doc = load_results(path)
        file = rel_posix(path, root)
        if doc is None:
            raise InputError(f"{file}: not a results file (no 'metrics')")
        kind = doc.get("kind")
        if not isinstance(kind, str) or not kind:
            raise InputError(f"{file}: results file without a 'kind' (see pfslogg.provenance."
                             "write_results); tables recognise their files by kind")
        out.append(Source(file, kind, doc["metrics"]))
    return out


def _count_text(lo, hi):
    if lo == hi:
        return "exactly one" if lo == 1 else f"exactly {lo}"
    return f"at least {lo}" if hi is None else f"{lo} to {hi}"


def _by_kind(table, sources, counts):
    """``{kind: [Source]}`` for the kinds ``counts`` names (kind -> (min, max or None));
    InputError naming ``table`` for a file of another kind or a count out of range."""
    groups = {kind: [] for kind in counts}
    for s in sources:
        if s.kind not in groups:
            raise InputError(f"table {table}: {s.file} is a results file of kind {s.kind!r}; the "
                             f"table reads kind(s) {', '.join(map(repr, counts))}")
        groups[s.kind].append(s)
    for kind, (lo, hi) in counts.items():
        n = len(groups[kind])
        if n < lo or (hi is not None and n > hi):
            raise InputError(f"table {table}: needs {_count_text(lo, hi)} results file(s) of kind "
                             f"{kind!r}, got {n}")
    return groups


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
    if not isinstance(b, dict) or not (is_number(b.get("lo")) and is_number(b.get("hi"))):
        raise InputError(f"{where}: every snr_bins entry needs numeric 'lo' and 'hi'")
    return (round(float(b["lo"]), 6), round(float(b["hi"]), 6))


def _ci_cell(macros, file, *path):
    """The interval at ``path`` (a two-number list) as a small '[lo, hi]' cell, or '{}'."""
    lo, hi = macros.get(file, *path, 0), macros.get(file, *path, 1)
    if lo is None or hi is None:
        return "{}"
    return f"{{\\scriptsize[\\num{{{lo}}}, \\num{{{hi}}}]}}"


def _range_cell(macros, file, *path):
    lo, hi = macros.get(file, *path, 0), macros.get(file, *path, 1)
    return f"{{\\num{{{lo}}}--\\num{{{hi}}}}}" if lo and hi else "{--}"


# --------------------------------------------------------------------------------------------
# Data sets and the ceiling (tracks A and C)
# --------------------------------------------------------------------------------------------

_SPLIT_LABELS = {"train": "Training", "val": "Validation", "test": "Test"}


def datasets_tex(sources, macros):
    """The data-set table: per split (training, validation, test; ``dataset`` files) its size,
    magnitude range and the median and 5th/95th percentiles of its SNR."""
    rows = _by_kind("datasets", sources, {"dataset": (1, None)})["dataset"]
    for s in rows:
        if not isinstance(s.metrics.get("split"), str):
            raise InputError(f"{s.file}: a data-set summary needs the name of its 'split'")
    order = list(_SPLIT_LABELS)
    rows.sort(key=lambda s: (order.index(s.metrics["split"]) if s.metrics["split"] in order
                             else len(order), s.metrics["split"]))
    header = [r"Data set & {$N$} & {magnitude (AB)} & \multicolumn{3}{c}{SNR} \\",
              r"\cmidrule(lr){4-6}",
              r" & & & {median} & {5\,th pct.} & {95\,th pct.} \\"]
    body = []
    for s in rows:
        label = _SPLIT_LABELS.get(s.metrics["split"], tex_escape(s.metrics["split"]))
        cells = [macros.cell(s.file, "n"), _range_cell(macros, s.file, "mag_range")]
        cells += [macros.cell(s.file, k) for k in ("snr_median", "snr_p05", "snr_p95")]
        body.append(f"{label} & " + " & ".join(cells) + " \\\\")
    note = ["SNR = median over pixels of flux / sigma (noise level 1) of each spectrum;",
            "magnitudes drawn uniformly over the range given."]
    colspec = "@{}l S[table-format=6.0] c S[table-format=2.1] S[table-format=2.1] S[table-format=2.1]@{}"
    return _tabular(colspec, header, body, [s.file for s in rows], note)


def ceiling_tex(sources, macros):
    """The Fisher-ceiling table (one ``fisher`` file): per SNR bin of the test set (and all
    spectra) the number of spectra, their median SNR, the median and 10th/90th percentiles of
    R^2_max per spectrum, and the ceiling of the mean CRLB."""
    (src,) = _by_kind("ceiling", sources, {"fisher": (1, 1)})["fisher"]
    file, m = src.file, src.metrics
    if not isinstance(m.get("snr_bins"), list):
        raise InputError(f"{file}: the Fisher ceiling needs its 'snr_bins'")
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


def calibration_tex(sources, macros):
    """The ceiling-calibration table (one ``calibration`` file): per SNR point, this work's
    median and 10th/90th percentile R^2_max, and the original study's median (for comparison)."""
    (src,) = _by_kind("calibration", sources, {"calibration": (1, 1)})["calibration"]
    file, m = src.file, src.metrics
    if not isinstance(m.get("points"), list):
        raise InputError(f"{file}: the ceiling calibration needs its 'points'")
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


# --------------------------------------------------------------------------------------------
# Estimators (track F)
# --------------------------------------------------------------------------------------------

def r2_by_snr_tex(sources, macros):
    """R^2 per estimator and SNR bin (booktabs + siunitx ``tabular``, no float).

    Rows: the estimators (``estimator`` cells, one per estimator), best overall R^2 first, each
    with a second row holding its confidence intervals; then the Bayes ceiling (R^2 of the
    posterior mean of each ``bayes`` file, with its intervals) and the Fisher ceiling (median
    R^2_max of each ``fisher`` file). Columns: the SNR bins (the union over the files, by edges), then
    all spectra. The table is wide: the includer fits it to the text width (``\\fittable``)."""
    groups = _by_kind("r2_by_snr", sources, {"estimator": (1, None), "bayes": (0, None), "fisher": (0, None)})
    rows, seen = [], {}
    for s in groups["estimator"]:
        m = s.metrics
        if not isinstance(m.get("overall"), dict) or not isinstance(m.get("snr_bins"), list):
            raise InputError(f"{s.file}: estimator results need 'overall' and 'snr_bins'")
        name = str(m.get("estimator"))
        if name in seen:
            raise InputError(f"table r2_by_snr: two cells of estimator {name!r} ({seen[name]}, "
                             f"{s.file}); give one cell per estimator")
        seen[name] = s.file
        rows.append(s)

    def overall_r2(s):
        r2 = s.metrics["overall"].get("r2")
        return -math.inf if not is_number(r2) or math.isnan(r2) else r2

    rows.sort(key=lambda s: (-overall_r2(s), str(s.metrics.get("estimator"))))

    # SNR bins: the union over estimators, by edges; each bin named by the first file that has it.
    bins = {}
    for s in rows:
        for i, b in enumerate(s.metrics["snr_bins"]):
            bins.setdefault(_bin_key(b, s.file), (s.file, i))
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

    def r2_rows(s, label):
        index = {_bin_key(b, s.file): i for i, b in enumerate(s.metrics.get("snr_bins", []))}
        r2, ci = [], []
        for bk in bin_keys:
            i = index.get(bk)
            r2.append(macros.cell(s.file, "snr_bins", i, "r2") if i is not None else "{--}")
            ci.append(_ci_cell(macros, s.file, "snr_bins", i, "r2_ci") if i is not None else "{}")
        r2.append(macros.cell(s.file, "overall", "r2"))
        ci.append(_ci_cell(macros, s.file, "overall", "r2_ci"))
        return [f"{label} & " + " & ".join(r2) + " \\\\", " & " + " & ".join(ci) + " \\\\[2pt]"]

    body = []
    for s in rows:
        body += r2_rows(s, tex_escape(s.metrics.get("label") or s.metrics.get("estimator")))
    for s in groups["bayes"]:
        body += [r"\midrule", *r2_rows(s, "Bayes ceiling")]

    for s in groups["fisher"]:
        index = {_bin_key(b, s.file): i for i, b in enumerate(s.metrics.get("snr_bins", []))}
        cells = [macros.cell(s.file, "snr_bins", index[bk], "r2max_median") if bk in index
                 else "{--}" for bk in bin_keys]
        cells.append(macros.cell(s.file, "overall", "r2max_median"))
        body.append(r"\midrule")
        body.append("Fisher ceiling & " + " & ".join(cells) + " \\\\")

    note = ["R^2 = 1 - MSE / Var_prior(log g) in every bin (one denominator for all);",
            "SNR = median(flux / (noise_level * error)) of each spectrum;",
            "second row of each estimator: bootstrap confidence interval of R^2;",
            "Bayes ceiling: R^2 of the posterior mean of log g (the least MSE of any estimator), with its interval;",
            "last row: the median Fisher ceiling R^2_max of the spectra of each bin."]
    colspec = "@{}l" + " S[table-format=-1.3]" * (nb + 1) + "@{}"
    files = [s.file for s in rows] + [s.file for s in groups["bayes"]] + [s.file for s in groups["fisher"]]
    return _tabular(colspec, header, body, files, note, pre=[r"\setlength{\tabcolsep}{4pt}"])


@dataclass(frozen=True)
class _Experiment:
    """An experiment aggregate as the tables read it."""

    file: str
    metrics: dict
    estimators: list    # [(name, label)] in configuration order
    noise_levels: list
    sizes: list
    cells: dict         # (estimator, noise level, size) -> key path of the cell in metrics

    def path(self, estimator, level, size):
        """Key path of the cell in ``metrics``, or None where the grid lacks it."""
        return self.cells.get((estimator, _level_key(level), int(size)))

    def cell(self, macros, estimator, level, size, *key):
        path = self.path(estimator, level, size)
        return macros.cell(self.file, *path, *key) if path else "{--}"


def _level_key(x):
    return round(float(x), 9)


def _items(node, where):
    if not isinstance(node, dict):
        raise InputError(f"{where}: must be an object")
    return node.items()


def _experiment(table, sources):
    """The one ``experiment`` aggregate of ``sources``, indexed (see :class:`_Experiment`)."""
    (src,) = _by_kind(table, sources, {"experiment": (1, 1)})["experiment"]
    file, m = src.file, src.metrics
    lists = {}
    for key in ("noise_levels", "sizes"):
        v = m.get(key)
        if not isinstance(v, list) or not v or not all(is_number(x) for x in v):
            raise InputError(f"{file}: an experiment aggregate needs a non-empty list {key!r}")
        lists[key] = v
    if not isinstance(m.get("estimators"), dict) or not isinstance(m.get("cells"), dict):
        raise InputError(f"{file}: an experiment aggregate needs 'estimators' and 'cells'")
    estimators = [(name, (e.get("label") if isinstance(e, dict) else None) or name)
                  for name, e in m["estimators"].items()]
    cells = {}
    for est, by_level in m["cells"].items():
        for level_key, by_size in _items(by_level, f"{file}: cells.{est}"):
            for size_key, cell in _items(by_size, f"{file}: cells.{est}.{level_key}"):
                where = f"{file}: cells.{est}.{level_key}.{size_key}"
                if not isinstance(cell, dict) or not (is_number(cell.get("noise_level"))
                                                      and is_number(cell.get("size"))):
                    raise InputError(f"{where}: a cell needs numeric 'noise_level' and 'size'")
                key = (est, _level_key(cell["noise_level"]), int(cell["size"]))
                cells[key] = ("cells", est, level_key, size_key)
    return _Experiment(file, m, estimators, lists["noise_levels"], lists["sizes"], cells)


def leaderboard_tex(sources, macros):
    """The track-F leaderboard (one ``experiment`` aggregate): rows estimator x training size,
    columns the noise levels; each cell the mean R^2 over seeds with, in a second row, its
    interval over seeds. Estimators in configuration order, sizes as listed."""
    ex = _experiment("leaderboard", sources)
    file, nl = ex.file, len(ex.noise_levels)
    levels = [f"{{\\num{{{macros.cell(file, 'noise_levels', j)}}}}}" for j in range(nl)]
    header = [f" & & \\multicolumn{{{nl}}}{{c}}{{$R^2$ at noise level}} \\\\",
              f"\\cmidrule(lr){{3-{nl + 2}}}",
              r"Estimator & {$N_\mathrm{train}$} & " + " & ".join(levels) + " \\\\"]
    body = []
    for e, (name, label) in enumerate(ex.estimators):
        if e:
            body.append(r"\addlinespace")
        for k, size in enumerate(ex.sizes):
            r2 = [ex.cell(macros, name, level, size, "r2") for level in ex.noise_levels]
            paths = [ex.path(name, level, size) for level in ex.noise_levels]
            ci = [_ci_cell(macros, file, *p, "r2_ci_seeds") if p else "{}" for p in paths]
            first = tex_escape(label) if k == 0 else ""
            body.append(f"{first} & {macros.cell(file, 'sizes', k)} & " + " & ".join(r2) + " \\\\")
            body.append(" & & " + " & ".join(ci) + " \\\\[2pt]")
    note = ["R^2 = 1 - MSE / Var_prior(log g) on the test set, mean over seeds;",
            "second row: t interval of the mean over seeds;",
            "noise level: factor on the instrument's noise (1 = nominal)."]
    colspec = "@{}l S[table-format=6.0]" + " S[table-format=-1.3]" * nl + "@{}"
    return _tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


_ERROR_COLUMNS = (("r2", "{$R^2$}"), ("rmse", "{RMSE (dex)}"), ("mae", "{MAE (dex)}"),
                  ("bias", "{bias (dex)}"), ("slope", "{slope}"))


def errors_tex(sources, macros):
    """Errors of every estimator (one ``experiment`` aggregate) at its ``default_noise_level``
    and largest training size: R^2, RMSE, MAE, bias (mean of predicted - true) and slope of
    predicted against true log g, each the mean over seeds."""
    ex = _experiment("errors", sources)
    file, m = ex.file, ex.metrics
    level = m.get("default_noise_level")
    if not is_number(level):
        raise InputError(f"table errors: {file} needs a numeric 'default_noise_level'")
    if _level_key(level) not in {_level_key(x) for x in ex.noise_levels}:
        raise InputError(f"table errors: {file}: default_noise_level {level} is not one of "
                         f"its noise_levels {ex.noise_levels}")
    k = max(range(len(ex.sizes)), key=lambda i: ex.sizes[i])
    size = ex.sizes[k]
    ncol = len(_ERROR_COLUMNS) + 1
    header = [f"\\multicolumn{{{ncol}}}{{c}}{{noise level "
              f"\\num{{{macros.cell(file, 'default_noise_level')}}}, $N_\\mathrm{{train}} = "
              f"\\num{{{macros.cell(file, 'sizes', k)}}}$}} \\\\",
              r"\midrule",
              "Estimator & " + " & ".join(title for _, title in _ERROR_COLUMNS) + " \\\\"]
    body = []
    for name, label in ex.estimators:
        cells = [ex.cell(macros, name, level, size, key) for key, _ in _ERROR_COLUMNS]
        body.append(f"{tex_escape(label)} & " + " & ".join(cells) + " \\\\")
    note = ["Mean over seeds; bias = mean(predicted - true log g);",
            "slope: least-squares slope of predicted against true log g (1 = no shrinkage)."]
    colspec = ("@{}l S[table-format=-1.3] S[table-format=1.3] S[table-format=1.3] "
               "S[table-format=-1.3] S[table-format=1.3]@{}")
    return _tabular(colspec, header, body, [file], note)


# --------------------------------------------------------------------------------------------
# The ceilings' checks and curves (track C)
# --------------------------------------------------------------------------------------------

_METHOD_LABELS = {"cubic": "cubic Hermite", "linear": "multilinear"}
_AXIS_LABELS = {"log_g": r"$\log g$", "T_eff": r"$T_\mathrm{eff}$", "M_H": "[M/H]", "a_M": r"[$\alpha$/M]"}


def _list_of_objects(m, key, file, what):
    v = m.get(key)
    if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
        raise InputError(f"{file}: {what} needs a list of objects {key!r}")
    return v


def crlb_validation_tex(sources, macros):
    """The CRLB-validation table (one ``crlb_validation`` file): per maximum-likelihood check (interpolant,
    log g, position in the cell) var(ML) / CRLB with its chi^2 interval and the ML bias; then the jump
    of the per-spectrum bound across the nearest grid node per interpolant and varied axis."""
    (src,) = _by_kind("crlb_validation", sources, {"crlb_validation": (1, 1)})["crlb_validation"]
    file, m = src.file, src.metrics
    if not isinstance(m.get("ml"), dict):
        raise InputError(f"{file}: the CRLB validation needs its maximum-likelihood checks 'ml'")
    rows = _list_of_objects(m["ml"], "rows", file, "the CRLB validation's 'ml'")
    header = [r"Interpolant & {position} & {$\log g$} & {$\mathrm{var}_\mathrm{ML}/\mathrm{CRLB}$}"
              r" & {interval} & {bias (dex)} \\"]
    body = []
    for i, r in enumerate(rows):
        method = _METHOD_LABELS.get(r.get("method"), tex_escape(r.get("method")))
        cells = [macros.cell(file, "ml", "rows", i, "log_g"), macros.cell(file, "ml", "rows", i, "ratio"),
                 _ci_cell(macros, file, "ml", "rows", i, "ratio_ci"), macros.cell(file, "ml", "rows", i, "bias")]
        body.append(f"{method} & {tex_escape(r.get('position', ''))} & " + " & ".join(cells) + " \\\\")
    jumps = m.get("node_jumps")
    if isinstance(jumps, dict) and jumps:
        body += [r"\midrule",
                 r"Interpolant & {axis} & {$N$} & {median jump} & {90\,th pct.} & {max jump} \\",
                 r"\cmidrule(lr){2-6}"]
        for method, by_axis in _items(jumps, f"{file}: node_jumps"):
            for k, (axis, _) in enumerate(_items(by_axis, f"{file}: node_jumps.{method}")):
                label = _METHOD_LABELS.get(method, tex_escape(method)) if k == 0 else ""
                cells = [macros.cell(file, "node_jumps", method, axis, key)
                         for key in ("n", "jump_median", "jump_p90", "jump_max")]
                for j in (0, 2):   # a count in a decimal column, a number in the c column
                    cells[j] = f"{{\\num{{{cells[j]}}}}}" if cells[j] != "{--}" else cells[j]
                body.append(f"{label} & {_AXIS_LABELS.get(axis, tex_escape(axis))} & " + " & ".join(cells) + " \\\\")
    note = ["Top: ML fits of log g (nuisances free) over noise draws at one star and one SNR (the file's",
            "ml.snr); var_ML / CRLB with the chi^2 interval of a sample variance; bias = mean(ML) - true.",
            "Bottom: max(r, 1/r), r = CRLB just above / just below the nearest interior node of the axis,",
            "over random points (1 = continuous bound)."]
    colspec = "@{}l l S[table-format=1.2] S[table-format=1.3] c S[table-format=-1.3]@{}"
    return _tabular(colspec, header, body, [file], note)


def snr_sweep_tex(sources, macros):
    """The SNR-sweep table (one ``snr_sweep`` file): per magnitude the median SNR, the median of the
    per-spectrum R^2_max in 3D and 4D, the mean-CRLB R^2 (3D), the Bayes ceiling with its interval,
    and the median sigma_min and Schur decay (3D)."""
    (src,) = _by_kind("snr_sweep", sources, {"snr_sweep": (1, 1)})["snr_sweep"]
    file, m = src.file, src.metrics
    rows = _list_of_objects(m, "rows", file, "the SNR sweep")
    header = [r"{mag (AB)} & {median SNR} & \multicolumn{3}{c}{CRLB: $R^2_{\max}$} & "
              r"\multicolumn{2}{c}{Bayes ceiling $R^2$} & {$\sigma_{\min}$ (dex)} & {Schur decay} \\",
              r"\cmidrule(lr){3-5}\cmidrule(lr){6-7}",
              r" & & {3D median} & {4D median} & {3D mean CRLB} & {value} & {interval} & {3D median} & {3D median} \\"]
    body = []
    for i, r in enumerate(rows):
        def c(*path):
            return macros.cell(file, "rows", i, *path)
        bayes = c("bayes", "r2")
        cells = [c("mag"), c("snr_median"), c("crlb_3d", "r2max_median"), c("crlb_4d", "r2max_median"),
                 c("crlb_3d", "r2max_mean_crlb"), bayes, _ci_cell(macros, file, "rows", i, "bayes", "r2_ci"),
                 c("crlb_3d", "sigma_min_median"), c("crlb_3d", "schur_decay_median")]
        body.append(" & ".join(cells) + " \\\\")
    note = ["Stars on a regular grid of the prior's varied parameters at each magnitude (one noise draw each);",
            "R^2_max = 1 - CRLB / Var_prior per star (median); mean CRLB: 1 - mean(CRLB) / Var_prior;",
            "3D: nuisances T_eff, [M/H]; 4D: also [alpha/M]; Schur decay = marginal / full information on log g;",
            "Bayes: R^2 of the posterior mean with its bootstrap interval (posteriors narrower than the grid",
            "step: importance sampling around the maximum-likelihood point)."]
    colspec = ("@{}S[table-format=2.1] S[table-format=3.1] S[table-format=1.3] S[table-format=1.3] "
               "S[table-format=1.3] S[table-format=1.3] c S[table-format=1.3] S[table-format=1.3]@{}")
    return _tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


def efficiency_by_snr_tex(sources, macros):
    """Efficiency against the Bayes ceiling (one ``efficiency`` file): rows the estimators (in the
    file's order), columns the SNR bins and all spectra, each cell eta_Bayes = R^2_model / R^2_Bayes;
    a last row gives R^2_Bayes per bin."""
    (src,) = _by_kind("efficiency_by_snr", sources, {"efficiency": (1, 1)})["efficiency"]
    file, m = src.file, src.metrics
    bins = _list_of_objects(m, "snr_bins", file, "the efficiency table")
    if not isinstance(m.get("overall"), dict) or not isinstance(m.get("estimators"), list):
        raise InputError(f"{file}: the efficiency table needs 'estimators' and 'overall'")
    for b in bins:
        _bin_key(b, file)
    nb = len(bins)
    heads = [f"{{\\num{{{macros.get(file, 'snr_bins', i, 'lo')}}}--\\num{{{macros.get(file, 'snr_bins', i, 'hi')}}}}}"
             for i in range(nb)]
    header = [f" & \\multicolumn{{{nb}}}{{c}}{{$\\eta_\\mathrm{{Bayes}}$ per bin of SNR}} & \\\\",
              f"\\cmidrule(lr){{2-{nb + 1}}}",
              "Estimator & " + " & ".join(heads) + " & {All} \\\\"]
    paths = [("snr_bins", i) for i in range(nb)] + [("overall",)]
    body = []
    for name in m["estimators"]:
        cells = [macros.cell(file, *p, "models", name, "eta_bayes") for p in paths]
        body.append(f"{tex_escape(name)} & " + " & ".join(cells) + " \\\\")
    body += [r"\midrule", "$R^2_\\mathrm{Bayes}$ & " + " & ".join(macros.cell(file, *p, "bayes_r2") for p in paths)
             + " \\\\"]
    note = ["eta_Bayes = R^2 of the model (mean over seeds) / R^2 of the posterior mean on the same test",
            "spectra and noise; 1 = at the Bayes ceiling; last row: R^2_Bayes of each bin."]
    colspec = "@{}l" + " S[table-format=-1.3]" * (nb + 1) + "@{}"
    return _tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


# --------------------------------------------------------------------------------------------
# Neural estimators (track A)
# --------------------------------------------------------------------------------------------

def _power_law(table, ex):
    """``{estimator: fit}`` of the aggregate's metrics["power_law"] (pfslogg.scaling), skipped ones left
    out; InputError naming the table and file where there is none."""
    law = ex.metrics.get("power_law")
    if not isinstance(law, dict) or not law:
        raise InputError(f"table {table}: {ex.file} has no 'power_law' (the fits pfslogg.scaling adds to an "
                         "experiment aggregate with 4 or more sizes)")
    return {e: f for e, f in _items(law, f"{ex.file}: power_law") if isinstance(f, dict) and "skipped" not in f}


def _first_with(fits, *path):
    """(estimator, fit) of the first fit that has ``path``; a column's header cites its macro."""
    for e, f in fits.items():
        node = f
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return e
    return None


_DAGGER = "$^\\dagger$"


def _marked(cell, extrapolated):
    return f"{{{cell}{_DAGGER}}}" if extrapolated and cell != "{--}" else cell


def _variant_labels(ex):
    """{estimator: label}: its label where no other estimator of the aggregate shares it, else its name
    (ablation variants of one class share the class's label)."""
    counts = {}
    for _, label in ex.estimators:
        counts[label] = counts.get(label, 0) + 1
    return {name: label if counts[label] == 1 else name for name, label in ex.estimators}


def scaling_tex(sources, macros):
    """The scaling table (one ``experiment`` aggregate with its ``power_law``): per estimator the
    mean R^2 at each training size (at the fits' noise level), the fitted R^2_inf and exponent b of
    R^2_inf - a N^-b, its predictions at the original study's sizes (a dagger marks one beyond the
    fitted sizes: an extrapolation) and the size at which it reaches each target (e.g. LightGBM's R^2)."""
    ex = _experiment("scaling", sources)
    file = ex.file
    fits = _power_law("scaling", ex)
    if not fits:
        raise InputError(f"table scaling: {file}: every estimator's power-law fit was skipped (fewer than 4 sizes)")
    levels = {_level_key(f.get("noise_level")) for f in fits.values() if is_number(f.get("noise_level"))}
    if len(levels) != 1:
        raise InputError(f"table scaling: {file}: power_law fits need one numeric 'noise_level' (got {sorted(levels)})")
    level = levels.pop()
    predict = sorted({k for f in fits.values() for k in (f.get("predict") or {})}, key=float)
    targets = list(dict.fromkeys(t for f in fits.values() for t in (f.get("size_to_reach") or {})))
    names = dict(ex.estimators)
    k, p, t = len(ex.sizes), len(predict), len(targets)
    first = next(iter(fits))
    heads = [f"{{\\num{{{macros.cell(file, 'sizes', i)}}}}}" for i in range(k)]
    heads += ["{$R^2_\\infty$}", "{$b$}"]
    heads += [f"{{\\num{{{macros.cell(file, 'power_law', _first_with(fits, 'predict', n), 'predict', n, 'n_train')}}}}}"
              for n in predict]
    for tg in targets:
        e = _first_with(fits, "size_to_reach", tg)
        r2 = macros.cell(file, "power_law", e, "size_to_reach", tg, "r2")
        heads.append(f"{{{tex_escape(names.get(tg, tg))} (\\num{{{r2}}})}}")
    groups = [(k, "$R^2$ at $N_\\mathrm{train}$"), (2, "power law"),
              (p, f"predicted $R^2$ at $N$ ({_DAGGER}: extrapolated)"), (t, "$N$ to reach $R^2$ of")]
    top, rules, col = [], [], 2
    for width, title in groups:
        if width:
            top.append(f"\\multicolumn{{{width}}}{{c}}{{{title}}}")
            rules.append(f"\\cmidrule(lr){{{col}-{col + width - 1}}}")
            col += width
    header = [f"\\multicolumn{{{col - 1}}}{{c}}{{noise level "
              f"\\num{{{macros.cell(file, 'power_law', first, 'noise_level')}}}}} \\\\", r"\midrule",
              " & " + " & ".join(top) + " \\\\", "".join(rules), "Estimator & " + " & ".join(heads) + " \\\\"]
    body = []
    for name, label in ex.estimators:
        cells = [ex.cell(macros, name, level, size, "r2") for size in ex.sizes]
        f = fits.get(name)
        if f is None:
            cells += ["{--}"] * (2 + p + t)
        else:
            cells += [macros.cell(file, "power_law", name, key) for key in ("r2_inf", "b")]
            for n in predict:
                pr = (f.get("predict") or {}).get(n) or {}
                cells.append(_marked(macros.cell(file, "power_law", name, "predict", n, "r2"), pr.get("extrapolated")))
            for tg in targets:
                r = (f.get("size_to_reach") or {}).get(tg) or {}
                cells.append(_marked(macros.cell(file, "power_law", name, "size_to_reach", tg, "n_train"),
                                     r.get("extrapolated")))
        body.append(f"{tex_escape(label)} & " + " & ".join(cells) + " \\\\")
    note = ["R^2: mean over seeds on the test set; power law R^2(N) = R^2_inf - a N^-b fitted to those means,",
            "weighted by their intervals over seeds (pfslogg.scaling); dagger: beyond the fitted sizes;",
            "last columns: the N at which the fitted curve reaches the named model's R^2 ({--}: never)."]
    colspec = ("@{}l" + " S[table-format=-1.3]" * k + " S[table-format=-1.3] S[table-format=1.2]"
               + " S[table-format=-1.3]" * p + " S[table-format=7.0]" * t + "@{}")
    return _tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


def ablations_tex(sources, macros):
    """The ablation table (one ``experiment`` aggregate whose ``comparisons`` name each variant's
    baseline): at the default noise level and largest size, per baseline its R^2 and interval over
    seeds, then each of its variants with R^2, interval and the difference to the baseline (paired
    over seeds) with that difference's interval. Estimators without a comparison come last."""
    ex = _experiment("ablations", sources)
    file, m = ex.file, ex.metrics
    comps = m.get("comparisons")
    if not isinstance(comps, dict) or not comps:
        raise InputError(f"table ablations: {file} has no 'comparisons' (experiment key compare: "
                         "{variant: baseline})")
    level = m.get("default_noise_level")
    if not is_number(level) or _level_key(level) not in {_level_key(x) for x in ex.noise_levels}:
        raise InputError(f"table ablations: {file} needs a 'default_noise_level' among its noise_levels")
    k = max(range(len(ex.sizes)), key=lambda i: ex.sizes[i])
    size = ex.sizes[k]
    labels = _variant_labels(ex)
    order = [name for name, _ in ex.estimators]
    refs = [e for e in order if any(isinstance(c, dict) and c.get("reference") == e for c in comps.values())]
    header = [f"\\multicolumn{{5}}{{c}}{{noise level \\num{{{macros.cell(file, 'default_noise_level')}}}, "
              f"$N_\\mathrm{{train}} = \\num{{{macros.cell(file, 'sizes', k)}}}$}} \\\\", r"\midrule",
              r"Variant & {$R^2$} & {interval} & {$\Delta R^2$ to baseline} & {interval} \\"]

    def row(e, diff):
        cells = [ex.cell(macros, e, level, size, "r2")]
        path = ex.path(e, level, size)
        cells.append(_ci_cell(macros, file, *path, "r2_ci_seeds") if path else "{}")
        if diff:
            cells += [macros.cell(file, "comparisons", e, "at_default", "r2_diff"),
                      _ci_cell(macros, file, "comparisons", e, "at_default", "r2_diff_ci")]
        else:
            cells += ["{}", "{}"]
        return cells

    body, done = [], set()
    for ref in refs:
        if body:
            body.append(r"\addlinespace")
        body.append(f"{tex_escape(labels[ref])} (baseline) & " + " & ".join(row(ref, False)) + " \\\\")
        done.add(ref)
        for e in order:
            if e not in done and isinstance(comps.get(e), dict) and comps[e].get("reference") == ref:
                body.append(f"\\quad {tex_escape(labels[e])} & " + " & ".join(row(e, True)) + " \\\\")
                done.add(e)
    rest = [e for e in order if e not in done]
    if rest:
        body.append(r"\addlinespace")
        body += [f"{tex_escape(labels[e])} & " + " & ".join(row(e, False)) + " \\\\" for e in rest]
    note = ["R^2: mean over seeds on the test set with its t interval over seeds;",
            "Delta R^2: mean over seeds of (variant - baseline) on the same seeds (paired), with its t interval."]
    colspec = "@{}l S[table-format=-1.3] c S[table-format=-1.3] c@{}"
    return _tabular(colspec, header, body, [file], note)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

# name -> builder(sources, macros) -> text; later tracks add their own tables here.
TABLES = {"datasets": datasets_tex, "ceiling": ceiling_tex, "calibration": calibration_tex,
          "r2_by_snr": r2_by_snr_tex, "leaderboard": leaderboard_tex, "errors": errors_tex,
          "crlb_validation": crlb_validation_tex, "snr_sweep": snr_sweep_tex,
          "efficiency_by_snr": efficiency_by_snr_tex, "scaling": scaling_tex, "ablations": ablations_tex}


def table_tex(name, results_dir, files, numbers=None, root=None):
    """The text of table ``name`` (see :data:`TABLES`) from exactly the results ``files`` (under
    ``results_dir``, given as :func:`~pfslogg.paper.numbers.collect_numbers` takes them).

    ``numbers``: the :class:`~pfslogg.paper.numbers.Number` list whose macros the table cites
    (default: those of ``files``); ``root``: the workflow root that file paths in numbers.tex are
    relative to (default: the folder holding ``results_dir``)."""
    builder = TABLES.get(name)
    if builder is None:
        raise InputError(f"unknown table {name!r}; the tables are {', '.join(sorted(TABLES))}")
    files = list(files or [])
    if not files:
        raise InputError(f"table {name}: no results files given")
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    sources = table_sources(results_dir, files, root)
    if numbers is None:
        numbers = collect_numbers(results_dir, root=root, files=[root / s.file for s in sources])
    return builder(sources, MacroLookup(numbers))


def write_table(name, results_dir, out_path, files, numbers=None, root=None):
    """Write table ``name`` (see :func:`table_tex`) to ``out_path``; return its text."""
    text = table_tex(name, results_dir, files, numbers=numbers, root=root)
    write_text(out_path, text)
    return text
