"""Residual denoiser of spectra (Track D): x_hat = y + s * g([y, sigma], s), one file.

    net = ResidualDenoiser(DenoiserConfig(n_pix=4096))
    x_hat = net(flux, sigma, s)        # (B, n_pix) flux, (B, n_pix) sigma, (B,) strengths -> (B, n_pix)

``y`` is the noisy flux, ``sigma`` its noise sigma (the view's: estimated from ``y`` by default),
both in the data set's flux units; ``s >= 0`` the strength, one number per spectrum, which both
conditions ``g`` and multiplies its output: ``s = 0`` gives ``y`` back exactly (``y + 0``, bitwise)
and, while the network is untrained, a small ``s`` a small correction. The last convolution starts
at zero, so training starts from the identity.

``g`` is a small 1D U-Net. Its input, three channels per pixel: the standardised flux
``(y - x_mean) / x_scale``, ``sigma / x_scale``, and the mean training spectrum
``(x_mean - <x_mean>) / x_scale`` (a constant channel that tells the convolutions where the lines
are). Pixels are first folded ``patch`` at a time into channels (space to depth: (B, 3, L) ->
(B, 3 patch, L / patch)), the U-Net runs on ``levels`` resolutions, each ``factor`` times coarser
(widths ``channels * 2**level``), with one residual block (two convolutions) per level on the way
down, one at the coarsest and one per level on the way up, skip connections added; the output is
unfolded back to (B, L). Every block is
modulated by ``s`` (FiLM: per-channel scale and shift computed from ``s``). The U-Net's output ``u``
is the correction in units of the noise sigma at the reference strength ``S_REF``: ``g = sigma * u /
S_REF``, so the correction in flux units is ``(s / S_REF) * sigma * u`` and, where the network has
learned to remove the noise at ``s = S_REF``, ``u`` is about minus the noise in sigmas, a number of
order one (which is what the zero-started output layer can reach in a few hundred steps).

Shapes: B spectra, L = n_pix pixels (a multiple of ``patch * factor**levels``). No I/O and no
training loop here (the engine trains it with :class:`pfslogg.nn.engine.CleanSpectrumTarget`).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models import input_scales

S_REF = 0.1   # the strength at which the network's output is the correction in units of sigma


@dataclass
class DenoiserConfig:
    n_pix: int = 4096       # pixels per spectrum
    patch: int = 4          # pixels folded into channels before the U-Net
    channels: int = 16      # width at the finest level (doubles per level)
    levels: int = 2         # coarser resolutions below the finest
    factor: int = 4         # down-sampling per level
    kernel_size: int = 5    # positions per convolution (odd: 'same' padding)


def strength_features(s):
    """What the FiLM layers see of the strengths s (B,): (B, 2) = [s, log1p(100 s)], finite at s = 0
    (the identity stays exact) and spread over the usual strengths 0.01-0.5."""
    return torch.stack([s, torch.log1p(100.0 * s)], dim=-1)


class ResBlock(nn.Module):
    """(B, C, T) -> (B, C, T): ``h + conv(gelu(FiLM_s(conv(gelu(h)))))``, convolutions of kernel
    ``kernel_size`` with 'same' padding; FiLM: ``u * (1 + gamma(s)) + beta(s)``, starting at 1, 0."""

    def __init__(self, channels, kernel_size):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.film = nn.Linear(2, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h, cond):                                   # h (B, C, T), cond (B, 2)
        gamma, beta = self.film(cond).unsqueeze(-1).chunk(2, dim=1)   # (B, C, 1) each
        u = self.conv1(F.gelu(h)) * (1 + gamma) + beta             # (B, C, T)
        return h + self.conv2(F.gelu(u))                           # (B, C, T)


class UNet1d(nn.Module):
    """(B, c_in, T) and FiLM features (B, 2) -> (B, c_out, T); T a multiple of ``factor**levels``."""

    def __init__(self, c_in, c_out, channels, levels, factor, kernel_size):
        super().__init__()
        widths = [int(channels) * 2 ** i for i in range(int(levels) + 1)]
        self.stem = nn.Conv1d(c_in, widths[0], kernel_size, padding=(kernel_size - 1) // 2)
        self.down_blocks = nn.ModuleList(ResBlock(w, kernel_size) for w in widths[:-1])
        self.down = nn.ModuleList(nn.Conv1d(a, b, factor, stride=factor) for a, b in zip(widths, widths[1:]))
        self.mid = ResBlock(widths[-1], kernel_size)
        self.up = nn.ModuleList(nn.ConvTranspose1d(b, a, factor, stride=factor) for a, b in zip(widths, widths[1:]))
        self.up_blocks = nn.ModuleList(ResBlock(w, kernel_size) for w in widths[:-1])
        self.head = nn.Conv1d(widths[0], c_out, 1)

    def forward(self, x, cond):
        h, skips = self.stem(x), []                   # (B, w0, T)
        for block, down in zip(self.down_blocks, self.down):
            h = block(h, cond)
            skips.append(h)
            h = down(F.gelu(h))                       # (B, w_{i+1}, T / factor**(i+1))
        h = self.mid(h, cond)
        for i in reversed(range(len(self.up))):
            h = self.up[i](F.gelu(h)) + skips[i]      # (B, w_i, T / factor**i)
            h = self.up_blocks[i](h, cond)
        return self.head(F.gelu(h))                   # (B, c_out, T)


class ResidualDenoiser(nn.Module):
    """Noisy flux, sigma (B, n_pix) and strengths s (B,) or a number -> denoised flux (B, n_pix).

    Holds the input scales as buffers (they travel with the ``state_dict``): ``x_mean`` (n_pix,) the
    per-pixel mean of the first training block and ``x_scale`` (n_pix,), one number for all pixels
    ("global") or per pixel ("pixel"), as :class:`pfslogg.nn.models.Standardized`; flux units.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("x_mean", torch.zeros(cfg.n_pix))   # (n_pix,) flux units
        self.register_buffer("x_scale", torch.ones(cfg.n_pix))   # (n_pix,) flux units
        p = int(cfg.patch)
        self.unet = UNet1d(3 * p, p, cfg.channels, cfg.levels, cfg.factor, cfg.kernel_size)
        nn.init.zeros_(self.unet.head.weight)   # u = 0 at the start: training starts from the identity
        nn.init.zeros_(self.unet.head.bias)

    @torch.no_grad()
    def fit_scales(self, flux, mode="global"):
        """Set the input scales from a block of training flux (m, n_pix)."""
        mean, scale = input_scales(flux, mode, floor=1e-30)
        self.x_mean.copy_(mean)
        self.x_scale.copy_(scale)

    def u(self, flux, sigma, s):
        """The U-Net's output (B, n_pix): the correction at strength ``S_REF`` in units of sigma; s (B,)."""
        B, L = flux.shape
        p = int(self.cfg.patch)
        line = ((self.x_mean - self.x_mean.mean()) / self.x_scale).expand(B, L)
        x = torch.stack([(flux - self.x_mean) / self.x_scale, sigma / self.x_scale, line], dim=1)   # (B, 3, L)
        # space to depth: channel c, pixel p t + j -> channel c p + j, position t
        x = x.reshape(B, 3, L // p, p).transpose(2, 3).reshape(B, 3 * p, L // p)   # (B, 3p, L/p)
        out = self.unet(x, strength_features(s))                                # (B, p, L/p)
        return out.transpose(1, 2).reshape(B, L)                                # (B, L): depth to space

    def residual(self, flux, sigma, s):
        """The correction ``x_hat - y = s g`` in flux units (B, n_pix): ``(s / S_REF) * sigma * u``;
        exactly 0 at s = 0."""
        s = torch.as_tensor(s, dtype=flux.dtype, device=flux.device).expand(len(flux))   # (B,)
        return (s / S_REF).unsqueeze(-1) * sigma * self.u(flux, sigma, s)

    def forward(self, flux, sigma, s):
        return flux + self.residual(flux, sigma, s)    # (B, n_pix)


def count_params(module):
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))
