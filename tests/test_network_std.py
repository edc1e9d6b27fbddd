"""Per-star sigma(log g) from networks (issue 17 item 1): the Gaussian-NLL / beta-NLL target with a
variance head, and deep ensembles over seeds (class ``ensemble``).

Toy data (``toy_splits`` of test_nn_engine): log g a linear function of the flux plus label noise whose
sd is 0.05 dex on half the stars (flux pixel 0 below 1) and 0.4 dex on the other half: a variance head
must tell the two halves apart; the ensemble of plain MSE networks cannot (its spread is the members'
disagreement, not the label noise).
"""

import numpy as np
import pytest
import torch

from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, FitContext, load, make_estimator
from pfslogg.nn.engine import CHECKPOINT, Preempted
from pfslogg.nn.models import LOG_VAR_RANGE, MLP, Standardized
from pfslogg.nn.targets import beta_nll, gaussian_nll
from pfslogg.uncertainty import coverage, predict_with_std

from test_nn_engine import sigterm_at, toy_splits

N_PIX = 32
NLL_MLP = {"hidden": [32], "epochs": 25, "batch_size": 50, "lr": 3e-3, "dropout": 0.0, "block_size": 200,
           "loss": "beta_nll", "patience": 25}
SD_LOW, SD_HIGH = 0.05, 0.4


def _target(seed):
    w = np.random.default_rng(1).standard_normal(N_PIX)
    rng = np.random.default_rng(seed)

    def target(dev):
        sd = np.where(dev[:, 0] > 0, SD_HIGH, SD_LOW)
        return 3.0 + 2.0 * dev @ w + sd * rng.standard_normal(len(dev))
    return target


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("network_std")
    train_set, val_set = toy_splits(root, N_PIX, _target(2), sizes=(1000, 400))
    return train_set, val_set


def views(toy):
    train_set, val_set = toy
    return (NoisyView(train_set, 1.0, rng_seed=0, sigma="stored"), NoisyView(val_set, 1.0, noise_seed=1, sigma="stored"))


def fit(toy, cls="mlp", hyper=None, checkpoint_dir=None, on_batch=None, random_state=0):
    tr, va = views(toy)
    est = make_estimator(cls, hyper if cls == "ensemble" else {**NLL_MLP, **(hyper or {})}, random_state=random_state)
    kw = {} if cls == "ensemble" else {"on_batch": on_batch}
    est.fit(tr, va, FitContext(threads=1, checkpoint_dir=checkpoint_dir), **kw)
    X, S = va.load()
    return est, X, S, va


@pytest.fixture(scope="module")
def nll(toy):
    return fit(toy)


def test_gaussian_nll_is_the_normal_log_density_and_beta_reweights_the_mean_gradient():
    z = torch.tensor([0.3, -1.0, 2.0])
    mean = torch.tensor([0.0, -0.5, 1.0], requires_grad=True)
    log_var = torch.tensor([0.0, -1.0, 1.5], requires_grad=True)
    pred = torch.stack([mean, log_var], -1)
    expect = torch.nn.functional.gaussian_nll_loss(mean, z, log_var.exp(), full=False)
    assert torch.allclose(gaussian_nll(pred, z), expect)
    # beta-NLL: the mean's gradient is the NLL's times var^beta (beta 0.5), the MSE's for beta 1
    g_nll = torch.autograd.grad(gaussian_nll(pred, z), mean)[0]
    g_beta = torch.autograd.grad(beta_nll(pred, z), mean)[0]
    assert torch.allclose(g_beta, g_nll * torch.exp(0.5 * log_var.detach()))
    g_one = torch.autograd.grad(gaussian_nll(pred, z, beta=1.0), mean)[0]
    assert torch.allclose(g_one, (mean.detach() - z) / 3)


