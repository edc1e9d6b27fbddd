"""Tables of Track E (see :mod:`pfslogg.paper.tables` for what every table shares):

* ``linearity``: per noise level, R^2 of every estimator of the aggregate (means over seeds, largest
  size) and each compared variant's difference to its reference with the paired bootstrap interval and
  its verdict (one ``experiment`` aggregate compared at every level: ``compare_at: all``);
* ``linearity_findings``: not a tabular but sentences: each compared variant's difference per noise
  level and the levels at which it helps, hurts or does neither (the aggregate's verdicts);
* ``error_channel``: per variant of the error-channel experiment, the sigma it read, its R^2 with its
  interval, its difference to its reference (Ridge on the flux: paired interval, verdict) and its R^2
  less the Bayes ceiling's on the same spectra (one ``experiment`` aggregate and one ``efficiency`` file
  of rule check_error_channel_ceiling, whose ``other_sigma`` holds the models fed another sigma).
"""

from ...errors import InputError
from .common import by_kind, ci_cell, label_tex, noise_level_key, read_experiment, series, table, tabular
from .track_a import _variant_labels

_NOTE = ["R^2: mean over seeds on the test set; Delta R^2: variant - reference on the same test spectra, each",
         "spectrum's squared error averaged over seeds; its interval: paired bootstrap over those spectra;",
         "verdict: gain or loss where that interval excludes zero, else no difference."]


def _comparisons(table_name, ex):
    comps = ex.metrics.get("comparisons")
    if not isinstance(comps, dict) or not comps:
        raise InputError(f"table {table_name}: {ex.file} has no 'comparisons' (experiment key compare)")
    return comps


def _at_level(comp, level):
    """The key of ``comp`` (one variant's comparisons) at noise level ``level``, or None."""
    return next((k for k, c in comp.items() if isinstance(c, dict) and c.get("noise_level") is not None
                 and noise_level_key(c["noise_level"]) == noise_level_key(level)), None)


@table("linearity")
def linearity_tex(sources, macros):
    """Rows: the noise levels; columns: R^2 of every estimator, then for each compared variant its
    difference to its reference, the paired interval and the verdict (blank where not compared)."""
    ex = read_experiment("linearity", sources)
    comps, file = _comparisons("linearity", ex), ex.file
    labels = _variant_labels(ex)
    size = max(ex.sizes)
    names = [n for n, _ in ex.estimators]
    header = [" & ".join(["{noise level}", *[f"{{{label_tex(labels[n])}}}" for n in names],
                          *[f"{{$\\Delta R^2$ {label_tex(labels[v])} $-$ {label_tex(labels[c['reference']])}}} & "
                            "{paired interval} & {verdict}" for v, c in comps.items()]]) + r" \\"]
    body = []
    for i, level in enumerate(ex.noise_levels):
        cells = [f"\\num{{{macros.cell(file, 'noise_levels', i)}}}"]
        cells += [ex.cell(macros, n, level, size, "r2") for n in names]
        for v, comp in comps.items():
            key = _at_level(comp, level)
            cells += ([macros.cell(file, "comparisons", v, key, "r2_diff"),
                       ci_cell(macros, file, "comparisons", v, key, "r2_diff_ci"),
                       macros.cell(file, "comparisons", v, key, "verdict")] if key else ["{--}", "{}", ""])
        body.append(" & ".join(cells) + r" \\")
    colspec = "@{}l " + "S[table-format=-1.3] " * len(names) + "S[table-format=-1.3] c l " * len(comps) + "@{}"
    note = [f"Training size {size} (the largest of the aggregate); R^2 of each estimator per noise level."] + _NOTE
    return tabular(colspec.strip(), header, body, [file], note)


@table("error_channel")
def error_channel_tex(sources, macros):
    """Rows: the variants of the error-channel aggregate; columns: the sigma they read, R^2 and its
    bootstrap interval, the difference to the reference (paired interval, verdict) and R^2 - R^2_Bayes on
    the same spectra; a last row the Bayes ceiling itself."""
    return against_ceiling_tex("error_channel", sources, macros)


