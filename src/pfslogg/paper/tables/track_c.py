"""Tables of the ceilings, their checks and curves (track C; see :mod:`pfslogg.paper.tables` for what
every table shares):

* ``ceiling``: the Cramer-Rao bound (unbiased estimators) per SNR bin (one ``fisher`` file);
* ``calibration``: the ceiling at the original study's SNR points beside its values (one
  ``calibration`` file);
* ``crlb_validation``: var(ML) / CRLB with its interval and the ML bias per maximum-likelihood
  check, and the jump of the bound across grid nodes (one ``crlb_validation`` file);
* ``snr_sweep``: per magnitude of the sweep the median SNR, R^2_max (3D, 4D), the mean-CRLB R^2,
  the Bayes ceiling with its interval, sigma_min and the Schur decay (one ``snr_sweep`` file);
* ``efficiency_by_snr``: R^2_model / R^2_Bayes per estimator and SNR bin, with R^2_Bayes (one
  ``efficiency`` file);
* ``uncertainties``: per estimator that gives a per-star sigma, and for the exact posterior, the accuracy of
  the mean (R^2, RMSE) and the calibration of sigma: coverage of the 68 % and 95 % intervals, sigma against
  the exact posterior sd (median ratio, share within 20 %, rank correlation) (one ``uncertainties`` file).
"""

from ...errors import InputError
from .common import bin_key, by_kind, ci_cell, label_tex, object_items, table, tabular, tex_escape


