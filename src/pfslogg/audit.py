"""Provenance audit: where does a number in the paper come from, and is it still current?

``python -m pfslogg provenance <query>`` (or ``python -m pfslogg.audit <query>``) where the query is

* a macro of ``paper/generated/numbers.tex``, with or without the backslash (``\\TrackFRidgeOverallRtwo``);
* a number as printed in the PDF (``0.471``, ``20000``, ``20 000``, ``20,000``, ``−0.12``): every macro
  whose formatted value equals it, and every macro whose raw value rounds to it at the query's
  number of decimals;
* a figure (``figures/r2_vs_snr.pdf``) with its provenance sidecar ``figures/r2_vs_snr.pdf.json``;
* a results file (``results/track_f/ridge.json``) or any other JSON holding a ``provenance`` block;
* any other output of the workflow (``models/ridge.pkl``, ``data/datasets/test.h5``): its
  Snakemake record (see below).

It prints the chain: macro -> results file and key (raw value; the value there now) -> rule and
its definition ``file:line`` in ``Snakefile``/``rules/*.smk`` -> command and parameters -> inputs,
with sha256 then and now (inputs that are themselves results files or have sidecars are followed,
recursively) -> git commit and dirty flag -> package versions -> times and host. An input that
changed or vanished since, a results file that changed since numbers.tex was generated, or a value
that differs from the one in the paper makes the number STALE; this is printed clearly.

Inputs without a provenance block of their own (trained models, data sets, grids) are followed
through Snakemake's own record of the job that made them (``.snakemake/metadata/``, written by
every Snakemake run): rule, shell command, parameters, inputs and times. Snakemake keeps no
checksums of large files, so there an input counts as changed when it was modified after the job
ended (Snakemake's own criterion).

The numbers index is ``paper/generated/<doc>/numbers.json`` of every document (merged: a macro
is stale when its results file changed since any document that prints it was generated), or the
single ``paper/generated/numbers.json``, or else -- before any paper was built -- the numbers
collected from ``results/`` now.

Exit status: 0 when the query matched (stale or not), 1 when nothing matched, 2 on bad input
(unreadable files, bad arguments). ``--json`` prints the same as one JSON document.
``--root`` is the workflow root (default: the current folder); paths in provenance blocks are
relative to it.
"""

import argparse
import base64
import difflib
import json
import os
import re
import sys
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from .errors import InputError
from .paper.numbers import collect_numbers
from .provenance import sha256_file

