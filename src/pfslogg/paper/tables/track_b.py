"""Tables of the mixtures of experts (track B; see :mod:`pfslogg.paper.tables` for what every table
shares), each from the one summary of kind ``moe`` (:mod:`pfslogg.mixtures`):

* ``moe_summary``: per mixture and noise level (largest training size) the R^2 of its global model, of
  the mixture, their paired difference with its interval, and of the oracle routing; then per noise
  level the bar (best global model) and the best deployable prediction against it;
* ``moe_rho``: for the shown mixture, per gate and routing (soft, hard) its R^2 and the oracle-gain
  retention rho with its interval, per noise level.
"""

from ...errors import InputError
from ...evaluation import verdict
from .common import MacroText, by_kind, ci_cell, label_tex, table, tabular, tex_escape

ROUTINGS = ("soft", "hard")
GATES = {"gate": "classifier, spectrum (own gate)", "windows": "classifier, windows",
         "regression": "regression, spectrum", "regression_windows": "regression, windows",
         "template": r"$\chi^2$ template", "mixture": "mixture-MSE (regression-optimal)"}


def _summary(name, sources):
    (src,) = by_kind(name, sources, {"moe": (1, 1)})["moe"]
    m = src.metrics
    for key in ("variants", "noise_levels", "bar", "thesis"):
        if key not in m:
            raise InputError(f"table {name}: {src.file} has no {key!r} (a summary of pfslogg.mixtures)")
    return src.file, m


def _levels(m):
    return [f"nl{format(float(v), 'g').replace('.', 'p')}" for v in m["noise_levels"]]


def _largest(cells):
    return max(cells, key=lambda k: int(k[1:])) if cells else None


@table("moe_summary")
def moe_summary_tex(sources, macros):
    file, m = _summary("moe_summary", sources)
    levels = _levels(m)
    heads = "".join(f" & \\multicolumn{{4}}{{c}}{{noise level \\num{{{macros.cell(file, 'noise_levels', i)}}}}}"
                    for i in range(len(levels)))
    rules = "".join(f"\\cmidrule(lr){{{2 + 4 * i}-{5 + 4 * i}}}" for i in range(len(levels)))
    sub = " & {global} & {mixture} & {$\\Delta R^2$ [interval]} & {oracle}" * len(levels)
    header = [heads + " \\\\", rules, "Mixture" + sub + " \\\\"]
    body = []
    for v, entry in m["variants"].items():
        cells = []
        for lv in levels:
            by_size = entry["cells"].get(lv) or {}
            n = _largest(by_size)
            if n is None:
                cells += ["{--}"] * 4
                continue
            path = ("variants", v, "cells", lv, n)
            c = by_size[n]
            diff = macros.cell(file, *path, "main", "diff")
            cells += [macros.cell(file, *path, "global", "r2"), macros.cell(file, *path, "main", "r2"),
                      f"{{{diff} {ci_cell(macros, file, *path, 'main', 'diff_ci')[1:-1]}}}",
                      macros.cell(file, *path, "oracle", "r2") if "oracle" in c else "{--}"]
        body.append(f"{label_tex(entry['label'])} & " + " & ".join(cells) + " \\\\")
        body.append(f"\\quad\\footnotesize against {label_tex(entry['global_label'])}" + " & " * (4 * len(levels))
                    + " \\\\[1pt]")
    body.append(r"\midrule")
    bar_cells, best_cells, diff_cells = [], [], []
    for lv in levels:
        n = _largest(m["bar"].get(lv) or {})
        t = (m["thesis"].get(lv) or {}).get(n) if n else None
        if n is None or t is None:
            bar_cells += ["{--}"] * 4
            best_cells += ["{--}"] * 4
            continue
        bar_cells += ["", macros.cell(file, "bar", lv, n, "r2"), "", ""]
        best_cells += ["", macros.cell(file, "thesis", lv, n, "r2"),
                       f"{{{macros.cell(file, 'thesis', lv, n, 'diff_bar')} "
                       f"{ci_cell(macros, file, 'thesis', lv, n, 'diff_bar_ci')[1:-1]}}}", ""]
    body.append("Bar: best global model & " + " & ".join(bar_cells) + " \\\\")
    body.append("Best deployable mixture or conditioned model, against the bar & " + " & ".join(best_cells) + " \\\\")
    note = ["R^2 on the test set, mean over seeds, largest training size; Delta R^2 = mixture - global model,",
            "paired bootstrap over the same test spectra; oracle: the expert of the true bin (not deployable);",
            "bar: the best of the global models of config moe.bar; best deployable: any mixture's own or soft/hard",
            "routing, selected on the test set (optimistic), with its difference to the bar."]
    colspec = "@{}l" + " S[table-format=-1.3] S[table-format=-1.3] c S[table-format=-1.3]" * len(levels) + "@{}"
    return tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{3pt}"])


