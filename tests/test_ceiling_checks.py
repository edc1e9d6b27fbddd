"""Track C's checks and curves: the SNR sweep (3D/4D CRLB, Schur decay, Bayes), the CRLB validation
(node jumps, step sensitivity, ML fits) and the efficiency check that no model beats the Bayes ceiling."""

import copy

import numpy as np
import pytest

from pfslogg.ceilings.efficiency import efficiency
from pfslogg.ceilings.sweep import parting_gap, parting_snr, regular_points, snr_sweep
from pfslogg.ceilings.validation import crlb_validation, interpolation_error
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.noise import ExposureModel
from pfslogg.errors import InputError

from conftest import TINY_AXES, TINY_RANGES, make_fake_grid

BAYES = {"spacing": {"T_eff": 250.0, "log_g": 0.25, "M_H": 0.25, "a_M": 0.05}, "chunk": 512, "dtype": "float32"}
EVALUATION = {"bootstrap": 100, "confidence": 0.95}


@pytest.fixture(scope="module")
def grid4(tmp_path_factory):
    """The coarse grid's stars with three a_M nodes (a 4D bound needs a_M to vary on the grid)."""
    axes = {**TINY_AXES, "a_M": np.array([-0.25, 0.0, 0.25])}
    return read_grid(make_fake_grid(tmp_path_factory.mktemp("g4") / "g4.h5", axes=axes, n_pixels=512))


@pytest.fixture(scope="module")
def sweep(grid4):
    interp = GridInterpolator(grid4)
    return snr_sweep(interp, ExposureModel(interp.wave), TINY_RANGES, [19.0, 21.0, 23.0], 3, 0.8, 4 / 3, BAYES,
                     EVALUATION, seed=1)


def test_regular_points_fill_the_varied_axes_only():
    pts = regular_points(TINY_RANGES, 3)
    assert pts.shape == (27, 4)
    assert np.all(pts[:, 3] == 0.0)
    assert sorted(set(pts[:, 1])) == pytest.approx([1 + 4 / 6, 3.0, 5 - 4 / 6])


def test_fainter_stars_have_lower_ceilings_and_more_nuisances_cost_information(sweep):
    rows = sweep["rows"]
    assert sweep["four_d"] and sweep["n_points"] == 27
    snr = [r["snr_median"] for r in rows]
    assert snr[0] > snr[1] > snr[2]
    for key in ("crlb_3d", "crlb_4d"):
        med = [r[key]["r2max_median"] for r in rows]
        assert med[0] >= med[1] >= med[2]
        assert all(r[key]["sigma_min_median"] > 0 for r in rows)
    for r in rows:
        # marginalising over one more parameter can only lose information
        assert r["crlb_4d"]["r2max_median"] <= r["crlb_3d"]["r2max_median"] + 1e-12
        assert r["crlb_4d"]["sigma_min_median"] >= r["crlb_3d"]["sigma_min_median"] - 1e-12
        assert 0 < r["crlb_4d"]["schur_decay_median"] <= r["crlb_3d"]["schur_decay_median"] <= 1
        assert r["bayes"]["r2_ci"][0] <= r["bayes"]["r2"] <= r["bayes"]["r2_ci"][1]
    assert rows[0]["bayes"]["r2"] > rows[-1]["bayes"]["r2"]


def test_parting_snr_is_the_highest_snr_where_the_crlb_falls_below_bayes():
    def row(snr, crlb, lo):
        return {"snr_median": snr, "crlb_3d": {"r2max_mean_crlb": crlb}, "bayes": {"r2_ci": [lo, lo + 0.05]}}

    rows = [row(30, 0.99, 0.97), row(10, 0.90, 0.88), row(5, 0.5, 0.7), row(3, 0.1, 0.5)]
    assert parting_snr(rows) == 5
    assert parting_snr(rows[:2]) is None
    assert parting_gap(rows) == pytest.approx(0.2)   # at SNR 5: the interval starts at 0.7, the bound 0.5
    assert parting_gap(rows[:2]) is None


