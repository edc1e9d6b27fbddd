"""Tests of the embedded forward model (pfslogg.data.synth): physics signs, the two implementations,
the Faddeeva function, and the grid file."""

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from scipy.special import wofz

from pfslogg import PARAMS
from pfslogg.errors import InputError
from pfslogg.data.gridio import read_grid
from pfslogg.data.synth import (
    SYNTH_AXES,
    SynthModel,
    build_synth_grid,
    equivalent_width,
    faddeeva_torch,
    line_table,
    raw_wave,
    synth_batch,
    synth_spectrum,
    synth_spectrum_torch,
    voigt_torch,
)

CAT = (8498.02, 8542.09, 8662.14)


@pytest.fixture(scope="module")
def wave():
    return raw_wave()


def spectrum(wave, teff, logg, mh=0.0, alpha=0.0, **model):
    return synth_spectrum(wave, teff, logg, mh, alpha, model=dataclasses.replace(SynthModel(), **model))


def ew_cat(wave, flux, cont):
    return sum(equivalent_width(wave, flux, cont, c, 15.0) for c in CAT)


def ew_nai(wave, flux, cont):
    return equivalent_width(wave, flux, cont, 8183.26, 3.0) + equivalent_width(wave, flux, cont, 8194.82, 3.0)


def ew_oi(wave, flux, cont):
    return equivalent_width(wave, flux, cont, 7773.65, 2.6)  # 7771.94-7775.39 plus the line widths


# --- wavelength grid ------------------------------------------------------------------------------
def test_raw_wave_is_log_uniform_with_two_samples_per_resolution_element():
    for resolution in (20000, 50000):
        w = raw_wave(resolution, (7000.0, 9000.0))
        ratio = w[1:] / w[:-1]
        assert np.allclose(ratio, 1.0 + 1.0 / (2 * resolution), rtol=0, atol=1e-12)
        assert w[0] == 7000.0 and w[-1] <= 9000.0 < w[-1] * (1.0 + 1.0 / (2 * resolution))
    assert len(raw_wave()) == 10053


# --- physics signs --------------------------------------------------------------------------------
def test_cat_weakens_with_gravity_in_cool_giants(wave):
    ew = [ew_cat(wave, *spectrum(wave, 4250, g)) for g in (1.0, 2.0, 3.0)]
    assert ew[0] > ew[1] > ew[2]
    assert ew[0] > 1.2 * ew[2]


def test_cat_strengthens_with_metallicity(wave):
    ew = [ew_cat(wave, *spectrum(wave, 4250, 1.5, mh)) for mh in (-2.0, -1.0, 0.0, 0.5)]
    assert np.all(np.diff(ew) > 0)
    assert ew[-1] > 2.0 * ew[0]


def test_cat_solar_strength_is_realistic(wave):
    # Sun: 1.2 + 3.7 + 2.6 A in the lines themselves, plus blends in the +-15 A windows
    assert 7.0 < ew_cat(wave, *spectrum(wave, 5777, 4.44)) < 12.0


def test_nai_is_stronger_in_cool_dwarfs_than_giants(wave):
    giant = ew_nai(wave, *spectrum(wave, 4500, 1.5))
    for logg in (4.5, 5.0):
        assert ew_nai(wave, *spectrum(wave, 4500, logg)) > 1.3 * giant


def test_alkali_and_mg_wings_grow_with_gravity_in_dwarfs(wave):
    lo, hi = spectrum(wave, 4500, 4.0), spectrum(wave, 4500, 5.0)
    for centre, half in ((7698.96, 3.0), (8806.76, 3.0)):  # K I, Mg I
        assert equivalent_width(wave, *hi, centre, half) > equivalent_width(wave, *lo, centre, half)


def test_oi_triplet_luminosity_effect_and_fading_in_cool_stars(wave):
    giant, dwarf = ew_oi(wave, *spectrum(wave, 6000, 1.5)), ew_oi(wave, *spectrum(wave, 6000, 4.5))
    assert giant > 2.0 * dwarf > 0.2
    for logg in (1.5, 4.5):
        assert ew_oi(wave, *spectrum(wave, 4000, logg)) < 0.1 * giant


