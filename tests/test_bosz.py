"""Readers of real BOSZ 2017 / 2024 files and the grid built from them, on small files written in
the exact archive formats."""

import bz2
import gzip
import logging
import math
import re

import numpy as np
import pytest
from astropy.io import fits

from pfslogg import PARAMS
from pfslogg.data.bosz import (
    BOSZ_AXES,
    bosz2017_filename,
    bosz2017_path,
    bosz2017_wave,
    bosz2024_atmospheres,
    bosz2024_filename,
    bosz2024_path,
    build_bosz_grid,
    parse_bosz2017_filename,
    parse_bosz2024_filename,
    read_bosz2024_wave,
    read_bosz_spectrum,
)
from pfslogg.errors import InputError
from pfslogg.data.gridio import read_grid

R17 = 5000
R24 = 5000
FILE_WINDOW = (7000.0, 7060.0)  # what the small test files hold
WAVE_RANGE = (7010.0, 7050.0)  # what the grid keeps

# In-range 2x2x2x1 nodes at the edges of the BOSZ axes, so margin=1 adds few nodes:
# T_eff 3500..3750 (+4000), log_g 4.5..5.0 (+4.0), M_H 0.5..0.75 (+0.25), a_M 0.5 (+0.25).
RANGES = {"T_eff": (3500, 3750), "log_g": (4.5, 5.0), "M_H": (0.5, 0.75), "a_M": (0.5, 0.5)}


def _inside(v):
    return all(RANGES[p][0] <= v[p] <= RANGES[p][1] for p in PARAMS)


def _spectrum(wave, teff, logg, mh, am):
    """Distinct, smooth, deterministic flux/continuum for each node."""
    cont = 1e6 * (teff / 5000.0) ** 4 * (wave / 7000.0) ** -2 * (1 + 0.1 * logg)
    line = 1 - (0.3 + 0.1 * mh + 0.05 * am) * np.exp(-0.5 * ((wave - 7030.0) / 2.0) ** 2)
    return cont * line, cont


def _window17(resolution=R17, window=FILE_WINDOW):
    w = bosz2017_wave(resolution)
    return w[(w >= window[0]) & (w <= window[1])]


def write_2017_ascii(path, wave, flux, cont, fmt="%.3f %.6e %.6e"):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((fmt % row) + "\n" for row in zip(wave, flux, cont))
    path.write_bytes(bz2.compress(text.encode()))
    return path


