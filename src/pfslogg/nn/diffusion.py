"""Conditional diffusion (DDPM) denoiser of spectra (Track D), one file: network, schedule, sampler.

    net = ConditionalDiffusion(DiffusionConfig(n_pix=4096, steps=50, bound=0.5))
    eps_hat = net(x_t, t, flux, sigma)                   # (B, L), (B,) int, (B, L), (B, L) -> (B, L)
    xs = sample(net, flux, sigma, n=4, seed=0)           # (n, B, L) posterior samples, flux units, float64

The model (Ho et al. 2020) diffuses the *clean* spectrum, standardised: ``x0 = (clean - x_mean) /
x_scale`` with ``x_mean`` (L,) the per-pixel mean and ``x_scale`` one number (``"global"``, the std of
the clean flux around that mean) or per pixel (``"pixel"``) of the first clean training block. The
forward process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``, ``eps ~ N(0, I)``, ``t = 1..T``
(``T = steps``), ``abar_t = prod_{s <= t} (1 - beta_s)``, ``abar_0 = 1``; ``beta`` from the
``"cosine"`` schedule of Nichol & Dhariwal (2021; offset 0.008, beta clipped at 0.999) or the
``"linear"`` one of Ho et al. rescaled to T steps (``beta_1 = 1e-4 * 1000 / T`` to ``0.02 * 1000 /
T``; the default: with the cosine schedule's last beta of 0.999 plain sampling blew up on the test
spectra, its first reverse step dividing by ``sqrt(alpha_T) = 0.03``). The network predicts ``eps`` from ``x_t``, ``t`` *and the observation*:
the noisy flux ``y`` standardised like ``x0`` (``y_std = (y - x_mean) / x_scale``) and its sigma ``sigma / x_scale`` are
extra input channels (as are the mean training spectrum, the constant "where are the lines" channel
of :mod:`.denoiser`, and the noise level ``sqrt(1 - abar_t)`` as a constant channel); ``t`` enters
every residual block through FiLM of ``[sqrt(1 - abar_t), log(sqrt((1 - abar_t) / abar_t)) / 4]``,
the strength conditioning of :class:`.denoiser.UNet1d`, which this module reuses. Training: the MSE
on ``eps`` at a ``t`` drawn uniformly from ``1..t_max`` (:class:`pfslogg.nn.targets.DiffusionTarget`).

Sampling is Ho et al.'s ancestral Algorithm 2 over *every* step (no striding: T = 50-100 keeps CPU
sampling feasible): ``x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(alpha_t) + sqrt(
beta~_t) z`` with the posterior variance ``beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)`` (0 at
t = 1, so the last step is the posterior mean), ``z ~ N(0, I)``; the output ``x_0`` is mapped back to
flux units. Two variants:

* **plain** (``bound=None``): trained on all ``t = 1..T``; the reverse process starts from pure
  noise, ``x_T ~ N(0, I)``;
* **bounded noise** ``lambda`` (``bound=lambda``, the original study's fix for DDPM on 1D spectra,
  SDEdit-style): ``t_lambda`` is the *largest* t whose forward noise std in standardised units is at
  most lambda, ``sqrt(1 - abar_t) <= lambda`` (so the noise never exceeds lambda; at least 1 -- a
  lambda below ``sqrt(1 - abar_1)`` is refused). Training draws t only from ``1..t_lambda`` and the
  reverse process starts from the *observation* at that step, ``x_{t_lambda} = sqrt(abar_{t_lambda})
  y_std + sqrt(1 - abar_{t_lambda}) eps``, and runs ``t_lambda`` ancestral steps. lambda is in units
  of ``x_scale`` (the clean spectra's spread), not of the observation's sigma.

Determinism: the noise of a sample is drawn per spectrum from a CPU ``torch.Generator`` seeded with
``(seed, sample j, row i)`` (row i: its index in the array given), so a sample of a spectrum does not
depend on the batch it is computed in, and equal seeds give equal samples. :func:`one_step` is the
cheap deterministic estimate the engine validates with: the x0-prediction ``(x_t - sqrt(1 - abar) eps
_hat) / sqrt(abar)`` at ``t_eval`` -- the largest t with ``sqrt(1 - abar_t) <= min(lambda, 0.5)``
(plain: 0.5; the cap keeps ``1 / sqrt(abar)`` from amplifying errors) -- from ``x_t = sqrt(abar_t)
y_std`` (no added noise).

Shapes: B spectra, L = n_pix pixels (a multiple of ``patch * factor**levels``). No I/O and no training
loop here.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .denoiser import UNet1d
from .models import input_scales
from .schedule import SCHEDULES, alpha_bar, bound_step, make_betas  # noqa: F401  (torch-free: the config check)
EVAL_NOISE = 0.5   # the plain variant validates at the t where sqrt(1 - abar_t) <= this (see one_step)


@dataclass
class DiffusionConfig:
    n_pix: int = 4096          # pixels per spectrum
    steps: int = 50            # T, diffusion steps (training and ancestral sampling)
    schedule: str = "linear"   # beta schedule: "linear" or "cosine" (see the module docstring)
    bound: float = None        # lambda of the bounded-noise variant (None: plain DDPM)
    patch: int = 4             # pixels folded into channels before the U-Net
    channels: int = 16         # U-Net width at the finest level (doubles per level)
    levels: int = 2            # coarser resolutions below the finest
    factor: int = 4            # down-sampling per level
    kernel_size: int = 5       # positions per convolution (odd)


class ConditionalDiffusion(nn.Module):
    """eps-prediction network ``(x_t, t, flux, sigma) -> eps_hat`` (B, L), with its schedule and
    input scales as buffers (they travel with the ``state_dict``): ``x_mean``, ``x_scale`` (L,) flux
    units; ``abar`` (T + 1,) and ``betas`` (T + 1,) (``betas[0] = 0``) float64."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("x_mean", torch.zeros(cfg.n_pix))
        self.register_buffer("x_scale", torch.ones(cfg.n_pix))
        self.register_buffer("abar", torch.from_numpy(alpha_bar(cfg.steps, cfg.schedule)))
        self.register_buffer("betas", torch.from_numpy(np.concatenate([[0.0], make_betas(cfg.steps, cfg.schedule)])))
        self.t_max = bound_step(cfg.steps, cfg.schedule, cfg.bound)   # training draws t in 1..t_max
        lam = EVAL_NOISE if cfg.bound is None else min(float(cfg.bound), EVAL_NOISE)
        self.t_eval = max(1, bound_step(cfg.steps, cfg.schedule, lam))   # validation's step (one_step)
        p = int(cfg.patch)
        self.unet = UNet1d(5 * p, p, cfg.channels, cfg.levels, cfg.factor, cfg.kernel_size)
        nn.init.zeros_(self.unet.head.weight)   # eps_hat = 0 at the start
        nn.init.zeros_(self.unet.head.bias)

    @torch.no_grad()
    def fit_scales(self, clean, mode="global"):
        """Set ``x_mean``, ``x_scale`` from a block of clean training flux (m, L)."""
        mean, scale = input_scales(clean, mode)
        self.x_mean.copy_(mean)
        self.x_scale.copy_(scale)

    def standardize(self, flux):
        return (flux - self.x_mean) / self.x_scale

    def unstandardize(self, x):
        return x * self.x_scale + self.x_mean

    def coefficients(self, t, dtype):
        """sqrt(abar_t), sqrt(1 - abar_t) (B, 1) for integer steps t (B,)."""
        a = self.abar[t].to(dtype).unsqueeze(-1)
        return a.sqrt(), (1 - a).clamp_min(0).sqrt()

    def q_sample(self, x0, t, eps):
        """x_t (B, L) of standardised x0 (B, L) at steps t (B,) with noise eps (B, L)."""
        sa, sn = self.coefficients(t, x0.dtype)
        return sa * x0 + sn * eps

    def forward(self, x_t, t, flux, sigma):
        """eps_hat (B, L) of x_t (B, L) standardised, steps t (B,) in 1..T, noisy flux and its sigma
        (B, L) in flux units."""
        B, L = x_t.shape
        p = int(self.cfg.patch)
        t = torch.as_tensor(t, device=x_t.device).expand(B)
        a = self.abar[t].float().clamp(1e-12, 1 - 1e-12)                          # (B,)
        noise = (1 - a).sqrt()
        cond = torch.stack([noise, 0.25 * torch.log((1 - a) / a) / 2], dim=-1).to(x_t.dtype)   # (B, 2)
        line = ((self.x_mean - self.x_mean.mean()) / self.x_scale).expand(B, L)
        x = torch.stack([x_t, self.standardize(flux), sigma / self.x_scale, line,
                         noise.to(x_t.dtype).unsqueeze(-1).expand(B, L)], dim=1)   # (B, 5, L)
        x = x.reshape(B, 5, L // p, p).transpose(2, 3).reshape(B, 5 * p, L // p)   # space to depth
        out = self.unet(x, cond)                                                  # (B, p, L/p)
        return out.transpose(1, 2).reshape(B, L)


def _generators(seed, sample, rows):
    """One CPU generator per row: seeded from (seed, sample, row) (rows: global indices)."""
    out = []
    for i in rows:
        s = np.random.SeedSequence([int(seed), int(sample), int(i)]).generate_state(2, np.uint64)
        out.append(torch.Generator().manual_seed(int(s[0] >> np.uint64(1))))
    return out


def _randn(gens, L, device):
    return torch.stack([torch.randn(L, generator=g) for g in gens]).to(device)   # (b, L)


@torch.no_grad()
def reverse(module, flux, sigma, gens):
    """One posterior sample (b, L) standardised x0 of noisy flux, sigma (b, L) float32 on the
    module's device, drawing its noise from ``gens`` (one generator per row)."""
    cfg = module.cfg
    b, L = flux.shape
    device = flux.device
    if cfg.bound is None:
        t0 = cfg.steps
        x = _randn(gens, L, device)
    else:
        t0 = module.t_max
        sa, sn = module.coefficients(torch.full((b,), t0, device=device), flux.dtype)
        x = sa * module.standardize(flux) + sn * _randn(gens, L, device)
    for t in range(t0, 0, -1):
        tt = torch.full((b,), t, device=device, dtype=torch.long)
        eps = module(x, tt, flux, sigma)
        beta = float(module.betas[t])
        ab, ab_prev = float(module.abar[t]), float(module.abar[t - 1])
        x = (x - beta / math.sqrt(max(1 - ab, 1e-20)) * eps) / math.sqrt(1 - beta)
        if t > 1:
            var = beta * (1 - ab_prev) / max(1 - ab, 1e-20)
            x = x + math.sqrt(var) * _randn(gens, L, device)
    return x


@torch.no_grad()
def sample(module, flux, sigma, n=1, seed=0, batch_size=256, device="cpu"):
    """``n`` posterior samples (n, B, L) float64 in flux units of noisy ``flux`` and ``sigma`` (B, L):
    eval mode, float32, in batches of ``batch_size`` rows; sample j of row i uses the generator of
    ``(seed, j, i)``, so the result does not depend on ``batch_size``."""
    was = module.training
    module.eval()
    try:
        f32, s32 = np.asarray(flux, np.float32), np.asarray(sigma, np.float32)
        B, L = f32.shape
        out = np.empty((int(n), B, L))
        for a in range(0, B, batch_size):
            b = min(a + batch_size, B)
            f, s = torch.from_numpy(f32[a:b]).to(device), torch.from_numpy(s32[a:b]).to(device)
            for j in range(int(n)):
                x0 = reverse(module, f, s, _generators(seed, j, range(a, b)))
                out[j, a:b] = module.unstandardize(x0).double().cpu().numpy()
    finally:
        module.train(was)
    return out


@torch.no_grad()
def one_step(module, flux, sigma):
    """The x0-prediction (b, L) in flux units at ``t_eval`` from ``x_t = sqrt(abar) y_std`` (no
    noise): deterministic; tensors (b, L) on the module's device."""
    b = len(flux)
    t = torch.full((b,), module.t_eval, device=flux.device, dtype=torch.long)
    sa, sn = module.coefficients(t, flux.dtype)
    x_t = sa * module.standardize(flux)
    eps = module(x_t, t, flux, sigma)
    return module.unstandardize((x_t - sn * eps) / sa)
