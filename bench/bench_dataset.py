"""Benchmark of data-set generation (``pfslogg.data.dataset.simulate_dataset``).

Builds a synthetic instrument grid of the default shape (12 x 10 x 6 x 3 nodes x 4096 pixels, random
smooth spectra with absorption lines), then, each in a fresh subprocess:

* generates a data set of N spectra (default 20 000, the default train split) and of 10 x N;
* writes the same arrays (wave, flux, error: same shapes, dtype and chunking) with h5py alone.

Reports spectra/s, the ratio of generation wall time to the h5py-only write of the same bytes
(target <= 2x), and the peak RSS of each run (``resource.getrusage`` in the child process), which
should not grow with N: generation streams chunks of rows.

    python bench/bench_dataset.py               # N = 20000 and 200000
    python bench/bench_dataset.py --n 5000      # quicker
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_AXES = {
    "T_eff": np.arange(3500.0, 6251.0, 250.0),   # 12
    "log_g": np.arange(0.5, 5.01, 0.5),          # 10
    "M_H": np.arange(-0.5, 0.751, 0.25),         # 6
    "a_M": np.array([-0.25, 0.0, 0.25]),         # 3
}
RANGES = {"T_eff": [3750.0, 6000.0], "log_g": [1.0, 5.0], "M_H": [-0.25, 0.75], "a_M": [0.0, 0.0]}
NOISE = {"exposures": 12, "exp_time": 900.0, "throughput": 2.2, "mag": [20.5, 22.5], "seeing": [0.5, 1.5]}
ROWS_CHUNK = 256   # h5py chunk rows used by simulate_dataset for chunk_size >= 256


def build_grid(path, seed=0):
    """Random smooth spectra: low-order continuum times 60 Gaussian lines whose depths vary smoothly
    across the nodes."""
    from pfslogg import PARAMS
    from pfslogg.data.gridio import GridWriter
    from pfslogg.data.instrument import pixel_wave

    rng = np.random.default_rng(seed)
    wave = pixel_wave()
    x = (wave - wave.mean()) / np.ptp(wave)
    centres = rng.uniform(wave[0], wave[-1], 60)
    prof = np.exp(-0.5 * ((wave[None] - centres[:, None]) / rng.uniform(0.8, 3.0, 60)[:, None]) ** 2)
    base = rng.uniform(0.05, 0.5, 60)
    sens = rng.normal(0.0, 0.3, (60, 4))
    shape = tuple(len(DEFAULT_AXES[p]) for p in PARAMS)
    with GridWriter(path, wave, DEFAULT_AXES, {"source": "bench", "kind": "instrument", "resolution": 5000.0}) as w:
        for idx in np.ndindex(*shape):
            u = np.array([i / max(n - 1, 1) for i, n in zip(idx, shape)])  # node position in [0, 1]^4
            cont = 1.0 + (0.5 - u[0]) * x + 0.1 * u[1] * x**2
            depth = np.clip(base * np.exp(sens @ (u - 0.5)), 0, 0.9)
            flux = cont * np.prod(1.0 - depth[:, None] * prof, axis=0)
            w.write(idx, flux, cont)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def child_simulate(grid, out, n, chunk_size):
    from pfslogg.data.dataset import simulate_dataset

    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    simulate_dataset(grid, out, n, RANGES, seed=1, noise=NOISE, chunk_size=chunk_size, threads=2)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "peak_rss_mib": peak_rss_mib(), "rss_after_import_mib": rss0,
            "bytes": os.path.getsize(out)}


def child_h5py(out, n, chunk_size):
    """The same arrays with h5py alone: data made once, written chunk by chunk like the generator."""
    import h5py

    rng = np.random.default_rng(0)
    block = rng.uniform(0.5, 1.5, (chunk_size, 4096)).astype(np.float32)
    err = rng.uniform(0.05, 0.5, (chunk_size, 4096)).astype(np.float32)
    wave = np.linspace(7100.0, 8850.0, 4096)
    t0 = time.perf_counter()
    with h5py.File(out, "w") as h5:
        h5.create_dataset("spectrumdataset/wave", data=wave)
        rows = min(chunk_size, n, ROWS_CHUNK)
        fl = h5.create_dataset("dataset/arrays/flux/value", shape=(n, 4096), dtype="float32", chunks=(rows, 4096))
        er = h5.create_dataset("dataset/arrays/error/value", shape=(n, 4096), dtype="float32", chunks=(rows, 4096))
        for start in range(0, n, chunk_size):
            m = min(chunk_size, n - start)
            fl[start:start + m] = block[:m]
            er[start:start + m] = err[:m]
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "peak_rss_mib": peak_rss_mib(), "bytes": os.path.getsize(out)}


def run_child(*args):
    """Run this script as a fresh process (its own peak RSS) and return its JSON report."""
    proc = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="spectra in the small run (the large one has 10x)")
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "out"))
    ap.add_argument("--keep", action="store_true", help="keep the data-set files")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child:
        kind, *rest = a.child
        if kind == "simulate":
            grid, out, n, chunk = rest
            report = child_simulate(grid, out, int(n), int(chunk))
        else:
            out, n, chunk = rest
            report = child_h5py(out, int(n), int(chunk))
        print(json.dumps(report))
        return

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    grid = work / "grid_default_shape.h5"
    if not grid.exists():
        t0 = time.perf_counter()
        build_grid(grid)
        print(f"built grid {grid} (12x10x6x3 nodes x 4096 px) in {time.perf_counter() - t0:.1f} s")

    print(f"host: {os.cpu_count()} CPUs; chunk_size={a.chunk_size}")
    results = {}
    for n in (a.n, 10 * a.n):
        out = work / f"dataset_{n}.h5"
        r = run_child("simulate", grid, out, n, a.chunk_size)
        results[n] = r
        print(f"simulate_dataset N={n:>7}: {r['wall_s']:7.1f} s  {n / r['wall_s']:8.0f} spectra/s  "
              f"{r['bytes'] / r['wall_s'] / 2**20:6.0f} MiB/s  peak RSS {r['peak_rss_mib']:6.0f} MiB "
              f"(after imports {r['rss_after_import_mib']:.0f} MiB)  file {r['bytes'] / 2**20:.0f} MiB")
        if not a.keep:
            out.unlink()
        if n == a.n:
            base = work / f"h5only_{n}.h5"
            h = run_child("h5py", base, n, a.chunk_size)
            base.unlink()
            print(f"h5py-only write N={n:>7}: {h['wall_s']:7.1f} s  {n / h['wall_s']:8.0f} spectra/s  "
                  f"{h['bytes'] / h['wall_s'] / 2**20:6.0f} MiB/s  peak RSS {h['peak_rss_mib']:6.0f} MiB")
            results["h5py"] = h
    ratio = results[a.n]["wall_s"] / results["h5py"]["wall_s"]
    growth = results[10 * a.n]["peak_rss_mib"] / results[a.n]["peak_rss_mib"]
    print()
    print(f"generation / h5py-only wall time (N={a.n}): {ratio:.2f}x   (target <= 2x: {'OK' if ratio <= 2 else 'MISSED'})")
    print(f"peak RSS 10xN / N: {growth:.2f}   ({results[a.n]['peak_rss_mib']:.0f} -> "
          f"{results[10 * a.n]['peak_rss_mib']:.0f} MiB; {'flat' if growth < 1.2 else 'GROWS with N'})")
    print(f"throughput: {a.n / results[a.n]['wall_s']:.0f} spectra/s (N={a.n}), "
          f"{10 * a.n / results[10 * a.n]['wall_s']:.0f} spectra/s (N={10 * a.n})")


if __name__ == "__main__":
    main()
