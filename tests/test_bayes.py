"""The Bayes (posterior-mean) ceiling: exact on a linear-Gaussian toy, independent of chunking and
precision, converged in the grid spacing, above the estimators, and equal to an MCMC sampler's
posterior on the same interpolated model."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pfslogg import PARAMS
from pfslogg.ceilings.bayes import (PosteriorAccumulator, bayes_ceiling, grid_axes, grid_chunks, grid_posterior,
                                    log_posterior, normalized_templates, posterior_moments)
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.evaluation import prior_variance, summarize

from conftest import DEFAULT_NOISE, TINY_RANGES, make_fake_grid

EVALUATION = {"snr_bins": [2.0, 4.5, 10.0, 35.0], "bootstrap": 200, "confidence": 0.95}
VAR = prior_variance(*TINY_RANGES["log_g"])


def _toy(n_spec=25, n_pix=40, m=4001, lo=1.0, hi=5.0, seed=0):
    """Templates a + b * theta on a midpoint grid of [lo, hi]; spectra with Gaussian noise."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 1.5, n_pix), rng.normal(0.0, 0.05, n_pix)
    grid = lo + (np.arange(m) + 0.5) * (hi - lo) / m
    truth = np.concatenate([rng.uniform(lo, hi, n_spec - 3), [lo + 0.01, hi - 0.02, 0.5 * (lo + hi)]])
    sigma = rng.uniform(0.02, 0.3, (n_spec, 1)) * rng.uniform(0.5, 1.5, n_pix)
    y = a + b * truth[:, None] + sigma * rng.standard_normal((n_spec, n_pix))
    return y, sigma, a + b * grid[:, None], grid, (a, b, lo, hi)


def test_linear_gaussian_toy_equals_the_closed_form():
    """Uniform prior x Gaussian likelihood linear in theta: a truncated-normal posterior."""
    y, sigma, templates, grid, (a, b, lo, hi) = _toy()
    post = posterior_moments(y, sigma, templates, grid, chunk=500)
    w = sigma ** -2.0
    prec = (w * b * b).sum(1)
    mu = (w * b * (y - a)).sum(1) / prec
    s = prec ** -0.5
    tn = stats.truncnorm((lo - mu) / s, (hi - mu) / s, loc=mu, scale=s)
    assert np.abs(post["mean"] - tn.mean()).max() < 1e-3 * tn.std().min()
    np.testing.assert_allclose(post["sd"], tn.std(), rtol=1e-3)
    # broad and narrow posteriors both occur, some cut by the prior's edges
    assert s.min() < 0.1 < 0.5 < s.max()
    assert np.abs(tn.mean() - mu).max() > 0.1
    # a Gaussian prior (log_prior) moves the mean as the closed form says
    post = posterior_moments(y, sigma, templates, grid, log_prior=-0.5 * (grid - 3.0) ** 2 / 0.5 ** 2)
    prec2 = prec + 1 / 0.5 ** 2
    mu2 = (prec * mu + 3.0 / 0.5 ** 2) / prec2
    tn2 = stats.truncnorm((lo - mu2) * prec2 ** 0.5, (hi - mu2) * prec2 ** 0.5, loc=mu2, scale=prec2 ** -0.5)
    assert np.abs(post["mean"] - tn2.mean()).max() < 1e-3 * tn2.std().min()


def test_chunking_and_precision_do_not_change_the_posterior(tiny_instrument_grid, tiny_dataset):
    y, sigma, templates, grid, _ = _toy(m=500)
    whole = posterior_moments(y, sigma, templates, grid, chunk=len(grid))
    for chunk in (7, 64):
        part = posterior_moments(y, sigma, templates, grid, chunk=chunk)
        for k in ("mean", "sd", "n_eff", "log_evidence"):
            np.testing.assert_allclose(part[k], whole[k], rtol=1e-10, atol=1e-12)
    # a zero prior (-inf) on the first chunks is the same as leaving those templates out
    cut = grid >= 2.0
    zero = posterior_moments(y, sigma, templates, grid, log_prior=np.where(cut, 0.0, -np.inf), chunk=7)
    kept = posterior_moments(y, sigma, templates[cut], grid[cut], chunk=64)
    np.testing.assert_allclose(zero["mean"], kept["mean"], rtol=1e-9)
    np.testing.assert_allclose(zero["sd"], kept["sd"], rtol=1e-6)
    # float32 matrix products against float64, on spectra of the tiny grid (4096 pixels, SNR up to ~40)
    interp = GridInterpolator(read_grid(tiny_instrument_grid, fields=("flux",)))
    flux, sigma = NoisyView(SpectraSet(tiny_dataset), 1.0, noise_seed=3).load(dtype=np.float64)
    flux, sigma = flux[:60], sigma[:60]
    out = {dt: grid_posterior(interp, flux, sigma, TINY_RANGES, points_per_axis={"T_eff": 20, "log_g": 16,
                                                                                   "M_H": 8}, dtype=dt)
           for dt in (np.float32, np.float64)}
    diff = np.abs(out[np.float32]["mean"] - out[np.float64]["mean"])
    assert diff.max() < 1e-3 and np.median(diff / out[np.float64]["sd"]) < 1e-3, diff.max()
    np.testing.assert_allclose(out[np.float32]["sd"], out[np.float64]["sd"], rtol=0.02, atol=1e-3)


