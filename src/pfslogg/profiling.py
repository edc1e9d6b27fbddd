"""What a finished run of the paper cost: its jobs' benchmarks and logs, by rule, track and estimator class.

Pure functions over a run's files (``bench/profile_paper.py`` is the command; the README's run-time
table comes from :func:`markdown_track_table`):

* :func:`rule_paths` reads each rule's ``log:`` and ``benchmark:`` path templates from the Snakefile and
  ``rules/*.smk`` (a string or a ``W.<NAME>`` of :mod:`pfslogg.workflow`), so that a file under
  ``benchmarks/`` or ``logs/`` names its job: rule and wildcards. Rules run_cell and run_neural_cell
  share their paths; the configuration tells them apart (:func:`pfslogg.workflow.is_neural`).
* :func:`read_jobs` makes one :class:`Job` per job: from its benchmark TSV the wall time (``s``), the
  CPU-seconds (``cpu_time``) and the peak resident memory (``max_rss``, MB) -- the CPU-seconds from the
  log's last ``done in ... s (CPU ... s)`` line where it has one (every ``pfslogg`` command writes it):
  Snakemake samples a job's CPU time every 30 s and loses its last interval (a 45-s cell of 40
  CPU-seconds recorded 14.5); its end is the TSV's mtime
  (Snakemake writes it as the job ends), or the log's mtime for a job that records no benchmark
  (figures, tables, documents: no wall time then, unless Snakemake's metadata has its start and end);
  its start is end - wall.
* :func:`by_rule`, :func:`by_track`, :func:`by_class` sum them. A job's track is the track that owns it in
  the registry (:mod:`pfslogg.tracks`): the cells of the experiments the config gives that track, the cells
  its results and text read, and every cell those build on (upstream models); its own rules, figures,
  tables and document. A cell that two tracks own counts in both (the ``shared`` column) and once in the
  total; the grid and the data sets are ``data``, the whole study's document ``main``, a shared table
  ``shared``, a job the configuration no longer has ``other``.
* :func:`utilisation`: total CPU-seconds / (cores x makespan), makespan = last end - first start;
  :func:`sessions` splits a tree built by several runs at idle gaps, so that each run gets its own figure.
* :func:`critical_path`: the longest chain of wall time through the DAG.

How the critical path is found. The DAG is the one Snakemake recorded for the run: for every file it
made, ``.snakemake/metadata/<base64 of the path>`` holds the rule, its log, its input files and its
start and end times; a job needs the job whose output is one of its inputs. Asking Snakemake instead
(``snakemake <target> --forceall --dag``) would build the whole DAG of the target (about as long as a
dry run of the paper: the workflow's input functions read the LaTeX sources) and describe the jobs as
they would run now, not those that ran. Where there is no metadata (a tree copied without
``.snakemake``), the path comes from the recorded times instead (:func:`chain_by_times`): from the job
that ended last, step back to the job that ended when it started (within ``tolerance`` seconds), and so
on -- a chain of jobs that ran back to back, which on two cores is the critical path only as far as each
job waited for its predecessor rather than for a free core.
"""

import base64
import csv
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

BENCHMARK_COLUMNS = ("s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out", "mean_load",
                     "cpu_time")
CELL_RULES = ("run_cell", "run_neural_cell")
DATA_RULES = ("build_raw_grid", "convolve_grid", "simulate_dataset", "describe_dataset", "describe_grid")


@dataclass
class Job:
    """One job of a run. ``wall``/``cpu`` in seconds, ``rss`` in MB (None: not recorded); ``end`` and
    ``start`` in seconds since the epoch; ``path`` the file it was read from (relative to the root)."""

    rule: str
    wildcards: dict
    path: str
    end: float
    wall: float = None
    cpu: float = None
    rss: float = None
    benchmark: bool = True
    tracks: tuple = ()
    estimator_class: str = None
    inputs: set = field(default_factory=set)   # ids of the jobs it needs (from Snakemake's metadata)

    @property
    def id(self):
        return job_id(self.rule, self.wildcards)

    @property
    def start(self):
        return self.end - (self.wall or 0.0)


