"""Training on the simulator (pfslogg.data.simview.SimulatorView, issue 17 item 3).

A SimulatorView draws its rows from the forward model when they are read: row i's parameters and
clean spectrum are a function of (seed, i), the noise is NoisyView's (fresh with a resumable
generator, or fixed per row), and its rows are bitwise those of the data set simulate_dataset writes
with the same settings (all full chunks; with dataset_n, the short last chunk too).
"""

import re

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.simview import TABLE_COLUMNS, SimulatorView
from pfslogg.data.views import NoisyView, SubsetView
from pfslogg.errors import InputError

from conftest import DEFAULT_NOISE, TINY_RANGES, make_fake_grid

N, CHUNK, SEED = 300, 64, 7   # 4 full chunks of 64 and a short one of 44: the file's last chunk differs


@pytest.fixture(scope="module")
def grid(coarse_instrument_grid):
    return coarse_instrument_grid   # 512 pixels


@pytest.fixture(scope="module")
def stored(grid, tmp_path_factory):
    """The data set file simulate_dataset writes with the settings of the views below."""
    path = tmp_path_factory.mktemp("simview") / "train.h5"
    simulate_dataset(grid, path, N, TINY_RANGES, seed=SEED, noise=DEFAULT_NOISE, chunk_size=CHUNK)
    return SpectraSet(path)


def view(grid, n=N, noise_level=1.0, **kw):
    kw = {"rng_seed": 3, **kw} if "noise_seed" not in kw else kw
    return SimulatorView(grid, n, TINY_RANGES, SEED, DEFAULT_NOISE, noise_level, chunk_size=CHUNK, **kw)


def test_params_are_deterministic_within_the_prior_and_nest(grid):
    v = view(grid)
    p = v.params
    assert list(p.columns) == list(TABLE_COLUMNS) and len(p) == N and list(p.index) == list(range(N))
    for name in PARAMS:
        lo, hi = TINY_RANGES[name]
        assert p[name].between(lo, hi).all()
    assert p["mag"].between(*DEFAULT_NOISE["mag"]).all() and p["seeing"].between(*DEFAULT_NOISE["seeing"]).all()
    assert np.ptp(p["log_g"]) > 3.5 and len(np.unique(p["T_eff"])) == N   # drawn, not constant
    assert np.array_equal(v.logg, p["log_g"].to_numpy()) and np.array_equal(v.y, v.logg)
    again = view(grid, rng_seed=99)   # another noise generator: the same stars
    assert again.params.equals(p)
    # row i is a function of (seed, i): a smaller view is the first rows of a larger one
    small = view(grid, n=100)
    assert small.params.equals(p.iloc[:100])
    assert np.array_equal(small.read_clean(0, 100), v.read_clean(0, 100))
    other = SimulatorView(grid, N, TINY_RANGES, SEED + 1, DEFAULT_NOISE, 1.0, rng_seed=3, chunk_size=CHUNK)
    assert not np.allclose(other.logg, v.logg)


def test_clean_flux_is_reproducible_and_row_by_row(grid):
    v = view(grid)
    clean = v.read_clean(0, N)
    assert clean.shape == (N, 512) and clean.dtype == np.float64 and np.isfinite(clean).all()
    assert np.allclose(clean.mean(axis=1), 1.0, rtol=1e-5)   # the project's normalisation
    for a, b in ((5, 70), (250, 300), (0, 300)):   # other blocks, after the cache moved on
        assert np.array_equal(view(grid).read_clean(a, b), clean[a:b])
    rows = np.array([2, 63, 64, 65, 200, 299])      # scattered rows: only they are simulated
    assert np.array_equal(v.read_clean_rows(rows), clean[rows])
    assert v.read_clean(10, 10).shape == (0, 512)


