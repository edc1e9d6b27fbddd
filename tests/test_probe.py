"""Every network as an encode() trunk plus a head (pfslogg.nn.models, pfslogg.nn.vit), the neural
estimators' encode(), and latent probes (pfslogg.estimators.probe, Track E).

Networks are tiny (512 pixels, the coarse grid); fitted encoders are trained on 400 spectra for 2
epochs (the CNN and ViT: latents of the right shapes) or 20 (the MLP: latents that hold log g).
"""

import json

import numpy as np
import pytest
import torch

from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, load, make_estimator
from pfslogg.estimators.probe import attention_weights, pool, segment_index
from pfslogg.evaluation import r2_score
from pfslogg.nn.models import CNN, MLP, ShortcutMLP, Standardized
from pfslogg.nn.vit import ViT, ViTConfig

from conftest import simulate_splits

THREADS = 1
N_PIX = 512
COMMON = {"epochs": 2, "batch_size": 64, "block_size": 256, "buffer_blocks": 2, "patience": 10}
ENCODERS = {
    "mlp": {"hidden": [32, 16], "epochs": 20, "lr": 3e-3, "dropout": 0.0},   # held-out R^2 ~ 0.6 in 1 s
    "cnn": {"channels": 4, "depth": 2, "kernel_size": 7, "pool": 4},    # 32 tokens of 16 pixels, 8 channels
    "vit": {"patch": 32, "dim": 16, "depth": 1, "heads": 2, "mlp": 32},  # 16 tokens of 32 pixels, width 16
}
WHERE = "estimators.probe_test.hyper"
KEY = "estimators.probe_test.upstream.encoder"


def vit_overlap():
    return ViT(ViTConfig(n_pix=N_PIX, patch=32, stride=16, tokenizer="overlap", position="sinusoidal_wavelength",
                         dim=16, depth=2, heads=4, mlp=32), wave=np.linspace(7100, 8850, N_PIX))


NETWORKS = {   # name -> (builder, tokens T, latent width D)
    "mlp": (lambda: MLP(N_PIX, [32, 16]), 1, 16),
    "mlp_no_hidden": (lambda: MLP(N_PIX, []), 1, N_PIX),
    "shortcut": (lambda: ShortcutMLP(N_PIX, [32]), 1, 32),
    "cnn": (lambda: CNN(N_PIX, kernel_size=7), 2, 64),                        # 512 // 4**4
    "cnn_p2": (lambda: CNN(N_PIX, kernel_size=21, pool=2, depth=5), 16, 128),  # 512 // 2**5
    "cnn_p3": (lambda: CNN(500, kernel_size=5, pool=3, depth=2, channels=4), 55, 8),   # 500 // 3 // 3: floors
    "vit": (lambda: ViT(ViTConfig(n_pix=N_PIX, patch=32, dim=16, depth=2, heads=2, mlp=32)), 16, 16),
    "vit_overlap": (vit_overlap, 31, 16),
}


# -- the reference: each network's forward pass as written before the split -------------------------
def old_forward(net, x):
    if isinstance(net, ShortcutMLP):
        return net.linear(x).squeeze(-1) + old_forward(net.g, x)
    if isinstance(net, MLP):
        return net.out(net.body(x)).squeeze(-1)
    if isinstance(net, CNN):
        h = net.blocks(x.unsqueeze(1))
        h = net.pool(h).flatten(1)
        return net.head(net.drop(h)).squeeze(-1)
    tok = net.tokens(x)
    h = torch.cat([net.cls.expand(len(tok), -1, -1), tok], dim=1)
    h = net.drop(net.pos(h))
    for block in net.blocks:
        h, _ = block(h, False)
    return net.head(net.ln(h[:, 0])).squeeze(-1)


def n_pix_of(net):
    return 500 if isinstance(net, CNN) and net.n_pix == 500 else N_PIX


@pytest.mark.parametrize("name", list(NETWORKS))
def test_encode_gives_tokens_along_the_wavelength_axis(name):
    build, T, D = NETWORKS[name]
    torch.manual_seed(0)
    net = build().eval()
    n_pix = n_pix_of(net)
    x = torch.randn(3, n_pix)
    with torch.no_grad():
        z = net.encode(x)
    assert z.shape == (3, T, D) and torch.isfinite(z).all()
    spans = net.token_spans()
    assert spans.shape == (T, 2) and spans.dtype == np.int64
    assert (spans[:, 0] >= 0).all() and (spans[:, 1] <= n_pix).all() and (spans[:, 1] > spans[:, 0]).all()
    assert (np.diff(spans[:, 0]) > 0).all()                       # ordered by wavelength
    if name != "vit_overlap":   # non-overlapping tokens tile the pixels they cover, from pixel 0
        assert spans[0, 0] == 0 and (spans[1:, 0] == spans[:-1, 1]).all()
    if name in ("mlp", "shortcut", "cnn", "cnn_p2", "vit"):
        assert spans[-1, 1] == n_pix                               # every pixel in a token
    if name == "cnn_p3":
        assert spans[-1, 1] == 55 * 9                              # the floored tail is in no token


