"""Tables of the neural estimators (track A; see :mod:`pfslogg.paper.tables` for what every table
shares):

* ``scaling``: R^2 of every estimator at each training size, the fitted power law (R^2_inf, b),
  its predictions at the original study's sizes (extrapolations marked) and the size reaching
  each target (one ``experiment`` aggregate with its ``power_law``, pfslogg.scaling);
* ``scaling_sim``: the same for the networks trained on simulated stars (sizes beyond the training file);
* ``ablations``: R^2 of each variant with its interval and its difference to its own reference
  with the paired bootstrap interval and its verdict (one ``experiment`` aggregate with ``comparisons``);
* ``protocols``: per SNR bin of the test set, the Bayes ceiling's R^2, the reference's and each compared
  variant's with the paired difference, its interval and verdict (one ``experiment`` aggregate compared
  ``compare_by_snr``, one ``bayes`` file): how training protocols move a model toward the ceiling where;
* ``figure_models``: not a tabular but the words for a caption, ``\\FigureModels``, the labels of the
  models drawn in the headline figure (its cells, kind ``estimator``), so that a caption that names
  them follows the configuration.
"""

from ...errors import InputError
from ...experiments import comparison_groups, variant_labels
from ..numbers import is_number
from .common import (by_kind, ci_cell, label_tex, models_macro, noise_level_key, object_items, read_experiment, table,
                     tabular)


def _power_law(table, ex):
    """``{estimator: fit}`` of the aggregate's metrics["power_law"] (pfslogg.scaling), skipped ones left
    out; InputError naming the table and file where there is none."""
    law = ex.metrics.get("power_law")
    if not isinstance(law, dict) or not law:
        raise InputError(f"table {table}: {ex.file} has no 'power_law' (the fits pfslogg.scaling adds to an "
                         "experiment aggregate with 4 or more sizes)")
    return {e: f for e, f in object_items(law, f"{ex.file}: power_law") if isinstance(f, dict) and "skipped" not in f}


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
    """{estimator: label}: the words the aggregate names it by (pfslogg.experiments.variant_labels, which
    the figures use too: "ViT, patch 32", never a variant id)."""
    classes = {n: e.get("class") if isinstance(e, dict) else None for n, e in ex.metrics["estimators"].items()}
    return variant_labels({name: {"label": label, "class": classes.get(name)} for name, label in ex.estimators})


@table("scaling")
def scaling_tex(sources, macros):
    """The scaling table (one ``experiment`` aggregate with its ``power_law``): per estimator the
    mean R^2 at each training size (at the fits' noise level), the fitted R^2_inf and exponent b of
    R^2_inf - a N^-b, its predictions at the original study's sizes (a dagger marks one beyond the
    fitted sizes: an extrapolation) and the size at which it reaches each target (e.g. LightGBM's R^2)."""
    return _scaling_tex("scaling", sources, macros)


@table("scaling_sim")
def scaling_sim_tex(sources, macros):
    """The scaling table of the networks trained on simulated stars (experiment ``scaling_sim``: sizes
    beyond the training file), as :func:`scaling_tex`."""
    return _scaling_tex("scaling_sim", sources, macros)


def _scaling_tex(name, sources, macros):
    ex = read_experiment(name, sources)
    file = ex.file
    fits = _power_law(name, ex)
    if not fits:
        raise InputError(f"table {name}: {file}: every estimator's power-law fit was skipped (fewer than 4 sizes)")
    levels = {noise_level_key(f.get("noise_level")) for f in fits.values() if is_number(f.get("noise_level"))}
    if len(levels) != 1:
        raise InputError(f"table {name}: {file}: power_law fits need one numeric 'noise_level' (got {sorted(levels)})")
    level = levels.pop()
    predict = sorted({k for f in fits.values() for k in (f.get("predict") or {})}, key=float)
    targets = list(dict.fromkeys(t for f in fits.values() for t in (f.get("size_to_reach") or {})))
    names = _variant_labels(ex)
    k, p, t = len(ex.sizes), len(predict), len(targets)
    first = next(iter(fits))
    heads = [f"{{\\num{{{macros.cell(file, 'sizes', i)}}}}}" for i in range(k)]
    heads += ["{$R^2_\\infty$}", "{$b$}"]
    heads += [f"{{\\num{{{macros.cell(file, 'power_law', _first_with(fits, 'predict', n), 'predict', n, 'n_train')}}}}}"
              for n in predict]
    for tg in targets:
        e = _first_with(fits, "size_to_reach", tg)
        r2 = macros.cell(file, "power_law", e, "size_to_reach", tg, "r2")
        heads.append(f"{{{label_tex(names.get(tg, tg))} (\\num{{{r2}}})}}")
    groups = [(k, "$R^2$ at $n_\\mathrm{train}$"), (2, "power law"),
              (p, f"predicted $R^2$ at $n_\\mathrm{{train}}$ ({_DAGGER}: extrapolated)"), (t, "$n_\\mathrm{train}$ to reach $R^2$ of")]
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
    for name, _ in ex.estimators:
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
        body.append(f"{label_tex(names[name])} & " + " & ".join(cells) + " \\\\")
    note = ["R^2: mean over seeds on the test set; power law R^2(n_train) = R^2_inf - q n_train^-b fitted to those means,",
            "weighted by their intervals over seeds (pfslogg.scaling); dagger: beyond the fitted sizes;",
            "last columns: the N at which the fitted curve reaches the named model's R^2 ({--}: never)."]
    colspec = ("@{}l" + " S[table-format=-1.3]" * k + " S[table-format=-1.3] S[table-format=1.2]"
               + " S[table-format=-1.3]" * p + " S[table-format=7.0]" * t + "@{}")
    return tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


