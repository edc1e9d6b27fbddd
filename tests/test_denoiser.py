"""The residual denoiser (Track D): its network, the clean-spectrum target of the engine, the estimator.

Data: the shared small splits of the 512-pixel fake grid (``simulate_splits``), a 300-spectrum
training subset at noise level 1; networks are small (channels 8) so every fit takes a second or
two on one thread.
"""

import os
import signal

import numpy as np
import pytest
import torch

from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView, SubsetView
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, load, make_estimator
from pfslogg.estimators.base import REGISTRY
from pfslogg.nn import engine
from pfslogg.nn.denoiser import DenoiserConfig, ResidualDenoiser
from pfslogg.nn.engine import CHECKPOINT, HISTORY, Preempted
from pfslogg.nn.targets import CleanSpectrumTarget, wmae

from conftest import simulate_splits

THREADS = 1
N_TRAIN = 300
TINY = {"channels": 8, "epochs": 3, "batch_size": 16, "lr": 5e-3, "block_size": 128, "buffer_blocks": 2,
        "patience": 10}


@pytest.fixture(scope="module")
def splits(coarse_instrument_grid, tmp_path_factory):
    paths = simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("denoiser_splits"))
    return {k: SpectraSet(p) for k, p in paths.items()}


def views(splits, noise_level=1.0):
    """Fresh (train, val, test) views: 300 training spectra with fresh noise, fixed noise elsewhere."""
    train = SubsetView(NoisyView(splits["train"], noise_level, rng_seed=5), rows=np.arange(N_TRAIN))
    return (train, NoisyView(splits["val"], noise_level, noise_seed=11),
            NoisyView(splits["test"], noise_level, noise_seed=13))


def fit(splits, hyper=None, checkpoint_dir=None, on_batch=None, random_state=0):
    """A fresh denoiser fitted on fresh views; (estimator, test (flux, sigma, clean))."""
    tr, va, te = views(splits)
    est = make_estimator("denoiser", {**TINY, **(hyper or {})}, random_state=random_state, kinds=("transform",))
    est.fit(tr, va, FitContext(threads=THREADS, checkpoint_dir=checkpoint_dir), on_batch=on_batch)
    flux, sigma = te.read(0, te.n)
    return est, (flux, sigma, te.read_clean(0, te.n))


def mean_wmae(x, clean, sigma, floor=1e-3):
    return float(wmae(*(torch.from_numpy(np.asarray(a, float)) for a in (x, clean, sigma)), floor))


@pytest.fixture(scope="module")
def reference(splits):
    """An uninterrupted fit (no checkpoints) and the test spectra."""
    return fit(splits)


def test_the_class_is_a_registered_transform():
    cls = REGISTRY["denoiser"]
    assert cls.kind == "transform" and cls.accelerator and cls.label == "Residual denoiser"
    with pytest.raises(InputError, match="unknown estimator class 'denoiser'"):
        make_estimator("denoiser")   # not an estimator of log g
    params = cls.hyper_names()
    assert {"strengths", "strength", "sigma_floor", "channels", "levels", "epochs", "lr"} <= params
    assert "loss" not in params and "dropout" not in params


def test_the_network_is_the_identity_at_strength_zero_exactly():
    torch.manual_seed(0)
    net = ResidualDenoiser(DenoiserConfig(n_pix=256, channels=4, levels=1))
    for p in net.parameters():   # a network far from its zero-started output layer
        torch.nn.init.normal_(p, std=0.5)
    flux = 1 + 0.1 * torch.randn(5, 256)
    sigma = 0.1 + 0.01 * torch.rand(5, 256)
    assert torch.equal(net(flux, sigma, torch.zeros(5)), flux)
    assert torch.equal(net(flux, sigma, 0.0), flux)
    out = net(flux, sigma, torch.tensor([0.0, 0.1, 0.0, 0.2, 0.05]))
    assert torch.equal(out[[0, 2]], flux[[0, 2]]) and not torch.equal(out[1], flux[1])


def test_transform_is_the_identity_at_strength_zero_bitwise(reference):
    est, (flux, sigma, _) = reference
    assert np.array_equal(est.transform(flux, sigma, strength=0.0), flux)
    assert np.array_equal(est.transform(flux.astype(np.float32), sigma, strength=0), flux.astype(np.float32))
    out = est.transform(flux, sigma)
    assert out.dtype == np.float64 and out.shape == flux.shape and not np.array_equal(out, flux)


