"""PFS red-arm LSF and pixel grid: line width after convolution, flux conservation, convolve_grid."""

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg.errors import InputError
from pfslogg.data.gridio import read_grid
from pfslogg.data.instrument import Instrument, convolve_grid, log_step, pixel_wave

from conftest import fake_spectrum, make_fake_grid

R_RAW = 20000.0
SAMPLES_PER_RES = 4.0  # raw samples per resolution element of the raw grid


def raw_wave(lo=7000.0, hi=9000.0, r=R_RAW):
    """Log-uniform raw wavelengths (A) at resolving power ``r``."""
    dlnl = 1.0 / (r * SAMPLES_PER_RES)
    return np.exp(np.arange(np.log(lo), np.log(hi), dlnl))


def absorption_line(wave, centre, fwhm, depth=0.5):
    return 1.0 - depth * np.exp(-0.5 * ((wave - centre) / (fwhm / 2.3548200450309493)) ** 2)


def test_pixel_wave_is_pfs_red_arm():
    w = pixel_wave()
    assert w.shape == (4096,)
    assert w[0] == 7100.0 and w[-1] == 8850.0
    np.testing.assert_allclose(np.diff(w), 1750.0 / 4095, rtol=1e-9)   # 0.4274 A / pixel
    assert np.diff(w)[0] == pytest.approx(0.4274, abs=1e-4)


@pytest.mark.parametrize("bad", [dict(wave_range=(8850.0, 7100.0)), dict(n_pixels=1)])
def test_pixel_wave_rejects_bad_settings(bad):
    with pytest.raises(InputError, match="instrument"):
        pixel_wave(**bad)


@pytest.mark.parametrize("centre", [7300.0, 8000.0, 8700.0])
def test_narrow_line_gets_fwhm_lambda_over_r(centre):
    """A line at the raw grid's own resolution (FWHM = lambda/20000) comes out with FWHM = lambda/5000:
    the difference kernel adds in quadrature to exactly R = 5000."""
    w = raw_wave()
    flux = absorption_line(w, centre, centre / R_RAW)
    inst = Instrument(w, R_RAW, 5000.0)
    out = inst(flux)
    d = 1.0 - out
    near = np.abs(inst.wave - centre) < 10.0
    # second moment of the absorption profile on the pixel grid -> Gaussian FWHM
    mu = np.sum(inst.wave[near] * d[near]) / d[near].sum()
    var = np.sum((inst.wave[near] - mu) ** 2 * d[near]) / d[near].sum()
    fwhm = 2.3548200450309493 * np.sqrt(var)
    assert mu == pytest.approx(centre, abs=0.05)
    assert fwhm == pytest.approx(centre / 5000.0, rel=0.03)  # the model gives 0.2 %


def test_delta_line_width_is_at_most_lambda_over_r():
    """A line far narrower than the raw resolution: FWHM slightly below lambda/5000 (the difference kernel)."""
    w = raw_wave()
    centre = 8000.0
    flux = np.ones_like(w)
    flux[np.argmin(np.abs(w - centre))] = 0.0  # one raw sample: a delta function
    inst = Instrument(w, R_RAW, 5000.0)
    d = 1.0 - inst(flux)
    near = np.abs(inst.wave - centre) < 10.0
    mu = np.sum(inst.wave[near] * d[near]) / d[near].sum()
    fwhm = 2.3548 * np.sqrt(np.sum((inst.wave[near] - mu) ** 2 * d[near]) / d[near].sum())
    expected = centre * np.sqrt(1 / 5000.0**2 - 1 / R_RAW**2)
    assert fwhm == pytest.approx(expected, rel=0.10)
    assert fwhm < centre / 5000.0 * 1.02


def test_convolution_conserves_equivalent_width():
    w = raw_wave()
    centres = [7400.0, 7855.5, 8200.0, 8542.0]
    flux = np.prod([absorption_line(w, c, c / R_RAW, depth=0.8) for c in centres], axis=0)
    inst = Instrument(w, R_RAW, 5000.0)
    out = inst(flux)
    for c in centres:
        sel_raw = np.abs(w - c) < 8.0
        sel_pix = np.abs(inst.wave - c) < 8.0
        ew_raw = np.trapezoid(1.0 - flux[sel_raw], w[sel_raw])
        ew_pix = np.trapezoid(1.0 - out[sel_pix], inst.wave[sel_pix])
        assert ew_pix == pytest.approx(ew_raw, rel=0.01)
    # the line got shallower and wider, not weaker
    assert out.min() > flux.min()


