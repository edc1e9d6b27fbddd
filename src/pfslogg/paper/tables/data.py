"""The data-set table (tracks A and C; see :mod:`pfslogg.paper.tables` for what every table shares):

* ``datasets``: sizes, magnitudes and SNR of the data sets (``dataset`` files).
"""

from ...errors import InputError
from .common import by_kind, range_cell, table, tabular, tex_escape


_SPLIT_LABELS = {"train": "Training", "val": "Validation", "test": "Test"}


@table("datasets")
def datasets_tex(sources, macros):
    """The data-set table: per split (training, validation, test; ``dataset`` files) its size,
    magnitude range and the median and 5th/95th percentiles of its SNR."""
    rows = by_kind("datasets", sources, {"dataset": (1, None)})["dataset"]
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
        cells = [macros.cell(s.file, "n"), range_cell(macros, s.file, "mag_range")]
        cells += [macros.cell(s.file, k) for k in ("snr_median", "snr_p05", "snr_p95")]
        body.append(f"{label} & " + " & ".join(cells) + " \\\\")
    note = ["SNR = median over pixels of flux / sigma (noise level 1) of each spectrum;",
            "magnitudes drawn uniformly over the range given."]
    colspec = "@{}l S[table-format=6.0] c S[table-format=2.1] S[table-format=2.1] S[table-format=2.1]@{}"
    return tabular(colspec, header, body, [s.file for s in rows], note)
