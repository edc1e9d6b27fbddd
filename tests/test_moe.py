"""Models made of models (Track B): public views, parameter bins, gates, the mixture of experts and
continuous conditioning, their model folders, and the metrics by parameter bin."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DEFAULT_NOISE, TINY_RANGES
from pfslogg.binning import Binning
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.views import MappedView, NoisyView, SubsetView, TargetView
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, FitContext, load, make_estimator
from pfslogg.evaluation import evaluate, param_edges

RIDGE = {"class": "ridge", "hyper": {"alphas": [1.0, 100.0, 1000.0]}}
BINS = {"M_H": 3, "T_eff": 3}


@pytest.fixture(scope="module")
def sets(tiny_instrument_grid, tmp_path_factory):
    root = tmp_path_factory.mktemp("moe")
    out = {}
    for name, n, seed in (("train", 1800, 1), ("val", 400, 2), ("test", 400, 3)):
        simulate_dataset(tiny_instrument_grid, root / f"{name}.h5", n, TINY_RANGES, seed=seed, noise=DEFAULT_NOISE,
                         chunk_size=256)
        out[name] = SpectraSet(root / f"{name}.h5")
    return out


def views(sets, level=1.0):
    return (NoisyView(sets["train"], level, rng_seed=5), NoisyView(sets["val"], level, noise_seed=11),
            NoisyView(sets["test"], level, noise_seed=13))


def context(grid=None):
    return FitContext(grid=str(grid) if grid else None, ranges=TINY_RANGES, where="estimators.m.hyper")


# -- views ----------------------------------------------------------------------------------------
def test_subset_view_fixed_noise_is_the_base_rows_noise(sets):
    base = NoisyView(sets["val"], 1.0, noise_seed=11)
    mask = base.params["M_H"].to_numpy() > 0.25
    sub = SubsetView(base, mask)
    X, S = base.load(np.float64)
    Xs, Ss = sub.load(np.float64)
    np.testing.assert_array_equal(Xs, X[mask])
    np.testing.assert_array_equal(Ss, S[mask])
    np.testing.assert_array_equal(sub.logg, base.logg[mask])
    assert list(sub.params.index) == list(base.params.index[mask])
    np.testing.assert_array_equal(sub.snr(), base.snr()[mask])


def test_subset_view_with_its_own_noise_stream_is_independent_of_reads_before(sets):
    rows = np.arange(0, 1800, 7)

    def first_batch(touch_base_first):
        base = NoisyView(sets["train"], 1.0, rng_seed=5)
        if touch_base_first:
            base.read(0, 100)          # consumes the base's generator
        return SubsetView(base, rows=rows, rng_seed=99).read(0, 50)[0]

    np.testing.assert_array_equal(first_batch(False), first_batch(True))
    sub = SubsetView(NoisyView(sets["train"], 1.0, rng_seed=5), rows=rows, rng_seed=99)
    state = sub.noise_state()
    a = sub.read(0, 20)[0]
    sub.set_noise_state(state)
    np.testing.assert_array_equal(sub.read(0, 20)[0], a)       # a stream can be rewound (checkpoints)
    assert not np.array_equal(sub.read(0, 20)[0], a)             # and then draws afresh


@pytest.mark.parametrize("kw, match", [({"mask": np.zeros(400, bool)}, "selects no rows"),
                                       ({"rows": [3, 2]}, "increasing"), ({"rows": [5, 400]}, r"\[0, 400\)"),
                                       ({"mask": np.ones(10, bool)}, "boolean mask of 400 rows")])
def test_subset_view_refuses_bad_rows(sets, kw, match):
    with pytest.raises(InputError, match=match):
        SubsetView(NoisyView(sets["val"], 1.0, noise_seed=1), **kw)


def test_target_and_mapped_views(sets):
    base = NoisyView(sets["val"], 1.0, noise_seed=11)
    t = TargetView(base, "T_eff")
    np.testing.assert_array_equal(t.y, base.params["T_eff"].to_numpy(float))
    np.testing.assert_array_equal(t.logg, base.logg)
    with pytest.raises(InputError, match="not a column"):
        TargetView(base, "colour")
    m = MappedView(base, lambda f: f[:, :3] * 2, 3)
    x, s = m.read(10, 20)
    np.testing.assert_array_equal(x, base.read(10, 20)[0][:, :3] * 2)
    assert s is None and m.n_pixels == 3
    with pytest.raises(InputError, match="gave shape"):
        MappedView(base, lambda f: f[:, :2], 3).read(0, 5)


# -- bins -----------------------------------------------------------------------------------------
def test_binning_from_counts_and_edges():
    b = Binning.from_hyper(BINS, TINY_RANGES)
    assert b.shape == (3, 3) and b.n_bins == 9
    np.testing.assert_allclose(b.edges["M_H"], [-0.25, 1 / 12, 5 / 12, 0.75])
    assert b.index([[-0.2, 3800.0], [0.7, 5900.0], [5.0, 1e5], [-9.0, 0.0]]).tolist() == [0, 8, 8, 0]
    assert b.inside([[0.0, 4000.0], [0.8, 4000.0]]).tolist() == [True, False]
    assert "[M/H] -0.25..0.0833" in b.labels()[0]
    p = b.probabilities([[0.0, 4500.0], [2.0, 9000.0]], [0.1, 200.0])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[1].argmax() == 8 and p[1, 8] > 0.99                 # far beyond the prior: the outer bin
    e = Binning.from_hyper({"M_H": [-1.0, 0.0, 1.0]}, TINY_RANGES)
    assert e.n_bins == 2
    x = np.array([[0.05], [-0.05], [0.3]])
    assert e.member(x, 0, margin=0.1).tolist() == [True, True, False]   # 0.05 is within 0.1 widths of bin 0


@pytest.mark.parametrize("bins, match", [({"M_H": [0.0, 0.75]}, r"bins\.M_H: edges \[0, 0.75\] do not cover the prior"),
                                         ({"M_H": 0}, "at least 1 bin"), ({"colour": 3}, "bins.colour"),
                                         ({"M_H": [0.5, 0.2]}, "increasing")])
def test_binning_refuses_bins_that_do_not_cover_the_prior(bins, match):
    with pytest.raises(InputError, match=match):
        Binning.from_hyper(bins, TINY_RANGES, "bins")


# -- gates ----------------------------------------------------------------------------------------
def test_classifier_gate_routes_better_than_chance(sets):
    tr, va, te = views(sets)
    b = Binning.from_hyper(BINS, TINY_RANGES)
    gate = make_estimator("gate_classifier", {"features": "spectrum", "bins": b.to_json(), "n_components": 16},
                          kinds=("gate",)).fit(tr, va, context())
    flux, sigma = te.load(np.float64)
    p = gate.predict(flux, sigma)
    np.testing.assert_allclose(p.sum(1), 1.0)
    accuracy = np.mean(p.argmax(1) == b.index(b.values(te.params)))
    assert accuracy > 3 / 9, accuracy        # chance: about 1/9


def test_gate_window_outside_the_pixels_is_refused_naming_the_key(sets):
    tr, va, _ = views(sets)
    gate = make_estimator("gate_classifier", {"features": "windows", "windows": {"far red": [8840.0, 8860.0]},
                                              "bins": {"M_H": [-0.25, 0.25, 0.75]}}, kinds=("gate",))
    with pytest.raises(InputError, match=r"estimators\.m\.hyper\.windows\.far red: the band \[8840, 8860\]"):
        gate.fit(tr, va, context())


def test_mixture_gate_needs_its_experts(sets):
    tr, va, _ = views(sets)
    gate = make_estimator("gate_mixture", {"bins": {"M_H": [-0.25, 0.25, 0.75]}}, kinds=("gate",))
    with pytest.raises(InputError, match="needs the 2 fitted experts"):
        gate.fit(tr, va, context())


def test_a_gate_is_not_an_estimator_and_vice_versa():
    with pytest.raises(InputError, match="unknown estimator class 'gate_classifier'"):
        make_estimator("gate_classifier")
    with pytest.raises(InputError, match="unknown gate class 'ridge'"):
        make_estimator("ridge", kinds=("gate",))
    assert REGISTRY["gate_template"].kind == "gate" and REGISTRY["moe"].kind == "estimator"


# -- the mixture --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(sets, tiny_instrument_grid, tmp_path_factory):
    tr, va, te = views(sets)
    hyper = {"expert": RIDGE, "bins": BINS, "margin": 0.2, "routing": "soft",
             "gate": {"class": "gate_classifier", "hyper": {"features": "spectrum", "n_components": 16}},
             "compare_gates": {"windows": {"class": "gate_classifier", "hyper": {"features": "windows"}},
                               "regression": {"class": "gate_regression", "hyper": {"features": "spectrum"}},
                               "template": {"class": "gate_template"},
                               "mixture": {"class": "gate_mixture", "hyper": {"features": "windows"}}},
             "min_rows": 40}
    est = make_estimator("moe", hyper, random_state=3).fit(tr, va, context(tiny_instrument_grid))
    folder = est.save(tmp_path_factory.mktemp("moe_model") / "m")
    return est, folder, te


def test_mixture_folder_nests_every_part_and_round_trips(fitted):
    est, folder, te = fitted
    manifest = json.loads((folder / "estimator.json").read_text())
    assert manifest["class"] == "moe"
    for k in range(9):
        assert (folder / f"experts/{k}/estimator.json").is_file()
        assert f"experts/{k}/estimator.json" in manifest["files"]
    for g in ("gate", "windows", "regression", "template", "mixture"):
        assert (folder / f"gates/{g}/estimator.json").is_file()
    assert (folder / "gates/regression/regressors/M_H/estimator.json").is_file()   # a part of a part
    assert (folder / "gates/template/template/estimator.json").is_file()
    flux, sigma = te.load(np.float64)
    again = load(folder)
    for name, v in est.predict_all(flux, sigma, te.params).items():
        np.testing.assert_array_equal(again.predict_all(flux, sigma, te.params)[name], v)


def test_every_sha256_of_the_tree_is_checked(fitted, tmp_path):
    import shutil

    _, folder, _ = fitted
    copy = tmp_path / "m"
    shutil.copytree(folder, copy)
    weights = copy / "experts/4/weights.npz"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"experts/4/weights\.npz: does not match the sha256"):
        load(copy)
    shutil.rmtree(copy)
    shutil.copytree(folder, copy)
    (copy / "gates/gate/estimator.json").write_text((copy / "gates/gate/estimator.json").read_text() + " ")
    with pytest.raises(InputError, match=r"gates/gate/estimator\.json: does not match the sha256"):
        load(copy)


def test_routings_combine_the_same_experts(fitted):
    est, _, te = fitted
    flux, sigma = te.load(np.float64)
    out = est.predict_all(flux, sigma, te.params)
    P = est.experts_predict(flux, sigma)
    b = est.binning()
    truth = b.index(b.values(te.params))
    np.testing.assert_array_equal(out["bin_true"], truth)
    np.testing.assert_allclose(out["oracle"], P[np.arange(len(P)), truth])
    for g in ("gate", "windows", "regression", "template", "mixture"):
        w = est.parts_[f"gates/{g}"].predict(flux, sigma)
        np.testing.assert_allclose(out[f"soft_{g}"], (w * P).sum(1))
        np.testing.assert_allclose(out[f"hard_{g}"], P[np.arange(len(P)), w.argmax(1)])
        np.testing.assert_array_equal(out[f"bin_{g}"], w.argmax(1))
    np.testing.assert_array_equal(out[""], out["soft_gate"])
    np.testing.assert_array_equal(est.predict(flux, sigma), out["soft_gate"])
    assert set(np.unique(out["outside_regression"])) <= {0, 1}


def test_experts_train_on_their_bin_with_the_margin(fitted, sets):
    est, _, _ = fitted
    b = est.binning()
    x = b.values(NoisyView(sets["train"], 1.0, rng_seed=5).params)
    assert est.n_train_ == [int(b.member(x, k, 0.2).sum()) for k in range(9)]
    assert all(t >= i for t, i in zip(est.n_train_, est.n_train_in_bin_))
    assert sum(est.n_train_in_bin_) == len(x)


def test_a_bin_with_too_few_rows_names_the_key_and_writes_nothing(sets, tmp_path):
    tr, va, _ = views(sets)
    est = make_estimator("moe", {"expert": RIDGE, "bins": {"M_H": 12, "T_eff": 12}, "min_rows": 50})
    with pytest.raises(InputError, match=r"estimators\.m\.hyper\.bins: bin 1 of 144 .* holds \d+ training rows"):
        est.fit(tr, va, context())
    assert not est.is_fitted and not list(tmp_path.iterdir())


@pytest.mark.parametrize("hyper, match", [
    ({"routing": "sideways"}, r"routing: expected one of \['soft', 'hard'\]"),
    ({"gate": {"class": "ridge"}}, r"\.gate\.class: unknown gate class 'ridge'"),
    ({"expert": {"class": "gate_template"}}, r"\.expert\.class: unknown estimator class 'gate_template'"),
    ({"expert": {"class": "ridge", "hyper": {"alpha": 1}}}, r"\.expert\.hyper: unknown hyper-parameter\(s\) \['alpha'\]"),
    ({"compare_gates": {"x": {"class": "gate_classifier", "hyper": {"features": "x", "C": [1]}, "extra": 1}}},
     r"compare_gates\.x: expected a mapping"),
    ({"margin": 2}, r"margin: expected a fraction"),
])
def test_bad_mixture_hyper_parameters_name_the_key(hyper, match):
    with pytest.raises(InputError, match=match):
        REGISTRY["moe"].check_hyper(hyper, "estimators.m.hyper")


def test_which_rule_trains_a_cell_follows_the_parts():
    assert not REGISTRY["moe"].wants_accelerator({"expert": RIDGE})
    assert REGISTRY["moe"].wants_accelerator({"expert": {"class": "mlp", "hyper": {}}})
    assert REGISTRY["conditioned"].wants_accelerator({"model": {"class": "mlp"}})
    assert not REGISTRY["conditioned"].wants_accelerator({"model": {"class": "lightgbm"}})
    assert REGISTRY["vit"].wants_accelerator({}) and not REGISTRY["ridge"].wants_accelerator({})


def test_cores_a_cell_reserves_follow_the_parts(monkeypatch):
    """Every network uses one thread a cell (two cells side by side on 2 cores; the denoisers two); a
    composite the most of its parts; the rule's threads come from the variant (W.cell_threads)."""
    from pfslogg import workflow as W
    from pfslogg.config import load_config
    from workflow_util import ROOT

    assert REGISTRY["mlp"].cpu_threads({}) == 1 and REGISTRY["ridge"].cpu_threads({}) == 1
    assert REGISTRY["cnn"].cpu_threads({}) == 1 and REGISTRY["vit"].cpu_threads({}) == 1
    assert REGISTRY["denoiser"].cpu_threads({}) == 1
    monkeypatch.setattr(REGISTRY["cnn"], "threads", 3)   # a part that asks for more: the composite follows
    assert REGISTRY["moe"].cpu_threads({"expert": {"class": "mlp", "hyper": {}}}) == 1
    assert REGISTRY["moe"].cpu_threads({"expert": {"class": "cnn", "hyper": {}}}) == 3
    assert REGISTRY["conditioned"].cpu_threads({"model": {"class": "cnn"}}) == 3
    monkeypatch.undo()
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert W.cell_threads(cfg, "mlp") == 1 and W.cell_threads(cfg, "moe_mlp") == 1 and W.cell_threads(cfg, "vit") == 1
    assert W.cell_threads(cfg, "denoiser") == 1
    # priorities: a transform (others build on it) before the networks, the networks before in-memory cells
    assert W.cell_priority(cfg, "mlp") == W.cell_priority(cfg, "vit") == 1
    assert W.cell_priority(cfg, "denoiser") == W.cell_priority(cfg, "diffusion") == 2
    assert W.cell_priority(cfg, "ridge") == 1 and not W.is_neural(cfg, "ridge")   # the rule run_cell has no priority
    # a 2-thread cell outranks the two 1-thread network cells that would otherwise take its cores
    # (Snakemake's scheduler maximises the summed priority of the jobs it starts)
    monkeypatch.setattr(REGISTRY["denoiser"], "threads", 2)
    assert W.cell_threads(cfg, "denoiser") == 2 and W.cell_priority(cfg, "denoiser") > 2 * W.cell_priority(cfg, "vit")