def against_ceiling_tex(name, sources, macros, sigma_column=True):
    """Table ``name``: one ``experiment`` aggregate whose variants are compared with their references, and
    the ``efficiency`` file of the same cells against the Bayes ceiling (check_ceiling's): per variant the
    sigma it read, R^2 and its interval, its paired difference to its reference with the verdict, and
    R^2 - R^2_Bayes; a last row the ceiling (Track E's error channel, Track D's downstream models).
    ``sigma_column``: whether the sigma each read is a column (Track E's variants differ in it)."""
    kinds = by_kind(name, sources, {"experiment": (1, 1), "efficiency": (1, 1)})
    ex = read_experiment(name, kinds["experiment"])
    eff = kinds["efficiency"][0]
    comps, file, efile, m = _comparisons(name, ex), ex.file, eff.file, eff.metrics
    other = m.get("other_sigma") or {}
    mode = other.get("ceiling_sigma")
    level = ex.noise_levels[0]
    labels = _variant_labels(ex)
    header = [(r"Variant & {sigma} & " if sigma_column else r"Variant & ")
              + r"{$R^2$} & {interval} & {$\Delta R^2$ to its reference} & {paired interval} & "
              r"{verdict} & {$R^2 - R^2_\mathrm{Bayes}$} \\"]
    body, table_name = [], name
    for name, _ in ex.estimators:
        if name in (other.get("estimators") or []):
            where, sigma = ("other_sigma", "overall", "models", name), ", ".join(other["sigma"][name])
        elif name in m.get("estimators", []):
            where, sigma = ("overall", "models", name), (mode or "as the ceiling")
        else:
            raise InputError(f"table {table_name}: {efile} has no model {name!r} of {file}")
        cells = [label_tex(labels[name]), *([sigma] if sigma_column else []), macros.cell(efile, *where, "r2"),
                 ci_cell(macros, efile, *where, "r2_ci")]
        key = _at_level(comps[name], level) if name in comps else None
        cells += ([macros.cell(file, "comparisons", name, key, "r2_diff"),
                   ci_cell(macros, file, "comparisons", name, key, "r2_diff_ci"),
                   macros.cell(file, "comparisons", name, key, "verdict")] if key else ["{}", "{}", ""])
        cells.append(macros.cell(efile, *where, "r2_minus_bayes"))
        body.append(" & ".join(cells) + r" \\")
    body += [r"\addlinespace",
             "Bayes ceiling & " + (f"{mode or ''} & " if sigma_column else "")
             + f"{macros.cell(efile, 'overall', 'bayes_r2')} & "
             f"{ci_cell(macros, efile, 'overall', 'bayes_r2_ci')} & {{}} & {{}} & & {{}} \\\\"]
    note = (["sigma: the sigma each model read with the noisy flux (stored: computed from the clean flux);"]
            if sigma_column else []) + [
            "R^2 and its interval: mean over seeds, bootstrap over the test spectra; R^2 - R^2_Bayes: on the same",
            "spectra, the Bayes ceiling conditioned on the sigma of its row."] + _NOTE
    colspec = "@{}l " + ("l " if sigma_column else "") + "S[table-format=-1.3] c S[table-format=-1.3] c l " \
        "S[table-format=-1.3]@{}"
    return tabular(colspec, header, body, [file, efile], note)


_WORDS = {"gain": "helps (a gain)", "loss": "hurts (a loss)", "no difference": "neither helps nor hurts (no difference)"}


@table("linearity_findings")
def linearity_findings_tex(sources, macros):
    """The linearity findings as sentences (an ``itemize``), for each compared variant: its difference to
    its reference at every noise level it was compared at (paired interval, verdict), then at which noise
    levels it helps, hurts or does neither -- the levels grouped by the verdict the aggregate gave each
    (pfslogg.evaluation.verdict, from the interval); every number and word a macro."""
    return findings_tex("linearity_findings", sources, macros)


