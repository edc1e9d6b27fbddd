"""Training batches streamed from the HDF5 data set through a torch ``DataLoader``.

The training view is never loaded whole: each epoch visits the view's rows in blocks of
``block_size`` (HDF5 reads of contiguous rows) in a shuffled block order; ``buffer_blocks``
blocks at a time are pooled, shuffled row by row and cut into batches (rows left over join the
next pool). Every block read draws fresh noise ``noise_level * sigma * eps`` from the view's own
generator (:class:`~pfslogg.data.views.NoisyView` with ``rng_seed``), so every batch of every
epoch carries a new noise realisation.

Determinism and resumption: the order and the noise depend only on two NumPy generators, the
stream's (block order, row shuffle) and the view's (noise). :meth:`BlockStream.state` /
:meth:`~BlockStream.set_state` capture both; the engine records them at the start of an epoch, and
to resume in the middle of one it restores them and replays (reads, without training) the batches
already done. ``num_workers=0``: the generators live in this process.

What a batch holds is the target's (:mod:`.targets`): ``(flux, logg)`` for log g, ``(flux, sigma,
clean, s)`` for a denoiser (the noiseless flux of the same rows, and a strength per row drawn from
the stream's generator, so it is replayed on resumption too).
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset


class BlockStream(IterableDataset):
    """One epoch of shuffled batches of a view: tuples of tensors, one per field of the ``target``
    (:mod:`.targets`) -- for log g (the default) ``(flux, logg)``, float32 (B, n_pix) and (B,); for
    a clean spectrum ``(flux, sigma, clean, s)``.

    ``view``: any view with fresh noise (:mod:`pfslogg.data.views`), used through its public
    interface only: the target reads each block with ``view.read(start, stop)`` -- the view's own
    reader, so the noise is exactly the view's -- and, for a denoiser, ``view.read_clean(start,
    stop)``; labels come from ``view.y``, and ``view.noise_state()`` is part of :meth:`state`.
    Per-row values a target draws (a denoiser's strengths) come from the stream's generator, after
    each pool's shuffle. The last batch of an epoch may be smaller; one of a single row is dropped
    (batch norm cannot train on it).
    """

    def __init__(self, view, batch_size, block_size=1024, buffer_blocks=4, seed=0, target=None):
        from .targets import LoggTarget

        self.view = view
        self.batch_size = int(batch_size)
        self.block_size = int(block_size)
        self.buffer_blocks = int(buffer_blocks)
        self.rng = np.random.default_rng(seed)
        self.target = LoggTarget() if target is None else target
        self.y = np.asarray(view.y, np.float32)   # the label learned (log g unless a TargetView)
        self.labels = self.target.labels(view)

    def state(self):
        """JSON-able generator states: the stream's and the view's (None for fixed noise)."""
        return {"order": self.rng.bit_generator.state, "noise": self.view.noise_state()}

    def set_state(self, state):
        self.rng.bit_generator.state = state["order"]
        self.view.set_noise_state(state["noise"])

    def first_block(self):
        """Noisy flux of the first block (m, n_pix), float64: for the input scales (draws noise)."""
        return self.view.read_flux(0, min(self.block_size, self.view.n))

    def _pools(self):
        """Yield the target's fields (a tuple of arrays, rows first) of ``buffer_blocks`` blocks at a
        time, rows shuffled, then the target's draws for those rows appended."""
        starts = np.arange(0, self.view.n, self.block_size)
        order = self.rng.permutation(len(starts))
        for g in range(0, len(order), self.buffer_blocks):
            blocks = [(s, min(s + self.block_size, self.view.n)) for s in starts[order[g:g + self.buffer_blocks]]]
            reads = [self.target.read(self.view, self.labels, a, b) for a, b in blocks]
            fields = [np.concatenate(f) for f in zip(*reads)]
            perm = self.rng.permutation(len(fields[0]))
            fields = [f[perm] for f in fields]
            yield (*fields, *self.target.draw(self.rng, len(perm)))

    def __iter__(self):
        rest = None
        for pool in self._pools():
            fields = pool if rest is None else [np.concatenate([r, f]) for r, f in zip(rest, pool)]
            full = len(fields[0]) // self.batch_size * self.batch_size
            for i in range(0, full, self.batch_size):
                yield tuple(torch.from_numpy(f[i:i + self.batch_size]) for f in fields)
            rest = [f[full:] for f in fields]
        if rest is not None and len(rest[0]) > 1:
            yield tuple(torch.from_numpy(f) for f in rest)

    def n_batches(self):
        """Batches per epoch (for the progress bar)."""
        full, rest = divmod(self.view.n, self.batch_size)
        return full + (rest > 1)


def loader(stream, pin_memory=False):
    """A DataLoader over an already batched stream, in this process (deterministic, resumable)."""
    return DataLoader(stream, batch_size=None, num_workers=0, pin_memory=pin_memory)


def eval_batches(view, block_size=1024):
    """Yield (flux float32 (m, n_pix), label (m,)) over a view in row order (validation: fixed noise)."""
    y = np.asarray(view.y)
    for a, b, flux, _ in view.batches(block_size, sigma=False):
        yield flux.astype(np.float32), y[a:b]
