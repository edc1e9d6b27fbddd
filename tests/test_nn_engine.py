"""The neural training engine (pfslogg.nn.engine) through the neural estimators, on tiny data sets.

Data: the shared small splits of the 512-pixel fake grid (``simulate_splits``: 800 / 200 / 200
spectra), and toy data sets in the pfsspec layout whose log g is a known function of the flux
(:func:`write_toy_set`). Networks are tiny so every fit takes about a second on 2 cores.
"""

import math
import os
import re
import signal
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from pfslogg.data.dataset import ERROR_KEY, FLUX_KEY, PARAMS_KEY, WAVE_KEY, SpectraSet
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, make_estimator
from pfslogg.evaluation import r2_score
from pfslogg.nn import engine
from pfslogg.nn.engine import CHECKPOINT, COLUMNS, HISTORY, Preempted, TrainConfig, lr_factor, train_step
from pfslogg.nn.models import MLP, Standardized

from conftest import simulate_splits

# One torch thread: tiny networks gain nothing from two, and two OpenMP threads stall whenever
# another process holds a core (seen: 10x slower fits on a busy 2-core machine).
THREADS = 1
TINY_MLP = {"hidden": [16], "epochs": 3, "batch_size": 64, "block_size": 128, "buffer_blocks": 2, "patience": 10}


def write_toy_set(path, flux, logg, error=0.01):
    """A data set in the pfsspec layout with the given clean ``flux`` (n, n_pix) and ``logg`` (n,)."""
    n, m = flux.shape
    with h5py.File(path, "w") as h5:
        h5[WAVE_KEY] = np.linspace(7100.0, 8850.0, m)
        h5[FLUX_KEY] = flux.astype(np.float32)
        h5[ERROR_KEY] = np.full((n, m), error, np.float32)
    df = pd.DataFrame({"T_eff": 5000.0, "log_g": logg, "M_H": 0.0, "a_M": 0.0, "snr": 1.0 / error}, index=range(n))
    df.to_hdf(path, key=PARAMS_KEY, mode="a", format="table")
    return SpectraSet(path)


def toy_splits(root, n_pix, target, sizes=(600, 200), seed=0):
    """(train, val) SpectraSets of flux 1 + 0.05 N(0, 1) and log g = target(flux - 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, n in zip(("train", "val"), sizes):
        dev = 0.05 * rng.standard_normal((n, n_pix))
        out.append(write_toy_set(root / f"{name}.h5", 1.0 + dev, target(dev)))
    return out


@pytest.fixture(scope="module")
def splits(coarse_instrument_grid, tmp_path_factory):
    paths = simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("nn_splits"))
    return {k: SpectraSet(p) for k, p in paths.items()}


def views(splits, noise_level=1.0):
    """Fresh (train, val, test) views: a fit consumes its training view's generator."""
    return (NoisyView(splits["train"], noise_level, rng_seed=5), NoisyView(splits["val"], noise_level, noise_seed=11),
            NoisyView(splits["test"], noise_level, noise_seed=13))


def fit_predict(splits, cls="mlp", hyper=None, checkpoint_dir=None, on_batch=None, random_state=0):
    """Fit a fresh estimator on fresh views; (estimator, test predictions)."""
    tr, va, te = views(splits)
    est = make_estimator(cls, {**TINY_MLP, **(hyper or {})}, random_state=random_state)
    est.fit(tr, va, FitContext(threads=THREADS, checkpoint_dir=checkpoint_dir), on_batch=on_batch)
    X, S = te.load()
    return est, est.predict(X, S)


def sigterm_at(epoch, batch):
    """on_batch hook: this process sends itself SIGTERM after step (epoch, batch)."""
    def hook(e, b):
        if (e, b) == (epoch, batch):
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


@pytest.fixture(scope="module")
def reference(splits):
    """An uninterrupted fit (no checkpoints): the predictions every resumed run must reproduce."""
    return fit_predict(splits)


def test_fit_is_deterministic_for_a_seed(splits, reference):
    est, pred = fit_predict(splits)
    assert np.array_equal(pred, reference[1])
    assert est.history_["val_r2"] == reference[0].history_["val_r2"]
    _, other = fit_predict(splits, random_state=1)
    assert not np.array_equal(other, reference[1])


