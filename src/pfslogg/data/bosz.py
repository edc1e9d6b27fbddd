"""Readers of the real BOSZ synthetic-spectrum files, and the raw HDF5 grid built from them.

Two releases are supported (see REFERENCE.md):

**BOSZ 2017** (Bohlin et al. 2017, AJ 153, 234) -- ATLAS9/SYNTHE.
    ``{ascii|fits}/insbroad_{R:06d}/metal_{+x.xx}/carbon_{+x.xx}/alpha_{+x.xx}/`` holding
    ``amm03cm03om03t3500g25v20modrt0b5000rs.asc.bz2`` (or ``.fits``). ASCII: three whitespace
    separated columns wavelength (Angstrom), flux, continuum, bzip2-compressed. FITS: a binary table
    in HDU 1 with columns ``Wavelength``, ``SpecificIntensity``, ``Continuum``. The wavelengths are
    printed with three decimals, too few at high R, so the grid is rebuilt from SYNTHE's rule
    (:func:`bosz2017_wave`) and the file's column is only checked against it.

**BOSZ 2024** (Meszaros et al. 2024, A&A 688, A197) -- Synspec on MARCS/ATLAS9.
    ``bosz2024/r{R}/m{+d.dd}/bosz2024_{ap|mp|ms}_t5000_g+4.5_m+0.00_a+0.00_c+0.00_v2_r50000_resam.txt.gz``.
    Resampled files hold two columns (Eddington flux H, continuum); the wavelengths (Angstrom) are in
    ``bosz2024_wave_r{R}.txt`` beside the resolution folder. Non-resampled (``rorig``,
    ``_noresam``) files hold three columns, wavelength first. H is multiplied by 4 pi (surface flux).
    The wavelength file is log-uniform but printed with few decimals (4 at R = 50000 leave a
    d ln lambda spread of ~3e-3), so its values are regularised to the log-uniform grid they encode
    (:func:`read_bosz2024_wave`), checked to lie within the print precision, as for BOSZ 2017.

No air/vacuum conversion is applied here.

:func:`build_bosz_grid` crops every spectrum of a regular (T_eff, log g, [M/H], [alpha/M]) sub-grid
to one wavelength window and streams it into the project's HDF5 grid (:mod:`pfslogg.gridio`).
Every bad input raises one :class:`~pfslogg.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import logging
import math
import re
import warnings
import zlib
from pathlib import Path

import numpy as np

from .. import PARAMS
from ..errors import InputError, fail
from .gridio import SOURCE_AXES, GridWriter, parse_ranges, parse_wave_range, source_nodes

log = logging.getLogger(__name__)

__all__ = [
    "BOSZ_AXES",
    "BOSZ2017_RESOLUTIONS",
    "BOSZ2024_RESOLUTIONS",
    "bosz2017_filename",
    "bosz2017_path",
    "parse_bosz2017_filename",
    "bosz2017_wave",
    "read_bosz2017",
    "bosz2024_filename",
    "bosz2024_path",
    "bosz2024_atmospheres",
    "parse_bosz2024_filename",
    "read_bosz2024_wave",
    "read_bosz2024",
    "read_bosz_spectrum",
    "build_bosz_grid",
]

#: The grid axes used by the project for BOSZ sources: name -> (min, max, step), as for ``synth``.
BOSZ_AXES = SOURCE_AXES["bosz2017"]

BOSZ2017_RESOLUTIONS = (200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 300000)
BOSZ2024_RESOLUTIONS = (500, 1000, 2000, 5000, 10000, 20000, 50000)

# SYNTHE's parent wavelength grid of BOSZ 2017: log-uniform in [100, 32000) nm, ratio 1 + 1/300000.
_PARENT_R = 300000
_WAVE_LIMITS_NM = (100.0, 32000.0)
_PRINT_PRECISION = 5e-4  # Angstrom: wavelengths printed with 3 decimals
_FOUR_PI = 4.0 * math.pi
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the grid stores float32

_BOSZ2017_COLUMNS = ("Wavelength", "SpecificIntensity", "Continuum")
_BOSZ2017_EXTS = (".asc.bz2", ".asc", ".fits")
_BOSZ2024_EXTS = (".txt.gz", ".txt")

# ASCII digits only (re.ASCII: no other scripts' digits) and bounded runs, so a mangled name can
# neither overflow float() to inf nor hit int()'s 4300-digit limit: it just does not match.
_RE_2017 = re.compile(
    r"^am(?P<ms>[mp])(?P<m>\d{2})c(?P<cs>[mp])(?P<c>\d{2})o(?P<os>[mp])(?P<o>\d{2})"
    r"t(?P<t>\d{1,6})g(?P<g>\d{2})v(?P<v>\d{1,4})mod"
    r"rt(?P<rt>\d{1,6})b(?P<b>\d{1,7})rs(?P<ext>\.asc\.bz2|\.asc|\.fits)$",
    re.ASCII,
)
_RE_2024 = re.compile(
    r"^bosz2024_(?P<atm>ap|mp|ms)_t(?P<t>\d{1,6})_g(?P<g>[+-]\d{1,2}\.\d)_m(?P<m>[+-]\d{1,2}\.\d\d)"
    r"_a(?P<a>[+-]\d{1,2}\.\d\d)_c(?P<c>[+-]\d{1,2}\.\d\d)_v(?P<v>\d{1,4}(?:\.\d{1,4})?)"
    r"_r(?P<r>\d{1,7}|orig)_(?P<kind>resam|noresam|lineid)(?P<ext>\.txt\.gz|\.txt)$",
    re.ASCII,
)


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def _clean(x):
    """Round away float noise and turn -0.0 into 0.0 (so formatting never gives '-0.00')."""
    return round(float(x), 6) + 0.0


def _oneline(e):
    """An exception as one short line: '<Type>: <message>' with whitespace collapsed."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def _signed(x, fmt):
    return format(_clean(x), fmt)


