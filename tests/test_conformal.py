"""Conformal rescaling of a per-star sigma (class ``conformal``, issue 17): one factor, and one factor per
SNR bin (Mondrian), on the validation spectra or on the variant's own (simulated) training view.

The upstream model is made up so that the answer is known: its mean is the truth plus Gaussian noise of sd
``true_sd(snr)``, and the sd it reports is ``true_sd(snr) * wrong(snr)``, too wide at high SNR and too
narrow at low SNR (what every learned sigma of the default run does). One factor can only fix the
average; a factor per SNR bin must bring each bin's coverage to 68.3 % within sampling noise.
"""

from pathlib import Path

import numpy as np
import pytest

from pfslogg.config import load_config
from pfslogg.data.views import View
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, FitContext, load, make_estimator
from pfslogg.estimators.base import Estimator
from pfslogg.estimators.conformal import conformal_quantile, model_snr
from pfslogg.uncertainty import coverage

N_PIX = 8
DEFAULT = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
EDGES = [2.0, 4.0, 8.0, 16.0, 32.0]


def true_sd(snr):
    return 0.6 / snr


def wrong(snr):   # the reported sd / the true sd: x0.5 at SNR 2, x2 at SNR 32
    return 0.5 * (snr / 2.0) ** 0.5


class _SnrView(View):
    """Spectra of constant flux 1 with sigma 1/snr (snr log-uniform on [lo, hi]): the SNR a model sees is known."""

    def __init__(self, n, seed, lo=2.0, hi=32.0):
        rng = np.random.default_rng(seed)
        self.n, self.noise_level, self.fixed, self.params = n, 1.0, True, None
        self.wave = np.linspace(7100.0, 8850.0, N_PIX)
        self._snr = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        self._flux = np.ones((n, N_PIX))
        self._sigma = np.repeat(1.0 / self._snr[:, None], N_PIX, axis=1)
        self.logg = rng.uniform(1.0, 5.0, n)
        self._err = true_sd(self._snr) * rng.standard_normal(n)   # the made-up model's error on each star
        self._flux[:, 1] = 1.0 + 1e-6 * np.arange(n) / n          # row id, median unchanged (pixel 1 of 8)

    def read_rows(self, rows, rng=None):
        return self._flux[rows], self._sigma[rows]

    def snr(self):
        return self._snr


class _Noisy(Estimator):
    """Mean = truth + error, reported sd = true sd x wrong(snr); it reads which star it is from pixel 1."""

    class_id = "made_up"
    gives_std = True

    def __init__(self, view):
        self.view = view
        self.fitted_ = True

    def get_params(self):
        return {}

    def predict(self, flux, sigma=None, return_std=False):
        v = self.view
        rows = np.rint((flux[:, 1] - 1.0) * 1e6 * v.n).astype(int)
        snr = model_snr(flux, sigma)
        mean = v.logg[rows] + v._err[rows]
        return (mean, true_sd(snr) * wrong(snr)) if return_std else mean


def _fit(view_cal, hyper, on="val"):
    model = _Noisy(view_cal)
    est = make_estimator("conformal", hyper)
    tr, va = (view_cal, None) if on == "train" else (None, view_cal)
    return est.fit(tr, va, FitContext(upstream={"model": model}, where="estimators.c.hyper"))


def _per_bin_coverage(est, view):
    est.parts_["upstream/model"].view = view   # the made-up model now answers for the test stars
    flux, sigma = view.load(np.float64)
    mean, sd = est.predict(flux, sigma, return_std=True)
    idx = np.searchsorted(EDGES, view.snr(), side="right") - 1
    return coverage(view.logg, mean, sd, 0.683), [coverage(view.logg[idx == b], mean[idx == b], sd[idx == b], 0.683)
                                                  for b in range(len(EDGES) - 1)]


def test_the_conformal_quantile_is_the_finite_sample_rank():
    z = np.arange(1, 11, dtype=float)            # n = 10: rank ceil(11 x 0.683) = 8
    assert conformal_quantile(z, 0.683) == 8.0
    assert conformal_quantile(z, 0.99) == 10.0   # rank 11 > n: the largest