def job_id(rule, wildcards):
    """'run_cell[estimator=ridge,noise=1,seed=0,size=2000]', 'summarize_moe'."""
    w = ",".join(f"{k}={wildcards[k]}" for k in sorted(wildcards))
    return f"{rule}[{w}]" if w else rule


# -- which job a file belongs to -----------------------------------------------------------------
def rule_paths(workflow_dir):
    """``{rule: {"log": template or None, "benchmark": template or None}}`` from the Snakefile and
    ``rules/*.smk`` of ``workflow_dir``; a template such as
    ``benchmarks/run_cell/{estimator}/nl{noise}_n{size}_s{seed}.tsv``. A ``use rule A as B with:`` starts
    from A's paths."""
    from . import workflow as W

    workflow_dir = Path(workflow_dir)
    files = [workflow_dir / "Snakefile", *sorted((workflow_dir / "rules").glob("*.smk"))]
    if not files[0].exists():
        raise InputError(f"{files[0]}: no Snakefile there (the rules name each job's log and benchmark paths)")
    blocks = []   # (name, parent of a `use rule ... as name with:` or None, text), in file order
    for path in files:
        text = path.read_text()
        starts = [(m.start(), m.group(2) or m.group(4), m.group(3)) for m in
                  re.finditer(r"^(rule (\w+):|use rule (\w+) as (\w+) with:)", text, flags=re.M)]
        for (a, name, parent), (b, _, _) in zip(starts, starts[1:] + [(len(text), None, None)]):
            blocks.append((name, parent, text[a:b]))
    out = {}
    for name, parent, block in blocks:   # a rule used before it is defined is not Snakemake's either
        entry = dict(out.get(parent) or {"log": None, "benchmark": None})
        for key in ("log", "benchmark"):
            m = re.search(rf"^    {key}:\s*\n\s+(?:\"([^\"]+)\"|W\.(\w+))", block, flags=re.M)
            if m:
                entry[key] = m.group(1) or getattr(W, m.group(2), None)
        out[name] = entry
    return out


def _template_regex(template):
    """A path template's regex; the wildcards of a fixed form (rules/common.smk) by their patterns."""
    from .workflow import WILDCARD_PATTERNS

    parts = re.split(r"\{(\w+)\}", template)
    rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{WILDCARD_PATTERNS.get(p, '[^/]+')})"
                 for i, p in enumerate(parts))
    return re.compile(rx + "$")


def _neural(cfg, estimator):
    from . import workflow as W

    try:
        return estimator in cfg["estimators"] and W.is_neural(cfg, estimator)
    except Exception:   # a class the registry no longer has: the plain rule
        return False


class Matcher:
    """Names the job of a log or benchmark file: ``match("benchmark", "benchmarks/summarize_moe.tsv")``
    -> ``("summarize_moe", {})``. Of two rules with one template (run_cell, run_neural_cell) the config
    picks; a path of no rule's template is the rule its first folder (or its file) is named after."""

    def __init__(self, paths, cfg=None):
        self.cfg = cfg or {}
        self.cell_rules = {}   # job_id("cell", wildcards) -> the cell rule Snakemake ran it in (its metadata)
        self.templates = {kind: [(rule, _template_regex(p[kind])) for rule, p in paths.items() if p.get(kind)]
                          for kind in ("log", "benchmark")}

    def match(self, kind, path):
        hits = [(rule, m.groupdict()) for rule, rx in self.templates[kind] for m in [rx.match(path)] if m]
        if not hits:   # 'benchmarks/x/y/z.tsv' -> ('x', {'file': 'y/z'}): one job a file still
            parts = path.rsplit(".", 1)[0].split("/")[1:]
            return parts[0], ({"file": "/".join(parts[1:])} if len(parts) > 1 else {})
        rules = [r for r, _ in hits]
        wildcards = hits[0][1]
        if set(CELL_RULES) <= set(rules):
            rule = self.cell_rules.get(job_id("cell", wildcards)) or \
                ("run_neural_cell" if _neural(self.cfg, wildcards.get("estimator")) else "run_cell")
            return rule, dict(hits[rules.index(rule)][1])
        return hits[0][0], dict(wildcards)


