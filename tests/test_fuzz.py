"""Bad input, fuzzed: every reader of outside files answers a truncated, mis-shaped, NaN-filled or
wrong-typed input with one InputError naming the file (or config key), never a trace from deep
inside h5py, pandas, astropy or NumPy, and never a partial output.

Each property starts from a VALID small file in the exact format (the writers of test_bosz.py and
test_dataset.py, or small local ones) and mutates it: bytes truncated, flipped, inserted or deleted
at hypothesis-chosen offsets; numbers replaced by NaN/inf/text; columns dropped or added; rows
dropped, duplicated or swapped; datasets of the wrong dtype or shape, missing keys, groups where
datasets belong. The assertion is always the same: the call either succeeds and returns
well-formed output (finite arrays of consistent shapes), or raises InputError whose one-line
message names the file or key. Examples are derandomized, so CI sees the same cases every run.
"""

import bz2
import contextlib
import gzip
import math
import os
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pfslogg import PARAMS
from pfslogg.data.bosz import (
    bosz2017_filename,
    bosz2017_path,
    bosz2024_filename,
    bosz2024_path,
    build_bosz_grid,
    parse_bosz2017_filename,
    parse_bosz2024_filename,
    read_bosz2017,
    read_bosz2024,
    read_bosz2024_wave,
)
from pfslogg.config import load_config
from pfslogg.data.dataset import SpectraSet
from pfslogg.errors import InputError
from pfslogg.data.gridio import read_grid

from test_bosz import _spectrum, _window17, write_2017_ascii, write_2017_fits, write_2024

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"

FLUX, ERROR, WAVE, PARAMS_KEY = ("dataset/arrays/flux/value", "dataset/arrays/error/value",
                                 "spectrumdataset/wave", "dataset/params")
