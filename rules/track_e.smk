# Track E: linear shortcuts and the error channel -- its cells are ordinary experiment cells
# (rules/experiments.smk: experiments linearity and error_channel; a variant's own `sigma` overrides
# noise.sigma for its cells); one rule compares the error-channel cells with the Bayes ceiling.

from pfslogg.tracks import track_e as TRACK_E


use rule check_ceiling as check_error_channel_ceiling with:
    input:
        bayes=W.BAYES,
        fisher=W.FISHER,
        cells=TRACK_E.ceiling_cells(config),
    output:
        TRACK_E.CEILING,
    params:
        p=get_params("check_error_channel_ceiling"),
    log:
        "logs/check_error_channel_ceiling.log",


rule track_e:
    """Track E: Ridge and the MLP with a linear shortcut across noise levels, and Ridge reading sigma (stored:
    the leak; estimated) against the Bayes ceiling (results, figures, tables, paper/build/track_e.pdf)."""
    input:
        W.track_outputs(config, "e"),