INDEX = "paper/generated/numbers.json"
RESULTS = "results"
MAX_DEPTH = 12  # how far inputs are followed upstream
SNAKEMAKE = "snakemake:"  # marks an upstream node that comes from Snakemake's metadata


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def _read_index(path):
    try:
        doc = json.loads(Path(path).read_text())
        return doc["macros"], doc.get("files", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a numbers index: {exc}") from None


def index_files(root):
    """The numbers indexes of a workflow root: ``paper/generated/numbers.json`` and
    ``paper/generated/<doc>/numbers.json``, sorted."""
    gen = Path(root) / "paper" / "generated"
    found = [gen / "numbers.json"] + sorted(gen.glob("*/numbers.json"))
    return [f for f in found if f.is_file()]


def load_index(root, index=None, results=RESULTS):
    """(macros, files, source): the numbers index, from numbers.json files or else from results/.

    ``macros``: name -> {file, key, path, section, raw, formatted, indexes}; ``indexes`` maps each
    index (document) that defines the macro to the sha256 its results file had when that index
    was written. ``files``: results file -> {sha256} (from the first index naming it; empty when
    built from results/ now). ``index``: one index file to use instead of the search.
    """
    root = Path(root)
    if index:
        paths = [Path(index) if Path(index).is_absolute() else root / index]
        if not paths[0].is_file():
            raise InputError(f"{index}: numbers index not found")
    else:
        paths = index_files(root)
    if paths:
        macros, files = {}, {}
        for path in paths:
            rel = _rel(root, path)
            m, f = _read_index(path)
            for name, entry in m.items():
                sha = (f.get(entry.get("file")) or {}).get("sha256")
                if name not in macros:
                    macros[name] = {**entry, "indexes": {}}
                macros[name]["indexes"][rel] = sha
            for k, v in f.items():
                files.setdefault(k, v)
        return macros, files, ", ".join(_rel(root, p) for p in paths)
    results_dir = root / results
    if not results_dir.is_dir():
        return {}, {}, None
    numbers = collect_numbers(results_dir, root=root)
    macros = {n.macro: {"file": n.file, "key": n.key, "path": list(n.path), "section": n.section,
                        "raw": n.raw, "formatted": n.formatted, "indexes": {}} for n in numbers}
    return macros, {}, f"{results_dir} (no {INDEX}; collected now)"


def _rel(root, path):
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _resolve(root, p):
    p = Path(p)
    return p if p.is_absolute() else Path(root) / p


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def provenance_of(path):
    """The provenance block of a JSON file (results file or sidecar), or None."""
    doc = _read_json(path) if Path(path).is_file() else None
    if isinstance(doc, dict) and isinstance(doc.get("provenance"), dict):
        return doc["provenance"]
    return None


# --------------------------------------------------------------------------------------------
# Rule lookup
# --------------------------------------------------------------------------------------------

def rule_files(root):
    root = Path(root)
    files = [root / "Snakefile", root / "workflow" / "Snakefile"]
    files += sorted((root / "rules").glob("*.smk")) + sorted((root / "workflow" / "rules").glob("*.smk"))
    return [f for f in files if f.is_file()]


def find_rule(root, name):
    """['rules/x.smk:12', ...]: where rule ``name`` is defined (rule, checkpoint, use rule ... as)."""
    if not name:
        return []
    pat = re.compile(rf"^\s*(?:(?:rule|checkpoint)\s+{re.escape(name)}\s*:|"
                     rf"use\s+rule\s+\S+(?:\s+from\s+\S+)?\s+as\s+{re.escape(name)}\b)")
    hits = []
    for f in rule_files(root):
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            if pat.match(line):
                hits.append(f"{f.relative_to(root).as_posix()}:{i}")
    return hits


# --------------------------------------------------------------------------------------------
# Snakemake's record of a job
# --------------------------------------------------------------------------------------------

def snakemake_record(root, path):
    """Snakemake's metadata record of output ``path`` (relative to ``root``), or None.

    Snakemake (file persistence) keeps it in ``.snakemake/metadata/`` under the URL-safe base64
    of the path, split into '@'-prefixed folder names when longer than a file name may be."""
    meta = Path(root) / ".snakemake" / "metadata"
    if not meta.is_dir():
        return None
    try:
        max_len = os.pathconf(meta, "PC_NAME_MAX") or 255
    except (OSError, ValueError, AttributeError):
        max_len = 255
    b64 = base64.urlsafe_b64encode(str(path).encode()).decode()
    parts = [b64[i:i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
    parts = ["@" + x for x in parts[:-1]] + [parts[-1]]
    rec = _read_json(meta.joinpath(*parts))
    if not isinstance(rec, dict) or not rec.get("rule"):
        return None
    return rec


def _iso(ts):
    import datetime as _dt
    if not isinstance(ts, (int, float)):
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------------------------

class Tracer:
    """Follows provenance blocks upstream; caches file hashes (inputs can be large)."""

    def __init__(self, root):
        self.root = Path(root)
        self._sha = {}

    def sha(self, path):
        p = _resolve(self.root, path)
        key = str(p)
        if key not in self._sha:
            self._sha[key] = sha256_file(p) if p.is_file() else None
        return self._sha[key]

    def trace(self, path, depth=0, seen=None):
        """The provenance node of the JSON file ``path`` (results file or sidecar)."""
        seen = set() if seen is None else seen
        seen.add(str(path))
        prov = provenance_of(_resolve(self.root, path)) or {}
        node = {
            "path": str(path),
            "rule": prov.get("rule"),
            "rule_defined_at": find_rule(self.root, prov.get("rule")),
            "command": prov.get("command"),
            "params": prov.get("params"),
            "config_digest": prov.get("config_digest"),
            "params_digest": prov.get("params_digest"),
            "git_commit": prov.get("git_commit"),
            "git_dirty": prov.get("git_dirty"),
            "packages": prov.get("packages") or {},
            "started": prov.get("started"),
            "finished": prov.get("finished"),
            "host": prov.get("host"),
            "inputs": [],
            "stale": [],
        }
        if not prov:
            node["stale"].append(f"{path}: no provenance block (missing or unreadable)")
        for ipath, then in (prov.get("inputs") or {}).items():
            now = self.sha(ipath)
            status = "missing" if now is None else ("ok" if now == then else "changed")
            entry = {"path": ipath, "sha256_then": then, "sha256_now": now, "status": status,
                     "upstream": None, "upstream_shown_above": None}
            if status != "ok":
                node["stale"].append(f"input {ipath} {'vanished' if now is None else 'changed'} "
                                     f"since {path} was made")
            self._follow(entry, ipath, depth, seen)
            node["inputs"].append(entry)
        return node

    def _upstream(self, ipath):
        """Where the provenance of input ``ipath`` is: itself or its sidecar (a JSON with a
        provenance block), else ``snakemake:<ipath>`` when Snakemake recorded the job."""
        p = _resolve(self.root, ipath)
        if str(ipath).endswith(".json") and provenance_of(p):
            return str(ipath)
        sidecar = f"{ipath}.json"
        if provenance_of(_resolve(self.root, sidecar)):
            return sidecar
        if snakemake_record(self.root, ipath):
            return SNAKEMAKE + str(ipath)
        return None

    def trace_record(self, path, depth=0, seen=None):
        """The provenance node of ``path`` from Snakemake's record of the job that made it."""
        seen = set() if seen is None else seen
        seen.add(SNAKEMAKE + str(path))
        rec = snakemake_record(self.root, path) or {}
        params = rec.get("params")
        node = {
            "path": str(path), "source": "snakemake", "rule": rec.get("rule"),
            "rule_defined_at": find_rule(self.root, rec.get("rule")),
            "command": rec.get("shellcmd"), "params": params[0] if isinstance(params, list)
            and len(params) == 1 else params,
            "config_digest": None, "git_commit": None, "git_dirty": None, "packages": {},
            "started": _iso(rec.get("starttime")), "finished": _iso(rec.get("endtime")),
            "host": None, "inputs": [], "stale": [],
        }
        if rec.get("incomplete"):
            node["stale"].append(f"{path}: Snakemake marks the job that made it incomplete")
        end = rec.get("endtime")
        mine = _resolve(self.root, path)
        if not mine.exists():
            node["stale"].append(f"{path} vanished")
        for ipath in rec.get("input") or []:
            f = _resolve(self.root, ipath)
            if not f.exists():
                status = "missing"
            elif isinstance(end, (int, float)) and f.stat().st_mtime > end:
                status = "changed"
            else:
                status = "ok"
            entry = {"path": ipath, "sha256_then": None, "sha256_now": None, "status": status,
                     "by": "mtime", "upstream": None, "upstream_shown_above": None}
            if status != "ok":
                node["stale"].append(f"input {ipath} {'vanished' if status == 'missing' else 'modified'} "
                                     f"since {path} was made")
            self._follow(entry, ipath, depth, seen)
            node["inputs"].append(entry)
        return node

    def _follow(self, entry, ipath, depth, seen):
        upstream = self._upstream(ipath)
        if upstream and upstream in seen:
            entry["upstream_shown_above"] = upstream.removeprefix(SNAKEMAKE)
        elif upstream and depth < MAX_DEPTH:
            if upstream.startswith(SNAKEMAKE):
                entry["upstream"] = self.trace_record(upstream.removeprefix(SNAKEMAKE), depth + 1, seen)
            else:
                entry["upstream"] = self.trace(upstream, depth + 1, seen)


def stale_reasons(node):
    """All stale reasons of a node and everything upstream of it."""
    out = list(node.get("stale", []))
    for entry in node.get("inputs", []):
        if entry.get("upstream"):
            out += stale_reasons(entry["upstream"])
    return out


def _lookup(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _same(a, b):
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _section(doc, section):
    for part in (section or "metrics").split("."):
        doc = doc[part]
    return doc


def trace_macro(tracer, name, entry, files):
    """The chain of one macro: its value, the results file, and everything upstream."""
    file = entry["file"]
    path = entry.get("path") or []
    result = {"macro": name, "formatted": entry["formatted"], "file": file, "key": entry["key"],
              "raw": entry["raw"], "raw_now": None, "stale": [],
              "documents": sorted(entry.get("indexes") or {})}
    fpath = _resolve(tracer.root, file)
    if not fpath.is_file():
        result["stale"].append(f"results file {file} vanished")
        result["results"] = None
        return result
    thens = {k: v for k, v in (entry.get("indexes") or {}).items() if v}
    if not thens and (files.get(file) or {}).get("sha256"):
        thens = {"numbers.json": files[file]["sha256"]}
    for index, then in thens.items():
        if tracer.sha(file) != then:
            tex = index[:-len(".json")] + ".tex" if index.endswith(".json") else index
            result["stale"].append(f"{file} changed since {tex} was generated "
                                   "(rebuild the paper)")
    doc = _read_json(fpath)
    try:
        result["raw_now"] = _lookup(_section(doc, entry.get("section")), path)
    except (KeyError, IndexError, TypeError):
        result["stale"].append(f"{file} no longer has {entry['key']}")
    else:
        if not _same(result["raw_now"], entry["raw"]):
            result["stale"].append(f"{file} :: {entry['key']} is now {result['raw_now']!r}, "
                                   f"the paper has {entry['raw']!r}")
    result["results"] = tracer.trace(file)
    return result


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_number(query):
    """The query as a Decimal if it reads as a number (PDF forms: '20 000', '20,000', '−0.1')."""
    q = query.strip().replace("\u2212", "-").replace("\u2009", "").replace("\u202f", "")
    q = q.replace("\\,", "").replace(" ", "").replace("{", "").replace("}", "")
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", q):
        q = q.replace(",", "")
    if not _NUMBER_RE.fullmatch(q):
        return None
    try:
        return Decimal(q)
    except InvalidOperation:
        return None


def _rounds_to(raw, target):
    """Whether ``raw`` rounds to ``target`` at target's number of decimals (half-even or up)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != raw:
        return False
    if raw in (float("inf"), float("-inf")):
        return False
    exp = target.as_tuple().exponent
    quantum = Decimal(1).scaleb(exp) if exp < 0 else Decimal(1)
    d = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    try:
        return any(d.quantize(quantum, rounding=r) == target
                   for r in (ROUND_HALF_EVEN, ROUND_HALF_UP))
    except InvalidOperation:  # more digits than Decimal's precision: not this number
        return False


def match_number(macros, target):
    """[(name, how)] of macros whose formatted value equals ``target`` or whose raw rounds to it."""
    out = []
    for name, e in macros.items():
        f = parse_number(str(e["formatted"]))
        if f is not None and f == target:
            out.append((name, "formatted value"))
        elif _rounds_to(e["raw"], target):
            out.append((name, "raw value rounds to it"))
    return out


def audit(query, root=".", index=None, results=RESULTS):
    """The audit report (a dict) of ``query``; ``report['matches']`` is empty when nothing matched."""
    root = Path(root)
    tracer = Tracer(root)
    macros, files, source = load_index(root, index=index, results=results)
    report = {"query": query, "root": str(root), "index": source, "kind": None, "matches": []}
    q = query.strip()

    name = q[1:] if q.startswith("\\") else q
    if re.fullmatch(r"[A-Za-z]+", name):
        report["kind"] = "macro"
        hit = name if name in macros else next((m for m in macros if m.lower() == name.lower()), None)
        if hit:
            report["matches"].append({**trace_macro(tracer, hit, macros[hit], files),
                                      "how": "macro name"})
        else:
            report["suggestions"] = difflib.get_close_matches(name, list(macros), n=5)
        return _finish(report)

    target = parse_number(q)
    if target is not None:
        report["kind"] = "number"
        for hit, how in match_number(macros, target):
            report["matches"].append({**trace_macro(tracer, hit, macros[hit], files), "how": how})
        return _finish(report)

    report["kind"] = "path"
    path = Path(q)
    rel = path.as_posix()
    if path.is_absolute():
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    full = _resolve(root, rel)
    if provenance_of(full):
        node = tracer.trace(rel)
        related = sorted(m for m, e in macros.items() if e["file"] == rel)
        report["matches"].append({"artifact": rel, "sidecar": None, "exists": True,
                                  "macros": related, "results": node, "stale": []})
    elif provenance_of(Path(f"{full}.json")):
        node = tracer.trace(f"{rel}.json")
        stale = [] if full.exists() else [f"{rel} itself is missing (its sidecar remains)"]
        report["matches"].append({"artifact": rel, "sidecar": f"{rel}.json", "exists": full.exists(),
                                  "macros": [], "results": node, "stale": stale})
    elif snakemake_record(root, rel):
        node = tracer.trace_record(rel)
        report["matches"].append({"artifact": rel, "sidecar": None, "exists": full.exists(),
                                  "macros": [], "results": node, "stale": []})
    elif full.exists():
        report["no_provenance"] = (f"{rel} exists but has no provenance block, no sidecar {rel}.json "
                                   "and no Snakemake record")
    return _finish(report)


def _finish(report):
    reasons = []
    for m in report["matches"]:
        reasons += m.get("stale", []) + (stale_reasons(m["results"]) if m.get("results") else [])
    report["stale"] = bool(reasons)
    report["stale_reasons"] = list(dict.fromkeys(reasons))
    return report


# --------------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------------

def _short(sha):
    return sha[:12] if sha else "-"


def _fmt_params(params):
    if params is None:
        return "-"
    return json.dumps(params, sort_keys=True, default=str)


def _print_node(node, out, indent):
    pad = " " * indent
    rule = node["rule"] or "?"
    where = (f"defined at {', '.join(node['rule_defined_at'])}" if node["rule_defined_at"]
             else f"(no 'rule {rule}:' found in Snakefile or rules/*.smk)")
    if node.get("source") == "snakemake":
        _print_record(node, out, pad, rule, where, indent)
        return
    dirty = node["git_dirty"]
    tree = "unknown" if dirty is None else ("DIRTY (uncommitted changes)" if dirty else "clean")
    pkgs = ", ".join(f"{k} {v}" for k, v in node["packages"].items()) or "-"
    rows = [("made by", f"rule {rule}   {where}"),
            ("command", node["command"] or "-"),
            ("params", _fmt_params(node["params"])),
            ("digests", f"params sha256 {_short(node.get('params_digest'))} (the rule's parameters), "
                        f"config sha256 {_short(node['config_digest'])} (the whole configuration)"),
            ("commit", f"{node['git_commit'] or 'unknown (not in git)'}   work tree {tree}"),
            ("packages", pkgs),
            ("time", f"{node['started'] or '?'} -> {node['finished'] or '?'} on {node['host'] or '?'}")]
    for label, value in rows:
        print(f"{pad}{label:<9}{value}", file=out)
    if not node["inputs"]:
        print(f"{pad}{'inputs':<9}none recorded", file=out)
    else:
        print(f"{pad}inputs", file=out)
    _print_inputs(node, out, pad, indent)


def _print_inputs(node, out, pad, indent):
    for e in node["inputs"]:
        if e.get("by") == "mtime":
            state = {"ok": "not modified since", "changed": "modified after the job ended  <- STALE",
                     "missing": "file vanished  <- STALE"}[e["status"]]
        elif e["status"] == "ok":
            state = f"sha256 {_short(e['sha256_then'])} unchanged"
        elif e["status"] == "changed":
            state = f"sha256 then {_short(e['sha256_then'])} now {_short(e['sha256_now'])}  <- STALE"
        else:
            state = f"sha256 then {_short(e['sha256_then'])}, file vanished  <- STALE"
        print(f"{pad}  {e['status'].upper():<8}{e['path']}   {state}", file=out)
        if e["upstream"]:
            how = " (Snakemake record)" if e["upstream"].get("source") == "snakemake" else ""
            print(f"{pad}    upstream: {e['upstream']['path']}{how}", file=out)
            _print_node(e["upstream"], out, indent + 6)
        elif e["upstream_shown_above"]:
            print(f"{pad}    upstream: {e['upstream_shown_above']} (shown above)", file=out)


def _print_record(node, out, pad, rule, where, indent):
    """A node from Snakemake's metadata: no checksums, commit or packages are recorded there."""
    rows = [("made by", f"rule {rule}   {where}"),
            ("command", node["command"] or "-"),
            ("record", ".snakemake/metadata (Snakemake's record; inputs compared by modification time)"),
            ("time", f"{node['started'] or '?'} -> {node['finished'] or '?'}")]
    params = node["params"] if isinstance(node["params"], str) else _fmt_params(node["params"])
    if node["params"] and params not in (node["command"] or ""):
        rows.insert(2, ("params", params))
    for label, value in rows:
        print(f"{pad}{label:<9}{value}", file=out)
    print(f"{pad}{'inputs':<9}none recorded" if not node["inputs"] else f"{pad}inputs", file=out)
    _print_inputs(node, out, pad, indent)


def print_report(report, out=None):
    out = out if out is not None else sys.stdout
    matches = report["matches"]
    if report["kind"] == "number" and len(matches) > 1:
        print(f"{len(matches)} numbers in the paper match {report['query']}:\n", file=out)
    for i, m in enumerate(matches):
        if i:
            print("", file=out)
        if "macro" in m:
            raw_now = "" if _same(m["raw_now"], m["raw"]) else f"   (now {m['raw_now']!r})"
            print(f"\\{m['macro']} = {m['formatted']}   [{m['how']}]", file=out)
            print(f"  {'value':<9}{m['file']} :: {m['key']} = {m['raw']!r}{raw_now}", file=out)
            if m.get("documents"):
                print(f"  {'in':<9}" + ", ".join(d.removeprefix("paper/generated/")
                                                  .removesuffix("/numbers.json") for d in
                                                  m["documents"]), file=out)
        else:
            label = ("figure" if m["sidecar"] else
                     "output" if (m.get("results") or {}).get("source") == "snakemake" else "results")
            print(f"{label} {m['artifact']}" + (f"   (sidecar {m['sidecar']})" if m["sidecar"] else ""),
                  file=out)
            if m["macros"]:
                print(f"  {'macros':<9}" + ", ".join("\\" + x for x in m["macros"]), file=out)
        if m.get("results"):
            if m["results"]["path"] != (m.get("file") if "macro" in m else m.get("artifact")):
                print(f"  {'source':<9}{m['results']['path']}", file=out)
            _print_node(m["results"], out, 2)
    if report["stale"]:
        print("", file=out)
        for r in report["stale_reasons"]:
            print(f"STALE: {r}", file=out)
        print("STALE: the number(s) above may be out of date; rerun the workflow "
              "(snakemake) to refresh them.", file=out)
    elif matches:
        print("\nup to date: every input has the checksum it had when the number was made "
              "(inputs known only from Snakemake's records: not modified since).", file=out)


def main(argv=None):
    """Entry point of ``python -m pfslogg provenance`` and ``python -m pfslogg.audit``."""
    ap = argparse.ArgumentParser(
        prog="python -m pfslogg provenance",
        description="Trace a number, macro, figure or results file of the paper to the rule, "
                    "command, inputs (checksums then and now), commit and packages that made it.")
    ap.add_argument("query", help="macro (\\TrackF... or TrackF...), number as printed (0.471), "
                                  "figure (figures/x.pdf) or results file (results/track_f/x.json)")
    ap.add_argument("--root", default=".", help="workflow root (default: current folder)")
    ap.add_argument("--index", help=f"numbers index (default: ROOT/{INDEX})")
    ap.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = ap.parse_args(argv)
    try:
        report = audit(args.query, root=args.root, index=args.index)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.json:
            json.dump(report, sys.stdout, indent=2, default=str)
            sys.stdout.write("\n")
        elif report["matches"]:
            print_report(report)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head
        sys.stdout = open(os.devnull, "w")
    if not report["matches"]:
        msg = {"macro": f"no macro named \\{args.query.lstrip(chr(92))}",
               "number": f"no number in the paper equals or rounds to {args.query}",
               "path": f"no results file or figure sidecar at {args.query}"}[report["kind"]]
        if report.get("no_provenance"):
            msg = report["no_provenance"]
        if report.get("suggestions"):
            msg += "; did you mean " + ", ".join("\\" + s for s in report["suggestions"]) + "?"
        if report["index"] is None:
            msg += f" (no {INDEX} and no {RESULTS}/ under {args.root})"
        print(f"not found: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