COLUMNS = ["T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "redshift", "snr"]
R17 = 5000


# PFSLOGG_FUZZ_SCALE=k runs k times the examples with fresh random draws (a deeper local search);
# the default, 1, is the fixed, derandomized set CI runs.
FUZZ_SCALE = int(os.environ.get("PFSLOGG_FUZZ_SCALE", "1"))


def fuzz(n):
    """Settings of every property: n derandomized examples, no deadline (files are written)."""
    return settings(max_examples=n * FUZZ_SCALE, deadline=None, derandomize=FUZZ_SCALE == 1, database=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@contextlib.contextmanager
def example_dir(tmp_path):
    """A fresh folder per hypothesis example (tmp_path is shared by all examples of a test)."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        yield Path(d)


def outcome(fn, *names):
    """fn() -> its result, or None when it raised an InputError whose one-line message names one of
    ``names`` (file names, paths or keys). Anything else propagates and fails the property."""
    try:
        out = fn()
    except InputError as e:
        msg = str(e)
        assert any(str(n) in msg for n in names), f"message names none of {names}: {msg}"
        rest = msg
        for n in names:  # a name is quoted verbatim, newlines and all; the rest must be one line
            rest = rest.replace(str(n), "")
        assert "\n" not in rest.strip(), f"not one line: {msg!r}"
        event("InputError: " + " ".join(msg.rsplit(": ", 1)[-1].split()[:4]))  # --hypothesis-show-statistics
        return None
    event("accepted")
    return out


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# ----------------------------------------------------------------------------------------------
# mutations
# ----------------------------------------------------------------------------------------------

BYTE_EDITS = st.lists(
    st.tuples(st.sampled_from(["truncate", "flip", "insert", "delete", "overwrite"]),
              st.integers(0, 2**31), st.binary(min_size=1, max_size=8)),
    min_size=1, max_size=3,
)


def apply_bytes(data, edits):
    """Truncate / flip / insert / delete / overwrite bytes at offsets taken modulo the length."""
    b = bytearray(data)
    for op, pos, blob in edits:
        n = len(b)
        k = pos % (n + 1)
        if op == "truncate":
            del b[k:]
        elif op == "flip" and n:
            b[pos % n] ^= blob[0] or 0x01
        elif op == "insert":
            b[k:k] = blob
        elif op == "delete":
            del b[k:k + len(blob)]
        elif op == "overwrite":
            b[k:k + len(blob)] = blob
    return bytes(b)


BAD_TOKENS = ["nan", "NaN", "-nan", "inf", "-Infinity", "1e999", "-1e999", "1e300", "-1e300", "3.5e38", "0", "-1",
              "1e-320", "abc", "0x1F", "1,5", "1.0.0", "--", "+", "None", "1j", "\x00", "\u00e9", "#", "'1'",
              "1_000", "\u0663", "1e", ".", "7000.0"]
TOKENS = st.one_of(st.sampled_from(BAD_TOKENS), st.floats().map(repr), st.integers(-10**6, 10**6).map(str))
TABLE_EDITS = st.lists(
    st.tuples(st.sampled_from(["cell", "cell", "cell", "drop_col", "add_col", "keep_rows", "drop_row", "dup_row",
                               "swap_rows", "ragged", "token_line", "blank", "shift_col"]),
              st.integers(0, 10**6), st.integers(0, 10**6), TOKENS),
    min_size=1, max_size=4,
)


def apply_table(rows, edits):
    """Edit a whitespace table (list of rows of string cells): replace cells, drop/add columns, drop,
    duplicate or swap rows, make rows ragged, insert stray lines, shift a column's values."""
    rows = [list(r) for r in rows]
    for op, i, j, tok in edits:
        n = len(rows)
        if op == "cell" and n and rows[i % n]:
            r = rows[i % n]
            r[j % len(r)] = tok
        elif op == "drop_col":
            for r in rows:
                if r:
                    del r[j % len(r)]
        elif op == "add_col":
            for r in rows:
                r.insert(j % (len(r) + 1), tok)
        elif op == "keep_rows":
            rows = rows[: i % (n + 1)]
        elif op == "drop_row" and n:
            del rows[i % n]
        elif op == "dup_row" and n:
            rows.insert(i % n, list(rows[i % n]))
        elif op == "swap_rows" and n:
            a, b = i % n, j % n
            rows[a], rows[b] = rows[b], rows[a]
        elif op == "ragged" and n and rows[i % n]:
            del rows[i % n][j % len(rows[i % n])]
        elif op == "token_line":
            rows.insert(i % (n + 1), [tok])
        elif op == "blank":
            rows.insert(i % (n + 1), [])
        elif op == "shift_col":
            for r in rows:
                if r:
                    c = j % len(r)
                    with contextlib.suppress(ValueError):
                        r[c] = repr(float(r[c]) + (i % 7 - 3) * 0.01)
    return rows


def table_text(rows):
    return "".join(" ".join(r) + "\n" for r in rows)


def check_spectrum(out):
    """A reader's (wave, flux, cont): 1-D float64, one length, finite, wavelengths positive, increasing."""
    wave, flux, cont = out
    for a in out:
        assert isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype == np.float64
        assert np.all(np.isfinite(a))
    assert len(wave) == len(flux) == len(cont) >= 1
    assert wave[0] > 0 and np.all(np.diff(wave) > 0)


# ----------------------------------------------------------------------------------------------
# file names
# ----------------------------------------------------------------------------------------------

NAME17 = bosz2017_filename(3500, 2.5, -0.25, 0.25, 0.0, R17)
NAME24 = bosz2024_filename(5000, 4.5, -0.5, 0.25, 0.0, 2, 5000, "mp")


def near(name):
    """Valid names with characters replaced/inserted/deleted, digit runs lengthened."""
    def edit(args):
        ops, = args
        s = list(name)
        for op, pos, ch in ops:
            k = pos % (len(s) + 1)
            if op == "replace" and s:
                s[pos % len(s)] = ch
            elif op == "insert":
                s.insert(k, ch)
            elif op == "delete" and s:
                del s[pos % len(s)]
            elif op == "digits":
                s.insert(k, "9" * (1 + pos % 5000))
        return "".join(s)
    chars = st.sampled_from(list("0123456789+-._mpacotgvbrs\u0663 /\x00"))
    return st.tuples(st.lists(st.tuples(st.sampled_from(["replace", "insert", "delete", "digits"]),
                                        st.integers(0, 10**5), chars), min_size=1, max_size=3)).map(edit)


@fuzz(100)
@given(name=st.one_of(st.text(max_size=80), near(NAME17), near(NAME24), st.binary(max_size=20),
                      st.integers(), st.none()))
@example(name=NAME17.replace("t3500", "t" + "9" * 5000))  # float(): inf
@example(name=NAME24.replace("t5000", "t" + "9" * 5000))
@example(name=NAME17.replace("b5000", "b" + "9" * 5000))  # int(): beyond the 4300-digit limit
@example(name=NAME17.replace("t3500", "t\u0663\u0665\u0660\u0660"))  # Arabic-Indic digits
def test_parse_filenames_fuzzed(name):
    for parse, keys in ((parse_bosz2017_filename, "resolution"), (parse_bosz2024_filename, "kind")):
        info = outcome(lambda: parse(name), str(name))
        if info is not None:
            assert keys in info
            for p in PARAMS:
                assert isinstance(info[p], float) and math.isfinite(info[p])
            r = info["resolution"]
            assert r == "orig" or (isinstance(r, int) and r >= 0)
    # the valid names still parse
    assert parse_bosz2017_filename(NAME17)["T_eff"] == 3500.0
    assert parse_bosz2024_filename(NAME24)["M_H"] == -0.5


# ----------------------------------------------------------------------------------------------
# BOSZ 2017 ASCII and FITS
# ----------------------------------------------------------------------------------------------

def _rows17():
    w = _window17()
    f, c = _spectrum(w, 3500, 2.5, -0.25, 0.25)
    return [("%.3f %.6e %.6e" % r).split() for r in zip(w, f, c)]


ROWS17 = _rows17()


@fuzz(80)
@given(edits=TABLE_EDITS)
def test_read_2017_ascii_table_fuzzed(tmp_path, edits):
    with example_dir(tmp_path) as d:
        p = d / NAME17
        p.write_bytes(bz2.compress(table_text(apply_table(ROWS17, edits)).encode("utf-8")))
        out = outcome(lambda: read_bosz2017(p), NAME17)
        if out is not None:
            check_spectrum(out)


@fuzz(60)
@given(edits=BYTE_EDITS, compressed=st.booleans())
def test_read_2017_ascii_bytes_fuzzed(tmp_path, edits, compressed):
    """Bytes mutated in the bzip2 stream, or in the text before compression."""
    text = table_text(ROWS17).encode()
    raw = apply_bytes(bz2.compress(text), edits) if compressed else bz2.compress(apply_bytes(text, edits))
    with example_dir(tmp_path) as d:
        p = d / NAME17
        p.write_bytes(raw)
        out = outcome(lambda: read_bosz2017(p), NAME17)
        if out is not None:
            check_spectrum(out)


FITS_NAME = bosz2017_filename(3500, 2.5, -0.25, 0.25, 0.0, R17, ".fits")
FITS_COLS = ("Wavelength", "SpecificIntensity", "Continuum")


@st.composite
def fits_variants(draw):
    return {
        "layout": draw(st.sampled_from(["table"] * 8 + ["primary_only", "image_at_1", "ascii_table", "table_at_2"])),
        "names": draw(st.lists(st.sampled_from(["keep", "keep", "keep", "drop", "upper", "rename", "extra"]),
                               min_size=3, max_size=3)),
        "formats": draw(st.lists(st.sampled_from(["ok"] * 12 + ["D", "E", "J", "K", "I", "A16", "2D", "L", "PD()"]),
                                 min_size=3, max_size=3)),
        "rows": draw(st.sampled_from([None] * 4 + [0, 1, 2, 5])),
        "values": draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**4),
                                          st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, 1e300, 7000.0])),
                                max_size=3)),
        "wave_shift": draw(st.sampled_from([0.0] * 4 + [0.002, -0.5, 1000.0, -7000.0])),
    }


