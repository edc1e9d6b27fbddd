"""Shared fixtures: small instrument grids and data sets built in temporary folders.

``tiny_instrument_grid`` is an instrument-resolution grid (kind="instrument", R=5000) on the 4096
PFS pixels whose spectra are smooth fake stars: a Planck continuum times Gaussian absorption
lines whose depths and widths depend smoothly and nonlinearly on (T_eff, log_g, M_H, a_M) --
gravity-sensitive Ca II triplet and Na I doublet, a forest of metal lines, TiO-like band heads in
cool stars. It does not depend on ``pfslogg.data.synth``. ``make_fake_grid`` builds variants (fewer
pixels for tests whose cost grows with n_pix, holes in the mask, other axes).
"""

import os
import shutil

import numpy as np
import pytest

from pfslogg import PARAMS
from pfslogg.data.gridio import GridWriter
from pfslogg.data.instrument import pixel_wave

# Axes of the tiny grid: a subset of the synth axes that covers the default config ranges
# (T_eff 3750-6000, log_g 1-5, M_H -0.25..0.75, a_M 0) with one margin node where the axis has one.
TINY_AXES = {
    "T_eff": np.arange(3500.0, 6001.0, 500.0),     # 6 nodes, K
    "log_g": np.arange(0.5, 5.01, 0.5),            # 10 nodes, dex
    "M_H": np.arange(-0.5, 0.751, 0.25),           # 6 nodes, dex
    "a_M": np.array([0.0]),
}
# Parameter ranges inside TINY_AXES for data sets drawn from it.
TINY_RANGES = {"T_eff": [3750.0, 6000.0], "log_g": [1.0, 5.0], "M_H": [-0.25, 0.75], "a_M": [0.0, 0.0]}
# The calibrated default exposure model (config/config.yaml).
DEFAULT_NOISE = {"exposures": 12, "exp_time": 900.0, "throughput": 2.2, "mag": [20.5, 22.5], "seeing": [0.5, 1.5]}

_HC_K = 1.4387769e8  # h c / k in A K

# What provides each external tool (for the messages of ``require_tools``).
TOOL_PACKAGES = {
    **dict.fromkeys(("pdflatex", "bibtex"), "TeX Live, Debian: texlive-latex-base"),
    "latexmk": "Debian: latexmk",
    **dict.fromkeys(("pdftoppm", "pdftotext"), "poppler, Debian: poppler-utils"),
    **dict.fromkeys(("sinfo", "sbatch", "squeue", "scancel", "scontrol"), "Slurm, Debian: slurm-wlm"),
}


