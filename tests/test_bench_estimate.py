"""bench/estimate_paper.py and bench/bench_nn.py build every configured network's training step: a new
kind of target (a mixture head, extra labels) must not break the GPU-hours estimate of the full study."""

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

torch = pytest.importorskip("torch")


def configured_networks():
    """(variant, network class, hyper) of every variant of the full study (config/paper.yaml) with a network part."""
    import estimate_paper

    from pfslogg.config import load_config

    cfg = load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml")
    out = {}
    for name, v in cfg["estimators"].items():
        net, hyper = estimate_paper.network_part(v["class"], v.get("hyper"))
        if net is not None:
            out.setdefault((net, repr(sorted(hyper.items()))), (name, net, hyper))
    return sorted(out.values())


def test_the_configured_networks_include_every_kind_of_target():
    names = {name for name, _, _ in configured_networks()}
    assert {"mlp_npe", "cnn_npe", "mlp_multi", "mlp_nll", "denoiser", "diffusion"} <= names, names


@pytest.mark.parametrize("name,net,hyper", configured_networks(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_configured_network_counts_its_flops(name, net, hyper):
    """Forward + backward of the network's own training target on a batch the stream would yield: a
    positive FLOP count and a finite loss (the estimate's input)."""
    import bench_nn
    import estimate_paper

    flops = estimate_paper.flops_per_spectrum(net, hyper, batch=2)
    assert flops > 0 and math.isfinite(flops), (name, flops)
    _, module, target = bench_nn.build_class(net, hyper)
    x, z, _ = bench_nn.step_inputs(module, target, 2)
    inputs = x if isinstance(x, (tuple, list)) else (x,)
    with torch.no_grad():
        assert math.isfinite(float(target.loss(module(*inputs).float(), z))), name
