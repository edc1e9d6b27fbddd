"""Sentences of the main paper's discussion (see :mod:`pfslogg.paper.tables` for what every table
shares): every number a macro of the results file, every word that states a direction (below, above,
largest where, a gain, a loss) chosen from the numbers and their intervals, as Track B's findings
are (:mod:`.track_b`), so that the discussion cannot contradict the results.

* ``discussion_ceilings`` (one ``efficiency`` file, Track C): the best estimator against the Bayes
  ceiling over all test spectra and at either end of the SNR range, where the gap is largest, and
  the R^2 of the mean Cramer-Rao bound (for unbiased estimators) against the Bayes ceiling in the
  faintest bin;
* ``discussion_moe`` (one ``moe`` file, Track B): per noise level of the summary, the shown mixture
  against its global model, its oracle routing, and the best deployable mixture or conditioned
  model against the best global model.

Estimators are named by their labels (``labels`` of the efficiency file; unnamed without it), never by
their variant ids; mixtures by their labels.
"""

from ...errors import InputError
from .common import MacroText, bin_key, by_kind, label_tex, table


def _interval(ci):
    return (ci[0], ci[1]) if isinstance(ci, list) and len(ci) == 2 and None not in ci else (None, None)


def _side(ci, gain, loss, none):
    """``gain`` if the interval lies above zero, ``loss`` if below, else ``none``."""
    lo, hi = _interval(ci)
    if lo is None:
        return none
    return gain if lo > 0 else (loss if hi < 0 else none)


def _best(b):
    """The estimator with the highest R^2 in bin (or overall) ``b``."""
    models = b.get("models") or {}
    if not models:
        return None
    return max(models, key=lambda e: models[e]["r2"])


@table("discussion_ceilings")
def discussion_ceilings_tex(sources, macros):
    """The best estimator against the ceilings (one ``efficiency`` file), as sentences."""
    name = "discussion_ceilings"
    (src,) = by_kind(name, sources, {"efficiency": (1, 1)})["efficiency"]
    file, m = src.file, src.metrics
    bins, overall = m.get("snr_bins"), m.get("overall")
    if not isinstance(bins, list) or not bins or not isinstance(overall, dict) or not m.get("best"):
        raise InputError(f"table {name}: {file} needs 'snr_bins', 'overall' and 'best' (pfslogg.ceilings.efficiency)")
    for b in bins:
        bin_key(b, file)
    num = MacroText(name, file, macros)
    best = m["best"]
    o = overall["models"][best]
    lo_model, hi_model = _interval(o.get("r2_ci"))
    lo_bayes, hi_bayes = _interval(overall.get("bayes_r2_ci"))
    if hi_model is not None and lo_bayes is not None and hi_model < lo_bayes:
        verdict = "the two intervals are disjoint"
    elif lo_model is not None and hi_bayes is not None and lo_model > hi_bayes:
        verdict = "above the ceiling beyond both intervals, which would be a bug that the workflow rejects"
    else:
        verdict = "the two intervals overlap"
    label = (m.get("labels") or {}).get(best)
    who = f"the best estimator, {label_tex(label)}," if label else "the best estimator"
    out = [f"Over all test spectra {who} reaches $R^2={num('overall', 'models', best, 'r2')}$ "
           f"{num.ci('overall', 'models', best, 'r2_ci')}, a fraction "
           f"$\\mathcal{{E}}_\\mathrm{{Bayes}}={num('best_eta_bayes')}$ of the Bayes ceiling "
           f"$R^2_\\mathrm{{Bayes}}={num('overall', 'bayes_r2')}$ {num.ci('overall', 'bayes_r2_ci')}: {verdict}."]

    scored = [(i, b, _best(b)) for i, b in enumerate(bins) if _best(b) is not None]
    if scored:
        gaps = [b["bayes_r2"] - b["models"][e]["r2"] for _, b, e in scored]
        k = max(range(len(gaps)), key=gaps.__getitem__)
        (i0, b0, e0), (i1, b1, e1) = scored[0], scored[-1]

        def at(i, e):
            return (f"{num('snr_bins', i, 'models', e, 'r2')} against "
                    f"{num('snr_bins', i, 'bayes_r2')} (SNR {num('snr_bins', i, 'lo')}--{num('snr_bins', i, 'hi')})")

        if len(scored) == 1:
            where = "in its one bin of SNR"
        elif k == 0:
            where = "in the faintest bin"
        elif k == len(scored) - 1:
            where = "in the brightest bin"
        else:
            ik = scored[k][0]
            where = (f"at intermediate SNR, in the bin of SNR {num('snr_bins', ik, 'lo')}--"
                     f"{num('snr_bins', ik, 'hi')}")
        trend = ""
        if 0 < k < len(scored) - 1:   # at either end the place of the largest gap says which end's is larger
            trend = (", and larger in the faintest bin than in the brightest" if gaps[0] > gaps[-1] else
                     ", and smaller in the faintest bin than in the brightest" if gaps[0] < gaps[-1] else "")
        out.append(f"The best estimator of each bin of SNR reaches {at(i0, e0)} in the faintest bin and "
                   f"{at(i1, e1)} in the brightest: the share of the prior variance that the spectra would "
                   f"allow an estimator to explain but the best one leaves unexplained, "
                   f"$R^2_\\mathrm{{Bayes}}-R^2$, is largest {where}{trend}.")

        crlb = b0.get("crlb_mean_r2")
        lo_b, hi_b = _interval(b0.get("bayes_r2_ci"))
        if crlb is not None and lo_b is not None and macros.get(file, "snr_bins", i0, "crlb_mean_r2") is not None:
            side = ("below the Bayes ceiling beyond its interval" if crlb < lo_b else
                    "above the Bayes ceiling beyond its interval" if crlb > hi_b else
                    "within the interval of the Bayes ceiling")
            above = [e for e, x in b0["models"].items() if x["r2"] > crlb]
            n_models = len(b0["models"])
            scorers = ("no estimator scores above it" if not above else
                   "every estimator scores above it" if len(above) == n_models else
                   "some estimators score above it")
            text = (f"In the faintest bin the $R^2$ of the mean Cram\\'er--Rao bound, "
                    f"{num('snr_bins', i0, 'crlb_mean_r2')}, lies {side}, and {scorers}")
            text += (": they are biased toward the prior mean, and the bound binds unbiased estimators only."
                     if above else ".")
            out.append(text)
    return _fragment(name, file, " ".join(out))


