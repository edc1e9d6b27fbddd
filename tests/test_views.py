"""Noise-level views of a stored data set (pfslogg.data.views.NoisyView).

The file holds the clean flux and its sigma at noise level 1; a view of its first n rows adds
noise_level * sigma * eps, eps fixed per (seed, row) for validation/test, fresh per batch for training.
The sigma returned with it is estimated from that noisy flux (default) or the stored one (noise.sigma).
"""

import re

import numpy as np
import pytest

from pfslogg.data.dataset import NOISE_BLOCK, SpectraSet, simulate_dataset
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError

from conftest import DEFAULT_NOISE, TINY_RANGES

N = NOISE_BLOCK + 300   # rows spanning two blocks of the fixed noise


@pytest.fixture(scope="module")
def ds(coarse_instrument_grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("views") / "set.h5"
    simulate_dataset(coarse_instrument_grid, path, N, TINY_RANGES, seed=4, noise=DEFAULT_NOISE, chunk_size=256)
    return SpectraSet(path)


@pytest.fixture(scope="module")
def clean(ds):
    return ds.read()


def concat(view, size):
    parts = list(view.batches(size))
    assert [p[0] for p in parts] == list(range(0, view.n, size))          # contiguous, in order
    assert parts[-1][1] == view.n
    return np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])


def test_fixed_noise_identical_across_reads_and_batch_sizes(ds):
    v = NoisyView(ds, 1.0, noise_seed=42)
    X1, S1 = v.load(np.float64)
    X2, S2 = v.load(np.float64)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(S1, S2)
    for size in (97, NOISE_BLOCK - 1, NOISE_BLOCK + 7, 10 * N):    # batches straddling noise blocks
        Xb, Sb = concat(v, size)
        np.testing.assert_array_equal(Xb, X1)
        np.testing.assert_array_equal(Sb, S1)
    Xb, _ = concat(NoisyView(ds, 1.0, n=40, noise_seed=42), 1)         # row by row
    np.testing.assert_array_equal(Xb, X1[:40])
    # another view with the same seed: the same noise; another seed: other noise
    np.testing.assert_array_equal(NoisyView(ds, 1.0, noise_seed=42).load(np.float64)[0], X1)
    assert not np.allclose(NoisyView(ds, 1.0, noise_seed=43).load(np.float64)[0], X1)


def test_fixed_noise_is_one_eps_per_row_for_every_size_and_level(ds, clean):
    """Every size and noise level sees the same eps on the same row (paired comparisons):
    the first n rows of a view are the view of n rows, and level k adds k times the noise of level 1."""
    flux, error = clean
    full = NoisyView(ds, 1.0, noise_seed=7).load(np.float64)[0]
    np.testing.assert_array_equal(NoisyView(ds, 1.0, n=333, noise_seed=7).load(np.float64)[0], full[:333])
    eps = (full - flux) / error
    for k in (0.1, 0.5, 2.0):
        Xk, Sk = NoisyView(ds, k, noise_seed=7).load(np.float64)
        np.testing.assert_allclose((Xk - flux) / error, k * eps, rtol=1e-9, atol=1e-9)


def test_fresh_noise_differs_between_passes_and_is_seeded(ds, clean):
    flux, error = clean
    v = NoisyView(ds, 1.0, n=300, rng_seed=3)
    assert not v.fixed
    X1, _ = v.load(np.float64)
    X2, _ = v.load(np.float64)
    assert not np.allclose(X1, X2)                               # a second epoch: new noise
    w = NoisyView(ds, 1.0, n=300, rng_seed=3)                    # same seed: same sequence
    np.testing.assert_array_equal(w.load(np.float64)[0], X1)
    np.testing.assert_array_equal(w.load(np.float64)[0], X2)
    # the noise is standard normal in units of the stored sigma
    eps = (X1 - flux[:300]) / error[:300]
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - 1.0) < 0.01


