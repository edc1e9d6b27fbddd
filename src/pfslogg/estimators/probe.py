"""Latent probes (Track E): how much of log g a frozen network's latents hold, read by a simple model.

A probe (class ``probe``) takes a fitted upstream encoder -- a model with ``encode(flux, sigma)`` ->
latents (B, T, D), T tokens along the wavelength axis (every neural estimator:
:meth:`~pfslogg.estimators.neural.NeuralEstimator.encode`) -- from ``FitContext.upstream["encoder"]``
(config: ``estimators.<variant>.upstream.encoder``), pools its latents into one feature vector per
spectrum and fits a part (``model: {class, hyper}``, Ridge by default) on those features. The
encoder is never trained again; it is kept inside the probe's model folder as a part
(``upstream/encoder``), so ``load(folder).predict(flux, sigma)`` needs nothing else.

Pooling (hyper-parameter ``pooling``), latents Z (B, T, D) -> features (B, m):

* ``mean``: the mean over the tokens, m = D;
* ``segments``: the spectrum's pixel range cut into ``segments`` = K equal parts, each token put in
  the part holding the centre of its pixel span (the encoder's ``token_spans()``, or tokens that
  tile the pixels evenly where it has none), the mean of each part's tokens, parts side by side
  (blue to red), m = K * D; every part must hold a token;
* ``attention``: softmax(((Z - mu) / s) q / sqrt(D)) over the tokens weights the latents, m = D: a
  learned query q (D,) (mu, s: the latents' mean and scale per feature) trained with a linear head
  on the standardised log g by Adam (``attention_epochs`` epochs, ``attention_lr``, batches of 256,
  seeded) on the frozen latents of the first ``attention_rows`` training spectra (held in memory:
  rows * T * D * 4 bytes); q starts at 0, i.e. at mean pooling. The part is then fitted on the
  attention-pooled features;
* ``flatten``: every token's latents side by side, m = T * D (large for a big ViT).

The features reach the part through a :class:`~pfslogg.data.views.MappedView` over the training and
validation views (the encoder reads each batch's flux and sigma), so no model reaches into a view's
private state. ``sigma`` is passed to the encoder (neural encoders do not read it).

Importing this module does not import torch (attention pooling imports it inside ``fit``).
"""

import numpy as np

from ..data.views import MappedView
from ..errors import InputError
from .base import Composite, FitContext, derived_seed, make_part, register, upstream_key, upstream_model

RIDGE = {"class": "ridge", "hyper": {}}
POOLINGS = ("mean", "segments", "attention", "flatten")
ATTENTION_BATCH = 256   # spectra per Adam step of the attention pool


def segment_index(spans, k):
    """Segment (0..k-1) of every token (T,) of pixel ``spans`` (T, 2): the pixel range
    [min start, max stop) cut into ``k`` equal parts, a token in the part that holds its centre."""
    spans = np.asarray(spans, float)
    lo, hi = spans[:, 0].min(), spans[:, 1].max()
    centre = spans.mean(1)
    return np.clip(np.floor((centre - lo) / max(hi - lo, 1e-12) * k), 0, k - 1).astype(np.int64)


def attention_weights(Z, query, mean, scale):
    """Attention of a query (D,) over the tokens of latents Z (B, T, D): (B, T), rows summing to 1."""
    Z = np.asarray(Z, np.float64)
    scores = ((Z - mean) / scale) @ np.asarray(query, np.float64) / np.sqrt(Z.shape[-1])   # (B, T)
    scores -= scores.max(1, keepdims=True)
    w = np.exp(scores)
    return w / w.sum(1, keepdims=True)


