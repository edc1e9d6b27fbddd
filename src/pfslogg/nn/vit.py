"""A Vision Transformer for 1D spectra (nanoGPT style: config, then modules top to bottom).

The spectrum (B, n_pix) is cut into patches, each patch becomes a token, a [CLS] token is put in
front, pre-norm Transformer blocks mix the tokens, and a linear head reads log g (standardised)
from the [CLS] token. Attention weights can be returned for attention maps (:mod:`.attention`).
The trunk's patch tokens after the final norm are the latents a probe reads (:meth:`ViT.encode`).

Paper scale (``ViTConfig()``): patch 16 -> 256 tokens for 4096 pixels, width 256, 6 layers,
8 heads, MLP 1024, dropout 0.1: about 4.8 M parameters.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TOKENIZERS = ("patch", "overlap")
POSITIONS = ("learned", "sinusoidal_wavelength")


@dataclass
class ViTConfig:
    n_pix: int = 4096            # pixels per spectrum
    patch: int = 16              # pixels per token
    stride: int = 0              # pixels between token starts; 0: = patch ("overlap" wants < patch)
    tokenizer: str = "patch"     # "patch": non-overlapping patches of the standardised flux;
                                 # "overlap": overlapping patches of the flux normalised per spectrum,
                                 #            plus one token of that spectrum's (mean, log scale)
    position: str = "learned"    # "learned": one vector per token index;
                                 # "sinusoidal_wavelength": sin/cos of each patch's central wavelength
    dim: int = 256               # token width
    depth: int = 6               # Transformer blocks
    heads: int = 8               # attention heads (dim % heads == 0)
    mlp: int = 1024              # hidden width of each block's MLP
    dropout: float = 0.1         # on attention weights, residual branches and embeddings

    @property
    def step(self):
        return self.stride or self.patch

    @property
    def n_patches(self):
        return (self.n_pix - self.patch) // self.step + 1

    @property
    def n_extra(self):
        """Tokens before the patches: [CLS], and the (mean, scale) token of "overlap"."""
        return 2 if self.tokenizer == "overlap" else 1

    def patch_spans(self):
        """(n_patches, 2) int array: pixel [start, stop) of every patch token."""
        start = np.arange(self.n_patches) * self.step
        return np.stack([start, start + self.patch], axis=1)


class Tokenizer(nn.Module):
    """Flux (B, n_pix) -> tokens (B, n_extra - 1 + n_patches, dim), without [CLS].

    A Conv1d with kernel = patch and stride = step is one linear map per patch. "overlap" first
    normalises each spectrum to zero mean and unit scale and adds one token made from that
    (mean, log scale), so the patches see line shapes and the model still knows the level.
    """

    def __init__(self, cfg):
        super().__init__()
        self.overlap = cfg.tokenizer == "overlap"
        self.embed = nn.Conv1d(1, cfg.dim, kernel_size=cfg.patch, stride=cfg.step)
        self.stats = nn.Linear(2, cfg.dim) if self.overlap else None

    def forward(self, x):
        if self.overlap:
            mu = x.mean(1, keepdim=True)                           # (B, 1)
            s = x.std(1, keepdim=True).clamp_min(1e-6)             # (B, 1)
            x = (x - mu) / s
        tok = self.embed(x.unsqueeze(1)).transpose(1, 2)           # (B, n_patches, dim)
        if self.overlap:
            stats = self.stats(torch.cat([mu, s.log()], dim=1))    # (B, dim)
            tok = torch.cat([stats.unsqueeze(1), tok], dim=1)      # (B, 1 + n_patches, dim)
        return tok


def sinusoidal_wavelength(cfg, wave):
    """(n_patches, dim) sin/cos codes of each patch's central wavelength, in units of the mean
    pixel step (so the fastest frequency resolves neighbouring patches like index codes would)."""
    wave = np.asarray(wave, float)
    spans = cfg.patch_spans()
    centre = np.array([wave[a:b].mean() for a, b in spans])               # (n_patches,) A
    u = (centre - wave[0]) / max((wave[-1] - wave[0]) / max(len(wave) - 1, 1), 1e-12)   # pixels
    freq = 1.0 / 10000.0 ** (np.arange(0, cfg.dim, 2) / cfg.dim)          # (dim/2,)
    ang = u[:, None] * freq[None, :]                                      # (n_patches, dim/2)
    pe = np.zeros((len(u), cfg.dim))
    pe[:, 0::2], pe[:, 1::2] = np.sin(ang), np.cos(ang[:, : cfg.dim // 2])
    return torch.as_tensor(pe, dtype=torch.float32)


class PositionalEmbedding(nn.Module):
    """Adds a position code to tokens (B, T, dim), T = n_extra + n_patches.

    "learned": a parameter (1, T, dim). "sinusoidal_wavelength": a fixed buffer for the patches
    (from the wavelengths) and learned vectors for the extra tokens ([CLS], stats).
    """

    def __init__(self, cfg, wave=None):
        super().__init__()
        self.learned = cfg.position == "learned"
        n_learned = cfg.n_extra + cfg.n_patches if self.learned else cfg.n_extra
        self.pos = nn.Parameter(torch.randn(1, n_learned, cfg.dim) * 0.02)
        if not self.learned:
            wave = np.arange(cfg.n_pix, dtype=float) if wave is None else wave   # load_state_dict replaces it
            self.register_buffer("wave_code", sinusoidal_wavelength(cfg, wave).unsqueeze(0))

    def forward(self, tok):
        pos = self.pos if self.learned else torch.cat([self.pos, self.wave_code], dim=1)   # (1, T, dim)
        return tok + pos


class SelfAttention(nn.Module):
    """Multi-head self-attention, (B, T, C) -> (B, T, C) and optionally the weights (B, H, T, T)."""

    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.p = cfg.dropout
        self.attn_drop = nn.Dropout(cfg.dropout)

    def forward(self, x, need_weights=False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)                                 # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if need_weights:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))          # (B, H, T, T)
            att = att.softmax(dim=-1)
            y = self.attn_drop(att) @ v                                       # (B, H, T, hd)
        else:   # fast path (flash / memory-efficient kernels)
            att = None
            drop = self.p if self.training else 0.0
            if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):   # CPU bf16 flash attention: its
                with torch.autocast("cpu", enabled=False):                    # backward is ~7x slower than float32's
                    y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), dropout_p=drop)
            else:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        y = y.transpose(1, 2).reshape(B, T, C)                                # (B, T, C)
        return self.proj(y), att


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(LN(x)), then x + MLP(LN(x)); (B, T, C) -> (B, T, C)."""

    def __init__(self, cfg):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.mlp), nn.GELU(), nn.Linear(cfg.mlp, cfg.dim),
                                 nn.Dropout(cfg.dropout))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, need_weights=False):
        a, att = self.attn(self.ln1(x), need_weights)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), att