def test_tio_bands_only_in_the_coolest_stars(wave):
    band, blue = (wave > 7060) & (wave < 7150), (wave > 7000) & (wave < 7050)
    no_tio = {"tio_scale": 0.0}
    for teff, logg, present in ((3500, 4.5, True), (3500, 1.0, True), (4500, 4.5, False), (4500, 1.0, False)):
        flux, cont = spectrum(wave, teff, logg)
        flux0, _ = spectrum(wave, teff, logg, **no_tio)
        depression = np.mean(1.0 - flux[band] / flux0[band])
        head_ratio = np.mean((flux / cont)[band]) / np.mean((flux / cont)[blue])
        if present:
            assert depression > 0.03 and head_ratio < 0.95
        else:
            assert depression < 1e-3 and head_ratio > 0.99
    # strength grows steeply with decreasing Teff and with [M/H]
    dep = [np.mean(1.0 - spectrum(wave, t, 4.5, mh)[0][band] / spectrum(wave, t, 4.5, mh, **no_tio)[0][band])
           for t, mh in ((3500, 0.0), (3750, 0.0), (4000, 0.0), (3750, 0.5))]
    assert dep[0] > 3 * dep[1] > 9 * dep[2]
    assert dep[3] > 1.5 * dep[1]


def test_paschen_lines_only_in_the_hottest_stars(wave):
    near_p12 = (wave > 8739) & (wave < 8762)  # P12 8750.5 A: the median ignores narrow metal lines

    def depression(teff, logg):
        flux, cont = spectrum(wave, teff, logg)
        return 1.0 - np.median((flux / cont)[near_p12])

    assert depression(7000, 4.0) > 0.01 and depression(7000, 2.0) > 0.01
    assert depression(5000, 4.5) < 1e-3 and depression(5000, 1.0) < 2e-3


def test_weak_lines_respond_to_teff_and_metallicity(wave):
    region = (wave > 7300) & (wave < 7550)  # only weak metal lines here

    def absorption(teff, mh):
        flux, cont = spectrum(wave, teff, 2.5, mh)
        return np.mean(1.0 - (flux / cont)[region])

    ref = absorption(5000, 0.0)
    assert absorption(5250, 0.0) < 0.95 * ref < 0.95**2 * absorption(4750, 0.0)
    assert absorption(5000, -0.25) < 0.95 * ref < 0.95**2 * absorption(5000, 0.25)


def test_saturated_lines_keep_their_equivalent_width_across_resolution():
    # an unresolved saturated line has the equivalent width of its intrinsic profile, whatever R
    for dilution, tolerance in ((1.0, 0.08), (0.0, None)):
        model = dataclasses.replace(SynthModel(), saturation_dilution=dilution)
        ew = []
        for resolution in (20000, 50000):
            w = raw_wave(resolution)
            flux, cont = synth_spectrum(w, 5777, 4.44, 0.0, 0.0, resolution=resolution, model=model)
            ew.append(equivalent_width(w, flux, cont, 8688.62, 2.0))  # Fe I 8689
        if tolerance is None:
            assert ew[0] > 1.4 * ew[1]  # the plain instrument-broadened form does not
        else:
            assert abs(ew[0] / ew[1] - 1.0) < tolerance


def test_curve_of_growth_linear_for_weak_lines_and_square_root_for_cat(wave):
    lines = line_table()
    # an isolated weak line: no other line centre within 3 A
    w0 = lines["wave0"][~lines["named"]]
    others = np.sort(lines["wave0"])
    isolated = [x for x in w0 if 7100 < x < 8400 and np.sum(np.abs(others - x) < 3.0) == 1]
    weak = []
    for kf in (0.005, 0.02):  # weak-line limit
        flux, cont = spectrum(wave, 5777, 4.44, line_formation_factor=kf)
        weak.append([equivalent_width(wave, flux, cont, x, 1.5) for x in isolated[:5]])
    cat, cat4 = (equivalent_width(wave, *spectrum(wave, 5777, 4.44, line_formation_factor=kf), 8542.09, 12.0)
                 for kf in (0.2, 0.8))
    ratio = np.array(weak[1]) / np.array(weak[0])
    assert len(isolated) >= 5
    assert np.all(np.abs(ratio - 4.0) < 0.2)  # weak lines: W proportional to S
    assert 1.7 < cat4 / cat < 2.4  # damping wings: W proportional to sqrt(S)


def test_spectra_are_finite_and_normalised_flux_in_range_at_the_corners(wave):
    corners = np.array(list(itertools.product(*[(SYNTH_AXES[p][0], SYNTH_AXES[p][1]) for p in PARAMS])))
    for model in (SynthModel(), SynthModel(gravity_coupling=2.0)):
        flux, cont = synth_batch(wave, corners, model=model)
        assert flux.shape == cont.shape == (16, len(wave))
        assert np.all(np.isfinite(flux)) and np.all(np.isfinite(cont)) and np.all(cont > 0)
        norm = flux / cont
        assert norm.min() > 0.0 and norm.max() <= 1.1
        assert norm.min() >= 1.0 - model.max_depth - 1e-12