def test_conditioned_model_reads_the_gate_estimates(sets, tmp_path):
    tr, va, te = views(sets)
    est = make_estimator("conditioned", {"model": RIDGE, "gate": {"class": "gate_regression",
                                                                   "hyper": {"features": "spectrum"}}})
    est.fit(tr, va, context())
    flux, sigma = te.load(np.float64)
    x = est.inputs(flux)
    assert x.shape == (len(flux), flux.shape[1] + 2)
    np.testing.assert_array_equal(x[:, :-2], flux)
    est.save(tmp_path / "c")
    np.testing.assert_array_equal(load(tmp_path / "c").predict(flux, sigma), est.predict(flux, sigma))
    with pytest.raises(InputError, match="gives no parameter estimates"):
        make_estimator("conditioned", {"gate": {"class": "gate_classifier"}}).fit(tr, va, context())


# -- metrics by parameter bin -----------------------------------------------------------------
def test_evaluate_reports_bins_alternatives_and_columns(fitted):
    est, _, te = fitted
    edges = param_edges(BINS, TINY_RANGES)
    metrics, table = evaluate(est, te, 4 / 3, [2.0, 4.5, 10.0, 35.0], n_resamples=50, param_edges=edges)
    assert set(metrics["bins"]) == {"M_H", "T_eff", "M_H,T_eff"}
    both = metrics["bins"]["M_H,T_eff"]
    assert sum(r["n"] for r in both) == te.n and len(both) == 9
    assert both[0]["M_H"] == [-0.25, pytest.approx(1 / 12)] and both[0]["T_eff"] == [3750.0, 4500.0]
    y, pred = table["log_g"], table["log_g_pred"]
    sel = (table["M_H"] < 1 / 12) & (table["T_eff"] < 4500.0)
    assert both[0]["r2"] == pytest.approx(1 - np.mean((pred[sel] - y[sel]) ** 2) / (4 / 3))
    assert {"oracle", "soft_gate", "hard_template"} <= set(metrics["alternatives"])
    assert table["bin_true"].dtype.kind == "i" and "log_g_pred_oracle" in table
    assert metrics["alternatives"]["soft_gate"]["overall"]["r2"] == pytest.approx(metrics["overall"]["r2"])