def in_ci():
    """True under CI (environment variable CI set to anything but empty/0/false/no, as .ci/run sets it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class MissingTool(pytest.skip.Exception):
    """The skip of :func:`require_tools`: reported at ``require_tools`` itself, not at each test (see
    ``pytest_runtest_makereport``), so that ``pytest -ra`` folds the skips into one summary line per
    missing tool: ``SKIPPED [21] tests/conftest.py:NN: needs latexmk (Debian: latexmk): not on PATH``."""


def _tool(name):
    return f"{name} ({TOOL_PACKAGES[name]})" if name in TOOL_PACKAGES else name


def require_tools(*names):
    """Skip the calling test (or fixture) when an external tool is not on PATH -- with a reason that
    names the first of ``names`` missing, always worded the same, so the summary has one line per
    tool, not one per test or per combination of tools -- or, under CI (``in_ci()``), fail it
    loudly, naming every missing tool: CI installs them all."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    if in_ci():
        what = ", ".join(map(_tool, missing))
        pytest.fail(f"CI must run this test but {what} {'is' if len(missing) == 1 else 'are'} not on PATH "
                    "(.ci/run installs LaTeX, poppler and Slurm)", pytrace=False)
    raise MissingTool(f"needs {_tool(missing[0])}: not on PATH")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip by :func:`require_tools` is reported at ``require_tools``: pytest reports a skip raised
    in a fixture at the test, which made ``-ra`` print one line per test for the same missing tool."""
    report = yield
    if report.skipped and call.excinfo is not None and isinstance(call.excinfo.value, MissingTool) \
            and isinstance(report.longrepr, tuple):
        report.longrepr = (__file__, require_tools.__code__.co_firstlineno, call.excinfo.value.msg)
    return report


# line list: fixed, so every grid built here is the same function of the parameters
_rng = np.random.default_rng(12345)
_METAL_CENTRES = np.sort(_rng.uniform(7120.0, 8830.0, 40))
_METAL_STRENGTH = _rng.uniform(0.05, 0.35, 40)
_METAL_LOGG_SENS = _rng.uniform(-0.15, 0.15, 40)   # some lines strengthen, some weaken with gravity
_CAT = np.array([8498.02, 8542.09, 8662.14])
_NAI = np.array([8183.26, 8194.82])
_TIO_HEADS = np.array([7589.0, 8432.0])


def _gauss(wave, centre, sigma):
    return np.exp(-0.5 * ((wave[None, :] - np.atleast_1d(centre)[:, None]) / np.atleast_1d(sigma)[:, None]) ** 2)


def fake_spectrum(wave, teff, logg, mh, am=0.0):
    """(flux, cont) F_lambda of a fake star at ``wave`` (A): smooth and nonlinear in the parameters."""
    wave = np.asarray(wave, float)
    x = _HC_K / (wave * teff)
    cont = (8000.0 / wave) ** 5 * np.expm1(_HC_K / (8000.0 * teff)) / np.expm1(x)   # Planck, 1 at 8000 A
    absorb = np.zeros_like(wave)   # sum of optical depths
    # metal forest: stronger in cool, metal-rich stars
    depth = _METAL_STRENGTH * 10 ** (0.4 * mh + 0.3 * am) * (5000.0 / teff) ** 2 * (1 + _METAL_LOGG_SENS * (logg - 3))
    absorb += depth @ _gauss(wave, _METAL_CENTRES, 1.2)
    # Ca II triplet: stronger in giants, pressure-broadened wings in dwarfs
    d_cat = (0.7 + 0.15 * mh) * (1.25 - 0.09 * logg)
    absorb += d_cat * _gauss(wave, _CAT, 1.0 + 0.35 * logg + 0.04 * logg**2).sum(0)
    # Na I doublet: gravity-sensitive in cool dwarfs
    d_na = 0.05 + 0.5 * (logg / 5.0) ** 2 * (4500.0 / teff) ** 2 * 10 ** (0.2 * mh)
    absorb += d_na * _gauss(wave, _NAI, 1.5).sum(0)
    # TiO-like band heads in cool stars (sharp blue edge, exponential red tail)
    band = 0.6 / (1.0 + np.exp((teff - 4000.0) / 180.0)) * (1 + 0.05 * (logg - 3))
    for head in _TIO_HEADS:
        dw = wave - head
        absorb += band * np.exp(-np.abs(dw) / np.where(dw > 0, 80.0, 1.5))
    return cont * np.exp(-absorb), cont


def make_fake_grid(path, axes=None, n_pixels=4096, wave=None, kind="instrument", resolution=5000.0,
                   holes=(), source="fake"):
    """Write a fake grid file at ``path``; ``holes``: node indices (i, j, k, l) left out. Returns path."""
    axes = {p: np.asarray((axes or TINY_AXES)[p], float) for p in PARAMS}
    wave = pixel_wave(n_pixels=n_pixels) if wave is None else np.asarray(wave, float)
    holes = {tuple(int(i) for i in h) for h in holes}
    attrs = {"source": source, "kind": kind, "resolution": float(resolution)}
    with GridWriter(path, wave, axes, attrs) as w:
        for idx in np.ndindex(*(len(axes[p]) for p in PARAMS)):
            if idx in holes:
                continue
            flux, cont = fake_spectrum(wave, *(axes[p][i] for p, i in zip(PARAMS, idx)))
            w.write(idx, flux, cont)
    return path


@pytest.fixture(scope="session")
def tiny_instrument_grid(tmp_path_factory):
    """Path of a small instrument grid (6 x 10 x 6 x 1 nodes, 4096 PFS pixels 7100-8850 A)."""
    return make_fake_grid(tmp_path_factory.mktemp("grid") / "tiny_instrument.h5")


@pytest.fixture(scope="session")
def coarse_instrument_grid(tmp_path_factory):
    """The tiny grid's stars on 512 pixels over the same range: for tests whose cost grows as n_pix^2-3
    (Ridge's eigendecomposition, template chi^2)."""
    return make_fake_grid(tmp_path_factory.mktemp("grid") / "coarse_instrument.h5", n_pixels=512)


@pytest.fixture(scope="session")
def tiny_ranges():
    return {p: list(v) for p, v in TINY_RANGES.items()}


@pytest.fixture(scope="session")
def default_noise():
    return dict(DEFAULT_NOISE)


@pytest.fixture(scope="session")
def tiny_dataset(tiny_instrument_grid, tmp_path_factory):
    """A 200-spectrum data set (4096 pixels) drawn from the tiny grid with the default noise model."""
    from pfslogg.data.dataset import simulate_dataset

    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    simulate_dataset(tiny_instrument_grid, path, 200, TINY_RANGES, seed=7, noise=DEFAULT_NOISE, chunk_size=64)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One local run of the DAG to figures/r2_vs_snr.pdf (+ calibration figure) on the tiny config,
    shared by the end-to-end, Slurm and fault tests (which copy it, never modify it)."""
    from workflow_util import TINY, copy_workflow, snakemake

    wd = copy_workflow(tmp_path_factory.mktemp("e2e"))
    snakemake(wd, "figures/r2_vs_snr.pdf", "figures/ceiling_calibration.pdf", "--cores", "2", "--configfile", TINY)
    return wd


def simulate_splits(grid, root, sizes=(("train", 800, 1), ("val", 200, 2), ("test", 200, 3))):
    """{split: path} of small data sets drawn from ``grid`` into ``root`` with the default noise."""
    from pfslogg.data.dataset import simulate_dataset

    out = {}
    for name, n, seed in sizes:
        simulate_dataset(grid, root / f"{name}.h5", n, TINY_RANGES, seed=seed, noise=DEFAULT_NOISE, chunk_size=256)
        out[name] = root / f"{name}.h5"
    return out


def cell_predictions(docs, seed=0):
    """{cell: (file name, predictions table)} for cell results documents ``docs`` ({cell: kind
    "estimator"}), as an experiment aggregate's comparisons read them: the same test spectra (the
    documents' n_test, in one order) for every cell, each cell's errors its own draw, scaled so that
    its R^2 against the document's var_prior is exactly the document's overall R^2."""
    import zlib

    import pandas as pd

    first = next(iter(docs.values()))["metrics"]
    y = np.random.default_rng(seed).uniform(1.0, 5.0, int(first["n_test"]))
    out = {}
    for cell, doc in docs.items():
        m = doc["metrics"]
        z = np.random.default_rng([seed, zlib.crc32(repr(cell).encode())]).standard_normal(len(y))
        z *= np.sqrt((1.0 - m["overall"]["r2"]) * m["var_prior"] / np.mean(z ** 2))
        e, tag, n, s = cell
        out[cell] = (f"results/cells/{e}/nl{tag}_n{n}_s{s}.csv", pd.DataFrame({"log_g": y, "log_g_pred": y + z}))
    return out
