"""Per-star uncertainties of log g (pfslogg.uncertainty; issue 17): the checks give the known answers on
Gaussian draws, bad input is named, and the template and ML fits' analytic widths behave as physics says."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.views import NoisyView
from pfslogg import paper
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, make_estimator
from pfslogg.uncertainty import calibration, coverage, pit, predict_with_std

from conftest import DEFAULT_NOISE, TINY_RANGES


def draws(n=20000, scale=1.0, seed=0):
    """True values y ~ N(mean, std) with a per-star std; a claimed std = scale x the true one."""
    rng = np.random.default_rng(seed)
    mean = rng.uniform(1, 5, n)
    std = rng.uniform(0.05, 0.5, n)
    y = mean + std * rng.standard_normal(n)
    snr = rng.uniform(2, 40, n)
    return y, mean, scale * std, snr, std


def test_a_calibrated_gaussian_covers_68_and_95_percent_and_has_a_flat_pit():
    y, mean, std, snr, true = draws()
    assert coverage(y, mean, std, 0.683) == pytest.approx(0.683, abs=0.01)
    assert coverage(y, mean, std, 0.954) == pytest.approx(0.954, abs=0.006)
    cal = calibration(y, mean, std, snr, [2, 10, 40], post_sd=true)
    o = cal["overall"]
    assert o["pit_max_deviation"] < 0.08 and np.allclose(o["pit_histogram"], 0.1, atol=0.008)
    assert o["sd_ratio_median"] == pytest.approx(1.0) and o["within20"] == 1.0
    assert o["sd_rank_correlation"] == pytest.approx(1.0)
    assert [b["n"] for b in cal["snr_bins"]] == [int(np.sum(snr < 10)), int(np.sum(snr >= 10))]


def test_overconfident_and_underconfident_sigmas_are_seen():
    y, mean, std, snr, true = draws(scale=0.5)
    o = calibration(y, mean, std, snr, [2, 40], post_sd=true)["overall"]
    assert o["coverage68"] == pytest.approx(0.383, abs=0.01)     # P(|z| < 0.5)
    h = np.array(o["pit_histogram"])
    assert h[0] > 0.15 and h[-1] > 0.15 and h[4] < 0.07           # U-shaped
    assert o["sd_ratio_median"] == pytest.approx(0.5) and o["within20"] == 0.0
    y, mean, std, snr, true = draws(scale=2.0)
    o = calibration(y, mean, std, snr, [2, 40], post_sd=true)["overall"]
    assert o["coverage68"] == pytest.approx(0.954, abs=0.01)     # P(|z| < 2)
    assert np.array(o["pit_histogram"])[4] > 0.15                  # a hump


def test_an_exact_pit_replaces_the_gaussian_one_and_gives_the_credible_coverage():
    """A posterior that is not Gaussian (a model's own mixture): its CDF at the truth is uniform when it is
    calibrated, whatever its Gaussian summary's coverage; a posterior twice too narrow is U-shaped."""
    y, mean, std, snr, true = draws()
    u = np.random.default_rng(3).uniform(0, 1, len(y))
    o = calibration(y, mean, std, snr, [2, 40], exact_pit=u)["overall"]
    assert o["pit_source"] == "posterior" and np.allclose(o["pit_histogram"], 0.1, atol=0.008)
    assert o["credible68"] == pytest.approx(0.683, abs=0.01) and o["credible95"] == pytest.approx(0.954, abs=0.006)
    assert o["coverage68"] == pytest.approx(0.683, abs=0.01)    # the Gaussian summary's interval, as before
    narrow = norm.cdf((y - mean) / (0.5 * std))
    o = calibration(y, mean, std, snr, [2, 40], exact_pit=narrow)["overall"]
    assert o["credible68"] == pytest.approx(0.383, abs=0.01) and o["pit_histogram"][0] > 0.15
    assert calibration(y, mean, std, snr, [2, 40])["overall"]["pit_source"] == "gaussian"
    with pytest.raises(InputError, match="exact PIT must be one value in"):
        calibration(y, mean, std, snr, [2, 40], exact_pit=u[:-1])


def test_pit_of_a_zero_width_is_a_step():
    assert pit([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("args, match", [
    (([1.0, 2.0], [1.0], [0.1, 0.1]), "equal 1-d shapes"),
    (([1.0, 2.0], [1.0, 2.0], [0.1, -0.1]), "std must be >= 0"),
    (([1.0, 2.0], [1.0, np.nan], [0.1, 0.1]), "must be finite")])
def test_bad_input_is_named(args, match):
    with pytest.raises(InputError, match=match):
        coverage(*args, 0.683)
    with pytest.raises(InputError, match="level"):
        coverage([1.0], [1.0], [0.1], 1.5)
    with pytest.raises(InputError, match="posterior sd must be > 0"):
        calibration([1.0], [1.0], [0.1], [5.0], [2, 40], post_sd=[0.0])


def test_a_model_without_std_is_refused_by_name():
    with pytest.raises(InputError, match="class 'ridge' gives no per-star standard deviation"):
        predict_with_std(make_estimator("ridge"), np.ones((2, 4)), np.ones((2, 4)))


@pytest.fixture(scope="module")
def fits(coarse_instrument_grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("unc") / "test.h5"
    simulate_dataset(coarse_instrument_grid, path, 60, TINY_RANGES, seed=5, noise=DEFAULT_NOISE, chunk_size=64)
    ctx = FitContext(grid=str(coarse_instrument_grid), ranges=TINY_RANGES)
    return SpectraSet(path), {c: make_estimator(c).fit(None, None, ctx) for c in ("template", "mlfit")}


def test_the_ml_fit_width_halves_when_the_noise_halves(fits):
    """The Fisher width scales as the noise (at the same fit): sigma / 2 -> std / 2."""
    test, models = fits
    view = NoisyView(test, 1.0, noise_seed=1)
    rows = np.arange(20)
    flux, sigma = view.read_clean_rows(rows), view.read_rows(rows)[1]   # noiseless: the fit lands on the truth
    mean, std = predict_with_std(models["mlfit"], flux, sigma)
    mean2, std2 = predict_with_std(models["mlfit"], flux, sigma / 2)
    assert np.allclose(mean, mean2, atol=1e-3)
    assert np.all(np.isfinite(std)) and np.all(std > 0)
    assert np.allclose(std2 / std, 0.5, rtol=0.02)
    assert np.array_equal(mean, models["mlfit"].predict(flux, sigma))   # the mean is predict's
    assert np.all(predict_with_std(models["mlfit"], flux, 0 * sigma)[1] == 0)   # no noise: a point


def test_the_template_width_grows_with_the_noise_and_keeps_its_node(fits):
    test, models = fits
    low, high = (NoisyView(test, nl, noise_seed=3) for nl in (0.2, 3.0))
    widths = []
    for view in (low, high):
        flux, sigma = view.read_rows(np.arange(60))
        mean, std = predict_with_std(models["template"], flux, sigma)
        assert np.array_equal(mean, models["template"].predict(flux, sigma))
        assert np.all(std >= 0)
        widths.append(np.median(std))
    assert widths[1] > 2 * widths[0]


def test_a_cell_of_a_model_with_std_reports_its_calibration(fits):
    """evaluate (what run_cell scores with) adds the std column and its coverage per SNR bin; a model
    without std adds neither, and the std never becomes a scored log g prediction."""
    from pfslogg.evaluation import evaluate, prior_variance

    test, models = fits
    view = NoisyView(test, 1.0, noise_seed=3)
    metrics, table = evaluate(models["mlfit"], view, prior_variance(1, 5), [2.0, 1000.0], n_resamples=20)
    mean, std = predict_with_std(models["mlfit"], *view.read_rows(np.arange(view.n)))
    assert np.array_equal(table["log_g_std"], std) and np.array_equal(table["log_g_pred"], mean)
    u = metrics["uncertainty"]
    assert u["overall"]["n"] == view.n and 0 <= u["overall"]["coverage68"] <= 1
    assert u["overall"]["coverage68"] == coverage(view.logg, mean, std, 0.683)
    assert "alternatives" not in metrics
    plain, table = evaluate(make_estimator("ridge").fit(view, view), view, prior_variance(1, 5), [2.0, 1000.0],
                            n_resamples=20)
    assert "uncertainty" not in plain and "log_g_std" not in table


def _bayes_table(n=300, seed=1):
    import pandas as pd

    y, mean, std, snr, true = draws(n, seed=seed)
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"log_g": y, "snr": snr, "M_H": rng.uniform(0, 0.5, n), "T_eff": rng.uniform(4500, 5500, n),
                         "post_mean": mean, "post_sd": true})


def test_the_comparison_with_the_exact_posterior_reads_the_cells_tables(tmp_path):
    from pfslogg.plots.ceilings import draw_uncertainty_calibration
    from pfslogg.uncertainty import compare_with_posterior

    bayes = _bayes_table()
    good = bayes[["log_g", "M_H", "T_eff"]].assign(log_g_pred=bayes["post_mean"], log_g_std=bayes["post_sd"])
    wide = good.assign(log_g_std=3 * bayes["post_sd"])
    out = compare_with_posterior(bayes, {"good": good, "wide": wide}, [2.0, 10.0, 40.0])
    assert out["estimators"]["good"]["overall"]["sd_ratio_median"] == pytest.approx(1.0)
    assert out["estimators"]["good"]["overall"]["coverage68"] == out["bayes"]["overall"]["coverage68"]
    assert out["estimators"]["wide"]["overall"]["sd_ratio_median"] == pytest.approx(3.0)
    assert out["estimators"]["wide"]["overall"]["coverage68"] > 0.95
    assert out["accuracy"]["good"] == out["accuracy"]["bayes"] and out["accuracy"]["good"]["r2"] > 0.5
    assert set(out["accuracy"]["wide"]) == {"r2", "rmse", "bias"}
    fig = draw_uncertainty_calibration({**out, "labels": {"good": "Good model"}})
    assert [ax.get_title() for ax in fig.axes[2:]] == ["exact posterior", "Good model", "wide"]   # the PIT panels
    fig.savefig(tmp_path / "u.png")
    with pytest.raises(InputError, match="'plain' has no per-star std"):
        compare_with_posterior(bayes, {"plain": good.drop(columns="log_g_std")}, [2.0, 40.0])
    with pytest.raises(InputError, match="not scored on the Bayes ceiling's test spectra"):
        compare_with_posterior(bayes, {"other": good.assign(M_H=good["M_H"] + 0.1)}, [2.0, 40.0])


def test_a_variant_without_std_is_refused_in_the_config():
    import copy
    from pathlib import Path

    from pfslogg.config import check_config, load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    new = copy.deepcopy(cfg)
    new["uncertainty"]["estimators"] = ["template", "ridge"]
    with pytest.raises(InputError, match=r"uncertainty\.estimators: 'ridge' \(class 'ridge'\) gives no per-star"):
        check_config(new, "config")


def test_the_uncertainty_table_cites_every_row_through_macros(tmp_path):
    from pfslogg.provenance import write_results
    from pfslogg.uncertainty import compare_with_posterior

    bayes = _bayes_table()
    good = bayes[["log_g", "M_H", "T_eff"]].assign(log_g_pred=bayes["post_mean"], log_g_std=bayes["post_sd"])
    metrics = {"noise_level": 1.0, "size": 300, "labels": {"good_one": "MLP (beta NLL)"},
               **compare_with_posterior(bayes, {"good_one": good}, [2.0, 10.0, 40.0])}
    root = tmp_path
    (root / "results/track_c").mkdir(parents=True)
    path = root / "results/track_c/uncertainties.json"
    write_results(path, metrics, "check_uncertainties", [], kind="uncertainties")
    text = paper.table_tex("uncertainties", root / "results", [path])
    numbers = paper.numbers_tex(paper.collect_numbers(root / "results", files=[path]))
    assert paper.find_hand_typed_numbers(text) == [] and paper.find_undefined_macros(text, numbers) == []
    assert r"MLP ($\beta$-NLL) &" in text and "Exact posterior &" in text   # the label typeset (binning.SYMBOLS)
    assert "\\TrackCUncertaintiesAccuracyGoodOneRtwo" in text
    assert "\\TrackCUncertaintiesEstimatorsGoodOneOverallWithintwenty" in text
    assert "many stars" not in text and text.count("S[table-format") == 10
    # with the coverage check's file: two more columns, its bins' range, a dash for a model it did not check
    from pfslogg.uncertainty import coverage_check

    view = _Stars(2000)
    cov = root / "results/track_c/coverage.json"
    write_results(cov, coverage_check({"other": _Gaussian()}, view, [2.0, 10.0, 40.0],
                                      posterior=(view.logg, np.full(view.n, 0.1))),
                  "check_coverage", [], kind="coverage")
    text = paper.table_tex("uncertainties", root / "results", [path, cov])
    numbers = paper.numbers_tex(paper.collect_numbers(root / "results", files=[path, cov]))
    assert paper.find_hand_typed_numbers(text) == [] and paper.find_undefined_macros(text, numbers) == []
    assert "many stars" in text and text.count("S[table-format") == 12
    assert "\\TrackCCoverageBayesCoveragesixtyeightBinsMin" in text
    good_row = next(line for line in text.splitlines() if line.startswith("MLP ($\\beta$-NLL) &"))
    assert good_row.count("{--}") == 2   # good_one is not in the coverage file


def test_the_gaussian_kl_to_the_posterior_has_known_values():
    from pfslogg.uncertainty import gaussian_kl

    assert gaussian_kl(np.array([0.3]), np.array([0.2]), np.array([0.3]), np.array([0.2]))[0] == pytest.approx(0)
    assert gaussian_kl(np.array([0.0]), np.array([1.0]), np.array([1.0]), np.array([1.0]))[0] == pytest.approx(0.5)
    assert gaussian_kl(np.array([0.0]), np.array([2.0]), np.array([0.0]), np.array([1.0]))[0] == pytest.approx(
        np.log(0.5) + 2 - 0.5)
    bayes = _bayes_table()
    from pfslogg.uncertainty import compare_with_posterior
    good = bayes[["log_g", "M_H", "T_eff"]].assign(log_g_pred=bayes["post_mean"], log_g_std=bayes["post_sd"])
    far = good.assign(log_g_pred=bayes["post_mean"] + bayes["post_sd"])
    out = compare_with_posterior(bayes, {"good": good, "far": far}, [2.0, 40.0])
    assert out["estimators"]["good"]["overall"]["kl_median"] == pytest.approx(0, abs=1e-12)
    assert out["estimators"]["far"]["overall"]["kl_median"] == pytest.approx(0.5)


def test_a_calibrated_sigma_of_a_worse_model_sits_above_the_posterior_sd_by_the_error_ratio():
    """sd_ratio_floor = rms(model error) / rms(posterior-mean error): a model that errs twice as much as the
    posterior mean and says so (a calibrated std) has rms(std) / rms(post_sd) = 2, not 1."""
    from pfslogg.uncertainty import compare_with_posterior

    bayes = _bayes_table()
    err = bayes["log_g"] - bayes["post_mean"]
    exact = bayes[["log_g", "M_H", "T_eff"]].assign(log_g_pred=bayes["post_mean"], log_g_std=bayes["post_sd"])
    worse = exact.assign(log_g_pred=bayes["log_g"] - 2 * err, log_g_std=2 * bayes["post_sd"])
    out = compare_with_posterior(bayes, {"exact": exact, "worse": worse}, [2.0, 40.0])["estimators"]
    assert out["exact"]["overall"]["sd_ratio_floor"] == pytest.approx(1.0)
    assert out["exact"]["overall"]["sd_ratio_rms"] == pytest.approx(1.0)
    assert out["worse"]["overall"]["sd_ratio_floor"] == pytest.approx(2.0)
    assert out["worse"]["overall"]["sd_ratio_rms"] == pytest.approx(2.0)


def test_a_bins_coverage_is_judged_against_the_chance_band_of_its_size():
    """A calibrated interval over bins of 150 stars misses 68 +- 3 points in many bins by chance alone
    (the binomial sd is 3.8 points), but lies within the 95 % chance band 1.96 sqrt(0.683 x 0.317 / n)
    in about 95 % of them; an interval half as wide (coverage ~0.38) in none."""
    from pfslogg.uncertainty import TOLERANCE, chance_band

    assert chance_band(148) == pytest.approx(1.96 * np.sqrt(0.683 * 0.317 / 148), rel=1e-3)
    assert chance_band(920) == pytest.approx(TOLERANCE, abs=5e-4)   # where +- 3 points is the chance band
    y, mean, std, snr, true = draws(n=6000, seed=3)
    edges = np.linspace(2, 40, 41)   # 40 bins of ~150 stars
    cb = calibration(y, mean, std, snr, edges)["coverage68_bins"]
    assert cb["bins"] == 40 and 35 <= cb["consistent"] <= 40
    assert cb["verdict"] == "not calibrated in every bin"   # +- 3 points: too tight for 150 stars
    assert cb["chance_min"] > TOLERANCE
    narrow = calibration(y, mean, 0.5 * std, snr, edges)["coverage68_bins"]
    assert narrow["consistent"] == 0


class _Stars:
    """A view (what predict_view reads) of ``n`` stars with known log g and SNR, flux and sigma of 3 pixels."""

    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.n = n
        self.params = pd.DataFrame({"log_g": rng.uniform(1, 5, n)})
        self.logg = self.params["log_g"].to_numpy()
        self._snr = rng.uniform(2, 35, n)

    def snr(self):
        return self._snr

    def batches(self, batch):
        for a in range(0, self.n, batch):
            b = min(a + batch, self.n)
            yield a, b, np.ones((b - a, 3)), np.ones((b - a, 3))


class _Gaussian:
    """A model whose errors are N(0, sd) with sd growing with log g; its claimed std is ``claim`` x sd (1: calibrated)."""

    gives_std = True
    class_id = "gaussian"

    def __init__(self, claim=1.0, seed=0):
        self.claim, self.seed = claim, seed

    def predict_all(self, flux, sigma, truth=None):
        y = truth["log_g"].to_numpy()
        sd = 0.05 + 0.1 * y
        eps = np.random.default_rng([self.seed, int(truth.index[0])]).standard_normal(len(y))
        return {"": y + sd * eps, "std": self.claim * sd}


def test_coverage_on_a_large_set_resolves_three_points_and_tells_calibrated_from_narrow_intervals():
    """On 30,000 stars in 3 bins (~10,000 each, chance band +-0.9 points) a calibrated interval is within 68.3 +- 3
    points in every bin and one 0.8x as wide (coverage ~58 %) in none; the exact posterior's is checked the same way;
    on 600 stars (~200 a bin, band +-6.4 points) the set says it cannot resolve the target."""
    from pfslogg.uncertainty import TOLERANCE, coverage_check

    view = _Stars(30000)
    out = coverage_check({"good": _Gaussian(1.0), "narrow": _Gaussian(0.8, seed=1)}, view, [2.0, 10.0, 20.0, 35.0],
                         posterior=(view.logg + 0.1 * np.random.default_rng(9).standard_normal(view.n),
                                    np.full(view.n, 0.1)))
    assert out["n"] == 30000 and out["n_intervals"] == 2 and len(out["snr_bins"]) == 3
    assert out["bin_n_min"] <= out["bin_n_max"] and sum(b["n"] for b in out["snr_bins"]) == 30000
    assert out["resolves_tolerance"] and out["chance_max"] < TOLERANCE / 2
    good, narrow = out["estimators"]["good"], out["estimators"]["narrow"]
    assert good["coverage68_bins"]["verdict"] == "calibrated in every bin"
    assert good["coverage68_bins"]["within_tolerance"] == 3
    assert all(abs(b["coverage68"] - 0.683) < 0.02 for b in good["snr_bins"])
    assert narrow["coverage68_bins"]["within_tolerance"] == 0
    assert all(abs(b["coverage68"] - 0.576) < 0.02 for b in narrow["snr_bins"])   # P(|z| < 0.8)
    assert out["calibrated_every_bin"] == ["good"] and out["calibrated_count"] == 1
    assert out["bayes"]["coverage68_bins"]["verdict"] == "calibrated in every bin"
    assert out["accuracy"]["bayes"]["rmse"] == pytest.approx(0.1, rel=0.02)
    small = coverage_check({"good": _Gaussian(1.0)}, _Stars(600, seed=2), [2.0, 10.0, 20.0, 35.0])
    assert not small["resolves_tolerance"] and small["chance_max"] > 2 * TOLERANCE and small["bayes"] is None


def test_the_coverage_check_refuses_a_model_without_std_and_a_set_outside_the_bins():
    from pfslogg.uncertainty import coverage_check

    plain = _Gaussian()
    plain.gives_std = False
    with pytest.raises(InputError, match="'plain' .* gives no per-star standard deviation"):
        coverage_check({"plain": plain}, _Stars(100), [2.0, 40.0])
    with pytest.raises(InputError, match="none of the 100 stars' SNR falls in a bin"):
        coverage_check({"good": _Gaussian()}, _Stars(100), [40.0, 50.0])


def test_the_coverage_figure_puts_own_and_rescaled_sigmas_apart(tmp_path):
    from pfslogg.plots.ceilings import draw_coverage_check
    from pfslogg.uncertainty import coverage_check

    view = _Stars(3000)
    out = coverage_check({"raw": _Gaussian(0.8), "raw_conformal": _Gaussian(1.0, seed=1)}, view, [2.0, 10.0, 35.0],
                         posterior=(view.logg, np.full(view.n, 0.1)))
    fig = draw_coverage_check({**out, "labels": {"raw": "Raw model"}, "rescales": {"raw_conformal": "raw"}})
    left, right = fig.axes
    assert {t.get_text() for t in left.get_legend().get_texts()} >= {"exact posterior", "Raw model"}
    assert "raw_conformal" not in {t.get_text() for t in left.get_legend().get_texts()}
    assert {t.get_text() for t in right.get_legend().get_texts()} >= {"exact posterior", "raw_conformal"}
    fig.savefig(tmp_path / "c.png")
    with pytest.raises(InputError, match="coverage_check: expected the metrics of check_coverage"):
        draw_coverage_check({"estimators": {}})


class _Measured:
    """A view whose spectra carry their own measurement: pixel 0 is log g + sd eps, pixel 1 its sd, pixels 2-4
    the SNR (the median of flux / sigma, so the SNR a model sees: conformal.model_snr)."""

    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.n = n
        self.params = pd.DataFrame({"log_g": rng.uniform(1, 5, n)})
        self.logg = self.y = self.params["log_g"].to_numpy()
        self._snr = rng.uniform(2, 35, n)
        sd = 0.05 + 0.5 / self._snr   # errors that fall with SNR
        self.flux = np.column_stack([self.logg + sd * rng.standard_normal(n), sd, *[self._snr] * 3])

    def snr(self):
        return self._snr

    def read(self, a, b):
        return self.flux[a:b], np.ones((b - a, 5))

    def batches(self, batch):
        for a in range(0, self.n, batch):
            b = min(a + batch, self.n)
            yield (a, b, *self.read(a, b))


class _Reader:
    """A model that reads the measurement off the spectrum; its std is ``claim`` x the true sd at SNR >= 10 and
    2 x ``claim`` below (right at some SNR and wrong at others: what one factor per SNR bin corrects)."""

    gives_std = True
    class_id = "reader"
    kind = "estimator"
    is_fitted = True

    @classmethod
    def provides_std(cls, hyper):
        return True

    def __init__(self, claim):
        self.claim = claim

    def predict(self, flux, sigma=None, return_std=False):
        mean = flux[:, 0]
        return (mean, self.claim * flux[:, 1] * np.where(flux[:, 2] < 10, 2.0, 1.0)) if return_std else mean

    def predict_all(self, flux, sigma, truth=None):
        mean, std = self.predict(flux, sigma, return_std=True)
        return {"": mean, "std": std}


def test_a_conformal_models_coverage_reuses_its_upstream_models_predictions():
    """check_coverage scores a per-bin conformal rescaling from its upstream model's predictions (one pass of
    the ML fit, not two): the same coverage as predicting it star by star, calibrated in every bin where the
    upstream's own std is not; a rescaling of another model than the one named is refused."""
    from pfslogg.estimators import FitContext, make_estimator
    from pfslogg.uncertainty import coverage_check

    base = _Reader(0.8)
    conf = make_estimator("conformal", {"snr_bins": [2.0, 10.0, 20.0, 35.0]})
    conf.fit(None, _Measured(30000, seed=1), FitContext(upstream={"model": base}, where="c"))
    view, edges = _Measured(30000, seed=2), [2.0, 10.0, 20.0, 35.0]
    fast = coverage_check({"base": base, "conf": conf}, view, edges, rescales={"conf": "base"})
    slow = coverage_check({"base": base, "conf": conf}, view, edges)
    assert fast == slow
    assert fast["calibrated_every_bin"] == ["conf"]
    assert fast["estimators"]["base"]["coverage68_bins"]["within_tolerance"] == 0
    with pytest.raises(InputError, match="'conf' does not predict 'other''s mean and rescaled std"):
        coverage_check({"other": _Reader(1.5), "conf": conf}, view, edges, rescales={"conf": "other"})