def test_param_bins_must_cover_the_prior():
    with pytest.raises(InputError, match=r"evaluation\.param_bins\.T_eff: edges \[4000, 6000\] do not cover"):
        param_edges({"T_eff": [4000.0, 6000.0]}, TINY_RANGES)


# -- the Track B summary -------------------------------------------------------------------------
def _cell(e, y, pred, extra=None, label=None, cls="ridge", hyper=None):
    frame = pd.DataFrame({"log_g": y, "log_g_pred": pred, **(extra or {})})
    doc = {"kind": "estimator", "metrics": {"label": label or e, "class": cls, "var_prior": 4 / 3},
           "details": {}, "provenance": {"params": {"hyper": hyper or {}}}}
    return doc, frame


def test_summary_known_answers():
    from pfslogg.mixtures import summarize_mixtures

    rng = np.random.default_rng(0)
    y = rng.uniform(1, 5, 3000)
    e = rng.standard_normal(3000)
    cells, bayes = {}, {}
    for s in range(2):
        cells[("ridge", "1", 100, s)] = _cell("ridge", y, y + 0.8 * e)
        cells[("lightgbm", "1", 100, s)] = _cell("lightgbm", y, y + 0.7 * e)
        alt = {"log_g_pred_oracle": y + 0.4 * e, "log_g_pred_soft_gate": y + 0.6 * e, "log_g_pred_hard_gate": y + 0.9 * e}
        cells[("moe", "1", 100, s)] = _cell("moe", y, y + 0.6 * e, alt, cls="moe", hyper={"bins": {"M_H": 3}})
    bayes["1"] = ({"metrics": {"overall": {"r2": 0.9, "r2_ci": [0.89, 0.91]}}},
                  pd.DataFrame({"log_g": y, "post_mean": y + 0.3 * e}))
    p = {"compare": {"moe": "ridge"}, "bar": ["lightgbm"], "figure_variant": "none", "confidence": 0.95,
         "bootstrap": 200, "seed": 1}
    m, _ = summarize_mixtures(p, cells, bayes)
    c = m["variants"]["moe"]["cells"]["nl1"]["n100"]
    r2 = {k: 1 - np.mean((k * e) ** 2) / (4 / 3) for k in (0.8, 0.4, 0.6, 0.9, 0.7)}
    assert c["global"]["r2"] == pytest.approx(r2[0.8]) and c["oracle"]["r2"] == pytest.approx(r2[0.4])
    rho = (r2[0.6] - r2[0.8]) / (r2[0.4] - r2[0.8])
    soft = c["routings"]["soft_gate"]
    assert soft["rho"] == pytest.approx(rho) and soft["rho_ci"][0] <= rho <= soft["rho_ci"][1]
    assert c["routings"]["hard_gate"]["rho"] < 0 and c["oracle"]["gain_above_zero"]
    t = m["thesis"]["nl1"]["n100"]
    assert t["bar"] == "lightgbm" and t["variant"] == "moe" and t["beats_bar"]
    assert m["n_violations"] == 0
    bayes["1"] = ({"metrics": {"overall": {"r2": 0.3, "r2_ci": [0.25, 0.35]}}}, bayes["1"][1])
    m, _ = summarize_mixtures(p, cells, bayes)          # every routing above a (wrong) ceiling: reported
    assert m["n_violations"] == 3 and {v["routing"] for v in m["violations"]} == {"main", "soft_gate", "hard_gate"}