@pytest.mark.parametrize("mode", ["estimated", "stored"])
@pytest.mark.parametrize("kind", ["fixed", "fresh"])
def test_noise_level_zero_is_clean_with_sigma_zero(ds, clean, kind, mode):
    flux, error = clean
    seeds = {"noise_seed": 1} if kind == "fixed" else {"rng_seed": 1}
    v = NoisyView(ds, 0.0, sigma=mode, **seeds)
    X, S = v.load(np.float64)
    np.testing.assert_array_equal(X, flux)
    assert not S.any()
    for a, b, Xb, Sb in v.batches(500):
        np.testing.assert_array_equal(Xb, flux[a:b])
        assert not Sb.any()


@pytest.mark.parametrize("level", [0.1, 1.0, 2.5])
def test_stored_sigma_is_noise_level_times_stored_error(ds, clean, level):
    """noise.sigma: stored -- the file's sigma times the noise level, bit for bit (as before the option)."""
    _, error = clean
    for v in (NoisyView(ds, level, noise_seed=1, sigma="stored"), NoisyView(ds, level, rng_seed=1, sigma="stored")):
        _, S = v.load(np.float64)
        np.testing.assert_array_equal(S, error * level)
        np.testing.assert_array_equal(v.read_rows(np.arange(3, N, 7))[1], error[3::7] * level)


@pytest.mark.parametrize("level", [1.0, 2.5])
@pytest.mark.parametrize("kind", ["fixed", "fresh"])
def test_estimated_sigma_is_the_estimate_from_the_returned_flux(ds, clean, kind, level):
    """noise.sigma: estimated (the default) -- sigma is the exposure model's estimate from the very
    noisy flux a read returns and the rows' magnitude and seeing, nothing else; close to the truth."""
    _, error = clean
    model, mag, seeing = ds.exposure_model()
    seeds = {"noise_seed": 3} if kind == "fixed" else {"rng_seed": 3}
    v = NoisyView(ds, level, **seeds)
    assert v.sigma_mode == "estimated"
    for a, b, X, S in v.batches(500):
        np.testing.assert_allclose(S, model.estimate_sigma(X, mag[a:b], seeing[a:b], level), rtol=1e-12)
        assert not np.array_equal(S, error[a:b] * level)
        assert abs(np.mean(S / (error[a:b] * level)) - 1) < 0.01
    rows = np.arange(5, N, 11)
    X, S = v.read_rows(rows)
    np.testing.assert_allclose(S, model.estimate_sigma(X, mag[rows], seeing[rows], level), rtol=1e-12)


def test_estimated_sigma_keeps_fixed_noise_fixed_and_fresh_noise_resumable(ds):
    fixed = NoisyView(ds, 1.0, noise_seed=42)
    X1, S1 = fixed.load(np.float64)
    Xb, Sb = concat(fixed, NOISE_BLOCK + 7)
    np.testing.assert_array_equal(Xb, X1)
    np.testing.assert_array_equal(Sb, S1)
    rows = np.arange(0, N, 5)
    Xr, Sr = fixed.read_rows(rows)
    np.testing.assert_array_equal(Xr, X1[rows])
    np.testing.assert_allclose(Sr, S1[rows], rtol=1e-12)
    # the same flux as the stored mode gives: estimating sigma draws no random numbers
    np.testing.assert_array_equal(NoisyView(ds, 1.0, noise_seed=42, sigma="stored").load(np.float64)[0], X1)
    fresh, twin = NoisyView(ds, 1.0, n=300, rng_seed=8), NoisyView(ds, 1.0, n=300, rng_seed=8, sigma="stored")
    fresh.read(0, 100), twin.read(0, 100)
    state = fresh.noise_state()
    Xa, Sa = fresh.read(0, 300)
    np.testing.assert_array_equal(twin.read(0, 300)[0], Xa)
    fresh.set_noise_state(state)                                   # a resume replays flux and sigma
    Xc, Sc = fresh.read(0, 300)
    np.testing.assert_array_equal(Xc, Xa)
    np.testing.assert_array_equal(Sc, Sa)


