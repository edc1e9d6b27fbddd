"""Data sets in the pfsspec ``dataset.h5`` layout: layout, content, determinism, fixed noise, reading
files written by other tools, and one clear error (with no output left behind) for bad input."""

import h5py
import numpy as np
import pandas as pd
import pytest

from pfslogg import PARAMS
from pfslogg.data import dataset as dsmod
from pfslogg.data.dataset import SpectraSet, draw_params, simulate_dataset
from pfslogg.errors import InputError
from pfslogg.data.gridio import read_grid
from pfslogg.data.instrument import pixel_wave
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.noise import ExposureModel

from conftest import DEFAULT_NOISE, TINY_RANGES, make_fake_grid

FLUX, ERROR, WAVE, PARAMS_KEY = ("dataset/arrays/flux/value", "dataset/arrays/error/value",
                                 "spectrumdataset/wave", "dataset/params")
COLUMNS = ["T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "redshift", "snr"]


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def arrays(path):
    with h5py.File(path, "r") as h5:
        return h5[FLUX][:], h5[ERROR][:]


# -- layout and content ---------------------------------------------------------------------------
def test_layout_is_pfsspec(tiny_dataset):
    with h5py.File(tiny_dataset, "r") as h5:
        assert h5[WAVE].shape == (4096,)
        assert h5[FLUX].shape == (200, 4096) and h5[ERROR].shape == (200, 4096)
        assert h5[FLUX].dtype == np.float32 and h5[ERROR].dtype == np.float32
        np.testing.assert_array_equal(h5[WAVE][:], pixel_wave())
        assert h5[FLUX].chunks is not None  # chunked by rows: streams without loading
    params = pd.read_hdf(tiny_dataset, key=PARAMS_KEY)
    assert list(params.columns[:8]) == COLUMNS
    assert len(params) == 200
    # PyTables 'table' format, as pfsspec writes it
    with pd.HDFStore(tiny_dataset, "r") as store:
        assert store.get_storer(PARAMS_KEY).is_table


def test_params_within_ranges(tiny_dataset):
    p = pd.read_hdf(tiny_dataset, key=PARAMS_KEY)
    for name in PARAMS:
        lo, hi = TINY_RANGES[name]
        assert p[name].between(lo, hi).all(), name
    assert p["mag"].between(*DEFAULT_NOISE["mag"]).all()
    assert p["seeing"].between(*DEFAULT_NOISE["seeing"]).all()
    assert (p["C_M"] == 0).all() and (p["redshift"] == 0).all()
    assert (p["a_M"] == 0).all()
    # uniform prior: both halves of the log g range are populated
    assert 0.3 < np.mean(p["log_g"] < 3.0) < 0.7


def test_flux_is_median_normalised(tiny_dataset):
    flux, error = SpectraSet(tiny_dataset).read()
    np.testing.assert_allclose(flux.mean(axis=1), 1.0, rtol=1e-6)
    assert np.all(error > 0) and np.all(flux > 0)


def test_snr_column_is_median_flux_over_error(tiny_dataset):
    ds = SpectraSet(tiny_dataset)
    flux, error = ds.read()
    np.testing.assert_allclose(ds.params["snr"], np.median(flux / error, axis=1), rtol=1e-5)
    np.testing.assert_allclose(ds.snr(2.0), ds.params["snr"] / 2.0)
    assert 2.0 < ds.params["snr"].min() and ds.params["snr"].max() < 40.0


def test_rows_are_the_grid_at_the_params_with_the_exposure_model(tiny_dataset, tiny_instrument_grid):
    """Each row is the (cubic) interpolated grid spectrum at its parameters, normalised by its mean, and
    its error is the exposure model's sigma for the row's magnitude and seeing, same normalisation."""
    ds = SpectraSet(tiny_dataset)
    flux, error = ds.read(0, 20)
    p = ds.params.iloc[:20]
    grid = read_grid(tiny_instrument_grid)
    model = GridInterpolator(grid)(p[list(PARAMS)].to_numpy())
    norm = model.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(flux, model / norm, rtol=1e-5)
    sigma = ExposureModel(grid.wave, exposures=12, throughput=2.2).sigma(model, p["mag"].to_numpy(), p["seeing"].to_numpy())
    np.testing.assert_allclose(error, sigma / norm, rtol=1e-5)


def test_fainter_stars_have_lower_snr(tiny_dataset):
    p = SpectraSet(tiny_dataset).params
    assert np.corrcoef(p["mag"], np.log(p["snr"]))[0, 1] < -0.8


# -- determinism ----------------------------------------------------------------------------------
def test_same_seed_gives_identical_arrays(tiny_instrument_grid, tmp_path):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    for path, seed in ((a, 11), (b, 11), (c, 12)):
        simulate_dataset(tiny_instrument_grid, path, 50, TINY_RANGES, seed=seed, noise=DEFAULT_NOISE, chunk_size=16)
    fa, ea = arrays(a)
    fb, eb = arrays(b)
    fc, _ = arrays(c)
    assert fa.tobytes() == fb.tobytes() and ea.tobytes() == eb.tobytes()
    pd.testing.assert_frame_equal(pd.read_hdf(a, key=PARAMS_KEY), pd.read_hdf(b, key=PARAMS_KEY))
    assert not np.array_equal(fa, fc)
    assert not np.array_equal(pd.read_hdf(a, key=PARAMS_KEY)["log_g"], pd.read_hdf(c, key=PARAMS_KEY)["log_g"])
    assert listing(tmp_path) == ["a.h5", "b.h5", "c.h5"]   # no side files left


def test_rows_spanning_several_chunks(tiny_instrument_grid, tmp_path):
    """n not a multiple of chunk_size: every row written, chunks get distinct draws."""
    path = tmp_path / "d.h5"
    simulate_dataset(tiny_instrument_grid, path, 37, TINY_RANGES, seed=1, noise=DEFAULT_NOISE, chunk_size=10)
    ds = SpectraSet(path)
    assert ds.n == 37 and list(ds.params.index) == list(range(37))
    flux, _ = ds.read()
    assert np.all(flux.mean(axis=1) > 0.99)   # no unwritten (zero) rows
    assert len(np.unique(ds.params["log_g"])) == 37


def test_fixed_noise_independent_of_chunking(tiny_dataset):
    ds = SpectraSet(tiny_dataset)
    whole, _ = ds.noisy(0, 100, 1.0, seed=42)
    part, _ = ds.noisy(50, 100, 1.0, seed=42)
    np.testing.assert_array_equal(whole[50:], part)
    again, _ = ds.noisy(0, 100, 1.0, seed=42)
    np.testing.assert_array_equal(whole, again)
    other, _ = ds.noisy(0, 100, 1.0, seed=43)
    assert not np.allclose(whole, other)


def test_fixed_noise_across_noise_blocks(tiny_dataset, monkeypatch):
    """Reading in any chunking gives the same noise where reads straddle the noise blocks."""
    monkeypatch.setattr(dsmod, "NOISE_BLOCK", 16)
    ds = SpectraSet(tiny_dataset)
    whole, _ = ds.noisy(0, 200, 1.0, seed=3)
    pieces = np.vstack([ds.noisy(a, min(a + 23, 200), 1.0, seed=3)[0] for a in range(0, 200, 23)])
    np.testing.assert_array_equal(whole, pieces)
    X, _ = ds.load_noisy(1.0, seed=3, dtype=float)
    np.testing.assert_array_equal(X, whole)


def test_training_noise_is_fresh_per_draw(tiny_dataset):
    ds = SpectraSet(tiny_dataset)
    rng = np.random.default_rng(0)
    a, _ = ds.noisy(0, 10, 1.0, rng=rng)
    b, _ = ds.noisy(0, 10, 1.0, rng=rng)
    assert not np.allclose(a, b)


def test_draw_params_fixed_range_is_constant():
    rng = np.random.default_rng(0)
    theta = draw_params(rng, 100, {"T_eff": [4000, 5000], "log_g": [1, 5], "M_H": [0.1, 0.1], "a_M": [0, 0]})
    assert theta.shape == (100, 4)
    assert np.all(theta[:, 2] == 0.1) and np.all(theta[:, 3] == 0.0)
    assert theta[:, 0].min() >= 4000 and theta[:, 0].max() <= 5000


def test_grid_with_holes_draws_only_covered_points(tmp_path):
    """The cubic stencil spans 4 nodes per axis: a missing corner node (6000 K, log g 5, M_H 0.5)
    removes the points whose stencil reaches it -- T_eff > 5000, log g > 3, M_H > 0 (2 M_H nodes:
    linear there) -- and no others."""
    axes = {"T_eff": [4000.0, 4500.0, 5000.0, 5500.0, 6000.0], "log_g": [1.0, 2.0, 3.0, 4.0, 5.0],
            "M_H": [0.0, 0.5], "a_M": [0.0]}
    grid = make_fake_grid(tmp_path / "g.h5", axes=axes, n_pixels=256, holes=[(4, 4, 1, 0)])
    out = tmp_path / "d.h5"
    ranges = {"T_eff": [4000, 6000], "log_g": [1, 5], "M_H": [0, 0.5], "a_M": [0, 0]}
    simulate_dataset(grid, out, 600, ranges, seed=2, noise=DEFAULT_NOISE, chunk_size=100)
    p = SpectraSet(out).params
    hole_cell = (p["T_eff"] > 5000) & (p["log_g"] > 3) & (p["M_H"] > 0)
    assert not hole_cell.any()
    assert len(p) == 600
    assert ((p["T_eff"] > 5000) & (p["log_g"] < 3) & (p["M_H"] > 0)).sum() > 30   # the rest is drawn


# -- files written by other tools (the original study's pfsspec files) ----------------------------
def write_pfsspec(path, n=6, n_pix=4096, fmt="table", columns=COLUMNS, wave_len=None, flux=None, error=None,
                  n_params=None, skip=()):
    rng = np.random.default_rng(0)
    wave = pixel_wave(n_pixels=wave_len or n_pix)
    flux = 1 + 0.1 * rng.standard_normal((n, n_pix)) if flux is None else flux
    error = np.full((n, n_pix), 0.1) if error is None else error
    with h5py.File(path, "w") as h5:
        if WAVE not in skip:
            h5.create_dataset(WAVE, data=wave)
        if FLUX not in skip:
            h5.create_dataset(FLUX, data=flux.astype(np.float32))
        if ERROR not in skip:
            h5.create_dataset(ERROR, data=error.astype(np.float32))
    if PARAMS_KEY not in skip:
        m = n if n_params is None else n_params
        df = pd.DataFrame({c: rng.uniform(1, 5, m) for c in columns})
        df["extra"] = np.arange(m)   # extra columns are allowed
        df.index = np.arange(100, 100 + m)  # any index: reset on reading
        df.to_hdf(path, key=PARAMS_KEY, mode="a", format=fmt)
    return path


@pytest.mark.parametrize("fmt", ["table", "fixed"])
def test_reads_file_written_by_h5py_and_pandas(tmp_path, fmt):
    path = write_pfsspec(tmp_path / "orig.h5", fmt=fmt)
    ds = SpectraSet(path)
    assert ds.n == 6 and ds.wave.shape == (4096,)
    assert list(ds.params.index) == list(range(6))
    assert "extra" in ds.params.columns
    flux, error = ds.read()
    assert flux.dtype == np.float64 and flux.shape == (6, 4096)
    np.testing.assert_allclose(error, 0.1, rtol=1e-6)
    noisy, _ = ds.noisy(0, 6, 1.0, seed=0)
    assert noisy.shape == (6, 4096)
    np.testing.assert_array_equal(ds.logg, pd.read_hdf(path, key=PARAMS_KEY)["log_g"].to_numpy())


def test_snr_computed_from_arrays_when_column_absent(tmp_path):
    flux = np.full((4, 64), 2.0)
    error = np.array([[0.5], [0.25], [0.1], [1.0]]) * np.ones((4, 64))
    path = write_pfsspec(tmp_path / "orig.h5", n=4, n_pix=64, flux=flux, error=error, columns=["T_eff", "log_g", "M_H"])
    np.testing.assert_allclose(SpectraSet(path).snr(1.0), [4.0, 8.0, 20.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(SpectraSet(path).snr(2.0), [2.0, 4.0, 10.0, 1.0], rtol=1e-6)


# -- bad input: one InputError naming the file/key ------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.h5.*not found"):
        SpectraSet(tmp_path / "nope.h5")


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(InputError, match="text.h5"):
        SpectraSet(path)


@pytest.mark.parametrize("key", [WAVE, FLUX, ERROR, PARAMS_KEY])
def test_missing_key(tmp_path, key):
    path = write_pfsspec(tmp_path / "orig.h5", skip=(key,))
    with pytest.raises(InputError, match=f"orig.h5.*{key}"):
        SpectraSet(path)


def test_params_lacking_columns(tmp_path):
    path = write_pfsspec(tmp_path / "orig.h5", columns=["T_eff", "M_H"])
    with pytest.raises(InputError, match="orig.h5.*log_g"):
        SpectraSet(path)


def test_wrong_wavelength_length(tmp_path):
    path = write_pfsspec(tmp_path / "orig.h5", wave_len=4000)
    with pytest.raises(InputError, match="orig.h5.*4096 pixels.*4000"):
        SpectraSet(path)


def test_flux_and_error_shapes_differ(tmp_path):
    path = write_pfsspec(tmp_path / "orig.h5", error=np.full((5, 4096), 0.1))
    with pytest.raises(InputError, match="orig.h5.*equal shape"):
        SpectraSet(path)


def test_params_row_count_mismatch(tmp_path):
    path = write_pfsspec(tmp_path / "orig.h5", n_params=5)
    with pytest.raises(InputError, match="orig.h5.*5 rows.*6"):
        SpectraSet(path)


def test_nan_flux(tmp_path):
    flux = np.ones((6, 4096))
    flux[3, 17] = np.nan
    ds = SpectraSet(write_pfsspec(tmp_path / "orig.h5", flux=flux))
    with pytest.raises(InputError, match="orig.h5.*NaN"):
        ds.read()
    with pytest.raises(InputError, match="orig.h5"):
        ds.load_noisy(1.0, seed=0)
    ds.read(0, 3)  # clean rows stay readable


@pytest.mark.parametrize("bad", [-0.1, 0.0, np.nan])
def test_bad_error(tmp_path, bad):
    error = np.full((6, 4096), 0.1)
    error[2, 5] = bad
    ds = SpectraSet(write_pfsspec(tmp_path / "orig.h5", error=error))
    with pytest.raises(InputError, match="orig.h5.*error values"):
        ds.noisy(0, 6, 1.0, seed=0)


def simulate_fails(grid, tmp_path, ranges=TINY_RANGES, match=None, n=20):
    """simulate_dataset raises one InputError and leaves nothing new in the output folder."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError, match=match):
        simulate_dataset(grid, out_dir / "d.h5", n, ranges, seed=1, noise=DEFAULT_NOISE, chunk_size=8)
    assert listing(out_dir) == []


def test_simulate_missing_grid(tmp_path):
    simulate_fails(tmp_path / "nogrid.h5", tmp_path, match="nogrid.h5.*not found")


@pytest.mark.parametrize("param,rng", [("T_eff", [3000.0, 5000.0]), ("log_g", [1.0, 5.5]), ("M_H", [-1.0, 0.0]),
                                       ("a_M", [0.1, 0.1]), ("log_g", [4.0, 2.0])])
def test_simulate_range_outside_grid(tiny_instrument_grid, tmp_path, param, rng):
    simulate_fails(tiny_instrument_grid, tmp_path, ranges={**TINY_RANGES, param: rng}, match=f"params.{param}")


def test_simulate_raw_grid_rejected(tmp_path):
    raw = make_fake_grid(tmp_path / "raw.h5", axes={"T_eff": [4000.0, 5000.0], "log_g": [1.0, 5.0],
                                                   "M_H": [-0.25, 0.75], "a_M": [0.0]},
                         kind="raw", resolution=20000.0, n_pixels=64)
    simulate_fails(raw, tmp_path, ranges={"T_eff": [4000, 5000], "log_g": [1, 5], "M_H": [0, 0], "a_M": [0, 0]},
                   match="raw.h5.*instrument")


def test_simulate_too_many_holes_leaves_no_output(tmp_path):
    """Failing midway (every draw needs a missing node) removes the temporary and side files."""
    axes = {"T_eff": [4000.0, 4500.0], "log_g": [1.0, 2.0], "M_H": [0.0, 0.5], "a_M": [0.0]}
    grid = make_fake_grid(tmp_path / "g.h5", axes=axes, n_pixels=64, holes=[(1, 1, 1, 0)])
    ranges = {"T_eff": [4000, 4500], "log_g": [1, 2], "M_H": [0, 0.5], "a_M": [0, 0]}
    simulate_fails(grid, tmp_path, ranges=ranges, match="holes")


def test_simulate_failure_keeps_existing_output(tiny_instrument_grid, tmp_path):
    """A failed regeneration leaves the previous file untouched (atomic)."""
    out = tmp_path / "d.h5"
    simulate_dataset(tiny_instrument_grid, out, 10, TINY_RANGES, seed=1, noise=DEFAULT_NOISE)
    before = out.read_bytes()
    with pytest.raises(InputError):
        simulate_dataset(tiny_instrument_grid, out, 10, {**TINY_RANGES, "T_eff": [3000, 4000]}, seed=2,
                         noise=DEFAULT_NOISE)
    assert out.read_bytes() == before and listing(tmp_path) == ["d.h5"]


# -- messages name the offending rows (absolute row numbers in the file) ------------------------
def test_bad_flux_message_names_the_rows(tmp_path):
    flux = np.ones((12, 64))
    for i in (2, 5, 7, 8, 9, 11):
        flux[i, 3] = np.nan if i % 2 else np.inf
    ds = SpectraSet(write_pfsspec(tmp_path / "orig.h5", n=12, n_pix=64, flux=flux))
    with pytest.raises(InputError) as e:
        ds.read()
    msg = str(e.value)
    assert "orig.h5" in msg and "flux rows 2, 5, 7, 8, 9 and 1 more" in msg and "NaN or infinite" in msg
    assert "0-12" not in msg
    with pytest.raises(InputError, match=r"flux rows 5, 7, 8, 9, 11 contain"):
        ds.read(4, 12)   # row numbers are the file's, not the chunk's
    with pytest.raises(InputError, match=r"flux row 11 contains"):
        ds.read(10, 12)


def test_bad_error_message_names_the_rows(tmp_path):
    error = np.full((10, 64), 0.1)
    error[3, 1], error[3, 2], error[8, 0] = 0.0, -1.0, np.nan
    ds = SpectraSet(write_pfsspec(tmp_path / "orig.h5", n=10, n_pix=64, error=error))
    with pytest.raises(InputError) as e:
        ds.noisy(0, 10, 1.0, seed=0)
    msg = str(e.value)
    assert "orig.h5" in msg and "error rows 3, 8" in msg and "3 error values" in msg
    assert "0-10" not in msg
    with pytest.raises(InputError, match=r"error row 8\b.*1 error value"):
        ds.read(5, 10)
    ds.read(4, 8)   # clean rows stay readable


def test_unreadable_rows_are_named(tmp_path):
    """A corrupt compressed chunk of the flux: the message names the rows it holds, not the whole read."""
    path = write_pfsspec(tmp_path / "orig.h5", n=12, n_pix=64)
    with h5py.File(path, "a") as h5:
        data = h5[FLUX][:]
        del h5[FLUX]
        h5.create_dataset(FLUX, data=data, chunks=(2, 64), compression="gzip")
    with h5py.File(path, "r") as h5:
        info = h5[FLUX].id.get_chunk_info_by_coord((4, 0))   # rows 4-5
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    ds = SpectraSet(path)
    with pytest.raises(InputError) as e:
        ds.read(0, 12)
    msg = str(e.value)
    assert "orig.h5" in msg and "cannot read rows 4-5 of flux/error" in msg and "0-12" not in msg
    ds.read(6, 12)


# -- the snr column of an external data set is checked against the project's definition -------------
def _set_snr(path, snr):
    df = pd.read_hdf(path, key=PARAMS_KEY)
    df["snr"] = snr
    df.to_hdf(path, key=PARAMS_KEY, mode="a", format="table")


def test_check_snr_warns_when_the_column_disagrees(tmp_path, caplog):
    flux = np.full((8, 64), 2.0)
    flux[:, ::2] = 4.0   # median over pixels of flux / error = 30
    error = np.full((8, 64), 0.1)
    path = write_pfsspec(tmp_path / "orig.h5", n=8, n_pix=64, flux=flux, error=error)
    stored = np.full(8, 30.0)
    stored[1], stored[3], stored[6] = 7.5, 45.0, 30.9   # 75 % and 50 % off; 3 % is within 5 %
    _set_snr(path, stored)
    ds = SpectraSet(path)
    with caplog.at_level("WARNING", logger="pfslogg.data.dataset"):
        snr = ds.check_snr(chunk_size=3)
    np.testing.assert_allclose(snr, 30.0, rtol=1e-6)
    assert ds.snr_column_disagrees == 2
    warn = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warn) == 1
    text = warn[0].getMessage()
    assert "orig.h5" in text and "2 of 8 rows" in text and "row 1" in text
    np.testing.assert_allclose(ds.snr(2.0), 15.0, rtol=1e-6)   # from now on the recomputed values
    summary = dsmod.summarize_dataset(SpectraSet(path), "test", check_snr=True)
    assert summary["snr_column_disagrees"] == 2
    assert summary["snr_median"] == pytest.approx(30.0) and summary["snr_min"] == pytest.approx(30.0)


def test_check_snr_agrees_on_our_own_data_set(tiny_dataset, caplog):
    ds = SpectraSet(tiny_dataset)
    with caplog.at_level("WARNING", logger="pfslogg.data.dataset"):
        snr = ds.check_snr()
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert ds.snr_column_disagrees == 0
    np.testing.assert_allclose(snr, ds.params["snr"], rtol=1e-5)


def test_describe_dataset_reports_the_project_snr(tmp_path, monkeypatch):
    import json
    import sys

    from pfslogg.cli import main

    flux = np.full((6, 64), 2.0)
    path = write_pfsspec(tmp_path / "orig.h5", n=6, n_pix=64, flux=flux, error=np.full((6, 64), 0.2))
    _set_snr(path, [10.0, 10.0, 10.0, 99.0, 10.0, 10.0])
    out = tmp_path / "summary.json"
    monkeypatch.setattr(sys, "argv", ["pfslogg"])
    assert main(["describe-dataset", "--input", str(path), "--split", "test", "--summary", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["snr_column_disagrees"] == 1
    assert metrics["snr_max"] == pytest.approx(10.0)