def test_fresh_noise_differs_and_its_state_round_trips(grid):
    v = view(grid)
    clean = v.read_clean(0, 100)
    state = v.noise_state()
    f1, s1 = v.read(0, 100)
    f2, s2 = v.read(0, 100)
    assert not np.allclose(f1, f2) and not v.fixed
    assert 0.5 < np.std((f1 - clean) / s1) < 2.0   # noise of the size of sigma
    v.set_noise_state(state)
    g1, t1 = v.read(0, 100)
    assert np.array_equal(g1, f1) and np.array_equal(t1, s1)
    w = view(grid, rng_seed=12345)   # another view (a resumed run) given the state: the same
    w.set_noise_state(state)
    assert np.array_equal(w.read(0, 100)[0], f1)
    # fixed noise: the same eps on every read, no generator to restore
    fx = view(grid, noise_seed=11)
    assert fx.fixed and fx.noise_state() is None
    assert np.array_equal(fx.read(0, 100)[0], fx.read(0, 100)[0])
    with pytest.raises(InputError, match="fixed noise"):
        fx.set_noise_state(state)
    # noise level 0: the clean flux, sigma 0, snr inf
    z = view(grid, noise_level=0.0)
    f0, s0 = z.read(0, 10)
    assert np.array_equal(f0, clean[:10]) and not s0.any() and np.isinf(z.snr()).all()


@pytest.mark.parametrize("sigma", ["estimated", "stored"])
def test_equals_the_file_simulate_dataset_writes(grid, stored, sigma):
    """Parameters, clean flux, sigma, snr and -- from the same generator state or noise seed -- the
    noisy flux and the sigma a model sees are bitwise a NoisyView's of the file."""
    full = N // CHUNK * CHUNK   # rows of the file's full chunks
    flux, error = stored.read()
    cols = list(TABLE_COLUMNS)
    for dataset_n, same in ((None, full), (N, N)):
        v = view(grid, dataset_n=dataset_n, sigma=sigma, rng_seed=5)
        assert np.array_equal(v.params[cols].to_numpy()[:same], stored.params[cols].to_numpy()[:same])
        assert np.array_equal(v.read_clean(0, N)[:same], flux[:same])
        assert np.array_equal(v.snr()[:same], stored.snr()[:same])
        nv = NoisyView(stored, 1.0, rng_seed=5, sigma=sigma)
        a, b = v.read(0, same), nv.read(0, same)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        rows = np.array([1, 64, 150, same - 1])
        a, b = v.read_rows(rows), nv.read_rows(rows)   # the generators moved on alike
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        fv, fn = view(grid, noise_level=0.5, noise_seed=9, dataset_n=dataset_n, sigma=sigma), \
            NoisyView(stored, 0.5, noise_seed=9, sigma=sigma)
        assert np.array_equal(fv.read(0, same)[0], fn.read(0, same)[0])
        assert np.array_equal(fv.read_rows(rows)[1], fn.read_rows(rows)[1])
    # without dataset_n the file's short last chunk is drawn otherwise (a whole chunk, cut)
    assert not np.array_equal(view(grid).logg[full:], stored.logg[full:])
    v = view(grid, dataset_n=N, sigma="stored", noise_seed=1)
    assert np.array_equal(v.read(0, N)[1], error)   # sigma at noise level 1 = the stored error


def test_from_config_and_a_grid_with_holes(tmp_path):
    """from_config draws the train split as the workflow simulates it; points in holes are redrawn
    exactly as simulate_dataset redraws them."""
    axes = {"T_eff": [4000.0, 4500.0, 5000.0, 5500.0, 6000.0], "log_g": [1.0, 2.0, 3.0, 4.0, 5.0],
            "M_H": [0.0, 0.5], "a_M": [0.0]}
    g = make_fake_grid(tmp_path / "g.h5", axes=axes, n_pixels=64, holes=[(4, 4, 1, 0)])
    ranges = {"T_eff": [4000, 6000], "log_g": [1, 5], "M_H": [0, 0.5], "a_M": [0, 0]}
    noise = dict(DEFAULT_NOISE, noise_level=1.0, sigma="stored")
    cfg = {"seed": 3, "params": ranges, "noise": noise,
           "datasets": {"chunk_size": 50, "train": {"n": 230, "mag": [19.0, 20.0]}}}
    simulate_dataset(g, tmp_path / "t.h5", 230, ranges, seed=31, chunk_size=50,
                     noise=dict(DEFAULT_NOISE, mag=[19.0, 20.0]))
    ds = SpectraSet(tmp_path / "t.h5")
    v = SimulatorView.from_config(cfg, g, 1.0, rng_seed=0, like_file=True)
    assert v.n == 230 and v.sigma_mode == "stored" and v.params["mag"].between(19.0, 20.0).all()
    assert np.array_equal(v.params[list(PARAMS)].to_numpy(), ds.params[list(PARAMS)].to_numpy())
    assert np.array_equal(v.read_clean(0, 230), ds.read()[0])
    p = v.params
    assert not ((p["T_eff"] > 5000) & (p["log_g"] > 3) & (p["M_H"] > 0)).any()   # the hole's cell
    assert SimulatorView.from_config(cfg, g, 1.0, n=100, rng_seed=0).params.equals(p.iloc[:100])