def test_continuum_is_unchanged():
    w = raw_wave()
    cont = (w / 8000.0) ** -2.5
    inst = Instrument(w, R_RAW, 5000.0)
    np.testing.assert_allclose(inst(cont), (inst.wave / 8000.0) ** -2.5, rtol=1e-5)


def test_instrument_batches_over_leading_axes():
    w = raw_wave()
    inst = Instrument(w, R_RAW, 5000.0)
    a = absorption_line(w, 7800.0, 0.5)
    b = absorption_line(w, 8100.0, 0.8)
    out = inst(np.stack([[a, b], [b, a]]))
    assert out.shape == (2, 2, 4096)
    np.testing.assert_allclose(out[0, 1], inst(b))
    np.testing.assert_allclose(out[1, 1], inst(a))


def test_non_log_uniform_raw_wave_rejected():
    w = np.linspace(7000.0, 9000.0, 40000)  # linear: d ln lambda varies by 25 %
    with pytest.raises(InputError, match="log-uniform"):
        Instrument(w, R_RAW, 5000.0)


def test_non_increasing_raw_wave_rejected():
    with pytest.raises(InputError, match="increasing"):
        log_step(raw_wave()[::-1])


@pytest.mark.parametrize("r_raw", [5000.0, 4000.0])
def test_raw_resolution_not_above_instrument_rejected(r_raw):
    with pytest.raises(InputError, match="resolution"):
        Instrument(raw_wave(), r_raw, 5000.0)


def test_raw_grid_not_covering_the_arm_rejected():
    with pytest.raises(InputError, match="cover"):
        Instrument(raw_wave(7200.0, 9000.0), R_RAW, 5000.0)


# -- convolve_grid --------------------------------------------------------------------------------
RAW_AXES = {"T_eff": [4000.0, 4500.0], "log_g": [2.0, 2.5, 3.0], "M_H": [0.0, 0.25], "a_M": [0.0]}


@pytest.fixture(scope="module")
def raw_grid(tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "raw.h5"
    return make_fake_grid(path, axes=RAW_AXES, wave=raw_wave(), kind="raw", resolution=R_RAW,
                          holes=[(1, 2, 1, 0)], source="synth")


def test_convolve_grid_keeps_axes_and_mask(raw_grid, tmp_path):
    out = tmp_path / "inst.h5"
    convolve_grid(raw_grid, out)
    raw, inst = read_grid(raw_grid), read_grid(out)
    for p in PARAMS:
        np.testing.assert_array_equal(inst.axes[p], raw.axes[p])
    np.testing.assert_array_equal(inst.mask, raw.mask)
    assert not inst.mask[1, 2, 1, 0] and inst.mask.sum() == raw.mask.sum() == 11
    assert inst.attrs["kind"] == "instrument"
    assert float(inst.attrs["resolution"]) == 5000.0
    assert float(inst.attrs["raw_resolution"]) == R_RAW
    assert inst.attrs["source"] == "synth"
    np.testing.assert_array_equal(inst.wave, pixel_wave())
    assert inst.flux.shape == (2, 3, 2, 1, 4096) and inst.cont.shape == inst.flux.shape


def test_convolve_grid_node_equals_instrument_applied_to_node(raw_grid, tmp_path):
    out = tmp_path / "inst.h5"
    convolve_grid(raw_grid, out)
    raw, inst = read_grid(raw_grid), read_grid(out)
    op = Instrument(raw.wave, R_RAW, 5000.0)
    idx = (0, 1, 1, 0)
    np.testing.assert_allclose(inst.flux[idx], op(raw.flux[idx].astype(float)), rtol=1e-5)
    np.testing.assert_allclose(inst.cont[idx], op(raw.cont[idx].astype(float)), rtol=1e-5)
    # the convolved fake star is close to the same star evaluated on the pixels (lines are >> LSF)
    teff, logg, mh, am = (RAW_AXES[p][i] for p, i in zip(PARAMS, idx))
    flux, _ = fake_spectrum(pixel_wave(), teff, logg, mh, am)
    assert np.max(np.abs(inst.flux[idx] - flux)) < 0.05 * flux.max()


def test_convolve_grid_low_raw_resolution_leaves_no_output(tmp_path):
    raw = make_fake_grid(tmp_path / "raw.h5", axes=RAW_AXES, wave=raw_wave(), kind="raw", resolution=4000.0)
    out = tmp_path / "inst.h5"
    with pytest.raises(InputError, match="resolution"):
        convolve_grid(raw, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5"]


def test_convolve_grid_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.h5"):
        convolve_grid(tmp_path / "nope.h5", tmp_path / "inst.h5")
    assert list(tmp_path.iterdir()) == []