@table("ablations")
def ablations_tex(sources, macros):
    """The ablation table (one ``experiment`` aggregate whose ``comparisons`` name each variant's
    reference): at the default noise level and largest size, per reference its R^2 with the bootstrap
    interval over the test spectra, then each variant compared with it: R^2 and interval, the difference
    to its reference with the interval of the paired bootstrap over the same test spectra and the word it
    earns (gain, loss, no difference). Estimators in no comparison come last. The ablations figure
    (pfslogg.plots.track_a) draws the same differences."""
    ex = read_experiment("ablations", sources)
    file, m = ex.file, ex.metrics
    comps = m.get("comparisons")
    if not isinstance(comps, dict) or not comps:
        raise InputError(f"table ablations: {file} has no 'comparisons' (experiment key compare: "
                         "{variant: reference})")
    level = m.get("default_noise_level")
    if not is_number(level) or noise_level_key(level) not in {noise_level_key(x) for x in ex.noise_levels}:
        raise InputError(f"table ablations: {file} needs a 'default_noise_level' among its noise_levels")
    k = max(range(len(ex.sizes)), key=lambda i: ex.sizes[i])
    size = ex.sizes[k]
    labels = _variant_labels(ex)
    groups, rest = comparison_groups([name for name, _ in ex.estimators], comps)
    header = [f"\\multicolumn{{6}}{{c}}{{noise level \\num{{{macros.cell(file, 'default_noise_level')}}}, "
              f"$N_\\mathrm{{train}} = \\num{{{macros.cell(file, 'sizes', k)}}}$}} \\\\", r"\midrule",
              r"Variant & {$R^2$} & {interval} & {$\Delta R^2$ to its reference} & {paired interval} & {verdict} \\"]

    def row(e, diff):
        cells = [ex.cell(macros, e, level, size, "r2")]
        path = ex.path(e, level, size)
        cells.append(ci_cell(macros, file, *path, "r2_ci_boot") if path else "{}")
        if diff:
            at = ("comparisons", e, "at_default")
            cells += [macros.cell(file, *at, "r2_diff"), ci_cell(macros, file, *at, "r2_diff_ci"),
                      macros.cell(file, *at, "verdict")]
        else:
            cells += ["{}", "{}", ""]
        return cells

    body = []
    for ref, members in groups:
        if body:
            body.append(r"\addlinespace")
        body.append(f"{label_tex(labels[ref])} (reference) & " + " & ".join(row(ref, False)) + " \\\\")
        body += [f"\\quad {label_tex(labels[e])} & " + " & ".join(row(e, True)) + " \\\\" for e in members]
    if rest:
        body.append(r"\addlinespace")
        body += [f"{label_tex(labels[e])} & " + " & ".join(row(e, False)) + " \\\\" for e in rest]
    note = ["R^2: mean over seeds on the test set, with its bootstrap interval over the test spectra;",
            "Delta R^2: variant - reference on the same test spectra, each spectrum's squared error averaged",
            "over seeds; its interval: paired bootstrap over those spectra (one resampling for both models);",
            "verdict: gain or loss where that interval excludes zero, else no difference."]
    colspec = "@{}l S[table-format=-1.3] c S[table-format=-1.3] c l@{}"
    return tabular(colspec, header, body, [file], note)


@table("figure_models")
def figure_models_tex(sources, macros):
    """``\\def\\FigureModels{...}``: the labels of the cells (kind ``estimator``) drawn in the headline
    figure, in the order of their files, joined as a series ("Ridge, LightGBM and ViT") for the captions
    that name the models drawn (``\\input`` it before the float, then write ``\\FigureModels``)."""
    cells = by_kind("figure_models", sources, {"estimator": (1, None)})["estimator"]
    labels = []
    for s in cells:
        label = s.metrics.get("label") or s.metrics.get("estimator")
        if not isinstance(label, str) or not label:
            raise InputError(f"table figure_models: {s.file} has no 'label' (the estimator's words)")
        labels.append(label)
    return models_macro("FigureModels", "the models of the headline figure", cells, labels)