def test_grid_templates_are_the_data_sets_flux(tmp_path):
    """The separable interpolation of the parameter grid equals GridInterpolator's (as data sets
    use it), and points that need a missing node (a hole) are left out."""
    path = make_fake_grid(tmp_path / "g.h5", n_pixels=256, holes=[(5, 0, 2, 0), (5, 1, 2, 0)])
    interp = GridInterpolator(read_grid(path, fields=("flux",)))
    ranges = {"T_eff": [3750.0, 6000.0], "log_g": [0.5, 2.0], "M_H": [-0.25, 0.75], "a_M": [0.0, 0.0]}
    axes = grid_axes(ranges, points_per_axis={"T_eff": 9, "log_g": 5, "M_H": 7})
    theta, flux = map(np.concatenate, zip(*grid_chunks(interp, axes, chunk=50)))
    mesh = np.stack(np.meshgrid(*[axes[p] for p in PARAMS], indexing="ij"), axis=-1).reshape(-1, 4)
    covered = interp.covered(mesh)
    assert 0 < len(theta) == covered.sum() < len(mesh)
    assert set(map(tuple, theta)) == set(map(tuple, mesh[covered]))
    np.testing.assert_allclose(flux, normalized_templates(interp, theta), rtol=2e-6, atol=2e-6)
    # spacing: points = ceil(range / step); a fixed parameter keeps its value
    axes = grid_axes(ranges, spacing={"T_eff": 100.0, "log_g": 0.4, "M_H": 0.3})
    assert [len(axes[p]) for p in PARAMS] == [23, 4, 4, 1] and axes["a_M"].tolist() == [0.0]
    assert axes["log_g"].tolist() == pytest.approx([0.6875, 1.0625, 1.4375, 1.8125])
    with pytest.raises(InputError, match="spacing.M_H"):
        grid_axes(ranges, spacing={"T_eff": 100.0, "log_g": 0.4})
    with pytest.raises(InputError, match="exactly one"):
        grid_axes(ranges)


def test_other_parameters_are_the_weighted_means_over_the_templates(coarse_instrument_grid):
    """The posterior mean and sd of T_eff and M_H from the accumulator (grid_posterior, and
    posterior_moments in small chunks) are the brute-force weighted moments over the same explicit
    templates, and log g's numbers are those of an accumulator asked for log g alone, bit for bit."""
    interp = GridInterpolator(read_grid(coarse_instrument_grid, fields=("flux",)))
    axes = grid_axes(TINY_RANGES, points_per_axis={"T_eff": 9, "log_g": 6, "M_H": 5})
    theta, templates = map(np.concatenate, zip(*grid_chunks(interp, axes, chunk=60)))
    rng = np.random.default_rng(4)
    truth = np.column_stack([rng.uniform(*TINY_RANGES[p], 12) for p in PARAMS])
    clean = normalized_templates(interp, truth).astype(float)
    sigma = clean * rng.uniform(0.05, 0.3, (12, 1))                     # SNR ~3-20: broad and narrow posteriors
    y = clean + sigma * rng.standard_normal(clean.shape)
    chi2 = (((y[:, None, :] - templates[None].astype(float)) / sigma[:, None, :]) ** 2).sum(axis=-1)   # (N, M)
    w = np.exp(-0.5 * (chi2 - chi2.min(axis=1, keepdims=True)))
    w /= w.sum(axis=1, keepdims=True)
    n_eff = 1.0 / (w * w).sum(axis=1)
    assert n_eff.min() < 3 and n_eff.max() > 20
    grid = grid_posterior(interp, y, sigma, TINY_RANGES, points_per_axis={"T_eff": 9, "log_g": 6, "M_H": 5},
                          chunk=60, dtype=np.float64, refine=False)
    explicit = posterior_moments(y, sigma, templates, theta[:, 1], chunk=37, theta=theta, others=["T_eff", "M_H"])
    assert set(grid["params"]) == set(explicit["params"]) == {"T_eff", "M_H"}     # a_M is fixed: absent
    for p in ("T_eff", "log_g", "M_H"):
        t = theta[:, PARAMS.index(p)]
        mean = w @ t
        sd = np.sqrt(np.einsum("nm,nm->n", w, (t - mean[:, None]) ** 2))
        for out in (grid, explicit):
            got = out if p == "log_g" else out["params"][p]
            np.testing.assert_allclose(got["mean"], mean, rtol=1e-9, atol=1e-9 * np.ptp(t), err_msg=p)
            np.testing.assert_allclose(got["sd"], sd, rtol=1e-6, atol=1e-7 * np.ptp(t), err_msg=p)
    # log g: the same bits with or without the other parameters' sums
    alone = posterior_moments(y, sigma, templates, theta[:, 1], chunk=37)
    assert alone["params"] == {}
    for k in ("mean", "sd", "n_eff", "log_evidence", "chi2_min"):
        np.testing.assert_array_equal(alone[k], explicit[k])
    with pytest.raises(InputError, match="need theta"):
        posterior_moments(y, sigma, templates, theta[:, 1], others=["T_eff"])
    with pytest.raises(InputError, match="besides log_g"):
        PosteriorAccumulator(y, sigma, others=["log_g"])