def test_a_short_training_beats_the_identity_at_every_strength(reference):
    """3 epochs on 300 spectra at noise 1: the wMAE of the denoised test spectra is below that of the
    noisy ones at each training strength, and the validation gain it reports is real."""
    est, (flux, sigma, clean) = reference
    identity = mean_wmae(flux, clean, sigma)
    for s in (0.05, 0.1, 0.2):
        assert mean_wmae(est.transform(flux, sigma, strength=s), clean, sigma) < 0.97 * identity, s
    fit_ = est.fitted()
    assert fit_["best_val_gain"] > 0.03 and fit_["best_val_wmae"] == min(fit_["history"]["val_loss"])
    assert fit_["epochs_run"] == 3 and len(fit_["history"]["val_gain"]) == 3 and fit_["n_params"] > 0
    assert set(fit_["history"]) == {"epoch", "train_loss", "val_loss", "val_gain", "lr", "seconds", "spectra_per_s"}


def test_transform_is_deterministic_and_batched(reference):
    est, (flux, sigma, _) = reference
    first = est.transform(flux, sigma)
    assert np.array_equal(est.transform(flux, sigma), first)
    # batches do not mix spectra (float32 convolutions may round differently for another batch size)
    np.testing.assert_allclose(est.transform(flux[:7], sigma[:7]), first[:7], rtol=1e-6, atol=1e-6)


def test_predict_raises_a_clear_error(reference):
    est, (flux, sigma, _) = reference
    with pytest.raises(InputError, match="is a transform .* does not predict log g"):
        est.predict(flux, sigma)


def test_save_and_load_give_identical_transforms(reference, tmp_path):
    est, (flux, sigma, _) = reference
    est.save(tmp_path / "den")
    assert not list((tmp_path / "den").glob("*.pkl"))
    back = load(tmp_path / "den")
    assert back.kind == "transform" and back.fitted() == est.fitted()
    for s in (None, 0.05, 0.0):
        assert np.array_equal(back.transform(flux, sigma, strength=s), est.transform(flux, sigma, strength=s))


def test_fit_is_deterministic_for_a_seed(splits, reference):
    est, (flux, sigma, _) = fit(splits, hyper={"epochs": 1})
    again, _ = fit(splits, hyper={"epochs": 1})
    assert np.array_equal(est.transform(flux, sigma), again.transform(flux, sigma))
    other, _ = fit(splits, hyper={"epochs": 1}, random_state=1)
    assert not np.array_equal(other.transform(flux, sigma), est.transform(flux, sigma))


def sigterm_at(epoch, batch):
    """on_batch hook: this process sends itself SIGTERM after step (epoch, batch)."""
    def hook(e, b):
        if (e, b) == (epoch, batch):
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


@pytest.mark.parametrize("epoch, batch", [(0, 4), (1, 18)], ids=["mid-epoch1", "end-epoch2"])
def test_sigterm_then_resume_gives_identical_weights(splits, reference, tmp_path, epoch, batch):
    # 300 spectra / 16 = 19 batches per epoch (the last of 12): (1, 18) is epoch 2's last batch
    with pytest.raises(Preempted):
        fit(splits, checkpoint_dir=tmp_path, on_batch=sigterm_at(epoch, batch))
    assert (tmp_path / CHECKPOINT).is_file()
    steps = []
    est, (flux, sigma, _) = fit(splits, checkpoint_dir=tmp_path, on_batch=lambda e, b: steps.append((e, b)))
    assert steps[0] == ((epoch, batch + 1) if batch < 18 else (epoch + 1, 0))
    ref = reference[0]
    for k, v in ref.module_.state_dict().items():
        assert torch.equal(est.module_.state_dict()[k], v), k
    assert est.history_["val_gain"] == ref.history_["val_gain"] and est.best_epoch_ == ref.best_epoch_
    assert (tmp_path / HISTORY).read_text().splitlines()[0].split(",")[3] == "val_gain"


