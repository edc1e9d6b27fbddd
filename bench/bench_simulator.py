"""Throughput of training on the simulator: SimulatorView reads vs. stored-data reads vs. the networks.

    python bench/bench_simulator.py                       # the project's grid (data/grid/instrument.h5)
    python bench/bench_simulator.py --pixels 1024 --blocks 3 --seconds 3   # a quick look, synthetic grid

Prints spectra/s, all on ``--threads`` threads (default 1: NumPy/BLAS and torch), of

* (a) ``SimulatorView.read_flux`` (:mod:`pfslogg.data.simview`) in blocks of ``--block`` rows (1024, as
  the training stream of a log g network reads them): parameters, interpolation over the grid, exposure
  model and fresh noise -- every block a new chunk (no cache hit); beside it ``read`` (the same plus the
  estimated sigma, which a network that reads no sigma is not given), the clean simulation alone
  (``read_clean``) and the time to draw the parameter table of the rows;
* (b) ``NoisyView.read_flux`` (and ``read``, with sigma) of blocks of the same size from an HDF5 data set (``--dataset``, default
  ``data/datasets/train.h5`` when it exists, else a temporary file of the same rows simulated with
  ``simulate_dataset``, which the view is also checked to equal bitwise): what training streams today;
* (c) the training throughput of the default CPU networks (``--networks``, default mlp, cnn, vit): the
  modules of ``make_estimator(cls).build(n_pix)``, AdamW steps on batches of ``--batch`` spectra
  (``bench/bench_nn.py``'s helpers: the engine's ``train_step``, the median step over ``--seconds``);

and, per network, the verdict "simulator faster than network X: yes/no" (is (a) above (c)? then
simulating every batch afresh does not slow training down more than the simulation's share, printed
as the time the simulator adds per trained spectrum relative to the step).

The grid: ``--grid``, default ``data/grid/instrument.h5`` with ``config/config.yaml``'s params and
noise; when it does not exist a synthetic instrument grid of the default shape (12 x 10 x 6 x 3 nodes,
``--pixels`` pixels, random smooth spectra with lines: ``bench/bench_dataset.py``'s kind) is built in
a temporary folder. Interpolation cost grows with the nodes a point needs (4 x 4 x 4 x 1 here, a_M
fixed at a node) and the pixels; the networks are built for the grid's pixels, so (a) and (c) compare
like with like.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "data/grid/instrument.h5"
DATASET = ROOT / "data/datasets/train.h5"
AXES = {   # bench_dataset.DEFAULT_AXES
    "T_eff": (3500.0, 6251.0, 250.0), "log_g": (0.5, 5.01, 0.5), "M_H": (-0.5, 0.751, 0.25), "a_M": None,
}
RANGES = {"T_eff": [3750.0, 6000.0], "log_g": [1.0, 5.0], "M_H": [-0.25, 0.75], "a_M": [0.0, 0.0]}
NOISE = {"exposures": 12, "exp_time": 900.0, "throughput": 2.2, "mag": [20.5, 22.5], "seeing": [0.5, 1.5]}
SEED = 1


def build_grid(path, n_pixels, seed=0):
    """A synthetic instrument grid (default shape) of ``n_pixels`` pixels: a low-order continuum times
    60 Gaussian lines whose depths vary smoothly across the nodes."""
    import numpy as np

    from pfslogg import PARAMS
    from pfslogg.data.gridio import GridWriter
    from pfslogg.data.instrument import pixel_wave

    axes = {p: (np.arange(*a) if a else np.array([-0.25, 0.0, 0.25])) for p, a in AXES.items()}
    rng = np.random.default_rng(seed)
    wave = pixel_wave(n_pixels=n_pixels)
    x = (wave - wave.mean()) / np.ptp(wave)
    centres = rng.uniform(wave[0], wave[-1], 60)
    prof = np.exp(-0.5 * ((wave[None] - centres[:, None]) / rng.uniform(0.8, 3.0, 60)[:, None]) ** 2)
    base = rng.uniform(0.05, 0.5, 60)
    sens = rng.normal(0.0, 0.3, (60, 4))
    shape = tuple(len(axes[p]) for p in PARAMS)
    with GridWriter(path, wave, axes, {"source": "bench", "kind": "instrument", "resolution": 5000.0}) as w:
        for idx in np.ndindex(*shape):
            u = np.array([i / max(n - 1, 1) for i, n in zip(idx, shape)])
            cont = 1.0 + (0.5 - u[0]) * x + 0.1 * u[1] * x**2
            depth = np.clip(base * np.exp(sens @ (u - 0.5)), 0, 0.9)
            w.write(idx, cont * np.prod(1.0 - depth[:, None] * prof, axis=0), cont)


def settings(a, tmp):
    """(grid path, ranges, noise, seed, chunk_size, where from) of the grid to simulate from."""
    if a.grid or GRID.exists():
        from pfslogg.config import load_config, split_seed

        cfg = load_config(ROOT / "config/config.yaml")
        noise = {k: v for k, v in cfg["noise"].items() if k not in ("noise_level", "sigma")}
        noise["mag"] = cfg["datasets"]["train"].get("mag", noise["mag"])
        grid = Path(a.grid) if a.grid else GRID
        return grid, cfg["params"], noise, split_seed(cfg, "train"), cfg["datasets"]["chunk_size"], str(grid)
    grid = tmp / "grid.h5"
    t0 = time.perf_counter()
    build_grid(grid, a.pixels)
    return grid, RANGES, NOISE, SEED, 1024, f"synthetic 12x10x6x3 grid, {a.pixels} pixels " \
                                            f"(built in {time.perf_counter() - t0:.1f} s)"


def rate(fn, blocks, block):
    """(spectra/s, median s per block) of ``fn(start, stop)`` over blocks 1..``blocks`` of ``block`` rows,
    after block 0 as a warm-up (first allocations)."""
    fn(0, block)
    times = []
    for i in range(1, blocks + 1):
        t0 = time.perf_counter()
        fn(i * block, (i + 1) * block)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return block / med, med


def network_rates(names, n_pix, batch, seconds):
    """{name: spectra/s} of training steps of the default network ``name`` (bench_nn's helpers)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_nn

    bench_nn.N_PIX = n_pix   # the networks for the grid's pixels
    out = {}
    for name in names:
        est, module, target = bench_nn.build_class(name, {})
        module.train()
        x, z, _ = bench_nn.step_inputs(module, target, batch)
        opt, sched = bench_nn.optimizer(module, est)
        dt, _, _ = bench_nn.measure(module, opt, sched, target, x, z, seconds)
        out[name] = batch / dt
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="(a) SimulatorView.read, (b) NoisyView.read of an HDF5 data set, "
                                        "(c) training steps of the default networks; see the module docstring.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", help=f"instrument grid file (default {GRID.relative_to(ROOT)} if it exists, "
                                   "else a synthetic grid)")
    ap.add_argument("--pixels", type=int, default=4096, help="pixels of the synthetic grid (default 4096)")
    ap.add_argument("--dataset", help=f"HDF5 data set for (b) (default {DATASET.relative_to(ROOT)} if it exists, "
                                      "else a temporary one simulated from the grid)")
    ap.add_argument("--block", type=int, default=1024, help="rows per read (default 1024)")
    ap.add_argument("--blocks", type=int, default=4, help="blocks timed per reader, after one warm-up block "
                                                       "(median; default 4)")
    ap.add_argument("--networks", default="mlp,cnn,vit", help="default networks to time (default mlp,cnn,vit)")
    ap.add_argument("--batch", type=int, default=256, help="training batch (default 256)")
    ap.add_argument("--seconds", type=float, default=4.0, help="timing per network (default 4)")
    ap.add_argument("--threads", type=int, default=1, help="NumPy/BLAS and torch threads (default 1)")
    a = ap.parse_args()

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import numpy as np
    import torch

    from pfslogg.allocator import reuse_freed_memory
    reuse_freed_memory()   # as every workflow job runs (pfslogg.cli.main)
    from pfslogg.data.dataset import SpectraSet, simulate_dataset
    from pfslogg.data.simview import SimulatorView
    from pfslogg.data.views import NoisyView
    from pfslogg.threads import numpy_threads

    torch.set_num_threads(a.threads)
    n = a.block * (a.blocks + 1)   # a warm-up block and the blocks timed
    with tempfile.TemporaryDirectory() as tmp, numpy_threads(a.threads):
        tmp = Path(tmp)
        grid, ranges, noise, seed, chunk, grid_from = settings(a, tmp)

        def sim(**kw):
            return SimulatorView(grid, n, ranges, seed, noise, 1.0, chunk_size=chunk, **kw)

        t0 = time.perf_counter()
        v = sim(rng_seed=0)
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        v.params
        t_params = time.perf_counter() - t0
        n_pix = v.n_pixels
        rate(sim(rng_seed=1).read_flux, 2, a.block)   # warm-up: the first view's reads ran ~2x slower
        sim_rate, _ = rate(v.read_flux, a.blocks, a.block)
        sigma_rate, _ = rate(sim(rng_seed=0).read, a.blocks, a.block)
        clean_rate, _ = rate(sim(rng_seed=0).read_clean, a.blocks, a.block)

        dataset, same = (Path(a.dataset) if a.dataset else DATASET), None
        if not dataset.exists() or a.dataset is None and not GRID.exists():
            dataset = tmp / "train.h5"
            t0 = time.perf_counter()
            simulate_dataset(grid, dataset, n, ranges, seed, noise, chunk_size=chunk, threads=a.threads)
            made = time.perf_counter() - t0
            ds = SpectraSet(dataset)
            check = sim(rng_seed=0, dataset_n=n)
            same = np.array_equal(check.read_clean(0, min(n, 2 * a.block)), ds.read(0, min(n, 2 * a.block))[0]) \
                and np.array_equal(check.logg, ds.logg)
            data_from = f"temporary, {n} rows simulated in {made:.1f} s ({n / made:.0f} spectra/s, simulate_dataset)"
        else:
            ds = SpectraSet(dataset)
            data_from = str(dataset)
        rows = min(ds.n, n) // a.block
        if rows < 2:
            ap.error(f"--dataset {dataset}: fewer rows ({ds.n}) than two blocks of {a.block}")
        nv = NoisyView(ds, 1.0, n=rows * a.block, rng_seed=0)
        file_rate, _ = rate(nv.read_flux, rows - 1, a.block)
        file_sigma_rate, _ = rate(NoisyView(ds, 1.0, n=rows * a.block, rng_seed=0).read, rows - 1, a.block)

        nets = network_rates(a.networks.split(","), n_pix, a.batch, a.seconds)

    print(f"{a.threads} thread(s); grid: {grid_from}; {n_pix} pixels; blocks of {a.block} rows; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"data set for (b): {data_from} ({len(ds.wave)} pixels)")
    if same is not None:
        print(f"SimulatorView(dataset_n={n}) equals that file bitwise (clean flux, log g): {'yes' if same else 'NO'}")
    print(f"SimulatorView: opened in {t_open:.2f} s (grid read), parameter table of {n} rows in {1e3 * t_params:.1f} ms")
    print()
    print(f"{'source':<44} {'spectra/s':>10} {'ms/spectrum':>12}")
    table = [("(a) SimulatorView.read_flux (noisy flux)", sim_rate),
             ("    SimulatorView.read (noisy flux + sigma)", sigma_rate),
             ("    SimulatorView.read_clean (simulation only)", clean_rate),
             ("(b) NoisyView.read_flux of the HDF5 data set", file_rate),
             ("    NoisyView.read (noisy flux + sigma)", file_sigma_rate)]
    table += [(f"(c) train {name} (batch {a.batch}, AdamW)", r) for name, r in nets.items()]
    for label, r in table:
        print(f"{label:<44} {r:>10.0f} {1e3 / r:>12.3f}")
    print()
    print(f"simulator vs stored data: {sim_rate / file_rate:.2f} x the spectra/s of NoisyView.read_flux")
    for name, r in nets.items():
        print(f"simulator faster than network {name}: {'yes' if sim_rate > r else 'no'} "
              f"(simulating adds {r / sim_rate:.0%} of the step's time per spectrum; "
              f"stored data adds {r / file_rate:.0%})")


if __name__ == "__main__":
    main()
