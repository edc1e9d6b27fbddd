"""Models that feed other models (issue 16's frame): a variant names ``upstream`` models by role; the
workflow makes their model folders inputs of the cell's job (one upstream cell for every downstream cell
that names it) and passes them loaded to ``fit``; a transform (a denoiser) is scored by wMAE, never by
R^2; the downstream model keeps its upstream as a part, so its folder stands alone; bad upstream
configurations fail with one line naming the key."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import pfslogg.workflow as W
from pfslogg.config import check_config, load_config
from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView, TransformView
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, FitContext, load, make_estimator
from pfslogg.estimators.base import Estimator, register
from pfslogg.experiments import run_cell

from conftest import simulate_splits

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONFIG)


def bad(cfg, match, **edits):
    new = copy.deepcopy(cfg)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = new
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    with pytest.raises(InputError, match=match) as e:
        check_config(new, "config")
    assert "\n" not in str(e.value)
    return str(e.value)


# -- configuration -----------------------------------------------------------------------------------
def test_a_role_the_class_does_not_take_is_refused(cfg):
    bad(cfg, r"estimators\.ridge\.upstream\.transform: class 'ridge' builds on no 'transform' model",
        estimators__ridge__upstream={"transform": "denoiser"})


def test_a_missing_upstream_is_refused(cfg):
    bad(cfg, r"estimators\.ridge_denoised\.upstream\.transform: required by class 'denoised', expected a variant "
             r"of kind 'transform'", estimators__ridge_denoised__upstream=None)


def test_an_unconfigured_upstream_variant_is_refused(cfg):
    bad(cfg, r"estimators\.ridge_denoised\.upstream\.transform: 'nope' is not configured",
        estimators__ridge_denoised__upstream={"transform": "nope"})


def test_an_upstream_of_the_wrong_kind_is_refused(cfg):
    bad(cfg, r"estimators\.ridge_denoised\.upstream\.transform: 'ridge' \(class 'ridge'\) is not a variant of kind "
             r"'transform'", estimators__ridge_denoised__upstream={"transform": "ridge"})


def test_an_encoder_without_encode_is_refused(cfg):
    new = copy.deepcopy(cfg)
    new["estimators"]["probe_template"] = {"class": "probe", "hyper": {}, "upstream": {"encoder": "template"}}
    with pytest.raises(InputError, match=r"estimators\.probe_template\.upstream\.encoder: 'template' \(class "
                                         r"'template'\) is not a variant whose model has encode"):
        check_config(new, "config")
    new["estimators"]["probe_template"]["upstream"] = {"encoder": {"variant": "cnn", "size": 2000}}
    check_config(new, "config")   # a network has encode()


def test_a_transform_is_not_scored_by_r2(cfg):
    bad(cfg, r"experiments\.benchmark\.estimators: 'smooth' is a transform", experiments__benchmark__estimators=[
        "ridge", "smooth"])
    bad(cfg, r"figure\.estimators: 'denoiser' is a transform", figure__estimators=["ridge", "denoiser"])


@pytest.fixture
def chained():
    """A registered test transform that itself builds on a transform (for the cycle check), removed after."""
    @register
    class Chained(Estimator):
        class_id, label, kind = "test_chained", "chained", "transform"
        UPSTREAM = {"transform": "another transform"}

        def __init__(self, random_state=0):
            self.random_state = random_state
    yield Chained
    REGISTRY.pop("test_chained")


def test_an_upstream_cycle_is_refused(cfg, chained):
    new = copy.deepcopy(cfg)
    new["estimators"]["a"] = {"class": "test_chained", "upstream": {"transform": "b"}}
    new["estimators"]["b"] = {"class": "test_chained", "upstream": {"transform": "a"}}
    with pytest.raises(InputError, match=r"upstream: a cycle \((a -> b -> a|b -> a -> b)\)"):
        check_config(new, "config")
    new["estimators"]["b"]["upstream"] = {"transform": "smooth"}
    check_config(new, "config")   # a chain without a cycle is fine


# -- the workflow --------------------------------------------------------------------------------------
def test_the_upstream_model_is_an_input_and_a_parameter_of_the_cell(cfg):
    p = W.rule_params("run_cell", cfg, estimator="ridge_denoised", noise="1", size="6000", seed="2")
    assert p["upstream"] == {"transform": "models/denoiser/nl1_n6000_s0"}   # seed 0: trained once
    assert W.upstream_models(cfg, "ridge_denoised", "1", "6000") == p["upstream"]
    assert "upstream" not in W.rule_params("run_cell", cfg, estimator="ridge", noise="1", size="6000", seed="2")
    new = copy.deepcopy(cfg)
    new["estimators"]["ridge_denoised"]["upstream"] = {"transform": {"variant": "smooth", "size": 2000,
                                                                     "noise_level": 0.5}}
    assert W.upstream_models(new, "ridge_denoised", "1", "6000") == {"transform": "models/smooth/nl0p5_n2000_s0"}


def test_every_upstream_cell_is_a_job_once(cfg):
    jobs = W.jobs(cfg)
    cells = [json.dumps(w, sort_keys=True) for r, w in jobs if r in ("run_cell", "run_neural_cell")]
    assert len(cells) == len(set(cells))
    down = [w for r, w in jobs if r in ("run_cell", "run_neural_cell") and w["estimator"].endswith("_denoised")]
    assert down, "experiments.downstream has cells on denoised spectra"
    ups = {json.dumps({"estimator": "denoiser", "noise": w["noise"], "size": w["size"], "seed": 0}, sort_keys=True)
           for w in down}
    assert ups <= set(cells)
    # the denoiser trains in the GPU rule; the smoothing baseline and Ridge on denoised spectra do not
    kinds = {w["estimator"]: r for r, w in jobs if r in ("run_cell", "run_neural_cell")}
    assert kinds["denoiser"] == "run_neural_cell" and kinds["smooth"] == "run_cell"
    assert kinds["ridge_denoised"] == "run_cell" and kinds["mlp_denoised"] == "run_neural_cell"


# -- fitting, scoring and the model folder ---------------------------------------------------------------
@pytest.fixture(scope="module")
def sets(coarse_instrument_grid, tmp_path_factory):
    return simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("upstream"),
                           (("train", 300, 1), ("val", 100, 2), ("test", 100, 3)))


def _params(cfg, estimator, **extra):
    p = W.rule_params("run_cell", cfg, estimator=estimator, noise="1", size="300", seed="0")
    p["hyper"] = {**p["hyper"], **extra}
    return p


def test_a_transform_cell_is_scored_by_wmae_and_feeds_a_downstream_cell(cfg, sets, coarse_instrument_grid, tmp_path):
    smooth = tmp_path / "models" / "smooth"
    p = _params(cfg, "smooth")
    metrics, details, table = run_cell(p, sets["train"], sets["val"], sets["test"], str(coarse_instrument_grid), smooth)
    assert metrics["kind"] == "transform" and "r2" not in metrics and "r2" not in json.dumps(metrics)
    rows = metrics["overall"]["strengths"]
    assert metrics["overall"]["identity"]["wmae_improvement"] == 0.0
    assert all(r["wmae_improvement"] > 0 for r in rows)   # smoothing a noisy spectrum brings it closer to the clean one
    assert len(table) == 100 and "wmae_noisy" in table

    p = _params(cfg, "ridge_denoised")
    p["upstream"] = {"transform": str(smooth)}
    folder = tmp_path / "models" / "ridge_denoised"
    metrics, details, pred = run_cell(p, sets["train"], sets["val"], sets["test"], str(coarse_instrument_grid), folder)
    assert np.isfinite(metrics["overall"]["r2"]) and details["fitted"]["transform"]["class"] == "smooth"
    # the folder stands alone: the transform is a part, checked by sha256 like every other file
    assert (folder / "upstream" / "transform" / "estimator.json").is_file()
    model = load(folder)
    view = NoisyView(SpectraSet(sets["test"]), 1.0, noise_seed=p["test_noise_seed"])
    flux, sigma = view.read(0, view.n)
    up = load(smooth)
    ridge = model.parts_["estimator"]
    np.testing.assert_array_equal(model.predict(flux, sigma), ridge.predict(up.transform(flux, sigma), sigma))
    np.testing.assert_allclose(pred["log_g_pred"], model.predict(flux, sigma))
    manifest = json.loads((folder / "estimator.json").read_text())
    assert "upstream/transform/estimator.json" in manifest["files"]


def test_fit_without_its_upstream_names_the_key(cfg, sets):
    est = make_estimator("denoised", {}, where="estimators.ridge_denoised.hyper")
    view = NoisyView(SpectraSet(sets["train"]), 1.0, rng_seed=0)
    with pytest.raises(InputError, match=r"^estimators\.ridge_denoised\.upstream\.transform: required"):
        est.fit(view, view, FitContext(where="estimators.ridge_denoised.hyper"))
    ridge = make_estimator("ridge", {"alphas": [1.0]})
    with pytest.raises(InputError, match=r"upstream\.transform: a model of class 'ridge', expected a variant of kind"):
        est.fit(view, view, FitContext(where="estimators.ridge_denoised.hyper", upstream={"transform": ridge}))


def test_a_transform_view_denoises_every_read_and_keeps_sigma(sets):
    smooth = make_estimator("smooth", {"width": 2.0}, kinds=("transform",)).fit(None, None)
    base = NoisyView(SpectraSet(sets["val"]), 1.0, noise_seed=5)
    view = TransformView(base, smooth, strength=0.5)
    flux, sigma = base.read(3, 9)
    got, got_sigma = view.read(3, 9)
    np.testing.assert_array_equal(got, smooth.transform(flux, sigma, strength=0.5))
    np.testing.assert_array_equal(got_sigma, sigma)
    np.testing.assert_array_equal(view.read_clean(3, 9), base.read_clean(3, 9))
    with pytest.raises(InputError, match="has no transform"):
        TransformView(base, make_estimator("ridge", {"alphas": [1.0]}))


def test_a_denoiser_of_another_grid_is_refused(sets):
    """A denoiser records the wavelength grid it learned; an estimator on its output refuses other data."""
    from pfslogg.estimators.base import wave_range

    den = make_estimator("denoiser", {"epochs": 1, "batch_size": 64}, kinds=("transform",))
    train = NoisyView(SpectraSet(sets["train"]), 1.0, n=128, rng_seed=0)
    val = NoisyView(SpectraSet(sets["val"]), 1.0, noise_seed=1)
    den.fit(train, val, FitContext(threads=1))
    assert den.wave_range_ == wave_range(train.wave)
    den.wave_range_ = [7000.0, 9000.0, train.n_pixels]   # as if fitted on another grid of as many pixels
    est = make_estimator("denoised", {}, where="estimators.ridge_denoised.hyper")
    with pytest.raises(InputError, match=r"^estimators\.ridge_denoised\.upstream\.transform: a model fitted on "
                                         r"another wavelength grid \(7000-9000 A"):
        est.fit(train, val, FitContext(where="estimators.ridge_denoised.hyper", upstream={"transform": den}))