# -- reading a run -------------------------------------------------------------------------------
def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):   # 'NA', '-': not measured
        return None


def read_benchmark(path):
    """``{"wall": s, "cpu": s or None, "rss": MB or None}`` of a Snakemake benchmark TSV; several rows
    (--benchmark-repeats): mean wall and CPU, largest memory. An :class:`InputError` naming the file
    for a header that is not a benchmark's or no row."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the benchmark ({e})") from None
    header = rows[0] if rows else []
    need = ("s", "max_rss", "cpu_time")
    if not header or header[0] != "s" or any(c not in header for c in need):
        got = "\t".join(header)[:80] or "nothing"
        raise InputError(f"{path}: not a Snakemake benchmark TSV: header is '{got}', expected the columns "
                         f"{', '.join(BENCHMARK_COLUMNS)}")
    body = [r for r in rows[1:] if any(x.strip() for x in r)]
    if not body:
        raise InputError(f"{path}: a benchmark header and no row")
    idx = {c: header.index(c) for c in need}
    vals = {c: [_number(r[i]) if i < len(r) else None for r in body] for c, i in idx.items()}
    if any(v is None for v in vals["s"]):
        raise InputError(f"{path}: a row without a number of seconds in column 's'")
    cpu = [v for v in vals["cpu_time"] if v is not None]
    rss = [v for v in vals["max_rss"] if v is not None]
    return {"wall": sum(vals["s"]) / len(body), "cpu": sum(cpu) / len(cpu) if cpu else None,
            "rss": max(rss) if rss else None}


def read_metadata(root):
    """``{log path: {"rule", "inputs", "outputs", "start", "end"}}`` from Snakemake's records of the files
    it made (``.snakemake/metadata``; the file name is the output path in URL-safe base64, split into
    folders when long). Empty without them; an unreadable record is passed over."""
    meta_dir = Path(root) / ".snakemake" / "metadata"
    jobs = {}
    if not meta_dir.is_dir():
        return jobs
    for dirpath, _, names in os.walk(meta_dir):
        for name in names:
            full = Path(dirpath) / name
            code = "".join(full.relative_to(meta_dir).parts)
            try:
                output = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)).decode()
                rec = json.loads(full.read_text())
            except (ValueError, OSError):
                continue
            if not isinstance(rec, dict) or not rec.get("log") or rec.get("incomplete"):
                continue
            job = jobs.setdefault(rec["log"][0], {"rule": rec.get("rule"), "inputs": set(), "outputs": set(),
                                                  "start": rec.get("starttime"), "end": rec.get("endtime")})
            job["inputs"].update(rec.get("input") or [])
            job["outputs"].add(output)
    return jobs


def _estimator_class(cfg, job):
    est = job.wildcards.get("estimator")
    if job.rule not in CELL_RULES or est is None:
        return None
    return ((cfg or {}).get("estimators", {}).get(est) or {}).get("class") or "unknown"


def benchmarks_dir(root):
    """``<root>/benchmarks``, or an :class:`InputError` naming it when it is not there."""
    path = Path(root) / "benchmarks"
    if not path.is_dir():
        raise InputError(f"{path}: no benchmarks folder (run the workflow first, or give --root)")
    return path


DONE = re.compile(r"done in ([0-9.]+) s \(CPU ([0-9.]+) s\)")


def logged_times(path):
    """``(wall, cpu)`` seconds of the last ``done in W s (CPU C s)`` line of a job's log, or None."""
    try:
        found = DONE.findall(Path(path).read_text(errors="replace"))
    except OSError:
        return None
    return (float(found[-1][0]), float(found[-1][1])) if found else None


