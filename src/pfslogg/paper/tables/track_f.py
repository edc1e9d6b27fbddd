"""Tables of the estimators (track F; see :mod:`pfslogg.paper.tables` for what every table shares):

* ``r2_by_snr``: R^2 per estimator and SNR bin with confidence intervals (one ``estimator``
  cell per estimator: one training run, whose seed the table prints), plus the Bayes ceiling
  (``bayes`` files, optional) with its intervals and the median Cramer-Rao bound for unbiased
  estimators (``fisher`` files, optional);
* ``leaderboard``: R^2 of every estimator and training size at every noise level, with the
  interval over seeds (one ``experiment`` aggregate);
* ``errors``: R^2, RMSE, MAE, bias and slope of every estimator at the aggregate's
  ``default_noise_level`` and largest size (one ``experiment`` aggregate).
* ``search_edges``: sentences saying whether each hyper-parameter that a search chose lies inside
  its searched grid or on its edge, at which noise levels (``experiment`` aggregates with
  ``searches``: the benchmark and the sensitivity search).
"""

import math

from ...errors import InputError
from ..numbers import is_number
from .common import (bin_key, by_kind, ci_cell, label_tex, models_macro, noise_level_key, object_items, read_experiment,
                     series, table, tabular, tex_escape)


@table("r2_by_snr")
def r2_by_snr_tex(sources, macros):
    """R^2 per estimator and SNR bin (booktabs + siunitx ``tabular``, no float).

    Rows: the estimators (``estimator`` cells, one per estimator), best overall R^2 first, each
    with a second row holding its confidence intervals; then the Bayes ceiling (R^2 of the
    posterior mean of each ``bayes`` file, with its intervals) and the Cramer-Rao bound (median
    R^2_max of each ``fisher`` file; it binds unbiased estimators only). Columns: the SNR bins (the
    union over the files, by edges), then all spectra. Each row is one training run: the seed of
    the cells is printed in the head (beside each estimator where the cells' seeds differ). The
    table is wide: the includer fits it to the text width (``\\fittable``)."""
    groups = by_kind("r2_by_snr", sources, {"estimator": (1, None), "bayes": (0, None), "fisher": (0, None)})
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
            bins.setdefault(bin_key(b, s.file), (s.file, i))
    bin_keys = sorted(bins)

    header_bins = []
    for bk in bin_keys:
        file, i = bins[bk]
        lo, hi = macros.get(file, "snr_bins", i, "lo"), macros.get(file, "snr_bins", i, "hi")
        header_bins.append(f"{{\\num{{{lo}}}--\\num{{{hi}}}}}")
    nb = len(bin_keys)
    seeds = {s.metrics.get("seed") for s in rows}
    seed_macros = {s.file: macros.get(s.file, "seed") for s in rows}
    one_seed = len(seeds) == 1 and None not in seed_macros.values()
    head = f"{{one run, seed \\num{{{seed_macros[rows[0].file]}}}}}" if one_seed else ""
    header = [f"{head} & \\multicolumn{{{nb}}}{{c}}{{$R^2$ per bin of SNR}} & \\\\",
              f"\\cmidrule(lr){{2-{nb + 1}}}",
              "Estimator & " + " & ".join(header_bins) + " & {All} \\\\"]

    def r2_rows(s, label):
        index = {bin_key(b, s.file): i for i, b in enumerate(s.metrics.get("snr_bins", []))}
        r2, ci = [], []
        for bk in bin_keys:
            i = index.get(bk)
            r2.append(macros.cell(s.file, "snr_bins", i, "r2") if i is not None else "{--}")
            ci.append(ci_cell(macros, s.file, "snr_bins", i, "r2_ci") if i is not None else "{}")
        r2.append(macros.cell(s.file, "overall", "r2"))
        ci.append(ci_cell(macros, s.file, "overall", "r2_ci"))
        return [f"{label} & " + " & ".join(r2) + " \\\\", " & " + " & ".join(ci) + " \\\\[2pt]"]

    body = []
    for s in rows:
        label = label_tex(s.metrics.get("label") or s.metrics.get("estimator"))
        if not one_seed and seed_macros[s.file] is not None:
            label += f" (seed \\num{{{seed_macros[s.file]}}})"
        body += r2_rows(s, label)
    for s in groups["bayes"]:
        body += [r"\midrule", *r2_rows(s, "Bayes ceiling")]

    for s in groups["fisher"]:
        index = {bin_key(b, s.file): i for i, b in enumerate(s.metrics.get("snr_bins", []))}
        cells = [macros.cell(s.file, "snr_bins", index[bk], "r2max_median") if bk in index
                 else "{--}" for bk in bin_keys]
        cells.append(macros.cell(s.file, "overall", "r2max_median"))
        body.append(r"\midrule")
        body.append("Cram\\'er--Rao bound & " + " & ".join(cells) + " \\\\")

    note = ["R^2 = 1 - MSE / Var_prior(log g) in every bin (one denominator for all);",
            "SNR = median(flux / (noise_level * error)) of each spectrum;",
            "each estimator: one training run (the seed in the head), not a mean over seeds;",
            "second row of each estimator: bootstrap confidence interval of R^2;",
            "Bayes ceiling: R^2 of the posterior mean of log g (the least MSE of any estimator), with its interval;",
            "last row: the median Cramer-Rao bound R^2_max of the spectra of each bin (unbiased estimators only)."]
    colspec = "@{}l" + " S[table-format=-1.3]" * (nb + 1) + "@{}"
    files = [s.file for s in rows] + [s.file for s in groups["bayes"]] + [s.file for s in groups["fisher"]]
    return tabular(colspec, header, body, files, note, pre=[r"\setlength{\tabcolsep}{4pt}"])