@pytest.mark.parametrize("name", list(NETWORKS))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_forward_is_bitwise_the_computation_before_the_split(name, train):
    build = NETWORKS[name][0]
    torch.manual_seed(1)
    net = build().train(train)
    x = torch.randn(4, n_pix_of(net))
    with torch.no_grad():
        for m in net.modules():   # non-trivial batch-norm statistics and a shortcut MLP that is not zero
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 0.1)
        torch.manual_seed(2)      # the same dropout masks in both
        new = net(x)
        torch.manual_seed(2)
        old = old_forward(net, x)
    assert torch.equal(new, old)
    if not train:
        args = (x,) if isinstance(net, ShortcutMLP) else ()
        with torch.no_grad():
            assert torch.equal(net.forward_head(net.forward_features(x), *args), old)


def test_vit_latents_are_the_normed_patch_tokens_and_attention_path_is_unchanged():
    torch.manual_seed(3)
    net = vit_overlap().eval()
    x = torch.randn(2, N_PIX)
    with torch.no_grad():
        h = net.forward_features(x)                               # (B, 2 + 31, 16): [CLS], stats, patches
        z = net.encode(x)
        y, maps = net(x, return_attention=True)
    assert h.shape == (2, 33, 16)
    assert torch.equal(z, net.ln(h[:, 2:]))
    assert torch.allclose(z.mean(-1), torch.zeros(2, 31), atol=1e-5)   # after the final LayerNorm
    assert torch.allclose(y, net(x), atol=1e-5) and len(maps) == 2 and maps[0].shape == (2, 4, 33, 33)


def test_state_dict_keys_are_unchanged():
    """Trained weights and checkpoints load as before: the split added no parameter or buffer."""
    expected = {
        "mlp": ["body.0.weight", "body.0.bias", "out.weight", "out.bias"],
        "shortcut": ["linear.weight", "linear.bias", "g.body.0.weight", "g.body.0.bias", "g.out.weight", "g.out.bias"],
        "cnn": [f"blocks.{i}.{k}" for i in range(2) for k in ("conv.weight", "norm.weight", "norm.bias",
                                                            "norm.running_mean", "norm.running_var",
                                                            "norm.num_batches_tracked")] + ["head.weight", "head.bias"],
        "vit": ["cls", "tokens.embed.weight", "tokens.embed.bias", "pos.pos"]
               + [f"blocks.0.{k}" for k in ("ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                            "attn.proj.weight", "attn.proj.bias", "ln2.weight", "ln2.bias",
                                            "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias")]
               + ["ln.weight", "ln.bias", "head.weight", "head.bias"],
    }
    nets = {"mlp": MLP(64, [8]), "shortcut": ShortcutMLP(64, [8]), "cnn": CNN(64, 5, channels=2, depth=2, pool=2),
            "vit": ViT(ViTConfig(n_pix=64, patch=16, dim=8, depth=1, heads=2, mlp=8))}
    for name, net in nets.items():
        assert list(net.state_dict()) == expected[name], name
    assert list(Standardized(MLP(64, [8]), 64).state_dict()) == ["x_mean", "x_scale", "y_mean", "y_std"] + \
        [f"net.{k}" for k in expected["mlp"]]


def test_standardized_encode_standardises_the_raw_flux_first():
    torch.manual_seed(4)
    module = Standardized(CNN(N_PIX, kernel_size=7, depth=2), N_PIX).eval()
    flux = 1.0 + 0.1 * torch.randn(3, N_PIX)
    module.fit_scales(flux, torch.tensor([1.0, 2.0, 3.0]))
    with torch.no_grad():
        assert torch.equal(module.encode(flux), module.net.encode((flux - module.x_mean) / module.x_scale))
    assert np.array_equal(module.token_spans(), module.net.token_spans())


# -- fitted encoders and probes --------------------------------------------------------------------
@pytest.fixture(scope="module")
def sets(coarse_instrument_grid, tmp_path_factory):
    paths = simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("probe"),
                            (("train", 400, 1), ("val", 100, 2), ("test", 100, 3)))
    return {k: SpectraSet(p) for k, p in paths.items()}