def read_jobs(root, paths, cfg=None, metadata=None):
    """Every job of the run under ``root``: one per benchmark TSV (``benchmarks/**.tsv``) and one per log
    (``logs/**.log``) of a job without one. ``paths``: :func:`rule_paths`; ``cfg``: the configuration
    (cell rules, estimator classes, tracks); ``metadata``: :func:`read_metadata` (the DAG, a wall time
    for jobs without a benchmark), or None. An :class:`InputError` when there is no benchmarks folder."""
    root = Path(root)
    bench_dir = benchmarks_dir(root)
    matcher, metadata = Matcher(paths, cfg), metadata or {}
    for log, m in metadata.items():   # Snakemake's own word on which cell rule ran a cell
        if m.get("rule") in CELL_RULES:
            matcher.cell_rules[job_id("cell", matcher.match("log", log)[1])] = m["rule"]
    jobs = {}
    for p in sorted(bench_dir.rglob("*.tsv")):
        rel = p.relative_to(root).as_posix()
        rule, w = matcher.match("benchmark", rel)
        b = read_benchmark(p)
        job = Job(rule, w, rel, p.stat().st_mtime, b["wall"], b["cpu"], b["rss"])
        jobs[job.id] = job
    log_dir = root / "logs"
    by_log = {}
    for p in sorted(log_dir.rglob("*.log")) if log_dir.is_dir() else []:
        rel = p.relative_to(root).as_posix()
        rule, w = matcher.match("log", rel)
        meta = metadata.get(rel)
        jid = job_id(rule, w)
        by_log[rel] = jid
        if jid not in jobs:
            wall = None
            if meta and meta.get("start") is not None and meta.get("end") is not None:
                wall = max(0.0, float(meta["end"]) - float(meta["start"]))
            jobs[jid] = Job(rule, w, rel, p.stat().st_mtime, wall, benchmark=False)
        logged = logged_times(p)
        if logged:   # the command's own CPU account (Snakemake's misses a job's last 30 s)
            jobs[jid].cpu = logged[1]
    producer = {out: by_log[log] for log, m in metadata.items() if log in by_log for out in m["outputs"]}
    for log, m in metadata.items():
        if log in by_log:
            jobs[by_log[log]].inputs = {producer[i] for i in m["inputs"] if i in producer} - {by_log[log]}
    owners = track_owners(cfg) if cfg else None
    for job in jobs.values():
        job.estimator_class = _estimator_class(cfg, job)
        job.tracks = tracks_of(job, cfg, owners) if cfg else ("other",)
    return list(jobs.values())


# -- tracks --------------------------------------------------------------------------------------
def track_owners(cfg):
    """``{"cells": {(variant, noise tag, size, seed): {letters}}, "rules": {rule: {letters}}}``: the cells
    each track needs (its experiments', those its results and text read, and their upstream cells) and
    the rules it brings (``Track.rules``, ``Track.extra_jobs``)."""
    from . import workflow as W
    from .experiments import experiment_cells
    from .tracks import TRACKS

    cell_rx = _template_regex(W.CELL)
    cells, rules = defaultdict(set), defaultdict(set)
    for letter, t in TRACKS.items():
        own = [c for spec in cfg.get("experiments", {}).values() if spec.get("track") == letter
               for c in experiment_cells(spec)]
        extra = []
        try:   # what the track's registry entries read; a configuration without its keys: its experiments only
            own += [tuple(c) for c in t.cells(cfg)]
            for f in list(t.results(cfg)) + list(t.text(cfg)):
                m = cell_rx.match(f)
                if m:
                    own.append((m["estimator"], m["noise"], int(m["size"]), int(m["seed"])))
            extra = [r for r, _ in (t.extra_jobs(cfg) if t.extra_jobs else [])]
        except (KeyError, TypeError, AttributeError, InputError):
            pass
        try:
            own = W.with_upstream(cfg, [c for c in own if c[0] in cfg.get("estimators", {})])
        except (KeyError, TypeError, InputError):
            pass
        for c in own:
            cells[(c[0], str(c[1]), int(c[2]), int(c[3]))].add(letter)
        for r in (*t.rules, *extra):
            rules[r].add(letter)
    return {"cells": cells, "rules": rules}


