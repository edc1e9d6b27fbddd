"""Benchmark of the embedded forward model (pfslogg.data.synth), on ONE core.

    python bench/bench_synth.py [--resolution 20000] [--gravity-coupling 1.0] [--no-grid] [--no-torch]

Prints: NumPy spectra/s (one at a time and in batches), torch forward/backward time per spectrum,
the wall time of building the default grid of config/config.yaml (T_eff 3750-6000, log_g 1-5,
M_H -0.25-0.75, a_M 0, one node of margin: 12 x 10 x 6 x 3 = 2160 spectra), and the log g
responses d ln(EW) / d log g of the gravity-sensitive features (for calibrating gravity_coupling).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pfslogg.data.synth import (  # noqa: E402
    SynthModel,
    build_synth_grid,
    equivalent_width,
    raw_wave,
    synth_batch,
    synth_spectrum,
)

DEFAULT_RANGES = {"T_eff": [3750, 6000], "log_g": [1, 5], "M_H": [-0.25, 0.75], "a_M": [0.0, 0.0]}

FEATURES = {  # name -> list of (centre, half-width) A windows summed
    "CaT": [(8498.02, 15.0), (8542.09, 15.0), (8662.14, 15.0)],
    "Na I 8183/8195": [(8183.26, 3.0), (8194.82, 3.0)],
    "K I 7699": [(7698.96, 3.0)],
    "Mg I 8807": [(8806.76, 3.0)],
    "O I 777": [(7773.65, 2.6)],
    "Fe II 7712": [(7711.72, 1.5)],
}
POINTS = [(4000, 1.5), (4250, 1.5), (4250, 2.5), (4500, 4.5), (5000, 2.5), (5000, 4.5), (5750, 4.0),
          (6000, 2.0)]


def one_core():
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        return "pinned to 1 core"
    except (AttributeError, OSError):
        return "thread pools set to 1 (no affinity control)"


def bench_numpy(wave, resolution, model):
    rng = np.random.default_rng(0)
    params = np.column_stack([rng.uniform(3500, 6250, 256), rng.uniform(0.5, 5, 256),
                              rng.uniform(-0.5, 0.75, 256), rng.uniform(-0.25, 0.25, 256)])
    synth_spectrum(wave, *params[0], resolution=resolution, model=model)  # windows, caches
    t = time.perf_counter()
    for p in params[:32]:
        synth_spectrum(wave, *p, resolution=resolution, model=model)
    single = 32 / (time.perf_counter() - t)
    t = time.perf_counter()
    for start in range(0, 256, 64):
        synth_batch(wave, params[start:start + 64], resolution=resolution, model=model)
    batch = 256 / (time.perf_counter() - t)
    print(f"numpy: {single:7.1f} spectra/s one at a time, {batch:7.1f} spectra/s in batches of 64 "
          f"({len(wave)} wavelengths)")


def bench_torch(wave, resolution, model):
    import torch

    torch.set_num_threads(1)
    from pfslogg.data.synth import synth_spectrum_torch

    w = torch.tensor(wave)
    params = torch.tensor([[4250.0, 1.5, 0.0, 0.0], [5500.0, 4.0, -0.5, 0.2], [3750.0, 4.5, 0.25, 0.0],
                           [6000.0, 2.0, 0.5, 0.1]], dtype=torch.float64, requires_grad=True)
    synth_spectrum_torch(w, params[:1], resolution=resolution, model=model)
    t = time.perf_counter()
    flux, cont = synth_spectrum_torch(w, params, resolution=resolution, model=model)
    fwd = (time.perf_counter() - t) / len(params)
    t = time.perf_counter()
    (flux / cont).sum().backward()
    bwd = (time.perf_counter() - t) / len(params)
    print(f"torch: forward {1e3 * fwd:.0f} ms/spectrum, backward {1e3 * bwd:.0f} ms/spectrum (float64, CPU)")


def bench_grid(resolution, model):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synth.h5"
        t = time.perf_counter()
        build_synth_grid(path, DEFAULT_RANGES, resolution=resolution, model=model)
        dt = time.perf_counter() - t
        size = path.stat().st_size / 2**20
    print(f"default grid (2160 spectra, R={resolution}): built in {dt:.1f} s ({2160 / dt:.0f} spectra/s), "
          f"{size:.0f} MiB")


def log_g_responses(wave, resolution, model, step=0.25):
    print(f"\nlog g responses d ln(EW)/d log g (central differences +-{step} dex, [M/H] = [a/M] = 0, "
          f"gravity_coupling = {model.gravity_coupling}); EW in A at the point in brackets")
    names = list(FEATURES)
    print(f"{'Teff':>5} {'logg':>4} | " + " | ".join(f"{n:>17}" for n in names))
    for teff, logg in POINTS:
        params = np.array([[teff, logg - step, 0, 0], [teff, logg, 0, 0], [teff, logg + step, 0, 0]], float)
        flux, cont = synth_batch(wave, params, resolution=resolution, model=model)
        cells = []
        for n in names:
            ew = [sum(equivalent_width(wave, flux[i], cont[i], c, h) for c, h in FEATURES[n]) for i in range(3)]
            slope = (np.log(ew[2]) - np.log(ew[0])) / (2 * step)
            cells.append(f"{slope:+6.2f} ({ew[1]:6.3f})")
        print(f"{teff:5.0f} {logg:4.1f} | " + " | ".join(f"{c:>17}" for c in cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=20000)
    ap.add_argument("--gravity-coupling", type=float, default=1.0)
    ap.add_argument("--no-grid", action="store_true", help="skip the full default-grid build")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch timing")
    a = ap.parse_args()
    model = dataclasses.replace(SynthModel(), gravity_coupling=a.gravity_coupling)
    print(f"pfslogg.data.synth benchmark: {one_core()}")
    wave = raw_wave(a.resolution)
    bench_numpy(wave, a.resolution, model)
    if not a.no_torch:
        bench_torch(wave, a.resolution, model)
    if not a.no_grid:
        bench_grid(a.resolution, model)
    log_g_responses(wave, a.resolution, model)


if __name__ == "__main__":
    main()