def pool(Z, pooling, segment_of=None, n_segments=None, attention=None):
    """Pooled features (B, m) float64 of latents Z (B, T, D) (see the module docstring).

    ``segment_of`` (T,): each token's segment, ``n_segments`` K (``segments``); ``attention``:
    ``(query, mean, scale)``, each (D,) (``attention``)."""
    Z = np.asarray(Z, np.float64)
    if pooling == "mean":
        return Z.mean(1)
    if pooling == "segments":
        segment_of = np.asarray(segment_of)
        return np.concatenate([Z[:, segment_of == k].mean(1) for k in range(int(n_segments))], axis=1)
    if pooling == "attention":
        w = attention_weights(Z, *attention)                    # (B, T)
        return np.einsum("bt,btd->bd", w, Z)
    if pooling == "flatten":
        return Z.reshape(len(Z), -1)
    raise InputError(f"probe pooling {pooling!r}: expected one of {list(POOLINGS)}")


class _LatentView(MappedView):
    """``base`` whose reads give the pooled latents ``fn(flux, sigma)`` (B, m) of its noisy flux and
    sigma in place of the flux (no sigma of their own), streamed and loaded like the flux."""

    def read(self, start, stop):
        return self._map(*self.base.read(start, stop)), None

    def read_rows(self, rows, rng=None):
        return self._map(*self.base.read_rows(rows, rng)), None

    def _map(self, flux, sigma=None):
        out = np.asarray(self.fn(flux, sigma), dtype=float)
        if out.shape != (len(flux), self.n_features):
            raise InputError(f"probe: the pooled latents have shape {out.shape}, expected ({len(flux)}, "
                             f"{self.n_features})")
        return out