def test_the_variance_head_starts_at_the_labels_variance_and_leaves_the_mean_path_alone():
    torch.manual_seed(0)
    plain = Standardized(MLP(N_PIX, [8], 0.0), N_PIX)
    torch.manual_seed(0)
    het = Standardized(MLP(N_PIX, [8], 0.0), N_PIX, variance=True)
    x = torch.randn(5, N_PIX)
    out = het(x)
    assert out.shape == (5, 2) and torch.equal(out[:, 0], plain(x))   # same init, same mean
    assert torch.all(out[:, 1] == 0)                                  # log-variance 0: sd = y_std
    mean, sd = het.logg_std(x)
    assert torch.equal(mean, het.logg(x)) and torch.all(sd == het.y_std)
    with pytest.raises(ValueError, match="no variance head"):
        plain.logg_std(x)
    with torch.no_grad():
        huge = het.var_head(torch.full((1, 1, 8), 1e6) * torch.randn(1, 1, 8))
    assert LOG_VAR_RANGE[0] <= float(huge) <= LOG_VAR_RANGE[1]


def test_provides_std_follows_the_loss_for_every_network_class():
    for c in ("mlp", "mlp_shortcut", "cnn", "vit"):
        cls = REGISTRY[c]
        assert not cls.provides_std({}) and cls.provides_std({"loss": "gaussian_nll"})
        assert make_estimator(c, {"loss": "beta_nll"}).gives_std and not make_estimator(c).gives_std
        out = make_estimator(c, {"loss": "beta_nll"}).build(256)(torch.randn(2, 256) + 1)
        assert out.shape == (2, 2)


def test_a_variance_head_learns_which_stars_are_noisy(nll):
    est, X, S, va = nll
    mean, sd = predict_with_std(est, X, S)
    assert np.array_equal(mean, est.predict(X, S))
    noisy = X[:, 0] > 1.0
    # the truth per star is the label noise (0.4 or 0.05 dex) plus the mean's own error, so compare each
    # group's sd with its actual rms error (measured: 0.33 vs 0.41 dex and 0.21 vs 0.20 dex)
    for group in (noisy, ~noisy):
        rms = np.sqrt(np.mean((va.logg[group] - mean[group]) ** 2))
        assert 0.7 <= np.median(sd[group]) / rms <= 1.35, (np.median(sd[group]), rms)
    assert np.median(sd[noisy]) / np.median(sd[~noisy]) > 1.3
    assert 0.6 <= coverage(va.logg, mean, sd, 0.683) <= 0.8
    assert 0.88 <= coverage(va.logg, mean, sd, 0.954) <= 0.99
    assert "val_r2" in est.history_ and len(est.history_["val_loss"]) == est.epochs_run_


def test_return_std_without_a_variance_head_is_refused(toy):
    est, X, S, _ = fit(toy, hyper={"loss": "mse", "epochs": 1})
    with pytest.raises(InputError, match=r"mlp.predict: return_std needs a variance head"):
        est.predict(X, S, return_std=True)
    with pytest.raises(InputError, match="gives no per-star standard deviation"):
        predict_with_std(est, X, S)


def test_a_variance_head_round_trips_through_its_model_folder(nll, tmp_path):
    est, X, S, _ = nll
    est.save(tmp_path / "m")
    back = load(tmp_path / "m")
    for a, b in zip(est.predict(X, S, return_std=True), back.predict(X, S, return_std=True)):
        assert np.array_equal(a, b)
    assert back.predict_all(X, S).keys() == {"", "std"}


def test_a_killed_nll_fit_resumes_to_identical_means_and_sds(toy, nll, tmp_path):
    est, X, S, _ = nll
    with pytest.raises(Preempted):
        fit(toy, checkpoint_dir=tmp_path, on_batch=sigterm_at(3, 7))
    assert (tmp_path / CHECKPOINT).is_file()
    again, *_ = fit(toy, checkpoint_dir=tmp_path)
    for a, b in zip(est.predict(X, S, return_std=True), again.predict(X, S, return_std=True)):
        assert np.array_equal(a, b)


ENSEMBLE = {"member": {"class": "mlp", "hyper": {**NLL_MLP, "loss": "mse", "epochs": 8}}, "size": 3}


@pytest.fixture(scope="module")
def ensemble(toy):
    return fit(toy, "ensemble", ENSEMBLE)


