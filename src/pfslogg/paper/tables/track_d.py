"""Tables of Track D (see :mod:`pfslogg.paper.tables` for what every table shares):

* ``denoising``: per denoiser, noise level and strength s, the improvement of wMAE and of MSE over the
  noisy input (%, paired bootstrap interval over the test spectra), from the ``denoising`` summary of rule
  summarize_denoising (the metrics of each transform cell, seed 0);
* ``downstream``: per estimator of experiment ``downstream`` (raw and on denoised spectra), R^2 and its
  interval, the paired difference of each on denoised spectra to the same estimator on raw spectra with
  its verdict, and R^2 - R^2_Bayes against the Bayes ceiling of the raw spectra (the aggregate and the
  ``efficiency`` file of rule check_denoised_ceiling; :func:`.track_e.against_ceiling_tex`);
* ``downstream_findings``: the same comparisons as sentences (:func:`.track_e.findings_tex`).
"""

from ...errors import InputError
from .common import by_kind, ci_cell, label_tex, table, tabular
from .track_e import against_ceiling_tex, findings_tex


@table("denoising")
def denoising_tex(sources, macros):
    """Rows: each denoiser at each noise level and strength; columns: wMAE and MSE of the noisy input and
    of the denoised spectra, and their improvements (%) with paired intervals."""
    src = by_kind("denoising", sources, {"denoising": (1, 1)})["denoising"][0]
    file, m = src.file, src.metrics
    transforms = m.get("transforms")
    if not isinstance(transforms, dict) or not transforms:
        raise InputError(f"table denoising: {file} has no 'transforms'")
    header = [r"Denoiser & {noise level} & {$s$} & {wMAE} & {improvement (\%)} & {interval} & "
              r"{MSE improvement (\%)} & {interval} \\"]
    body = []
    for t, entry in transforms.items():
        first = True
        for tag, at in entry["by_noise"].items():
            rows = at["strengths"]
            base = ("transforms", t, "by_noise", tag)
            body.append(" & ".join([label_tex(entry["label"]) if first else "",
                                    f"\\num{{{macros.cell(file, 'transforms', t, 'by_noise', tag, 'noise_level')}}}",
                                    "{noisy}", macros.cell(file, *base, "identity", "wmae"), "{}", "{}", "{}", "{}"])
                        + r" \\")
            first = False
            for i, _ in enumerate(rows):
                row = (*base, "strengths", i)
                body.append(" & ".join(["", "", macros.cell(file, *row, "strength"), macros.cell(file, *row, "wmae"),
                                        macros.cell(file, *row, "wmae_improvement"),
                                        ci_cell(macros, file, *row, "wmae_improvement_ci"),
                                        macros.cell(file, *row, "mse_improvement"),
                                        ci_cell(macros, file, *row, "mse_improvement_ci")]) + r" \\")
        body.append(r"\addlinespace")
    if body and body[-1] == r"\addlinespace":
        body.pop()
    note = ["wMAE = mean over pixels of |x - x0| / max(sigma, floor) against the noiseless test spectra; improvement:",
            "100 (1 - mean metric of the denoised / mean metric of the noisy input), % (positive: closer to the",
            "noiseless spectrum); intervals: paired bootstrap over the test spectra; seed 0 of each denoiser."]
    colspec = "@{}l S[table-format=1.1] S[table-format=1.2] S[table-format=1.3] S[table-format=-2.1] c " \
              "S[table-format=-2.1] c@{}"
    return tabular(colspec, header, body, [file], note)


@table("downstream")
def downstream_tex(sources, macros):
    """Each estimator on raw and on denoised spectra against its reference and the raw Bayes ceiling."""
    return against_ceiling_tex("downstream", sources, macros, sigma_column=False)


@table("downstream_findings")
def downstream_findings_tex(sources, macros):
    """Each estimator on denoised spectra against the same estimator on raw spectra, as sentences whose
    verdict words are the aggregate's (gain, loss, no difference from the paired interval)."""
    return findings_tex("downstream_findings", sources, macros)
