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
from pfslogg.data.views import NoisyView, View
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


def test_check_ceiling_reports_models_fed_another_sigma_apart_and_still_checks_the_rest(tmp_path, capsys):
    """A cell fed the stored sigma against a ceiling that used the estimated one is no comparison: above the
    ceiling it fails nothing but is reported apart (by how much it rises above: the leak); a cell fed the
    ceiling's sigma above the ceiling still fails the check, naming it, and nothing is written."""
    from pfslogg.cli import main

    bins = [{"lo": 2.0, "hi": 35.0, "snr_median": 8.0, "r2": 0.9, "r2_ci": [0.88, 0.92]}]
    overall = {"r2": 0.9, "r2_ci": [0.88, 0.92]}
    docs = {"bayes": {"kind": "bayes", "metrics": {"noise_level": 1.0, "sigma": "estimated", "snr_bins": bins,
                                                    "overall": overall}},
            "fisher": {"kind": "fisher", "metrics": {"snr_bins": [{"lo": 2.0, "r2max_mean_crlb": 0.95,
                                                                   "r2max_median": 0.97}],
                                                     "overall": {"r2max_mean_crlb": 0.95, "r2max_median": 0.97}}}}
    for name, sigma, r2 in (("ok", "estimated", 0.8), ("leaky", "stored", 0.97), ("bug", "estimated", 0.97)):
        docs[name] = {"kind": "estimator", "metrics": {
            "estimator": name, "noise_level": 1.0, "sigma": sigma, "overall": {"r2": r2, "r2_ci": [r2 - 0.02, r2 + 0.02]},
            "snr_bins": [{"lo": 2.0, "r2": r2, "r2_ci": [r2 - 0.02, r2 + 0.02]}]}}
    for name, doc in docs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**doc, "provenance": {}}))

    def run(*cells):
        return main(["check-ceiling", "--params", "{}", "--bayes", str(tmp_path / "bayes.json"),
                     "--fisher", str(tmp_path / "fisher.json"),
                     "--inputs", *[str(tmp_path / f"{c}.json") for c in cells],
                     "--out", str(tmp_path / "out.json")])

    assert run("ok") == 0
    assert "other_sigma" not in json.loads((tmp_path / "out.json").read_text())["metrics"]
    assert run("ok", "leaky") == 0                                   # the leak fails nothing...
    m = json.loads((tmp_path / "out.json").read_text())["metrics"]
    assert m["estimators"] == ["ok"] and m["n_violations"] == 0     # ...is not among the checked models...
    leak = m["other_sigma"]                                          # ...but reported apart, with numbers
    assert leak["ceiling_sigma"] == "estimated" and leak["sigma"] == {"leaky": ["stored"]}
    assert leak["overall"]["models"]["leaky"]["r2_minus_bayes"] == pytest.approx(0.07)
    assert leak["r2_minus_bayes_max"] == pytest.approx(0.07) and leak["n_leaks"] == 2   # one bin and overall
    assert leak["bin_r2_minus_bayes_max"] == pytest.approx(0.07) and leak["snr_of_bin_max"] == [2.0, 35.0]
    assert m["overall"]["models"]["ok"]["r2_minus_bayes"] == pytest.approx(-0.1)
    (tmp_path / "out.json").unlink()
    capsys.readouterr()
    assert run("ok", "leaky", "bug") != 0                            # a cell fed the ceiling's sigma is checked
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "beat the Bayes ceiling" in err[0] and "bug" in err[0] and "leaky" not in err[0], err
    (tmp_path / "out.json").unlink()   # the efficiency is written before the check fails (Snakemake drops it)
    capsys.readouterr()
    assert run("leaky") != 0                                         # nothing to check: one line, nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sigma 'estimated'" in err[0] and "leaky" in err[0], err
    assert not (tmp_path / "out.json").exists()


# -- Track E: Ridge that reads sigma, and a variant's own sigma -------------------------------------------
class _ToyView(View):
    """A view of made-up arrays (fixed 'noise'): the flux is noise unrelated to log g, while the sigma's
    shape across the pixels follows log g -- as the stored sigma follows the clean spectrum -- times a
    brightness per spectrum that carries nothing (sigma / median(sigma) removes it)."""

    def __init__(self, n, seed, n_pix=32):
        rng = np.random.default_rng(seed)
        self.n, self.noise_level, self.fixed, self.params = n, 1.0, True, None
        self.wave = np.linspace(7100.0, 8850.0, n_pix)
        self.logg = rng.uniform(1.0, 5.0, n)
        shape = 1.0 + 0.05 * np.outer(self.logg, np.sin(np.arange(n_pix)))
        self._sigma = shape * rng.uniform(0.5, 2.0, (n, 1)) * (1 + 0.002 * rng.standard_normal((n, n_pix)))
        self._flux = 1.0 + rng.standard_normal((n, n_pix))

    def read_rows(self, rows, rng=None):
        return self._flux[rows], self._sigma[rows]

    def snr(self):
        return np.median(self._flux / self._sigma, axis=1)


