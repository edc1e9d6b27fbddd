"""One exception type for bad input.

Every message names the offending file or key and what was expected, so the user sees a single
clear line instead of a trace from deep inside h5py, pandas or NumPy.
"""


class InputError(ValueError):
    """Bad input: a missing/malformed file, a config key out of range, invalid values."""


def fail(where, what):
    """Raise InputError with a message '<where>: <what>'."""
    raise InputError(f"{where}: {what}")
