# Track F: baselines and design principles -- the benchmark grid across noise levels, training
# sizes and seeds, the claimed pitfalls tested, hyper-parameter sensitivity (rules/experiments.smk).

rule track_f:
    """Track F: the baselines of experiments.benchmark across noise levels, sizes and seeds, the pitfalls,
    the LightGBM search, the template fit against the interpolated ML fit; figures, leaderboard,
    paper/build/track_f.pdf."""
    input:
        W.track_outputs(config, "f"),
