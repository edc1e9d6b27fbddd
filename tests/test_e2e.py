"""End to end: the whole DAG to figures/r2_vs_snr.pdf on the tiny config, in a temporary copy."""

import json
import re
import sys
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import require_tools
from workflow_util import TINY, snakemake

pytestmark = pytest.mark.e2e
PROVENANCE_KEYS = {"rule", "command", "git_commit", "git_dirty", "config_digest", "inputs", "packages",
                   "started", "finished", "host"}


def test_figure_is_a_pdf(tiny_run, tmp_path):
    fig = tiny_run / "figures/r2_vs_snr.pdf"
    assert fig.read_bytes()[:5] == b"%PDF-"
    require_tools("pdftoppm")  # rendering it: skipped without poppler, fails in CI
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(fig), str(tmp_path / "fig")], check=True)
    assert (tmp_path / "fig.png").stat().st_size > 5000


def test_results_have_provenance_and_sane_metrics(tiny_run):
    for name in ("ridge", "lightgbm", "template"):
        res = json.loads((tiny_run / f"results/cells/{name}/nl1_n1000_s0.json").read_text())
        assert res["kind"] == "estimator"
        assert PROVENANCE_KEYS <= set(res["provenance"])
        prov = res["provenance"]
        assert prov["rule"] == "run_cell"
        assert prov["command"].startswith("python -m pfslogg run-cell")
        assert set(prov["inputs"]) == {f"data/datasets/{s}.h5" for s in ("train", "val", "test")} | {"data/grid/instrument.h5"}
        assert (tiny_run / f"models/{name}/nl1_n1000_s0/estimator.json").is_file()
        m = res["metrics"]
        assert m["n_test"] == 300
        assert np.isfinite(m["overall"]["r2"]) and m["overall"]["r2"] <= 1
        lo, hi = m["overall"]["r2_ci"]
        assert lo <= m["overall"]["r2"] <= hi
        assert m["var_prior"] == pytest.approx(4 / 3)
    ridge = json.loads((tiny_run / "results/cells/ridge/nl1_n1000_s0.json").read_text())["metrics"]
    assert ridge["overall"]["r2"] > 0.1, "Ridge should learn log g on the embedded model"


def test_ceiling_rises_with_snr(tiny_run):
    fisher = json.loads((tiny_run / "results/track_c/fisher.json").read_text())["metrics"]
    med = [b["r2max_median"] for b in fisher["snr_bins"]]
    assert len(med) >= 2 and all(b >= a for a, b in zip(med, med[1:]))
    per = pd.read_csv(tiny_run / "results/track_c/fisher_per_spectrum.csv")
    assert len(per) == 300 and (per["crlb"] > 0).all()


def test_no_model_beats_the_bayes_ceiling(tiny_run):
    """The posterior mean has the least MSE of any estimator: no cell of the figure scores above the
    Bayes ceiling beyond its interval, overall or in an SNR bin; and it lies on the same spectra."""
    bayes = json.loads((tiny_run / "results/track_c/bayes.json").read_text())
    assert bayes["kind"] == "bayes"
    m = bayes["metrics"]
    top = {b["lo"]: b["r2_ci"][1] for b in m["snr_bins"]}
    for name in ("ridge", "lightgbm", "template"):
        cell = json.loads((tiny_run / f"results/cells/{name}/nl1_n1000_s0.json").read_text())["metrics"]
        assert cell["overall"]["r2"] <= m["overall"]["r2_ci"][1], name
        for b in cell["snr_bins"]:
            assert b["r2"] <= top.get(b["lo"], 1.0), (name, b["lo"])
    per = pd.read_csv(tiny_run / "results/track_c/bayes_per_spectrum.csv")
    cells = pd.read_csv(tiny_run / "results/cells/ridge/nl1_n1000_s0.csv")
    assert len(per) == 300 and (per["post_sd"] > 0).all()
    np.testing.assert_allclose(per["log_g"], cells["log_g"], rtol=1e-5)
    np.testing.assert_allclose(per["snr"], cells["snr"], rtol=1e-5)


def test_datasets_follow_the_pfsspec_layout(tiny_run):
    params = pd.read_hdf(tiny_run / "data/datasets/test.h5", key="dataset/params")
    for col in ("T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "redshift", "snr"):
        assert col in params.columns
    assert params["T_eff"].between(4500, 5500).all() and params["log_g"].between(1, 5).all()
    summary = json.loads((tiny_run / "results/data/test.json").read_text())["metrics"]
    assert summary["snr_p05"] < 4 and summary["snr_p95"] > 20, "test magnitudes must span SNR ~2-30"


def test_rerun_is_a_no_op_and_deterministic(tiny_run):
    out = snakemake(tiny_run, "figures/r2_vs_snr.pdf", "--cores", "2", "--configfile", TINY, "-n").stdout
    assert "Nothing to be done" in out or "nothing to be done" in out.lower()


def test_editing_the_grid_reruns_no_data_set_rule(tiny_run, tmp_path):
    """Noise levels and training sizes are views of the stored data sets: a new grid reruns cells only."""
    import yaml
    cfg = yaml.safe_load((tiny_run / TINY).read_text())
    cfg["experiments"]["benchmark"]["noise_levels"] = [0.0, 0.3, 1.0, 3.0]
    cfg["experiments"]["benchmark"]["sizes"] = [100, 500, 1000]
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(tiny_run, "track_f", "--cores", "2", "--configfile", str(tmp_path / "edited.yaml"), "-n").stdout
    jobs = set(re.findall(r"^\s*(?:local)?rule (\w+):", out, flags=re.M))
    assert "run_cell" in jobs and "aggregate_experiment" in jobs, out[-2000:]
    assert not jobs & {"build_raw_grid", "convolve_grid", "simulate_dataset"}, jobs
    assert "nl0p3_n500_s1" in out


def test_saved_cell_model_predicts_the_reported_numbers(tiny_run):
    """The model folder of a cell loads in a fresh process and reproduces the cell's predictions."""
    code = (
        "import numpy as np, pandas as pd, json\n"
        "from pfslogg.estimators import load\n"
        "from pfslogg.data.dataset import SpectraSet\n"
        "from pfslogg.data.views import NoisyView\n"
        "p = json.load(open('results/cells/lightgbm/nl1_n1000_s0.json'))['provenance']['params']\n"
        "v = NoisyView(SpectraSet('data/datasets/test.h5'), p['noise_level'], noise_seed=p['test_noise_seed'],\n"
        "              sigma=p['sigma'])\n"
        "f, s = v.load(dtype=float)\n"
        "pred = load('models/lightgbm/nl1_n1000_s0').predict(f, s)\n"
        "ref = pd.read_csv('results/cells/lightgbm/nl1_n1000_s0.csv')['log_g_pred'].to_numpy()\n"
        "assert np.allclose(pred, ref, rtol=1e-5, atol=1e-6), np.abs(pred - ref).max()\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tiny_run, capture_output=True, text=True)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