@table("ceiling")
def ceiling_tex(sources, macros):
    """The Cramer-Rao-bound table (one ``fisher`` file): per SNR bin of the test set (and all
    spectra) the number of spectra, their median SNR, the median and 10th/90th percentiles of
    R^2_max per spectrum, and the ceiling of the mean CRLB."""
    (src,) = by_kind("ceiling", sources, {"fisher": (1, 1)})["fisher"]
    file, m = src.file, src.metrics
    if not isinstance(m.get("snr_bins"), list):
        raise InputError(f"{file}: the Cramer-Rao bound table needs its 'snr_bins'")
    header = [r"{SNR bin} & {$N$} & {median SNR} & \multicolumn{3}{c}{$R^2_\mathrm{CR}$ per spectrum}"
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
        bin_key(b, file)
        lo, hi = macros.get(file, "snr_bins", i, "lo"), macros.get(file, "snr_bins", i, "hi")
        body.append(row(f"\\num{{{lo}}}--\\num{{{hi}}}", "snr_bins", i))
    body += [r"\midrule", row("All", "overall")]
    note = ["R^2_max = 1 - CRLB / Var_prior(log g) per test spectrum, clipped to [0, 1];",
            "CRLB: marginal Cramer-Rao bound on log g (Schur complement over the nuisances);",
            "last column: the R^2 of the bin's mean CRLB (no clipping per spectrum); both bind unbiased",
            "estimators only: the ceiling of every estimator is the Bayes ceiling."]
    colspec = ("@{}l S[table-format=4.0] S[table-format=2.1] S[table-format=1.3] "
               "S[table-format=1.3] S[table-format=1.3] S[table-format=1.3]@{}")
    return tabular(colspec, header, body, [file], note)


@table("calibration")
def calibration_tex(sources, macros):
    """The ceiling-calibration table (one ``calibration`` file): per SNR point, this work's
    median and 10th/90th percentile R^2_max, and the original study's median (for comparison)."""
    (src,) = by_kind("calibration", sources, {"calibration": (1, 1)})["calibration"]
    file, m = src.file, src.metrics
    if not isinstance(m.get("points"), list):
        raise InputError(f"{file}: the ceiling calibration needs its 'points'")
    header = [r"{SNR} & \multicolumn{3}{c}{this work: $R^2_\mathrm{CR}$} & {original study} \\",
              r"\cmidrule(lr){2-4}",
              r" & {median} & {10\,th pct.} & {90\,th pct.} & {median $R^2_\mathrm{CR}$} \\"]
    body = []
    for i, pt in enumerate(m["points"]):
        if not isinstance(pt, dict):
            raise InputError(f"{file}: every entry of 'points' must be an object")
        cells = [macros.cell(file, "points", i, k) for k in
                 ("snr", "r2max_median", "r2max_p10", "r2max_p90", "original")]
        body.append(" & ".join(cells) + " \\\\")
    note = ["Median marginal Cramer-Rao bound R^2_max of parameters drawn from the prior, at the SNR points",
            "of the original study's grid; last column: the original study's values (comparison)."]
    colspec = ("@{}S[table-format=2.1] S[table-format=1.3] S[table-format=1.3] "
               "S[table-format=1.3] S[table-format=1.4]@{}")
    return tabular(colspec, header, body, [file], note)


_METHOD_LABELS = {"cubic": "cubic Hermite", "linear": "multilinear"}
_AXIS_LABELS = {"log_g": r"$\log g$", "T_eff": r"$T_\mathrm{eff}$", "M_H": "[M/H]", "a_M": r"[$\alpha$/M]"}


def _list_of_objects(m, key, file, what):
    v = m.get(key)
    if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
        raise InputError(f"{file}: {what} needs a list of objects {key!r}")
    return v


@table("crlb_validation")
def crlb_validation_tex(sources, macros):
    """The CRLB-validation table (one ``crlb_validation`` file): per maximum-likelihood check (interpolant,
    log g, position in the cell) var(ML) / CRLB with its chi^2 interval and the ML bias; then the jump
    of the per-spectrum bound across the nearest grid node per interpolant and varied axis."""
    (src,) = by_kind("crlb_validation", sources, {"crlb_validation": (1, 1)})["crlb_validation"]
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
                 ci_cell(macros, file, "ml", "rows", i, "ratio_ci"), macros.cell(file, "ml", "rows", i, "bias")]
        body.append(f"{method} & {tex_escape(r.get('position', ''))} & " + " & ".join(cells) + " \\\\")
    jumps = m.get("node_jumps")
    if isinstance(jumps, dict) and jumps:
        body += [r"\midrule",
                 r"Interpolant & {axis} & {$N$} & {median jump} & {90\,th pct.} & {max jump} \\",
                 r"\cmidrule(lr){2-6}"]
        for method, by_axis in object_items(jumps, f"{file}: node_jumps"):
            for k, (axis, _) in enumerate(object_items(by_axis, f"{file}: node_jumps.{method}")):
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
    return tabular(colspec, header, body, [file], note)


@table("snr_sweep")
def snr_sweep_tex(sources, macros):
    """The SNR-sweep table (one ``snr_sweep`` file): per magnitude the median SNR, the median of the
    per-spectrum R^2_max in 3D and 4D, the mean-CRLB R^2 (3D), the Bayes ceiling with its interval,
    and the median sigma_min and Schur decay (3D)."""
    (src,) = by_kind("snr_sweep", sources, {"snr_sweep": (1, 1)})["snr_sweep"]
    file, m = src.file, src.metrics
    rows = _list_of_objects(m, "rows", file, "the SNR sweep")
    header = [r"{mag (AB)} & {median SNR} & \multicolumn{3}{c}{CRLB: $R^2_\mathrm{CR}$} & "
              r"\multicolumn{2}{c}{Bayes ceiling $R^2$} & {$\sigma_{\min}$ (dex)} & {Schur decay} \\",
              r"\cmidrule(lr){3-5}\cmidrule(lr){6-7}",
              r" & & {3D median} & {4D median} & {3D mean CRLB} & {value} & {interval} & {3D median} & {3D median} \\"]
    body = []
    for i, r in enumerate(rows):
        def c(*path):
            return macros.cell(file, "rows", i, *path)
        bayes = c("bayes", "r2")
        cells = [c("mag"), c("snr_median"), c("crlb_3d", "r2max_median"), c("crlb_4d", "r2max_median"),
                 c("crlb_3d", "r2max_mean_crlb"), bayes, ci_cell(macros, file, "rows", i, "bayes", "r2_ci"),
                 c("crlb_3d", "sigma_min_median"), c("crlb_3d", "schur_decay_median")]
        body.append(" & ".join(cells) + " \\\\")
    note = ["Stars on a regular grid of the prior's varied parameters at each magnitude (one noise draw each);",
            "R^2_max = 1 - CRLB / Var_prior per star (median); mean CRLB: 1 - mean(CRLB) / Var_prior;",
            "3D: nuisances T_eff, [M/H]; 4D: also [alpha/M]; Schur decay = marginal / full information on log g;",
            "Bayes: R^2 of the posterior mean with its bootstrap interval (posteriors narrower than the grid",
            "step: importance sampling around the maximum-likelihood point)."]
    colspec = ("@{}S[table-format=2.1] S[table-format=3.1] S[table-format=1.3] S[table-format=1.3] "
               "S[table-format=1.3] S[table-format=1.3] c S[table-format=1.3] S[table-format=1.3]@{}")
    return tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