def test_r2_bayes_converges_and_tops_the_template_fit(tiny_instrument_grid, tiny_dataset):
    """Halving the spacing moves R^2_Bayes by less than its bootstrap interval; the posterior mean
    scores at least the template fit's R^2 on the same noisy spectra (within the interval)."""
    from pfslogg.estimators import FitContext, make_estimator
    from pfslogg.evaluation import evaluate

    interp = GridInterpolator(read_grid(tiny_instrument_grid, fields=("flux",)))
    test = SpectraSet(tiny_dataset)
    runs = {}
    for name, step in (("coarse", 1.0), ("fine", 0.5)):
        spacing = {"T_eff": 100.0 * step, "log_g": 0.4 * step, "M_H": 0.1 * step}
        runs[name], per = bayes_ceiling(interp, test, 1.0, 11, TINY_RANGES, EVALUATION, VAR,
                                        {"spacing": spacing, "chunk": 1000}, threads=2)
    coarse, fine = runs["coarse"]["overall"], runs["fine"]["overall"]
    lo, hi = fine["r2_ci"]
    print(f"R2_Bayes: {coarse['r2']:.4f} (2,300 templates) -> {fine['r2']:.4f} [{lo:.4f}, {hi:.4f}] (18,000)")
    assert abs(fine["r2"] - coarse["r2"]) < min(fine["r2"] - lo, hi - fine["r2"])
    for c, f in zip(runs["coarse"]["snr_bins"], runs["fine"]["snr_bins"]):
        assert abs(f["r2"] - c["r2"]) < min(f["r2"] - f["r2_ci"][0], f["r2_ci"][1] - f["r2"]), f["lo"]
    assert runs["fine"]["grid"]["n_templates"] == 45 * 20 * 20
    assert 0.9 < runs["fine"]["chi2_min_per_pixel_median"] < 1.1   # sigma is right: chi2/pixel ~ 1
    assert set(per) == {"log_g", "snr", "T_eff", "M_H", "post_mean", "post_sd", "n_eff", "method", "is_n_eff", "post_mean_T_eff",
                        "post_sd_T_eff", "post_mean_M_H", "post_sd_M_H"} and (per["post_sd"] > 0).all()
    # T_eff and M_H: each against its own Bayes ceiling, from the same posterior
    labels = runs["fine"]["labels"]
    assert list(labels) == ["T_eff", "M_H"] and runs["fine"]["nuisance"] == ["T_eff", "M_H"]
    for p in ("T_eff", "M_H"):
        lab = labels[p]
        assert lab["var_prior"] == pytest.approx(np.ptp(TINY_RANGES[p]) ** 2 / 12)
        truth = test.params[p].to_numpy(float)
        assert lab["overall"] == {**summarize(truth, per[f"post_mean_{p}"], lab["var_prior"], n_resamples=200),
                                  "post_sd_mean": pytest.approx(per[f"post_sd_{p}"].mean()),
                                  "post_sd_median": pytest.approx(np.median(per[f"post_sd_{p}"]))}
        assert 0 < lab["overall"]["r2"] <= 1 and lab["overall"]["r2_ci"][0] <= lab["overall"]["r2"]
        assert [b["lo"] for b in lab["snr_bins"]] == [b["lo"] for b in runs["fine"]["snr_bins"]]
        assert (per[f"post_sd_{p}"] > 0).all()
        print(f"R2_Bayes {p}: {lab['overall']['r2']:.4f} {lab['overall']['r2_ci']}")
    assert labels["T_eff"]["overall"]["r2"] > 0.9
    view = NoisyView(test, 1.0, noise_seed=11)
    est = make_estimator("template", {}).fit(None, None, FitContext(grid=str(tiny_instrument_grid),
                                                                     ranges=TINY_RANGES))
    scores, _ = evaluate(est, view, VAR, EVALUATION["snr_bins"], n_resamples=200)
    print(f"template fit R2 {scores['overall']['r2']:.4f}")
    assert scores["overall"]["r2"] <= hi
    assert fine["r2"] > 0.5