def test_sweep_refuses_unsorted_magnitudes(grid4):
    interp = GridInterpolator(grid4)
    with pytest.raises(InputError, match="ceiling.sweep.mags"):
        snr_sweep(interp, ExposureModel(interp.wave), TINY_RANGES, [21.0, 19.0], 3, 0.8, 4 / 3, BAYES, EVALUATION)


VALIDATION = {"n_points": 12, "fractions": [1e-3, 1.0], "ml_snr": 50.0, "ml_draws": 60, "ml_logg": [2.25, 3.04],
              "profile": {"T_eff": 4875.0, "M_H": 0.125, "a_M": 0.0, "log_g": [2.0, 4.0], "n": 9, "snr": 10.0}}


def test_crlb_validation_shows_the_cubic_bound_continuous_and_the_linear_one_jumping(coarse_instrument_grid):
    grid = read_grid(coarse_instrument_grid)
    m, d = crlb_validation(grid, TINY_RANGES, ExposureModel(grid.wave), VALIDATION, seed=3)
    jumps = m["node_jumps"]
    for p in ("log_g", "T_eff", "M_H"):
        assert jumps["cubic"][p]["jump_max"] < 1 + 1e-5
        assert jumps["linear"][p]["jump_max"] > jumps["cubic"][p]["jump_max"]
    small = m["step_sensitivity"]["cubic"]["random"][0]
    assert small["fraction"] == 1e-3 and small["ratio_median"] == pytest.approx(1, abs=1e-4)
    assert len(d["profile"]["cubic"]) == len(d["profile"]["linear"]) == 9
    assert m["profile"]["nodes"] == [2.0, 2.5, 3.0, 3.5, 4.0]
    rows = m["ml"]["rows"]
    assert [(r["method"], r["position"]) for r in rows] == [("cubic", "centre"), ("cubic", "near node"),
                                                           ("linear", "centre"), ("linear", "near node")]
    assert all(r["ratio_ci"][0] < r["ratio"] < r["ratio_ci"][1] for r in rows)


def test_held_out_nodes_are_interpolated_to_within_a_fraction_of_the_noise(coarse_instrument_grid):
    """Every other node left out: on log g (curved lines) the cubic is closer than the linear
    interpolant. (Not a law: on a wide-stepped axis a cubic can overshoot -- on the test grid's
    T_eff it does; the default grid's numbers are in results/track_c/crlb_validation.json.)"""
    err = interpolation_error(read_grid(coarse_instrument_grid))
    assert set(err) == {"T_eff", "log_g", "M_H"}
    assert err["log_g"]["cubic"]["rms_median"] < err["log_g"]["linear"]["rms_median"]
    for p, e in err.items():
        for method in ("cubic", "linear"):
            assert e[method]["n"] > 0 and 0 < e[method]["rms_median"] < 0.05, (p, method)


# -- efficiency and the Bayes check ---------------------------------------------------------------
def _ceilings():
    bins = [{"lo": 2.0, "hi": 5.0, "snr_median": 3.0, "r2": 0.6, "r2_ci": [0.55, 0.65]},
            {"lo": 5.0, "hi": 35.0, "snr_median": 9.0, "r2": 0.9, "r2_ci": [0.88, 0.92]}]
    bayes = {"noise_level": 1.0, "snr_bins": bins, "overall": {"r2": 0.8, "r2_ci": [0.78, 0.82]}}
    fisher = {"snr_bins": [{"lo": 2.0, "r2max_mean_crlb": 0.3, "r2max_median": 0.5},
                           {"lo": 5.0, "r2max_mean_crlb": 0.85, "r2max_median": 0.95}],
              "overall": {"r2max_mean_crlb": 0.6, "r2max_median": 0.9}}
    return bayes, fisher


def _cell(name, r2s, ci=0.02, noise=1.0):
    bins = [{"lo": lo, "r2": r, "r2_ci": [r - ci, r + ci]} for lo, r in zip((2.0, 5.0), r2s)]
    overall = float(np.mean(r2s))
    return {"metrics": {"estimator": name, "noise_level": noise, "snr_bins": bins,
                        "overall": {"r2": overall, "r2_ci": [overall - ci, overall + ci]}}}


