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

import math

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


LOG_VAR_RANGE = (-12.0, 6.0)   # clamp of the variance head's log-variance (standardised label: sd 0.0025-20 y_std)


class VarianceHead(nn.Module):
    """The log-variance of the standardised label from a network's features (B, T, D): the mean over
    the T tokens, LayerNorm, Linear to 1, clamped to :data:`LOG_VAR_RANGE`. It starts at log-variance 0
    (zero weights and bias: the label's own variance) and reads the same features as the mean's head."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h):
        return self.out(self.norm(h.mean(1))).squeeze(-1).clamp(*LOG_VAR_RANGE)    # (B,)


class LabelHead(nn.Module):
    """Standardised extra labels (B, k) -- T_eff, [M/H] beside log g -- from a network's features (B, T, D):
    the mean over the T tokens, LayerNorm, Linear to k. The trunk is shared with the log g head, so what
    the extra labels teach it reaches log g only through the features (the multi-label ablation)."""

    def __init__(self, dim, k):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, int(k))

    def forward(self, h):
        return self.out(self.norm(h.mean(1)))       # (B, k)


class MixtureHead(nn.Module):
    """A Gaussian mixture over d standardised labels (log g first) from a network's features (B, T, D):
    the amortised posterior of neural posterior estimation with a mixture density network (Bishop 1994;
    Papamakarios & Murray 2016). Mean over tokens, LayerNorm, Linear to K (1 + d + d (d + 1) / 2): per
    component a logit, a mean (d) and the lower triangle of a Cholesky factor of its covariance (the
    diagonal through softplus, at least :data:`MIN_SCALE`)."""

    def __init__(self, dim, d, k):
        super().__init__()
        self.d, self.k = int(d), int(k)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, self.k * (1 + self.d + self.d * (self.d + 1) // 2))
        self.register_buffer("tril", torch.tril_indices(self.d, self.d), persistent=False)

    def forward(self, h):
        return self.out(self.norm(h.mean(1)))          # (B, K (1 + d + d (d + 1) / 2)) raw parameters

    def split(self, raw):
        """(log weights (B, K), means (B, K, d), Cholesky factors (B, K, d, d)) of raw parameters."""
        b, k, d = raw.shape[0], self.k, self.d
        logits, mu, tri = torch.split(raw, [k, k * d, k * d * (d + 1) // 2], dim=-1)
        chol = raw.new_zeros(b, k, d, d)
        chol[:, :, self.tril[0], self.tril[1]] = tri.reshape(b, k, -1)
        diag = torch.diagonal(chol, dim1=-2, dim2=-1)
        chol = chol - torch.diag_embed(diag) + torch.diag_embed(F.softplus(diag) + MIN_SCALE)
        return torch.log_softmax(logits, -1), mu.reshape(b, k, d), chol

    def log_prob(self, raw, z):
        """log q(z | x) (B,) of standardised labels z (B, d) under the mixture of ``raw``."""
        logw, mu, chol = self.split(raw)
        r = (z[:, None, :] - mu).unsqueeze(-1)                               # (B, K, d, 1)
        u = torch.linalg.solve_triangular(chol, r, upper=False).squeeze(-1)   # L^-1 (z - mu)
        logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        comp = -0.5 * (u * u).sum(-1) - logdet - 0.5 * self.d * math.log(2 * math.pi)
        return torch.logsumexp(logw + comp, dim=-1)

    def moments(self, raw):
        """(mean (B, d), sd (B, d)) of each label's marginal under the mixture, standardised."""
        logw, mu, chol = self.split(raw)
        w = logw.exp().unsqueeze(-1)                                          # (B, K, 1)
        var = (chol * chol).sum(-1)                                           # diag(L L^T): (B, K, d)
        mean = (w * mu).sum(1)
        second = (w * (var + mu * mu)).sum(1)
        return mean, (second - mean * mean).clamp_min(0).sqrt()

    def marginal_cdf(self, raw, z, dim=0):
        """P(label ``dim`` <= z) (B,) under the mixture of ``raw``, z (B,) standardised: the exact
        probability integral transform of the truth (what simulation-based calibration ranks estimate
        from samples), sum_k w_k Phi((z - mu_k) / s_k) with s_k the sd of component k along ``dim``."""
        logw, mu, chol = self.split(raw)
        sd = (chol[:, :, dim, :] ** 2).sum(-1).sqrt()                          # (B, K)
        u = torch.special.ndtr((z[:, None] - mu[:, :, dim]) / sd)
        return (logw.exp() * u).sum(-1).clamp(0.0, 1.0)