class ViT(nn.Module):
    """Standardised flux x (B, n_pix) -> standardised log g (B,), from the [CLS] token.

    ``forward(x, return_attention=True)`` also returns the attention weights of every layer, a
    list of ``depth`` tensors (B, heads, T, T), token order [CLS], (stats), patches.

    Trunk and head: ``forward_features(x)`` gives every token after the last block, before the
    final norm (B, n_extra + n_patches, dim); ``forward_head`` normalises the [CLS] token alone
    and reads log g from it (bitwise the computation before the split). ``encode(x)``: the patch
    tokens after the final norm, without [CLS] and the stats token, (B, n_patches, dim); token t
    spans the pixels ``token_spans()[t]`` (= ``cfg.patch_spans()``).
    """

    def __init__(self, cfg, wave=None):
        super().__init__()
        self.cfg = cfg
        self.tokens = Tokenizer(cfg)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos = PositionalEmbedding(cfg, wave)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.ln = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, 1)

    def forward_features(self, x, return_attention=False):
        """Tokens after the last block (B, T, C), before the final norm; with ``return_attention``
        also the list of every layer's weights (B, heads, T, T)."""
        tok = self.tokens(x)                                                  # (B, T - 1, C)
        h = torch.cat([self.cls.expand(len(tok), -1, -1), tok], dim=1)        # (B, T, C)
        h = self.drop(self.pos(h))
        maps = []
        for block in self.blocks:
            h, att = block(h, return_attention)
            maps.append(att)
        return (h, maps) if return_attention else h

    def forward_head(self, h):
        return self.head(self.ln(h[:, 0])).squeeze(-1)                        # (B, T, C) -> (B,) from [CLS]

    def encode(self, x):
        h = self.forward_features(x)                                          # (B, T, C)
        return self.ln(h[:, self.cfg.n_extra:])                               # (B, n_patches, C)

    def token_spans(self):
        return self.cfg.patch_spans().astype(np.int64)

    def forward(self, x, return_attention=False):
        h, maps = self.forward_features(x, True) if return_attention else (self.forward_features(x), None)
        y = self.forward_head(h)                                              # (B,)
        return (y, maps) if return_attention else y