def test_efficiency_against_both_ceilings():
    bayes, fisher = _ceilings()
    m = efficiency(bayes, fisher, {"ridge": [_cell("ridge", [0.3, 0.8]), _cell("ridge", [0.5, 0.8])]})
    low = m["snr_bins"][0]["models"]["ridge"]
    assert low["r2"] == pytest.approx(0.4) and low["n_seeds"] == 2
    assert low["eta_bayes"] == pytest.approx(0.4 / 0.6)
    assert low["eta_crlb"] == pytest.approx(0.4 / 0.3)     # above 1: the CRLB binds unbiased estimators only
    assert m["n_violations"] == 0 and m["best"] == "ridge"


def test_a_model_above_the_bayes_interval_is_a_violation():
    bayes, fisher = _ceilings()
    m = efficiency(bayes, fisher, {"leaky": [_cell("leaky", [0.75, 0.9])], "ok": [_cell("ok", [0.62, 0.9])]})
    assert m["n_violations"] == 1
    v = m["violations"][0]
    assert v["estimator"] == "leaky" and v["lo"] == 2.0


def test_efficiency_refuses_cells_at_another_noise_level():
    bayes, fisher = _ceilings()
    with pytest.raises(InputError, match="noise levels"):
        efficiency(bayes, fisher, {"ridge": [_cell("ridge", [0.3, 0.8], noise=2.0)]})
    with pytest.raises(InputError, match="no model cells"):
        efficiency(bayes, fisher, {})


def test_missing_bins_are_left_out_not_invented():
    bayes, fisher = _ceilings()
    cell = _cell("ridge", [0.3, 0.8])
    cell = copy.deepcopy(cell)
    cell["metrics"]["snr_bins"] = cell["metrics"]["snr_bins"][1:]
    m = efficiency(bayes, fisher, {"ridge": [cell]})
    assert "ridge" not in m["snr_bins"][0]["models"] and "ridge" in m["snr_bins"][1]["models"]


def test_the_ceiling_target_asks_for_the_gap_and_the_interval_in_the_bins_it_names():
    """Bins by median SNR (3 and 9 here): within 0.05 of R2_Bayes from SNR 3 (both bins) and inside the ceiling's
    interval from SNR 5 (the second bin, lower edge 0.88). A model 0.04 below in the first bin and 0.01 below in the
    second meets both; one 0.02 below the second's edge meets the gap only; a grid fit that meets both is no learned
    model and so is neither in met_by nor the closest; a target no bin reaches is refused."""
    bayes, fisher = _ceilings()
    cells = {"near": [_cell("near", [0.56, 0.89])], "short": [_cell("short", [0.58, 0.86])],
             "far": [_cell("far", [0.40, 0.70])], "grid_fit": [_cell("grid_fit", [0.59, 0.9])]}
    target = {"gap": 0.05, "gap_from_snr": 3.0, "ci_from_snr": 5.0}
    m = efficiency(bayes, fisher, cells, target=target, learned=["near", "short", "far"])["ceiling_target"]
    assert (m["gap_bins"], m["ci_bins"], m["gap_bins_from"], m["ci_bins_from"]) == (2, 1, 2.0, 5.0)
    near, short, far = (m["models"][e] for e in ("near", "short", "far"))
    assert near["met"] and near["max_gap"] == pytest.approx(0.04) and near["ci_shortfall_max"] == pytest.approx(-0.01)
    assert not short["met"] and short["gap_bins_met"] == 2 and short["ci_bins_met"] == 0
    assert short["ci_shortfall_max"] == pytest.approx(0.02)
    assert far["gap_bins_met"] == 0 and far["max_gap"] == pytest.approx(0.2)
    assert m["models"]["grid_fit"]["met"] and m["met_by"] == ["near"] and m["n_met"] == 1
    assert m["closest"] == "near" and m["closest_max_gap"] == pytest.approx(0.04) and m["closest_met"]
    assert "ceiling_target" not in efficiency(bayes, fisher, cells)
    with pytest.raises(InputError, match=r"ceiling.target: no SNR bin with a median SNR >= 20.0"):
        efficiency(bayes, fisher, cells, target={**target, "ci_from_snr": 20.0})