def tracks_of(job, cfg, owners=None):
    """The tracks a job belongs to, sorted (letters; or ``data``, ``main``, ``shared``, ``other``)."""
    from .tracks import FIGURES, TABLES

    owners = owners or track_owners(cfg)
    w = job.wildcards
    if job.rule in CELL_RULES and {"estimator", "noise", "size", "seed"} <= set(w):
        got = owners["cells"].get((w["estimator"], w["noise"], int(w["size"]), int(w["seed"])))
    elif "track" in w:
        got = {w["track"]}
    elif job.rule == "plot_figure":
        got = {FIGURES[w["figure"]].track} if w.get("figure") in FIGURES else None
    elif job.rule == "tabulate":
        got = {TABLES[w["table"]].track or "shared"} if w.get("table") in TABLES else None
    elif "doc" in w:
        got = {w["doc"][len("track_"):] if w["doc"].startswith("track_") else w["doc"]}
    elif job.rule in DATA_RULES:
        got = {"data"}
    else:
        got = owners["rules"].get(job.rule)
    return tuple(sorted(got)) if got else ("other",)


# -- sums ----------------------------------------------------------------------------------------
def _sum(jobs):
    """jobs, benchmarked jobs, wall and CPU seconds, the largest RSS (MB) of some jobs."""
    walls = [j.wall for j in jobs if j.wall is not None]
    cpus = [j.cpu for j in jobs if j.cpu is not None]
    rss = [j.rss for j in jobs if j.rss is not None]
    return {"jobs": len(jobs), "benchmarked": sum(j.benchmark for j in jobs), "wall": sum(walls),
            "cpu": sum(cpus) if cpus else None, "rss": max(rss) if rss else None}


def _group(jobs, key):
    groups = defaultdict(list)
    for j in jobs:
        for k in key(j):
            groups[k].append(j)
    return groups


def by_rule(jobs):
    """``{rule: {"jobs", "benchmarked", "wall", "cpu", "rss"}}``, the costliest (wall) first."""
    out = {k: _sum(v) for k, v in _group(jobs, lambda j: [j.rule]).items()}
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["wall"], kv[0])))


def by_class(jobs):
    """As :func:`by_rule`, of the cells (run_cell, run_neural_cell) by their estimator's class."""
    cells = [j for j in jobs if j.estimator_class]
    out = {k: _sum(v) for k, v in _group(cells, lambda j: [j.estimator_class]).items()}
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["wall"], kv[0])))


def by_track(jobs):
    """``{track: sums}`` in track order, each with ``shared_wall``/``shared_cpu``: of its jobs that
    another track owns too (a job counts in each of its tracks; :func:`total` counts it once)."""
    out = {}
    for k, v in _group(jobs, lambda j: j.tracks).items():
        s, shared = _sum(v), [j for j in v if len(j.tracks) > 1]
        s["shared_wall"] = sum(j.wall or 0.0 for j in shared)
        s["shared_cpu"] = sum(j.cpu or 0.0 for j in shared)
        out[k] = s
    order = {k: i for i, k in enumerate(["data", *"abcdef", "main", "shared", "other"])}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def total(jobs):
    return _sum(jobs)


# -- time ----------------------------------------------------------------------------------------
def utilisation(jobs, cores):
    """``{"start", "end", "makespan", "cpu", "wall", "cpu_util", "concurrency"}`` of benchmarked jobs:
    ``cpu_util`` = CPU-seconds / (cores x makespan) (1.0: every core busy all the time), ``concurrency``
    = summed wall / makespan (how many jobs ran at once on average). None without a benchmarked job."""
    timed = [j for j in jobs if j.benchmark and j.wall is not None]
    if not timed:
        return None
    start, end = min(j.start for j in timed), max(j.end for j in timed)
    span = end - start
    s = _sum(timed)
    cpu = s["cpu"] or 0.0
    return {"start": start, "end": end, "makespan": span, "cpu": cpu, "wall": s["wall"], "jobs": len(timed),
            "cpu_util": cpu / (cores * span) if span > 0 else None,
            "concurrency": s["wall"] / span if span > 0 else None}


def sessions(jobs, gap=600.0):
    """Benchmarked jobs split into runs: a new one starts where no job ran for more than ``gap`` seconds
    (a tree built by several invocations of Snakemake). Lists of jobs, in time order."""
    timed = sorted((j for j in jobs if j.benchmark and j.wall is not None), key=lambda j: j.start)
    out, reach = [], None
    for j in timed:
        if reach is None or j.start - reach > gap:
            out.append([])
            reach = j.end
        out[-1].append(j)
        reach = max(reach, j.end)
    return out