def test_fit_leaves_the_callers_torch_rng_alone(splits):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    fit_predict(splits, hyper={"epochs": 1})
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("epoch, batch", [(0, 4), (1, 12), (2, 0)], ids=["mid-epoch1", "end-epoch2", "start-epoch3"])
def test_sigterm_saves_and_a_rerun_resumes_to_identical_predictions(splits, reference, tmp_path, epoch, batch):
    # 800 spectra / 64 = 13 batches per epoch: (1, 12) is an epoch's last batch
    with pytest.raises(Preempted) as e:
        fit_predict(splits, checkpoint_dir=tmp_path, on_batch=sigterm_at(epoch, batch))
    assert e.value.code == 143 and "rerun to resume" in str(e.value)
    assert (tmp_path / CHECKPOINT).is_file()
    steps = []
    est, pred = fit_predict(splits, checkpoint_dir=tmp_path, on_batch=lambda e, b: steps.append((e, b)))
    assert steps[0] == ((epoch, batch + 1) if batch < 12 else (epoch + 1, 0))   # went on where it stopped
    assert np.array_equal(pred, reference[1])
    assert est.best_epoch_ == reference[0].best_epoch_
    assert np.allclose(est.history_["val_r2"], reference[0].history_["val_r2"], rtol=0, atol=0)


def test_sigterm_from_another_process_then_resume(splits, reference, tmp_path):
    """A real kill: a child process fits with a checkpoint folder and is sent SIGTERM mid-run."""
    code = f"""
import sys, os
sys.path.insert(0, {os.path.dirname(__file__)!r})
from pathlib import Path
import test_nn_engine as t
from pfslogg.data.dataset import SpectraSet
splits = {{k: SpectraSet(Path({str(splits['train'].path.parent)!r}) / f"{{k}}.h5") for k in ("train", "val", "test")}}
def hook(e, b):
    if (e, b) == (1, 3):
        print("ready", flush=True)
    if (e, b) >= (1, 3):
        import time; time.sleep(0.05)   # slow steps: the parent's SIGTERM lands in one of them
t.fit_predict(splits, checkpoint_dir={str(tmp_path)!r}, on_batch=hook)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    _, pred = fit_predict(splits, checkpoint_dir=tmp_path)
    assert np.array_equal(pred, reference[1])


def test_finished_checkpoint_returns_without_training(splits, reference, tmp_path):
    _, first = fit_predict(splits, checkpoint_dir=tmp_path)
    steps = []
    est, again = fit_predict(splits, checkpoint_dir=tmp_path, on_batch=lambda e, b: steps.append(b))
    assert steps == [] and np.array_equal(again, first) and np.array_equal(first, reference[1])
    assert est.epochs_run_ == 3


def test_checkpoint_files_load_without_pickle_and_log_every_epoch(splits, tmp_path):
    est, _ = fit_predict(splits, checkpoint_dir=tmp_path)
    ck = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert {"model", "best", "optimizer", "scheduler", "torch_rng", "meta"} <= set(ck)
    lines = (tmp_path / HISTORY).read_text().splitlines()
    assert lines[0].split(",") == list(COLUMNS) and len(lines) == 1 + est.epochs_run_
    assert set(est.history_) == set(COLUMNS) and len(est.history_["lr"]) == est.epochs_run_


def test_checkpoint_of_another_configuration_is_refused(splits, tmp_path):
    fit_predict(splits, checkpoint_dir=tmp_path, hyper={"epochs": 1})
    with pytest.raises(InputError, match="another configuration"):
        fit_predict(splits, checkpoint_dir=tmp_path, hyper={"epochs": 1, "lr": 0.01})


def test_early_stopping_restores_the_best_weights(splits):
    """Weights are wrecked from epoch 2 on: training stops after ``patience`` bad epochs and the
    returned model is epoch 1's, whose validation R^2 it reproduces."""
    tr, va, _ = views(splits)
    module = Standardized(MLP(tr.n_pixels, [16], 0.0), tr.n_pixels)

    def wreck(epoch, batch):
        if epoch >= 1:
            with torch.no_grad():
                for p in module.net.parameters():
                    p.add_(torch.randn_like(p))

    cfg = TrainConfig(epochs=10, batch_size=64, block_size=128, patience=2, lr=3e-3)
    res = engine.train(module, tr, va, cfg, FitContext(threads=THREADS), on_batch=wreck)
    assert res.best_epoch == 1 and res.epochs_run == 3 and len(res.history["val_r2"]) == 3
    assert res.history["val_r2"][0] == max(res.history["val_r2"])
    X, _ = va.load()
    assert r2_score(va.logg, engine.predict(module, X)) == pytest.approx(res.best_val_r2, abs=1e-12)


def test_lr_schedule_warms_up_then_falls_along_a_cosine_to_the_minimum():
    total, warmup, lo = 100, 10, 0.05
    f = np.array([lr_factor(s, total, warmup, lo) for s in range(total)])
    assert np.all(np.diff(f[:warmup]) > 0) and f[warmup - 1] == 1.0 and f[0] == pytest.approx(0.1)
    assert np.all(np.diff(f[warmup:]) < 0) and f[-1] == pytest.approx(lo)
    mid = warmup + (total - warmup - 1) / 2
    assert lr_factor(mid, total, warmup, lo) == pytest.approx(lo + (1 - lo) / 2)