def views(sets):
    return (NoisyView(sets["train"], 1.0, rng_seed=5), NoisyView(sets["val"], 1.0, noise_seed=11),
            NoisyView(sets["test"], 1.0, noise_seed=13))


@pytest.fixture(scope="module")
def encoders(sets):
    """class id -> fitted neural estimator."""
    out = {}
    for cls, hyper in ENCODERS.items():
        tr, va, _ = views(sets)
        out[cls] = make_estimator(cls, {**COMMON, **hyper}).fit(tr, va, FitContext(threads=THREADS))
    return out


@pytest.fixture(scope="module")
def test_flux(sets):
    X, S = views(sets)[2].load()
    return X, S


def fit_probe(sets, encoder, **hyper):
    tr, va, _ = views(sets)
    probe = make_estimator("probe", hyper, random_state=0, where=WHERE)
    return probe.fit(tr, va, FitContext(threads=THREADS, upstream={"encoder": encoder}, where=WHERE))


@pytest.mark.parametrize("cls, T, D", [("mlp", 1, 16), ("cnn", 32, 8), ("vit", 16, 16)])
def test_estimator_encode_is_float32_deterministic_and_batch_independent(encoders, test_flux, cls, T, D):
    est = encoders[cls]
    X, S = test_flux
    Z = est.encode(X, S)
    assert Z.shape == (len(X), T, D) and Z.dtype == np.float32 and np.isfinite(Z).all()
    assert np.array_equal(Z, est.encode(X))                       # sigma is not read; deterministic
    assert np.allclose(est.encode(X[:3]), Z[:3], atol=1e-5)
    assert est.encode(X[:0]).shape == (0, T, D)
    assert est.token_spans().shape == (T, 2)
    assert est.module_.training is False
    with pytest.raises(InputError, match=rf"{cls}\.encode: flux of shape \(2, 100\)"):
        est.encode(np.ones((2, 100)))


@pytest.mark.parametrize("pooling, n_features", [("mean", 8), ("segments", 4 * 8), ("attention", 8),
                                                 ("flatten", 32 * 8)])
def test_each_pooling_gives_its_feature_count(sets, encoders, test_flux, pooling, n_features):
    probe = fit_probe(sets, encoders["cnn"], pooling=pooling, segments=4, attention_epochs=2)
    X, S = test_flux
    assert probe.n_features_ == n_features and probe.features(X, S).shape == (len(X), n_features)
    pred = probe.predict(X, S)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    fit = probe.fitted()
    assert fit["pooling"] == pooling and fit["n_features"] == n_features and fit["n_tokens"] == 32
    assert fit["encoder"] == "cnn" and set(fit["model"]) == {"alpha", "search"}
    json.dumps(fit)


def test_segment_pooling_is_the_mean_of_each_wavelength_segment(sets, encoders, test_flux):
    cnn = encoders["cnn"]
    X, S = test_flux
    Z = cnn.encode(X, S).astype(np.float64)                       # (B, 32, 8): tokens of 16 pixels
    probe = fit_probe(sets, cnn, pooling="segments", segments=4)
    by_hand = np.hstack([Z[:, 8 * k:8 * (k + 1)].mean(1) for k in range(4)])   # 128 pixels a segment
    assert np.allclose(probe.features(X, S), by_hand, rtol=0, atol=1e-12)
    assert probe.segment_of_ == [k for k in range(4) for _ in range(8)]
    # uneven tokens: the segment is the one holding the token's centre
    spans = np.array([[0, 10], [10, 40], [40, 70], [70, 100]])   # centres 5, 25, 55, 85
    assert segment_index(spans, 2).tolist() == [0, 0, 1, 1]
    Zs = np.arange(4 * 3, dtype=float).reshape(1, 4, 3)
    assert np.allclose(pool(Zs, "segments", segment_index(spans, 2), 2), [[1.5, 2.5, 3.5, 7.5, 8.5, 9.5]])


def test_more_segments_than_tokens_is_refused(sets, encoders):
    with pytest.raises(InputError, match=r"^estimators\.probe_test\.hyper\.segments: 4 wavelength segments, but "
                                         r"the encoder's 1 token"):
        fit_probe(sets, encoders["mlp"], pooling="segments", segments=4)