def chain_by_times(jobs, tolerance=5.0):
    """The chain of jobs that ends last and whose each job started when its predecessor ended (within
    ``tolerance`` seconds; of several such, the one that ended last): first job first."""
    timed = [j for j in jobs if j.wall is not None]
    if not timed:
        return []
    cur = max(timed, key=lambda j: (j.end, j.wall))
    chain, seen = [cur], {cur.id}
    while True:
        before = [j for j in timed if j.id not in seen and abs(j.end - cur.start) <= tolerance and j.end <= cur.end]
        if not before:
            break
        cur = max(before, key=lambda j: (j.end, j.wall))
        chain.append(cur)
        seen.add(cur.id)
    return chain[::-1]


def chain_by_dag(jobs):
    """The longest chain of wall time through the DAG of ``Job.inputs`` (a job without a wall time weighs
    nothing): first job first. Empty when no job has an edge."""
    by_id = {j.id: j for j in jobs}
    preds = {j.id: sorted(p for p in j.inputs if p in by_id) for j in jobs}
    if not any(preds.values()):
        return []
    users = defaultdict(list)
    for jid, ps in preds.items():
        for p in ps:
            users[p].append(jid)
    waiting = {jid: len(ps) for jid, ps in preds.items()}
    ready = sorted(jid for jid, n in waiting.items() if n == 0)
    best = {}   # id -> (length, chain ending there)
    while ready:   # topological order (Kahn); a cycle, which a DAG has not, would be left out
        jid = ready.pop()
        prev = max((best[p] for p in preds[jid]), key=lambda b: b[0], default=(0.0, ()))
        best[jid] = (prev[0] + (by_id[jid].wall or 0.0), prev[1] + (jid,))
        for u in users[jid]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    length, chain = max(best.values(), key=lambda b: (b[0], len(b[1])))
    return [by_id[i] for i in chain]


def critical_path(jobs, tolerance=5.0):
    """``(method, chain)``: through Snakemake's recorded DAG when the jobs have edges (``"dag"``), else
    by the recorded times (``"times"``; see the module docstring)."""
    chain = chain_by_dag(jobs)
    if chain:
        return "dag", chain
    return "times", chain_by_times(jobs, tolerance)


# -- tables --------------------------------------------------------------------------------------
def duration(s):
    """Seconds in words for a table: '42 s', '12.5 min', '3.20 h', '-' for None."""
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def megabytes(x):
    return "-" if x is None else f"{x:.0f}"


def seconds(x):
    return "-" if x is None else f"{x:.1f}"


def text_table(headers, rows):
    """Columns padded to their widest cell, the first left-aligned, the others right-aligned."""
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths), *map(fmt, cells[1:])])


def sums_rows(sums):
    return [[k, s["jobs"], s["benchmarked"], seconds(s["wall"]), seconds(s["cpu"]), megabytes(s["rss"])]
            for k, s in sums.items()]


SUM_HEADERS = ("jobs", "benchmarked", "wall s", "CPU s", "peak RSS MB")


def track_label(key):
    from .tracks import TRACKS

    if key in TRACKS:
        return f"{key.upper()} ({TRACKS[key].title})"
    return {"data": "data (grid, data sets)", "main": "main paper", "shared": "shared tables",
            "other": "other (not in the configuration)"}.get(key, key)


def markdown_track_table(tracks, everything):
    """The README's table: per track its jobs, wall time, CPU time, peak memory (MB); a last row of the
    whole run with every job once."""
    lines = ["| track | jobs | wall time | CPU time | of which shared with another track (wall) | peak RSS (MB) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for k, s in tracks.items():
        lines.append(f"| {track_label(k)} | {s['jobs']} | {duration(s['wall'])} | {duration(s['cpu'])} | "
                     f"{duration(s['shared_wall'])} | {megabytes(s['rss'])} |")
    lines.append(f"| **whole paper** (each job once) | {everything['jobs']} | {duration(everything['wall'])} | "
                 f"{duration(everything['cpu'])} | | {megabytes(everything['rss'])} |")
    return "\n".join(lines)