def test_one_factor_fixes_the_average_and_a_factor_per_snr_bin_fixes_every_bin():
    cal, test = _SnrView(8000, 1), _SnrView(8000, 2)
    one = _fit(cal, {})
    overall, bins = _per_bin_coverage(one, test)
    assert abs(overall - 0.683) < 0.02
    assert bins[0] < 0.5 and bins[-1] > 0.85      # too narrow at low SNR, too wide at high SNR
    per = _fit(cal, {"snr_bins": EDGES})
    overall, bins = _per_bin_coverage(per, test)
    assert abs(overall - 0.683) < 0.02
    assert all(abs(c - 0.683) < 0.035 for c in bins), bins   # ~2000 stars a bin: sd 1 point
    # the factors undo the made-up error: 1 / wrong at each bin's (log) centre, within the quantile's noise
    centres = np.sqrt(np.array(EDGES[:-1]) * np.array(EDGES[1:]))
    assert np.allclose(per.scales_[1:-1], 1.0 / wrong(centres), rtol=0.15)
    inner = [int(np.sum((cal.snr() >= a) & (cal.snr() < b))) for a, b in zip(EDGES, EDGES[1:])]
    assert per.fitted()["bin_counts"] == [0, *inner, 0]       # the open bins below 2 and from 32 up: empty
    assert per.scales_[0] == per.scales_[-1] == per.scale_


def test_stars_beyond_the_last_edge_set_a_factor_of_their_own():
    """Calibrated on SNR 2-64 with edges up to 32: the stars from 32 up (whose sigma is the most too wide)
    get their own factor and leave the 16-32 bin's alone."""
    cal, test = _SnrView(8000, 8, hi=64.0), _SnrView(8000, 9, hi=64.0)
    per = _fit(cal, {"snr_bins": EDGES})
    assert per.bin_counts_[-1] > 1000 and per.scales_[-1] < per.scales_[-2]
    _, bins = _per_bin_coverage(per, test)
    assert all(abs(c - 0.683) < 0.035 for c in bins), bins


def test_a_bin_without_calibration_stars_takes_the_overall_factor_and_a_narrow_range_leaves_the_ends_wrong():
    """Calibrated on SNR 4-16 only (as the validation set's magnitudes are narrower than the test's): the
    end bins get the overall factor, and the test's end bins stay wrong -- why the default run calibrates
    on simulated stars at the test's magnitudes."""
    cal, test = _SnrView(6000, 3, lo=4.0, hi=16.0), _SnrView(8000, 4)
    per = _fit(cal, {"snr_bins": EDGES})
    assert per.bin_counts_[1] == 0 and per.bin_counts_[-2] == 0    # 2-4 and 16-32: no calibration star
    assert per.scales_[1] == per.scales_[-2] == per.scale_
    _, bins = _per_bin_coverage(per, test)
    assert all(abs(c - 0.683) < 0.035 for c in bins[1:-1]) and bins[0] < 0.6 and bins[-1] > 0.8


def test_calibrate_on_train_reads_the_training_view_up_to_n_calibration():
    cal = _SnrView(5000, 5)
    est = _fit(cal, {"snr_bins": EDGES, "calibrate_on": "train", "n_calibration": 3000}, on="train")
    assert est.n_val_ == 3000 and sum(est.bin_counts_) == 3000 and est.fitted()["calibrate_on"] == "train"
    assert est.scales_[1] > 1 > est.scales_[-2]   # widened at low SNR, narrowed at high SNR


def test_the_calibration_view_must_be_given():
    with pytest.raises(InputError, match=r"estimators.c.hyper.calibrate_on: 'train', but fit was given no training"):
        make_estimator("conformal", {"calibrate_on": "train"}).fit(
            None, _SnrView(100, 1), FitContext(upstream={"model": _Noisy(_SnrView(100, 1))}, where="estimators.c.hyper"))


def test_a_factor_per_bin_needs_sigma_at_predict():
    est = _fit(_SnrView(2000, 6), {"snr_bins": EDGES})
    flux, _ = _SnrView(10, 7).load(np.float64)
    with pytest.raises(InputError, match="needs sigma"):
        est.predict(flux, None, return_std=True)


@pytest.mark.parametrize("hyper, match", [
    ({"snr_bins": [3.0]}, r"hyper.snr_bins: got \[3.0\], expected null or >= 2 increasing"),
    ({"snr_bins": [3.0, 2.0]}, r"hyper.snr_bins"),
    ({"snr_bins": [0.0, 2.0]}, r"hyper.snr_bins"),
    ({"calibrate_on": "test"}, r"hyper.calibrate_on: got 'test', expected one of val, train"),
    ({"n_calibration": 5}, r"hyper.n_calibration: got 5, expected null \(all\) or an integer >= 10"),
])
def test_bad_hyper_parameters_are_named(hyper, match):
    with pytest.raises(InputError, match=match):
        REGISTRY["conformal"].check_hyper(hyper, "estimators.c.hyper")