def _fits_column(name, fmt, a):
    if fmt == "ok":
        fmt = "D" if name == 0 else "E"
    if fmt in ("J", "K", "I"):
        a = np.nan_to_num(a, nan=0, posinf=0, neginf=0)
        a = np.clip(np.round(a), -2**15, 2**15 - 1) if fmt == "I" else np.clip(np.round(a), -2**31, 2**31 - 1)
        a = a.astype({"J": np.int32, "K": np.int64, "I": np.int16}[fmt])
    elif fmt == "A16":
        a = np.array(["%.6g" % x for x in a])
    elif fmt == "2D":
        a = np.column_stack([a, a])
    elif fmt == "L":
        a = a > np.nanmedian(a) if len(a) else np.zeros(0, bool)
    elif fmt == "PD()":  # variable-length arrays: one 1-element array per row
        va = np.empty(len(a), dtype=object)
        for i, x in enumerate(a):
            va[i] = np.array([x])
        a = va
    return fmt, a


def write_fits_variant(path, v):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the writer's own cast warnings (1e300 into an E column)
        return _write_fits_variant(path, v)


def _write_fits_variant(path, v):
    w = np.round(_window17(), 3) + v["wave_shift"]
    f, c = _spectrum(_window17(), 3500, 2.5, -0.25, 0.25)
    cols = [w.copy(), f.astype(np.float64), c.astype(np.float64)]
    if v["rows"] is not None:
        cols = [a[: v["rows"]] for a in cols]
    for which, row, val in v["values"]:
        if len(cols[which]):
            cols[which][row % len(cols[which])] = val
    names = []
    for k, (op, name) in enumerate(zip(v["names"], FITS_COLS)):
        names.append({"keep": name, "drop": None, "upper": name.upper(), "rename": f"COL{k}", "extra": name}[op])
    fcols = []
    for k, (name, fmt, a) in enumerate(zip(names, v["formats"], cols)):
        if name is None:
            continue
        fmt, a = _fits_column(k, fmt, a)
        fcols.append(fits.Column(name=name, format=fmt, array=a))
    if "extra" in v["names"]:
        fcols.append(fits.Column(name="Extra", format="E", array=np.ones(len(cols[0]))))
    layout = v["layout"]
    if layout == "primary_only":
        hdus = [fits.PrimaryHDU(np.zeros(3))]
    elif layout == "image_at_1":
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.vstack([cols[0], cols[1]]))]
    elif layout == "ascii_table":
        acols = [fits.Column(name=c.name, format="E15.7", array=np.asarray(a, float))
                 for c, a in zip(fcols, cols) if c.format in ("D", "E")]
        hdus = [fits.PrimaryHDU(), fits.TableHDU.from_columns(acols) if acols else fits.ImageHDU(np.zeros(2))]
    elif layout == "table_at_2":
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.zeros(2)), fits.BinTableHDU.from_columns(fcols)]
    else:
        hdus = [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(fcols)]
    fits.HDUList(hdus).writeto(path)
    return path


@fuzz(60)
@given(v=fits_variants())
def test_read_2017_fits_structure_fuzzed(tmp_path, v):
    with example_dir(tmp_path) as d:
        p = write_fits_variant(d / FITS_NAME, v)
        out = outcome(lambda: read_bosz2017(p), FITS_NAME)
        if out is not None:
            check_spectrum(out)


def _good_fits_bytes():
    with tempfile.TemporaryDirectory() as d:
        w = _window17()
        f, c = _spectrum(w, 3500, 2.5, -0.25, 0.25)
        return write_2017_fits(Path(d) / FITS_NAME, w, f, c).read_bytes()


GOOD_FITS = _good_fits_bytes()


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")  # astropy on mangled headers
@fuzz(80)
@given(edits=BYTE_EDITS, header=st.booleans())
def test_read_2017_fits_bytes_fuzzed(tmp_path, edits, header):
    """Bytes mutated anywhere, or (half the cases) inside the 2 header blocks of HDU 1."""
    if header:  # offsets inside the binary table's header: cards such as NAXIS2, TFORMn, TTYPEn
        edits = [(op, 2880 + pos % 2880, blob) for op, pos, blob in edits]
    with example_dir(tmp_path) as d:
        p = d / FITS_NAME
        p.write_bytes(apply_bytes(GOOD_FITS, edits))
        out = outcome(lambda: read_bosz2017(p), FITS_NAME)
        if out is not None:
            check_spectrum(out)


# ----------------------------------------------------------------------------------------------
# BOSZ 2024: resampled spectrum + wavelength file, and original-resolution files
# ----------------------------------------------------------------------------------------------

WAVE24 = np.round(np.geomspace(7000.0, 7060.0, 60), 4)
WAVE24_ROWS = [["%.4f" % x] for x in WAVE24]
H24 = _spectrum(WAVE24, 5000, 4.5, -0.5, 0.25)
ROWS24 = [("%.6e %.6e" % r).split() for r in zip(*H24)]
ROWS24_ORIG = [("%.4f %.6e %.6e" % r).split() for r in zip(WAVE24, *H24)]
WAVE_NAME = "bosz2024_wave_r5000.txt"


