"""What the allocator setting of the command line (:func:`pfslogg.allocator.reuse_freed_memory`) saves.

    python bench/bench_allocator.py --dataset data/datasets/train.h5
    python bench/bench_allocator.py            # a temporary data set of --rows spectra (synthetic grid)

Runs the same work twice, each time in a fresh process on one thread, once with glibc's and NumPy's
defaults and once with :func:`~pfslogg.allocator.reuse_freed_memory` called first, and prints for each
the wall time, user and system CPU seconds, minor page faults and peak resident memory:

* ``stream``: ``--passes`` passes of ``NoisyView.read_flux`` over ``--rows`` training rows in blocks of
  1,024 (fresh noise, float64: 32 MiB a block -- what a network's training stream and Ridge's Gram pass
  read), plus each block cast to float32 as the networks take it;
* ``load``: ``NoisyView.load(sigma=False)`` of the same rows (what LightGBM, PCA and the in-memory
  estimators read), twice.

System time is the kernel zeroing the fresh pages of every new large array; the verdict line says how
much of the default's wall time the setting saved. The values read are checked to be the same bitwise.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

WORK = r"""
import hashlib, json, resource, sys, time
import numpy as np
sys.path.insert(0, {src!r})
if {tuned!r}:
    from pfslogg.allocator import reuse_freed_memory
    reuse_freed_memory()
from pfslogg.data.dataset import SpectraSet
from pfslogg.data.views import NoisyView

ds = SpectraSet({path!r})
rows = min({rows}, ds.n)
h = hashlib.sha256()
t0 = time.perf_counter()
if {work!r} == "stream":
    view = NoisyView(ds, 1.0, n=rows, rng_seed=0)
    for _ in range({passes}):
        for a in range(0, rows, 1024):
            flux = view.read_flux(a, min(a + 1024, rows))
            x = flux.astype(np.float32)
            h.update(x[:, :8].tobytes())
else:
    for k in range(2):
        X, _ = NoisyView(ds, 1.0, n=rows, rng_seed=k).load(sigma=False)
        h.update(X[:, :8].tobytes())
        del X
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "faults": ru.ru_minflt,
                  "rss_mb": ru.ru_maxrss / 1024, "sha": h.hexdigest()}}))
"""


def run(path, work, tuned, rows, passes):
    code = WORK.format(src=str(ROOT / "src"), tuned=tuned, path=str(path), work=work, rows=rows, passes=passes)
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env})
    if out.returncode:
        sys.exit(f"bench_allocator: the {work} run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def temporary_dataset(folder, rows):
    """A data set of ``rows`` spectra simulated from a small synthetic grid (bench_dataset's kind)."""
    from bench_dataset import NOISE, RANGES, build_grid

    from pfslogg.data.dataset import simulate_dataset
    grid, out = Path(folder) / "grid.h5", Path(folder) / "train.h5"
    build_grid(grid)
    simulate_dataset(grid, out, rows, RANGES, seed=1, noise=NOISE, threads=1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, help="an HDF5 data set (default: a temporary one)")
    ap.add_argument("--rows", type=int, default=20000, help="training rows read (default 20000)")
    ap.add_argument("--passes", type=int, default=3, help="passes of the stream (default 3)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each variant, best kept (default 2)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.dataset
        if path is None:
            path = temporary_dataset(tmp, args.rows)
        elif not path.exists():
            sys.exit(f"bench_allocator: {path}: no such data set (expected an HDF5 file made by simulate_dataset)")
        print(f"{path}: {args.rows} rows, one thread, best of {args.repeat} fresh processes per line")
        print(f"{'work':8s} {'allocator':22s} {'wall s':>7s} {'user s':>7s} {'sys s':>7s} {'faults':>9s} "
              f"{'peak MB':>8s}")
        for work in ("stream", "load"):
            res = {}
            for tuned in (False, True):
                runs = [run(path, work, tuned, args.rows, args.passes) for _ in range(args.repeat)]
                r = res[tuned] = min(runs, key=lambda r: r["wall"])
                name = "reuse_freed_memory()" if tuned else "defaults"
                print(f"{work:8s} {name:22s} {r['wall']:7.2f} {r['user']:7.2f} {r['sys']:7.2f} "
                      f"{r['faults']:9d} {r['rss_mb']:8.0f}")
            same = res[False]["sha"] == res[True]["sha"]
            print(f"{work:8s} saved {1 - res[True]['wall'] / res[False]['wall']:.0%} of the wall time; "
                  f"values bitwise the same: {'yes' if same else 'NO'}")
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
