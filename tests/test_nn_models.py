"""The networks (pfslogg.nn.models, pfslogg.nn.vit), the neural estimators' model folders, and
attention maps / saliency (pfslogg.nn.attention)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from pfslogg.data.views import NoisyView
from pfslogg.estimators import FitContext, load, make_estimator
from pfslogg.nn.attention import attention_rollout, cls_attention, gradient_saliency, rollout
from pfslogg.nn.models import CNN, MLP, ShortcutMLP, count_params
from pfslogg.nn.vit import ViT, ViTConfig

from test_nn_engine import THREADS, splits, toy_splits, views  # noqa: F401  (splits: the shared data fixture)

TINY = {  # class id -> hyper-parameters of a network that fits in about a second
    "mlp": {"hidden": [16]},
    "mlp_shortcut": {"hidden": [16]},
    "cnn": {"channels": 4, "depth": 2, "kernel_size": 7, "pool": 4},
    "vit": {"patch": 32, "dim": 16, "depth": 2, "heads": 2, "mlp": 32},
    "vit_overlap_sin": {"patch": 32, "stride": 16, "tokenizer": "overlap", "position": "sinusoidal_wavelength",
                        "dim": 16, "depth": 2, "heads": 2, "mlp": 32},
}
COMMON = {"epochs": 2, "batch_size": 64, "block_size": 256, "buffer_blocks": 2}


def class_of(name):
    return name.split("_overlap")[0]


@pytest.fixture(scope="module")
def fitted(splits):  # noqa: F811
    """name -> (fitted estimator, test flux, test sigma)."""
    out = {}
    for name, hyper in TINY.items():
        tr, va, te = views(splits)
        est = make_estimator(class_of(name), {**COMMON, **hyper}).fit(tr, va, FitContext(threads=THREADS))
        X, S = te.load()
        out[name] = (est, X[:20], S[:20])
    return out


def test_paper_vit_has_about_4_9_million_parameters():
    n = count_params(ViT(ViTConfig()))
    assert 4.7e6 <= n <= 5.1e6, n
    assert ViTConfig().n_patches == 256


@pytest.mark.parametrize("net", [
    MLP(512, [32, 16]), ShortcutMLP(512, [32]),
    CNN(512, kernel_size=7), CNN(512, kernel_size=63, dilation=2, depth=3), CNN(512, kernel_size=21, pool=2, depth=5),
    ViT(ViTConfig(n_pix=512, patch=32, dim=16, depth=2, heads=2, mlp=32)),
    ViT(ViTConfig(n_pix=512, patch=32, stride=16, tokenizer="overlap", position="sinusoidal_wavelength",
                  dim=16, depth=1, heads=4, mlp=32), wave=np.linspace(7100, 8850, 512)),
], ids=["mlp", "shortcut", "cnn7", "cnn63d2", "cnn21p2", "vit", "vit_overlap_sin"])
def test_forward_maps_a_batch_of_spectra_to_one_number_each(net):
    assert net(torch.randn(5, 512)).shape == (5,)


@pytest.mark.parametrize("tokenizer, stride, n_tokens", [("patch", 0, 1 + 16), ("overlap", 16, 2 + 31)])
def test_vit_attention_weights_have_token_shapes_and_match_the_fast_path(tokenizer, stride, n_tokens):
    cfg = ViTConfig(n_pix=512, patch=32, stride=stride, tokenizer=tokenizer, dim=16, depth=2, heads=2, mlp=32)
    net = ViT(cfg).eval()
    x = torch.randn(3, 512)
    y, maps = net(x, return_attention=True)
    assert len(maps) == 2 and all(m.shape == (3, 2, n_tokens, n_tokens) for m in maps)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 2, n_tokens), atol=1e-5)
    assert torch.allclose(y, net(x), atol=1e-5)   # explicit attention == scaled_dot_product_attention


def test_shortcut_mlp_starts_as_a_linear_model():
    net = ShortcutMLP(64, [16]).eval()
    x = torch.randn(4, 64)
    assert torch.allclose(net(x), net.linear(x).squeeze(-1))


@pytest.mark.parametrize("name", list(TINY))
def test_model_folder_round_trip_gives_identical_predictions(fitted, tmp_path, name):
    est, X, S = fitted[name]
    est.save(tmp_path / name)
    files = sorted(p.name for p in (tmp_path / name).iterdir())
    assert files == ["estimator.json", "module.npz"]
    again = load(tmp_path / name)
    assert type(again) is type(est) and again.get_params() == est.get_params()
    assert np.array_equal(again.predict(X, S), est.predict(X, S))
    fit = again.fitted()
    assert fit["n_params"] == est.n_params_ > 0 and fit["epochs_run"] == 2 and len(fit["history"]["val_r2"]) == 2


def test_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        make_estimator("vit").predict(np.ones((1, 4096)), None)


def test_importing_the_estimators_does_not_import_torch():
    code = "import sys, pfslogg.estimators as e; assert 'vit' in e.REGISTRY; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", ["vit", "vit_overlap_sin"])
def test_attention_maps_shapes_and_rows(fitted, name):
    est, X, S = fitted[name]
    cfg = est.module_.net.cfg
    n_tokens = cfg.n_extra + cfg.n_patches
    for fn in (cls_attention, attention_rollout):
        tok = fn(est, X, S, tokens=True)
        assert tok.shape == (len(X), n_tokens) and np.allclose(tok.sum(1), 1.0, atol=1e-5) and (tok >= 0).all()
        pix = fn(est, X, S)
        assert pix.shape == X.shape and (pix >= 0).all()
    if cfg.tokenizer == "patch":   # every pixel carries its patch's weight
        assert np.allclose(pix, np.repeat(tok[:, 1:], cfg.patch, axis=1))


def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(2, 5, 5)
    assert torch.allclose(rollout([eye, eye, eye]), eye)


@pytest.mark.parametrize("name", ["vit", "cnn", "mlp"])
def test_gradient_saliency_is_non_negative_per_pixel(fitted, name):
    est, X, S = fitted[name]
    sal = gradient_saliency(est, X, S)
    assert sal.shape == X.shape and (sal >= 0).all() and sal.sum() > 0


@pytest.mark.parametrize("name, hyper", [
    ("cnn", {"channels": 8, "depth": 2, "kernel_size": 5, "pool": 4, "positions": 8}),
    ("vit", {"patch": 8, "dim": 16, "depth": 1, "heads": 2, "mlp": 32, "lr": 3e-3}),
])
def test_saliency_concentrates_where_log_g_is_written(tmp_path, name, hyper):
    """Toy physics: log g depends only on pixels [48, 64) of 128; a trained network's gradient
    saliency puts more of its mass there than the window's 1/8 share of the pixels."""
    window = slice(48, 64)
    train_set, val_set = toy_splits(tmp_path, 128, lambda dev: 3.0 + 10.0 * dev[:, window].mean(1) * 4, (800, 200))
    # a toy set has no exposure model to estimate sigma with: its stored sigma (networks never read it)
    tr = NoisyView(train_set, 1.0, rng_seed=0, sigma="stored")
    va = NoisyView(val_set, 1.0, noise_seed=1, sigma="stored")
    est = make_estimator(name, {"epochs": 8, "batch_size": 32, "block_size": 200, "dropout": 0.0, **hyper})
    est.fit(tr, va, FitContext(threads=THREADS))
    X, S = va.load()
    sal = gradient_saliency(est, X[:50], S[:50]).sum(0)
    share = sal[window].sum() / sal.sum()
    assert share > 2 * (16 / 128), (share, est.best_val_r2_)