@table("leaderboard")
def leaderboard_tex(sources, macros):
    """The track-F leaderboard (one ``experiment`` aggregate): rows estimator x training size,
    columns the noise levels; each cell the mean R^2 over seeds with, in a second row, its
    interval over seeds. Estimators in configuration order, sizes as listed."""
    ex = read_experiment("leaderboard", sources)
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
            ci = [ci_cell(macros, file, *p, "r2_ci_seeds") if p else "{}" for p in paths]
            first = label_tex(label) if k == 0 else ""
            body.append(f"{first} & {macros.cell(file, 'sizes', k)} & " + " & ".join(r2) + " \\\\")
            body.append(" & & " + " & ".join(ci) + " \\\\[2pt]")
    note = ["R^2 = 1 - MSE / Var_prior(log g) on the test set, mean over seeds;",
            "second row: t interval of the mean over seeds;",
            "noise level: factor on the instrument's noise (1 = nominal)."]
    colspec = "@{}l S[table-format=6.0]" + " S[table-format=-1.3]" * nl + "@{}"
    return tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


_ERROR_COLUMNS = (("r2", "{$R^2$}"), ("rmse", "{RMSE (dex)}"), ("mae", "{MAE (dex)}"),
                  ("bias", "{bias (dex)}"), ("slope", "{slope}"))


@table("errors")
def errors_tex(sources, macros):
    """Errors of every estimator (one ``experiment`` aggregate) at its ``default_noise_level``
    and largest training size: R^2, RMSE, MAE, bias (mean of predicted - true) and slope of
    predicted against true log g, each the mean over seeds."""
    ex = read_experiment("errors", sources)
    file, m = ex.file, ex.metrics
    level = m.get("default_noise_level")
    if not is_number(level):
        raise InputError(f"table errors: {file} needs a numeric 'default_noise_level'")
    if noise_level_key(level) not in {noise_level_key(x) for x in ex.noise_levels}:
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
        body.append(f"{label_tex(label)} & " + " & ".join(cells) + " \\\\")
    note = ["Mean over seeds; bias = mean(predicted - true log g);",
            "slope: least-squares slope of predicted against true log g (1 = no shrinkage)."]
    colspec = ("@{}l S[table-format=-1.3] S[table-format=1.3] S[table-format=1.3] "
               "S[table-format=-1.3] S[table-format=1.3]@{}")
    return tabular(colspec, header, body, [file], note)


# Names of the hyper-parameters searched, in the words of the text (others: their key, escaped).
_HYPER_WORDS = {"n_components": "number of principal components", "alpha": "penalty $\\alpha$",
                "learning_rate": "learning rate", "num_leaves": "number of leaves per tree"}
_SIDE_WORDS = {"lowest": "the smallest", "highest": "the largest"}