def test_simulator_calibration_stars_are_never_a_models_training_stars(tmp_path):
    """A conformal variant that calibrates on simulated stars draws them with a seed of its own
    (split_seed(cfg, "calibration")), so it may rescale a model trained on the simulator (a posterior
    network): its cells' star seed differs from the simulator-trained model's. Only a rescaling of a
    rescaling would calibrate on the stars its upstream model was fitted on: refused by name."""
    import yaml

    from pfslogg.config import split_seed
    from pfslogg.workflow import rule_params

    cfg_path = tmp_path / "c.yaml"
    doc = {"estimators": {
        "m": {"class": "mlp", "hyper": {"loss": "beta_nll"}, "train_source": "simulator"},
        "c": {"class": "conformal", "hyper": {"calibrate_on": "train"}, "upstream": {"model": "m"},
              "train_source": "simulator"}}}
    cfg_path.write_text(yaml.safe_dump(doc))
    cfg = load_config(DEFAULT, cfg_path)
    seeds = {e: rule_params("run_cell" if e == "c" else "run_neural_cell", cfg, estimator=e, noise="1",
                            size="100", seed="0")["simulator"]["seed"] for e in ("m", "c")}
    assert seeds == {"m": split_seed(cfg, "simulator"), "c": split_seed(cfg, "calibration")}
    assert len({split_seed(cfg, s) for s in ("train", "val", "test", "simulator", "coverage", "calibration")}) == 6
    doc["estimators"]["cc"] = {"class": "conformal", "hyper": {"calibrate_on": "train"}, "upstream": {"model": "c"},
                               "train_source": "simulator"}
    cfg_path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match=r"estimators.cc: calibrate_on train with train_source simulator would "
                                         r"calibrate on the simulated stars its upstream model 'c' was fitted on"):
        load_config(DEFAULT, cfg_path)


def test_a_saved_per_bin_model_predicts_the_same(tmp_path):
    """Save/load keeps the factors per bin, with a real upstream model (a toy-sized MLP with a variance
    head) in the folder."""
    from pfslogg.data.views import NoisyView
    from test_network_std import NLL_MLP, toy_splits

    train_set, val_set = toy_splits(tmp_path, 32, lambda dev: 3.0 + dev[:, 0], sizes=(300, 200))
    tr = NoisyView(train_set, 1.0, rng_seed=0, sigma="stored")
    va = NoisyView(val_set, 1.0, noise_seed=1, sigma="stored")
    nll = make_estimator("mlp", {**NLL_MLP, "epochs": 2}).fit(tr, va, FitContext())
    flux, sigma = va.load(np.float64)
    snr = model_snr(flux, sigma)
    edges = [float(np.quantile(snr, q)) for q in (0.0, 0.5, 1.0)]
    est = make_estimator("conformal", {"snr_bins": edges}).fit(tr, va, FitContext(upstream={"model": nll}))
    assert len(est.scales_) == 4 and sum(est.bin_counts_) == 200 and min(est.bin_counts_[1:3]) >= 99
    est.save(tmp_path / "c")
    back = load(tmp_path / "c")
    a, b = est.predict(flux, sigma, return_std=True), back.predict(flux, sigma, return_std=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and back.scales_ == est.scales_


def test_a_calibration_on_simulated_stars_may_ask_for_more_stars_than_the_cell_has():
    """n_calibration above the cell's size makes its simulator view that large (the factor per bin then
    scatters less); on the validation set, or without it, the cell's size; every other class simulates its size."""
    conformal = REGISTRY["conformal"]
    assert conformal.simulated_rows({"calibrate_on": "train", "n_calibration": 60000}, 20000) == 60000
    assert conformal.simulated_rows({"calibrate_on": "train", "n_calibration": 500}, 20000) == 20000
    assert conformal.simulated_rows({"calibrate_on": "train"}, 20000) == 20000
    assert conformal.simulated_rows({"n_calibration": 60000}, 20000) == 20000   # calibrate_on val
    assert REGISTRY["mlp"].simulated_rows({"epochs": 2}, 300) == 300