@register
class LatentProbe(Composite):
    """A part (Ridge by default) fitted on pooled latents of a frozen upstream encoder (module docstring)."""

    class_id = "probe"
    POOLING_WORDS = {"mean": "mean over tokens", "attention": "attention pooling", "flatten": "all tokens"}

    @property
    def label(self):
        """"Ridge on ViT latents, 8 segment means": the part, the encoder (once fitted) and the pooling."""
        from .moe import _label_of

        parts = getattr(self, "parts_", None)
        encoder = getattr(parts.get("upstream/encoder"), "label", None) if parts else None
        pooling = f"{self.segments} segment means" if self.pooling == "segments" else \
            self.POOLING_WORDS.get(self.pooling, str(self.pooling))
        return f"{_label_of(self.model)} on {encoder + ' ' if encoder else 'frozen '}latents, {pooling}"
    kind = "estimator"
    PARTS = {"model": ("estimator",)}
    UPSTREAM = {"encoder": "a fitted model with encode()"}   # FitContext.upstream keys (config: upstream:)
    _state_json = ("part_names_", "n_tokens_", "n_latent_", "n_features_", "segment_of_", "attention_")
    _state_arrays = ("query_", "latent_mean_", "latent_scale_")

    def __init__(self, model=RIDGE, pooling="mean", segments=8, attention_epochs=10, attention_lr=0.01,
                 attention_rows=4096, random_state=0):
        self.model = model
        self.pooling = pooling
        self.segments = segments
        self.attention_epochs = attention_epochs
        self.attention_lr = attention_lr
        self.attention_rows = attention_rows
        self.random_state = random_state

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        pooling = hyper.get("pooling", cls.hyper_default("pooling"))
        if pooling not in POOLINGS:
            raise InputError(f"{where}.pooling: expected one of {list(POOLINGS)}, got {pooling!r}")
        for key, least in (("segments", 1), ("attention_epochs", 1), ("attention_rows", 2)):
            v = hyper.get(key, cls.hyper_default(key))
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                raise InputError(f"{where}.{key}: expected an integer >= {least}, got {v!r}")
        lr = hyper.get("attention_lr", cls.hyper_default("attention_lr"))
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0:
            raise InputError(f"{where}.attention_lr: expected a number > 0, got {lr!r}")

    # -- the upstream encoder ----------------------------------------------------------------------
    def _encoder_from(self, ctx, n_pixels):
        """The fitted encoder of ``ctx.upstream["encoder"]``; InputError naming the config key
        ``estimators.<variant>.upstream.encoder`` when it is missing, has no ``encode``, is not fitted
        or encodes another number of pixels."""
        encoder = upstream_model(ctx, "encoder")   # missing, or no encode(): InputError naming the key
        key = upstream_key(ctx, "encoder")
        if not getattr(encoder, "is_fitted", True):
            raise InputError(f"{key}: '{encoder.class_id}' is not fitted: expected {self.UPSTREAM['encoder']}")
        n_enc = getattr(encoder, "n_pixels_", None)
        if n_enc is not None and int(n_enc) != int(n_pixels):
            raise InputError(f"{key}: '{encoder.class_id}' encodes spectra of {n_enc} pixels, the views have "
                             f"{n_pixels}")
        return encoder

    @property
    def encoder(self):
        """The frozen upstream encoder (a part of the fitted probe)."""
        self._check_fitted()
        return self.parts_["upstream/encoder"]

    # -- pooling ------------------------------------------------------------------------------------
    def _pool(self, Z):
        attention = (self.query_, self.latent_mean_, self.latent_scale_) if self.pooling == "attention" else None
        return pool(Z, self.pooling, self.segment_of_, self.segments, attention)

    def features(self, flux, sigma=None):
        """Pooled latents (B, n_features) float64 of noisy flux (B, n_pix) (fitted probes)."""
        self._check_fitted()
        return self._pool(self.encoder.encode(flux, sigma))

    def _segments_of(self, encoder, n_tokens, n_pixels, where):
        k = int(self.segments)
        spans = encoder.token_spans() if callable(getattr(encoder, "token_spans", None)) else None
        if spans is None:   # tokens that tile the pixels evenly
            edges = np.linspace(0, n_pixels, n_tokens + 1)
            spans = np.stack([edges[:-1], edges[1:]], axis=1)
        spans = np.asarray(spans)
        if spans.shape != (n_tokens, 2):
            raise InputError(f"{where}: the encoder's token_spans() has shape {spans.shape}, expected ({n_tokens}, 2)")
        seg = segment_index(spans, k)
        empty = sorted(set(range(k)) - set(seg.tolist()))
        if empty:
            raise InputError(f"{where}.segments: {k} wavelength segments, but the encoder's {n_tokens} token(s) "
                             f"leave segment(s) {[e + 1 for e in empty]} empty: use at most {n_tokens} segments "
                             "(or another pooling)")
        return [int(s) for s in seg]

    def _fit_attention(self, encoder, train, ctx):
        """Train the attention query on the frozen latents of the first training rows; sets
        ``query_``, ``latent_mean_``, ``latent_scale_`` and ``attention_``."""
        import torch

        from ..nn.engine import torch_threads

        n = min(int(self.attention_rows), train.n)
        Z = self._latents(encoder, train, n)                                      # (n, T, D) float32
        y = np.asarray(train.y[:n], np.float64)
        mean = Z.reshape(-1, Z.shape[-1]).mean(0, dtype=np.float64)
        scale = np.maximum(Z.reshape(-1, Z.shape[-1]).std(0, dtype=np.float64), 1e-6)
        z = (y - y.mean()) / max(y.std(), 1e-12)
        D = Z.shape[-1]
        rng = np.random.default_rng(derived_seed(self.random_state, "attention"))
        losses = []
        with torch.random.fork_rng(devices=[]), torch_threads(ctx.threads):
            torch.manual_seed(derived_seed(self.random_state, "attention", "init"))
            Zt = torch.from_numpy(Z)                                              # (n, T, D) float32
            mu, sd = torch.tensor(mean, dtype=torch.float32), torch.tensor(scale, dtype=torch.float32)
            zt = torch.tensor(z, dtype=torch.float32)
            query = torch.zeros(D, requires_grad=True)                            # starts at mean pooling
            head = torch.nn.Linear(D, 1)
            opt = torch.optim.Adam([query, *head.parameters()], lr=float(self.attention_lr))
            for _ in range(int(self.attention_epochs)):
                order, total = rng.permutation(n), 0.0
                for i in range(0, n, ATTENTION_BATCH):
                    idx = torch.from_numpy(order[i:i + ATTENTION_BATCH])
                    zb = Zt[idx]                                                  # (b, T, D)
                    w = ((((zb - mu) / sd) @ query) / np.sqrt(D)).softmax(dim=1)  # (b, T)
                    pooled = (w.unsqueeze(-1) * zb).sum(1)                        # (b, D)
                    loss = torch.nn.functional.mse_loss(head((pooled - mu) / sd).squeeze(-1), zt[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                losses.append(total / n)
            self.query_ = query.detach().double().numpy()
        self.latent_mean_, self.latent_scale_ = mean, scale
        self.attention_ = {"rows": int(n), "epochs": int(self.attention_epochs), "lr": float(self.attention_lr),
                           "train_mse": [float(v) for v in losses]}

    @staticmethod
    def _latents(encoder, view, n, chunk=2048):
        """Latents (n, T, D) float32 of the first ``n`` rows of ``view``, read ``chunk`` rows at a time."""
        out = []
        for a in range(0, n, chunk):
            flux, sigma = view.read(a, min(a + chunk, n))
            out.append(np.asarray(encoder.encode(flux, sigma), np.float32))
        return np.concatenate(out)

    # -- the estimator interface ------------------------------------------------------------------
    def fit(self, train, val, context=None):
        """Pool the frozen encoder's latents (training the attention query first for ``attention``)
        and fit the part on them. Returns self."""
        ctx = context or FitContext()
        where, rs = ctx.where, self.random_state
        type(self).check_hyper({k: v for k, v in self.get_params().items() if k != "random_state"}, where)
        encoder = self._encoder_from(ctx, train.n_pixels)
        shape = np.shape(encoder.encode(*val.read(0, 1)))    # one validation spectrum (fixed noise)
        if len(shape) != 3:
            raise InputError(f"{where}: the upstream encoder's encode() gave shape {shape}, expected (B, T, D)")
        _, T, D = shape
        self.n_tokens_, self.n_latent_ = int(T), int(D)
        self.segment_of_ = self._segments_of(encoder, T, train.n_pixels, where) if self.pooling == "segments" else None
        self.query_ = self.latent_mean_ = self.latent_scale_ = np.zeros(0)
        self.attention_ = None
        if self.pooling == "attention":
            self._fit_attention(encoder, train, ctx)
        self.n_features_ = {"mean": D, "segments": int(self.segments) * D, "attention": D,
                            "flatten": T * D}[self.pooling]

        def fn(flux, sigma):
            return self._pool(encoder.encode(flux, sigma))

        model = make_part(self.model, derived_seed(rs, "model"), f"{where}.model")
        model.fit(_LatentView(train, fn, self.n_features_), _LatentView(val, fn, self.n_features_),
                  ctx.part("model", where=f"{where}.model.hyper"))
        self.parts_ = {"upstream/encoder": encoder, "model": model}
        self.part_names_ = list(self.parts_)
        return self

    def predict(self, flux, sigma=None):
        """log g (B,) in dex: the part's prediction from the pooled latents of noisy flux (B, n_pix)."""
        return self.parts_["model"].predict(self.features(flux, sigma), None)

    def fitted(self):
        self._check_fitted()
        encoder = self.parts_["upstream/encoder"]
        out = {"pooling": self.pooling, "n_features": self.n_features_, "n_tokens": self.n_tokens_,
               "n_latent": self.n_latent_, "encoder": getattr(encoder, "class_id", None),
               "model": self.parts_["model"].fitted()}
        if self.pooling == "segments":
            out["segments"] = int(self.segments)
        if self.pooling == "attention":
            out["attention"] = self.attention_
        return out
