"""Where a fitted network looks: attention maps of a ViT and gradient saliency, per pixel.

Every function takes a fitted neural estimator and noisy flux (n, n_pix) (``sigma`` is accepted
for symmetry with ``predict`` and not used) and returns a NumPy array (n, n_pix), float64:

* :func:`cls_attention` -- the [CLS] token's attention in the last layer, averaged over heads;
* :func:`attention_rollout` -- Abnar & Zuidema (2020): per layer average the heads, add the
  identity (the residual path), renormalise rows, multiply through the layers; the [CLS] row;
* :func:`gradient_saliency` -- |d log g / d flux| per pixel (dex per flux unit), any network.

Token weights go back to pixels by patch: every pixel of a patch gets its token's weight (where
overlapping patches share a pixel, their mean); pixels no patch covers get 0. ``tokens=True``
returns the token weights instead: (n, T) over all tokens in the order [CLS], (stats), patches,
whose rows sum to 1.
"""

import numpy as np
import torch

from ..errors import InputError
from .vit import ViT


def _module(est):
    est._check_fitted()
    return est.module_.eval()


def _vit(est):
    module = _module(est)
    if not isinstance(module.net, ViT):
        raise InputError(f"{est.class_id}: attention maps need a ViT estimator (class 'vit')")
    return module


def _batches(module, flux, batch_size):
    """Float32 tensors of ``batch_size`` spectra, on the module's device."""
    device = module.x_mean.device
    flux = np.asarray(flux, np.float32)
    for i in range(0, len(flux), batch_size):
        yield torch.from_numpy(flux[i:i + batch_size]).to(device)


def tokens_to_pixels(cfg, weights):
    """Token weights (n, T) (token order [CLS], (stats), patches) -> pixel weights (n, n_pix)."""
    cover = np.zeros((cfg.n_patches, cfg.n_pix))
    for t, (a, b) in enumerate(cfg.patch_spans()):
        cover[t, a:b] = 1.0
    count = cover.sum(0)
    return (np.asarray(weights)[:, cfg.n_extra:] @ cover) / np.maximum(count, 1.0)


@torch.no_grad()
def _layer_maps(module, x):
    """Head-averaged attention of every layer: a list of (B, T, T) tensors."""
    _, maps = module.net(module.standardize(x), return_attention=True)
    return [m.mean(1) for m in maps]


def rollout(maps):
    """Attention rollout of head-averaged layer maps [(B, T, T)] -> (B, T, T), rows sum to 1."""
    eye = torch.eye(maps[0].shape[-1], dtype=maps[0].dtype, device=maps[0].device)
    out = eye.expand_as(maps[0])
    for a in maps:
        a = a + eye
        a = a / a.sum(-1, keepdim=True)
        out = a @ out                         # later layers act on the result of earlier ones
    return out


def _cls_rows(est, flux, batch_size, reduce):
    module = _vit(est)
    rows = [reduce(_layer_maps(module, x))[:, 0].double().cpu().numpy() for x in _batches(module, flux, batch_size)]
    return np.concatenate(rows), module.net.cfg


def _output(weights, cfg, tokens):
    return weights if tokens else tokens_to_pixels(cfg, weights)


def cls_attention(est, flux, sigma=None, tokens=False, batch_size=64):
    """[CLS] attention of the last layer, mean over heads: (n, n_pix), or (n, T) with ``tokens``."""
    w, cfg = _cls_rows(est, flux, batch_size, lambda maps: maps[-1])
    return _output(w, cfg, tokens)


def attention_rollout(est, flux, sigma=None, tokens=False, batch_size=64):
    """Attention rollout's [CLS] row: (n, n_pix), or (n, T) with ``tokens`` (rows sum to 1)."""
    w, cfg = _cls_rows(est, flux, batch_size, rollout)
    return _output(w, cfg, tokens)


def gradient_saliency(est, flux, sigma=None, batch_size=64):
    """|d log g / d flux| (n, n_pix), dex per flux unit, of any fitted neural estimator (eval mode)."""
    module = _module(est)
    out = []
    for x in _batches(module, flux, batch_size):
        x.requires_grad_(True)
        module.logg(x).sum().backward()       # rows are independent in eval mode
        out.append(x.grad.abs().double().cpu().numpy())
    for p in module.parameters():
        p.grad = None
    return np.concatenate(out)