def test_an_ensemble_is_the_mean_of_its_seeds_and_its_spread(ensemble, tmp_path):
    est, X, S, va = ensemble
    members = est.members()
    assert len(members) == 3 and len({m.random_state for m in members}) == 3
    means = np.stack([m.predict(X, S) for m in members])
    assert not np.array_equal(means[0], means[1])                     # different seeds, different nets
    mean, sd = est.predict(X, S, return_std=True)
    assert np.allclose(mean, means.mean(0)) and np.allclose(sd, means.std(0))
    allp = est.predict_all(X, S)
    assert set(allp) == {"", "std", "member_0", "member_1", "member_2"}
    # MSE members: their disagreement is not the label noise -- far too narrow an interval here
    assert coverage(va.logg, mean, sd, 0.683) < 0.4
    est.save(tmp_path / "e")
    back = load(tmp_path / "e")
    assert np.array_equal(back.predict(X, S, return_std=True)[1], sd)
    assert back.label == "MLP ensemble (3)"


def test_an_ensemble_of_variance_heads_adds_their_variances(toy):
    est, X, S, va = fit(toy, "ensemble", {"member": {"class": "mlp", "hyper": {**NLL_MLP, "epochs": 6}}, "size": 2})
    pairs = [m.predict(X, S, return_std=True) for m in est.members()]
    mean, sd = est.predict(X, S, return_std=True)
    means, sds = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    assert np.allclose(sd ** 2, means.var(0) + (sds ** 2).mean(0))
    assert np.all(sd >= sds.max(0) / np.sqrt(2) - 1e-12)


def test_an_ensemble_is_deterministic_and_checks_its_size(toy):
    a, X, S, _ = fit(toy, "ensemble", {**ENSEMBLE, "member": {"class": "mlp", "hyper": {**NLL_MLP, "epochs": 1}}})
    b, *_ = fit(toy, "ensemble", {**ENSEMBLE, "member": {"class": "mlp", "hyper": {**NLL_MLP, "epochs": 1}}})
    assert np.array_equal(a.predict(X, S, return_std=True)[1], b.predict(X, S, return_std=True)[1])
    for bad in (1, 2.5, True):
        with pytest.raises(InputError, match=r"estimators.e.hyper.size: got .* expected an integer >= 2"):
            REGISTRY["ensemble"].check_hyper({"size": bad}, "estimators.e.hyper")
    with pytest.raises(InputError, match=r"member.hyper: unknown hyper-parameter"):
        REGISTRY["ensemble"].check_hyper({"member": {"class": "mlp", "hyper": {"widths": [3]}}}, "estimators.e.hyper")


def test_conformal_rescales_the_sigma_on_validation_and_keeps_the_mean(nll, toy, tmp_path):
    est, X, S, va = nll
    tr, va2 = views(toy)
    wide = make_estimator("conformal").fit(tr, va2, FitContext(upstream={"model": est}, where="estimators.c"))
    mean, sd = est.predict(X, S, return_std=True)
    m2, sd2 = wide.predict(X, S, return_std=True)
    assert np.array_equal(m2, mean) and np.allclose(sd2, sd * wide.scale_)
    # validation is where the factor was set: its coverage is the level up to one star
    assert abs(coverage(va.logg, m2, sd2, 0.683) - 0.683) <= 2 / len(va.logg) + 1e-9
    assert wide.fitted()["val_coverage_before"] == pytest.approx(coverage(va.logg, mean, sd, 0.683))
    wide.save(tmp_path / "c")
    back = load(tmp_path / "c")
    assert np.array_equal(back.predict(X, S, return_std=True)[1], sd2) and back.label == "MLP, conformal sigma"


def test_conformal_needs_an_upstream_model_that_gives_a_std(toy):
    plain, *_ = fit(toy, hyper={"loss": "mse", "epochs": 1})
    tr, va = views(toy)
    with pytest.raises(InputError, match=r"estimators.c.upstream.model: a model of class 'mlp', expected .* per-star std"):
        make_estimator("conformal").fit(tr, va, FitContext(upstream={"model": plain}, where="estimators.c.hyper"))
    with pytest.raises(InputError, match=r"estimators.c.upstream.model: required"):
        make_estimator("conformal").fit(tr, va, FitContext(where="estimators.c.hyper"))
    with pytest.raises(InputError, match=r"hyper.level: got 1.5"):
        REGISTRY["conformal"].check_hyper({"level": 1.5}, "estimators.c.hyper")