def test_ridge_on_the_stored_sigma_alone_learns_log_g_the_flux_does_not(tmp_path):
    from pfslogg.estimators import load, make_estimator
    from pfslogg.evaluation import r2_score

    train, val, test = _ToyView(400, 1), _ToyView(200, 2), _ToyView(300, 3)
    r2 = {}
    for inputs in ("flux", "sigma", "flux_sigma"):
        est = make_estimator("ridge", {"alphas": [1e-4, 1e-2, 1.0], "inputs": inputs}).fit(train, val)
        assert est.coef_.shape == (64 if inputs == "flux_sigma" else 32,)
        est.save(tmp_path / inputs)
        again = load(tmp_path / inputs)                          # saved and loaded with the model
        assert again.inputs == inputs
        flux, sigma = test.load(dtype=np.float64)
        np.testing.assert_allclose(again.predict(flux, sigma), est.predict(flux, sigma))
        r2[inputs] = r2_score(test.logg, again.predict(flux, sigma))
    assert r2["sigma"] > 0.95 and r2["flux_sigma"] > 0.9 and r2["flux"] < 0.1, r2
    with pytest.raises(InputError, match="gives no sigma"):
        est.predict(flux, None)


@pytest.mark.parametrize("value", ["sigmas", "", 3])
def test_ridge_inputs_outside_the_choices_is_one_line_naming_the_key(value):
    from pfslogg.estimators import make_estimator

    with pytest.raises(InputError) as e:
        make_estimator("ridge", {"inputs": value}, where="estimators.ridge_sigma.hyper")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("estimators.ridge_sigma.hyper: inputs:") and "flux_sigma" in msg


def test_a_variants_own_sigma_reaches_its_cells_only(tmp_path):
    """estimators.<v>.sigma overrides noise.sigma in the parameter block of that variant's cells (run_cell,
    and so run_neural_cell), and only there; a value outside stored/estimated is refused by the schema."""
    import copy
    from pathlib import Path

    import yaml

    from pfslogg import workflow as W
    from pfslogg.config import load_config

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "config" / "config.yaml")
    cell = {"noise": "1", "size": "6000", "seed": "0"}
    sigma = {e: W.rule_params("run_cell", cfg, estimator=e, **cell)["sigma"]
             for e in ("ridge", "ridge_sigma_stored", "ridge_sigma_estimated")}
    assert cfg["noise"]["sigma"] == "estimated"
    assert sigma == {"ridge": "estimated", "ridge_sigma_stored": "stored", "ridge_sigma_estimated": "estimated"}
    other = copy.deepcopy(cfg)
    other["noise"]["sigma"] = "stored"
    assert W.rule_params("run_cell", other, estimator="ridge", **cell)["sigma"] == "stored"
    assert W.rule_params("run_cell", other, estimator="ridge_sigma_estimated", **cell)["sigma"] == "estimated"
    assert W.rule_params("compute_bayes_ceiling", other)["sigma"] == "stored"   # the ceiling follows noise.sigma
    raw = yaml.safe_load((root / "config" / "config.yaml").read_text())
    raw["estimators"]["ridge_sigma_stored"]["sigma"] = "true"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"estimators.*ridge_sigma_stored.*sigma") as e:
        load_config(tmp_path / "bad.yaml")
    assert "\n" not in str(e.value)


def test_track_e_needs_the_error_channel_at_the_default_noise_level(tmp_path):
    import yaml
    from pathlib import Path

    from pfslogg.config import load_config

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    raw["experiments"]["error_channel"]["noise_levels"] = [0.5]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"experiments.error_channel.noise_levels: expected \[1\]"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize("n_train, inputs", [(400, "sigma"), (400, "flux_sigma"), (40, "flux_sigma")])
def test_ridge_on_sigma_is_ridge_on_standardised_features(n_train, inputs):
    """Known answer: with sigma among the inputs, Ridge at a fixed alpha is scikit-learn's Ridge on the
    standardised features (sigma / median(sigma), beside the flux), in the streamed primal form (more
    spectra than features) and in the dual one (fewer), folded back into one linear map."""
    from sklearn.linear_model import Ridge

    from pfslogg.estimators import make_estimator
    from pfslogg.estimators.linear import ridge_inputs

    train, val, test = _ToyView(n_train, 1), _ToyView(50, 2), _ToyView(60, 3)
    est = make_estimator("ridge", {"alphas": [3.0], "inputs": inputs, "chunk": 64}).fit(train, val)
    X = ridge_inputs(*train.load(dtype=np.float64), inputs)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(X, train.logg)
    flux, sigma = test.load(dtype=np.float64)
    np.testing.assert_allclose(est.predict(flux, sigma), ref.predict(ridge_inputs(flux, sigma, inputs)), atol=1e-6)
