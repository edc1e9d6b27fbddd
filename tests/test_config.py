"""Configuration: the default validates; every bad config ends in one InputError naming its key."""

import copy
from pathlib import Path

import pytest
import yaml

from pfslogg.config import SCHEMA, check_config, load_config, noise_seed, split_seed
from pfslogg.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "config" / "config.yaml"


@pytest.fixture(scope="module")
def default_cfg():
    with open(DEFAULT) as fh:
        return yaml.safe_load(fh)


def write(tmp_path, cfg, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg) if not isinstance(cfg, str) else cfg)
    return path


def test_schema_is_the_repository_schema():
    assert SCHEMA.read_text() == (ROOT / "config" / "schema.yaml").read_text()  # the link and the package data


def test_default_config_validates():
    cfg = load_config(DEFAULT)
    assert cfg["grid"]["source"] == "synth"
    assert cfg["params"]["log_g"] == [1.0, 5.0]
    assert cfg["instrument"] == {"resolution": 5000, "n_pixels": 4096, "wave_range": [7100.0, 8850.0]}
    assert cfg["noise"]["throughput"] == 2.2 and cfg["noise"]["exposures"] == 12
    assert set(cfg["figure"]["estimators"]) <= set(cfg["estimators"])


def test_paper_config_validates():
    paper = ROOT / "config" / "paper.yaml"
    if not paper.exists():
        pytest.skip("config/paper.yaml not present")
    cfg = load_config(DEFAULT, paper)   # as `snakemake --configfile config/paper.yaml` sees it
    assert cfg["datasets"]["train"]["n"] >= 100_000
    assert max(cfg["experiments"]["benchmark"]["sizes"]) == cfg["datasets"]["train"]["n"]
    assert cfg["estimators"]["lightgbm"]["hyper"]["n_estimators"] == 3000


def test_paper_config_has_the_original_track_a():
    """config/paper.yaml trains the original study's networks: the ViT with 4.8M parameters (patch 16
    -> 256 tokens, hidden 256, 6 layers, 8 heads, MLP 1024; 200 epochs, batch 256, lr 3e-4), the
    CNN kernel sweep 7/9/21/45/63 with dilation 2, a CNN at the ViT's parameter count, and the MLPs
    in Track F's benchmark."""
    import numpy as np

    from pfslogg.estimators import make_estimator

    cfg = load_config(DEFAULT, ROOT / "config" / "paper.yaml")
    est = cfg["estimators"]
    vit = est["vit"]["hyper"]
    assert {k: vit[k] for k in ("patch", "dim", "depth", "heads", "mlp", "epochs", "batch_size", "lr",
                                "weight_decay", "dropout")} == {
        "patch": 16, "dim": 256, "depth": 6, "heads": 8, "mlp": 1024, "epochs": 200, "batch_size": 256,
        "lr": 3e-4, "weight_decay": 0.01, "dropout": 0.1}
    wave = np.linspace(7100.0, 8850.0, 4096)

    def n_params(name):
        e = make_estimator(est[name]["class"], est[name]["hyper"], random_state=0, where=name)
        return sum(p.numel() for p in e._network(4096, wave).parameters())

    assert 4.7e6 < n_params("vit") < 4.95e6            # the original's "about 4.9M"
    assert abs(n_params("cnn_matched") / n_params("vit") - 1) < 0.1
    exps = cfg["experiments"]
    ablations = exps["ablations"]["estimators"]
    assert sorted([16] + [est[v]["hyper"]["patch"] for v in ablations if v.startswith("vit_patch")]) == [16, 32, 64]
    kernels = {est[v]["hyper"].get("kernel_size") for v in ablations if est[v]["class"] == "cnn"}
    assert kernels >= {7, 9, 21, 45, 63}
    assert any(est[v]["hyper"].get("dilation") == 2 for v in ablations)
    assert len(exps["scaling"]["sizes"]) >= 4 and max(exps["scaling"]["sizes"]) == cfg["datasets"]["train"]["n"]
    assert {"mlp", "mlp_shortcut"} <= set(exps["benchmark"]["estimators"])
    assert set(exps["vit_noise"]["noise_levels"]) == set(exps["benchmark"]["noise_levels"])


def test_schema_documents_every_key():
    """Every property in the schema has a type (or $ref), a description and a default (STYLE.md)."""
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = []

    def walk(props, where):
        for key, sub in props.items():
            name = f"{where}{key}"
            if "description" not in sub and "$ref" not in sub:
                missing.append(f"{name}: description")
            if "default" not in sub:
                missing.append(f"{name}: default")
            if "properties" in sub:
                walk(sub["properties"], name + ".")

    walk(schema["properties"], "")
    assert not missing


