"""Thread limits: how many threads the numerical libraries may use inside a block.

``numpy_threads(n)`` caps the BLAS / OpenMP pools of NumPy, SciPy and scikit-learn (threadpoolctl);
torch's intra-op threads are set by :func:`pfslogg.nn.engine.torch_threads`.
"""

import contextlib


@contextlib.contextmanager
def numpy_threads(n):
    """Limit BLAS threads inside the block (threadpoolctl when available)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=max(1, int(n))):
        yield