def test_estimated_sigma_needs_the_exposure_model_of_the_file(ds, tmp_path):
    import shutil

    import h5py

    path = tmp_path / "foreign.h5"
    shutil.copy(ds.path, path)
    with h5py.File(path, "a") as h5:
        del h5.attrs["config"]                 # as in a pfsspec file not made here
    foreign = SpectraSet(path)
    with pytest.raises(InputError, match=re.escape(str(path)) + r".*exposure model.*noise\.sigma: stored"):
        NoisyView(foreign, 1.0, noise_seed=1)
    NoisyView(foreign, 1.0, noise_seed=1, sigma="stored").read(0, 2)


def test_bad_sigma_mode_rejected(ds):
    with pytest.raises(InputError, match=r"noise\.sigma: expected one of estimated, stored, got 'clean'"):
        NoisyView(ds, 1.0, noise_seed=1, sigma="clean")


def test_view_of_n_rows(ds, clean):
    flux, _ = clean
    v = NoisyView(ds, 0.0, n=123, noise_seed=1)
    X, S = v.load()
    assert X.shape == S.shape == (123, len(ds.wave)) and X.dtype == np.float32
    assert v.n == 123 and v.n_pixels == len(ds.wave)
    np.testing.assert_array_equal(v.logg, ds.logg[:123])
    assert len(v.params) == 123
    np.testing.assert_array_equal(v.wave, ds.wave)
    np.testing.assert_array_equal(X, flux[:123].astype(np.float32))
    assert NoisyView(ds, 1.0, noise_seed=1).n == ds.n == N           # default: the whole set


@pytest.mark.parametrize("n", [N + 1, 10**9, 0, -5])
def test_view_larger_than_the_data_set_named(ds, n):
    with pytest.raises(InputError, match=re.escape(str(ds.path)) + f".*{n}"):
        NoisyView(ds, 1.0, n=n, noise_seed=1)


@pytest.mark.parametrize("level", [-0.1, float("nan"), float("inf")])
def test_bad_noise_level_rejected(ds, level):
    with pytest.raises(InputError, match="noise level"):
        NoisyView(ds, level, noise_seed=1)


def test_a_view_needs_a_seed(ds):
    with pytest.raises(InputError, match="noise_seed.*rng_seed"):
        NoisyView(ds, 1.0)


def test_snr_scales_as_one_over_noise_level(ds, clean):
    flux, error = clean
    snr1 = NoisyView(ds, 1.0, noise_seed=1).snr()
    np.testing.assert_allclose(snr1, np.median(flux / error, axis=1), rtol=1e-5)
    for k in (0.1, 0.5, 2.0):
        np.testing.assert_allclose(NoisyView(ds, k, noise_seed=1).snr(), snr1 / k, rtol=1e-12)
    s = NoisyView(ds, 1.0, n=50, rng_seed=1).snr()
    np.testing.assert_array_equal(s, snr1[:50])
    z = NoisyView(ds, 0.0, n=50, noise_seed=1).snr()
    assert z.shape == (50,) and np.all(np.isinf(z)) and np.all(z > 0)


def test_clean_flux_is_the_noiseless_flux_of_the_same_rows(ds):
    """read_clean gives the flux the noise is added to: noisy - clean is noise_level * error * eps,
    for a fixed-noise view, its subsets (row mapping) and contiguous or scattered rows."""
    from pfslogg.data.views import MappedView, SubsetView

    v0 = NoisyView(ds, 0.0, noise_seed=3)
    v = NoisyView(ds, 1.0, noise_seed=3)
    np.testing.assert_array_equal(v.read_clean(2, 7), v0.read(2, 7)[0])
    flux, _ = v.read(0, ds.n)
    clean = v.read_clean(0, ds.n)
    assert not np.allclose(flux, clean)
    eps = (flux - clean) / ds.read()[1]
    assert abs(eps.std() - 1) < 0.1
    rows = np.array([1, 4, 5])
    sub = SubsetView(v, rows=rows)
    np.testing.assert_array_equal(sub.read_clean(0, 3), clean[rows])
    np.testing.assert_array_equal(sub.read_clean_rows([0, 2]), clean[rows[[0, 2]]])
    with pytest.raises(InputError, match="no noiseless flux"):
        MappedView(v, lambda f: f[:, :2], 2).read_clean(0, 2)