@pytest.fixture(scope="module")
def coarse_sets(coarse_instrument_grid, tmp_path_factory):
    """Training (800) and test (300) spectra of the 512-pixel fake grid, default noise."""
    d = tmp_path_factory.mktemp("bayes_sets")
    noise = dict(DEFAULT_NOISE, mag=[19.5, 23.0])
    simulate_dataset(coarse_instrument_grid, d / "train.h5", 800, TINY_RANGES, seed=1, noise=noise, chunk_size=400)
    simulate_dataset(coarse_instrument_grid, d / "test.h5", 300, TINY_RANGES, seed=2, noise=noise, chunk_size=300)
    return d / "train.h5", d / "test.h5"


def test_no_estimator_beats_the_bayes_ceiling(coarse_instrument_grid, coarse_sets):
    """Ridge (trained on 800 spectra) and the template fit score below R^2_Bayes within the
    intervals, overall and in every SNR bin."""
    from pfslogg.estimators import FitContext, make_estimator
    from pfslogg.evaluation import evaluate

    train_path, test_path = coarse_sets
    interp = GridInterpolator(read_grid(coarse_instrument_grid, fields=("flux",)))
    test = SpectraSet(test_path)
    bayes, _ = bayes_ceiling(interp, test, 1.0, 5, TINY_RANGES, EVALUATION, VAR,
                             {"spacing": {"T_eff": 50.0, "log_g": 0.2, "M_H": 0.05}}, threads=2)
    view = NoisyView(test, 1.0, noise_seed=5)
    train = NoisyView(SpectraSet(train_path), 1.0, rng_seed=0)
    ctx = FitContext(grid=str(coarse_instrument_grid), ranges=TINY_RANGES)
    for cls, hyper in (("ridge", {"alphas": [0.1, 10.0, 1000.0]}), ("template", {})):
        est = make_estimator(cls, hyper).fit(train, view if cls == "ridge" else None, ctx)
        scores, _ = evaluate(est, view, VAR, EVALUATION["snr_bins"], n_resamples=200)
        print(f"{cls}: R2 {scores['overall']['r2']:.3f}, Bayes {bayes['overall']['r2']:.3f}")
        assert scores["overall"]["r2"] <= bayes["overall"]["r2_ci"][1]
        by_bin = {b["lo"]: b for b in bayes["snr_bins"]}
        for b in scores["snr_bins"]:
            assert b["r2"] <= by_bin[b["lo"]]["r2_ci"][1], (cls, b["lo"])