def test_continuum_is_planck_like_and_depends_on_teff_only(wave):
    _, c1 = spectrum(wave, 5000, 1.0, -2.0)
    _, c2 = spectrum(wave, 5000, 5.0, 0.5, 0.5)
    assert np.array_equal(c1, c2)
    _, hot = spectrum(wave, 7000, 4.0)
    _, cool = spectrum(wave, 3500, 4.0)
    assert hot[0] / hot[-1] > 1.5 > cool[0] / cool[-1]  # the Planck peak moves across the window
    assert np.all(hot > cool)


def test_gravity_coupling_scales_the_log_g_response(wave):
    # at the pivot the spectrum does not depend on the coupling; the response grows with it
    base = spectrum(wave, 4500, 3.0)[0]
    assert np.allclose(spectrum(wave, 4500, 3.0, gravity_coupling=2.0)[0], base, rtol=1e-12)
    for teff, logg in ((4500, 3.0), (4500, 2.0), (5500, 4.0)):
        size = []
        for gamma in (0.5, 1.0, 2.0):
            lo = spectrum(wave, teff, logg - 0.05, gravity_coupling=gamma)
            hi = spectrum(wave, teff, logg + 0.05, gravity_coupling=gamma)
            size.append(np.linalg.norm(hi[0] / hi[1] - lo[0] / lo[1]))
        assert size[0] < size[1] < size[2]
    # Teff response untouched by the coupling at the pivot
    d1 = spectrum(wave, 4600, 3.0)[0] - base
    d2 = spectrum(wave, 4600, 3.0, gravity_coupling=0.5)[0] - spectrum(wave, 4500, 3.0, gravity_coupling=0.5)[0]
    assert np.allclose(d1, d2, rtol=1e-10, atol=0)


# --- line list ------------------------------------------------------------------------------------
def test_line_list_has_the_real_strong_lines_and_a_deterministic_pseudo_list():
    a, b = line_table(), line_table()
    assert np.array_equal(a["wave0"], b["wave0"]) and np.array_equal(a["loggf"], b["loggf"])
    for w in CAT + (8183.26, 8194.82, 7664.90, 7698.96, 8806.76, 7771.94, 7774.17, 7775.39, 8750.47):
        assert np.any(np.abs(a["wave0"] - w) < 0.01)
    assert 250 <= len(a["wave0"]) <= 400
    pseudo = ~a["named"]
    assert a["named"].sum() == 32 and a["chi"][pseudo].min() >= 0.0 and a["loggf"][pseudo].max() <= 1.0


# --- the two implementations ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_case(wave):
    params = np.array([[4250.0, 1.5, 0.0, 0.1], [3600.0, 4.7, 0.5, 0.2], [6900.0, 2.2, -2.0, 0.4]])
    pt = torch.tensor(params, dtype=torch.float64, requires_grad=True)
    flux_t, cont_t = synth_spectrum_torch(torch.tensor(wave), pt)
    return params, pt, flux_t, cont_t


def test_torch_matches_numpy(wave, torch_case):
    params, _, flux_t, cont_t = torch_case
    flux, cont = synth_batch(wave, params)
    assert flux_t.shape == (3, len(wave))
    assert np.max(np.abs(flux_t.detach().numpy() / flux - 1.0)) < 1e-6
    assert np.max(np.abs(cont_t.detach().numpy() / cont - 1.0)) < 1e-10
    # batch shape (..., 4) is kept
    f2, _ = synth_spectrum_torch(torch.tensor(wave), torch.tensor(params[None, :2]))
    assert f2.shape == (1, 2, len(wave))
    assert np.allclose(f2[0].numpy(), flux[:2], rtol=1e-6)


def test_autograd_matches_finite_differences(wave, torch_case):
    params, pt, flux_t, cont_t = torch_case
    rng = np.random.default_rng(7)
    weights = rng.normal(size=flux_t.shape)
    (torch.sum((flux_t / cont_t) * torch.tensor(weights))).backward()
    grad = pt.grad.numpy()
    steps = np.array([0.5, 1e-3, 1e-3, 1e-3])
    for k in range(4):
        up, down = params.copy(), params.copy()
        up[:, k] += steps[k]
        down[:, k] -= steps[k]
        fu, cu = synth_batch(wave, up)
        fd, cd = synth_batch(wave, down)
        fd_grad = np.sum((fu / cu - fd / cd) / (2 * steps[k]) * weights, axis=1)
        assert np.all(np.abs(fd_grad) > 0)
        assert np.allclose(grad[:, k], fd_grad, rtol=1e-4, atol=1e-6 * np.abs(fd_grad).max())