def test_summary_refuses_cells_scored_on_other_rows():
    from pfslogg.mixtures import summarize_mixtures

    y = np.linspace(1, 5, 50)
    cells = {("ridge", "1", 10, 0): _cell("ridge", y, y), ("moe", "1", 10, 0): _cell("moe", y[::-1], y)}
    with pytest.raises(InputError, match="other test rows"):
        summarize_mixtures({"compare": {"moe": "ridge"}, "bar": [], "figure_variant": "moe", "confidence": 0.95,
                            "bootstrap": 20, "seed": 0}, cells, {})


# -- Track B figures and tables from a summary ---------------------------------------------------
def _synthetic_summary(tmp_path):
    """A summary of two noise levels, a nine-bin mixture with three gates and its global model, written
    as results/track_b/mixtures.json with a provenance block (what a figure or table reads)."""
    from pfslogg.mixtures import summarize_mixtures
    from pfslogg.provenance import write_results

    rng = np.random.default_rng(1)
    n = 900
    y = rng.uniform(1, 5, n)
    truth = rng.integers(0, 9, n)
    b = Binning.from_hyper(BINS, TINY_RANGES)
    fitted = {"labels": b.labels(), "bins": b.to_json(), "n_train": [300] * 9, "n_train_in_bin": [250] * 9,
              "gates": {"gate": {}, "windows": {"features": ["Ca II 8498", "Na I"], "importance": [0.5, 0.2]},
                        "regression": {}}}
    cells, bayes = {}, {}
    for tag, scale in (("0p2", 0.3), ("1", 0.7)):
        e = rng.standard_normal(n) * scale
        for s in range(2):
            cells[("ridge", tag, 500, s)] = _cell("ridge", y, y + e * 1.2, label="Ridge")
            cells[("lightgbm", tag, 500, s)] = _cell("lightgbm", y, y + e * 1.1, label="LightGBM")
            cols = {"log_g_pred_oracle": y + e * 0.9, "bin_true": truth}
            for g, k in (("gate", 1.0), ("windows", 1.05), ("regression", 0.95)):
                cols[f"log_g_pred_soft_{g}"] = y + e * k
                cols[f"log_g_pred_hard_{g}"] = y + e * (k + 0.1)
                cols[f"bin_{g}"] = np.where(rng.random(n) < 0.7, truth, rng.integers(0, 9, n))
            cols["outside_regression"] = (rng.random(n) < 0.02).astype(int)
            doc, frame = _cell("moe", y, y + e, cols, label="MoE of Ridge (3 [M/H] x 3 T_eff bins)", cls="moe",
                               hyper={"bins": BINS})
            doc["details"]["fitted"] = fitted
            cells[("moe", tag, 500, s)] = (doc, frame)
        bayes[tag] = ({"metrics": {"overall": {"r2": 0.97, "r2_ci": [0.96, 0.98]}}},
                      pd.DataFrame({"log_g": y, "post_mean": y + e * 0.5}))
    p = {"compare": {"moe": "ridge"}, "bar": ["lightgbm"], "figure_variant": "moe", "confidence": 0.95,
         "bootstrap": 100, "seed": 1, "default_noise_level": 1.0}
    metrics, details = summarize_mixtures(p, cells, bayes)
    path = tmp_path / "results" / "track_b" / "mixtures.json"
    write_results(path, metrics, "summarize_moe", [], params=p, kind="moe", details=details)
    return path, metrics


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    return _synthetic_summary(tmp_path_factory.mktemp("track_b"))