def write_2017_fits(path, wave, flux, cont, names=("Wavelength", "SpecificIntensity", "Continuum")):
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [
        fits.Column(name=names[0], format="D", array=np.round(wave, 3)),
        fits.Column(name=names[1], format="E", array=flux),
        fits.Column(name=names[2], format="E", array=cont),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def write_2024(path, flux_h, cont_h, fmt="%.6e %.6e"):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((fmt % row) + "\n" for row in zip(flux_h, cont_h))
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return path


def _margin_nodes():
    """All nodes of the margin=1 grid for RANGES."""
    from pfslogg.data.gridio import axis_nodes

    axes = {p: axis_nodes(*RANGES[p], BOSZ_AXES[p][2], BOSZ_AXES[p][0], BOSZ_AXES[p][1], 1) for p in PARAMS}
    return axes


def _nodes(axes):
    for idx in np.ndindex(*(len(axes[p]) for p in PARAMS)):
        yield idx, {p: float(axes[p][i]) for p, i in zip(PARAMS, idx)}


@pytest.fixture
def tree2017(tmp_path):
    """A BOSZ 2017 copy: all in-range nodes in ascii/, one margin node, one in-range node also in fits/."""
    root = tmp_path / "bosz"
    wave = _window17()
    written = {}
    axes = _margin_nodes()
    extra = {"T_eff": 4000.0, "log_g": 4.5, "M_H": 0.5, "a_M": 0.5}  # a margin node that exists
    for idx, v in _nodes(axes):
        if not (_inside(v) or v == extra):
            continue
        flux, cont = _spectrum(wave, v["T_eff"], v["log_g"], v["M_H"], v["a_M"])
        p = bosz2017_path(root, v["T_eff"], v["log_g"], v["M_H"], v["a_M"], 0.0, R17, ".asc.bz2")
        write_2017_ascii(p, wave, flux, cont)
        written[idx] = (flux, cont)
    # a FITS copy of one node with different values: FITS must be preferred
    v = {"T_eff": 3500.0, "log_g": 4.5, "M_H": 0.5, "a_M": 0.5}
    flux, cont = _spectrum(wave, v["T_eff"], v["log_g"], v["M_H"], v["a_M"])
    p = bosz2017_path(root, v["T_eff"], v["log_g"], v["M_H"], v["a_M"], 0.0, R17, ".fits")
    write_2017_fits(p, wave, 2 * flux, 2 * cont)
    written[(0, 1, 1, 1)] = (2 * flux, 2 * cont)  # T_eff axis starts at 3500 (clipped margin)
    return root, axes, written


# ----------------------------------------------------------------------------------------------
# file names and wavelength rule
# ----------------------------------------------------------------------------------------------


def test_bosz2017_filename_examples_and_roundtrip():
    assert bosz2017_filename(3500, 2.5, -0.25, -0.25, -0.25, 5000) == "amm03cm03om03t3500g25v20modrt0b5000rs.asc.bz2"
    assert bosz2017_filename(4000, 3.0, -0.5, 0.0, 0.0, 5000, ".fits") == "amm05cp00op00t4000g30v20modrt0b5000rs.fits"
    assert bosz2017_filename(5000, 0.0, 0.75, 0.5, 0.0) == "amp08cp00op05t5000g00v20modrt0b50000rs.asc.bz2"
    assert bosz2017_filename(5000, 4.5, -1.25, 0.25, 0.0).startswith("amm13cp00op03t5000g45")
    assert "mp00" in bosz2017_filename(5000, 4.5, -0.0, 0.0)  # no 'm00' for negative zero

    for mh in np.arange(-2.5, 0.76, 0.25):
        for am in (-0.25, 0.0, 0.25, 0.5):
            for cm in (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5):
                name = bosz2017_filename(6250, 3.5, mh, am, cm, 20000, ".fits")
                p = parse_bosz2017_filename(name)
                assert (p["M_H"], p["a_M"], p["C_M"]) == (round(mh, 2), am, cm), name
                assert (p["T_eff"], p["log_g"], p["resolution"], p["ext"]) == (6250, 3.5, 20000, ".fits")
                assert p["vturb"] == 2.0


def test_bosz2017_path_levels(tmp_path):
    p = bosz2017_path(tmp_path, 3500, 2.5, -0.25, 0.25, 0.0, 5000)
    assert p == tmp_path / "ascii/insbroad_005000/metal_-0.25/carbon_+0.00/alpha_+0.25" / (
        "amm03cp00op03t3500g25v20modrt0b5000rs.asc.bz2")
    pf = bosz2017_path(tmp_path, 3500, 2.5, -0.25, 0.25, 0.0, 5000, ".fits")
    assert pf.relative_to(tmp_path).parts[:2] == ("fits", "insbroad_005000")
    ins = tmp_path / "ascii" / "insbroad_005000"
    assert bosz2017_path(ins, 3500, 2.5, -0.25, 0.25, 0.0, 5000) == p


def test_parse_bad_names():
    with pytest.raises(InputError, match="not-a-bosz.txt"):
        parse_bosz2017_filename("not-a-bosz.txt")
    with pytest.raises(InputError, match="amm03"):
        parse_bosz2024_filename("amm03cm03om03t3500g25v20modrt0b5000rs.asc.bz2")


def test_bosz2024_filename_roundtrip():
    name = bosz2024_filename(5000, 4.5, 0.0, 0.0, 0.0, 2, 50000, "mp")
    assert name == "bosz2024_mp_t5000_g+4.5_m+0.00_a+0.00_c+0.00_v2_r50000_resam.txt.gz"
    p = parse_bosz2024_filename(name)
    assert p == {"atm": "mp", "T_eff": 5000.0, "log_g": 4.5, "M_H": 0.0, "a_M": 0.0, "C_M": 0.0,
                 "vturb": 2.0, "resolution": 50000, "kind": "resam", "ext": ".txt.gz"}
    name = bosz2024_filename(3750, 1.0, -1.25, 0.25, -0.75, 4, "orig", "ms")
    assert name == "bosz2024_ms_t3750_g+1.0_m-1.25_a+0.25_c-0.75_v4_rorig_noresam.txt.gz"
    assert parse_bosz2024_filename(name)["resolution"] == "orig"
    assert bosz2024_atmospheres(4000, 2.5) == ["ms", "mp"]
    assert bosz2024_atmospheres(4000, 3.5) == ["mp"]
    assert bosz2024_atmospheres(8000, 4.0) == ["mp"]
    assert bosz2024_atmospheres(8250, 4.0) == ["ap"]


def test_bosz2024_path_levels(tmp_path):
    name = bosz2024_filename(5000, 4.5, -0.5, 0.0, 0.0, 2, 5000, "mp")
    top = bosz2024_path(tmp_path, 5000, 4.5, -0.5, 0.0, 0.0, 2, 5000)
    assert top == tmp_path / "bosz2024" / "r5000" / "m-0.50" / name
    assert bosz2024_path(tmp_path / "bosz2024", 5000, 4.5, -0.5, 0.0, 0.0, 2, 5000) == top
    assert bosz2024_path(tmp_path / "bosz2024" / "r5000", 5000, 4.5, -0.5, 0.0, 0.0, 2, 5000) == top


def test_bosz2017_wave_rule():
    ratio = 1 + 1 / 300000
    for r, step in ((5000, 30), (50000, 3), (2000, 75), (20000, 7)):
        w = bosz2017_wave(r)
        # starts at the first parent-grid point >= 100 nm, ends below 32000 nm
        assert 1000.0 <= w[0] < 1000.0 * ratio
        assert w[-1] < 320000.0 <= w[-1] * ratio**step
        # log-uniform with ratio (1 + 1/300000)**(300000 // R // 2)
        np.testing.assert_allclose(w[1:] / w[:-1], ratio**step, rtol=1e-12)
        # every point is an integer power of the parent ratio (in nm)
        k = np.log(w / 10.0) / np.log(ratio)
        np.testing.assert_allclose(k, np.round(k), atol=1e-5)
    assert np.round(bosz2017_wave(5000)[0], 3) == 1000.002
    with pytest.raises(InputError, match="resolution"):
        bosz2017_wave(4000)


# ----------------------------------------------------------------------------------------------
# single-file readers
# ----------------------------------------------------------------------------------------------


def test_read_2017_ascii_rebuilds_wavelengths_at_high_r(tmp_path):
    w = bosz2017_wave(50000)
    w = w[(w > 1000.5) & (w < 1002)]  # 0.01 A steps: 3 decimals barely resolve them
    flux, cont = np.linspace(1, 2, len(w)), np.linspace(3, 4, len(w))
    p = write_2017_ascii(tmp_path / bosz2017_filename(3500, 2.5, 0, 0, 0, 50000), w, flux, cont)
    wave, f, c = read_bosz_spectrum(p)
    np.testing.assert_array_equal(wave, w)  # the rebuilt values, not the printed ones
    assert np.max(np.abs(wave - np.round(w, 3))) > 1e-4  # the file's values really were rounded
    np.testing.assert_allclose(f, flux, rtol=1e-6)
    np.testing.assert_allclose(c, cont, rtol=1e-6)


def test_read_2017_wavelength_off_rule(tmp_path):
    w = _window17()
    flux, cont = _spectrum(w, 5000, 4.5, 0, 0)
    name = bosz2017_filename(5000, 4.5, 0, 0, 0, R17)
    p = write_2017_ascii(tmp_path / name, w + 0.002, flux, cont)
    with pytest.raises(InputError, match=name + ".*does not follow"):
        read_bosz_spectrum(p)
    # a file of another resolution under this R's name is caught the same way
    w2 = _window17(2000)
    p = write_2017_ascii(tmp_path / "x" / name, w2, *_spectrum(w2, 5000, 4.5, 0, 0))
    with pytest.raises(InputError, match=name):
        read_bosz_spectrum(p)


def test_read_2017_fits_matches_ascii(tmp_path):
    w = _window17()
    flux, cont = _spectrum(w, 5000, 4.5, 0, 0)
    pa = write_2017_ascii(tmp_path / bosz2017_filename(5000, 4.5, 0, 0, 0, R17), w, flux, cont)
    pf = write_2017_fits(tmp_path / bosz2017_filename(5000, 4.5, 0, 0, 0, R17, ".fits"), w, flux, cont)
    wa, fa, ca = read_bosz_spectrum(pa)
    wf, ff, cf = read_bosz_spectrum(pf)
    np.testing.assert_array_equal(wa, wf)
    np.testing.assert_allclose(ff, flux, rtol=1e-6)
    np.testing.assert_allclose(cf, cont, rtol=1e-6)
    np.testing.assert_allclose(fa, ff, rtol=2e-6)


def test_read_2024_applies_four_pi(tmp_path):
    wave = np.geomspace(7000, 7100, 50)
    d = tmp_path / "bosz2024" / "r5000"
    d.mkdir(parents=True)
    np.savetxt(d / "bosz2024_wave_r5000.txt", wave, fmt="%.4f")
    h, hc = np.linspace(1e5, 2e5, 50), np.linspace(3e5, 4e5, 50)
    p = write_2024(d / "m+0.00" / bosz2024_filename(5000, 4.5, 0, 0, 0, 2, 5000, "mp"), h, hc)
    w, f, c = read_bosz_spectrum(p)  # the wave file is found in the resolution folder
    np.testing.assert_allclose(w, np.round(wave, 4))
    np.testing.assert_allclose(f, 4 * math.pi * h, rtol=1e-6)
    np.testing.assert_allclose(c, 4 * math.pi * hc, rtol=1e-6)
    w2, f2, _ = read_bosz_spectrum(p, wave_file=d / "bosz2024_wave_r5000.txt")
    np.testing.assert_array_equal(f2, f)
    # noresam (original resolution): wavelength in the first column
    p3 = tmp_path / bosz2024_filename(5000, 4.5, 0, 0, 0, 2, "orig", "mp")
    with gzip.open(p3, "wt") as fh:
        np.savetxt(fh, np.column_stack([wave, h, hc]))
    w3, f3, c3 = read_bosz_spectrum(p3)
    np.testing.assert_allclose(w3, wave)
    np.testing.assert_allclose(c3, 4 * math.pi * hc)


def test_read_2024_without_wave_file(tmp_path):
    name = bosz2024_filename(5000, 4.5, 0, 0, 0, 2, 5000, "mp")
    p = write_2024(tmp_path / "m+0.00" / name, np.ones(5), np.ones(5))
    with pytest.raises(InputError, match=re.escape(name) + ".*bosz2024_wave_r5000.txt"):
        read_bosz_spectrum(p)


# --- malformed files: one InputError naming the file --------------------------------------------


def _bad_2017_ascii(tmp_path, text=None, raw=None):
    name = bosz2017_filename(5000, 4.5, 0, 0, 0, R17)
    p = tmp_path / name
    p.write_bytes(raw if raw is not None else bz2.compress(text.encode()))
    return p, name


def _good_2017_text():
    w = _window17()
    f, c = _spectrum(w, 5000, 4.5, 0, 0)
    return ["%.3f %.6e %.6e" % r for r in zip(w, f, c)]


@pytest.mark.parametrize(
    "case, problem",
    [
        ("two_columns", "columns"),
        ("four_columns", "4 columns, expected 3"),
        ("ragged", "different numbers of columns"),
        ("non_numeric", "non-numeric"),
        ("nan", "non-finite"),
        ("inf", "non-finite"),
        ("empty", "no data rows"),
        ("truncated", "truncated or corrupt"),
        ("not_bz2", "truncated or corrupt"),
    ],
)
def test_malformed_2017_ascii(tmp_path, case, problem):
    lines = _good_2017_text()
    if case == "two_columns":
        text = "\n".join(" ".join(line.split()[:2]) for line in lines)
    elif case == "four_columns":
        text = "\n".join(line + " 1.0" for line in lines)
    elif case == "ragged":
        lines[5] = " ".join(lines[5].split()[:2])
        text = "\n".join(lines)
    elif case == "non_numeric":
        lines[3] = lines[3].split()[0] + " abc 1.0"
        text = "\n".join(lines)
    elif case in ("nan", "inf"):
        lines[3] = lines[3].split()[0] + f" {case} 1.0"
        text = "\n".join(lines)
    elif case == "empty":
        text = ""
    if case == "truncated":
        full = bz2.compress("\n".join(lines).encode())
        p, name = _bad_2017_ascii(tmp_path, raw=full[: len(full) // 2])
    elif case == "not_bz2":
        p, name = _bad_2017_ascii(tmp_path, raw="\n".join(lines).encode())
    else:
        p, name = _bad_2017_ascii(tmp_path, text)
    with pytest.raises(InputError, match=problem) as e:
        read_bosz_spectrum(p)
    assert name in str(e.value)
    assert "\n" not in str(e.value)


def test_malformed_2017_fits(tmp_path):
    w = _window17()
    f, c = _spectrum(w, 5000, 4.5, 0, 0)
    name = bosz2017_filename(5000, 4.5, 0, 0, 0, R17, ".fits")
    p = write_2017_fits(tmp_path / "a" / name, w, f, c, names=("Wavelength", "Flux", "Continuum"))
    with pytest.raises(InputError, match=f"{name}.*SpecificIntensity"):
        read_bosz_spectrum(p)
    # no table in HDU 1
    p = tmp_path / "b" / name
    p.parent.mkdir()
    fits.HDUList([fits.PrimaryHDU(np.zeros(3))]).writeto(p)
    with pytest.raises(InputError, match=f"{name}.*HDU 1"):
        read_bosz_spectrum(p)
    # truncated
    good = write_2017_fits(tmp_path / "c" / name, w, f, c).read_bytes()
    p = tmp_path / "d" / name
    p.parent.mkdir()
    p.write_bytes(good[:-1500])
    with pytest.raises(InputError, match=f"{name}.*truncated"):
        read_bosz_spectrum(p)
    # NaN in a column
    f2 = f.copy()
    f2[7] = np.nan
    p = write_2017_fits(tmp_path / "e" / name, w, f2, c)
    with pytest.raises(InputError, match=f"{name}.*non-finite.*SpecificIntensity"):
        read_bosz_spectrum(p)


@pytest.mark.parametrize("case, problem", [
    ("short", "has 9 rows, but the wavelength file has 10"),
    ("three_columns", "3 columns, expected 2"),
    ("non_numeric", "non-numeric"),
    ("nan", "non-finite"),
    ("truncated", "truncated or corrupt"),
])
def test_malformed_2024(tmp_path, case, problem):
    d = tmp_path / "r5000"
    d.mkdir()
    wf = d / "bosz2024_wave_r5000.txt"
    np.savetxt(wf, np.geomspace(7000, 7010, 10))   # log-uniform, as BOSZ 2024 wavelengths are
    name = bosz2024_filename(5000, 4.5, 0, 0, 0, 2, 5000, "mp")
    p = d / "m+0.00" / name
    h = np.linspace(1, 2, 10)
    if case == "short":
        write_2024(p, h[:9], h[:9])
    elif case == "three_columns":
        p.parent.mkdir()
        with gzip.open(p, "wt") as fh:
            np.savetxt(fh, np.column_stack([h, h, h]))
    elif case in ("non_numeric", "nan"):
        p.parent.mkdir()
        rows = ["%.6e %.6e" % (a, a) for a in h]
        rows[2] = "1.0 x" if case == "non_numeric" else "1.0 nan"
        with gzip.open(p, "wt") as fh:
            fh.write("\n".join(rows))
    elif case == "truncated":
        write_2024(p, h, h)
        raw = p.read_bytes()
        p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=problem) as e:
        read_bosz_spectrum(p, wave_file=wf)
    assert name in str(e.value)


def test_malformed_2024_wave_file(tmp_path):
    wf = tmp_path / "bosz2024_wave_r5000.txt"
    wf.write_text("7000.0\n7001.0\n7000.5\n")
    with pytest.raises(InputError, match="bosz2024_wave_r5000.txt.*increasing"):
        read_bosz2024_wave(wf)
    wf.write_text("7000.0 1\n7001.0 2\n")
    with pytest.raises(InputError, match="bosz2024_wave_r5000.txt.*2 columns, expected 1"):
        read_bosz2024_wave(wf)


def test_unknown_file_type(tmp_path):
    p = tmp_path / "spectrum.dat"
    p.write_text("1 2 3\n")
    with pytest.raises(InputError, match="spectrum.dat.*unknown BOSZ file type"):
        read_bosz_spectrum(p)
    missing = bosz2017_filename(5000, 4, 0, 0, 0, 5000, ".fits")
    with pytest.raises(InputError, match=f"{missing}: file not found"):
        read_bosz_spectrum(tmp_path / missing)


# ----------------------------------------------------------------------------------------------
# building the grid
# ----------------------------------------------------------------------------------------------


def _check_grid(g, axes, written, wave):
    """Axes, wavelengths, mask and every written spectrum (cropped to WAVE_RANGE) read back."""
    for p in PARAMS:
        np.testing.assert_allclose(g.axes[p], axes[p])
    np.testing.assert_array_equal(g.wave, wave)
    assert g.mask.sum() == len(written)
    w = _window17()
    m = (w >= WAVE_RANGE[0]) & (w <= WAVE_RANGE[1])
    for idx, (flux, cont) in written.items():
        assert g.mask[idx], idx
        np.testing.assert_allclose(g.flux[idx], flux[m], rtol=2e-6)
        np.testing.assert_allclose(g.cont[idx], cont[m], rtol=2e-6)


def test_build_2017_grid_with_margin(tree2017, tmp_path, caplog):
    root, axes, written = tree2017
    out = tmp_path / "grid.h5"
    with caplog.at_level(logging.WARNING, logger="pfslogg.data.bosz"):
        build_bosz_grid(out, "bosz2017", root, RANGES, resolution=R17, wave_range=WAVE_RANGE, margin=1)
    assert "margin node" in caplog.text
    g = read_grid(out)
    assert g.shape == (3, 3, 3, 2)
    np.testing.assert_allclose(g.axes["T_eff"], [3500, 3750, 4000])
    np.testing.assert_allclose(g.axes["log_g"], [4.0, 4.5, 5.0])
    np.testing.assert_allclose(g.axes["M_H"], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(g.axes["a_M"], [0.25, 0.5])
    w = bosz2017_wave(R17)
    wave = w[(w >= WAVE_RANGE[0]) & (w <= WAVE_RANGE[1])]
    assert len(wave) > 40
    _check_grid(g, axes, written, wave)
    # in-range nodes (8) + the existing margin node, and nothing else
    assert g.mask[0:2, 1:3, 1:3, 1].all()
    assert g.mask[2, 1, 1, 1]
    assert g.mask.sum() == 9
    assert g.attrs["source"] == "bosz2017" and g.attrs["kind"] == "raw"
    assert int(g.attrs["resolution"]) == R17
    assert g.attrs["root"] == str(root)
    assert g.attrs["formats"] == ".asc.bz2,.fits"


def test_build_2017_root_at_insbroad_and_no_margin(tree2017, tmp_path):
    root, axes, written = tree2017
    out = tmp_path / "g.h5"
    build_bosz_grid(out, "bosz2017", root / "ascii" / "insbroad_005000", RANGES, resolution=R17,
                    wave_range=WAVE_RANGE, margin=0)
    g = read_grid(out)
    assert g.shape == (2, 2, 2, 1)
    assert g.mask.all()
    # without the fits/ tree the ASCII copy of the node is used (not the doubled FITS values)
    w = _window17()
    f, c = _spectrum(w, 3500, 4.5, 0.5, 0.5)
    m = (w >= WAVE_RANGE[0]) & (w <= WAVE_RANGE[1])
    np.testing.assert_allclose(g.flux[0, 0, 0, 0], f[m], rtol=2e-6)
    np.testing.assert_allclose(g.cont[0, 0, 0, 0], c[m], rtol=2e-6)


def test_build_missing_in_range_file(tree2017, tmp_path):
    root, axes, written = tree2017
    v = {"T_eff": 3750.0, "log_g": 5.0, "M_H": 0.75, "a_M": 0.5}
    p = bosz2017_path(root, v["T_eff"], v["log_g"], v["M_H"], v["a_M"], 0.0, R17)
    p.unlink()
    out = tmp_path / "grid.h5"
    with pytest.raises(InputError, match="inside the configured ranges") as e:
        build_bosz_grid(out, "bosz2017", root, RANGES, resolution=R17, wave_range=WAVE_RANGE, margin=1)
    assert p.name in str(e.value) and str(p) in str(e.value)
    assert "T_eff=3750, log_g=5, M_H=0.75, a_M=0.5" in str(e.value)
    assert not out.exists() and list(tmp_path.glob(".grid.h5*")) == []


@pytest.mark.parametrize("case", ["malformed", "narrow"])
def test_build_bad_file_leaves_no_output(tree2017, tmp_path, case):
    root, axes, written = tree2017
    v = {"T_eff": 3750.0, "log_g": 4.5, "M_H": 0.75, "a_M": 0.5}
    p = bosz2017_path(root, v["T_eff"], v["log_g"], v["M_H"], v["a_M"], 0.0, R17)
    if case == "malformed":
        p.write_bytes(p.read_bytes()[:-40])
        problem = "truncated"
    else:  # a file that does not cover wave_range: a different wavelength grid in the grid
        w = _window17(window=(7020.0, 7060.0))
        write_2017_ascii(p, w, *_spectrum(w, 3750, 4.5, 0.75, 0.5))
        problem = "differ from the grid"
    out = tmp_path / "grid.h5"
    with pytest.raises(InputError, match=problem) as e:
        build_bosz_grid(out, "bosz2017", root, RANGES, resolution=R17, wave_range=WAVE_RANGE, margin=1)
    assert p.name in str(e.value)
    assert not out.exists() and list(tmp_path.glob(".grid.h5*")) == []


def test_build_bad_arguments(tree2017, tmp_path):
    root, _, _ = tree2017
    out = tmp_path / "g.h5"
    with pytest.raises(InputError, match="source"):
        build_bosz_grid(out, "phoenix", root, RANGES)
    with pytest.raises(InputError, match="resolution"):
        build_bosz_grid(out, "bosz2017", root, RANGES, resolution=4000)
    with pytest.raises(InputError, match=r"ranges\.T_eff"):
        build_bosz_grid(out, "bosz2017", root, {**RANGES, "T_eff": (3000, 4000)}, resolution=R17)
    with pytest.raises(InputError, match="ranges: unknown"):
        build_bosz_grid(out, "bosz2017", root, {**RANGES, "C_M": (0, 0)}, resolution=R17)
    with pytest.raises(InputError, match="no BOSZ 2017 folder for R=2000"):
        build_bosz_grid(out, "bosz2017", root, RANGES, resolution=2000)
    with pytest.raises(InputError, match="BOSZ root folder not found"):
        build_bosz_grid(out, "bosz2017", tmp_path / "nowhere", RANGES, resolution=R17)
    with pytest.raises(InputError, match="wave_range"):
        build_bosz_grid(out, "bosz2017", root, RANGES, resolution=R17, wave_range=(500.0, 600.0), margin=0)
    assert not out.exists()


TREE24_RANGES = {"T_eff": (4000, 4250), "log_g": (2.5, 3.0), "M_H": (-0.25, 0.0), "a_M": (0.0, 0.0)}


def write_tree2024(root, wave, resolution=R24, ranges=TREE24_RANGES, wave_fmt="%.4f"):
    """BOSZ 2024 copy under ``root``: wave file (printed with ``wave_fmt``) in the resolution folder,
    the nodes at the ends of ``ranges``, ms and mp for low g. Returns (axes, written)."""
    resdir = root / "bosz2024" / f"r{resolution}"
    resdir.mkdir(parents=True)
    np.savetxt(resdir / f"bosz2024_wave_r{resolution}.txt", wave, fmt=wave_fmt)
    written = {}
    axes = {p: np.array(sorted({ranges[p][0], ranges[p][1]}), dtype=float) for p in PARAMS}
    for idx, v in _nodes(axes):
        flux, cont = _spectrum(wave, v["T_eff"], v["log_g"], v["M_H"], v["a_M"])
        atm = "mp"
        if v["log_g"] == 2.5:  # both spherical and plane-parallel present: spherical must win
            write_2024(bosz2024_path(root, v["T_eff"], v["log_g"], v["M_H"], 0, 0, 2, resolution, "mp"), flux, cont)
            flux, cont, atm = 3 * flux, 3 * cont, "ms"
        write_2024(bosz2024_path(root, v["T_eff"], v["log_g"], v["M_H"], 0, 0, 2, resolution, atm), flux, cont)
        written[idx] = (flux, cont)
    return axes, written


@pytest.fixture
def tree2024(tmp_path):
    """BOSZ 2024 copy: wave file in the resolution folder, in-range nodes, ms and mp for low g."""
    root = tmp_path / "models"
    wave = np.round(np.geomspace(FILE_WINDOW[0], FILE_WINDOW[1], 120), 4)
    axes, written = write_tree2024(root, wave)
    return root, TREE24_RANGES, axes, wave, written


@pytest.mark.parametrize("level", ["top", "bosz2024", "r5000"])
def test_build_2024_grid(tree2024, tmp_path, level):
    root, ranges, axes, wave, written = tree2024
    r = {"top": root, "bosz2024": root / "bosz2024", "r5000": root / "bosz2024" / "r5000"}[level]
    out = tmp_path / "g24.h5"
    build_bosz_grid(out, "bosz2024", r, ranges, resolution=R24, wave_range=WAVE_RANGE, margin=0)
    g = read_grid(out)
    assert g.shape == (2, 2, 2, 1) and g.mask.all()
    m = (wave >= WAVE_RANGE[0]) & (wave <= WAVE_RANGE[1])
    assert len(g.wave) == m.sum()
    np.testing.assert_allclose(g.wave, wave[m], rtol=0, atol=5e-5 * 1.001)   # regularised within print precision
    assert np.ptp(np.diff(np.log(g.wave))) < 1e-8 * np.diff(np.log(g.wave)).mean()
    for p in PARAMS:
        np.testing.assert_allclose(g.axes[p], axes[p])
    for idx, (flux, cont) in written.items():
        np.testing.assert_allclose(g.flux[idx], 4 * math.pi * flux[m], rtol=2e-6)
        np.testing.assert_allclose(g.cont[idx], 4 * math.pi * cont[m], rtol=2e-6)
    assert g.attrs["source"] == "bosz2024" and g.attrs["kind"] == "raw"
    assert g.attrs["wave_file"].endswith("r5000/bosz2024_wave_r5000.txt")


def test_build_2024_missing_lists_candidates(tree2024, tmp_path):
    root, ranges, axes, wave, written = tree2024
    for atm in ("ms", "mp"):
        bosz2024_path(root, 4250, 2.5, 0.0, 0, 0, 2, 5000, atm).unlink()
    with pytest.raises(InputError, match="inside the configured ranges") as e:
        build_bosz_grid(tmp_path / "g.h5", "bosz2024", root, ranges, resolution=R24, wave_range=WAVE_RANGE, margin=0)
    msg = str(e.value)
    assert "bosz2024_ms_t4250_g+2.5_m+0.00" in msg and "bosz2024_mp_t4250_g+2.5_m+0.00" in msg
    assert not (tmp_path / "g.h5").exists()


def test_build_2024_margin_and_bad_length(tree2024, tmp_path, caplog):
    root, ranges, axes, wave, written = tree2024
    out = tmp_path / "g.h5"
    with caplog.at_level(logging.WARNING, logger="pfslogg.data.bosz"):
        build_bosz_grid(out, "bosz2024", root, ranges, resolution=R24, wave_range=WAVE_RANGE, margin=1)
    g = read_grid(out)
    assert g.shape == (4, 4, 4, 3)
    assert g.mask.sum() == 8 and g.mask[1:3, 1:3, 1:3, 1].all()
    assert "masked out" in caplog.text
    # a resampled file one row short
    p = bosz2024_path(root, 4000, 3.0, -0.25, 0, 0, 2, 5000, "mp")
    write_2024(p, np.ones(len(wave) - 1), np.ones(len(wave) - 1))
    out.unlink()
    with pytest.raises(InputError, match=re.escape(p.name) + f".*{len(wave) - 1} rows.*{len(wave)}"):
        build_bosz_grid(out, "bosz2024", root, ranges, resolution=R24, wave_range=WAVE_RANGE, margin=1)
    assert not out.exists()


def test_build_2024_no_wave_file(tree2024, tmp_path):
    root, ranges, *_ = tree2024
    (root / "bosz2024" / "r5000" / "bosz2024_wave_r5000.txt").unlink()
    with pytest.raises(InputError, match="wavelength file not found.*bosz2024_wave_r5000.txt"):
        build_bosz_grid(tmp_path / "g.h5", "bosz2024", root, ranges, resolution=R24, margin=0)


# --- BOSZ 2024 as it comes: wavelengths printed with 4 decimals at high R --------------------------


def _wave24(resolution, lo=7050.0, hi=8900.0):
    """The log-uniform grid of two samples per resolution element (d ln lambda = 1 / 2R)."""
    n = int(np.log(hi / lo) * 2 * resolution) + 1
    return lo * np.exp(np.arange(n) / (2.0 * resolution))


def test_bosz2024_r50000_wave_printed_with_4_decimals_builds_and_convolves(tmp_path):
    """At R = 50000 four decimals leave a d ln lambda spread of ~2.7e-3 of its mean, above the
    instrument's 1e-3 log-uniformity tolerance; reading regularises the wavelengths to the log-uniform
    grid they encode (within the print precision), so the raw grid convolves."""
    from pfslogg.data.instrument import convolve_grid, log_step

    r = 50000
    exact = _wave24(r)
    printed = np.round(exact, 4)
    with pytest.raises(InputError, match="log-uniform"):
        log_step(printed)   # the values as printed
    root = tmp_path / "models"
    ranges = {"T_eff": (4000, 4000), "log_g": (2.5, 3.0), "M_H": (0.0, 0.0), "a_M": (0.0, 0.0)}
    write_tree2024(root, printed, resolution=r, ranges=ranges)
    wf = root / "bosz2024" / f"r{r}" / f"bosz2024_wave_r{r}.txt"
    w = read_bosz2024_wave(wf)
    assert len(w) == len(printed)
    assert np.max(np.abs(w - printed)) <= 5e-5 * 1.001          # within the print precision
    np.testing.assert_allclose(w, exact, rtol=0, atol=1e-4)
    d = np.diff(np.log(w))
    assert np.ptp(d) < 1e-8 * d.mean()                          # log-uniform
    raw, inst = tmp_path / "raw.h5", tmp_path / "inst.h5"
    build_bosz_grid(raw, "bosz2024", root, ranges, resolution=r, wave_range=(7060.0, 8890.0), margin=0)
    g = read_grid(raw)
    assert g.attrs["resolution"] == r and g.mask.all()
    convolve_grid(raw, inst, resolution=5000.0, wave_range=(7100.0, 8850.0), n_pixels=4096)
    gi = read_grid(inst)
    assert gi.attrs["kind"] == "instrument" and gi.flux.shape == (1, 2, 1, 1, 4096)
    assert np.all(np.isfinite(gi.flux)) and np.all(gi.flux > 0) and np.all(gi.cont > 0)


def test_bosz2024_wave_not_log_uniform_within_print_precision(tmp_path):
    """A wave file that no log-uniform grid matches to its print precision: one error naming it."""
    wf = tmp_path / "bosz2024_wave_r50000.txt"
    np.savetxt(wf, np.linspace(7050.0, 7150.0, 2000), fmt="%.4f")        # linear, not log-uniform
    with pytest.raises(InputError, match=r"bosz2024_wave_r50000.txt: .*log-uniform.*row \d+"):
        read_bosz2024_wave(wf)
    # the precision is the file's own: 6 decimals promise more than values rounded to 4 deliver
    np.savetxt(wf, np.round(_wave24(50000, 7050.0, 7100.0), 4), fmt="%.6f")
    with pytest.raises(InputError, match=r"bosz2024_wave_r50000.txt: .*log-uniform"):
        read_bosz2024_wave(wf)
    np.savetxt(wf, np.round(_wave24(50000, 7050.0, 7100.0), 6), fmt="%.6f")
    assert np.max(np.abs(read_bosz2024_wave(wf) - _wave24(50000, 7050.0, 7100.0))) < 1e-6