@table("moe_rho")
def moe_rho_tex(sources, macros):
    file, m = _summary("moe_rho", sources)
    levels = _levels(m)
    shown = m.get("shown_variant")
    if shown not in m["variants"]:
        raise InputError(f"table moe_rho: {file}: the shown mixture (config moe.figure_variant) has no results")
    entry = m["variants"][shown]
    heads = "".join(f" & \\multicolumn{{3}}{{c}}{{noise level \\num{{{macros.cell(file, 'noise_levels', i)}}}}}"
                    for i in range(len(levels)))
    rules = "".join(f"\\cmidrule(lr){{{3 + 3 * i}-{5 + 3 * i}}}" for i in range(len(levels)))
    header = [f"\\multicolumn{{{2 + 3 * len(levels)}}}{{c}}{{{label_tex(entry['label'])}}} \\\\", r"\midrule",
              " &" + heads + " \\\\", rules,
              "Gate & routing" + " & {$R^2$} & {$\\rho$} & {interval}" * len(levels) + " \\\\"]
    gates = []
    for lv in levels:
        n = _largest(entry["cells"].get(lv) or {})
        for r in (entry["cells"][lv][n]["routings"] if n else {}):
            g = r.partition("_")[2]
            if g not in gates:
                gates.append(g)
    gates.sort(key=lambda g: list(GATES).index(g) if g in GATES else len(GATES))
    body = []
    for g in gates:
        for routing in ROUTINGS:
            cells = []
            for lv in levels:
                n = _largest(entry["cells"].get(lv) or {})
                r = entry["cells"][lv][n]["routings"].get(f"{routing}_{g}") if n else None
                if r is None:
                    cells += ["{--}"] * 3
                    continue
                path = ("variants", shown, "cells", lv, n, "routings", f"{routing}_{g}")
                cells += [macros.cell(file, *path, "r2"), macros.cell(file, *path, "rho"),
                          ci_cell(macros, file, *path, "rho_ci")]
            label = tex_escape(GATES.get(g, g)) if routing == "soft" and not GATES.get(g, "").startswith("$") \
                else (GATES.get(g, g) if routing == "soft" else "")
            body.append(f"{label} & {routing} & " + " & ".join(cells) + " \\\\")
    oracle = []
    for lv in levels:
        n = _largest(entry["cells"].get(lv) or {})
        path = ("variants", shown, "cells", lv, n)
        oracle += [macros.cell(file, *path, "oracle", "r2"), "{1}", "{}"] if n else ["{--}"] * 3
    body += [r"\midrule", "Oracle & true bin & " + " & ".join(oracle) + " \\\\"]
    note = ["rho = (R^2_gate - R^2_global) / (R^2_oracle - R^2_global): the share of the oracle routing's gain",
            "over the global model that a deployable gate keeps; paired bootstrap intervals over the test spectra."]
    colspec = "@{}l l" + " S[table-format=-1.3] S[table-format=-1.2] c" * len(levels) + "@{}"
    return tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


def _verdict(ci, gain="a gain", loss="a loss", none="no difference"):
    """Words for a difference by its interval (:func:`pfslogg.evaluation.verdict`): above zero, below
    zero, or containing it."""
    words = {"gain": gain, "loss": loss, "no difference": none}
    word = verdict(ci)
    return "no interval" if word is None else f"{words[word]} beyond its interval"