# --- Faddeeva / Voigt -----------------------------------------------------------------------------
def test_voigt_torch_matches_wofz_over_a_wide_range():
    v = np.linspace(-500.0, 500.0, 20001)
    for a in np.logspace(-4, 1, 11):
        exact = wofz(v + 1j * a).real
        approx = voigt_torch(torch.tensor(v), torch.tensor(a)).numpy()
        assert np.max(np.abs(approx / exact - 1.0)) < 1e-6


def test_faddeeva_torch_matches_wofz_in_the_upper_half_plane():
    rng = np.random.default_rng(3)
    z = rng.uniform(-30, 30, 5000) + 1j * 10 ** rng.uniform(-4, 1.5, 5000)
    approx = faddeeva_torch(torch.tensor(z)).numpy()
    assert np.max(np.abs(approx - wofz(z)) / np.abs(wofz(z))) < 1e-6


def test_voigt_torch_gradient_is_the_analytic_one():
    v = torch.tensor(np.linspace(-20.0, 20.0, 401), requires_grad=True)
    a = torch.full_like(v, 0.3).detach().requires_grad_(True)
    voigt_torch(v, a).sum().backward()
    z = v.detach().numpy() + 1j * 0.3
    dw = -2.0 * z * wofz(z) + 2.0j / np.sqrt(np.pi)  # w'(z)
    assert np.allclose(v.grad.numpy(), dw.real, atol=1e-9)
    assert np.allclose(a.grad.numpy(), -dw.imag, atol=1e-9)


# --- grid -----------------------------------------------------------------------------------------
def test_build_synth_grid_writes_a_readable_grid(tmp_path):
    path = tmp_path / "synth.h5"
    ranges = {"T_eff": [4000, 4250], "log_g": [5.0, 5.0], "M_H": [0.0, 0.0], "a_M": [0.5, 0.5]}
    model = SynthModel(gravity_coupling=1.5)
    assert build_synth_grid(path, ranges, margin=1, model=model) == path
    grid = read_grid(path)
    assert np.array_equal(grid.axes["T_eff"], [3750, 4000, 4250, 4500])
    assert np.array_equal(grid.axes["log_g"], [4.5, 5.0])  # clipped at the axis end
    assert np.array_equal(grid.axes["M_H"], [-0.25, 0.0, 0.25])
    assert np.array_equal(grid.axes["a_M"], [0.25, 0.5])
    assert grid.mask.shape == (4, 2, 3, 2) and grid.mask.all()
    assert np.allclose(grid.wave, raw_wave())
    assert grid.attrs["source"] == "synth" and grid.attrs["kind"] == "raw"
    assert int(grid.attrs["resolution"]) == 20000
    assert json.loads(grid.attrs["model"]) == dataclasses.asdict(model)
    flux, cont = synth_spectrum(raw_wave(), 4250, 4.5, 0.25, 0.25, model=model)
    assert np.allclose(grid.flux[2, 0, 2, 0], flux, rtol=1e-6)
    assert np.allclose(grid.cont[2, 0, 2, 0], cont, rtol=1e-6)


@pytest.mark.parametrize("ranges, key", [
    ({"T_eff": [3000, 5000]}, "T_eff"),
    ({"log_g": [1, 5.5]}, "log_g"),
    ({"M_H": [-3.0, 0.0]}, "M_H"),
    ({"a_M": [0.0, 0.75]}, "a_M"),
    ({"C_M": [0.0, 0.0]}, "C_M"),
    ({"T_eff": [5000, 4000]}, "T_eff"),
])
def test_bad_ranges_raise_input_error_naming_the_key(tmp_path, ranges, key):
    with pytest.raises(InputError, match=key):
        build_synth_grid(tmp_path / "bad.h5", ranges)
    assert not (tmp_path / "bad.h5").exists()


def test_bad_resolution_and_model_raise_input_error(tmp_path, wave):
    with pytest.raises(InputError, match="resolution"):
        build_synth_grid(tmp_path / "g.h5", {}, resolution=5000)
    with pytest.raises(InputError, match="gravity_coupling"):
        synth_spectrum(wave, 5000, 3.0, 0.0, model=SynthModel(gravity_coupling=0.0))
    with pytest.raises(InputError, match="params"):
        synth_spectrum(wave, float("nan"), 3.0, 0.0)