@fuzz(80)
@given(target=st.sampled_from(["spectrum", "wave", "orig"]), edits=TABLE_EDITS, gz_edits=st.none() | BYTE_EDITS)
def test_read_2024_fuzzed(tmp_path, target, edits, gz_edits):
    """Tables edited (then, sometimes, gzip bytes mutated) in the spectrum, its wavelength file, or a
    noresam (3-column) file."""
    with example_dir(tmp_path) as d:
        wf = d / WAVE_NAME
        wrows = apply_table(WAVE24_ROWS, edits) if target == "wave" else WAVE24_ROWS
        wf.write_text(table_text(wrows), encoding="utf-8")
        name = NAME24 if target != "orig" else bosz2024_filename(5000, 4.5, -0.5, 0.25, 0.0, 2, "orig", "mp")
        rows = {"spectrum": apply_table(ROWS24, edits), "wave": ROWS24, "orig": apply_table(ROWS24_ORIG, edits)}[target]
        raw = gzip.compress(table_text(rows).encode("utf-8"))
        if gz_edits is not None and target != "wave":
            raw = apply_bytes(raw, gz_edits)
        p = d / name
        p.write_bytes(raw)
        out = outcome(lambda: read_bosz2024(p, wave_file=wf if target != "orig" else None), name, WAVE_NAME)
        if out is not None:
            check_spectrum(out)
        if target == "wave":
            w = outcome(lambda: read_bosz2024_wave(wf), WAVE_NAME)
            if w is not None:
                assert w.ndim == 1 and len(w) >= 2 and np.all(np.isfinite(w)) and np.all(np.diff(w) > 0)


# ----------------------------------------------------------------------------------------------
# building the grid: a bad file fails the build and leaves nothing in the output folder
# ----------------------------------------------------------------------------------------------

NODES = [(3500.0, 4.5, 0.5, 0.5), (3750.0, 4.5, 0.5, 0.5)]
BUILD_RANGES = {"T_eff": (3500, 3750), "log_g": (4.5, 4.5), "M_H": (0.5, 0.5), "a_M": (0.5, 0.5)}


def _tree(root, kind):
    """A tiny BOSZ copy of two nodes; returns the files (the last one is the one to mutate)."""
    files = []
    if kind in ("2017_ascii", "2017_fits"):
        w = _window17()
        ext = ".fits" if kind == "2017_fits" else ".asc.bz2"
        for node in NODES:
            p = bosz2017_path(root, *node, 0.0, R17, ext)
            (write_2017_fits if ext == ".fits" else write_2017_ascii)(p, w, *_spectrum(w, *node))
            files.append(p)
    else:
        resdir = root / "bosz2024" / "r5000"
        resdir.mkdir(parents=True)
        for node in NODES:
            files.append(write_2024(bosz2024_path(root, *node, 0.0, 2, 5000, "mp"), *_spectrum(WAVE24, *node)))
        wf = resdir / WAVE_NAME
        wf.write_text(table_text(WAVE24_ROWS))
        files.append(wf)
    return files


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
@pytest.mark.parametrize("kind", ["2017_ascii", "2017_fits", "2024"])
@fuzz(25)
@given(byte_edits=st.none() | BYTE_EDITS, edits=TABLE_EDITS, fv=fits_variants(), spectrum=st.booleans())
def test_build_grid_fuzzed(tmp_path, kind, byte_edits, edits, fv, spectrum):
    """One file of a two-node BOSZ copy mutated (bytes, table or FITS structure; for BOSZ 2024 the
    wavelength file): the build succeeds with a finite grid, or fails naming a file of the copy and
    leaves the output folder empty (no grid, no temporary file)."""
    with example_dir(tmp_path) as d:
        root, out_dir = d / "bosz", d / "out"
        out_dir.mkdir()
        files = _tree(root, kind)
        bad = files[-2] if kind == "2024" and spectrum else files[-1]  # 2024: a spectrum or the wave file
        if byte_edits is not None:
            bad.write_bytes(apply_bytes(bad.read_bytes(), byte_edits))
        elif kind == "2017_ascii":
            bad.write_bytes(bz2.compress(table_text(apply_table(ROWS17, edits)).encode()))
        elif kind == "2017_fits":
            bad.unlink()
            write_fits_variant(bad, fv)
        elif spectrum:
            bad.write_bytes(gzip.compress(table_text(apply_table(ROWS24, edits)).encode("utf-8")))
        else:
            bad.write_text(table_text(apply_table(WAVE24_ROWS, edits)), encoding="utf-8")
        out = out_dir / "grid.h5"
        names = [f.name for f in files] + [str(root)]
        res = outcome(lambda: build_bosz_grid(out, "bosz" + kind[:4], root, BUILD_RANGES, resolution=5000,
                                              wave_range=(7010.0, 7050.0), margin=0), *names)
        if res is None:
            assert listing(out_dir) == [], "a failed build left output behind"
        else:
            assert listing(out_dir) == ["grid.h5"]
            g = read_grid(out)
            assert g.mask.all() and np.all(np.isfinite(g.flux)) and np.all(np.isfinite(g.cont))


