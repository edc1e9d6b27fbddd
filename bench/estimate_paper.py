"""GPU-hours of the full study (config/paper.yaml) on the Slurm profile, estimated before running it.

    python bench/estimate_paper.py [--config config/paper.yaml] [--peak 989e12] [--mfu 0.4] [--runtime 120]

Builds the DAG's jobs the way ``snakemake all --configfile config/paper.yaml --profile slurm -n``
does (:func:`pfslogg.workflow.jobs`, with each job's parameter block), and for every cell of rule
``run_neural_cell`` (a GPU job on the Slurm profile) counts the FLOPs of one training step of its
network at the configured size with ``torch.utils.flop_counter.FlopCounterMode`` (as
``bench/bench_nn.py`` does: forward + backward, the network built by its estimator from the cell's
hyper-parameters, the batch prepared by the estimator's own training target). A cell's work is

    epochs x (training spectra x FLOPs per trained spectrum + validation spectra x FLOPs / 3)
    + test spectra x FLOPs / 3          (a forward pass is about a third of forward + backward)

-- an upper bound, since early stopping (``patience``) ends most fits before ``epochs``. A composite
(mixture of experts, conditioned model, a model on denoised spectra) is costed as its network part on
the whole training set. GPU time = work / (peak x MFU): ``--peak`` the bf16 dense peak of the GPU
(989 TFLOP/s: H100/H200 SXM) and ``--mfu`` the fraction of it reached -- 0.4 by default, an
assumption until ``bench/device_vit.py`` has measured it on the cluster's GPU (then pass its MFU).

Prints GPU-hours per rule and per variant, the longest cell, and whether the profile's
``run_neural_cell`` runtime (``--runtime`` minutes; profiles/default/config.yaml says 120) covers it,
with the ``--set-resources`` line to pass when it does not. The CPU rules of the paper config are not
estimated here (their cost grows with the training-set size; see ``bench/profile_paper.py`` for a
finished run).
"""

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
NETWORKS = ("vit", "cnn", "mlp", "mlp_shortcut", "denoiser", "diffusion")


def network_part(cls, hyper):
    """(class, hyper) of the network a cell trains: the class itself, or a composite's network part
    (its parts as the registry enumerates them, ``part_classes``)."""
    from pfslogg.estimators import REGISTRY

    if cls in NETWORKS:
        return cls, dict(hyper or {})
    parts = getattr(REGISTRY[cls], "part_classes", lambda h: ())(hyper or {})
    return next(((c.class_id, dict(h or {})) for c, h in parts if c.class_id in NETWORKS), (None, None))


def flops_per_spectrum(cls, hyper, batch=4):
    """FLOPs of forward + backward per training spectrum of a network (class, hyper) on 4096 pixels."""
    import bench_nn

    from pfslogg.estimators import make_estimator

    kinds = ("transform",) if cls in ("denoiser", "diffusion") else ("estimator",)
    make_estimator(cls, hyper, kinds=kinds)   # the cell's hyper-parameters are valid for the class
    _, module, target = bench_nn.build_class(cls, hyper)
    x, z, _ = bench_nn.step_inputs(module, target, batch)
    return bench_nn.count_flops(module, target, x, z) / batch


def estimate(cfg, peak, mfu):
    """Rows per run_neural_cell job: {variant, class, network, size, epochs, tflop, gpu_h}."""
    from pfslogg import workflow as W
    from pfslogg.estimators import REGISTRY

    n_val, n_test = int(cfg["datasets"]["val"]["n"]), int(cfg["datasets"]["test"]["n"])
    cache, rows = {}, []
    for rule, wc in W.jobs(cfg):
        if rule != "run_neural_cell":
            continue
        p = W.rule_params(rule, cfg, **{k: str(v) for k, v in wc.items()})
        net, hyper = network_part(p["class"], p["hyper"])
        if net is None:
            rows.append({"variant": p["estimator"], "class": p["class"], "network": None, "size": p["size"]})
            continue
        key = (net, repr(sorted(hyper.items())))
        if key not in cache:
            cache[key] = flops_per_spectrum(net, hyper)
        f = cache[key]
        epochs = int(hyper.get("epochs", getattr(REGISTRY[net](), "epochs", 1)))
        work = epochs * (p["size"] * f + n_val * f / 3) + n_test * f / 3
        rows.append({"variant": p["estimator"], "class": p["class"], "network": net, "size": int(p["size"]),
                     "epochs": epochs, "gflop_per_spectrum": f / 1e9, "tflop": work / 1e12,
                     "gpu_h": work / (peak * mfu) / 3600})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", default=None,
                    help="configuration file(s) over config/config.yaml (default: config/paper.yaml)")
    ap.add_argument("--peak", type=float, default=989e12, help="GPU bf16 dense peak, FLOP/s (H100/H200 SXM)")
    ap.add_argument("--mfu", type=float, default=0.4, help="fraction of the peak reached (bench/device_vit.py)")
    ap.add_argument("--runtime", type=float, default=120, help="run_neural_cell's runtime in the profile, minutes")
    a = ap.parse_args()

    from pfslogg.config import load_config

    cfg = load_config(ROOT / "config" / "config.yaml", *[ROOT / c for c in (a.config or ["config/paper.yaml"])])
    rows = estimate(cfg, a.peak, a.mfu)
    costed = [r for r in rows if r["network"]]
    by_variant = defaultdict(lambda: [0, 0.0, 0.0])
    for r in costed:
        v = by_variant[r["variant"]]
        v[0] += 1
        v[1] += r["gpu_h"]
        v[2] = max(v[2], r["gpu_h"])
    total = sum(r["gpu_h"] for r in costed)
    print(f"{len(rows)} run_neural_cell jobs (GPU jobs on the Slurm profile); peak {a.peak / 1e12:.0f} TFLOP/s "
          f"x MFU {a.mfu:g}; upper bounds (every fit runs its full epochs)")
    print(f"{'variant':24s} {'cells':>5s} {'network':>12s} {'GFLOP/spec':>10s} {'GPU-h':>8s} {'longest h':>9s}")
    for name, (n, h, top) in sorted(by_variant.items(), key=lambda kv: -kv[1][1]):
        r = next(r for r in costed if r["variant"] == name)
        print(f"{name:24s} {n:5d} {r['network']:>12s} {r['gflop_per_spectrum']:10.3f} {h:8.2f} {top:9.2f}")
    print(f"{'run_neural_cell':24s} {len(costed):5d} {'':>12s} {'':>10s} {total:8.2f}")
    for r in rows:
        if not r["network"]:
            print(f"not estimated: {r['variant']} (class {r['class']}: no network part)")
    longest = max((r for r in costed), key=lambda r: r["gpu_h"], default=None)
    if longest:
        need = math.ceil(longest["gpu_h"] * 60 * 1.5)
        print(f"longest cell: {longest['variant']} at {longest['size']:,} spectra x {longest['epochs']} epochs, "
              f"{longest['gpu_h']:.2f} GPU-h")
        if need > a.runtime:
            print(f"the profile's run_neural_cell runtime ({a.runtime:g} min) is short: pass "
                  f"--set-resources run_neural_cell:runtime={need} (1.5 x the longest cell)")
        else:
            print(f"the profile's run_neural_cell runtime ({a.runtime:g} min) covers it (1.5 x: {need} min)")


if __name__ == "__main__":
    main()