@pytest.mark.parametrize("mode", ["estimated", "stored"])
def test_flux_alone_is_the_flux_of_read_with_the_same_draws(ds, mode):
    """read_flux / read_flux_rows / batches(sigma=False) / load(sigma=False): the flux read gives, bitwise,
    and fresh noise consumed exactly as read consumes it (the next read is the same either way)."""
    from pfslogg.data.views import SubsetView, TargetView

    fixed = NoisyView(ds, 0.7, noise_seed=3, sigma=mode)
    np.testing.assert_array_equal(fixed.read_flux(5, 900), fixed.read(5, 900)[0])
    rows = np.array([0, 7, NOISE_BLOCK - 1, NOISE_BLOCK + 2])
    np.testing.assert_array_equal(fixed.read_flux_rows(rows), fixed.read_rows(rows)[0])
    X, S = fixed.load(np.float64, sigma=False)
    assert S is None
    np.testing.assert_array_equal(X, fixed.load(np.float64)[0])
    assert all(b[3] is None for b in fixed.batches(500, sigma=False))
    a, b = (NoisyView(ds, 0.7, rng_seed=9, sigma=mode) for _ in range(2))
    for start, stop in ((0, 300), (300, N)):
        np.testing.assert_array_equal(a.read_flux(start, stop), b.read(start, stop)[0])
    np.testing.assert_array_equal(a.read_flux_rows(rows), b.read_rows(rows)[0])
    np.testing.assert_array_equal(a.read(0, 50)[0], b.read(0, 50)[0])      # the generators moved alike
    sub = SubsetView(fixed, rows=rows)
    np.testing.assert_array_equal(sub.read_flux(1, 3), sub.read(1, 3)[0])
    target = TargetView(fixed, "T_eff")
    np.testing.assert_array_equal(target.read_flux(0, 10), fixed.read(0, 10)[0])


def test_flux_cache_reads_once_and_gives_the_same_flux(ds, monkeypatch):
    """The validation cache (FluxCache): the base's flux bitwise, read once per span, read-only; a view with
    fresh noise is refused."""
    from pfslogg.data.views import FluxCache

    base = NoisyView(ds, 1.0, noise_seed=11)
    cache = FluxCache(base)
    calls = []
    real = base.read_flux
    monkeypatch.setattr(base, "read_flux", lambda a, b: calls.append((a, b)) or real(a, b))
    first = cache.read_flux(0, NOISE_BLOCK)
    again = cache.read_flux(0, NOISE_BLOCK)
    assert calls == [(0, NOISE_BLOCK)] and again is first and not first.flags.writeable
    np.testing.assert_array_equal(first, NoisyView(ds, 1.0, noise_seed=11).read(0, NOISE_BLOCK)[0])
    np.testing.assert_array_equal(cache.read(0, 10)[1], base.read(0, 10)[1])   # sigma reads pass through
    with pytest.raises(InputError, match="fresh noise"):
        FluxCache(NoisyView(ds, 1.0, rng_seed=1))


def test_fixed_noise_draws_each_block_once_for_reads_smaller_than_a_block(ds, monkeypatch):
    """Reads of half a noise block (a validation pass of 512 rows) draw every block once, and give the
    values of one whole read."""
    import pfslogg.data.dataset as D

    whole = NoisyView(ds, 1.0, noise_seed=21).read_flux(0, N)   # two blocks
    D._noise_block.cache_clear()
    draws = []
    real = np.random.default_rng
    monkeypatch.setattr(D.np.random, "default_rng", lambda seed=None: draws.append(seed) or real(seed))
    view, half = NoisyView(ds, 1.0, noise_seed=21), NOISE_BLOCK // 2
    parts = [view.read_flux(a, min(a + half, len(whole))) for a in range(0, len(whole), half)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert sorted(tuple(d) for d in draws if isinstance(d, list)) == [(21, 0), (21, 1)]