def test_block_stream_over_the_simulator(grid):
    import torch

    from pfslogg.nn.data import BlockStream
    from pfslogg.nn.targets import CleanSpectrumTarget

    v = view(grid)
    stream = BlockStream(v, batch_size=32, block_size=CHUNK, buffer_blocks=2, seed=1)
    state = stream.state()
    batches = list(stream)
    assert len(batches) == stream.n_batches() == 10   # 9 x 32 + 12
    assert all(x.shape[1:] == (512,) and x.dtype == torch.float32 and len(y) == len(x) for x, y in batches)
    assert sum(len(x) for x, _ in batches) == N
    assert np.allclose(np.sort(np.concatenate([y.numpy() for _, y in batches])), np.sort(v.logg.astype(np.float32)))
    stream.set_state(state)   # resumed from the state at the start of the epoch: the same batches
    again = list(stream)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(batches, again))
    # a denoiser's stream: noisy flux, its sigma, the clean flux of the same rows, a strength
    den = BlockStream(v, batch_size=50, block_size=100, seed=2, target=CleanSpectrumTarget(strengths=(1.0,)))
    flux, sigma, clean, s = next(iter(den))
    assert flux.shape == sigma.shape == clean.shape == (50, 512) and s.shape == (50,)
    # an expert's rows (a SubsetView selects by the parameter table, no flux simulated for that)
    sub = SubsetView(v, mask=(v.params["log_g"] > 3).to_numpy(), rng_seed=4)
    f, _ = sub.read(0, 20)
    assert f.shape == (20, 512) and np.array_equal(sub.read_clean(0, 20), v.read_clean_rows(sub.rows[:20]))


@pytest.mark.parametrize("change, needle", [
    ({"n": 0}, "n = 0, expected at least 1 spectrum"),
    ({"grid_path": "nowhere/grid.h5"}, "nowhere/grid.h5: grid file not found"),
    ({"ranges": {"T_eff": [3750.0, 6000.0], "log_g": [1.0, 5.0], "M_H": [-0.25, 0.75]}}, "params.a_M: missing range"),
    ({"ranges": dict(TINY_RANGES, log_g=[5.0, 1.0])}, "params.log_g: expected lo <= hi, got [5.0, 1.0]"),
    ({"ranges": dict(TINY_RANGES, log_g=[0.0, 5.0])}, "params.log_g: range [0.0, 5.0] is outside the grid's axis"),
    ({"ranges": dict(TINY_RANGES, M_H="low")}, "params.M_H: expected a range [lo, hi] of two numbers"),
    ({"noise": {k: v for k, v in DEFAULT_NOISE.items() if k != "seeing"}}, "noise.seeing: missing"),
    ({"noise_level": -1.0}, "noise level -1.0: expected a finite number >= 0"),
    ({"seed": -2}, "seed = -2, expected an integer >= 0"),
    ({"rng_seed": None}, "give noise_seed (fixed noise) or rng_seed (fresh noise)"),
    ({"sigma": "oracle"}, "noise.sigma: expected one of estimated, stored"),
    ({"dataset_n": 10}, "dataset_n = 10, expected an integer >= n = 300"),
])
def test_bad_input_is_one_line_naming_it(grid, change, needle):
    kw = dict(grid_path=grid, n=N, ranges=TINY_RANGES, seed=SEED, noise=DEFAULT_NOISE, noise_level=1.0,
              rng_seed=0, chunk_size=CHUNK)
    kw.update(change)
    with pytest.raises(InputError, match=re.escape(needle)) as e:
        SimulatorView(**kw)
    assert "\n" not in str(e.value)


def test_bad_rows_and_a_grid_of_another_kind(grid, tmp_path):
    v = view(grid)
    for rows in ([3, 2], [0, N], [-1, 4]):
        with pytest.raises(InputError, match=re.escape(f"rows must be increasing indices in [0, {N})")):
            v.read_rows(rows)
    raw = make_fake_grid(tmp_path / "raw.h5", n_pixels=32, kind="raw")
    with pytest.raises(InputError, match="expected an instrument-resolution grid"):
        view(raw)