def _diff_cell(macros, file, at):
    """A difference and its interval in one text cell: "\\num{d} [lo, hi]" (a dash without them)."""
    d = macros.get(file, *at, "r2_diff")
    return "--" if d is None else f"\\num{{{d}}} {ci_cell(macros, file, *at, 'r2_diff_ci')}"


@table("protocols")
def protocols_tex(sources, macros):
    """The training-protocol table: rows the SNR bins (and all spectra), columns the Bayes ceiling's R^2,
    the reference's R^2 and, for each variant compared with it, its R^2, the paired difference with its
    interval and the verdict (the aggregate's ``comparisons.<variant>.at_default.snr_bins``, matched to the
    ceiling's bins by their lower edge)."""
    kinds = by_kind("protocols", sources, {"experiment": (1, 1), "bayes": (1, 1)})
    ex = read_experiment("protocols", kinds["experiment"])
    (bayes,) = kinds["bayes"]
    file, m = ex.file, ex.metrics
    comps = m.get("comparisons")
    if not isinstance(comps, dict) or not comps or not all(
            isinstance(c, dict) and isinstance((c.get("at_default") or {}).get("snr_bins"), list) for c in comps.values()):
        raise InputError(f"table protocols: {file} needs comparisons at the default noise level per SNR bin "
                         "(experiment keys compare and compare_by_snr: true)")
    refs = {c["reference"] for c in comps.values()}
    if len(refs) != 1:
        raise InputError(f"table protocols: {file} compares with {sorted(refs)}: expected one reference")
    labels = _variant_labels(ex)
    variants = list(comps)
    bins = bayes.metrics.get("snr_bins")
    if not isinstance(bins, list) or not bins:
        raise InputError(f"table protocols: {bayes.file} has no 'snr_bins'")
    first = comps[variants[0]]["at_default"]["snr_bins"]
    n_var = len(variants)
    ref = next(iter(refs))
    header = [f" & {{Bayes ceiling}} & {{{label_tex(labels.get(ref, ref))}}} & " + " & ".join(
                  f"\\multicolumn{{3}}{{c}}{{{label_tex(labels[v])}}}" for v in variants) + " \\\\",
              "".join(f"\\cmidrule(lr){{{4 + 3 * i}-{6 + 3 * i}}}" for i in range(n_var)),
              "{SNR bin} & {$R^2$} & {$R^2$} & " + " & ".join(["{$R^2$} & {$\\Delta R^2$ [paired interval]} & {verdict}"]
                                                            * n_var) + " \\\\"]
    body = []
    for i, b in enumerate(bins):
        j = next((k for k, c in enumerate(first) if isinstance(c, dict) and c.get("lo") == b.get("lo")), None)
        if j is None:
            continue
        cells = [macros.cell(bayes.file, "snr_bins", i, "r2"),
                 macros.cell(file, "comparisons", variants[0], "at_default", "snr_bins", j, "r2_reference")]
        for v in variants:
            at = ("comparisons", v, "at_default", "snr_bins", j)
            cells += [macros.cell(file, *at, "r2"), _diff_cell(macros, file, at), macros.cell(file, *at, "verdict")]
        lo, hi = macros.cell(bayes.file, "snr_bins", i, "lo"), macros.cell(bayes.file, "snr_bins", i, "hi")
        body.append(f"{{\\num{{{lo}}}--\\num{{{hi}}}}} & " + " & ".join(cells) + " \\\\")
    cells = [macros.cell(bayes.file, "overall", "r2"),
             macros.cell(file, "comparisons", variants[0], "at_default", "r2_reference")]
    for v in variants:
        at = ("comparisons", v, "at_default")
        cells += [macros.cell(file, *at, "r2"), _diff_cell(macros, file, at), macros.cell(file, *at, "verdict")]
    body += [r"\midrule", "{all} & " + " & ".join(cells) + " \\\\"]
    ref = next(iter(refs))
    note = [f"reference: {labels.get(ref, ref)}; R^2 of each model: mean over seeds of its squared errors on the "
            "spectra of the bin;",
            "Delta R^2: variant - reference on the same spectra, interval of the paired bootstrap over them; "
            "Bayes: the posterior mean's R^2 (the ceiling)."]
    colspec = "@{}l S[table-format=-1.3] S[table-format=-1.3]" + " S[table-format=-1.3] c l" * n_var + "@{}"
    return tabular(colspec, header, body, [file, bayes.file], note, pre=[r"\setlength{\tabcolsep}{3pt}"])
