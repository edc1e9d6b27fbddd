"""What the engine learns: target objects (DESIGN.md section 4).

A target says, for one kind of model, what the training stream yields per row, how a batch becomes
the network's inputs and label, the loss, the validation score (higher is better: it picks the
best epoch and drives early stopping) and the inverse scaling back to physical units:

* :class:`LoggTarget` (the default) -- log g in dex from the noisy flux; loss "mse" or "l1" on the
  standardised label ``z = (logg - y_mean) / y_std``, or "gaussian_nll" / "beta_nll" (a network with a
  variance head: mean and log-variance, :func:`gaussian_nll`); score R^2 = 1 - MSE / Var(log g) of the
  mean (history column ``val_r2``); predictions ``z * y_std + y_mean``;
* :class:`CleanSpectrumTarget` -- the noiseless spectrum from the noisy flux and its sigma (a
  denoiser, :mod:`.denoiser`); loss the sigma-weighted absolute error (:func:`wmae`); score the
  relative wMAE gain over the identity, ``1 - wMAE(x_hat) / wMAE(y)`` (history column ``val_gain``:
  0 = no better than the noisy input, 1 = the clean spectrum); outputs in flux units;
* :class:`DiffusionTarget` -- the noise of a conditional DDPM (:mod:`.diffusion`): loss the MSE on
  eps at a uniformly drawn step; score minus the wMAE of its one-step estimate (``val_neg_wmae``).

The interface the engine and the stream (:class:`pfslogg.nn.data.BlockStream`) use:

``spec()`` (JSON for the checkpoint signature; None for the default), ``columns`` (the per-epoch
log), ``score_column`` / ``score_label``, ``labels(view)`` (per-row labels read once), ``read(view,
labels, start, stop)`` (the per-row arrays of a block, read through the view's public interface),
``draw(rng, n)`` (per-row values drawn from the stream's generator, e.g. strengths), ``fit_scales
(module, stream, mode)``, ``batch(module, batch, device) -> (inputs, label)``, ``loss(pred,
label)`` and ``evaluate(module, view, batch_size, device) -> (val_loss, score)``.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..evaluation import r2_score
from ..uncertainty import VARIANCE_LOSSES
from .trainconfig import LOSS_NAMES

COLUMNS = ("epoch", "train_loss", "val_loss", "val_r2", "lr", "seconds", "spectra_per_s")
BETA = 0.5   # beta of the beta-NLL (Seitzer et al. 2022): 0 is the Gaussian NLL, 1 gives the mean the MSE's gradient


def gaussian_nll(pred, z, beta=0.0):
    """Heteroscedastic Gaussian negative log-likelihood (without the constant) of the standardised
    label ``z`` (B,) under ``pred`` (B, 2): mean and log-variance. ``beta`` > 0 (beta-NLL) weights each
    star's term by its variance to the power ``beta``, detached, so stars the network finds hard keep
    pulling the mean (plain NLL lets a large variance switch a star's mean gradient off)."""
    mean, log_var = pred[:, 0], pred[:, 1]
    nll = 0.5 * (log_var + (z - mean) ** 2 * torch.exp(-log_var))
    if beta:
        nll = nll * torch.exp(beta * log_var).detach()
    return nll.mean()


def beta_nll(pred, z):
    return gaussian_nll(pred, z, BETA)


def _mdn_placeholder(pred, z):
    raise InputError("loss 'mdn' is the negative log-likelihood of a mixture head: LoggTarget(mixture=...) holds it")


LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "gaussian_nll": gaussian_nll, "beta_nll": beta_nll,
          "mdn": _mdn_placeholder}
assert set(VARIANCE_LOSSES) <= set(LOSSES)   # the losses of a network with a variance head: it gives a std
assert set(LOSSES) == set(LOSS_NAMES)   # the names the torch-free configuration check accepts


@torch.no_grad()
def predict(module, flux, batch_size=512, device="cpu", return_std=False):
    """log g (N,) in dex, float64, of raw flux (N, n_pix): eval mode, float32, in batches; with
    ``return_std`` (a module with a variance head) ``(mean, sd)``."""
    was = module.training
    module.eval()
    try:
        flux = np.asarray(flux, np.float32)
        out = []
        for i in range(0, len(flux), batch_size):
            x = torch.from_numpy(flux[i:i + batch_size]).to(device)
            pair = module.logg_std(x) if return_std else (module.logg(x),)
            out.append([t.float().cpu().numpy() for t in pair])
    finally:
        module.train(was)
    cols = [np.concatenate([o[k] for o in out]).astype(np.float64) if out else np.zeros(0)
            for k in range(2 if return_std else 1)]
    return tuple(cols) if return_std else cols[0]