def test_summary_shown_mixture_per_bin_and_gate(summary):
    _, m = summary
    shown = m["shown"]["nl1"]
    assert m["shown_variant"] == "moe" and len(shown["bins"]) == 9
    assert {"global", "mixture", "oracle", "bayes"} <= set(shown["bins"][0])
    assert 0.5 < shown["gates"]["gate"]["test_accuracy"] < 0.9 and shown["gates"]["regression"]["test_outside"] > 0
    assert m["at_default"]["noise_level"] == 1.0 and m["at_lowest"]["noise_level"] == 0.2
    assert m["at_default"]["bayes"]["r2"] == 0.97


@pytest.mark.parametrize("name", ["moe_routing", "moe_rho", "moe_bins", "moe_coverage", "moe_gate"])
def test_track_b_figures_render_reproducibly(summary, tmp_path, name):
    from pfslogg.plots import FIGURES

    path, _ = summary
    FIGURES[name]([str(path)], str(tmp_path / "a.pdf"), {"confidence": 0.95})
    FIGURES[name]([str(path)], str(tmp_path / "b.pdf"), {"confidence": 0.95})
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_track_b_figure_refuses_another_kind(tmp_path):
    from pfslogg.plots import FIGURES
    from pfslogg.provenance import write_results

    other = tmp_path / "x.json"
    write_results(other, {"n": 1}, "r", [], kind="bayes")
    with pytest.raises(InputError, match=r"x\.json: results of kind 'bayes', expected 'moe'"):
        FIGURES["moe_routing"]([str(other)], str(tmp_path / "o.pdf"), {})