def test_defaults_filled_from_schema(tmp_path):
    cfg = load_config(write(tmp_path, {"seed": 3}))
    assert cfg["seed"] == 3
    assert cfg["grid"]["source"] == "synth" and cfg["grid"]["resolution"] == 20000
    assert cfg["params"]["T_eff"] == [3750.0, 6000.0]
    assert cfg["noise"]["mag"] == [20.5, 22.5]
    assert cfg["datasets"]["train"] == {"n": 20000, "path": None}
    assert cfg["evaluation"]["snr_bins"][0] == 2.0


def test_defaults_match_config_yaml(default_cfg, tmp_path):
    """The schema's defaults and the embedded default config describe the same study."""
    filled = load_config(write(tmp_path, {"seed": default_cfg["seed"]}))
    for section in ("grid", "params", "instrument", "noise", "evaluation", "ceiling"):
        assert filled[section] == default_cfg[section], section
    loaded = load_config(DEFAULT)   # the default config with its own defaults filled in
    for section in ("estimators", "experiments", "figure"):
        assert filled[section] == loaded[section], section


def test_seeds_distinct_per_split(default_cfg):
    seeds = {split_seed(default_cfg, s) for s in ("train", "val", "test")}
    noise = {noise_seed(default_cfg, s) for s in ("val", "test")}
    assert len(seeds) == 3 and len(noise) == 2 and not seeds & noise


def edit(cfg, dotted, value):
    out = copy.deepcopy(cfg)
    *parents, last = dotted.split(".")
    node = out
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()

BAD = [
    # schema violations
    ("seed", "abc", "seed"),
    ("seed", -1, "seed"),
    ("foo", 1, "foo"),                                   # unknown top-level key
    ("noise.foo", 1, "noise"),                           # unknown nested key
    ("grid.source", "foo", "grid.source"),
    ("grid.resolution", 5000, "grid.resolution"),
    ("params.T_eff", [4000.0], "params.T_eff"),
    ("params.log_g", "1-5", "params.log_g"),
    ("noise.exposures", 2.5, "noise.exposures"),
    ("noise.exposures", 0, "noise.exposures"),
    ("datasets.train.n", 0, "datasets.train.n"),
    ("datasets.test.foo", 1, "datasets.test"),
    ("evaluation.confidence", 1.5, "evaluation.confidence"),
    ("evaluation.snr_bins", [2.0], "evaluation.snr_bins"),
    ("estimators.ridge", [1, 2], "estimators.ridge"),
    # semantic checks
    ("params.T_eff", [3000.0, 6000.0], "params.T_eff"),   # outside the synth axis
    ("params.M_H", [-0.25, 1.0], "params.M_H"),
    ("params.a_M", [0.6, 0.6], "params.a_M"),
    ("params.log_g", [5.0, 1.0], "params.log_g"),          # lo > hi
    ("params.T_eff", [6000.0, 4000.0], "params.T_eff"),
    ("params.log_g", [3.0, 3.0], "params.log_g"),          # the target must vary
    ("noise.mag", [22.5, 20.5], "noise.mag"),
    ("noise.seeing", [1.5, 0.5], "noise.seeing"),
    ("instrument.wave_range", [6900.0, 8850.0], "instrument.wave_range"),
    ("grid.source", "bosz2017", "grid.root"),             # BOSZ without its folder
    ("grid.source", "bosz2024", "grid.root"),
    ("figure.estimators", ["ridge", "transformer_xl"], "figure.estimators"),
    ("evaluation.snr_bins", [2.0, 4.5, 3.0, 7.0], "evaluation.snr_bins"),
    ("evaluation.snr_bins", [2.0, 3.0, 3.0], "evaluation.snr_bins"),
    ("estimators.xgboost", {}, "estimators.xgboost"),
    ("ceiling.original", [0.1, 0.2], "ceiling.original"),
]