def evaluate(module, view, loss_fn, batch_size, device):
    """(loss on the standardised label, R^2) of the module on a (fixed-noise) view; a module with a
    variance head is scored by ``loss_fn`` on its mean and log-variance (the NLL)."""
    from .data import eval_batches

    var = getattr(module, "var_head", None) is not None
    if getattr(module, "mix_head", None) is not None:   # a mixture: its posterior mean, scored by the MSE
        loss_fn = F.mse_loss
    pred, sd, y = [], [], []
    for flux, logg in eval_batches(view, max(batch_size, 1)):
        out = predict(module, flux, batch_size, device, return_std=var)
        pred.append(out[0] if var else out)
        sd.append(out[1] if var else None)
        y.append(logg)
    pred, y = np.concatenate(pred), np.concatenate(y)
    mu, s = float(module.y_mean), float(module.y_std)
    z_pred = torch.from_numpy((pred - mu) / s)
    if var:
        z_pred = torch.stack([z_pred, torch.from_numpy(2 * np.log(np.concatenate(sd) / s))], dim=-1)
    loss = float(loss_fn(z_pred, torch.from_numpy((y - mu) / s)))
    return loss, r2_score(y, pred)


class Target:
    """Base of the targets (see the module docstring for the interface)."""

    score_column = "val_r2"
    score_label = "val R^2"

    @property
    def columns(self):
        """The per-epoch log's columns: :data:`COLUMNS` with ``val_r2`` replaced by the score's."""
        return tuple(self.score_column if c == "val_r2" else c for c in COLUMNS)

    def spec(self):
        """JSON that joins the checkpoint signature (None: nothing, the log g default)."""
        return None

    def labels(self, view):
        return None

    def draw(self, rng, n):
        """Per-row values drawn from the stream's generator for ``n`` rows (a tuple of arrays)."""
        return ()


class LoggTarget(Target):
    """log g in dex, learned standardised with loss ``loss`` (:data:`LOSSES`); score R^2 of the mean.

    ``extra_labels`` (parameter columns of the view, e.g. ("T_eff", "M_H")): learned beside log g by the
    module's :class:`~pfslogg.nn.models.LabelHead`, each standardised by its training mean and sd, the loss
    the mean over all labels of ``loss``; validation still scores log g alone (its R^2 picks the epoch).
    ``mixture`` (loss "mdn"): the module's :class:`~pfslogg.nn.models.MixtureHead`, whose negative
    log-likelihood of the standardised labels is the loss (neural posterior estimation); validation scores
    the posterior mean of log g (R^2; the loss column its MSE).

    The stream yields ``(flux float32 (B, n_pix), logg float32 (B,))``; the module is a
    :class:`~pfslogg.nn.models.Standardized` network: raw flux -> standardised log g (B,).
    """

    def __init__(self, loss="mse", extra_labels=(), mixture=None):
        if loss not in LOSSES:
            raise InputError(f"nn.loss: got {loss!r}, expected one of {sorted(LOSSES)}")
        if (loss == "mdn") != (mixture is not None):
            raise InputError("nn.loss: 'mdn' goes with a mixture head, and a mixture head with loss 'mdn'")
        self.loss_name = loss
        self.loss_fn = LOSSES[loss] if mixture is None else (lambda raw, z: -mixture.log_prob(raw, z).mean())
        self.extra = tuple(extra_labels)
        self.mixture = mixture is not None

    def spec(self):
        if not (self.extra or self.mixture):
            return None
        return {"target": "logg", "extra_labels": list(self.extra), "mixture": self.mixture}

    def labels(self, view):
        y = np.asarray(view.y, np.float32)   # the label learned (log g unless a TargetView)
        if not self.extra:
            return y
        params = view.params
        missing = [c for c in self.extra if c not in params]
        if missing:
            raise InputError(f"extra_labels: the training view has no column(s) {missing} (columns: {list(params)})")
        return np.column_stack([y] + [params[c].to_numpy(np.float32) for c in self.extra])   # (N, 1 + k)

    def read(self, view, labels, start, stop):
        return view.read_flux(start, stop).astype(np.float32), labels[start:stop]

    def fit_scales(self, module, stream, mode):
        if self.extra:
            module.fit_scales(stream.first_block(), stream.labels[:, 0], mode, extra=stream.labels[:, 1:])
        else:
            module.fit_scales(stream.first_block(), stream.y, mode)

    def batch(self, module, batch, device):
        x, y = batch
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if self.extra:   # every label standardised by its own training mean and sd: (B, 1 + k)
            return x, torch.cat([((y[:, 0] - module.y_mean) / module.y_std)[:, None],
                                 (y[:, 1:] - module.aux_mean) / module.aux_std], dim=-1)
        z = (y - module.y_mean) / module.y_std
        return x, (z[:, None] if self.mixture else z)   # a mixture's labels are (B, d) with d = 1

    def loss(self, pred, z):
        return self.loss_fn(pred, z)

    def evaluate(self, module, view, batch_size, device):
        return evaluate(module, view, self.loss_fn, batch_size, device)