@table("discussion_moe")
def discussion_moe_tex(sources, macros):
    """What the shown mixture of experts achieved per noise level (one ``moe`` file), as sentences."""
    name = "discussion_moe"
    (src,) = by_kind(name, sources, {"moe": (1, 1)})["moe"]
    file, m = src.file, src.metrics
    num = MacroText(name, file, macros)
    shown = m.get("shown_variant")
    blocks = [b for b in ("at_lowest", "at_default") if isinstance(m.get(b), dict)]
    if len(blocks) == 2 and m["at_lowest"].get("noise_level") == m["at_default"].get("noise_level"):
        blocks = ["at_default"]
    out = []
    for b in blocks:
        at = m[b]
        which = "the default noise level" if b == "at_default" else "the lowest noise level of the comparison"
        head = f"At {which}, {num(b, 'noise_level')}, with {num(b, 'size')} training spectra,"
        parts = []
        v = (at.get("variants") or {}).get(shown)
        if v is not None and shown in (m.get("variants") or {}):
            label = label_tex(m["variants"][shown]["label"])
            glabel = label_tex(m["variants"][shown]["global_label"])
            p = (b, "variants", shown)
            verb = _side(v["main"].get("diff_ci"), "gains over", "loses to", "does not differ beyond its interval from")
            parts.append(f"the {label} {verb} one global {glabel} ($\\Delta R^2={num(*p, 'main', 'diff')}$ "
                         f"{num.ci(*p, 'main', 'diff_ci')})")
            if "oracle" in v:
                overb = _side(v["oracle"].get("diff_ci"), "would gain over it beyond the interval",
                              "would lose to it beyond the interval",
                              "would differ from it by nothing beyond the interval")
                parts.append(f"routed by the true parameters (the oracle, not deployable), the same experts {overb} "
                             f"($\\Delta R^2={num(*p, 'oracle', 'diff')}$ {num.ci(*p, 'oracle', 'diff_ci')})")
        thesis = at.get("thesis")
        if thesis:
            tverb = _side(thesis.get("diff_bar_ci"), "beats", "falls short of",
                          "is not distinguishable from")
            parts.append(f"the best deployable mixture or conditioned model {tverb} the best global model "
                         f"($\\Delta R^2={num(b, 'thesis', 'diff_bar')}$ {num.ci(b, 'thesis', 'diff_bar_ci')})")
        if parts:
            body = "; ".join(parts[:-1]) + ("; and " if len(parts) > 1 else "") + parts[-1]
            out.append(f"{head} {body}.")
    if not out:
        raise InputError(f"table {name}: {file} holds no comparison at the default or the lowest noise level")
    return _fragment(name, file, " ".join(out))


def _fragment(name, file, text):
    lines = [f"% Generated by pfslogg.paper ({name}) -- do not edit. Values are macros of numbers.tex; the",
             "% words that state a direction follow from the numbers and their intervals.",
             "% Sources:", f"%   {file}", text, ""]
    return "\n".join(lines)
