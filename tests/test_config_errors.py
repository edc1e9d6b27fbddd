"""A config mistake prints one line per violation: ``config: <dotted.key.path>: <what was expected>``,
with a did-you-mean for unknown keys, the expectation and the value given for wrong values, never the
schema or the whole config (as snakemake.utils.validate did: dozens to hundreds of lines for one typo)."""

import copy
import re
from pathlib import Path

import pytest
import yaml

from pfslogg.config import load_config, validate_config
from pfslogg.errors import InputError

from workflow_util import copy_workflow, snakemake

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default_cfg():
    with open(ROOT / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def errors(cfg, where="config"):
    """The lines of the one InputError that validate_config raises for ``cfg``."""
    with pytest.raises(InputError) as e:
        validate_config(copy.deepcopy(cfg), where)
    lines = str(e.value).split("\n")
    for line in lines:
        assert line.startswith(f"{where}: ") and len(line) < 200, line
        assert "properties" not in line and "$ref" not in line and "description" not in line, line  # no schema dump
    return lines


def with_(cfg, **edits):
    """A copy of cfg with dotted keys (``noise__exposures``) set."""
    out = copy.deepcopy(cfg)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = out
        for p in parents:
            node = node[p]
        node[last] = value
    return out


def test_the_default_config_passes_and_defaults_are_filled(default_cfg):
    assert validate_config(copy.deepcopy(default_cfg)) is not None
    filled = validate_config({"seed": 3})
    assert filled["noise"]["noise_level"] == 1.0 and filled["grid"]["source"] == "synth"


def test_typo_names_the_key_and_suggests_the_right_one(default_cfg):
    assert errors(with_(default_cfg, noise__noise_levle=1.0)) == [
        "config: noise.noise_levle: unknown key (did you mean 'noise_level'?)"]
    assert errors(with_(default_cfg, figur={})) == ["config: figur: unknown key (did you mean 'figure'?)"]
    assert errors(with_(default_cfg, zzz=1)) == ["config: zzz: unknown key"]   # nothing close: no guess


def test_wrong_type_says_what_was_expected_and_what_was_given(default_cfg):
    assert errors(with_(default_cfg, seed="abc")) == ["config: seed: expected an integer, got 'abc'"]
    assert errors(with_(default_cfg, noise__exposures=2.5)) == ["config: noise.exposures: expected an integer, got 2.5"]
    assert errors(with_(default_cfg, grid__root=5)) == ["config: grid.root: expected a string or null, got 5"]


def test_below_minimum_and_other_bounds(default_cfg):
    assert errors(with_(default_cfg, noise__exposures=0)) == ["config: noise.exposures: expected a number >= 1, got 0"]
    assert errors(with_(default_cfg, noise__throughput=0.0)) == [
        "config: noise.throughput: expected a number > 0, got 0.0"]
    assert errors(with_(default_cfg, evaluation__confidence=1.5)) == [
        "config: evaluation.confidence: expected a number < 1, got 1.5"]
    assert errors(with_(default_cfg, params__T_eff=[4000.0])) == [
        "config: params.T_eff: expected at least 2 items, got 1 ([4000.0])"]


def test_enum_lists_the_allowed_values(default_cfg):
    assert errors(with_(default_cfg, grid__source="bosz2042")) == [
        "config: grid.source: expected one of 'synth', 'bosz2017', 'bosz2024', got 'bosz2042' "
        "(did you mean 'bosz2024'?)"]


def test_noise_sigma_is_estimated_or_stored(default_cfg):
    assert errors(with_(default_cfg, noise__sigma="estimate")) == [
        "config: noise.sigma: expected one of 'estimated', 'stored', got 'estimate' (did you mean 'estimated'?)"]
    cfg = copy.deepcopy(default_cfg)
    del cfg["noise"]["sigma"]
    assert validate_config(cfg)["noise"]["sigma"] == "estimated"          # the default: no error channel


def test_nested_keys(default_cfg):
    ridge = next(iter(default_cfg["estimators"]))
    assert errors(with_(default_cfg, estimators={ridge: {"class": "ridge", "hyper": 5}})) == [
        f"config: estimators.{ridge}.hyper: expected a mapping, got 5"]
    assert errors(with_(default_cfg, estimators={ridge: {"class": "ridge", "hyepr": {}}})) == [
        f"config: estimators.{ridge}.hyepr: unknown key (did you mean 'hyper'?)"]
    exp = dict(default_cfg["experiments"]["benchmark"], sizes=[1, 2.5, 100])
    assert errors(with_(default_cfg, experiments__benchmark=exp)) == [
        "config: experiments.benchmark.sizes[0]: expected a number >= 2, got 1",
        "config: experiments.benchmark.sizes[1]: expected an integer, got 2.5"]
    assert errors(with_(default_cfg, datasets__train={"path": None})) == [
        "config: datasets.train.n: required key missing"]


def test_several_violations_give_several_lines_sorted_by_key(default_cfg):
    cfg = with_(default_cfg, seed=-1, noise__noise_levle=1.0, noise__exposures="12", grid__source="x",
                evaluation__snr_bins=[2.0])
    lines = errors(cfg)
    assert [line.split(": ")[1] for line in lines] == [
        "evaluation.snr_bins", "grid.source", "noise.exposures", "noise.noise_levle", "seed"]
    assert len(lines) == 5


def test_load_config_uses_it_and_names_the_file(default_cfg, tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(with_(default_cfg, noise__noise_levle=1.0, seed="x")))
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(e.value).split("\n") == [
        f"{path}: noise.noise_levle: unknown key (did you mean 'noise_level'?)",
        f"{path}: seed: expected an integer, got 'x'"]


def test_snakemake_prints_one_short_message(tmp_path):
    """End to end: a typo in a --configfile stops `snakemake -n` with a few lines naming the key."""
    wd = copy_workflow(tmp_path / "wf")
    (wd / "typo.yaml").write_text("noise:\n  noise_levle: 1.0\n")
    proc = snakemake(wd, "-n", "--configfile", "typo.yaml", check=False, timeout=300)
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]
    assert "noise.noise_levle" in out and "did you mean 'noise_level'" in out, out[-3000:]
    assert len(out.splitlines()) < 25, out[-3000:]


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    """YAML readers keep the last of two equal keys: a second `experiments:` block would silently
    drop the first. Overriding a key a merge (<<: *anchor) brought in stays allowed."""
    path = tmp_path / "twice.yaml"
    path.write_text("experiments:\n  benchmark: {seeds: 2}\nseed: 3\nexperiments:\n  scaling: {seeds: 1}\n")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: not valid YAML (key 'experiments' given twice (lines 1 and 4)")
    merged = tmp_path / "merge.yaml"
    merged.write_text("estimators:\n  a: {class: ridge, hyper: &h {alphas: [1.0]}}\n"
                      "  b: {class: ridge, hyper: {<<: *h, alphas: [2.0]}}\n")
    cfg = load_config(ROOT / "config" / "config.yaml", merged)
    assert cfg["estimators"]["b"]["hyper"] == {"alphas": [2.0]}


def test_snakemake_refuses_a_configfile_with_a_key_twice(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    (wd / "twice.yaml").write_text("seed: 3\nseed: 4\n")
    proc = snakemake(wd, "-n", "--configfile", "twice.yaml", check=False, timeout=300)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "twice.yaml: not valid YAML (key 'seed' given twice (lines 1 and 2)" in proc.stdout, proc.stdout[-3000:]


def test_the_full_study_resolves(tmp_path):
    """`snakemake all --configfile config/paper.yaml` builds its whole DAG (the Slurm cluster's
    job): every track's cells at the original scale, the networks in their GPU rule."""
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(wd, "all", "-n", "--cores", "8", "--configfile", "config/paper.yaml", timeout=300)
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout.split("Job stats:")[1], flags=re.M))
    cfg = load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml")
    networks = ("vit", "cnn", "mlp", "mlp_shortcut")   # and mixtures or conditioned models with a network part
    neural = {n for n, v in cfg["estimators"].items() if v["class"] in networks
              or any(isinstance(part, dict) and part.get("class") in networks for part in (v.get("hyper") or {}).values())}
    cells = {(e, float(nl), s, k) for x in cfg["experiments"].values() for e in x["estimators"]
             for nl in x["noise_levels"] for s in x["sizes"] for k in range(x["seeds"])}
    cells |= {(e, float(cfg["noise"]["noise_level"]), cfg["datasets"]["train"]["n"], 0) for e in cfg["figure"]["estimators"]}
    u = cfg["uncertainty"]   # Track C's per-star sigma cells
    cells |= {(e, float(cfg["noise"]["noise_level"]), u["size"], 0) for e in u["estimators"]}
    d = cfg["denoising"]   # Track D's transforms (the denoiser: a network), trained once per noise level
    cells |= {(t, float(nl), d["size"], k) for t in d["transforms"] for nl in d["noise_levels"] for k in range(d["seeds"])}
    neural |= {n for n, v in cfg["estimators"].items() if v["class"] in ("denoiser", "diffusion")}
    assert int(stats["run_neural_cell"]) == sum(c[0] in neural for c in cells)
    assert int(stats["run_cell"]) == sum(c[0] not in neural for c in cells)
    assert int(stats["compile_paper"]) >= 5
