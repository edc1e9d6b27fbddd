"""Atomic output: write to a temporary file beside the target, then rename.

A crash or an error midway leaves no partial output under the final name.
"""

import contextlib
import json
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    On any exception the temporary file is removed and the target is left untouched.
    The temporary name keeps the target's suffix so libraries that sniff it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one deterministic name per target: a rerun after a kill replaces what a killed run left
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # many writers (h5py, savefig) want to create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj):
    """Write ``obj`` as strict JSON: NaN and infinities (not JSON) are written as ``null``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(finite(obj), fh, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
            fh.write("\n")


def finite(obj):
    """``obj`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
