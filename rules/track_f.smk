# Track F: baselines and design principles -- the benchmark grid across noise levels, training
# sizes and seeds, the claimed pitfalls tested, hyper-parameter sensitivity (rules/experiments.smk).

TRACK_F_FIGURES = [f for f, t in W.FIGURE_TRACKS.items() if t == "f"]


rule track_f:
    """Track F: baselines (Ridge, PCA + Ridge, LightGBM, template fit) across noise levels, sizes and
    seeds; figures, leaderboard, paper/build/track_f.pdf."""
    input:
        get_aggregates("f"),
        expand(W.FIGURE, figure=TRACK_F_FIGURES),
        expand(W.TABLE, table=["leaderboard", "errors", "r2_by_snr"]),
        W.PDF.format(doc="track_f"),