def test_attention_pooling_learns_a_query_deterministically(sets, encoders, test_flux):
    a = fit_probe(sets, encoders["vit"], pooling="attention", attention_epochs=3)
    b = fit_probe(sets, encoders["vit"], pooling="attention", attention_epochs=3)
    assert np.array_equal(a.query_, b.query_) and np.abs(a.query_).max() > 0
    X, S = test_flux
    w = attention_weights(a.encoder.encode(X, S), a.query_, a.latent_mean_, a.latent_scale_)
    assert w.shape == (len(X), 16) and np.allclose(w.sum(1), 1.0) and (w >= 0).all()
    assert not np.allclose(w, 1 / 16)                             # not mean pooling any more
    mse = a.fitted()["attention"]["train_mse"]
    assert len(mse) == 3 and mse[-1] < mse[0]


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_probe_model_folder_round_trip_gives_identical_predictions(sets, encoders, test_flux, tmp_path, pooling):
    probe = fit_probe(sets, encoders["vit"], pooling=pooling, attention_epochs=2)
    X, S = test_flux
    folder = probe.save(tmp_path / "probe")
    assert (folder / "upstream" / "encoder" / "estimator.json").is_file()
    assert (folder / "upstream" / "encoder" / "module.npz").is_file()
    assert (folder / "model" / "estimator.json").is_file()
    manifest = json.loads((folder / "estimator.json").read_text())
    assert {"upstream/encoder/estimator.json", "model/estimator.json"} <= set(manifest["files"])
    again = load(folder)
    assert type(again) is type(probe) and again.get_params() == probe.get_params()
    assert np.array_equal(again.predict(X, S), probe.predict(X, S))
    assert again.fitted() == probe.fitted()
    assert np.array_equal(again.encoder.encode(X), encoders["vit"].encode(X))


def test_a_probe_reads_at_least_what_the_network_head_reads(sets, encoders, test_flux):
    """An MLP's head is linear in its one latent token: Ridge on that token (mean pooling) does about
    as well on held-out spectra as the network itself."""
    mlp = encoders["mlp"]
    probe = fit_probe(sets, mlp, pooling="mean", model={"class": "ridge", "hyper": {"alphas": [1e-6, 1e-3, 1.0]}})
    X, S = test_flux
    y = views(sets)[2].logg
    r2_net, r2_probe = r2_score(y, mlp.predict(X, S)), r2_score(y, probe.predict(X, S))
    assert r2_net > 0.3 and r2_probe > r2_net - 0.05, (r2_net, r2_probe)


def test_missing_upstream_encoder_names_the_key(sets):
    tr, va, _ = views(sets)
    with pytest.raises(InputError, match=rf"^{KEY}: required, expected .*encode"):
        make_estimator("probe").fit(tr, va, FitContext(threads=THREADS, where=WHERE))


def test_upstream_without_encode_names_the_key(sets):
    tr, va, _ = views(sets)
    ridge = make_estimator("ridge", {"alphas": [1.0]}).fit(tr, va)
    with pytest.raises(InputError, match=rf"^{KEY}: a model of class 'ridge', expected .*encode"):
        make_estimator("probe").fit(tr, va, FitContext(threads=THREADS, upstream={"encoder": ridge}, where=WHERE))


def test_unfitted_or_mismatched_encoder_names_the_key(sets, encoders):
    tr, va, _ = views(sets)
    ctx = FitContext(threads=THREADS, upstream={"encoder": make_estimator("cnn")}, where=WHERE)
    with pytest.raises(InputError, match=rf"^{KEY}: 'cnn' is not fitted"):
        make_estimator("probe").fit(tr, va, ctx)


@pytest.mark.parametrize("hyper, match", [
    ({"pooling": "max"}, r"probe\.pooling: expected one of \['mean', 'segments', 'attention', 'flatten'\]"),
    ({"segments": 0}, r"probe\.segments: expected an integer >= 1"),
    ({"attention_lr": -1.0}, r"probe\.attention_lr: expected a number > 0"),
    ({"model": {"class": "gate_classifier"}}, r"probe\.model\.class: unknown estimator class 'gate_classifier'"),
    ({"window": 3}, r"probe: unknown hyper-parameter\(s\) \['window'\]"),
])
def test_bad_hyper_parameters_are_refused_with_the_config_key(hyper, match):
    with pytest.raises(InputError, match=match):
        make_estimator("probe", hyper, where="estimators.probe")


def test_probe_class_declares_its_upstream_role():
    from pfslogg.estimators import REGISTRY
    from pfslogg.estimators.base import ROLES

    cls = REGISTRY["probe"]
    assert cls.UPSTREAM == {"encoder": "a fitted model with encode()"} and set(cls.UPSTREAM) <= set(ROLES)
    assert cls.kind == "estimator" and cls().label == "Ridge on frozen latents, mean over tokens"
    assert all(ROLES["encoder"][0](REGISTRY[c]) for c in ("mlp", "mlp_shortcut", "cnn", "vit"))