def findings_tex(name, sources, macros):
    """Table ``name``: the comparisons of one ``experiment`` aggregate as sentences (see
    :func:`linearity_findings_tex`; Track D's downstream findings too)."""
    ex = read_experiment(name, sources)
    comps, file = _comparisons(name, ex), ex.file
    labels = _variant_labels(ex)
    level_macro = {noise_level_key(v): macros.cell(file, "noise_levels", i) for i, v in enumerate(ex.noise_levels)}
    items = []
    for v, comp in comps.items():
        ref = comp.get("reference")
        at = {}   # one comparison per noise level (at_default and at_highest_noise can be the same one)
        for k, c in comp.items():
            if isinstance(c, dict) and "r2_diff" in c:
                at.setdefault(noise_level_key(c["noise_level"]), k)
        at = sorted(at.items())
        if not at:
            raise InputError(f"table {name}: {file}: no comparison of {v!r} at any noise level")
        parts, by_word = [], {}
        for level, k in at:
            word = comp[k].get("verdict")
            parts.append(f"noise level \\num{{{level_macro[level]}}}: $\\Delta R^2 = "
                         f"\\num{{{macros.cell(file, 'comparisons', v, k, 'r2_diff')}}}$ "
                         f"{ci_cell(macros, file, 'comparisons', v, k, 'r2_diff_ci')}, "
                         f"{macros.cell(file, 'comparisons', v, k, 'verdict')}")
            by_word.setdefault(word, []).append(f"\\num{{{level_macro[level]}}}")
        items.append(f"{label_tex(labels[v])} against {label_tex(labels.get(ref, ref))}, paired differences in $R^2$ "
                     "(paired bootstrap over the test spectra, each spectrum's squared error averaged over seeds): " + "; ".join(parts) + ".")
        said = [f"{_WORDS.get(w, w)} at noise level{'s' if len(lv) > 1 else ''} {series(lv)}"
                for w, lv in by_word.items()]
        items.append(f"So {label_tex(labels[v])} " + "; ".join(said) + ".")
    lines = [f"% Generated by pfslogg.paper -- do not edit: the findings of {name}; every number is a macro, and the",
             "% words that qualify them (gain, loss, no difference) are the aggregate's verdicts.",
             "% Sources:", f"%   {file}", r"\begin{itemize}"]
    return "\n".join(lines + [f"\\item {it}" for it in items] + [r"\end{itemize}", ""])


@table("probing")
def probing_tex(sources, macros):
    """Rows: the variants of the probing aggregate (Ridge on the raw flux first); columns: R^2 (mean over
    seeds) and its interval over seeds, the paired difference to the reference (Ridge on the flux) with
    its interval and verdict."""
    return comparisons_tex("probing", sources, macros)


def comparisons_tex(name, sources, macros):
    """Table ``name``: per variant of one ``experiment`` aggregate at its one noise level and largest size,
    R^2 and its interval over seeds, and its paired difference to its reference (interval, verdict)."""
    ex = read_experiment(name, sources)
    comps, file = _comparisons(name, ex), ex.file
    labels = _variant_labels(ex)
    level, size = ex.noise_levels[0], max(ex.sizes)
    header = [r"Model & {$R^2$} & {interval over seeds} & {$\Delta R^2$ to its reference} & {paired interval} & "
              r"{verdict} \\"]
    body = []
    for n, _ in ex.estimators:
        cells = [label_tex(labels[n]), ex.cell(macros, n, level, size, "r2"),
                 ci_cell(macros, file, *ex.path(n, level, size), "r2_ci_seeds")]
        key = _at_level(comps[n], level) if n in comps else None
        cells += ([macros.cell(file, "comparisons", n, key, "r2_diff"),
                   ci_cell(macros, file, "comparisons", n, key, "r2_diff_ci"),
                   macros.cell(file, "comparisons", n, key, "verdict")] if key else ["{}", "{}", ""])
        body.append(" & ".join(cells) + r" \\")
    note = [f"Noise level and training size: the aggregate's one noise level and its largest size ({size})."] + _NOTE
    return tabular("@{}l S[table-format=-1.3] c S[table-format=-1.3] c l@{}", header, body, [file], note)


@table("probing_findings")
def probing_findings_tex(sources, macros):
    """Each latent probe against Ridge on the raw flux, as sentences whose verdict words are the aggregate's."""
    return findings_tex("probing_findings", sources, macros)
