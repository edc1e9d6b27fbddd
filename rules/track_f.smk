# Track F: baselines and design principles -- the benchmark grid across noise levels, training
# sizes and seeds, the claimed pitfalls tested, hyper-parameter sensitivity (rules/experiments.smk).

rule track_f:
    """Track F: baselines (Ridge, PCA + Ridge, LightGBM, template fit, MLP) across noise levels, sizes and
    seeds; figures, leaderboard, paper/build/track_f.pdf."""
    input:
        W.track_outputs(config, "f"),