MIN_SCALE = 1e-3   # smallest sd of a mixture component along a label (standardised units)


@torch.no_grad()
def feature_dim(net, n_pix):
    """D of ``net.forward_features`` (B, T, D) for ``n_pix`` pixels: one zero spectrum through the
    trunk in eval mode (batch-norm statistics untouched, no random numbers drawn)."""
    was = net.training
    net.eval()
    try:
        return int(net.forward_features(torch.zeros(1, int(n_pix))).shape[-1])
    finally:
        net.train(was)


class Standardized(nn.Module):
    """Raw noisy flux (B, n_pix) -> standardised log g (B,) through ``net``; :meth:`logg` in dex.

    Input: ``x = (flux - x_mean) / x_scale`` with ``x_mean`` the per-pixel mean of the first
    training block and ``x_scale`` either one number for all pixels (``"global"``: keeps the
    relative depths of lines, what convolutions and patches want) or per pixel (``"pixel"``).
    Label: ``z = (logg - y_mean) / y_std`` over the training view (dex).

    ``variance=True`` (a heteroscedastic Gaussian target, loss "gaussian_nll" or "beta_nll"): a
    :class:`VarianceHead` on the trunk's features beside the mean's head; ``forward`` then gives (B, 2),
    the standardised mean and log-variance, and :meth:`logg_std` the mean and sd in dex.

    ``extra=k`` > 0 (multi-label): a :class:`LabelHead` for k more labels (standardised with ``aux_mean``,
    ``aux_std``); ``forward`` gives (B, 1 + k), log g first, and :meth:`extra_labels` the k in their units.
    Not both.
    """

    def __init__(self, net, n_pix, variance=False, extra=0, mixture=0):
        super().__init__()
        if variance and (extra or mixture):
            raise ValueError("Standardized: a variance head with extra labels or a mixture is not supported")
        self.net = net
        self.register_buffer("x_mean", torch.zeros(n_pix))   # (n_pix,) flux units
        self.register_buffer("x_scale", torch.ones(n_pix))   # (n_pix,) flux units
        self.register_buffer("y_mean", torch.zeros(()))      # dex
        self.register_buffer("y_std", torch.ones(()))        # dex
        self.var_head = VarianceHead(feature_dim(net, n_pix)) if variance else None
        self.aux_head = self.mix_head = None
        if extra:
            if not mixture:
                self.aux_head = LabelHead(feature_dim(net, n_pix), extra)
            self.register_buffer("aux_mean", torch.zeros(int(extra)))   # the extra labels' units (K, dex)
            self.register_buffer("aux_std", torch.ones(int(extra)))
        if mixture:   # the posterior over log g and the extra labels: a mixture of ``mixture`` Gaussians
            self.mix_head = MixtureHead(feature_dim(net, n_pix), 1 + int(extra), mixture)
        self.n_extra = int(extra)

    @torch.no_grad()
    def fit_scales(self, flux, logg, mode="global", extra=None):
        """Set the scales from a block of training flux (m, n_pix), all training log g (n,) and, with
        extra labels, all their training values (n, k)."""
        logg = torch.as_tensor(logg, dtype=torch.float64)
        mean, scale = input_scales(flux, mode)
        self.x_mean.copy_(mean)
        self.x_scale.copy_(scale)
        self.y_mean.copy_(logg.mean())
        self.y_std.copy_(logg.std(correction=0).clamp_min(1e-6))
        if self.n_extra:
            extra = torch.as_tensor(extra, dtype=torch.float64)
            self.aux_mean.copy_(extra.mean(0))
            self.aux_std.copy_(extra.std(0, correction=0).clamp_min(1e-6))

    def standardize(self, flux):
        return (flux - self.x_mean) / self.x_scale     # (B, n_pix)

    def forward(self, flux):
        """(B,) standardised log g; with a variance head (B, 2): mean and log-variance; with extra labels
        (B, 1 + k): log g and the extra labels; all standardised."""
        x = self.standardize(flux)
        if self.var_head is None and self.aux_head is None and self.mix_head is None:
            return self.net(x)
        h = self.net.forward_features(x)
        if self.mix_head is not None:   # the mixture's raw parameters (the log g head is not used)
            return self.mix_head(h)
        mean = self.net.forward_head(h, x) if getattr(self.net, "head_reads_input", False) else self.net.forward_head(h)
        if self.aux_head is not None:
            return torch.cat([mean[:, None], self.aux_head(h)], dim=-1)
        return torch.stack([mean, self.var_head(h)], dim=-1)

    def extra_labels(self, flux):
        """The extra labels (B, k) in their units of raw flux (B, n_pix): a module with ``extra`` > 0 (with a
        mixture: the posterior means)."""
        if not self.n_extra:
            raise ValueError("extra_labels: this network learns log g alone")
        if self.mix_head is not None:
            return self.mix_head.moments(self.forward(flux))[0][:, 1:] * self.aux_std + self.aux_mean
        return self.forward(flux)[:, 1:] * self.aux_std + self.aux_mean

    def logg(self, flux):
        """log g in dex (B,) of raw flux (B, n_pix) (with a mixture: its posterior mean)."""
        out = self.forward(flux)
        if self.mix_head is not None:
            return self.mix_head.moments(out)[0][:, 0] * self.y_std + self.y_mean
        return (out if out.ndim == 1 else out[:, 0]) * self.y_std + self.y_mean

    def logg_std(self, flux):
        """(mean, sd) of log g in dex, (B,) each, of raw flux (B, n_pix): a module with a variance head or a
        mixture (its marginal's mean and sd)."""
        out = self.forward(flux)
        if self.mix_head is not None:
            mean, sd = self.mix_head.moments(out)
            return mean[:, 0] * self.y_std + self.y_mean, sd[:, 0] * self.y_std
        if self.var_head is None:
            raise ValueError("logg_std: this network has no variance head (loss gaussian_nll or beta_nll)")
        return out[:, 0] * self.y_std + self.y_mean, torch.exp(0.5 * out[:, 1]) * self.y_std

    def logg_cdf(self, flux, logg):
        """The mixture posterior's P(log g' <= logg | flux) (B,) of raw flux (B, n_pix) and log g (B,) in dex."""
        if self.mix_head is None:
            raise ValueError("logg_cdf: this network has no mixture posterior (loss mdn)")
        return self.mix_head.marginal_cdf(self.forward(flux), (logg - self.y_mean) / self.y_std)

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

    head_reads_input = True   # forward_head(h, x)

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
        return max_pool(x, self.pool) if self.pool > 1 else x


def max_pool(x, pool):
    """``F.max_pool1d(x, pool)`` (windows of ``pool`` along the last axis, a trailing remainder dropped):
    the same values and gradients (to the first maximum of a window), 1.3-4x faster on CPU, where
    max_pool1d goes through the 2D kernel with an index tensor (measured on (32, 8, 4096): 28 % of the
    CNN's training step)."""
    n = x.shape[-1] // pool
    return x[..., :n * pool].unflatten(-1, (n, pool)).max(-1).values


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