# -- the clean spectrum (denoisers) ----------------------------------------------------------------
SIGMA_FLOOR = 1e-3   # default floor of the wMAE's sigma, flux units (continuum ~ 1; config denoising.sigma_floor)


def sigma_weights(sigma, floor=SIGMA_FLOOR):
    """The wMAE's divisor per pixel, ``max(sigma, floor)`` (flux units; ``floor`` > 0 keeps pixels
    without noise -- noise level 0 -- finite), as :func:`pfslogg.denoising.wmae`. ``sigma``: a torch
    tensor (B, n_pix)."""
    return sigma.clamp_min(floor)


def wmae(x_hat, clean, sigma, floor=SIGMA_FLOOR, reduce=True):
    """sigma-weighted mean absolute error ``mean |x_hat - x0| / max(sigma, floor)`` (dimensionless: in
    units of the noise sigma) of tensors (B, n_pix), flux units; ``reduce=False``: the sum over
    pixels per spectrum (B,)."""
    err = (x_hat - clean).abs() / sigma_weights(sigma, floor)
    return err.mean() if reduce else err.sum(-1)


@torch.no_grad()
def denoise(module, flux, sigma, strength, batch_size=512, device="cpu"):
    """Denoised flux (N, n_pix), float64, of noisy ``flux`` and its ``sigma`` (N, n_pix) at strength
    ``strength`` (a number) by a :class:`~pfslogg.nn.denoiser.ResidualDenoiser`: eval mode, the
    correction computed in float32 in batches and added to the float64 flux (so strength 0 gives
    ``flux`` back bitwise)."""
    was = module.training
    module.eval()
    try:
        flux = np.asarray(flux, np.float64)
        f32, s32 = flux.astype(np.float32), np.asarray(sigma, np.float32)
        out = np.empty_like(flux)
        for i in range(0, len(flux), batch_size):
            r = module.residual(torch.from_numpy(f32[i:i + batch_size]).to(device),
                                torch.from_numpy(s32[i:i + batch_size]).to(device), float(strength))
            out[i:i + batch_size] = flux[i:i + batch_size] + r.float().cpu().numpy().astype(np.float64)
    finally:
        module.train(was)
    return out


class CleanSpectrumTarget(Target):
    """The noiseless flux, learned by a residual denoiser with the wMAE loss.

    ``strengths``: the strength ``s`` of each training spectrum, drawn uniformly from this list by the
    stream's generator (so a resumed run draws the same); ``strength``: the one validation uses;
    ``sigma_floor``: of the weights (:func:`sigma_weights`). The stream yields ``(flux, sigma, clean,
    s)``: float32 (B, n_pix) x 3 and (B,), read through the view's public interface (``read`` for the
    noisy flux and its sigma -- fresh noise per read -- and ``read_clean`` for the same rows).
    """

    score_column = "val_gain"
    score_label = "val wMAE gain"

    def __init__(self, strengths=(0.05, 0.1, 0.2), strength=0.2, sigma_floor=SIGMA_FLOOR):
        self.strengths = [float(s) for s in strengths]
        self.strength = float(strength)
        self.sigma_floor = float(sigma_floor)

    def spec(self):
        return {"target": "clean_spectrum", "strengths": self.strengths, "strength": self.strength,
                "sigma_floor": self.sigma_floor}

    def read(self, view, labels, start, stop):
        flux, sigma = view.read(start, stop)
        if sigma is None:
            raise InputError(f"{type(view).__name__}: a denoiser needs the sigma of the noisy flux; this view has none")
        clean = view.read_clean(start, stop)
        return flux.astype(np.float32), sigma.astype(np.float32), clean.astype(np.float32)

    def draw(self, rng, n):
        return (rng.choice(np.asarray(self.strengths, np.float32), size=n),)

    def fit_scales(self, module, stream, mode):
        module.fit_scales(stream.first_block(), mode)

    def batch(self, module, batch, device):
        flux, sigma, clean, s = (t.to(device, non_blocking=True) for t in batch)
        return (flux, sigma, s), (clean, sigma)

    def loss(self, pred, label):
        clean, sigma = label
        return wmae(pred, clean, sigma, self.sigma_floor)

    def evaluate(self, module, view, batch_size, device):
        """(wMAE at ``strength``, 1 - wMAE / wMAE of the identity) over the view, float64."""
        model = ident = 0.0
        n = 0
        for a, b, flux, sigma in view.batches(max(batch_size, 1)):
            clean = torch.from_numpy(view.read_clean(a, b))
            x_hat = torch.from_numpy(denoise(module, flux, sigma, self.strength, batch_size, device))
            s = torch.from_numpy(np.asarray(sigma, np.float64))
            model += float(wmae(x_hat, clean, s, self.sigma_floor, reduce=False).sum())
            ident += float(wmae(torch.from_numpy(flux), clean, s, self.sigma_floor, reduce=False).sum())
            n += flux.size
        loss = model / max(n, 1)
        return loss, 1.0 - model / ident if ident > 0 else 0.0