def search_edge_sentences(name, src, macros):
    """Sentences on where each search of one ``experiment`` aggregate (its ``searches``, made by
    :func:`pfslogg.experiments.search_edges`) chose its hyper-parameters: per estimator and
    hyper-parameter, inside the searched range in every cell, or the smallest / largest value
    searched at which noise levels (and training sizes, where not all): the words follow from the
    stored edges, every number is a macro. Returns (sentences, whether any choice lies on an edge)."""
    file, m = src.file, src.metrics
    searches = m.get("searches")
    if not isinstance(searches, dict) or not searches:
        raise InputError(f"table {name}: {file} has no 'searches' (pfslogg.experiments.search_edges): "
                         "no estimator of the experiment searched over its hyper-parameters")
    ex = read_experiment(name, [src])
    level_index = {noise_level_key(v): j for j, v in enumerate(ex.noise_levels)}
    size_index = {int(v): k for k, v in enumerate(ex.sizes)}
    labels = dict(ex.estimators)
    out, any_edge = [], False
    for est, by_level in object_items(searches, f"{file}: searches"):
        params, cells = [], []
        for tag, by_size in object_items(by_level, f"{file}: searches.{est}"):
            for size_key, s in object_items(by_size, f"{file}: searches.{est}.{tag}"):
                path = ex.path(est, *_cell_of(m, est, tag, size_key, file))
                if path is None or not isinstance(s, dict) or not isinstance(s.get("edge"), dict):
                    raise InputError(f"{file}: searches.{est}.{tag}.{size_key} has no cell or no 'edge'")
                cells.append((tag, size_key, s))
                params += [p for p in s["edge"] if p not in params]
        label = label_tex(labels.get(est, est))
        for p in params:
            word = _HYPER_WORDS.get(p, tex_escape(p))
            found = {"lowest": {}, "highest": {}}
            for tag, size_key, s in cells:
                edge = s["edge"].get(p)
                for side in ("lowest", "highest"):
                    if edge in (side, "both"):
                        level, size = _cell_of(m, est, tag, size_key, file)
                        found[side].setdefault(level_index[noise_level_key(level)], []).append(
                            (size_index[int(size)], tag, size_key))
            if not found["lowest"] and not found["highest"]:
                tag, size_key, _ = cells[0]
                out.append(f"{label}: the {word} chosen lies inside the searched range "
                           f"({_num(macros, file, name, 'searches', est, tag, size_key, 'lowest', p)} to "
                           f"{_num(macros, file, name, 'searches', est, tag, size_key, 'highest', p)}) "
                           f"in every cell.")
                continue
            any_edge = True
            for side in ("lowest", "highest"):
                if not found[side]:
                    continue
                where = []
                for j in sorted(found[side]):
                    hits = sorted(found[side][j])
                    text = f"\\num{{{macros.cell(file, 'noise_levels', j)}}}"
                    if len(hits) < len(ex.sizes):
                        text += " (" + series([f"\\num{{{macros.cell(file, 'sizes', k)}}}" for k, *_ in hits]) + \
                                " training spectra)"
                    where.append(text)
                _, tag, size_key = found[side][min(found[side])][0]
                value = _num(macros, file, name, "searches", est, tag, size_key, side, p)
                levels = "noise level" if len(where) == 1 else "noise levels"
                out.append(f"{label}: at {levels} {series(where)} the {word} chosen is {_SIDE_WORDS[side]} "
                           f"searched, {value}, so that its optimum may lie beyond the grid.")
    return out, any_edge


def _cell_of(m, est, tag, size_key, file):
    cell = m.get("cells", {}).get(est, {}).get(tag, {}).get(size_key)
    if not isinstance(cell, dict):
        raise InputError(f"{file}: searches.{est}.{tag}.{size_key} has no cell in 'cells'")
    return cell["noise_level"], cell["size"]


def _num(macros, file, name, *path):
    v = macros.get(file, *path)
    if v is None:
        raise InputError(f"table {name}: {file} has no number at {'.'.join(map(str, path))}")
    return f"\\num{{{v}}}"


@table("search_edges")
def search_edges_tex(sources, macros):
    """Whether the hyper-parameters each search chose lie inside the searched grid (``experiment``
    aggregates with ``searches``: the benchmark, the sensitivity search), as sentences: one first
    that says whether the conclusions depend on a truncated search, then one per estimator and
    hyper-parameter (:func:`search_edge_sentences`)."""
    name = "search_edges"
    groups = by_kind(name, sources, {"experiment": (1, None)})
    body, any_edge = [], False
    for src in groups["experiment"]:
        sentences, edge = search_edge_sentences(name, src, macros)
        body += sentences
        any_edge |= edge
    head = ("At some noise levels a chosen hyper-parameter is the smallest or the largest value searched: "
            "there the conclusion depends on the truncated search." if any_edge else
            "The best setting lies inside the searched grid at every noise level and training size, "
            "for every estimator and hyper-parameter searched.")
    files = [s.file for s in groups["experiment"]]
    lines = [f"% Generated by pfslogg.paper ({name}) -- do not edit. Values are macros of numbers.tex; the",
             "% words (inside the grid, smallest or largest searched) follow from the stored search edges.",
             "% Sources:", *[f"%   {f}" for f in files], " ".join([head, *body]), ""]
    return "\n".join(lines)


@table("benchmark_models")
def benchmark_models_tex(sources, macros):
    """``\\def\\BenchmarkModels{...}``: the labels of the benchmark grid's estimators in configuration
    order, for the sentences that name the baselines."""
    ex = read_experiment("benchmark_models", sources)
    return models_macro("BenchmarkModels", "the estimators of the benchmark grid", [ex],
                        [label for _, label in ex.estimators])