def test_the_posterior_equals_an_mcmc_sampler(tmp_path):
    """emcee on the same interpolated, mean-normalised model (T_eff and log g free, M_H fixed)
    gives the grid's posterior mean and sd of log g within its sampling error."""
    emcee = pytest.importorskip("emcee")
    path = make_fake_grid(tmp_path / "g.h5", n_pixels=256)
    ranges = {"T_eff": [4000.0, 5500.0], "log_g": [1.5, 4.5], "M_H": [0.25, 0.25], "a_M": [0.0, 0.0]}
    data = tmp_path / "d.h5"
    simulate_dataset(path, data, 10, ranges, seed=3, noise=dict(DEFAULT_NOISE, mag=[18.5, 21.5]), chunk_size=12)
    interp = GridInterpolator(read_grid(path, fields=("flux",)))
    flux, sigma = NoisyView(SpectraSet(data), 1.0, noise_seed=9).load(dtype=np.float64)
    grid = grid_posterior(interp, flux, sigma, ranges, spacing={"T_eff": 5.0, "log_g": 0.01})
    lo = np.array([ranges[p][0] for p in PARAMS])
    hi = np.array([ranges[p][1] for p in PARAMS])
    free = [PARAMS.index("T_eff"), PARAMS.index("log_g")]
    rng = np.random.default_rng(0)
    z = []
    for y, s in zip(flux, sigma):
        log_prob = log_posterior(interp, y, s, lo, hi, free)

        walkers = 64   # many walkers per (vectorised) call, few calls
        start = lo[free] + rng.uniform(0, 1, (walkers, 2)) * (hi - lo)[free]
        sampler = emcee.EnsembleSampler(walkers, 2, log_prob, vectorize=True)
        sampler.random_state = np.random.RandomState(int(rng.integers(1 << 31))).get_state()
        sampler.run_mcmc(start, 1000)
        chain = sampler.get_chain(discard=300)[:, :, 1]                # (steps, walkers) of log g
        tau = max(1.0, float(emcee.autocorr.integrated_time(chain[:, :, None], quiet=True)[0]))
        n_eff = chain.size / tau
        m, sd = chain.mean(), chain.std()
        z.append(((m - grid["mean"][len(z)]) / (sd / np.sqrt(n_eff)), sd / grid["sd"][len(z)], n_eff))
    z = np.array(z)
    print("grid: sd", np.round(grid["sd"], 3), "n_eff", np.round(grid["n_eff"]), "| emcee: z of the means",
          np.round(z[:, 0], 2), "sd ratios", np.round(z[:, 1], 3), "n_eff", z[:, 2].astype(int))
    assert np.abs(z[:, 0]).max() < 4.5 and np.sqrt(np.mean(z[:, 0] ** 2)) < 2.0
    assert np.abs(z[:, 1] - 1).max() < 0.1


def test_bayes_ceiling_refuses_noise_level_zero(tiny_instrument_grid, tiny_dataset):
    interp = GridInterpolator(read_grid(tiny_instrument_grid, fields=("flux",)))
    with pytest.raises(InputError, match="needs noise"):
        bayes_ceiling(interp, SpectraSet(tiny_dataset), 0.0, 1, TINY_RANGES, EVALUATION, VAR,
                      {"spacing": {"T_eff": 500.0, "log_g": 1.0, "M_H": 0.5}})


def test_command_writes_kind_bayes(tiny_instrument_grid, tiny_dataset, tmp_path):
    from pfslogg.cli import main

    params = {"params": TINY_RANGES, "noise_level": 1.0, "test_noise_seed": 11, "evaluation": EVALUATION,
              "bayes": {"spacing": {"T_eff": 250.0, "log_g": 0.5, "M_H": 0.25, "a_M": 0.05}, "chunk": 100,
                        "block": 128, "dtype": "float32"}}
    out, per = tmp_path / "bayes.json", tmp_path / "per.csv"
    assert main(["compute-bayes-ceiling", "--params", json.dumps(params), "--grid", str(tiny_instrument_grid),
                 "--test", str(tiny_dataset), "--out", str(out), "--per-spectrum", str(per)]) == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "bayes" and doc["metrics"]["n"] == 200 and doc["metrics"]["grid"]["n_templates"] == 288
    lo, hi = doc["metrics"]["overall"]["r2_ci"]
    assert lo <= doc["metrics"]["overall"]["r2"] <= hi
    assert per.read_text().splitlines()[0] == ("log_g,snr,T_eff,M_H,post_mean,post_sd,n_eff,method,is_n_eff,"
                                               "post_mean_T_eff,post_sd_T_eff,post_mean_M_H,post_sd_M_H")
    assert set(doc["metrics"]["labels"]) == {"T_eff", "M_H"}   # a_M is fixed: no ceiling of its own
    # the table's posterior means are what the metrics scored
    y = NoisyView(SpectraSet(tiny_dataset), 1.0, noise_seed=11).logg
    pred = pd.read_csv(per)["post_mean"].to_numpy()
    assert summarize(y, pred, VAR, n_resamples=200)["r2"] == pytest.approx(doc["metrics"]["overall"]["r2"], abs=1e-5)
    # the block size (spectra per pass) does not change the numbers
    params["bayes"]["block"] = 4096
    assert main(["compute-bayes-ceiling", "--params", json.dumps(params), "--grid", str(tiny_instrument_grid),
                 "--test", str(tiny_dataset), "--out", str(tmp_path / "b2.json"),
                 "--per-spectrum", str(tmp_path / "p2.csv")]) == 0
    np.testing.assert_allclose(np.loadtxt(tmp_path / "p2.csv", delimiter=",", skiprows=1),
                               np.loadtxt(per, delimiter=",", skiprows=1), rtol=1e-3, atol=1e-5)