def test_the_last_logged_learning_rate_is_the_minimum(splits, reference):
    est = reference[0]
    hyper = est.get_params()
    assert est.history_["lr"][-1] == pytest.approx(hyper["lr"] * hyper["min_lr_ratio"])
    assert est.history_["lr"][0] > est.history_["lr"][-1]


def test_gradient_clipping_bounds_the_norm():
    torch.manual_seed(0)
    model = torch.nn.Linear(32, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    x, z = 100 * torch.randn(64, 32), 100 * torch.randn(64, 1)
    before, after = _clipped(model, opt, sched, x, z, 0.5)
    assert before > 0.5 and after == pytest.approx(0.5, rel=1e-5)
    before, after = _clipped(model, opt, sched, x, z, 0.0)
    assert after == pytest.approx(before, rel=1e-5) and after > 0.5


def _clipped(model, opt, sched, x, z, clip):
    """(gradient norm before clipping, after) of one train_step of ``model``."""
    _, norm = train_step(model, opt, sched, x, z, torch.nn.functional.mse_loss, clip, False)
    after = math.sqrt(sum(float((p.grad ** 2).sum()) for p in model.parameters()))
    return float(norm), after


def test_labels_are_standardised_with_the_training_log_g(splits, reference):
    est = reference[0]
    logg = splits["train"].logg
    assert est.label_mean_ == pytest.approx(logg.mean()) and est.label_std_ == pytest.approx(logg.std())
    assert float(est.module_.y_mean) == pytest.approx(logg.mean(), rel=1e-6)


def test_l1_and_mse_losses_train_different_models(splits, reference):
    est, pred = fit_predict(splits, hyper={"loss": "l1"})
    assert not np.array_equal(pred, reference[1])
    assert est.history_["train_loss"] != reference[0].history_["train_loss"]


def test_tiny_mlp_learns_a_linear_toy(tmp_path):
    w = np.random.default_rng(1).standard_normal(64)
    train_set, val_set = toy_splits(tmp_path, 64, lambda dev: 3.0 + dev @ w)
    # a toy set has no exposure model to estimate sigma with: its stored sigma (networks never read it)
    tr = NoisyView(train_set, 1.0, rng_seed=0, sigma="stored")
    va = NoisyView(val_set, 1.0, noise_seed=1, sigma="stored")
    est = make_estimator("mlp", {"hidden": [32], "epochs": 30, "batch_size": 32, "lr": 3e-3, "dropout": 0.0,
                                 "block_size": 200})
    est.fit(tr, va, FitContext(threads=THREADS))
    X, S = va.load()
    assert r2_score(va.logg, est.predict(X, S)) > 0.9 and est.best_val_r2_ > 0.9


@pytest.mark.parametrize("cls, hyper, key", [
    ("mlp", {"loss": "huber"}, "loss"),
    ("mlp", {"patience": 0}, "patience"),
    ("mlp", {"warmup_fraction": 1.5}, "warmup_fraction"),
    ("mlp", {"standardize": "robust"}, "standardize"),
    ("cnn", {"kernel_size": 8}, "kernel_size"),
    ("cnn", {"pool": 4, "depth": 6}, "pool"),
    ("vit", {"tokenizer": "words"}, "tokenizer"),
    ("vit", {"position": "rotary"}, "position"),
    ("vit", {"patch": 100}, "patch"),
    ("vit", {"tokenizer": "overlap", "patch": 32, "stride": 32}, "stride"),
    ("vit", {"dim": 30, "heads": 4}, "dim"),
])
def test_bad_hyper_parameters_name_the_key(cls, hyper, key):
    est = make_estimator(cls, hyper)
    with pytest.raises(InputError) as e:
        est.build(512)
    msg = str(e.value)
    assert f"estimators.{cls}.hyper.{key}:" in msg and "expected" in msg and "\n" not in msg


def test_compile_is_refused_on_cpu(splits):
    tr, va, _ = views(splits)
    module = Standardized(MLP(tr.n_pixels, [8]), tr.n_pixels)
    with pytest.raises(InputError, match="nn.compile: only on CUDA"):
        engine.train(module, tr, va, TrainConfig(epochs=1, compile=True), FitContext(device="cpu"))


@pytest.mark.parametrize("value", ["yes", 1.0])
def test_amp_must_be_a_boolean_or_null(value):
    est = make_estimator("cnn", {"amp": value})
    with pytest.raises(InputError, match=r"estimators.cnn.hyper.amp: got .*expected true, false or null"):
        est.build(512)


def test_bf16_autocast_on_cpu_is_deterministic_resumes_identically_and_learns_as_well(splits, reference, tmp_path):
    """amp on CPU: the forward pass in bf16 (weights, optimiser and loss float32) changes the fit -- so the
    flag reaches the step --, but the same seed gives the same predictions again, a pre-empted run resumes
    to them, and the fit is as good as float32's within a few hundredths of R^2."""
    y = views(splits)[2].y
    est, pred = fit_predict(splits, hyper={"amp": True})
    assert not np.array_equal(pred, reference[1])
    assert abs(r2_score(y, pred) - r2_score(y, reference[1])) < 0.05
    assert np.array_equal(fit_predict(splits, hyper={"amp": True})[1], pred)
    with pytest.raises(Preempted):
        fit_predict(splits, hyper={"amp": True}, checkpoint_dir=tmp_path, on_batch=sigterm_at(1, 3))
    assert np.array_equal(fit_predict(splits, hyper={"amp": True}, checkpoint_dir=tmp_path)[1], pred)


def test_a_vit_under_bf16_autocast_on_cpu_attends_in_float32_and_is_deterministic(splits):
    """The ViT's attention leaves autocast on CPU (its bf16 backward is ~10x slower than float32's): the
    block's output under autocast is bfloat16 from the projection, the fit repeats bitwise."""
    from pfslogg.nn.vit import SelfAttention, ViTConfig

    attn = SelfAttention(ViTConfig(n_pix=512, patch=32, dim=16, depth=1, heads=2, mlp=32, dropout=0.0))
    x = torch.randn(2, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = attn(x)
    assert y.dtype == torch.bfloat16 and torch.allclose(y.float(), attn(x)[0], atol=0.05)
    hyper = {"patch": 32, "dim": 16, "depth": 1, "heads": 2, "mlp": 32, "dropout": 0.0, "epochs": 2, "batch_size": 64,
             "block_size": 128, "buffer_blocks": 2, "amp": True}

    def fit():
        tr, va, te = views(splits)
        est = make_estimator("vit", hyper).fit(tr, va, FitContext(threads=THREADS))
        return est.predict(*te.load())

    assert np.array_equal(fit(), fit())


EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+): train loss (\S+), val loss (\S+), val R\^2 (\S+), lr (\S+) \(")


def _engine_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "pfslogg.nn.engine"]


def test_training_logs_each_epoch_and_shows_the_running_loss(splits, reference, tmp_path, caplog, capsys):
    """One log line per epoch with train loss, val loss, val R^2 and lr (the history's values); the
    bar's postfix carries the running training loss, which ends at the epoch's train loss."""
    with caplog.at_level("INFO", logger="pfslogg.nn.engine"):
        est, pred = fit_predict(splits, checkpoint_dir=tmp_path)
    assert np.array_equal(pred, reference[1])   # watching changes nothing
    h = est.history_
    lines = [m for m in _engine_lines(caplog) if EPOCH_LINE.match(m)]
    assert len(lines) == est.epochs_run_ == 3, _engine_lines(caplog)
    for i, line in enumerate(lines):
        epoch, total, train_loss, val_loss, val_r2, lr = EPOCH_LINE.match(line).groups()
        assert (int(epoch), int(total)) == (i + 1, 3)
        assert train_loss == f"{h['train_loss'][i]:.4g}" and val_loss == f"{h['val_loss'][i]:.4g}"
        assert val_r2 == f"{h['val_r2'][i]:.4f}" and lr == f"{h['lr'][i]:.3g}"
    assert not any(m.startswith("resumed") for m in _engine_lines(caplog))   # a fresh start
    err = capsys.readouterr().err
    for i in range(3):
        bar = [line for line in err.splitlines() if line.startswith(f"epoch {i + 1}/3:") and "13/13" in line]
        assert bar and bar[-1].endswith(f"train loss {h['train_loss'][i]:.4g}]"), err[-2000:]


def test_a_resumed_run_says_from_which_checkpoint_epoch_and_batch(splits, reference, tmp_path, caplog):
    with pytest.raises(Preempted):
        fit_predict(splits, checkpoint_dir=tmp_path, on_batch=sigterm_at(1, 4))   # epoch 2, after its 5th batch
    caplog.clear()
    with caplog.at_level("INFO", logger="pfslogg.nn.engine"):
        _, pred = fit_predict(splits, checkpoint_dir=tmp_path)
    assert np.array_equal(pred, reference[1])
    lines = _engine_lines(caplog)
    assert lines[0] == f"resumed from {tmp_path / CHECKPOINT} at epoch 2, batch 5 (of 13)", lines
    assert [EPOCH_LINE.match(m).group(1) for m in lines[1:] if EPOCH_LINE.match(m)] == ["2", "3"]
    caplog.clear()
    with caplog.at_level("INFO", logger="pfslogg.nn.engine"):
        fit_predict(splits, checkpoint_dir=tmp_path)
    assert _engine_lines(caplog) == [f"resumed from {tmp_path / CHECKPOINT}: its run had finished after epoch 3; "
                                     "nothing left to train"]