@pytest.mark.parametrize("value", ["1e300", "-3.5e38"])
def test_build_grid_rejects_flux_beyond_float32(tmp_path, value):
    """A finite float64 flux too large for the float32 grid used to be stored as inf."""
    files = _tree(tmp_path / "bosz", "2017_ascii")
    rows = [list(r) for r in ROWS17]
    rows[len(rows) // 2][1] = value
    files[-1].write_bytes(bz2.compress(table_text(rows).encode()))
    out_dir = tmp_path / "out"
    with pytest.raises(InputError, match=files[-1].name + ".*float32"):
        build_bosz_grid(out_dir / "grid.h5", "bosz2017", tmp_path / "bosz", BUILD_RANGES, resolution=5000,
                        wave_range=(7010.0, 7050.0), margin=0)
    assert listing(out_dir) == []


# ----------------------------------------------------------------------------------------------
# pfsspec data sets
# ----------------------------------------------------------------------------------------------

ARRAY_BAD = ["missing", "group", "scalar", "strings", "vlen", "int", "bool", "nan", "inf", "neg", "zero", "1d", "3d",
             "rows+1", "pix+1", "complex", "compound", "float16", "empty"]
WAVE_BAD = ["missing", "group", "scalar", "strings", "int", "nan", "2d", "short", "long", "empty", "complex"]
PARAMS_BAD = ["fixed", "missing", "plain_dataset", "group", "series", "drop_log_g", "drop_T_eff", "rows-1", "rows+1",
              "str_log_g", "nan_log_g", "inf_T_eff", "bool_M_H", "int_cols", "nan_snr", "str_snr", "obj_M_H"]


@st.composite
def dataset_specs(draw):
    keys = draw(st.lists(st.sampled_from(["wave", "flux", "error", "params"]), min_size=0, max_size=2, unique=True))
    spec = {"n": draw(st.sampled_from([3, 3, 3, 1, 0])), "n_pix": draw(st.sampled_from([16, 16, 1, 2])),
            "wave": "ok", "flux": "ok", "error": "ok", "params": "ok"}
    for k in keys:
        spec[k] = draw(st.sampled_from({"wave": WAVE_BAD, "params": PARAMS_BAD}.get(k, ARRAY_BAD)))
    spec["at"] = draw(st.integers(0, 10**4))
    return spec


def _array_variant(variant, base, at):
    n, m = base.shape
    a = base.copy()
    flat = a.reshape(-1)
    if variant in ("nan", "inf", "neg", "zero") and flat.size:
        flat[at % flat.size] = {"nan": np.nan, "inf": np.inf, "neg": -0.5, "zero": 0.0}[variant]
        return a
    return {
        "ok": a, "nan": a, "inf": a, "neg": a, "zero": a,
        "scalar": np.float64(1.0),
        "strings": np.full(a.shape, b"1.0", dtype="S8"),
        "int": np.round(a * 10).astype(np.int32),
        "bool": a > 0,
        "1d": a.reshape(-1),
        "3d": a[..., None],
        "rows+1": np.vstack([a, a[:1] if n else np.ones((1, m))]),
        "pix+1": np.hstack([a, np.ones((n, 1))]),
        "complex": a.astype(np.complex64),
        "compound": np.zeros(a.shape, dtype=[("v", "f4"), ("i", "i4")]),
        "float16": a.astype(np.float16),
        "empty": np.zeros((0, m), np.float32),
    }[variant]


def write_dataset_variant(path, spec):
    n, m, at = spec["n"], spec["n_pix"], spec["at"]
    rng = np.random.default_rng(0)
    wave = np.linspace(7100.0, 8850.0, m)
    flux = (1 + 0.1 * rng.standard_normal((n, m))).astype(np.float32)
    error = np.full((n, m), 0.1, np.float32)
    with h5py.File(path, "w") as h5:
        for key, name, base in ((WAVE, "wave", None), (FLUX, "flux", flux), (ERROR, "error", error)):
            v = spec[name]
            if v == "missing":
                continue
            if v == "group":
                h5.create_group(key)
                continue
            if v == "vlen":
                h5.create_dataset(key, data=np.array(["x"] * max(n, 1), dtype=object), dtype=h5py.string_dtype())
                continue
            if name == "wave":
                data = {"ok": wave, "scalar": np.float64(7000.0), "strings": np.full(m, b"7000", "S8"),
                        "int": np.arange(7100, 7100 + m), "nan": np.where(np.arange(m) == at % m, np.nan, wave),
                        "2d": wave[None, :], "short": wave[:-1], "long": np.append(wave, 9000.0),
                        "empty": np.zeros(0), "complex": wave.astype(complex)}[v]
            else:
                data = _array_variant(v, base, at)
            h5.create_dataset(key, data=data)
        pv = spec["params"]
        if pv == "plain_dataset":
            h5.create_dataset(PARAMS_KEY, data=np.ones((n, 8)))
        elif pv == "group":
            h5.create_group(PARAMS_KEY)
    if pv in ("missing", "plain_dataset", "group"):
        return path
    rows = n + {"rows-1": -1, "rows+1": 1}.get(pv, 0)
    rows = max(rows, 0)
    df = pd.DataFrame({c: rng.uniform(1, 5, rows) for c in COLUMNS})
    df.index = np.arange(50, 50 + rows)
    if pv == "series":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "writing an empty Series is a no-op"
            df["log_g"].to_hdf(path, key=PARAMS_KEY, mode="a", format="table")
        return path
    if pv.startswith("drop_"):
        df = df.drop(columns=pv[5:])
    elif pv == "str_log_g":
        df["log_g"] = [f"g{i}" for i in range(rows)]
    elif pv == "nan_log_g" and rows:
        df.iloc[at % rows, df.columns.get_loc("log_g")] = np.nan
    elif pv == "inf_T_eff" and rows:
        df.iloc[at % rows, df.columns.get_loc("T_eff")] = np.inf
    elif pv == "bool_M_H":
        df["M_H"] = df["M_H"] > 3
    elif pv == "int_cols":
        df = df.round().astype(np.int64)
    elif pv == "nan_snr":
        df["snr"] = np.nan
    elif pv == "str_snr":
        df["snr"] = "high"
    elif pv == "obj_M_H":
        df["M_H"] = [str(x) for x in df["M_H"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "writing an empty DataFrame is a no-op" (the rows-1 of n=1 case)
        df.to_hdf(path, key=PARAMS_KEY, mode="a", format="fixed" if pv == "fixed" else "table", index=False)
    return path


def check_spectra_set(path):
    """Open, read and add noise: each step either well-formed or one InputError naming the file."""
    ds = outcome(lambda: SpectraSet(path), path.name)
    if ds is None:
        return
    assert ds.n >= 1 and ds.wave.ndim == 1 and len(ds.wave) >= 1 and np.all(np.isfinite(ds.wave))
    assert len(ds.params) == ds.n and list(ds.params.index) == list(range(ds.n))
    logg = ds.logg
    assert logg.shape == (ds.n,) and np.all(np.isfinite(logg))
    got = outcome(lambda: ds.read(), path.name)
    if got is not None:
        flux, error = got
        assert flux.shape == error.shape == (ds.n, len(ds.wave))
        assert np.all(np.isfinite(flux)) and np.all(np.isfinite(error)) and np.all(error > 0)
    for kw in ({"seed": 0}, {"rng": np.random.default_rng(1)}):
        got = outcome(lambda: ds.noisy(0, ds.n, 1.0, **kw), path.name)
        if got is not None:
            assert got[0].shape == (ds.n, len(ds.wave)) and np.all(np.isfinite(got[0]))
    snr = outcome(lambda: ds.snr(), path.name)
    if snr is not None:
        assert snr.shape == (ds.n,)


@fuzz(100)
@given(spec=dataset_specs())
def test_spectra_set_structure_fuzzed(tmp_path, spec):
    with example_dir(tmp_path) as d:
        check_spectra_set(write_dataset_variant(d / "dataset.h5", spec))


def _good_dataset_bytes():
    with tempfile.TemporaryDirectory() as d:
        p = write_dataset_variant(Path(d) / "dataset.h5", {"n": 3, "n_pix": 16, "wave": "ok", "flux": "ok",
                                                           "error": "ok", "params": "ok", "at": 0})
        return p.read_bytes()


GOOD_DATASET = _good_dataset_bytes()


@fuzz(80)
@given(edits=BYTE_EDITS)
def test_spectra_set_bytes_fuzzed(tmp_path, edits):
    with example_dir(tmp_path) as d:
        p = d / "dataset.h5"
        p.write_bytes(apply_bytes(GOOD_DATASET, edits))
        check_spectra_set(p)


# ----------------------------------------------------------------------------------------------
# grid files
# ----------------------------------------------------------------------------------------------

GRID_AXES = {"T_eff": [4000.0, 4500.0], "log_g": [1.0, 3.0], "M_H": [0.0], "a_M": [0.0]}
GRID_BAD = {
    "wave": ["missing", "group", "scalar", "strings", "int", "nan", "inf", "2d", "empty", "decreasing", "duplicate",
             "complex"],
    "axis": ["missing", "group", "scalar", "strings", "nan", "2d", "empty", "decreasing", "int"],
    "flux": ["missing", "group", "scalar", "strings", "int", "nan_at_mask", "nan_off_mask", "inf", "shape", "4d",
             "bool", "complex", "compound"],
    "mask": ["missing", "group", "scalar", "strings", "int01", "int2", "float", "shape", "all_false"],
    "attrs": ["bytes_utf8", "bytes_bad", "array", "vlen"],
}


@st.composite
def grid_specs(draw):
    spec = {"wave": "ok", "axis": "ok", "flux": "ok", "cont": "ok", "mask": "ok", "attrs": "ok"}
    for k in draw(st.lists(st.sampled_from(["wave", "axis", "flux", "cont", "mask", "attrs"]), max_size=2, unique=True)):
        spec[k] = draw(st.sampled_from(GRID_BAD["flux" if k == "cont" else k]))
    spec["param"] = draw(st.sampled_from(PARAMS))
    spec["at"] = draw(st.integers(0, 10**4))
    return spec


def write_grid_variant(path, spec):
    nw, at = 8, spec["at"]
    wave = np.linspace(7100.0, 7200.0, nw)
    shape = tuple(len(GRID_AXES[p]) for p in PARAMS)
    mask = np.ones(shape, bool)
    mask[-1, -1, 0, 0] = False
    base = np.ones(shape + (nw,), np.float32)
    with h5py.File(path, "w") as h5, np.errstate(all="ignore"):  # the variants table casts NaN to int eagerly
        def put(key, v, data):
            if v == "missing":
                return
            if v == "group":
                h5.create_group(key)
                return
            h5.create_dataset(key, data=data)

        v = spec["wave"]
        put("wave", v, {"ok": wave, "scalar": np.float64(7000.0), "strings": np.full(nw, b"7000", "S8"),
                        "int": np.arange(7100, 7100 + nw), "nan": np.where(np.arange(nw) == at % nw, np.nan, wave),
                        "inf": np.append(wave[:-1], np.inf), "2d": wave[None, :], "empty": np.zeros(0),
                        "decreasing": wave[::-1], "duplicate": np.sort(np.append(wave[:-1], wave[0])),
                        "complex": wave.astype(complex)}.get(v))
        for p in PARAMS:
            a = np.asarray(GRID_AXES[p])
            v = spec["axis"] if p == spec["param"] else "ok"
            put(f"axes/{p}", v, {"ok": a, "scalar": np.float64(a[0]), "strings": a.astype("S8"),
                                 "nan": np.where(np.arange(len(a)) == at % len(a), np.nan, a), "2d": a[None, :],
                                 "empty": np.zeros(0), "decreasing": a[::-1], "int": a.astype(np.int64)}.get(v))
        for key in ("flux", "cont"):
            v = spec[key]
            a = base.copy() if v != "int" else base.astype(np.int32)
            if v == "nan_at_mask":
                a[0, 0, 0, 0, at % nw] = np.nan
            elif v == "nan_off_mask":
                a[-1, -1, 0, 0, :] = np.nan
            elif v == "inf":
                a[0, 1, 0, 0, at % nw] = np.inf
            put(key, v, {"scalar": np.float32(1.0), "strings": np.full(a.shape, b"1", "S2"), "int": a.astype(np.int32),
                         "shape": np.ones(shape + (nw + 1,), np.float32), "4d": a[..., 0], "bool": a > 0,
                         "complex": a.astype(np.complex64),
                         "compound": np.zeros(a.shape, dtype=[("v", "f4"), ("i", "i4")])}.get(v, a))
        v = spec["mask"]
        put("mask", v, {"ok": mask, "scalar": np.True_, "strings": np.full(shape, b"T", "S1"),
                        "int01": mask.astype(np.uint8), "int2": mask.astype(np.int32) * 2,
                        "float": mask.astype(float), "shape": mask[..., 0],
                        "all_false": np.zeros(shape, bool)}.get(v))
        h5.attrs["source"] = "fake"
        h5.attrs["kind"] = "instrument"
        h5.attrs["resolution"] = 5000.0
        v = spec["attrs"]
        if v == "bytes_utf8":
            h5.attrs["note"] = np.bytes_("caf\xc3\xa9".encode("latin-1"))
        elif v == "bytes_bad":
            h5.attrs["note"] = np.bytes_(b"\xff\xfe bad")
        elif v == "array":
            h5.attrs["note"] = np.arange(3)
        elif v == "vlen":
            h5.attrs.create("note", data="text", dtype=h5py.string_dtype())
    return path


def check_grid(path):
    """read_grid loaded and lazily: either a well-formed grid or one InputError naming the file."""
    g = outcome(lambda: read_grid(path), path.name)
    if g is not None:
        assert g.wave.ndim == 1 and len(g.wave) >= 1 and np.all(np.isfinite(g.wave)) and np.all(np.diff(g.wave) > 0)
        for p in PARAMS:
            a = g.axes[p]
            assert a.ndim == 1 and len(a) >= 1 and np.all(np.isfinite(a)) and np.all(np.diff(a) > 0)
        assert g.mask.dtype == bool and g.mask.shape == g.shape
        for a in (g.flux, g.cont):
            assert a.shape == g.shape + (len(g.wave),)
            assert np.all(np.isfinite(a[g.mask]))
        for v in g.attrs.values():
            assert not isinstance(v, bytes)
    lazy = outcome(lambda: read_grid(path, load=False), path.name)
    if lazy is not None:
        try:
            assert lazy.flux.shape == lazy.shape + (len(lazy.wave),)
            assert lazy.mask.dtype == bool
        finally:
            lazy.attrs["_h5"].close()
    outcome(lambda: read_grid(path, fields=("flux",)), path.name)


@fuzz(100)
@given(spec=grid_specs())
def test_read_grid_structure_fuzzed(tmp_path, spec):
    with example_dir(tmp_path) as d:
        check_grid(write_grid_variant(d / "grid.h5", spec))


def _good_grid_bytes():
    with tempfile.TemporaryDirectory() as d:
        p = write_grid_variant(Path(d) / "grid.h5", {"wave": "ok", "axis": "ok", "flux": "ok", "cont": "ok",
                                                     "mask": "ok", "attrs": "ok", "param": "T_eff", "at": 0})
        return p.read_bytes()


GOOD_GRID = _good_grid_bytes()


@fuzz(80)
@given(edits=BYTE_EDITS)
def test_read_grid_bytes_fuzzed(tmp_path, edits):
    with example_dir(tmp_path) as d:
        p = d / "grid.h5"
        p.write_bytes(apply_bytes(GOOD_GRID, edits))
        check_grid(p)


# --- corruptions the byte fuzzers found that crashed the interpreter inside HDF5 (SIGSEGV): each is
# run in a child process, so that a regression fails this test instead of killing the whole session

def _read_in_child(kind, path):
    """Open ``path`` with SpectraSet or read_grid in a forked child; its InputError message (or '')."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report and leave without running any cleanup of the parent's
        code = 0
        try:
            (SpectraSet if kind == "dataset" else read_grid)(path)
            msg = ""
        except InputError as e:
            msg = f"InputError: {e}"
        except BaseException as e:  # noqa: BLE001 -- reported to the parent
            msg, code = f"{type(e).__name__}: {e}", 3
        os.write(w, msg.encode()[:60000])
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        out = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"reader crashed (status {status}): {out}"
    return out


def test_params_attribute_name_not_utf8_is_an_input_error(tmp_path):
    """A mangled attribute name in the pandas table's group ('pandas_type' -> b'p\\x9cndas_type') made
    PyTables' HDF5 segfault while listing the attributes."""
    raw = bytearray(GOOD_DATASET)
    k = raw.find(b"pandas_type")
    assert k > 0
    raw[k + 1] = 0x9C
    p = tmp_path / "dataset.h5"
    p.write_bytes(bytes(raw))
    out = _read_in_child("dataset", p)
    assert out.startswith("InputError:") and "dataset.h5" in out and "UTF-8" in out, out


def test_grid_attribute_with_mangled_type_is_an_input_error(tmp_path):
    """The class bits of the variable-length string attribute 'kind' mangled (string -> a VLEN
    sequence of nothing sensible) made HDF5 segfault on reading the attribute."""
    raw = bytearray(GOOD_GRID)
    k = raw.find(b"kind\x00\x00\x00\x00\x19\x01")
    if k < 0:
        pytest.skip("this HDF5 lays the attribute out differently")
    raw[k + 9] = 44
    p = tmp_path / "grid.h5"
    p.write_bytes(bytes(raw))
    out = _read_in_child("grid", p)
    assert out.startswith("InputError:") and "grid.h5" in out and "'kind'" in out, out


# ----------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------

with open(DEFAULT_CONFIG) as _fh:
    DEFAULT = yaml.safe_load(_fh)

INTEGER_KEYS = ["seed", "grid.margin_nodes", "instrument.n_pixels", "noise.exposures", "datasets.chunk_size",
                "datasets.train.n", "datasets.val.n", "datasets.test.n", "evaluation.bootstrap", "ceiling.n_spectra"]


def _paths(node, prefix=()):
    """Every key path of the config, into dicts and lists."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(_paths(v, prefix + (k,)))
    return out


PATHS = _paths(DEFAULT)
SPECIAL = [0, -1, 1, 0.5, -0.5, 2, 10**9, -10**9, 10**30, 1e-300, float("nan"), float("inf"), float("-inf"), "",
           "synth", "bosz2017", "bosz2024", "ridge", "mlp", "/data/bosz", [], {}, [1.0], [1.0, 2.0], [2.0, 1.0],
           [1.0, 2.0, 3.0], [float("nan"), 1.0], [1.0, float("inf")], [True, False], ["a", "b"], {"n": 5}, {"n": 0},
           {"n": 2.0}, {"n": 1e30}, {"n": float("nan")}, {"foo": 1}, None, True, 3000.0, 20000.0, 13000.0]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
                    st.sampled_from(SPECIAL))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=6)
CONFIG_EDITS = st.lists(
    st.tuples(st.sampled_from(["set", "set", "set", "delete", "add", "scale"]), st.sampled_from(PATHS), VALUES,
              st.text(min_size=1, max_size=6), st.sampled_from([-1.0, 0.0, 0.5, 2.0, 1e6, -1e6, float("nan"),
                                                               float("inf")])),
    min_size=1, max_size=3,
)


def apply_config(cfg, edits):
    import copy

    cfg = copy.deepcopy(cfg)
    for op, path, value, new_key, factor in edits:
        parent = cfg
        for k in path[:-1]:
            try:
                parent = parent[k]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if not isinstance(parent, (dict, list)):
            continue
        last = path[-1]
        try:
            cur = parent[last]
        except (KeyError, IndexError, TypeError):
            continue
        if op == "set":
            parent[last] = value
        elif op == "delete":
            del parent[last]
        elif op == "add":
            if isinstance(cur, dict):
                cur[new_key] = value
            elif isinstance(cur, list):
                cur.append(value)
            else:
                parent[last] = value
        elif op == "scale":
            if isinstance(cur, bool) or not isinstance(cur, (int, float, list)):
                parent[last] = value
            elif isinstance(cur, list):
                parent[last] = [x * factor if isinstance(x, (int, float)) else x for x in cur[::-1]]
            else:
                parent[last] = cur * factor
    return cfg


def _walk(node, seen=()):
    if id(node) in seen:
        raise AssertionError("a recursive structure came out of load_config")
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v, seen + (id(node),))
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, seen + (id(node),))
    else:
        yield node


def check_config_ok(cfg):
    assert isinstance(cfg, dict)
    for v in _walk(cfg):
        if isinstance(v, float):
            assert math.isfinite(v), cfg
    for key in INTEGER_KEYS:
        node = cfg
        for k in key.split("."):
            node = node[k]
        assert isinstance(node, int) and not isinstance(node, bool), (key, node)
    for p in PARAMS:
        lo, hi = cfg["params"][p]
        assert lo <= hi


@fuzz(100)
@given(edits=CONFIG_EDITS)
@example(edits=[("set", ("grid",), {"\x1e": None}, "0", -1.0)])   # a record separator in a key: still one line
def test_load_config_values_fuzzed(tmp_path, edits):
    """Values substituted at key paths of the default config: wrong types, out-of-range or non-finite
    numbers, lists of the wrong length, unknown keys, nulls, deleted keys, scaled and reversed ranges."""
    cfg = apply_config(DEFAULT, edits)
    with example_dir(tmp_path) as d:
        path = d / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        try:
            out = load_config(path)
        except InputError as e:
            msg = str(e)
            assert str(path) in msg, msg
            sections = {str(p[0]) for _, p, *_ in edits}
            assert "(top level)" in msg or any(s in msg for s in sections), (edits, msg)
            # one line per violation, each naming the file and the key path
            assert all(line.startswith(f"{path}: ") for line in msg.strip().splitlines()), msg
            event("InputError: " + " ".join(msg.split(": ", 1)[-1].split()[:3]))
        else:
            event("accepted")
            check_config_ok(out)


YAML_BITS = ["seed: 1\n", "grid:\n  source: synth\n", "params: {T_eff: [4000, 5000]}\n", "- 1\n", "[", "]", "{", ": ",
             "&a ", "*a ", "!!python/object:os.system {}\n", "!!binary Zm9v\n", "\t", "'", '"', "? ", "---\n",
             "...\n", "%YAML 1.1\n", "noise: {mag: [.nan, .inf]}\n", "seed: 1.0e+400\n", "\x00", "\ufeff"]


def _first_line(load, path):
    """load(path), with a several-violation config error cut to its first line: validate_config
    reports one line per violation, each starting with the file (checked here), and outcome()
    checks the first as it checks any one-line message."""
    try:
        return load(path)
    except InputError as e:
        lines = str(e).strip().splitlines()
        assert all(line.startswith(f"{path}: ") for line in lines), str(e)
        raise InputError(lines[0]) from None


@fuzz(80)
@given(raw=st.one_of(st.text(max_size=100).map(str.encode), st.binary(max_size=100),
                     st.lists(st.sampled_from(YAML_BITS), max_size=6).map(lambda x: "".join(x).encode())))
@example(raw=b"[" * 20000)
@example(raw=b"a: " + b"[" * 20000)
@example(raw=b"seed: &x [*x]\n")
@example(raw=b"estimators: {ridge: &x {a: *x}, lightgbm: {}, template: {}}\n")
@example(raw=b"\xff\xfe\x00s\x00")
@example(raw=b"seed: 1\n\xe9\n")
@example(raw=b"datasets: {train: {n: 20000.0}}\n")
@example(raw=b"seed: 7.0\nnoise: {exposures: 3.0}\n")
@example(raw=b"noise: {exp_time: .inf}\n")
def test_load_config_text_fuzzed(tmp_path, raw):
    """Random text and bytes that are not YAML, not a mapping, or hostile YAML (deep nesting, recursive
    aliases, Python tags, non-UTF-8 bytes)."""
    with example_dir(tmp_path) as d:
        path = d / "config.yaml"
        path.write_bytes(raw)
        cfg = outcome(lambda: _first_line(load_config, path), str(path))
        if cfg is not None:
            check_config_ok(cfg)


def test_config_path_is_a_folder(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path)):
        load_config(tmp_path)