# -- the clean spectrum by diffusion (DDPM) ---------------------------------------------------------
class DiffusionTarget(Target):
    """Noise prediction of a conditional DDPM (:class:`~pfslogg.nn.diffusion.ConditionalDiffusion`).

    Per training spectrum the stream's generator draws a step ``t`` uniformly from ``1..t_max`` (the
    module's: T for plain DDPM, ``t_lambda`` for bounded noise) and a seed of its noise ``eps`` (L,)
    (standard normal, NumPy's generator of that seed), so a resumed run draws the same; the batch is
    ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` of the standardised clean flux ``x0`` and the
    network sees ``(x_t, t, y, sigma)``; loss the MSE of ``eps_hat`` on ``eps``. ``t_max``: that of
    the module (an int), stored in the spec. Validation: the wMAE (``sigma_floor``) of the one-step
    x0-prediction (:func:`pfslogg.nn.diffusion.one_step`, deterministic) is the validation loss, and
    minus it the score (history column ``val_neg_wmae``; higher is better). The stream yields ``(flux,
    sigma, clean, t, seed)``: float32 (B, n_pix) x 3, int64 (B,) x 2.
    """

    score_column = "val_neg_wmae"
    score_label = "val -wMAE"

    def __init__(self, t_max, sigma_floor=SIGMA_FLOOR):
        self.t_max = int(t_max)
        self.sigma_floor = float(sigma_floor)

    def spec(self):
        return {"target": "diffusion", "t_max": self.t_max, "sigma_floor": self.sigma_floor}

    read = CleanSpectrumTarget.read

    def draw(self, rng, n):
        return rng.integers(1, self.t_max + 1, size=n), rng.integers(0, 2 ** 62, size=n)

    def fit_scales(self, module, stream, mode):
        view = stream.view
        module.fit_scales(view.read_clean(0, min(stream.block_size, view.n)), mode)   # clean: no noise drawn

    def batch(self, module, batch, device):
        flux, sigma, clean, t, seed = batch
        L = clean.shape[1]
        eps = torch.from_numpy(np.stack([np.random.default_rng(int(s)).standard_normal(L, np.float32)
                                         for s in seed.tolist()])).to(device)   # (B, L)
        flux, sigma, clean, t = (a.to(device, non_blocking=True) for a in (flux, sigma, clean, t))
        x_t = module.q_sample(module.standardize(clean), t, eps).float()
        return (x_t, t, flux, sigma), eps

    def loss(self, pred, eps):
        return F.mse_loss(pred, eps)

    def evaluate(self, module, view, batch_size, device):
        """(wMAE of the one-step estimate, minus it) over the view, float64."""
        from .diffusion import one_step

        was = module.training
        module.eval()
        total, n = 0.0, 0
        try:
            for a, b, flux, sigma in view.batches(max(batch_size, 1)):
                f, s = (torch.from_numpy(np.asarray(v, np.float32)).to(device) for v in (flux, sigma))
                with torch.no_grad():
                    x_hat = one_step(module, f, s).double().cpu()
                clean = torch.from_numpy(np.asarray(view.read_clean(a, b), np.float64))
                total += float(wmae(x_hat, clean, torch.from_numpy(np.asarray(sigma, np.float64)), self.sigma_floor,
                                    reduce=False).sum())
                n += flux.size
        finally:
            module.train(was)
        loss = total / max(n, 1)
        return loss, -loss