def _bayes_results(path, r2=0.97, confidence=0.95):
    """A results file of kind 'bayes' on the SNR bins of test_plots' synthetic cells."""
    from test_plots import SNR_EDGES, write

    bins = [{"lo": lo, "hi": hi, "snr_median": (lo * hi) ** 0.5, "n": 200, "r2": r2 - 0.5 / lo,
             "r2_ci": [r2 - 0.5 / lo - 0.02, r2 - 0.5 / lo + 0.02], "post_sd_mean": 0.3, "n_eff_median": 50.0}
            for lo, hi in zip(SNR_EDGES[:-1], SNR_EDGES[1:])]
    return write(path, "bayes", {"n": 2000, "var_prior": 4 / 3, "confidence": confidence,
                                 "overall": {"n": 2000, "r2": r2 - 0.1, "r2_ci": [r2 - 0.12, r2 - 0.08]},
                                 "snr_bins": bins})


def test_the_figure_draws_the_bayes_ceiling_as_the_ceiling(tmp_path):
    from pfslogg.plots import render
    from test_plots import SNR_PARAMS, make_cell, make_fisher

    inputs = [make_cell(tmp_path / "ridge.json", "ridge"), make_fisher(tmp_path / "fisher.json"),
              _bayes_results(tmp_path / "bayes.json")]
    fig = render("r2_vs_snr", inputs, SNR_PARAMS)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0] == "Bayes ceiling (posterior mean) (all: 0.87)"
    assert labels[1:3] == ["Cramér–Rao bound (unbiased), 10–90 % of per-spectrum bounds",
                           "Cramér–Rao bound (unbiased), median of per-spectrum bounds"]
    assert labels[3].startswith("Ridge")
    line = fig.axes[0].get_lines()[0]
    assert line.get_linestyle() == "-" and line.get_ydata()[0] == pytest.approx(0.97 - 0.5 / 2)
    with pytest.raises(InputError, match=r"bayes\.json: intervals computed at confidence 0\.9, the figure asks"):
        render("r2_vs_snr", inputs[:2] + [_bayes_results(tmp_path / "bayes.json", confidence=0.9)], SNR_PARAMS)


def test_r2_by_snr_table_has_a_bayes_row(tmp_path):
    from pfslogg import paper
    from test_plots import make_cell, make_fisher

    res = tmp_path / "results"
    (res / "track_f").mkdir(parents=True)
    (res / "track_c").mkdir()
    files = [make_cell(res / "track_f/ridge.json", "ridge"), _bayes_results(res / "track_c/bayes.json"),
             make_fisher(res / "track_c/fisher.json")]
    text = paper.table_tex("r2_by_snr", res, [tmp_path / f for f in files])
    rows = [line.split("&")[0].strip() for line in paper.mask_comments(text).splitlines() if "&" in line]
    # the head says that each row is one training run, and which seed (the text quotes means over seeds)
    assert [r for r in rows if r] == ["{one run, seed \\num{\\TrackFRidgeSeed}}", "Estimator", "Ridge",
                                      "Bayes ceiling", "Cram\\'er--Rao bound"]
    assert "\\TrackCBayesSnrBinsOneRtwo" in text and "\\TrackCBayesOverallRtwoCiHi" in text


def bright_stars(grid_path, tmp_path, n, ranges, seed, mag):
    """(interpolator, flux, sigma) of ``n`` bright stars (magnitudes ``mag``) drawn in ``ranges``, fixed noise."""
    data = tmp_path / "bright.h5"
    simulate_dataset(grid_path, data, n, ranges, seed=seed, noise=dict(DEFAULT_NOISE, mag=mag), chunk_size=n)
    interp = GridInterpolator(read_grid(grid_path, fields=("flux",)))
    flux, sigma = NoisyView(SpectraSet(data), 1.0, noise_seed=3).load(dtype=np.float64)
    return interp, flux, sigma


