"""The PFS-like exposure model: calculator facts, SNR scaling, noise draws, the calibrated default."""

import numpy as np
import pytest

from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.errors import InputError
from pfslogg.data.instrument import pixel_wave
from pfslogg.data.noise import (
    ExposureModel,
    aperture_efficiency,
    check_sigma,
    check_sigma_mode,
    fnu_shape,
    sky_variance,
    system_response,
)

from conftest import DEFAULT_NOISE, TINY_RANGES


@pytest.fixture(scope="module")
def wave():
    return pixel_wave()


def flat_fnu(wave):
    """F_lambda of a source flat in f_nu (so its AB magnitude is the same at every pixel)."""
    return 1.0 / wave**2


# -- the calculator's numbers (noise.py docstring, REFERENCE.md) ---------------------------------
def test_sky_variance_quantiles_match_calculator(wave):
    v0 = sky_variance(wave)
    assert v0.shape == (4096,)
    med = np.median(v0)
    assert med == pytest.approx(231.0, rel=0.10)
    assert np.percentile(v0, 90) == pytest.approx(1466.0, rel=0.15)
    assert np.mean(v0 > 2 * med) == pytest.approx(0.19, abs=0.03)   # OH lines
    assert 2e5 / 3 < v0.max() < 2e5 * 3


def test_sky_variance_floor_is_detector_plus_continuum(wave):
    """No pixel can be quieter than read noise + dark over the 5-pixel extraction plus the sky continuum."""
    v0 = sky_variance(wave)
    assert np.all(v0 >= 5 * (4.0**2 + 1e-4 * 900) + 120.0 - 1e-9)


def test_sky_variance_scales_with_exposure_time_except_read_noise(wave):
    v900, v1800 = sky_variance(wave, 900.0), sky_variance(wave, 1800.0)
    read = 5 * 4.0**2
    np.testing.assert_allclose(v1800 - read, 2 * (v900 - read), rtol=1e-12)


def test_system_response_median_and_ends(wave):
    c = system_response(wave)
    assert np.median(c) == pytest.approx(2.58e29, rel=0.01)
    assert c[0] == pytest.approx(2.78e29, rel=1e-6)
    assert c[-1] == pytest.approx(2.18e29, rel=1e-6)
    assert np.all(np.diff(c) <= 0)  # falls monotonically to the red


def test_aperture_efficiency_is_one_at_calculator_seeing_and_falls_with_seeing():
    assert aperture_efficiency(0.8) == pytest.approx(1.0)
    eff = aperture_efficiency(np.array([0.5, 0.8, 1.0, 1.5]))
    assert np.all(np.diff(eff) < 0)


def test_fnu_shape_has_mean_one(wave):
    f = fnu_shape(wave, np.stack([flat_fnu(wave), 3.0 * wave**-1]))
    np.testing.assert_allclose(f.mean(axis=-1), 1.0)
    np.testing.assert_allclose(f[0], 1.0)  # a flat f_nu source is flat


# -- SNR ----------------------------------------------------------------------------------------
def test_snr_of_flat_ab20_source_one_exposure(wave):
    """The calculator: one 900 s exposure of an AB = 20 flat source at 0.8" gives SNR ~5 per pixel."""
    model = ExposureModel(wave, exposures=1, throughput=1.0)
    snr = model.snr(flat_fnu(wave), 20.0, 0.8)
    assert 4.9 <= snr <= 5.3


@pytest.mark.parametrize("n", [4, 9, 16])
def test_snr_scales_as_sqrt_exposures(wave, n):
    f = flat_fnu(wave)
    one = ExposureModel(wave, exposures=1, throughput=1.0).sigma(f, 21.0, 1.0)
    many = ExposureModel(wave, exposures=n, throughput=1.0).sigma(f, 21.0, 1.0)
    np.testing.assert_allclose(one / many, np.sqrt(n), rtol=1e-12)


def test_snr_fainter_source_is_noisier_and_sky_limited(wave):
    model = ExposureModel(wave)
    f = flat_fnu(wave)
    snr = [model.snr(f, m, 1.0) for m in (19.0, 20.0, 21.0, 22.0, 23.0)]
    assert np.all(np.diff(snr) < 0)
    # sky-limited: one magnitude fainter costs close to a factor 10**0.4 = 2.5 in SNR
    assert snr[3] / snr[4] == pytest.approx(10**0.4, rel=0.1)


