"""What the paper's run cost: by rule, track and estimator class, the critical path, how busy the cores were.

Reads ``benchmarks/**.tsv`` and ``logs/**.log`` of a finished run (and, where present, Snakemake's
records of it in ``.snakemake/metadata``: the DAG for the critical path), and prints the whole paper's
cost -- wall time, CPU-seconds and peak memory -- by rule, by track and by estimator class, the
critical path, and the cores' utilisation (CPU-seconds / (cores x makespan)), for the whole tree and
for each run in it. ``--markdown`` prints the README's run-time table instead (per track: wall time,
CPU time). The numbers and their definitions are :mod:`pfslogg.profiling`'s.

    python bench/profile_paper.py [--root .] [--config config/config.yaml] [--cores 2] [--markdown]
"""

import argparse
import sys
import time
from pathlib import Path

from pfslogg import profiling as P
from pfslogg.errors import InputError


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _util_rows(label, u, cores):
    pct = lambda x: "-" if x is None else f"{100 * x:.1f} %"  # noqa: E731
    return [label, _when(u["start"]), u["jobs"], P.duration(u["makespan"]), f"{u['cpu']:.0f}",
            pct(u["cpu_util"]), "-" if u["concurrency"] is None else f"{u['concurrency']:.2f}"]


def report(jobs, cores, gap, tolerance):
    """The text report of a run's jobs."""
    out = []
    every = P.total(jobs)
    out.append(f"{every['jobs']} jobs, {every['benchmarked']} with a benchmark: wall {P.seconds(every['wall'])} s "
               f"({P.duration(every['wall'])}), CPU {P.seconds(every['cpu'])} s ({P.duration(every['cpu'])}), "
               f"peak RSS {P.megabytes(every['rss'])} MB")

    out += ["", "By rule"]
    out.append(P.text_table(("rule", *P.SUM_HEADERS), P.sums_rows(P.by_rule(jobs))))

    out += ["", "By track (a job two tracks own counts in both: 'shared wall s')"]
    rows = [[P.track_label(k), s["jobs"], s["benchmarked"], P.seconds(s["wall"]), P.seconds(s["cpu"]),
             P.seconds(s["shared_wall"]), P.megabytes(s["rss"])] for k, s in P.by_track(jobs).items()]
    out.append(P.text_table(("track", "jobs", "benchmarked", "wall s", "CPU s", "shared wall s", "peak RSS MB"),
                            rows))

    out += ["", "By estimator class (cells: run_cell, run_neural_cell)"]
    out.append(P.text_table(("class", *P.SUM_HEADERS), P.sums_rows(P.by_class(jobs))))

    method, chain = P.critical_path(jobs, tolerance)
    how = ("through the DAG Snakemake recorded (.snakemake/metadata)" if method == "dag" else
           f"from the recorded times: jobs that ran back to back (within {tolerance:g} s), ending last")
    length = sum(j.wall or 0.0 for j in chain)
    out += ["", f"Critical path, {how}: {len(chain)} jobs, {length:.1f} s ({P.duration(length)})"]
    out.append(P.text_table(("job", "wall s", "ended"),
                            [[j.id, "-" if j.wall is None else f"{j.wall:.1f}", _when(j.end)] for j in chain]))

    u = P.utilisation(jobs, cores)
    if u:
        out += ["", f"Utilisation of {cores} cores: CPU-seconds / (cores x makespan); concurrency: summed wall / "
                    f"makespan (runs split at idle gaps over {gap:g} s)"]
        rows = [_util_rows("whole tree", u, cores)]
        runs = P.sessions(jobs, gap)
        if len(runs) > 1:
            rows += [_util_rows(f"run {i}", P.utilisation(r, cores), cores) for i, r in enumerate(runs, 1)]
        out.append(P.text_table(("span", "first start", "jobs", "makespan", "CPU s", "CPU util", "concurrency"),
                                rows))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="profile_paper.py", description=__doc__.split("\n\n")[0],
                                 epilog="One clear line and exit code 2 for a missing benchmarks folder or a "
                                        "malformed benchmark.")
    ap.add_argument("--root", default=".", help="the run's folder: benchmarks/, logs/, .snakemake/ (default: .)")
    ap.add_argument("--config", action="append", default=None, metavar="YAML",
                    help="the configuration the run used (estimator classes, tracks); repeat to merge "
                         "files as --configfile does (default: <root>/config/config.yaml)")
    ap.add_argument("--workflow", default=None,
                    help="the folder of the Snakefile and rules/ that name each job's paths (default: --root)")
    ap.add_argument("--cores", type=int, default=2, help="cores the run had, for the utilisation (default: 2)")
    ap.add_argument("--gap", type=float, default=600.0,
                    help="idle seconds that split the tree into runs for the utilisation (default: 600)")
    ap.add_argument("--tolerance", type=float, default=5.0,
                    help="seconds between a job's end and the next one's start on a critical path found "
                         "by times (no .snakemake/metadata; default: 5)")
    ap.add_argument("--markdown", action="store_true",
                    help="print only the README's table: per track jobs, wall time, CPU time, peak memory")
    a = ap.parse_args(argv)
    if a.cores < 1:
        ap.error("--cores: at least 1")

    from pfslogg.config import load_config

    root = Path(a.root)
    try:
        P.benchmarks_dir(root)   # before the configuration: the likelier mistake first
        configs = a.config or [str(root / "config" / "config.yaml")]
        cfg = load_config(*configs)
        paths = P.rule_paths(a.workflow or root)
        jobs = P.read_jobs(root, paths, cfg, P.read_metadata(root))
    except InputError as e:
        print(f"profile_paper: {e}", file=sys.stderr)
        return 2
    if a.markdown:
        print(P.markdown_track_table(P.by_track(jobs), P.total(jobs)))
    else:
        print(report(jobs, a.cores, a.gap, a.tolerance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