def test_unresolved_posteriors_are_refined_by_importance_sampling(coarse_instrument_grid, tmp_path):
    """Bright stars: a coarse grid (8 templates) cannot resolve their posteriors; importance sampling
    around the ML point gives the posterior mean and sd of a grid fine enough to resolve them."""
    ranges = {"T_eff": [4700.0, 4800.0], "log_g": [2.9, 3.1], "M_H": [0.1, 0.2], "a_M": [0.0, 0.0]}
    interp, flux, sigma = bright_stars(coarse_instrument_grid, tmp_path, 6, ranges, 5, [17.5, 18.5])
    coarse = grid_posterior(interp, flux, sigma, ranges, spacing={"T_eff": 50.0, "log_g": 0.1, "M_H": 0.05})
    assert (coarse["method"] == 1).all() and (coarse["is_n_eff"] > 20).all()
    raw = grid_posterior(interp, flux, sigma, ranges, spacing={"T_eff": 50.0, "log_g": 0.1, "M_H": 0.05}, refine=False)
    assert (raw["n_eff"] < 10).all()
    fine = grid_posterior(interp, flux, sigma, ranges, spacing={"T_eff": 2.0, "log_g": 0.004, "M_H": 0.002},
                          refine=False)
    assert (fine["n_eff"] > 50).all()
    err = coarse["sd"] / np.sqrt(coarse["is_n_eff"])
    assert np.all(np.abs(coarse["mean"] - fine["mean"]) < 4 * err + 1e-3), (coarse["mean"], fine["mean"], err)
    np.testing.assert_allclose(coarse["sd"], fine["sd"], rtol=0.25)
    assert np.abs(raw["mean"] - fine["mean"]).max() > np.abs(coarse["mean"] - fine["mean"]).max()
    # T_eff and M_H from the same weighted draws
    assert set(coarse["params"]) == {"T_eff", "M_H"}
    for p in ("T_eff", "M_H"):
        c, f, r = coarse["params"][p], fine["params"][p], raw["params"][p]
        err = c["sd"] / np.sqrt(coarse["is_n_eff"])
        tol = 4 * err + 1e-3 * np.ptp(ranges[p])
        assert np.all(np.abs(c["mean"] - f["mean"]) < tol), (p, c["mean"], f["mean"], err)
        np.testing.assert_allclose(c["sd"], f["sd"], rtol=0.25, err_msg=p)
        assert not np.any(c["mean"] == r["mean"]), p                          # the grid's moments were replaced


def _refine_reference(interp, y, sigma, ranges, out, n_samples=256, seed=0, first_row=0, batch=64):
    """The importance sampling as it was before it was vectorised (issue 18): one spectrum at a time,
    the likelihood of each draw from the float32 templates, fit and Fisher matrix in pixel space."""
    from pfslogg.ceilings.bayes import IS_SCALE, LOGG, RESOLVED_N_EFF
    from pfslogg.ceilings.fisher import fisher_matrix, jacobian, varied_params
    from pfslogg.ceilings.mlfit import ml_fit

    todo = np.flatnonzero(out["n_eff"] < RESOLVED_N_EFF)
    which = varied_params(ranges)
    cols = [PARAMS.index(p) for p in which]
    lo = np.array([ranges[p][0] for p in PARAMS], float)
    hi = np.array([ranges[p][1] for p in PARAMS], float)
    for a in range(0, len(todo), batch):
        idx = todo[a:a + batch]
        fit = np.clip(ml_fit(interp, y[idx], sigma[idx], out["best_theta"][idx], which)[0], lo, hi)
        cov = np.linalg.inv(fisher_matrix(jacobian(interp, fit, which), sigma[idx])) * IS_SCALE ** 2
        chol = np.linalg.cholesky(cov)
        for j, i in enumerate(idx):
            z = np.random.default_rng([int(seed), 53, int(first_row + i)]).standard_normal((n_samples, len(cols)))
            theta = np.repeat(fit[j][None], n_samples, axis=0)
            theta[:, cols] += z @ chol[j].T
            log_q = -0.5 * np.sum(z * z, axis=1)
            inside = np.all((theta >= lo - 1e-12) & (theta <= hi + 1e-12), axis=1)
            inside[inside] = interp.covered(theta[inside])
            log_w = np.full(n_samples, -np.inf)
            mu = normalized_templates(interp, theta[inside]).astype(float)
            log_w[inside] = -0.5 * np.sum(((y[i] - mu) / sigma[i]) ** 2, axis=1) - log_q[inside]
            w = np.exp(log_w - log_w.max())
            w /= w.sum()
            g = theta[:, LOGG]
            m = float(w @ g)
            out["mean"][i], out["sd"][i] = m, float(np.sqrt(max(w @ (g - m) ** 2, 0.0)))
            out["is_n_eff"][i], out["method"][i] = float(1.0 / np.sum(w * w)), 1
    return out