def test_a_checkpoint_of_another_target_is_refused(splits, tmp_path):
    """The target joins the checkpoint signature: a log g run's folder, or a denoiser's with another
    validation strength, is not resumed."""
    from pfslogg.nn.models import MLP, Standardized

    cfg = engine.TrainConfig(epochs=1, batch_size=32, block_size=128)
    ctx = FitContext(threads=THREADS, checkpoint_dir=tmp_path)
    tr, va, _ = views(splits)
    engine.train(Standardized(MLP(512, [8]), 512), tr, va, cfg, ctx)
    denoiser = ResidualDenoiser(DenoiserConfig(n_pix=512, channels=4, levels=1))
    tr, va, _ = views(splits)
    with pytest.raises(InputError, match="another configuration"):
        engine.train(denoiser, tr, va, cfg, ctx, target=CleanSpectrumTarget())
    ctx = FitContext(threads=THREADS, checkpoint_dir=tmp_path / "den")
    tr, va, _ = views(splits)
    engine.train(denoiser, tr, va, cfg, ctx, target=CleanSpectrumTarget())
    tr, va, _ = views(splits)
    with pytest.raises(InputError, match="another configuration"):
        engine.train(denoiser, tr, va, cfg, ctx, target=CleanSpectrumTarget(strength=0.1))


def test_the_stream_yields_noisy_clean_pairs_with_fresh_noise(splits):
    """Each batch: noisy flux, its sigma, the clean flux of the same rows, strengths from the list;
    a second epoch draws new noise on the same rows."""
    from pfslogg.nn.data import BlockStream

    tr, _, _ = views(splits)
    stream = BlockStream(tr, 64, 128, 2, seed=0, target=CleanSpectrumTarget(strengths=(0.05, 0.2)))
    first = [b for b in stream]
    flux, sigma, clean, s = first[0]
    assert flux.shape == sigma.shape == clean.shape == (64, 512) and s.shape == (64,)
    assert set(s.tolist()) <= {np.float32(0.05), np.float32(0.2)}
    z = ((flux - clean) / sigma).numpy()
    assert 0.5 < z.std() < 2 and abs(z.mean()) < 0.1   # noise of about one sigma around the clean flux
    seen = {c.numpy().tobytes(): f for f_, _, c_, _ in first for f, c in zip(f_, c_)}   # clean row -> noisy
    f2, _, c2, _ = next(iter(stream))                                                  # the next epoch
    assert all(c.numpy().tobytes() in seen for c in c2)   # the same clean rows ...
    assert not any(torch.equal(seen[c.numpy().tobytes()], f) for f, c in zip(f2, c2))   # ... with new noise


@pytest.mark.parametrize("hyper, key", [
    ({"strengths": []}, "strengths"),
    ({"strengths": [0.1, -0.2]}, "strengths"),
    ({"strength": -1}, "strength"),
    ({"sigma_floor": 0}, "sigma_floor"),
    ({"channels": 0}, "channels"),
    ({"kernel_size": 4}, "kernel_size"),
    ({"factor": 1}, "factor"),
    ({"patch": 3}, "patch"),
    ({"lr": 0}, "lr"),
])
def test_bad_hyper_parameters_name_the_key(hyper, key):
    with pytest.raises(InputError) as e:   # when built (make_estimator checks what needs no data)
        make_estimator("denoiser", hyper, kinds=("transform",)).build(512)
    msg = str(e.value)
    assert f"estimators.denoiser.hyper.{key}:" in msg and "expected" in msg and "\n" not in msg


def test_bad_hyper_parameters_are_refused_when_the_config_is_read():
    with pytest.raises(InputError, match=r"^estimators\.den\.hyper\.strength: got -1, expected"):
        REGISTRY["denoiser"].check_hyper({"strength": -1}, "estimators.den.hyper")
    REGISTRY["denoiser"].check_hyper({"patch": 3}, "estimators.den.hyper")   # the pixel count is checked in fit


def test_training_at_noise_level_zero_is_refused(splits):
    est = make_estimator("denoiser", TINY, kinds=("transform",))
    tr, va = NoisyView(splits["train"], 0.0, rng_seed=1), NoisyView(splits["val"], 0.0, noise_seed=2)
    with pytest.raises(InputError, match="noise level 0"):
        est.fit(tr, va, FitContext(threads=THREADS))


def test_transform_checks_its_input(reference):
    est, (flux, sigma, _) = reference
    with pytest.raises(InputError, match=r"flux of shape \(3, 100\)"):
        est.transform(flux[:3, :100], sigma[:3, :100])
    with pytest.raises(InputError, match="sigma of shape"):
        est.transform(flux, sigma[:, :100])
    with pytest.raises(InputError, match="strength -0.5"):
        est.transform(flux, sigma, strength=-0.5)