@pytest.mark.parametrize("key,value,named", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_config_names_the_key(default_cfg, tmp_path, key, value, named):
    path = write(tmp_path, edit(default_cfg, key, value))
    with pytest.raises(InputError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg
    assert named in msg
    assert "\n" not in msg.strip()   # one line


def test_params_range_outside_bosz_axis(default_cfg, tmp_path):
    cfg = edit(edit(default_cfg, "grid.source", "bosz2017"), "grid.root", "/data/bosz")
    assert load_config(write(tmp_path, edit(cfg, "params.T_eff", [4000.0, 12000.0])))   # BOSZ reaches 12000 K
    with pytest.raises(InputError, match="params.T_eff"):
        load_config(write(tmp_path, edit(cfg, "params.T_eff", [4000.0, 13000.0])))


def test_fixed_parameter_allowed(default_cfg, tmp_path):
    cfg = load_config(write(tmp_path, edit(default_cfg, "params.M_H", [0.0, 0.0])))
    assert cfg["params"]["M_H"] == [0.0, 0.0]


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="nope.yaml.*not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["seed: [1, 2", "- 1\n- 2\n", ""])
def test_malformed_yaml(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match="config.yaml"):
        load_config(path)


def test_check_config_does_not_need_a_file(default_cfg):
    cfg = load_config(DEFAULT)
    bad = edit(cfg, "evaluation.snr_bins", [3.0, 2.0])
    with pytest.raises(InputError, match="^config: evaluation.snr_bins"):
        check_config(bad)


def test_a_user_data_set_may_not_sit_where_the_workflow_writes(tmp_path, monkeypatch):
    """datasets.<split>.path at data/datasets/<split>.h5 would be overwritten by a rebuild: refused."""
    monkeypatch.chdir(tmp_path)
    cfg = yaml.safe_load(DEFAULT.read_text())
    cfg["datasets"]["test"]["path"] = "data/datasets/train.h5"
    with pytest.raises(InputError, match=r"datasets\.test\.path: data/datasets/train\.h5 is where the workflow"):
        load_config(write(tmp_path, cfg))
    cfg["datasets"]["test"]["path"] = "external/test.h5"
    (tmp_path / "external").mkdir()
    (tmp_path / "external/test.h5").write_bytes(b"")
    assert load_config(write(tmp_path, cfg))["datasets"]["test"]["path"] == "external/test.h5"


@pytest.mark.parametrize("path,shown", [("/nonexistent.h5", "/nonexistent.h5: no such data set file"),
                                        ("external/val.h5", "external/val.h5: no such data set file (relative to "),
                                        ("external", "external: no such data set file"),   # a folder
                                        ("bad\0name.h5", "bad\\x00name.h5: no such data set file")])
def test_a_user_data_set_must_exist(tmp_path, monkeypatch, path, shown):
    """No rule makes datasets.<split>.path, so a missing one is one line naming the key (after an
    earlier run, Snakemake would otherwise keep the old results: see tests/test_bad_input.py)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "external").mkdir()
    cfg = yaml.safe_load(DEFAULT.read_text())
    cfg["datasets"]["val"]["path"] = path
    config = write(tmp_path, cfg)
    with pytest.raises(InputError) as e:
        load_config(config)
    assert str(e.value).startswith(f"{config}: datasets.val.path: {shown}") and "\n" not in str(e.value)


@pytest.mark.parametrize("key,value,message", [
    ("ceiling.validation.fractions", [0.1, 0.5], "expected 1.0 among them"),
    ("ceiling.validation.ml_logg", [2.25, 5.5], "5.5 is outside params.log_g"),
    ("ceiling.sweep.mags", [21.0, 19.0], "strictly increasing magnitudes"),
])
def test_ceiling_checks_are_checked(default_cfg, tmp_path, key, value, message):
    with pytest.raises(InputError, match=message):
        load_config(write(tmp_path, edit(default_cfg, key, value)))


def test_the_budget_overlay_adds_bigger_mlps_on_top_of_the_default_config():
    """config/budget.yaml (issue 17's training-budget measurement) validates on top of the default and only adds
    variants: the default's estimators and experiments are unchanged."""
    cfg = load_config(DEFAULT, ROOT / "config" / "budget.yaml")
    base = load_config(DEFAULT)
    added = set(cfg["estimators"]) - set(base["estimators"])
    assert added == {"mlp_e12", "mlp_big_e12", "mlp_big_e30", "mlp_big_ens"}
    assert cfg["estimators"]["mlp_big_ens"]["hyper"]["member"]["hyper"]["hidden"] == [1024, 256, 64]
    assert cfg["estimators"]["mlp_big_e30"]["hyper"]["epochs"] == 30
    assert {k: v for k, v in cfg.items() if k != "estimators"} == {k: v for k, v in base.items() if k != "estimators"}


def test_every_default_sigma_has_a_rescaling_per_snr_bin():
    """The default uncertainty set gives every model that has a per-star sigma of its own a conformal rescaling
    per SNR bin calibrated on simulated stars (the intervals shipped as calibrated, rule check_coverage)."""
    from pfslogg.tracks.track_c import uncertainty_params

    cfg = load_config(DEFAULT)
    p = uncertainty_params(cfg)
    raw = [e for e in p["estimators"] if e not in p["rescales"]]
    assert len(raw) == 8
    per_bin = {p["rescales"][e]: e for e in p["per_snr_bin"]}
    assert set(per_bin) == set(raw)
    for e in per_bin.values():
        v = cfg["estimators"][e]
        assert v["hyper"]["calibrate_on"] == "train" and v["train_source"] == "simulator"
        assert v["train_mag"] == cfg["datasets"]["test"]["mag"]   # stars over the test's SNR range
