"""Training throughput and MFU of the paper-scale ViT on one GPU (H100 / H200), bf16 + torch.compile.

    python bench/device_vit.py [--batch 256] [--steps 30] [--warmup 10]      # on the GPU machine
    python bench/device_vit.py --cpu --steps 2                                # a check on CPU

Builds the paper ViT (patch 16 -> 256 tokens of 4096 pixels, width 256, 6 layers, 8 heads, MLP
1024) inside the project's input/label wrapper, trains it on random spectra (batch, 4096) with the
engine's own step (AdamW, clipping) under bf16 autocast and ``torch.compile`` (both off with
``--cpu``), and prints after ``--warmup`` steps: spectra/s, the model FLOPs per spectrum, the
achieved TFLOP/s and the MFU against the bf16 dense peak of an H100/H200 SXM (989 TFLOP/s), the
time of one epoch of 1M spectra, and the peak GPU memory.

FLOPs per spectrum (forward; multiply-add = 2 FLOPs): patch embedding 2 n_patch patch D; per layer
2 T (4 D^2 + 2 D M) for the qkv/proj/MLP matrices and 2 * 2 T^2 D for QK^T and AV; head 2 D.
Training = 3 x forward (backward ~ 2 x forward); T = n_patch + 1 tokens.
Self-contained: needs only torch and this repository's src/ (put on the path here).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PEAK_BF16 = 989e12   # FLOP/s, H100 / H200 SXM, bf16 dense (no sparsity)
N_PIX = 4096


def vit_flops(cfg):
    """Forward FLOPs per spectrum of a ViTConfig (matrix products only; norms/softmax are small)."""
    T, D, M = cfg.n_patches + cfg.n_extra, cfg.dim, cfg.mlp
    embed = 2 * cfg.n_patches * cfg.patch * D
    layer = 2 * T * (4 * D * D + 2 * D * M) + 2 * 2 * T * T * D
    return embed + cfg.depth * layer + 2 * D


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=None, help="spectra per step (256 on GPU, 8 with --cpu)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (10 on GPU, 1 with --cpu)")
    ap.add_argument("--cpu", action="store_true", help="run on CPU, float32, not compiled (a check)")
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from pfslogg.nn.engine import train_step
    from pfslogg.nn.models import Standardized, count_params
    from pfslogg.nn.vit import ViT, ViTConfig

    cuda = not a.cpu
    if cuda and not torch.cuda.is_available():
        sys.exit("device_vit.py: no CUDA device (use --cpu for a check on CPU)")
    device = torch.device("cuda" if cuda else "cpu")
    batch = a.batch or (256 if cuda else 8)
    warmup = a.warmup if a.warmup is not None else (10 if cuda else 1)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    cfg = ViTConfig()
    module = Standardized(ViT(cfg), N_PIX).to(device)
    model = torch.compile(module) if cuda and not a.no_compile else module
    opt = torch.optim.AdamW(module.parameters(), lr=3e-4, weight_decay=0.05, fused=cuda or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    x = 1.0 + 0.05 * torch.randn(batch, N_PIX, device=device)
    z = torch.randn(batch, device=device)

    def steps(n):
        for _ in range(n):
            loss, _ = train_step(model, opt, sched, x, z, F.mse_loss, 1.0, cuda)
        if cuda:
            torch.cuda.synchronize()
        return float(loss)

    t0 = time.perf_counter()
    steps(warmup)
    t_warm = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    loss = steps(a.steps)
    dt = (time.perf_counter() - t0) / a.steps

    rate = batch / dt
    fwd = vit_flops(cfg)
    achieved = 3 * fwd * rate
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"device {name}; torch {torch.__version__}; bf16 autocast {cuda}; torch.compile {cuda and not a.no_compile}")
    print(f"paper ViT: {count_params(module):,} parameters, {cfg.n_patches + cfg.n_extra} tokens, batch {batch}")
    print(f"warm-up {warmup} steps: {t_warm:.1f} s (compilation included); loss after: {loss:.4f}")
    print(f"step {dt * 1e3:.1f} ms -> {rate:,.0f} spectra/s (training)")
    print(f"FLOPs per spectrum: forward {fwd / 1e9:.3f} GFLOP, training {3 * fwd / 1e9:.3f} GFLOP")
    print(f"achieved {achieved / 1e12:.1f} TFLOP/s; MFU {achieved / PEAK_BF16:.1%} of {PEAK_BF16 / 1e12:.0f} TFLOP/s bf16")
    print(f"one epoch of 1M spectra: {1e6 / rate / 60:.1f} min")
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