@pytest.mark.parametrize("window", [5, 4])
def test_vectorised_refinement_equals_the_per_spectrum_loop(coarse_instrument_grid, tmp_path, monkeypatch, window):
    """The batched importance sampling (fit, Fisher matrix and draws from each spectrum's window of
    grid nodes) gives the per-spectrum loop's moments up to round-off: the same draws, the same
    model (float64 there, float32 templates here: ~1e-7 of the flux) -- far below the Monte-Carlo
    error. Window 4 (the start cell alone) sends many draws and some fits outside it, to the
    interpolator: the same again. The blocking changes nothing."""
    import pfslogg.ceilings.bayes as bayes

    monkeypatch.setattr(bayes, "WINDOW", window)
    ranges = {"T_eff": [4600.0, 4900.0], "log_g": [2.8, 3.2], "M_H": [0.05, 0.25], "a_M": [0.0, 0.0]}
    interp, flux, sigma = bright_stars(coarse_instrument_grid, tmp_path, 8, ranges, 7, [17.5, 19.0])
    grid = grid_posterior(interp, flux, sigma, ranges, spacing={"T_eff": 50.0, "log_g": 0.1, "M_H": 0.05}, refine=False)
    assert (grid["n_eff"] < 10).sum() >= 6

    def copy():
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in grid.items()} | {
            "method": np.zeros(len(flux), np.int8), "is_n_eff": np.zeros(len(flux)),
            "params": {p: {k: v.copy() for k, v in m.items()} for p, m in grid["params"].items()}}

    new = bayes.refine_unresolved(interp, flux, sigma, ranges, copy(), first_row=11)
    ref = _refine_reference(interp, flux, sigma, ranges, copy(), first_row=11)
    np.testing.assert_array_equal(new["method"], ref["method"])
    done = ref["method"] == 1
    err = ref["sd"][done] / np.sqrt(ref["is_n_eff"][done])
    assert np.all(np.abs(new["mean"][done] - ref["mean"][done]) < 0.01 * err)
    np.testing.assert_allclose(new["sd"][done], ref["sd"][done], rtol=1e-3)
    np.testing.assert_allclose(new["is_n_eff"][done], ref["is_n_eff"][done], rtol=1e-3)
    np.testing.assert_array_equal(new["mean"][~done], grid["mean"][~done])
    blocked = bayes.refine_unresolved(interp, flux, sigma, ranges, copy(), first_row=11, batch=3)
    for k in ("mean", "sd", "is_n_eff"):
        np.testing.assert_allclose(blocked[k], new[k], rtol=1e-12, atol=0)
    for p in ("T_eff", "M_H"):   # the other parameters: set for the refined spectra, independent of the blocking
        for k in ("mean", "sd"):
            np.testing.assert_allclose(blocked["params"][p][k], new["params"][p][k], rtol=1e-12, atol=0)
            assert not np.any(new["params"][p][k][done] == grid["params"][p][k][done])
            np.testing.assert_array_equal(new["params"][p][k][~done], grid["params"][p][k][~done])


def test_a_fixed_parameter_has_no_ceiling_of_its_own(coarse_instrument_grid, tmp_path):
    """With M_H fixed by the prior only T_eff gets a posterior mean, table columns and a ceiling."""
    ranges = {"T_eff": [4000.0, 5500.0], "log_g": [1.5, 4.5], "M_H": [0.25, 0.25], "a_M": [0.0, 0.0]}
    data = tmp_path / "d.h5"
    simulate_dataset(coarse_instrument_grid, data, 60, ranges, seed=3, noise=dict(DEFAULT_NOISE, mag=[18.5, 21.5]),
                     chunk_size=60)
    ev = {"snr_bins": [2.0, 200.0], "bootstrap": 50, "confidence": 0.95}
    interp = GridInterpolator(read_grid(coarse_instrument_grid, fields=("flux",)))
    metrics, per = bayes_ceiling(interp, SpectraSet(data), 1.0, 5, ranges, ev, prior_variance(*ranges["log_g"]),
                                 {"spacing": {"T_eff": 100.0, "log_g": 0.2}, "chunk": 100})
    assert metrics["nuisance"] == ["T_eff"] and list(metrics["labels"]) == ["T_eff"]
    assert {k for k in per if k.startswith("post_")} == {"post_mean", "post_sd", "post_mean_T_eff", "post_sd_T_eff"}
    lab = metrics["labels"]["T_eff"]
    assert lab["var_prior"] == pytest.approx(1500.0 ** 2 / 12) and 0.5 < lab["overall"]["r2"] <= 1
    assert len(lab["snr_bins"]) == 1 and lab["snr_bins"][0]["n"] == 60
    assert ((per["post_mean_T_eff"] >= 4000) & (per["post_mean_T_eff"] <= 5500)).all()
