"""A grid file described for the paper: the numbers of ``results/data/grid.json`` (kind ``grid``,
rule ``describe_grid``): resolving powers, pixels, wavelength range, parameter axes, the embedded
model's settings and the size of the line list."""

import json

import h5py
import numpy as np

from .. import PARAMS
from ..atomic import write_json
from ..errors import InputError
from ..provenance import make_block, now


def describe_grid(grid_path):
    """Numbers that describe an instrument grid file (:mod:`pfslogg.data.gridio` layout) for
    the paper: resolving powers, pixels, wavelength range and dispersion, the parameter axes
    (first and last node, step, count), the number of nodes, the embedded model's settings
    (``model`` attribute of synth grids) and the size of its line list."""
    try:
        with h5py.File(grid_path, "r") as h5:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()}
            wave = h5["wave"][:]
            axes = {p: h5["axes"][p][:] for p in PARAMS}
            mask = h5["mask"][:]
    except (OSError, KeyError) as exc:
        raise InputError(f"{grid_path}: not a readable grid file ({exc})") from None

    def num(x):
        x = float(x)
        return int(x) if x.is_integer() else round(x, 6)

    metrics = {"source": str(attrs.get("source", "unknown")), "kind": str(attrs.get("kind", "")),
               "resolution": num(attrs["resolution"]) if "resolution" in attrs else None,
               "raw_resolution": num(attrs["raw_resolution"]) if "raw_resolution" in attrs else None,
               "n_pixels": int(len(wave)), "wave_range": [num(wave[0]), num(wave[-1])],
               "dispersion": float(np.mean(np.diff(wave))) if len(wave) > 1 else None,
               "n_nodes": int(np.count_nonzero(mask)), "axes": {}}
    for p in PARAMS:
        a = np.asarray(axes[p], float)
        metrics["axes"][p] = {"min": num(a[0]), "max": num(a[-1]),
                              "step": num(np.median(np.diff(a))) if len(a) > 1 else 0, "n": int(len(a))}
    if attrs.get("model"):
        try:
            metrics["model"] = json.loads(attrs["model"])
        except ValueError:
            raise InputError(f"{grid_path}: attribute 'model' is not JSON") from None
    if metrics["source"] == "synth":
        from .synth import line_table

        named = line_table()["named"]
        metrics["lines"] = {"named": int(named.sum()), "pseudo": int((~named).sum())}
    return {k: v for k, v in metrics.items() if v is not None}


def write_grid_description(grid_path, out_path, rule="describe_grid", command=None):
    """Write :func:`describe_grid` of ``grid_path`` to ``out_path`` as a results file of kind
    ``grid`` (with provenance: ``rule`` and ``command`` as the workflow ran it, default this
    process's command line); return the metrics."""
    started = now()
    metrics = describe_grid(grid_path)
    write_json(out_path, {"kind": "grid", "metrics": metrics,
                          "provenance": make_block(rule, [str(grid_path)], None, started=started,
                                                   command=command)})
    return metrics