def test_sigma_is_in_units_of_flux_and_independent_of_normalisation(wave):
    model = ExposureModel(wave)
    f = flat_fnu(wave) * (1 + 0.3 * np.sin(wave / 50.0))
    s1 = model.sigma(f, 21.0, 1.0)
    s2 = model.sigma(1e-17 * f, 21.0, 1.0)
    np.testing.assert_allclose(s2, 1e-17 * s1, rtol=1e-10)


def test_sigma_batched_over_magnitude_and_seeing(wave):
    model = ExposureModel(wave)
    f = np.tile(flat_fnu(wave), (3, 1))
    mag, seeing = np.array([20.5, 21.5, 22.5]), np.array([0.5, 1.0, 1.5])
    batch = model.sigma(f, mag, seeing)
    assert batch.shape == (3, 4096)
    for i in range(3):
        np.testing.assert_allclose(batch[i], model.sigma(f[i], mag[i], seeing[i]), rtol=1e-12)


def test_calibrated_default_gives_median_snr_8(wave):
    """Throughput 2.2, mag U(20.5, 22.5), seeing U(0.5, 1.5), 12 x 900 s: median SNR ~8 (the study)."""
    rng = np.random.default_rng(0)
    n = 2000
    model = ExposureModel(wave, exposures=12, throughput=2.2)
    snr = model.snr(np.tile(flat_fnu(wave), (n, 1)), rng.uniform(20.5, 22.5, n), rng.uniform(0.5, 1.5, n))
    assert 7.0 <= np.median(snr) <= 9.0
    assert 2.0 < np.percentile(snr, 5) < 5.0 and 15.0 < np.percentile(snr, 99) < 40.0


def test_calibrated_default_on_stellar_spectra(tiny_dataset):
    """The same calibration holds for the fake stars of a data set (snr column = median(flux/error))."""
    snr = SpectraSet(tiny_dataset).snr()
    assert 7.0 <= np.median(snr) <= 9.0


# -- noise draws --------------------------------------------------------------------------------
def test_noise_draws_have_std_sigma(tiny_instrument_grid, tmp_path):
    """flux + sigma * eps via SpectraSet.noisy: the std over 2000 draws of each pixel equals sigma."""
    path = tmp_path / "one.h5"
    simulate_dataset(tiny_instrument_grid, path, 4, TINY_RANGES, seed=3, noise=DEFAULT_NOISE)
    ds = SpectraSet(path)
    flux, error = ds.read()
    rng = np.random.default_rng(11)
    n_draws = 500  # x 4 rows = 2000 draws of the standardised noise per pixel
    s1 = np.zeros(4096)
    s2 = np.zeros(4096)
    for _ in range(n_draws):
        noisy, err = ds.noisy(0, 4, 1.0, rng=rng)
        np.testing.assert_array_equal(err, error)
        z = (noisy - flux) / error
        s1 += z.sum(0)
        s2 += (z**2).sum(0)
    n = 4 * n_draws
    mean = s1 / n
    std = np.sqrt(s2 / n - mean**2)
    assert np.median(std) == pytest.approx(1.0, abs=0.01)
    assert np.all(np.abs(std - 1) < 0.08)        # 2000 draws: 1.6 % per pixel, 5 sigma
    assert np.abs(mean).max() < 5 / np.sqrt(n) * 1.3


@pytest.mark.parametrize("level", [0.5, 2.0])
def test_noise_level_multiplies_sigma(tiny_dataset, level):
    ds = SpectraSet(tiny_dataset)
    flux, error = ds.read(0, 100)
    one, _ = ds.noisy(0, 100, 1.0, seed=5)
    scaled, _ = ds.noisy(0, 100, level, seed=5)
    np.testing.assert_allclose(scaled - flux, level * (one - flux), rtol=1e-9, atol=1e-12)
    assert np.std((one - flux) / error) == pytest.approx(1.0, abs=0.01)


def test_noise_level_zero_is_clean(tiny_dataset):
    ds = SpectraSet(tiny_dataset)
    flux, _ = ds.read(0, 10)
    noisy, _ = ds.noisy(0, 10, 0.0, seed=1)
    np.testing.assert_array_equal(noisy, flux)


