"""Neural posterior estimation (issue 17 item 4): a mixture density head on a network's trunk (loss "mdn"),
trained by the one engine (checkpoint/resume identical), gives each spectrum a posterior over log g and the
extra labels; its marginal's mean and sd are the estimator's prediction and per-star std.
"""

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, FitContext, load, make_estimator
from pfslogg.evaluation import r2_score
from pfslogg.nn.engine import CHECKPOINT, Preempted
from pfslogg.nn.models import MixtureHead
from pfslogg.uncertainty import coverage

from conftest import simulate_splits
from test_nn_engine import TINY_MLP, sigterm_at

NPE = {**TINY_MLP, "hidden": [32], "epochs": 8, "dropout": 0.0, "lr": 3e-3, "loss": "mdn", "components": 3,
       "extra_labels": ["T_eff", "M_H"]}


def _distribution(head, raw):
    logw, mu, chol = head.split(raw)
    return MixtureSameFamily(Categorical(logits=logw), MultivariateNormal(mu, scale_tril=chol))


def test_the_mixture_head_is_a_normalised_gaussian_mixture_with_the_right_moments():
    torch.manual_seed(0)
    head = MixtureHead(6, 3, 4)
    with torch.no_grad():
        head.out.weight.normal_(0, 0.5)
        raw = head(torch.randn(5, 2, 6))
        dist = _distribution(head, raw)
        z = torch.randn(5, 3)
        assert torch.allclose(head.log_prob(raw, z), dist.log_prob(z), atol=1e-5)
        mean, sd = head.moments(raw)
        assert torch.allclose(mean, dist.mean, atol=1e-5) and torch.allclose(sd, dist.variance.sqrt(), atol=1e-5)
        _, _, chol = head.split(raw)
        assert torch.all(torch.diagonal(chol, dim1=-2, dim2=-1) > 0)


def test_the_marginal_cdf_is_the_mixtures_own():
    """The exact PIT: P(log g <= z) under the mixture, against the marginal of torch's distribution
    (sampled: 200,000 draws, so within 0.005) and its limits."""
    torch.manual_seed(1)
    head = MixtureHead(6, 3, 4)
    with torch.no_grad():
        head.out.weight.normal_(0, 0.5)
        raw = head(torch.randn(3, 2, 6))
        draws = _distribution(head, raw).sample((200_000,))[..., 0]          # (S, B): log g marginal
        z = torch.tensor([-0.7, 0.1, 1.3])
        cdf = head.marginal_cdf(raw, z)
        assert torch.allclose(cdf, (draws <= z).float().mean(0), atol=0.005)
        assert torch.allclose(head.marginal_cdf(raw, torch.full((3,), 50.0)), torch.ones(3))
        assert torch.allclose(head.marginal_cdf(raw, torch.full((3,), -50.0)), torch.zeros(3))


@pytest.fixture(scope="module")
def splits(coarse_instrument_grid, tmp_path_factory):
    paths = simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("npe"))
    return {k: SpectraSet(p) for k, p in paths.items()}


def fit(splits, hyper=None, checkpoint_dir=None, on_batch=None):
    tr = NoisyView(splits["train"], 1.0, rng_seed=5)
    va = NoisyView(splits["val"], 1.0, noise_seed=11)
    te = NoisyView(splits["test"], 1.0, noise_seed=13)
    est = make_estimator("mlp", {**NPE, **(hyper or {})})
    est.fit(tr, va, FitContext(threads=1, checkpoint_dir=checkpoint_dir), on_batch=on_batch)
    return est, te


@pytest.fixture(scope="module")
def npe(splits):
    return fit(splits)


def test_a_posterior_network_predicts_means_widths_and_the_other_parameters(npe):
    est, te = npe
    X, S = te.load()
    mean, sd = est.predict(X, S, return_std=True)
    assert np.array_equal(mean, est.predict(X, S)) and np.all(sd > 0)
    assert r2_score(te.logg, mean) > 0.3
    assert 0.45 <= coverage(te.logg, mean, sd, 0.683) <= 0.92
    labels = est.predict_labels(X, S)
    assert r2_score(te.params["T_eff"].to_numpy(), labels[:, 0]) > 0.5
    assert set(est.predict_all(X, S)) == {"", "std", "label:T_eff", "label:M_H"}
    # with the truth: the exact PIT of each true log g under its own posterior, between 0 and 1, monotone in log g
    out = est.predict_all(X, S, truth=te.params)
    u = out["pit"]
    assert u.shape == (te.n,) and np.all((u >= 0) & (u <= 1)) and 0.25 < u.mean() < 0.75
    assert np.all(est.predict_cdf(X, te.logg + 0.3) >= u) and np.all(est.predict_cdf(X, mean + 10 * sd) > 0.99)
    with pytest.raises(InputError, match=r"predict_cdf: \(3,\) log g values for 4 spectra"):
        est.predict_cdf(X[:4], np.ones(3))
    assert est.history_["train_loss"][-1] < est.history_["train_loss"][0]   # the NLL fell
    assert REGISTRY["mlp"].provides_std({"loss": "mdn"}) and est.gives_std


def test_a_posterior_network_round_trips_and_resumes_identically(npe, splits, tmp_path):
    est, te = npe
    X, S = te.load()
    est.save(tmp_path / "m")
    back = load(tmp_path / "m")
    for a, b in zip(est.predict(X, S, return_std=True), back.predict(X, S, return_std=True)):
        assert np.array_equal(a, b)
    with pytest.raises(Preempted):
        fit(splits, checkpoint_dir=tmp_path / "ck", on_batch=sigterm_at(3, 4))
    assert (tmp_path / "ck" / CHECKPOINT).is_file()
    again, _ = fit(splits, checkpoint_dir=tmp_path / "ck")
    for a, b in zip(est.predict(X, S, return_std=True), again.predict(X, S, return_std=True)):
        assert np.array_equal(a, b)


def test_a_posterior_over_log_g_alone_and_bad_components(splits):
    est, te = fit(splits, {"extra_labels": [], "components": 2, "epochs": 2})
    X, S = te.load()
    assert est.module_.mix_head.d == 1 and est.predict(X, S, return_std=True)[1].shape == (te.n,)
    with pytest.raises(InputError, match=r"hyper\.components: got 0, expected an integer >= 1"):
        make_estimator("mlp", {"loss": "mdn", "components": 0}).build(64)
