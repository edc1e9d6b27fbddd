"""The process's memory allocator, set for a numerical job that allocates the same large arrays again
and again (a training stream reads blocks of 1,024 spectra: 32 MiB of float64 each).

By default glibc serves every allocation above its mmap threshold (at most 32 MiB, adjusted up to the
largest block freed so far) with a fresh ``mmap`` and hands it back with ``munmap`` on free, and NumPy
asks the kernel for transparent huge pages on every large array. Each fresh page is then zeroed by the
kernel on first touch. On the 2-core virtual machine this project is timed on, that zeroing
(``clear_page_erms`` in ``perf``) was 22 % of an MLP cell's time and half of a Ridge cell's
(``bench/bench_allocator.py`` prints the figures). :func:`reuse_freed_memory` keeps freed blocks in
the process for the next allocation of the same size instead: the numbers computed are unchanged (only
where memory comes from changes), peak resident memory about the same.

It is a process-wide setting, applied once by the command line (:func:`pfslogg.cli.main`) before any
step runs; a library user may call it too. It does nothing where glibc's ``mallopt`` is not available
(macOS, Windows, musl), and NumPy's huge-page request is left as it is where NumPy lacks the switch.
"""

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1      # mallopt parameters (glibc malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20   # blocks up to 256 MiB come from (and go back to) the heap, bigger ones from mmap
TRIM_THRESHOLD = 1 << 30     # free memory at the heap's top is handed back to the kernel above 1 GiB


def reuse_freed_memory():
    """Keep freed large blocks for reuse (glibc) and allocate NumPy arrays in ordinary pages.

    Returns a dict of what was set (``{"mallopt": bool, "numpy_huge_pages": bool | None}``): ``mallopt``
    False where glibc is not there or refused, ``numpy_huge_pages`` the switch's previous state, None
    where NumPy has no switch."""
    done = {"mallopt": False, "numpy_huge_pages": None}
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            done["mallopt"] = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # NumPy 1.x
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            _set_madvise_hugepage = None
    if _set_madvise_hugepage is not None:
        done["numpy_huge_pages"] = bool(_set_madvise_hugepage(False))
    return done
