"""Track F grid cost: wall time, number of cells, per-cell overhead (prints figures; not a test).

Run after `snakemake track_f --cores 2` (or `all`) in a work folder:

    python bench/bench_track_f.py [WORKDIR]

Reads Snakemake's per-job benchmark files (benchmarks/run_cell/**.tsv: wall seconds of each
cell) and each cell's own timing (results/cells/**.json details.timing: load, fit,
save+reload+evaluate). Overhead per cell = wall - fit - save/reload/evaluate: process start,
imports, reading the data sets, provenance hashing, Snakemake's job bookkeeping.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np


def main(root="."):
    root = Path(root)
    rows = []
    for tsv in sorted((root / "benchmarks/run_cell").rglob("*.tsv")):
        rel = tsv.relative_to(root / "benchmarks/run_cell").with_suffix("")
        cell = root / "results/cells" / f"{rel}.json"
        if not cell.exists():
            continue
        with open(tsv) as fh:
            wall = float(next(csv.DictReader(fh, delimiter="\t"))["s"])
        t = json.loads(cell.read_text())["details"]["timing"]
        rows.append((str(rel).split("/")[0], wall, t["load_s"], t["fit_s"], t["save_load_evaluate_s"]))
    if not rows:
        sys.exit(f"{root}: no cell benchmarks (run snakemake track_f first)")
    est = np.array([r[0] for r in rows])
    wall, load, fit, ev = (np.array([r[i] for r in rows]) for i in range(1, 5))
    over = wall - fit - ev
    print(f"cells: {len(rows)}   sum of cell wall times: {wall.sum() / 60:.1f} min "
          f"(on 2 cores, two cells at a time: about {wall.sum() / 120:.1f} min)")
    print(f"per-cell overhead (wall - fit - save/reload/evaluate): median {np.median(over):.2f} s, "
          f"90th percentile {np.percentile(over, 90):.2f} s; of which reading the data sets: median "
          f"{np.median(load):.2f} s")
    print(f"{'estimator':<24}{'cells':>6}{'wall s (median)':>17}{'fit s (median)':>16}{'total min':>11}")
    for e in dict.fromkeys(est):
        sel = est == e
        print(f"{e:<24}{sel.sum():>6}{np.median(wall[sel]):>17.1f}{np.median(fit[sel]):>16.1f}"
              f"{wall[sel].sum() / 60:>11.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