# -- sigma estimated from the noisy flux (noise.sigma: estimated) --------------------------------
def star(wave):
    """A clean spectrum with lines, mean 1 (normalised like the data sets)."""
    f = (1 + 0.3 * np.sin(wave / 40.0)) * (1 - 0.6 * np.exp(-0.5 * ((wave - 8542.0) / 2.0) ** 2))
    return f / f.mean()


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_estimated_sigma_of_a_clean_spectrum_is_the_true_sigma(wave, dtype, rtol):
    model = ExposureModel(wave)
    x = np.stack([star(wave), flat_fnu(wave) / flat_fnu(wave).mean()])
    mag, seeing = np.array([20.5, 22.8]), np.array([0.6, 1.4])
    est = model.estimate_sigma(x.astype(dtype), mag, seeing)
    assert est.dtype == dtype and est.shape == x.shape
    np.testing.assert_allclose(est, model.sigma(x, mag, seeing), rtol=rtol)
    np.testing.assert_allclose(model.estimate_sigma(x, mag, seeing, noise_level=2.5), 2.5 * est, rtol=rtol)
    assert not model.estimate_sigma(x, mag, seeing, noise_level=0.0).any()


def test_estimated_sigma_of_a_stored_clean_spectrum_matches_the_file(tiny_dataset):
    """On a data set's clean flux the estimate is the stored sigma (to the float32 rounding of the
    stored one, computed on raw fluxes whose per-spectrum factor is near float32's subnormals)."""
    ds = SpectraSet(tiny_dataset)
    model, mag, seeing = ds.exposure_model()
    x, error = ds.read(0, 50)
    np.testing.assert_allclose(model.estimate_sigma(x, mag[:50], seeing[:50]), error, rtol=3e-3)


def test_estimated_sigma_depends_on_the_observed_flux_only(wave):
    """Two stars with other clean spectra but the same observed flux and conditions get the same
    sigma; their true sigmas differ (that difference is the leak of the stored sigma)."""
    model = ExposureModel(wave)
    x1, x2 = star(wave), np.ones_like(wave)
    y = x1 + model.sigma(x1, 22.0, 1.0) * np.random.default_rng(3).standard_normal(len(wave))
    assert not np.allclose(model.sigma(x1, 22.0, 1.0), model.sigma(x2, 22.0, 1.0), rtol=1e-3)
    # x2 could have given the same y (its noise was y - x2): the estimate cannot tell them apart
    np.testing.assert_array_equal(model.estimate_sigma(y, 22.0, 1.0), model.estimate_sigma(y.copy(), 22.0, 1.0))
    # and it moves with y, not with anything else: another draw of the noise, another estimate
    y2 = x1 + model.sigma(x1, 22.0, 1.0) * np.random.default_rng(4).standard_normal(len(wave))
    assert not np.allclose(model.estimate_sigma(y2, 22.0, 1.0), model.estimate_sigma(y, 22.0, 1.0))


@pytest.mark.parametrize("mag,tol_mean,tol_sd", [(19.5, 0.0005, 0.01), (21.5, 0.001, 0.015)])
def test_estimated_sigma_is_unbiased_at_high_snr(wave, mag, tol_mean, tol_sd):
    """Over noise draws the estimate's mean ratio to the true sigma is 1 (the plug-in's bias is
    second order in 1/SNR; negative fluxes clipped at 0 only matter at SNR ~1)."""
    model = ExposureModel(wave)
    x = np.tile(star(wave), (200, 1))
    true = model.sigma(x, mag, 1.0)
    y = x + true * np.random.default_rng(5).standard_normal(x.shape)
    ratio = model.estimate_sigma(y, np.full(200, mag), np.full(200, 1.0)) / true
    assert model.snr(x[0], mag, 1.0) > (30 if mag < 20 else 6)
    assert abs(ratio.mean() - 1) < tol_mean and ratio.std() < tol_sd


def test_sigma_mode_is_checked():
    assert check_sigma_mode("stored") == "stored"
    with pytest.raises(InputError, match=r"^noise\.sigma: expected one of estimated, stored, got 'estimate'$"):
        check_sigma_mode("estimate")


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0, 0.0])
def test_check_sigma_rejects_bad_values(bad):
    sigma = np.ones((3, 10))
    sigma[1, 4] = bad
    with pytest.raises(InputError, match=r"data/x\.h5.*1 error values"):
        check_sigma(sigma, "data/x.h5")


def test_check_sigma_accepts_positive():
    check_sigma(np.full((2, 5), 1e-3), "ok")


@pytest.mark.parametrize("kw,key", [({"exposures": 0}, "noise.exposures"), ({"throughput": 0.0}, "noise.throughput"),
                                    ({"throughput": -1.0}, "noise.throughput")])
def test_exposure_model_rejects_bad_settings(wave, kw, key):
    with pytest.raises(InputError, match=key):
        ExposureModel(wave, **kw)
