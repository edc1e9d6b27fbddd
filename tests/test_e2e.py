"""End to end: the whole DAG to figures/r2_vs_snr.pdf on the tiny config, in a temporary copy."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from workflow_util import TINY, snakemake

pytestmark = pytest.mark.e2e
PROVENANCE_KEYS = {"rule", "command", "git_commit", "git_dirty", "config_digest", "inputs", "packages",
                   "started", "finished", "host"}


def test_figure_is_a_pdf(tiny_run):
    fig = tiny_run / "figures/r2_vs_snr.pdf"
    assert fig.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(fig), str(tiny_run / "fig")], check=True)
        assert (tiny_run / "fig.png").stat().st_size > 5000


def test_results_have_provenance_and_sane_metrics(tiny_run):
    for name in ("ridge", "lightgbm", "template"):
        res = json.loads((tiny_run / f"results/track_f/{name}.json").read_text())
        assert PROVENANCE_KEYS <= set(res["provenance"])
        prov = res["provenance"]
        assert prov["rule"] == "evaluate_estimator"
        assert prov["command"].startswith("python -m pfslogg evaluate")
        assert set(prov["inputs"]) == {f"models/{name}.pkl", "data/datasets/test.h5"}
        m = res["metrics"]
        assert m["n_test"] == 300
        assert np.isfinite(m["overall"]["r2"]) and m["overall"]["r2"] <= 1
        lo, hi = m["overall"]["r2_ci"]
        assert lo <= m["overall"]["r2"] <= hi
        assert m["var_prior"] == pytest.approx(4 / 3)
    ridge = json.loads((tiny_run / "results/track_f/ridge.json").read_text())["metrics"]
    assert ridge["overall"]["r2"] > 0.1, "Ridge should learn log g on the embedded model"


def test_ceiling_rises_with_snr(tiny_run):
    fisher = json.loads((tiny_run / "results/track_c/fisher.json").read_text())["metrics"]
    med = [b["r2max_median"] for b in fisher["snr_bins"]]
    assert len(med) >= 2 and all(b >= a for a, b in zip(med, med[1:]))
    per = pd.read_csv(tiny_run / "results/track_c/fisher_per_spectrum.csv")
    assert len(per) == 300 and (per["crlb"] > 0).all()


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
