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


SHA_CACHE = Path(".snakemake") / "pfslogg-sha256"
SHA_CACHE_MIN_BYTES = 64 << 20   # smaller files are hashed every time


def sha256_file(path, bufsize=1 << 20):
    """sha256 of a file's bytes.

    Memoised per process, and across processes in ``.snakemake/pfslogg-sha256/`` of the workflow
    folder (when there is one), on (path, size, modification time, inode) -- the same test of
    change that Snakemake itself applies: the hundreds of cells of an experiment grid all name the
    same large training set, which is then read once, not once per cell.
    """
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if st.st_size < SHA_CACHE_MIN_BYTES or not SHA_CACHE.parent.is_dir():
        return _sha256(*key[:3], bufsize)
    entry = SHA_CACHE / (hashlib.sha256(key[0].encode()).hexdigest()[:32] + ".json")
    try:
        cached = json.loads(entry.read_text())
        if cached["key"] == list(key):
            return cached["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = _sha256(*key[:3], bufsize)
    try:
        SHA_CACHE.mkdir(exist_ok=True)
        tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": list(key), "sha256": digest}))
        os.replace(tmp, entry)
    except OSError:
        pass
    return digest


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
    ``fisher``, ``bayes``, ``calibration``, ``figure``): readers recognise a file by it, never by its keys.
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