@table("efficiency_by_snr")
def efficiency_by_snr_tex(sources, macros):
    """Efficiency against the Bayes ceiling (one ``efficiency`` file): rows the estimators (in the
    file's order), columns the SNR bins and all spectra, each cell eta_Bayes = R^2_model / R^2_Bayes;
    a last row gives R^2_Bayes per bin."""
    (src,) = by_kind("efficiency_by_snr", sources, {"efficiency": (1, 1)})["efficiency"]
    file, m = src.file, src.metrics
    bins = _list_of_objects(m, "snr_bins", file, "the efficiency table")
    if not isinstance(m.get("overall"), dict) or not isinstance(m.get("estimators"), list):
        raise InputError(f"{file}: the efficiency table needs 'estimators' and 'overall'")
    for b in bins:
        bin_key(b, file)
    nb = len(bins)
    heads = [f"{{\\num{{{macros.get(file, 'snr_bins', i, 'lo')}}}--\\num{{{macros.get(file, 'snr_bins', i, 'hi')}}}}}"
             for i in range(nb)]
    header = [f" & \\multicolumn{{{nb}}}{{c}}{{$\\mathcal{{E}}_\\mathrm{{Bayes}}$ per bin of SNR}} & \\\\",
              f"\\cmidrule(lr){{2-{nb + 1}}}",
              "Estimator & " + " & ".join(heads) + " & {All} \\\\"]
    paths = [("snr_bins", i) for i in range(nb)] + [("overall",)]
    body = []
    names = m.get("labels") if isinstance(m.get("labels"), dict) else {}
    for name in m["estimators"]:
        cells = [macros.cell(file, *p, "models", name, "eta_bayes") for p in paths]
        body.append(f"{label_tex(names.get(name, name))} & " + " & ".join(cells) + " \\\\")
    body += [r"\midrule", "$R^2_\\mathrm{Bayes}$ & " + " & ".join(macros.cell(file, *p, "bayes_r2") for p in paths)
             + " \\\\"]
    note = ["E_Bayes = R^2 of the model (mean over seeds) / R^2 of the posterior mean on the same test",
            "spectra and noise; 1 = at the Bayes ceiling; last row: R^2_Bayes of each bin."]
    colspec = "@{}l" + " S[table-format=-1.3]" * (nb + 1) + "@{}"
    return tabular(colspec, header, body, [file], note, pre=[r"\setlength{\tabcolsep}{4pt}"])


