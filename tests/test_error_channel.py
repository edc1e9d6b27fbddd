"""The error channel (issue 16, Track E): the stored sigma, computed from the clean flux, reveals log g;
the sigma estimated from the noisy flux (``noise.sigma: estimated``, the default) does not, and a
ceiling and the models it bounds must have seen the same sigma."""

import json

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pfslogg.ceilings.bayes import bayes_ceiling
from pfslogg.data.dataset import SpectraSet
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.evaluation import prior_variance

from conftest import TINY_RANGES, simulate_splits

VAR = prior_variance(*TINY_RANGES["log_g"])


@pytest.fixture(scope="module")
def sets(coarse_instrument_grid, tmp_path_factory):
    return simulate_splits(coarse_instrument_grid, tmp_path_factory.mktemp("leak"),
                           (("train", 800, 1), ("test", 300, 3)))


def ridge_r2(train, test, feature):
    (X, S), (Xt, St) = train.load(np.float64), test.load(np.float64)

    def feats(flux, sigma):
        rel = sigma / np.median(sigma, axis=1, keepdims=True)
        return {"flux": flux, "sigma": rel}[feature]

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 8))).fit(feats(X, S), train.y)
    return 1.0 - np.mean((model.predict(feats(Xt, St)) - test.y) ** 2) / VAR


def test_stored_sigma_leaks_log_g_and_estimated_sigma_does_not(sets):
    """Ridge on sigma / median(sigma) alone: far above Ridge on the noisy flux with the stored sigma
    (measured 0.91 vs 0.46), no better than it with the estimated one (0.43)."""
    r2 = {}
    for mode in ("stored", "estimated"):
        train = NoisyView(SpectraSet(sets["train"]), 1.0, noise_seed=1, sigma=mode)
        test = NoisyView(SpectraSet(sets["test"]), 1.0, noise_seed=2, sigma=mode)
        r2[mode] = {f: ridge_r2(train, test, f) for f in ("flux", "sigma")}
    assert r2["stored"]["flux"] == r2["estimated"]["flux"]          # the same noisy flux in both modes
    assert r2["stored"]["sigma"] > r2["stored"]["flux"] + 0.3
    assert r2["estimated"]["sigma"] < r2["estimated"]["flux"] + 0.02


def test_bayes_ceiling_uses_and_records_the_configured_sigma(coarse_instrument_grid, sets, monkeypatch):
    monkeypatch.setattr("pfslogg.ceilings.bayes.RESOLVED_N_EFF", 0.0)   # the grid's moments only: fast
    interp = GridInterpolator(read_grid(coarse_instrument_grid, fields=("flux",)))
    test = SpectraSet(sets["test"])
    ev = {"snr_bins": [2.0, 10.0, 35.0], "bootstrap": 50, "confidence": 0.95}
    bayes = {"spacing": {"T_eff": 250.0, "log_g": 0.25, "M_H": 0.25}, "chunk": 500, "block": 4096}
    out = {mode: bayes_ceiling(interp, test, 1.0, 11, TINY_RANGES, ev, VAR, bayes, sigma=mode)
           for mode in ("estimated", "stored")}
    for mode, (metrics, _) in out.items():
        assert metrics["sigma"] == mode
    post = {mode: table["post_mean"] for mode, (_, table) in out.items()}
    assert not np.array_equal(post["estimated"], post["stored"])
    assert np.abs(post["estimated"] - post["stored"]).mean() < 0.03     # a plug-in sigma within ~1 %: 0.011 dex
    assert abs(out["estimated"][0]["overall"]["r2"] - out["stored"][0]["overall"]["r2"]) < 0.02
    with pytest.raises(InputError, match="noise.sigma"):
        bayes_ceiling(interp, test, 1.0, 11, TINY_RANGES, ev, VAR, bayes, sigma="true")


def test_check_ceiling_refuses_models_fed_another_sigma(tmp_path, capsys):
    from pfslogg.cli import main

    bins = [{"lo": 2.0, "hi": 35.0, "snr_median": 8.0, "r2": 0.9, "r2_ci": [0.88, 0.92]}]
    overall = {"r2": 0.9, "r2_ci": [0.88, 0.92]}
    docs = {"bayes": {"kind": "bayes", "metrics": {"noise_level": 1.0, "sigma": "estimated", "snr_bins": bins,
                                                    "overall": overall}},
            "fisher": {"kind": "fisher", "metrics": {"snr_bins": [{"lo": 2.0, "r2max_mean_crlb": 0.95,
                                                                   "r2max_median": 0.97}],
                                                     "overall": {"r2max_mean_crlb": 0.95, "r2max_median": 0.97}}}}
    for name, sigma in (("ok", "estimated"), ("leaky", "stored")):
        docs[name] = {"kind": "estimator", "metrics": {
            "estimator": name, "noise_level": 1.0, "sigma": sigma, "overall": {"r2": 0.8, "r2_ci": [0.78, 0.82]},
            "snr_bins": [{"lo": 2.0, "r2": 0.8, "r2_ci": [0.78, 0.82]}]}}
    for name, doc in docs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**doc, "provenance": {}}))

    def run(*cells):
        return main(["check-ceiling", "--params", "{}", "--bayes", str(tmp_path / "bayes.json"),
                     "--fisher", str(tmp_path / "fisher.json"),
                     "--inputs", *[str(tmp_path / f"{c}.json") for c in cells],
                     "--out", str(tmp_path / "out.json")])

    assert run("ok") == 0 and (tmp_path / "out.json").is_file()
    (tmp_path / "out.json").unlink()
    capsys.readouterr()
    assert run("ok", "leaky") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sigma 'estimated'" in err[0] and "leaky used ['stored']" in err[0], err
    assert not (tmp_path / "out.json").exists()
