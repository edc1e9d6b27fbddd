"""The embedded problem is as hard as the real one: its median marginal Fisher ceiling at the
original study's SNR points stays within +-0.1 of what that study found on BOSZ spectra."""

import pytest

from pfslogg.ceilings.calibration import calibration_points, ceiling_curve, check_calibration
from pfslogg.errors import InputError
from pfslogg.config import load_config
from pfslogg.data.gridio import read_grid
from pfslogg.data.instrument import convolve_grid
from pfslogg.data.synth import SynthModel, build_synth_grid

from workflow_util import ROOT


@pytest.fixture(scope="module")
def default_config():
    return load_config(ROOT / "config/config.yaml")


@pytest.fixture(scope="module")
def instrument_grid(tmp_path_factory, default_config):
    cfg = default_config
    d = tmp_path_factory.mktemp("calib")
    build_synth_grid(d / "raw.h5", cfg["params"], resolution=cfg["grid"]["resolution"],
                     wave_range=tuple(cfg["grid"]["wave_range"]), margin=cfg["grid"]["margin_nodes"],
                     model=SynthModel(gravity_coupling=cfg["grid"]["gravity_coupling"]))
    i = cfg["instrument"]
    convolve_grid(d / "raw.h5", d / "inst.h5", resolution=i["resolution"], wave_range=tuple(i["wave_range"]),
                  n_pixels=i["n_pixels"])
    return read_grid(d / "inst.h5")


def test_default_ranges_are_the_calibration_ranges(default_config):
    p = default_config["params"]
    assert p["T_eff"] == [3750.0, 6000.0] and p["log_g"] == [1.0, 5.0] and p["M_H"] == [-0.25, 0.75]


def test_fisher_ceiling_within_band_of_original(default_config, instrument_grid):
    cfg = default_config
    curve = ceiling_curve(instrument_grid, cfg["params"], cfg["noise"], cfg["ceiling"]["snr"], n=300, seed=11)
    medians = [m for m, _, _ in curve]
    for snr, ours, original in zip(cfg["ceiling"]["snr"], medians, cfg["ceiling"]["original"]):
        assert abs(ours - original) <= cfg["ceiling"]["tolerance"], \
            f"SNR {snr}: median R2_max {ours:.3f} vs original {original}"
    assert all(b > a for a, b in zip(medians, medians[1:])), "ceiling must rise with SNR"


def test_the_rule_refuses_a_calibration_outside_its_tolerance(default_config, instrument_grid):
    """calibrate_ceiling's check: the default model passes with its tolerance; the same curve
    against a tighter tolerance, or an original moved away, fails naming ceiling.tolerance and
    the SNR point; tolerance null only reports."""
    cfg = dict(default_config["ceiling"], n_spectra=100)
    m = calibration_points(instrument_grid, default_config["params"], default_config["noise"], cfg, seed=3)
    assert m["within_tolerance"] is True and m["max_abs_diff"] <= cfg["tolerance"]
    check_calibration(m)
    moved = calibration_points(instrument_grid, default_config["params"], default_config["noise"],
                               dict(cfg, original=[0.1, 0.740, 0.891, 0.9906]), seed=3)
    assert moved["within_tolerance"] is False and moved["max_abs_diff_snr"] == cfg["snr"][0]
    with pytest.raises(InputError, match=r"ceiling\.tolerance: .*SNR 3: .* vs 0\.1\b.*gravity_coupling"):
        check_calibration(moved)
    report = calibration_points(instrument_grid, default_config["params"], default_config["noise"],
                                dict(cfg, original=[0.1, 0.740, 0.891, 0.9906], tolerance=None), seed=3)
    assert report["within_tolerance"] is None
    check_calibration(report)
