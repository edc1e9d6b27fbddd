"""Input/label standardisation and the simple networks: MLP, MLP with a linear shortcut, 1D CNN.

Every network maps standardised flux ``x`` (B, n_pix) to a standardised log g ``z`` (B,); the
:class:`Standardized` wrapper around it holds the fixed input and label scales (buffers, so they
travel with the ``state_dict``) and turns raw flux into log g in dex. No I/O, no training loop.

Every network (here and :class:`pfslogg.nn.vit.ViT`) is a trunk plus a head, timm style, so that
probes, flows or other heads can reuse the trunk unchanged:

* ``forward_features(x)``: what the head reads (B, T, D) (the ViT: every token before the final norm);
* ``forward_head(features)``: that -> (B,); ``forward(x) = forward_head(forward_features(x))``,
  bitwise what the network computed before the split (same modules, same ``state_dict`` keys);
* ``encode(x)``: the latents (B, T, D), T tokens along the wavelength axis, D features each;
* ``token_spans()``: (T, 2) int array, the pixel span ``[start, stop)`` of every token (for pooling
  latents by wavelength segment).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

STANDARDIZE = ("global", "pixel")


def input_scales(flux, mode="global", floor=1e-6):
    """``(mean, scale)`` (n_pix,) float64 of a block of flux (m, n_pix): the per-pixel mean and either one
    scale for every pixel (``"global"``: the spread about that mean) or a scale per pixel (``"pixel"``),
    at least ``floor``. What every network standardises its inputs with."""
    flux = torch.as_tensor(flux, dtype=torch.float64)
    mean = flux.mean(0)
    scale = flux.std(0, correction=0) if mode == "pixel" else (flux - mean).std(correction=0).expand_as(mean)
    return mean, scale.clamp_min(floor)


class Standardized(nn.Module):
    """Raw noisy flux (B, n_pix) -> standardised log g (B,) through ``net``; :meth:`logg` in dex.

    Input: ``x = (flux - x_mean) / x_scale`` with ``x_mean`` the per-pixel mean of the first
    training block and ``x_scale`` either one number for all pixels (``"global"``: keeps the
    relative depths of lines, what convolutions and patches want) or per pixel (``"pixel"``).
    Label: ``z = (logg - y_mean) / y_std`` over the training view (dex).
    """

    def __init__(self, net, n_pix):
        super().__init__()
        self.net = net
        self.register_buffer("x_mean", torch.zeros(n_pix))   # (n_pix,) flux units
        self.register_buffer("x_scale", torch.ones(n_pix))   # (n_pix,) flux units
        self.register_buffer("y_mean", torch.zeros(()))      # dex
        self.register_buffer("y_std", torch.ones(()))        # dex

    @torch.no_grad()
    def fit_scales(self, flux, logg, mode="global"):
        """Set the scales from a block of training flux (m, n_pix) and all training log g (n,)."""
        logg = torch.as_tensor(logg, dtype=torch.float64)
        mean, scale = input_scales(flux, mode)
        self.x_mean.copy_(mean)
        self.x_scale.copy_(scale)
        self.y_mean.copy_(logg.mean())
        self.y_std.copy_(logg.std(correction=0).clamp_min(1e-6))

    def standardize(self, flux):
        return (flux - self.x_mean) / self.x_scale     # (B, n_pix)

    def forward(self, flux):
        return self.net(self.standardize(flux))       # (B,) standardised log g

    def logg(self, flux):
        """log g in dex (B,) of raw flux (B, n_pix)."""
        return self.forward(flux) * self.y_std + self.y_mean

    def encode(self, flux):
        """Latents (B, T, D) of raw flux (B, n_pix): ``net.encode`` of the standardised flux."""
        return self.net.encode(self.standardize(flux))

    def token_spans(self):
        """(T, 2) int array: pixel ``[start, stop)`` of every token of :meth:`encode`."""
        return self.net.token_spans()


def whole_spectrum(n_pix):
    """(1, 2) int array: one token spanning all ``n_pix`` pixels (the MLPs' single latent token)."""
    return np.array([[0, int(n_pix)]], dtype=np.int64)


class MLP(nn.Module):
    """x (B, n_in) -> (B,): Linear-GELU-Dropout for each width in ``hidden``, then Linear to 1.

    Latents: the last hidden layer (after its dropout) as one token, (B, 1, H), H = ``hidden[-1]``
    (the input itself, (B, 1, n_in), without hidden layers); it spans every pixel.
    """

    def __init__(self, n_in, hidden=(512, 128), dropout=0.1):
        super().__init__()
        layers, width = [], n_in
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.GELU(), nn.Dropout(dropout)]
            width = int(h)
        self.n_in = int(n_in)
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, 1)

    def encode(self, x):
        return self.body(x).unsqueeze(1)              # (B, 1, H)

    forward_features = encode

    def forward_head(self, h):
        return self.out(h[:, 0]).squeeze(-1)          # (B, 1, H) -> (B,)

    def token_spans(self):
        return whole_spectrum(self.n_in)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))     # (B,)


