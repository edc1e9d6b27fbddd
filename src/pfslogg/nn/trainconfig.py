"""The training engine's hyper-parameters and their check, without torch: what reading a configuration
needs (every variant's hyper-parameters are checked when the configuration is read, by Snakemake too, so
importing torch here would cost every command its ~2 s)."""

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

LOSS_NAMES = ("mse", "l1", "gaussian_nll", "beta_nll", "mdn")   # pfslogg.nn.targets.LOSSES has one function each


@dataclass
class TrainConfig:
    """Hyper-parameters of the engine (the estimator passes its own)."""

    epochs: int = 20              # passes over the training view (at most)
    batch_size: int = 256         # spectra per step
    lr: float = 1e-3              # peak learning rate of AdamW
    weight_decay: float = 0.01    # AdamW's decoupled weight decay
    warmup_fraction: float = 0.05  # share of all steps with a linear warm-up
    min_lr_ratio: float = 0.01    # the cosine ends at min_lr_ratio * lr
    clip: float = 1.0             # max gradient norm (0: no clipping)
    patience: int = 5             # epochs without a better validation score (R^2) before stopping
    loss: str = "mse"             # on the standardised label (the log g target): "mse", "l1", or with a variance
                                  # head "gaussian_nll" / "beta_nll" (LOSS_NAMES)
    standardize: str = "global"   # input scales: "global" (one scale) or "pixel"
    seed: int = 0                 # block order and row shuffles (init and dropout: torch's seed)
    block_size: int = 1024        # rows per HDF5 read
    buffer_blocks: int = 4        # blocks shuffled together
    eval_batch: int = 512         # spectra per validation / prediction forward pass
    amp: bool = None              # bf16 autocast of the forward pass (None: on CUDA only; True: on CPU too)
    compile: bool = None          # torch.compile (None: on CUDA)



def check_config(cfg, where="nn"):
    """InputError naming the first bad key of a TrainConfig."""
    def bad(key, expected):
        raise InputError(f"{where}.{key}: got {getattr(cfg, key)!r}, expected {expected}")

    if cfg.loss not in LOSS_NAMES:
        bad("loss", f"one of {sorted(LOSS_NAMES)}")
    if cfg.standardize not in ("global", "pixel"):
        bad("standardize", "one of ['global', 'pixel']")
    for key in ("epochs", "batch_size", "block_size", "buffer_blocks", "eval_batch"):
        if not isinstance(getattr(cfg, key), (int, np.integer)) or getattr(cfg, key) < 1:
            bad(key, "an integer >= 1")
    for key in ("amp", "compile"):
        if getattr(cfg, key) is not None and not isinstance(getattr(cfg, key), (bool, np.bool_)):
            bad(key, "true, false or null (null: on CUDA only)")
    if cfg.batch_size < 2:
        bad("batch_size", "an integer >= 2")
    if not isinstance(cfg.patience, (int, np.integer)) or cfg.patience < 1:
        bad("patience", "an integer >= 1")
    for key, lo, hi in (("lr", 0, math.inf), ("weight_decay", 0, math.inf), ("clip", 0, math.inf),
                        ("warmup_fraction", 0, 1), ("min_lr_ratio", 0, 1)):
        v = getattr(cfg, key)
        if not isinstance(v, (int, float)) or not lo <= v <= hi or (key == "lr" and v == 0):
            bad(key, f"a number in [{lo}, {hi}]" + (", > 0" if key == "lr" else ""))