@pytest.mark.parametrize("name", ["moe_summary", "moe_rho", "moe_findings"])
def test_track_b_tables_cite_macros_only(summary, name):
    from pfslogg.paper import find_hand_typed_numbers
    from pfslogg.paper.tables import table_tex

    path, _ = summary
    root = path.parents[2]
    text = table_tex(name, root / "results", [path], root=root)
    assert "\\TrackBMixtures" in text
    assert not find_hand_typed_numbers(text), find_hand_typed_numbers(text)[:3]


def test_findings_words_follow_the_intervals(summary):
    from pfslogg.paper.tables import table_tex

    path, m = summary
    root = path.parents[2]
    text = table_tex("moe_findings", root / "results", [path], root=root)
    ci = m["at_default"]["variants"]["moe"]["main"]["diff_ci"]
    expected = "a gain beyond its interval" if ci[0] > 0 else ("a loss beyond its interval" if ci[1] < 0
                                                                else "no difference beyond its interval")
    assert expected in text.split("\\item")[3]       # the mixture at the default noise level
    t = m["at_default"]["thesis"]
    word = "beats" if t["diff_bar_ci"][0] > 0 else ("falls short" if t["diff_bar_ci"][1] < 0 else "not distinguishable")
    assert word in text


def test_config_refuses_mixture_bins_that_do_not_cover_the_prior(tmp_path):
    import yaml

    from pfslogg.config import load_config
    from workflow_util import ROOT

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"estimators": {"moe_ridge": {"class": "moe", "hyper": {"bins": {"M_H": [0.0, 0.75]}}}}}))
    with pytest.raises(InputError, match=r"estimators\.moe_ridge\.hyper\.bins\.M_H: edges \[0, 0\.75\] do not cover "
                                         r"the prior \[-0\.25, 0\.75\]"):
        load_config(ROOT / "config/config.yaml", cfg)
    cfg.write_text(yaml.safe_dump({"estimators": {"moe_ridge": {"class": "moe", "hyper": {
        "gate": {"class": "gate_typo"}}}}}))
    with pytest.raises(InputError, match=r"estimators\.moe_ridge\.hyper\.gate\.class: unknown gate class 'gate_typo'"):
        load_config(ROOT / "config/config.yaml", cfg)