def _check_resolution(resolution, allowed, what):
    try:
        r = int(resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution: expected an integer R for {what}, got {resolution!r}") from None
    if r != resolution or r not in allowed:
        raise InputError(f"resolution: {what} provides R in {list(allowed)}, got {resolution!r}")
    return r


def _read_bytes(path, compression):
    """Whole (decompressed) content of a file; corrupt/truncated streams -> InputError."""
    path = Path(path)
    opener = {"bz2": bz2.open, "gzip": gzip.open, None: open}[compression]
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        fail(path, "file not found")
    except IsADirectoryError:
        fail(path, "is a folder, expected a file")
    except (EOFError, OSError, zlib.error, ValueError) as e:
        kind = compression or "plain"
        fail(path, f"cannot read the {kind} file: truncated or corrupt ({_oneline(e)})")


def _parse_table(path, data, ncols, columns):
    """Parse whitespace-separated numbers into an (n, ncols) float array, checking everything."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        fail(path, f"not a text table (non-ASCII byte at offset {e.start}); expected {ncols} numeric columns {columns}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Empty input file" is reported below instead
            table = np.loadtxt(io.StringIO(text), dtype=float, ndmin=2)
    except ValueError as e:
        msg = str(e).split(";")[0]
        if "number of columns" in msg:
            fail(path, f"rows have different numbers of columns ({msg}); expected {ncols} columns {columns}")
        fail(path, f"non-numeric entry ({msg}); expected {ncols} numeric columns {columns}")
    if table.size == 0:
        fail(path, f"no data rows; expected {ncols} numeric columns {columns}")
    if table.shape[1] != ncols:
        fail(path, f"has {table.shape[1]} columns, expected {ncols} {columns}")
    bad = ~np.isfinite(table)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        fail(path, f"non-finite value ({table[row, col]}) in column {col + 1} ({columns[col]}) of data row {row + 1}")
    return table


def _check_wave(where, wave):
    if wave.ndim != 1 or len(wave) < 2:
        fail(where, f"expected at least 2 wavelengths, got {wave.size}")
    if not np.all(np.isfinite(wave)) or np.any(wave <= 0):
        fail(where, "wavelengths must be finite and positive")
    if not np.all(np.diff(wave) > 0):
        i = int(np.argmax(~(np.diff(wave) > 0)))
        fail(where, f"wavelengths are not strictly increasing (row {i + 2}: {wave[i + 1]} after {wave[i]})")


# ----------------------------------------------------------------------------------------------
# BOSZ 2017
# ----------------------------------------------------------------------------------------------


def _nn(x):
    """BOSZ 2017 name code for an abundance: sign letter + int(|x|*10 + 0.5), two digits."""
    x = _clean(x)
    return ("m" if x < 0 else "p") + f"{int(abs(x) * 10 + 0.5):02d}"


def _from_nn(sign, digits):
    """Inverse of :func:`_nn`: the code is lossy (-0.25 -> m03), so snap to the 0.25 grid."""
    v = int(digits) / 10.0
    return _clean(round(v * 4) / 4 * (-1 if sign == "m" else 1))


def bosz2017_filename(teff, logg, mh, alpha, cm=0.0, resolution=50000, ext=".asc.bz2"):
    """File name of one BOSZ 2017 spectrum, e.g. ``amm03cm03om03t3500g25v20modrt0b5000rs.asc.bz2``."""
    if ext not in _BOSZ2017_EXTS:
        raise InputError(f"ext: expected one of {list(_BOSZ2017_EXTS)}, got {ext!r}")
    g = int(round(float(logg) * 10))
    return (
        f"am{_nn(mh)}c{_nn(cm)}o{_nn(alpha)}t{int(round(float(teff)))}g{g:02d}"
        f"v20modrt0b{int(resolution)}rs{ext}"
    )


def _bosz2017_subdir(mh, cm, alpha):
    return Path(f"metal_{_signed(mh, '+.2f')}") / f"carbon_{_signed(cm, '+.2f')}" / f"alpha_{_signed(alpha, '+.2f')}"


def _bosz2017_bases(root, resolution):
    """(folder of insbroad_R, extension) pairs to try, from the root's name (no disk access)."""
    root = Path(root)
    ins = f"insbroad_{int(resolution):06d}"
    if root.name.startswith("insbroad_"):
        if root.name != ins:
            raise InputError(f"{root}: root is the folder of another resolution, expected {ins} for R={resolution}")
        return [(root, ".fits"), (root, ".asc.bz2")]
    if root.name == "fits":
        return [(root / ins, ".fits")]
    if root.name == "ascii":
        return [(root / ins, ".asc.bz2")]
    return [(root / "fits" / ins, ".fits"), (root / "ascii" / ins, ".asc.bz2")]


def bosz2017_path(root, teff, logg, mh, alpha, cm=0.0, resolution=50000, ext=".asc.bz2"):
    """Where a BOSZ 2017 file lives under ``root``.

    ``root`` may be the top of the archive copy (holding ``ascii/`` and ``fits/``), one of those two
    folders, or an ``insbroad_{R:06d}`` folder itself.
    """
    name = bosz2017_filename(teff, logg, mh, alpha, cm, resolution, ext)
    root = Path(root)
    sub = _bosz2017_subdir(mh, cm, alpha)
    if root.name.startswith("insbroad_"):
        return root / sub / name
    fmt = "fits" if ext == ".fits" else "ascii"
    ins = f"insbroad_{int(resolution):06d}"
    if root.name in ("fits", "ascii"):
        return root / ins / sub / name
    return root / fmt / ins / sub / name


def parse_bosz2017_filename(name):
    """Parameters from a BOSZ 2017 file name (a path is fine; only its name is used).

    Returns ``{"T_eff", "log_g", "M_H", "a_M", "C_M", "vturb", "vrot", "resolution", "ext"}``;
    abundances are snapped to the 0.25 grid, undoing the lossy rounding of the name.
    """
    base = Path(str(name)).name
    m = _RE_2017.match(base)
    if m is None:
        raise InputError(
            f"{name}: not a BOSZ 2017 file name (expected e.g. 'amm03cm03om03t3500g25v20modrt0b5000rs.asc.bz2')"
        )
    return {
        "T_eff": float(m["t"]),
        "log_g": int(m["g"]) / 10.0,
        "M_H": _from_nn(m["ms"], m["m"]),
        "a_M": _from_nn(m["os"], m["o"]),
        "C_M": _from_nn(m["cs"], m["c"]),
        "vturb": int(m["v"]) / 10.0,
        "vrot": float(m["rt"]),
        "resolution": int(m["b"]),
        "ext": m["ext"],
    }


@functools.lru_cache(maxsize=16)
def _bosz2017_wave_cached(resolution):
    ratio = 1.0 + 1.0 / _PARENT_R
    lr = math.log10(ratio)
    lo, hi = _WAVE_LIMITS_NM
    ix0 = int(round(math.log10(lo) / lr))
    if 10 ** (ix0 * lr) < lo:
        ix0 += 1
    ix1 = int(round(math.log10(hi) / lr))
    if 10 ** (ix1 * lr) >= hi:
        ix1 -= 1
    step = max(1, _PARENT_R // resolution // 2)
    ix = np.arange(ix0, ix1 + 1, step, dtype=np.int64)
    wave = 10.0 * 10.0 ** (ix * lr)  # nm -> Angstrom
    wave.flags.writeable = False
    return wave


def bosz2017_wave(resolution):
    """The BOSZ 2017 wavelength grid at resolution R, in Angstrom, rebuilt from SYNTHE's rule.

    The parent grid is log-uniform, ``lambda_i = (1 + 1/300000)**i`` nm for every integer i with
    100 nm <= lambda_i < 32000 nm; R keeps every ``300000 // R // 2``-th point from the first (two
    samples per resolution element; integer division as in the archive, so R=20000 keeps every 7th
    and R >= 100000 every point).
    """
    r = _check_resolution(resolution, BOSZ2017_RESOLUTIONS, "BOSZ 2017")
    return np.array(_bosz2017_wave_cached(r))


def _check_rebuilt(path, file_wave, rebuilt, precision, rule):
    """``rebuilt`` (float64), after checking that no row of the file's wavelength column is farther
    from it than the print ``precision`` (A, scalar or per row) plus the column's own float precision
    (FITS may store float32); else one InputError naming the file, the rule and the worst row."""
    tol = precision * 1.001 + 2 * np.spacing(np.abs(file_wave).astype(file_wave.dtype)).astype(float)
    dev = np.abs(file_wave.astype(float) - rebuilt)
    if not np.all(dev <= tol):
        k = int(np.argmax(dev - tol))
        fail(path, f"wavelength column does not follow {rule}: row {k + 1} has {file_wave[k]:.10g} A, "
                   f"rebuilt {rebuilt[k]:.6f} A, beyond the print precision (+-{np.broadcast_to(tol, dev.shape)[k]:.2g} A)")
    return np.array(rebuilt, dtype=float)


def _match_bosz2017_wave(path, file_wave, resolution):
    """The rebuilt wavelengths for the file's rows; error if the column does not follow the rule."""
    grid = _bosz2017_wave_cached(resolution)
    n = len(file_wave)
    i0 = int(np.searchsorted(grid, file_wave[0]))
    if i0 > 0 and (i0 == len(grid) or abs(grid[i0 - 1] - file_wave[0]) <= abs(grid[i0] - file_wave[0])):
        i0 -= 1
    if i0 + n > len(grid):
        fail(path, f"{n} rows from {file_wave[0]:.3f} A run past the end of the BOSZ 2017 R={resolution} "
                   f"wavelength grid ({grid[-1]:.3f} A)")
    rebuilt = grid[i0:i0 + n]
    return _check_rebuilt(path, file_wave, rebuilt, _PRINT_PRECISION,  # 3-decimal printing
                          f"the BOSZ 2017 R={resolution} log-uniform grid (ratio 1+1/300000, every "
                          f"{max(1, _PARENT_R // resolution // 2)}th point)")


def _read_bosz2017_ascii(path, compression):
    table = _parse_table(path, _read_bytes(path, compression), 3, ("wavelength", "flux", "continuum"))
    return table[:, 0], table[:, 1], table[:, 2]


def _read_bosz2017_fits(path):
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        fail(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="(?s).*(truncat|corrupt)")
            with open(path, "rb") as fh, fits.open(fh, memmap=False) as hdul:  # fh: closed even if fits.open fails
                if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                    fail(path, f"expected a binary table in HDU 1 with columns {', '.join(_BOSZ2017_COLUMNS)}")
                hdu = hdul[1]
                names = list(hdu.columns.names)
                lower = {n.lower(): n for n in names}
                missing = [c for c in _BOSZ2017_COLUMNS if c.lower() not in lower]
                if missing:
                    fail(path, f"HDU 1 lacks column(s) {', '.join(missing)} (has {', '.join(names) or 'none'}); "
                               f"expected {', '.join(_BOSZ2017_COLUMNS)}")
                cols = []
                for c in _BOSZ2017_COLUMNS:
                    a = np.asarray(hdu.data[lower[c.lower()]])
                    if a.dtype.kind not in "fiu" or a.ndim != 1:
                        fail(path, f"column {c} is not a numeric scalar column (dtype {a.dtype}, shape {a.shape})")
                    cols.append(np.array(a))
    except InputError:
        raise
    except Exception as e:  # astropy raises OSError, ValueError, KeyError, VerifyError, ... on mangled files
        fail(path, f"not a readable FITS file: truncated or corrupt ({_oneline(e)})")
    wave, flux, cont = cols
    if len(wave) == 0:
        fail(path, "the table in HDU 1 has no rows")
    for c, a in zip(_BOSZ2017_COLUMNS, cols):
        if not np.all(np.isfinite(a)):
            k = int(np.argmax(~np.isfinite(a)))
            fail(path, f"non-finite value ({a[k]}) in column {c}, row {k + 1}")
    return wave, flux.astype(float), cont.astype(float)


def read_bosz2017(path, resolution=None):
    """Read one BOSZ 2017 file (``.asc.bz2``, ``.asc`` or ``.fits``) -> (wave [A], flux, cont).

    The wavelengths returned are the rebuilt ones (:func:`bosz2017_wave`), after checking that the
    file's column agrees with them to print precision. R comes from the file name (``b{R}``), else
    from ``resolution``, else from an enclosing ``insbroad_{R}`` folder.
    """
    path = Path(path)
    name = path.name
    r_name = None
    m = _RE_2017.match(name)
    if m is not None:
        r_name = int(m["b"])
    if resolution is not None and r_name is not None and int(resolution) != r_name:
        fail(path, f"file name says R={r_name}, but resolution={resolution} was asked for")
    r = r_name if r_name is not None else resolution
    if r is None:
        ins = [p.name for p in path.parents if p.name.startswith("insbroad_")]
        if ins and ins[0][9:].isdigit():
            r = int(ins[0][9:])
        else:
            fail(path, "cannot tell the resolution: not a BOSZ 2017 file name (b{R}) and no resolution given")
    try:
        r = _check_resolution(r, BOSZ2017_RESOLUTIONS, "BOSZ 2017")
    except InputError as e:
        fail(path, str(e))
    if name.endswith(".fits"):
        wave, flux, cont = _read_bosz2017_fits(path)
    elif name.endswith(".asc.bz2"):
        wave, flux, cont = _read_bosz2017_ascii(path, "bz2")
    elif name.endswith(".asc"):
        wave, flux, cont = _read_bosz2017_ascii(path, None)
    else:
        fail(path, f"unknown BOSZ 2017 file type; expected one of {', '.join(_BOSZ2017_EXTS)}")
    wave = _match_bosz2017_wave(path, wave, r)
    return wave, flux, cont


# ----------------------------------------------------------------------------------------------
# BOSZ 2024
# ----------------------------------------------------------------------------------------------


def _rtag(resolution):
    if isinstance(resolution, str) and resolution in ("orig", "rorig"):
        return "rorig"
    return f"r{int(resolution)}"


def bosz2024_filename(teff, logg, mh, alpha, cm=0.0, vturb=2, resolution=50000, atm="mp", kind=None):
    """File name of one BOSZ 2024 spectrum, e.g.
    ``bosz2024_mp_t5000_g+4.5_m+0.00_a+0.00_c+0.00_v2_r50000_resam.txt.gz``.

    ``resolution`` is an integer R or ``"orig"``; ``kind`` defaults to ``resam`` (``noresam`` for orig).
    """
    if atm not in ("ap", "mp", "ms"):
        raise InputError(f"atm: expected 'ap', 'mp' or 'ms', got {atm!r}")
    rtag = _rtag(resolution)
    if kind is None:
        kind = "noresam" if rtag == "rorig" else "resam"
    if kind not in ("resam", "noresam", "lineid"):
        raise InputError(f"kind: expected 'resam', 'noresam' or 'lineid', got {kind!r}")
    vt = float(vturb)
    vtag = f"{int(vt)}" if vt.is_integer() else f"{vt:g}"
    return (
        f"bosz2024_{atm}_t{int(round(float(teff)))}_g{_signed(logg, '+.1f')}_m{_signed(mh, '+.2f')}"
        f"_a{_signed(alpha, '+.2f')}_c{_signed(cm, '+.2f')}_v{vtag}_{rtag}_{kind}.txt.gz"
    )


def bosz2024_atmospheres(teff, logg):
    """Atmosphere prefixes to try, best first: MARCS (spherical ``ms`` preferred at log g <= 3,
    then plane-parallel ``mp``) for T_eff <= 8000 K, ATLAS9 (``ap``) above."""
    if float(teff) <= 8000:
        return ["ms", "mp"] if float(logg) <= 3.0 + 1e-9 else ["mp"]
    return ["ap"]


def _bosz2024_resdirs(root, resolution):
    """Resolution folders to try, from the root's name (no disk access)."""
    root = Path(root)
    rtag = _rtag(resolution)
    if root.name == rtag:
        return [root]
    if root.name == "bosz2024":
        return [root / rtag]
    return [root / "bosz2024" / rtag, root / rtag]


def bosz2024_path(root, teff, logg, mh, alpha, cm=0.0, vturb=2, resolution=50000, atm=None, kind=None):
    """Where a BOSZ 2024 file lives under ``root`` (the folder holding ``bosz2024/``, ``bosz2024/``
    itself, or the ``r{R}`` folder). ``atm=None`` picks the first existing candidate of
    :func:`bosz2024_atmospheres` (else the first candidate)."""
    atms = [atm] if atm is not None else bosz2024_atmospheres(teff, logg)
    mdir = f"m{_signed(mh, '+.2f')}"
    cands = [
        d / mdir / bosz2024_filename(teff, logg, mh, alpha, cm, vturb, resolution, a, kind)
        for a in atms
        for d in _bosz2024_resdirs(root, resolution)
    ]
    for c in cands:
        if c.is_file():
            return c
    return cands[0]


def parse_bosz2024_filename(name):
    """Parameters from a BOSZ 2024 file name: ``{"atm", "T_eff", "log_g", "M_H", "a_M", "C_M",
    "vturb", "resolution" (int or "orig"), "kind", "ext"}``."""
    base = Path(str(name)).name
    m = _RE_2024.match(base)
    if m is None:
        raise InputError(
            f"{name}: not a BOSZ 2024 file name (expected e.g. "
            "'bosz2024_mp_t5000_g+4.5_m+0.00_a+0.00_c+0.00_v2_r50000_resam.txt.gz')"
        )
    return {
        "atm": m["atm"],
        "T_eff": float(m["t"]),
        "log_g": _clean(m["g"]),
        "M_H": _clean(m["m"]),
        "a_M": _clean(m["a"]),
        "C_M": _clean(m["c"]),
        "vturb": float(m["v"]),
        "resolution": "orig" if m["r"] == "orig" else int(m["r"]),
        "kind": m["kind"],
        "ext": m["ext"],
    }


# a number as printed: integer digits, decimals, exponent (bounded runs, ASCII digits only)
_RE_PRINTED = re.compile(r"[+-]?(?:\d+(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d{1,6}))?", re.ASCII)


def _print_precision(data, n):
    """Half a unit of the last printed digit of each of the ``n`` numbers of a one-column text table
    (A); comments and blank lines skipped as np.loadtxt does."""
    tokens = re.sub(rb"#[^\n]*", b"", data).split()
    if tokens and not re.search(rb"[eE]", data):  # fixed-point only (the archive's files): vectorised
        toks = np.array(tokens)
        dot = np.char.find(toks, b".")
        dec = np.where(dot >= 0, np.char.str_len(toks) - dot - 1, 0)
        half = 0.5 * 10.0 ** -np.minimum(dec, 400).astype(float)
        return half if len(half) == n else np.full(n, half.max())
    half = np.full(len(tokens), np.nan)
    for k, t in enumerate(tokens):
        m = _RE_PRINTED.fullmatch(t.decode("ascii", "replace"))
        if m is not None:
            e = int(m[3] or 0) - len(m[1] or m[2] or "")
            half[k] = 0.5 * 10.0 ** min(max(e, -300), 300)
    if len(half) != n or not np.isfinite(half).any():  # not one number a row: the coarsest for all
        return np.full(n, np.nanmax(half) if np.isfinite(half).any() else 0.0)
    return np.where(np.isfinite(half), half, np.nanmax(half))


def _log_uniform_fit(wave, tol):
    """The log-uniform grid ``exp(a + b i)`` that keeps every row of ``wave`` within ``tol`` (A, per
    row) if one does: least squares in ln lambda, then the step correction that maximises the room
    left for the offset (a concave function of the step: golden-section search), offset centred."""
    n = len(wave)
    x = np.arange(n) - (n - 1) / 2.0
    y = np.log(wave)
    b0, a0 = np.polyfit(x, y, 1)
    r = y - (a0 + b0 * x)
    s = tol / wave  # half-widths in ln lambda
    lo, hi = r - s, r + s
    xs = x / x[-1]  # -1 .. 1

    def room(db):
        return np.min(hi - db * xs) - np.max(lo - db * xs)

    g = (math.sqrt(5.0) - 1.0) / 2.0
    u, v = -(hi.max() - lo.min()) / 2.0, (hi.max() - lo.min()) / 2.0  # any feasible step lies inside
    c, d = v - g * (v - u), u + g * (v - u)
    fc, fd = room(c), room(d)
    for _ in range(80):
        if fc >= fd:
            v, d, fd = d, c, fc
            c = v - g * (v - u)
            fc = room(c)
        else:
            u, c, fc = c, d, fd
            d = u + g * (v - u)
            fd = room(d)
    db = (u + v) / 2.0
    da = (np.min(hi - db * xs) + np.max(lo - db * xs)) / 2.0
    with np.errstate(over="ignore", invalid="ignore"):  # absurd values: caught by the check that follows
        return np.exp((a0 + da) + (b0 + db / x[-1]) * x)


def read_bosz2024_wave(path):
    """The BOSZ 2024 wavelength file ``bosz2024_wave_r{R}.txt``: one column, Angstrom.

    The file's grid is log-uniform, but printed with few decimals (4 at R = 50000 give d ln lambda a
    spread of ~3e-3 of its mean, beyond what the instrument's convolution accepts), so the values
    returned are the log-uniform grid they encode, checked to lie within each value's print precision
    (half a unit of its last digit) -- an InputError naming the file otherwise.
    """
    path = Path(path)
    compression = "gzip" if path.name.endswith(".gz") else None
    data = _read_bytes(path, compression)
    table = _parse_table(path, data, 1, ("wavelength",))
    wave = table[:, 0]
    _check_wave(path, wave)
    # print precision, plus room for the float rounding of log/exp (~1e-10 A at 7000 A)
    precision = _print_precision(data, len(wave)) + 8 * np.finfo(float).eps * wave * np.abs(np.log(wave))
    rebuilt = _log_uniform_fit(wave, precision)
    return _check_rebuilt(path, wave, rebuilt, precision, "a log-uniform grid (constant d ln lambda)")


def _read_bosz2024_table(path, wave=None, kind=None):
    """(flux, cont) [and wave for noresam], with the 4 pi applied, checked against ``wave``."""
    path = Path(path)
    if kind == "lineid":
        fail(path, "line-identification file, holds no spectrum; use the _resam (or _noresam) files")
    name = path.name
    if name.endswith(".gz"):
        compression = "gzip"
    elif name.endswith(".txt"):
        compression = None
    else:
        fail(path, f"unknown BOSZ 2024 file type; expected one of {', '.join(_BOSZ2024_EXTS)}")
    data = _read_bytes(path, compression)
    if kind == "resam" or (kind is None and wave is not None):
        t = _parse_table(path, data, 2, ("flux H", "continuum"))
        if wave is None:
            fail(path, "resampled file without a wavelength file (bosz2024_wave_r{R}.txt)")
        if len(t) != len(wave):
            fail(path, f"has {len(t)} rows, but the wavelength file has {len(wave)}; expected one row per wavelength")
        w = np.asarray(wave, dtype=float)
    else:
        t3 = _parse_table(path, data, 3, ("wavelength", "flux H", "continuum"))
        w = t3[:, 0]
        _check_wave(path, w)
        t = t3[:, 1:]
    return w, _FOUR_PI * t[:, 0], _FOUR_PI * t[:, 1]


def _wave_file_candidates(start_dirs, rtag):
    name = f"bosz2024_wave_{rtag}.txt"
    out = []
    for d in start_dirs:
        for c in (d / name, d.parent / name, d.parent.parent / name):
            if c not in out:
                out.append(c)
    return out


def read_bosz2024(path, wave_file=None):
    """Read one BOSZ 2024 file -> (wave [A], 4 pi H, 4 pi continuum).

    Resampled files need the wavelength file: ``wave_file`` or ``bosz2024_wave_r{R}.txt`` found in
    the file's folder or up to two folders above it.
    """
    path = Path(path)
    if not path.is_file():
        fail(path, "file not found")
    info = None
    if _RE_2024.match(path.name):
        info = parse_bosz2024_filename(path.name)
    kind = info["kind"] if info else None
    wave = None
    if kind == "resam" or (info is None and wave_file is not None):
        if wave_file is None:
            rtag = _rtag(info["resolution"])
            cands = _wave_file_candidates([path.parent], rtag)
            found = [c for c in cands if c.is_file()]
            if not found:
                fail(path, "no wavelength file for this resampled spectrum; looked for "
                           + ", ".join(str(c) for c in cands))
            wave_file = found[0]
        wave = read_bosz2024_wave(wave_file)
    return _read_bosz2024_table(path, wave, kind)


# ----------------------------------------------------------------------------------------------
# dispatcher
# ----------------------------------------------------------------------------------------------


def read_bosz_spectrum(path, wave_file=None, resolution=None):
    """Read any BOSZ file, chosen by its name -> (wave [A], flux, cont) as float64 arrays.

    ``.asc.bz2``/``.asc``/``.fits``: BOSZ 2017 (wavelengths rebuilt, see :func:`read_bosz2017`).
    ``.txt.gz``/``.txt``: BOSZ 2024 (flux and continuum are 4 pi H; ``wave_file`` for resampled files,
    else looked up beside the file).
    """
    path = Path(path)
    name = path.name
    if wave_file is not None and Path(wave_file) == path:
        fail(path, "given as both the spectrum and its wavelength file")
    if name.endswith(_BOSZ2017_EXTS):
        return read_bosz2017(path, resolution)
    if name.endswith(_BOSZ2024_EXTS):
        return read_bosz2024(path, wave_file)
    fail(path, "unknown BOSZ file type; expected .asc.bz2 / .fits (BOSZ 2017) or .txt.gz (BOSZ 2024)")


# ----------------------------------------------------------------------------------------------
# the grid
# ----------------------------------------------------------------------------------------------


def _fmt_node(params):
    return ", ".join(f"{p}={params[p]:g}" for p in PARAMS)


def build_bosz_grid(path, source, root, ranges, resolution=50000, wave_range=(7000.0, 9000.0),
                    margin=1, cm=0.0, vturb=2):
    """Build the project's raw HDF5 grid (see :mod:`pfslogg.gridio`) from BOSZ files.

    Parameters
    ----------
    path : output grid file (written atomically).
    source : ``"bosz2017"`` or ``"bosz2024"``.
    root : folder of the BOSZ copy (see :func:`bosz2017_path` / :func:`bosz2024_path` for the levels
        accepted). BOSZ 2017 prefers ``.fits`` under ``fits/`` and falls back to ``.asc.bz2`` under
        ``ascii/``, per node.
    ranges : mapping parameter -> (lo, hi) over ``T_eff, log_g, M_H, a_M`` (a missing parameter takes
        the whole BOSZ axis). Nodes come from :func:`pfslogg.gridio.axis_nodes` on :data:`BOSZ_AXES`,
        with ``margin`` extra nodes each side.
    resolution : R of the files; wave_range : (lo, hi) Angstrom crop; cm : [C/M]; vturb : km/s
        (BOSZ 2017 has only 2 km/s).

    A node inside ``ranges`` without a file is an error (naming the paths tried); a missing node in
    the margin is masked out with a warning. Every spectrum must give the same cropped wavelengths.
    Returns the output path.
    """
    if source not in ("bosz2017", "bosz2024"):
        raise InputError(f"source: expected 'bosz2017' or 'bosz2024', got {source!r}")
    allowed = BOSZ2017_RESOLUTIONS if source == "bosz2017" else BOSZ2024_RESOLUTIONS
    resolution = _check_resolution(resolution, allowed, "BOSZ 2017" if source == "bosz2017" else "BOSZ 2024")
    wlo, whi = parse_wave_range(wave_range)
    if int(margin) != margin or margin < 0:
        raise InputError(f"margin: expected a non-negative integer, got {margin!r}")
    margin = int(margin)
    if source == "bosz2017" and float(vturb) != 2.0:
        raise InputError(f"vturb: BOSZ 2017 has only microturbulence 2 km/s (v20), got {vturb!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: BOSZ root folder not found")

    rng = parse_ranges(ranges, source)
    axes = source_nodes(rng, source, margin)
    shape = tuple(len(axes[p]) for p in PARAMS)

    # --- where to look ------------------------------------------------------------------------
    if source == "bosz2017":
        bases = _bosz2017_bases(root, resolution)
        existing = [b for b in bases if b[0].is_dir()]
        if not existing:
            raise InputError(f"{root}: no BOSZ 2017 folder for R={resolution}; looked for "
                             + ", ".join(str(b[0]) for b in bases))
        bases = existing

        def candidates(v):
            name_args = (v["T_eff"], v["log_g"], v["M_H"], v["a_M"], cm, resolution)
            sub = _bosz2017_subdir(v["M_H"], cm, v["a_M"])
            return [d / sub / bosz2017_filename(*name_args, ext=ext) for d, ext in bases]
    else:
        resdirs = _bosz2024_resdirs(root, resolution)
        existing = [d for d in resdirs if d.is_dir()]
        if not existing:
            raise InputError(f"{root}: no BOSZ 2024 folder for R={resolution}; looked for "
                             + ", ".join(str(d) for d in resdirs))
        resdirs = existing
        wcands = _wave_file_candidates(resdirs, _rtag(resolution))
        if root / wcands[0].name not in wcands:
            wcands.append(root / wcands[0].name)
        wfound = [c for c in wcands if c.is_file()]
        if not wfound:
            raise InputError(f"{root}: BOSZ 2024 wavelength file not found; looked for "
                             + ", ".join(str(c) for c in wcands))
        wave_file = wfound[0]
        wave_all = read_bosz2024_wave(wave_file)

        def candidates(v):
            mdir = f"m{_signed(v['M_H'], '+.2f')}"
            return [
                d / mdir / bosz2024_filename(v["T_eff"], v["log_g"], v["M_H"], v["a_M"], cm, vturb, resolution, a)
                for a in bosz2024_atmospheres(v["T_eff"], v["log_g"])
                for d in resdirs
            ]

    # --- locate every node's file before reading anything --------------------------------------
    files = {}
    missing_in, missing_margin = [], []
    for idx in np.ndindex(*shape):
        v = {p: float(axes[p][i]) for p, i in zip(PARAMS, idx)}
        cands = candidates(v)
        found = next((c for c in cands if c.is_file()), None)
        if found is not None:
            files[idx] = found
            continue
        inside = all(rng[p][0] - 1e-9 <= v[p] <= rng[p][1] + 1e-9 for p in PARAMS)
        (missing_in if inside else missing_margin).append((v, cands))
    if missing_in:
        shown = "; ".join(f"{_fmt_node(v)}: expected {' or '.join(str(c) for c in cands)}"
                          for v, cands in missing_in[:5])
        more = f"; and {len(missing_in) - 5} more" if len(missing_in) > 5 else ""
        raise InputError(f"{root}: {len(missing_in)} BOSZ file(s) missing for grid nodes inside the "
                         f"configured ranges: {shown}{more}")
    if missing_margin:
        log.warning(
            "%s: %d margin node(s) have no BOSZ file and are masked out, e.g. %s",
            root, len(missing_margin), "; ".join(_fmt_node(v) for v, _ in missing_margin[:3]),
        )

    # --- the common wavelength grid -------------------------------------------------------------
    full = _bosz2017_wave_cached(resolution) if source == "bosz2017" else wave_all
    sel = (full >= wlo) & (full <= whi)
    if sel.sum() < 2:
        where = f"BOSZ 2017 R={resolution} grid" if source == "bosz2017" else str(wave_file)
        raise InputError(f"wave_range: [{wlo}, {whi}] A holds fewer than 2 wavelengths of the {where} "
                         f"({full[0]:.1f}-{full[-1]:.1f} A)")
    wave = np.array(full[sel])

    attrs = {
        "source": source,
        "kind": "raw",
        "resolution": resolution,
        "root": str(root),
        "wave_range": np.array([wlo, whi]),
        "margin": margin,
        "C_M": float(cm),
        "vturb": float(vturb),
        "wave_frame": "as in the BOSZ files (no air/vacuum conversion)",
    }
    if source == "bosz2024":
        attrs["wave_file"] = str(wave_file)
        attrs["wave_rule"] = "log-uniform, regularised from the wave file's printed values (within print precision)"
        attrs["flux"] = "4 pi H (surface flux), continuum likewise"
    else:
        exts = sorted({".fits" if f.name.endswith(".fits") else ".asc.bz2" for f in files.values()})
        attrs["formats"] = ",".join(exts)
        attrs["wave_rule"] = "log-uniform 100-32000 nm, ratio 1+1/300000, every 300000//R//2-th point"

    # --- read and stream -----------------------------------------------------------------------
    with GridWriter(path, wave, axes, attrs) as w:
        for idx, f in files.items():
            if source == "bosz2017":
                fw, flux, cont = read_bosz2017(f, resolution)
            else:
                fw, flux, cont = _read_bosz2024_table(f, wave_all, "resam")
            m = (fw >= wlo) & (fw <= whi)
            if m.sum() != len(wave) or not np.array_equal(fw[m], wave):
                cov = f"{fw[0]:.3f}-{fw[-1]:.3f} A"
                fail(f, f"wavelengths ({cov}, {int(m.sum())} points in wave_range) differ from the grid's "
                        f"({len(wave)} points, {wave[0]:.3f}-{wave[-1]:.3f} A); every file of one grid must "
                        f"cover wave_range [{wlo}, {whi}] A on the same wavelengths")
            for what, a in (("flux", flux[m]), ("continuum", cont[m])):
                big = np.abs(a) > _FLOAT32_MAX  # would be stored as inf in the float32 grid
                if big.any():
                    k = int(np.argmax(big))
                    fail(f, f"{what} {a[k]:.3g} at {wave[k]:.3f} A exceeds the grid's float32 range (|x| <= 3.4e38)")
            w.write(idx, flux[m], cont[m])
    log.info("%s: wrote BOSZ %s grid, %d of %d nodes, %d wavelengths", path, source, len(files),
             int(np.prod(shape)), len(wave))
    return Path(path)
