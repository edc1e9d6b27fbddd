"""Progress bars for long steps, readable both in a terminal and in a rule's log file.

``progress(iterable, total=..., desc=...)`` is a tqdm bar on standard error. In a terminal it
redraws in place; when standard error is a file (a Snakemake rule's log, a Slurm job's output) it
writes one plain line per update, at most every ``LOG_INTERVAL_S`` seconds, so ``tail -f`` on the
log shows progress and the log does not fill with carriage returns.
"""

import sys

LOG_INTERVAL_S = 10.0


class _Lines:
    """A file-like object that turns tqdm's in-place redraws into one line each."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s):
        s = s.replace("\r", "").strip()
        if s:
            self.stream.write(s + "\n")
            self.stream.flush()

    def flush(self):
        self.stream.flush()


def progress(iterable=None, total=None, desc="", unit="it", enabled=True):
    """A tqdm bar over ``iterable`` (or a manual one with ``total``); a no-op wrapper when disabled."""
    from tqdm import tqdm

    stream = sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, ascii=not tty,
                file=stream if tty else _Lines(stream), mininterval=0.5 if tty else LOG_INTERVAL_S,
                dynamic_ncols=tty, ncols=None if tty else 100)