@table("moe_findings")
def moe_findings_tex(sources, macros):
    """The findings of Track B as sentences (an ``itemize``): every number a macro of the summary, every
    qualitative word (a gain, a loss, beats, falls short) chosen from the numbers' intervals."""
    file, m = _summary("moe_findings", sources)
    t = MacroText("moe_findings", file, macros)
    items, shown = [], m.get("shown_variant")
    blocks = [b for b in ("at_lowest", "at_default") if b in m]
    if len(blocks) == 2 and m["at_lowest"]["noise_level"] == m["at_default"]["noise_level"]:
        blocks = ["at_default"]
    for b in blocks:
        at = m[b]
        where = f"At noise level {t.num(b, 'noise_level')} with \\num{{{macros.get(file, b, 'size')}}} training spectra"
        v = at["variants"].get(shown)
        if v is not None:
            label = label_tex(m["variants"][shown]["label"])
            glabel = label_tex(m["variants"][shown]["global_label"])
            p = (b, "variants", shown)
            text = (f"{where}, the {label} reaches $R^2={t.num(*p, 'main', 'r2')}$ against "
                    f"{t.num(*p, 'global', 'r2')} for one global {glabel}: $\\Delta R^2={t.num(*p, 'main', 'diff')}$ "
                    f"{t.ci(*p, 'main', 'diff_ci')}, {_verdict(v['main']['diff_ci'])}.")
            if "oracle" in v:
                text += (f" Routed by the true parameters (the oracle, not deployable) the same experts reach "
                         f"{t.num(*p, 'oracle', 'r2')}, {_verdict(v['oracle']['diff_ci'])} over the global model.")
                soft, hard = v["routings"].get("soft_gate"), v["routings"].get("hard_gate")
                if soft and hard and soft.get("rho") is not None and hard.get("rho") is not None:
                    if v["oracle"]["gain_above_zero"]:
                        text += (f" The mixture's gate keeps $\\rho={t.num(*p, 'routings', 'soft_gate', 'rho')}$ "
                                 f"{t.ci(*p, 'routings', 'soft_gate', 'rho_ci')} of the oracle's gain with soft "
                                 f"routing and {t.num(*p, 'routings', 'hard_gate', 'rho')} "
                                 f"{t.ci(*p, 'routings', 'hard_gate', 'rho_ci')} with hard routing.")
                    else:
                        text += (" The oracle's gain is not above zero beyond its interval, so the retention "
                                 "$\\rho$ of a gate is undefined here.")
            items.append(text)
        thesis = at.get("thesis")
        if thesis:
            vlabel = label_tex(m["variants"][thesis["variant"]]["label"])
            routing = "its own routing" if thesis["routing"] == "main" else \
                tex_escape(thesis["routing"].replace("_", " routing, gate "))
            bar = at.get("bar", {})
            verdict = _verdict(thesis["diff_bar_ci"], gain="it beats the best global model",
                               loss="it falls short of the best global model",
                               none="it is not distinguishable from the best global model")
            items.append(f"{where}, the best deployable mixture or conditioned model ({vlabel}, {routing}; chosen on "
                         f"the test set, so optimistic) reaches {t.num(b, 'thesis', 'r2')} against {t.num(b, 'thesis', 'bar_r2')} for "
                         f"the best global model ({label_tex(bar.get('label', thesis['bar']))}): "
                         f"$\\Delta R^2={t.num(b, 'thesis', 'diff_bar')}$ {t.ci(b, 'thesis', 'diff_bar_ci')}, "
                         f"{verdict}.")
        for w, sh in (at.get("shares") or {}).items():
            axes = " and ".join({"M_H": "[M/H]", "T_eff": "$T_\\mathrm{eff}$"}.get(a, tex_escape(a)) for a in sh["axes"])
            if sh.get("share_percent") is None or not sh.get("defined"):
                continue   # a share of a gain that is not above zero means nothing
            items.append(f"{where}, oracle routing by bins of {axes} alone keeps "
                         f"{t.num(b, 'shares', w, 'share_percent')}\\,\\% "
                         f"{t.ci(b, 'shares', w, 'share_percent_ci')} of the oracle's gain of the "
                         f"{label_tex(m['variants'][sh['reference']]['label'])}.")
        for w, c in (at.get("conditioning") or {}).items():
            if c.get("share_percent") is None or not c.get("defined"):
                continue
            items.append(f"{where}, {label_tex(m['variants'][w]['label'])} gets "
                         f"{t.num(b, 'conditioning', w, 'share_percent')}\\,\\% "
                         f"{t.ci(b, 'conditioning', w, 'share_percent_ci')} of the gain of the "
                         f"{label_tex(m['variants'][c['mixture']]['label'])} over their global model.")
        for w, v in at["variants"].items():
            if w == shown or m["variants"][w]["class"] != "moe":
                continue
            items.append(f"{where}, the {label_tex(m['variants'][w]['label'])} reaches "
                         f"{t.num(b, 'variants', w, 'main', 'r2')} against {t.num(b, 'variants', w, 'global', 'r2')} "
                         f"for one global {label_tex(m['variants'][w]['global_label'])}: "
                         f"{_verdict(v['main']['diff_ci'])} ($\\Delta R^2={t.num(b, 'variants', w, 'main', 'diff')}$ "
                         f"{t.ci(b, 'variants', w, 'main', 'diff_ci')}).")
    if not items:
        raise InputError(f"table moe_findings: {file} holds no comparison at the default or the lowest noise level")
    lines = ["% Generated by pfslogg.paper -- do not edit. Values are macros of numbers.tex; the words that",
             "% qualify them (a gain, a loss, beats, falls short) follow from their intervals.",
             f"% Sources:", f"%   {file}", r"\begin{itemize}"]
    lines += [f"\\item {it}" for it in items] + [r"\end{itemize}", ""]
    return "\n".join(lines)
