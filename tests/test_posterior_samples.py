"""A generative denoiser's draws, fitted for log g, against the exact posterior of log g
(pfslogg.denoising.sample_posterior; rule sample_posterior of Track D): the verdict follows the spread
of the draws, the result does not depend on the batching, bad input is named."""

import numpy as np
import pytest

from pfslogg import denoising as D
from pfslogg.errors import InputError

N_PIX = 8


class View:
    """A view of ``n`` stars: flux carries the row in pixel 0 (so a sampler can seed per star)."""

    def __init__(self, n=60, seed=0):
        rng = np.random.default_rng(seed)
        self.n = n
        self.logg = rng.uniform(1, 5, n)
        self._snr = rng.uniform(2, 40, n)
        self.post_mean = self.logg + rng.normal(0, 0.05, n)
        self.post_sd = 0.5 / np.sqrt(self._snr)

    def snr(self):
        return self._snr

    def read_rows(self, rows):
        flux = np.zeros((len(rows), N_PIX))
        flux[:, 0] = rows
        return flux, np.ones((len(rows), N_PIX))


class Sampler:
    """Draws whose pixel 1 is a log g from N(post_mean, scale x post_sd), seeded per star (row, seed)."""

    def __init__(self, view, scale):
        self.view, self.scale = view, scale

    def sample(self, flux, sigma, n, seed):
        out = np.zeros((n, len(flux), N_PIX))
        for j, row in enumerate(flux[:, 0].astype(int)):
            rng = np.random.default_rng([seed, row])
            out[:, j, 1] = self.view.post_mean[row] + self.scale * self.view.post_sd[row] * rng.standard_normal(n)
        return out


class Fitter:
    """The 'fit' of a drawn spectrum: its pixel 1 (a noisy spectrum: its true log g)."""

    def __init__(self, view):
        self.view = view

    def predict(self, flux, sigma):
        out = flux[:, 1].copy()
        noisy = ~flux[:, 1:].any(axis=1)
        out[noisy] = self.view.logg[flux[noisy, 0].astype(int)]
        return out


def run(view, scale, **kw):
    args = dict(stars=40, samples=200, seed=3)
    args.update(kw)
    return D.sample_posterior(Sampler(view, scale), Fitter(view), view, view.post_mean, view.post_sd,
                              args.pop("stars"), args.pop("samples"), **args)


@pytest.mark.parametrize("scale, word, lo, hi", [(1.0, "comparable", 0.85, 1.15), (0.2, "narrower", 0.15, 0.25),
                                                 (3.0, "wider", 2.6, 3.4)])
def test_the_verdict_follows_the_spread_of_the_draws(scale, word, lo, hi):
    view = View()
    metrics, details = run(view, scale)
    o = metrics["overall"]
    assert o["verdict"] == word
    assert lo < o["sd_ratio_median"] < hi
    assert metrics["stars"] == 40 and np.shape(details["samples"]) == (200, 40)
    if scale == 1.0:   # an exact posterior sampler: its draws' mean is the posterior mean within MC error
        assert o["mean_offset_rms_z"] < 0.15
        assert o["sd_rank_correlation"] > 0.9


def test_stars_span_the_snr_order_and_examples_are_low_typical_high():
    view = View()
    rows = D.posterior_stars(view.snr(), 10)
    assert len(rows) == 10 and np.all(np.diff(rows) > 0)
    assert view.snr()[rows].min() == view.snr().min() and view.snr()[rows].max() == view.snr().max()
    assert len(D.posterior_stars(view.snr(), 500)) == view.n
    _, details = run(view, 1.0, stars=30, samples=4)
    snr = np.asarray(details["snr"])[details["examples"]]
    assert len(snr) == 3 and snr[0] < snr[1] < snr[2]


def test_the_result_does_not_depend_on_the_batch_and_repeats_exactly():
    view = View()
    a = run(view, 1.0, samples=8, batch=1)
    b = run(view, 1.0, samples=8, batch=16)
    c = run(view, 1.0, samples=8, batch=16)
    assert a == b == c
    assert run(view, 1.0, samples=8, seed=4)[1]["samples"] != b[1]["samples"]


def test_metrics_per_snr_bin_cover_the_stars_in_them():
    view = View(n=200)
    metrics, details = run(view, 1.0, stars=120, samples=20, snr_edges=[2.0, 10.0, 40.0])
    bins = metrics["snr_bins"]
    assert [(b["lo"], b["hi"]) for b in bins] == [(2.0, 10.0), (10.0, 40.0)]
    snr = np.asarray(details["snr"])
    assert [b["n"] for b in bins] == [int(np.sum(snr < 10)), int(np.sum(snr >= 10))]


def test_bad_input_is_named():
    view = View()
    with pytest.raises(InputError, match="no sample"):
        D.sample_posterior(object(), Fitter(view), view, view.post_mean, view.post_sd, 5, 4)
    with pytest.raises(InputError, match="samples"):
        run(view, 1.0, samples=1)
    with pytest.raises(InputError, match="not the same test set"):
        D.sample_posterior(Sampler(view, 1), Fitter(view), view, view.post_mean[:-1], view.post_sd[:-1], 5, 4)
    bad = view.post_sd.copy()
    bad[:] = 0
    with pytest.raises(InputError, match="sd must be finite"):
        D.sample_posterior(Sampler(view, 1), Fitter(view), view, view.post_mean, bad, 5, 4)
    with pytest.raises(InputError, match="stars"):
        D.posterior_stars(view.snr(), 0)


def test_the_figure_draws_the_result(tmp_path):
    from pfslogg.plots import track_d

    view = View()
    metrics, details = run(view, 0.5, stars=30, samples=16)
    fig = track_d.draw_posterior_samples(metrics, details)
    assert len(fig.axes) == 4
    fig.savefig(tmp_path / "p.png")
    with pytest.raises(InputError, match="posterior_samples figure"):
        track_d.draw_posterior_samples(metrics, {"samples": [[1.0]]})


# -- configuration and workflow (config denoising.posterior, rule sample_posterior) -------------------
@pytest.fixture(scope="module")
def cfg():
    from pathlib import Path

    from pfslogg.config import load_config

    return load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")


@pytest.mark.parametrize("transform, match", [
    ("ridge", r"denoising\.posterior\.transform: 'ridge' is not among denoising\.transforms"),
    ("denoiser", r"denoising\.posterior\.transform: 'denoiser' \(class 'denoiser'\) draws no samples")])
def test_a_posterior_transform_that_cannot_be_sampled_is_refused(cfg, transform, match):
    import copy

    from pfslogg.config import check_config

    new = copy.deepcopy(cfg)
    new["denoising"]["posterior"]["transform"] = transform
    with pytest.raises(InputError, match=match) as e:
        check_config(new, "config")
    assert "\n" not in str(e.value)


def test_the_rule_reads_the_default_noise_model_and_the_bayes_table(cfg):
    from pfslogg import workflow as W
    from pfslogg.tracks import track_d

    inputs = track_d.posterior_inputs(cfg)
    assert inputs["model"] == "models/diffusion/nl1_n6000_s0"
    assert inputs["bayes"] == "results/track_c/bayes_per_spectrum.csv"
    p = W.rule_params("sample_posterior", cfg)
    assert (p["stars"], p["samples"], p["noise_level"]) == (100, 24, 1.0)
    assert ("sample_posterior", {}) in W.jobs(cfg)
    assert track_d.POSTERIOR in W.track_outputs(cfg, "d")