class ShortcutMLP(nn.Module):
    """y = w^T x + b + g(x): a linear map of the pixels plus an MLP ``g`` for what is not linear.

    ``g``'s last layer starts at zero, so training starts from a linear model (Ridge-like) and the
    MLP learns the residual.

    Latents: ``g``'s last hidden layer (B, 1, H), as :class:`MLP`'s. The head also reads the
    pixels (the shortcut): ``forward_head(h, x) = w^T x + b + g.forward_head(h)``.
    """

    def __init__(self, n_in, hidden=(512, 128), dropout=0.1):
        super().__init__()
        self.linear = nn.Linear(n_in, 1)
        self.g = MLP(n_in, hidden, dropout)
        nn.init.zeros_(self.g.out.weight)
        nn.init.zeros_(self.g.out.bias)

    def encode(self, x):
        return self.g.encode(x)                       # (B, 1, H)

    forward_features = encode

    def forward_head(self, h, x):
        """(B, 1, H) latents and the standardised pixels x (B, n_in) -> (B,)."""
        return self.linear(x).squeeze(-1) + self.g.forward_head(h)

    def token_spans(self):
        return self.g.token_spans()

    def forward(self, x):
        return self.forward_head(self.forward_features(x), x)     # (B,)


class ConvBlock(nn.Module):
    """(B, c_in, L) -> (B, c_out, L // pool): Conv1d ('same' padding), BatchNorm, GELU, max-pool."""

    def __init__(self, c_in, c_out, kernel_size, dilation=1, pool=2):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2, bias=False)
        self.norm = nn.BatchNorm1d(c_out)
        self.pool = pool

    def forward(self, x):
        x = F.gelu(self.norm(self.conv(x)))
        return F.max_pool1d(x, self.pool) if self.pool > 1 else x


def cnn_widths(channels, depth, max_channels):
    """Channels of each block: ``channels`` doubled per block, capped at ``max_channels``."""
    return [min(int(channels) * 2 ** i, int(max_channels)) for i in range(int(depth))]


class CNN(nn.Module):
    """Small-kernel 1D CNN: x (B, n_pix) -> (B,).

    ``depth`` :class:`ConvBlock` s (kernel ``kernel_size`` pixels, ``dilation``, widths from
    :func:`cnn_widths`, each pooling by ``pool``), adaptive average pooling to ``positions`` bins
    (keeps coarse wavelength position: which line a feature sits on matters for log g), dropout
    and a linear head.

    Latents: the last block's feature map (B, C, L) as L tokens of C channels, (B, L, C), with
    L = n_pix // pool**depth; token l spans the pixels [l * pool**depth, (l + 1) * pool**depth)
    its max-pooling windows cover (its receptive field reaches ``kernel_size`` further).
    """

    def __init__(self, n_pix, kernel_size=9, dilation=1, channels=8, depth=4, max_channels=128, pool=4,
                 positions=8, dropout=0.1):
        super().__init__()
        widths = cnn_widths(channels, depth, max_channels)
        ins = [1] + widths[:-1]
        self.blocks = nn.Sequential(*[ConvBlock(a, b, kernel_size, dilation, pool) for a, b in zip(ins, widths)])
        self.pool = nn.AdaptiveAvgPool1d(positions)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1] * positions, 1)
        self.n_pix = int(n_pix)

    def encode(self, x):
        return self.blocks(x.unsqueeze(1)).transpose(1, 2)    # (B, L, C), L = n_pix // pool**depth

    forward_features = encode

    def forward_head(self, h):
        h = self.pool(h.transpose(1, 2)).flatten(1)    # (B, C, L) -> (B, C * positions)
        return self.head(self.drop(h)).squeeze(-1)     # (B,)

    def token_spans(self):
        step = int(np.prod([block.pool for block in self.blocks]))
        n = self.n_pix
        for block in self.blocks:                      # each max-pool floors
            n //= block.pool
        start = np.arange(n, dtype=np.int64) * step
        return np.stack([start, start + step], axis=1)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))    # (B,)


def count_params(module):
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))
