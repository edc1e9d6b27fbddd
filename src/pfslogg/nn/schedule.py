"""The noise schedules of the diffusion model, without torch: what the configuration check of a
diffusion variant needs (:mod:`pfslogg.nn.diffusion` imports them; the module docstring there says
what the schedules are)."""

import math

import numpy as np

SCHEDULES = ("cosine", "linear")


def make_betas(steps, schedule="cosine"):
    """beta_1..beta_T (T,) float64 of a schedule of ``steps`` steps."""
    T = int(steps)
    if schedule == "cosine":
        s = 0.008
        f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * math.pi / 2) ** 2
        return np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
    if schedule == "linear":
        return np.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T).clip(max=0.999)
    raise ValueError(f"schedule {schedule!r}, expected one of {SCHEDULES}")


def alpha_bar(steps, schedule="cosine"):
    """abar_0..abar_T (T + 1,) float64, abar_0 = 1."""
    return np.concatenate([[1.0], np.cumprod(1 - make_betas(steps, schedule))])


def bound_step(steps, schedule, bound):
    """t_lambda: the largest t in 1..T with sqrt(1 - abar_t) <= ``bound``; 0 when even t = 1 is
    noisier (None: T, the plain variant)."""
    if bound is None:
        return int(steps)
    noise = np.sqrt(1 - alpha_bar(steps, schedule)[1:])
    return int(np.sum(noise <= float(bound) + 1e-12))   # noise rises with t