@table("uncertainties")
def uncertainties_tex(sources, macros):
    """The per-star uncertainty table (one ``uncertainties`` file): a row for the exact posterior, then
    one per estimator (in the file's order), each with R^2 and RMSE of its mean, the coverage of its mean
    +- sigma and +- 1.96 sigma, the lowest and highest one-sigma coverage over the SNR bins, and, against the exact posterior sd of the same spectra, the median ratio,
    the share within 20 % and the rank correlation (all test spectra); with a ``coverage`` file (rule check_coverage)
    also the lowest and highest one-sigma coverage over the SNR bins of the many stars simulated for it (its
    exact-posterior row for the exact posterior; a dash for an estimator it did not check)."""
    groups = by_kind("uncertainties", sources, {"uncertainties": (1, 1), "coverage": (0, 1)})
    (src,) = groups["uncertainties"]
    file, m = src.file, src.metrics
    cov = groups["coverage"][0] if groups["coverage"] else None
    if not isinstance(m.get("estimators"), dict) or not isinstance(m.get("bayes"), dict) \
            or not isinstance(m.get("accuracy"), dict):
        raise InputError(f"{file}: the uncertainty table needs 'bayes', 'estimators' and 'accuracy'")
    many = r" & \multicolumn{2}{c}{many stars}" if cov else ""
    header = [r" & \multicolumn{2}{c}{mean} & \multicolumn{4}{c}{coverage, test stars}" + many + " & "
              r"\multicolumn{4}{c}{against the exact posterior} \\",
              r"\cmidrule(lr){2-3}\cmidrule(lr){4-7}" + (r"\cmidrule(lr){8-9}\cmidrule(lr){10-13}" if cov
                                                      else r"\cmidrule(lr){8-11}"),
              r"Estimator & {$R^2$} & {RMSE (dex)} & {one $\sigma$} & {two $\sigma$} & {bin min} & {bin max} & "
              + (r"{bin min} & {bin max} & " if cov else "") +
              r"{$\sigma$ ratio} & {within a fifth} & {rank corr.} & {KL (nats)} \\"]
    labels = m.get("labels") if isinstance(m.get("labels"), dict) else {}

    def many_stars(key):
        if cov is None:
            return []
        at = ("bayes",) if key == "bayes" else ("estimators", key)
        node = cov.metrics
        for k in at:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return ["{--}", "{--}"]
        return [macros.cell(cov.file, *at, "coverage68_bins", k) for k in ("min", "max")]

    def row(label, key, cal):
        cells = [macros.cell(file, "accuracy", key, k) for k in ("r2", "rmse")]
        cells += [macros.cell(file, *cal, "overall", k) for k in ("coverage68", "coverage95")]
        cells += [macros.cell(file, *cal, "coverage68_bins", k) for k in ("min", "max")]
        cells += many_stars(key)
        if key == "bayes":
            cells += ["{1}", "{1}", "{1}", "{0}"]
        else:
            cells += [macros.cell(file, *cal, "overall", k) for k in ("sd_ratio_median", "within20",
                                                                     "sd_rank_correlation", "kl_median")]
        return f"{label} & " + " & ".join(cells) + " \\\\"

    body = [row("Exact posterior", "bayes", ("bayes",)), r"\midrule"]
    body += [row(label_tex(labels.get(name, name)), name, ("estimators", name)) for name in m["estimators"]]
    note = [f"{m.get('size', '?')} training spectra per learned model, noise level {m.get('noise_level', '?')}; "
            "coverage: share of test stars",
            "whose true log g lies in mean +- sigma (one sigma, 68 %) or +- 1.96 sigma (two sigma, 95 %); the exact "
            "posterior's own mean +- sd is the reference row; bin min, max: the lowest and highest one-sigma coverage "
            "over the SNR bins;",
            *([f"many stars: the same over the SNR bins of the {cov.metrics.get('n', '?')} stars simulated at the test's "
               "magnitudes for the coverage check;"] if cov else []),
            "sigma ratio: median of sigma / posterior sd; KL: median over the stars of KL(N(mean, sigma) || "
            "N(posterior mean, posterior sd))."]
    colspec = "@{}l" + " S[table-format=-1.3]" * (12 if cov else 10) + "@{}"
    return tabular(colspec, header, body, [file] + ([cov.file] if cov else []), note,
                   pre=[r"\setlength{\tabcolsep}{3pt}"])
