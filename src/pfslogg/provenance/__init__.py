"""Provenance blocks for results JSON (DESIGN.md section 5).

Every number a rule computes is written with a block that says which rule and command made it,
from which inputs (sha256), at which git commit (and whether the work tree was dirty), with which
configuration (digest) and package versions, and when.
"""

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from ..atomic import write_json

# Packages whose versions go into every block.
TRACKED_PACKAGES = (
    "pfslogg", "numpy", "scipy", "h5py", "pandas", "tables", "torch", "scikit-learn",
    "lightgbm", "matplotlib", "snakemake", "astropy",
)


def sha256_file(path, bufsize=1 << 20):
    """sha256 of a file's bytes (memoised per process on path, size and modification time: a job
    that names a large data set twice reads it once)."""
    st = os.stat(path)
    return _sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns, bufsize)


@functools.lru_cache(maxsize=64)
def _sha256(path, size, mtime_ns, bufsize):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def config_digest(cfg):
    """sha256 of the canonical JSON of a (sub)configuration."""
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def git_state(cwd=None):
    """(commit, dirty) of the repository holding ``cwd`` -- by default the repository of this
    package's source, i.e. the code version that computed the numbers; (None, None) outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        return None, None


def package_versions(names=TRACKED_PACKAGES):
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def now():
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _command():
    """The exact command line of this process (``python -m pfslogg ...`` for the CLI)."""
    if sys.argv and sys.argv[0] == "pfslogg":
        return "python -m " + shlex.join(sys.argv)
    return shlex.join([Path(sys.executable).name, *sys.argv])


CONFIG_DIGEST_ENV = "PFSLOGG_CONFIG_DIGEST"


def make_block(rule, inputs, params=None, config=None, started=None, command=None):
    """The provenance block: see DESIGN.md section 5.

    ``inputs``: list of paths (files) whose sha256 is recorded; ``params``: the parameters the
    computation used (recorded verbatim), digested as ``params_digest``; ``config``: the whole
    configuration, digested as ``config_digest`` -- by default the digest the workflow put in the
    environment variable ``PFSLOGG_CONFIG_DIGEST`` (rules/common.smk), None outside the workflow.
    """
    commit, dirty = git_state()
    inputs = [str(p) for p in (inputs or [])]
    return {
        "rule": rule,
        "command": command if command is not None else _command(),
        "params": params,
        "git_commit": commit,
        "git_dirty": dirty,
        "params_digest": config_digest(params),
        "config_digest": config_digest(config) if config is not None else os.environ.get(CONFIG_DIGEST_ENV),
        "inputs": {p: sha256_file(p) for p in inputs},
        "packages": package_versions(),
        "started": started or now(),
        "finished": now(),
        "host": socket.gethostname(),
    }


def write_results(path, metrics, rule, inputs, params=None, config=None, started=None, kind=None, details=None):
    """Write ``{"kind", "metrics", ["details",] "provenance"}`` atomically to ``path``.

    ``kind`` says what the file holds (``dataset``, ``grid``, ``estimator``, ``experiment``,
    ``fisher``, ``calibration``, ``figure``): readers recognise a file by it, never by its keys.
    ``details``: supporting values (searches, timings) that the paper never prints as macros.
    """
    if kind is None:
        raise ValueError("write_results: say what the file holds (kind=...)")
    doc = {"kind": kind, "metrics": metrics}
    if details is not None:
        doc["details"] = details
    doc["provenance"] = make_block(rule, inputs, params, config, started)
    write_json(path, doc)


def read_results(path, kind=None):
    """A results JSON document; InputError naming the file when unreadable or not of ``kind``."""
    from ..errors import InputError

    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read results JSON ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or "metrics" not in doc or "kind" not in doc:
        raise InputError(f"{path}: not a results JSON (expected keys 'kind', 'metrics', 'provenance')")
    if kind is not None and doc["kind"] != kind:
        raise InputError(f"{path}: holds kind '{doc['kind']}', expected '{kind}'")
    return doc
