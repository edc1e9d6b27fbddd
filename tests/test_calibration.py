"""The embedded problem is as hard as the real one: its median marginal Fisher ceiling at the
original study's SNR points stays within +-0.1 of what that study found on BOSZ spectra."""

import pytest

from pfslogg.ceilings.calibration import ceiling_curve
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
        assert abs(ours - original) <= 0.1, f"SNR {snr}: median R2_max {ours:.3f} vs original {original}"
    assert all(b > a for a, b in zip(medians, medians[1:])), "ceiling must rise with SNR"
