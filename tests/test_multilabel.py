"""Multi-label networks (issue 17 item 2): T_eff and [M/H] learned beside log g by a second head on the
shared trunk (hyper-parameter ``extra_labels``), scored against the truth like log g.

Data: the shared small splits of the fake grid (``simulate_splits``: 800 / 200 / 200 spectra over
TINY_RANGES, where T_eff and [M/H] vary).
"""

import numpy as np
import pytest
import torch

from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, load, make_estimator
from pfslogg.evaluation import evaluate, prior_variance, r2_score
from pfslogg.nn.engine import CHECKPOINT, Preempted
from pfslogg.nn.models import MLP, Standardized

from conftest import TINY_RANGES, simulate_splits
from test_nn_engine import TINY_MLP, sigterm_at

MULTI = {**TINY_MLP, "hidden": [32], "epochs": 6, "dropout": 0.0, "lr": 3e-3, "extra_labels": ["T_eff", "M_H"]}


@pytest.fixture(scope="module")
def splits(coarse_instrument_grid, tmp_path_factory):
    paths = simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("multilabel"))
    return {k: SpectraSet(p) for k, p in paths.items()}


def fit(splits, hyper=None, checkpoint_dir=None, on_batch=None):
    tr = NoisyView(splits["train"], 1.0, rng_seed=5)
    va = NoisyView(splits["val"], 1.0, noise_seed=11)
    te = NoisyView(splits["test"], 1.0, noise_seed=13)
    est = make_estimator("mlp", {**MULTI, **(hyper or {})})
    est.fit(tr, va, FitContext(threads=1, checkpoint_dir=checkpoint_dir), on_batch=on_batch)
    return est, te


@pytest.fixture(scope="module")
def multi(splits):
    return fit(splits)


def test_the_label_head_adds_outputs_and_leaves_log_g_first():
    torch.manual_seed(0)
    m = Standardized(MLP(16, [8], 0.0), 16, extra=2)
    m.fit_scales(torch.randn(50, 16).double(), torch.rand(50) * 4 + 1, extra=np.c_[np.full(50, 5000.0), np.zeros(50)])
    x = torch.randn(3, 16)
    out = m(x)
    assert out.shape == (3, 3) and torch.equal(m.logg(x), out[:, 0] * m.y_std + m.y_mean)
    assert torch.allclose(m.extra_labels(x), out[:, 1:] * m.aux_std + m.aux_mean)
    assert float(m.aux_mean[0]) == 5000.0 and float(m.aux_std[1]) == pytest.approx(1e-6)   # floored sd
    with pytest.raises(ValueError, match="not supported"):
        Standardized(MLP(16, [8], 0.0), 16, variance=True, extra=1)


def test_a_multi_label_network_learns_t_eff_and_m_h_and_is_scored_on_them(multi):
    est, te = multi
    X, S = te.load()
    labels = est.predict_labels(X, S)
    assert labels.shape == (te.n, 2)
    r2_teff = r2_score(te.params["T_eff"].to_numpy(), labels[:, 0])
    assert r2_teff > 0.5, r2_teff          # T_eff shapes the whole spectrum: easy
    metrics, table = evaluate(est, te, prior_variance(*TINY_RANGES["log_g"]), [2.0, 10.0, 40.0], n_resamples=20,
                              ranges=TINY_RANGES)
    assert set(metrics["labels"]) == {"T_eff", "M_H"} and "T_eff_pred" in table and "M_H_pred" in table
    assert np.allclose(table["T_eff_pred"], labels[:, 0])
    assert metrics["labels"]["T_eff"]["var_prior"] == pytest.approx(prior_variance(*TINY_RANGES["T_eff"]))
    assert metrics["labels"]["T_eff"]["overall"]["r2"] == pytest.approx(
        1 - np.mean((labels[:, 0] - te.params["T_eff"].to_numpy()) ** 2) / prior_variance(*TINY_RANGES["T_eff"]))
    assert "alternatives" not in metrics          # the extra labels are not scored as log g
    with pytest.raises(InputError, match="predicts 'T_eff'"):
        evaluate(est, te, 1.0, [2.0, 40.0], n_resamples=5)


def test_a_multi_label_network_round_trips_and_resumes(multi, splits, tmp_path):
    est, te = multi
    X, S = te.load()
    est.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert np.array_equal(back.predict(X, S), est.predict(X, S))
    assert np.array_equal(back.predict_labels(X, S), est.predict_labels(X, S))
    with pytest.raises(Preempted):
        fit(splits, checkpoint_dir=tmp_path / "ck", on_batch=sigterm_at(2, 5))
    assert (tmp_path / "ck" / CHECKPOINT).is_file()
    again, _ = fit(splits, checkpoint_dir=tmp_path / "ck")
    assert np.array_equal(again.predict(X, S), est.predict(X, S))
    assert np.array_equal(again.predict_labels(X, S), est.predict_labels(X, S))


@pytest.mark.parametrize("hyper, match", [
    ({"extra_labels": ["log_g"]}, "distinct names among"),
    ({"extra_labels": ["T_eff", "T_eff"]}, "distinct names among"),
    ({"extra_labels": ["T_eff"], "loss": "beta_nll"}, "a variance head learns log g alone"),
])
def test_bad_extra_labels_name_the_key(hyper, match):
    with pytest.raises(InputError, match=r"estimators\.mlp\.hyper\.extra_labels: .*" + match):
        make_estimator("mlp", hyper).build(64)


def test_a_log_g_only_network_has_no_labels(splits):
    est, te = fit(splits, {"extra_labels": [], "epochs": 1})
    X, S = te.load()
    assert set(est.predict_all(X, S)) == {""}
    with pytest.raises(InputError, match="learns log g alone"):
        est.predict_labels(X, S)
