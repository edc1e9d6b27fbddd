"""The run-cost profile (pfslogg.profiling, bench/profile_paper.py) on small benchmark trees with known times."""

import base64
import importlib.util
import json
import os
from pathlib import Path

import pytest

from pfslogg import profiling as P
from pfslogg.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
T0 = 1_700_000_000.0
# a configuration with what the profile reads: classes, experiments (tracks), no neural variant
CFG = {
    "estimators": {"ridge": {"class": "ridge"}, "lightgbm": {"class": "lightgbm"},
                   "ridge_moe": {"class": "moe"}},
    "experiments": {
        "benchmark": {"track": "f", "estimators": ["ridge", "lightgbm"], "noise_levels": [1.0], "sizes": [2000],
                      "seeds": 2},
        "moe": {"track": "b", "estimators": ["ridge", "ridge_moe"], "noise_levels": [1.0], "sizes": [2000],
                "seeds": 1},
    },
}


def bench(root, rel, wall, cpu, rss, end):
    """A benchmark TSV (one row) under root that ends at T0 + end (its mtime)."""
    p = Path(root) / "benchmarks" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(HEADER + f"{wall}\t0:00:00\t{rss}\t1000\t1\t1\t0\t0\t50\t{cpu}\n")
    os.utime(p, (T0 + end, T0 + end))
    return p


def log(root, rel, end):
    p = Path(root) / "logs" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("done\n")
    os.utime(p, (T0 + end, T0 + end))


@pytest.fixture(scope="module")
def paths():
    return P.rule_paths(ROOT)


@pytest.fixture
def tree(tmp_path):
    """grid (0-10 s) -> instrument grid (10.5-15.5 s) -> cells on two cores from 16 s; one figure's log.

    ridge s0 16-36, lightgbm s0 16-46 (the last to end), ridge s1 37-45, ridge_moe s0 36.5-40."""
    bench(tmp_path, "build_raw_grid.tsv", 10.0, 9.0, 100.0, 10.0)
    bench(tmp_path, "convolve_grid.tsv", 5.0, 4.0, 200.0, 15.5)
    bench(tmp_path, "run_cell/ridge/nl1_n2000_s0.tsv", 20.0, 18.0, 300.0, 36.0)
    bench(tmp_path, "run_cell/lightgbm/nl1_n2000_s0.tsv", 30.0, 50.0, 500.0, 46.0)
    bench(tmp_path, "run_cell/ridge/nl1_n2000_s1.tsv", 8.0, 7.0, 250.0, 45.0)
    bench(tmp_path, "run_cell/ridge_moe/nl1_n2000_s0.tsv", 3.5, 3.0, 400.0, 40.0)
    for rel, end in [("build_raw_grid.log", 9.9), ("run_cell/ridge/nl1_n2000_s0.log", 35.9),
                     ("plot_figure/moe_gate.log", 47.0)]:
        log(tmp_path, rel, end)
    return tmp_path


def test_read_benchmark_numbers_repeats_and_missing_values(tmp_path):
    p = tmp_path / "b.tsv"
    p.write_text(HEADER + "10.0\t0:00:10\t100.5\t1\t1\t1\t0\t0\t50\t8.0\n"
                          "20.0\t0:00:20\t300.25\t1\t1\t1\t0\t0\t50\tNA\n")
    assert P.read_benchmark(p) == {"wall": 15.0, "cpu": 8.0, "rss": 300.25}


@pytest.mark.parametrize("text,words", [
    ("wall\tcpu\n1\t2\n", "not a Snakemake benchmark TSV"),
    ("", "not a Snakemake benchmark TSV"),
    (HEADER, "a benchmark header and no row"),
    (HEADER + "x\t0\t1\t1\t1\t1\t0\t0\t1\t1\n", "without a number of seconds"),
])
def test_bad_benchmarks_are_one_line_naming_the_file(tmp_path, text, words):
    p = tmp_path / "benchmarks" / "run_cell" / "ridge" / "nl1_n2000_s0.tsv"
    p.parent.mkdir(parents=True)
    p.write_text(text)
    with pytest.raises(InputError) as e:
        P.read_benchmark(p)
    msg = str(e.value)
    assert str(p) in msg and words in msg and "\n" not in msg


def test_rule_paths_and_matcher_name_every_job(paths):
    assert paths["run_cell"]["benchmark"] == "benchmarks/run_cell/{estimator}/nl{noise}_n{size}_s{seed}.tsv"
    assert paths["compute_bayes_ceiling_at_noise"]["benchmark"] == "benchmarks/compute_bayes_ceiling/nl{noise}.tsv"
    assert paths["check_denoised_ceiling"] == {"log": "logs/check_denoised_ceiling.log", "benchmark": None}
    m = P.Matcher(paths, CFG)
    assert m.match("benchmark", "benchmarks/run_cell/ridge/nl0p2_n20000_s1.tsv") == \
        ("run_cell", {"estimator": "ridge", "noise": "0p2", "size": "20000", "seed": "1"})
    assert m.match("benchmark", "benchmarks/compute_bayes_ceiling/nl0p2.tsv") == \
        ("compute_bayes_ceiling_at_noise", {"noise": "0p2"})
    assert m.match("benchmark", "benchmarks/compute_bayes_ceiling.tsv") == ("compute_bayes_ceiling", {})
    assert m.match("log", "logs/aggregate_experiment/b_moe_axes.log") == \
        ("aggregate_experiment", {"track": "b", "experiment": "moe_axes"})
    assert m.match("benchmark", "benchmarks/gone_rule/x/y.tsv") == ("gone_rule", {"file": "x/y"})


def test_totals_by_rule_class_and_track(tree, paths):
    jobs = P.read_jobs(tree, paths, CFG)
    assert len(jobs) == 7   # six benchmarks, one log of a job without one
    rules = P.by_rule(jobs)
    assert list(rules) == ["run_cell", "build_raw_grid", "convolve_grid", "plot_figure"]
    assert rules["run_cell"] == {"jobs": 4, "benchmarked": 4, "wall": 61.5, "cpu": 78.0, "rss": 500.0}
    assert rules["build_raw_grid"] == {"jobs": 1, "benchmarked": 1, "wall": 10.0, "cpu": 9.0, "rss": 100.0}
    assert rules["plot_figure"] == {"jobs": 1, "benchmarked": 0, "wall": 0, "cpu": None, "rss": None}
    classes = P.by_class(jobs)
    assert classes == {"lightgbm": {"jobs": 1, "benchmarked": 1, "wall": 30.0, "cpu": 50.0, "rss": 500.0},
                       "ridge": {"jobs": 2, "benchmarked": 2, "wall": 28.0, "cpu": 25.0, "rss": 300.0},
                       "moe": {"jobs": 1, "benchmarked": 1, "wall": 3.5, "cpu": 3.0, "rss": 400.0}}
    tracks = P.by_track(jobs)
    assert list(tracks) == ["data", "b", "f"]   # plot_figure moe_gate is Track B's figure
    assert tracks["f"]["wall"] == 58.0 and tracks["f"]["cpu"] == 75.0
    # ridge s0 is in both experiments: in both tracks, shared; once in the total
    assert tracks["b"]["jobs"] == 3 and tracks["b"]["wall"] == 23.5 and tracks["b"]["shared_wall"] == 20.0
    assert tracks["f"]["shared_wall"] == 20.0
    assert tracks["data"]["wall"] == 15.0
    assert P.total(jobs)["wall"] == 76.5 and P.total(jobs)["cpu"] == 91.0
    md = P.markdown_track_table(tracks, P.total(jobs))
    assert "| F (baselines) | 3 | 58 s | 75 s | 20 s | 500 |" in md
    assert md.splitlines()[-1].startswith("| **whole paper** (each job once) | 7 | 76 s | 91 s |")


def test_utilisation_and_sessions(tree, paths):
    jobs = P.read_jobs(tree, paths, CFG)
    u = P.utilisation(jobs, cores=2)
    assert u["start"] == pytest.approx(T0) and u["makespan"] == pytest.approx(46.0)
    assert u["cpu"] == 91.0 and u["cpu_util"] == pytest.approx(91.0 / (2 * 46.0))
    assert u["concurrency"] == pytest.approx(76.5 / 46.0)
    assert P.utilisation(jobs, cores=1)["cpu_util"] == pytest.approx(91.0 / 46.0)
    bench(tree, "summarize_moe.tsv", 2.0, 1.0, 50.0, 46.0 + 3600.0)   # a second run, an hour later
    runs = P.sessions(P.read_jobs(tree, paths, CFG), gap=600.0)
    assert [len(r) for r in runs] == [6, 1]
    assert P.utilisation(runs[1], 2)["cpu_util"] == pytest.approx(1.0 / 4.0)


def test_critical_path_by_times_follows_the_back_to_back_chain(tree, paths):
    jobs = P.read_jobs(tree, paths, CFG)
    method, chain = P.critical_path(jobs, tolerance=1.0)
    assert method == "times"
    assert [j.id for j in chain] == ["build_raw_grid", "convolve_grid",
                                     "run_cell[estimator=lightgbm,noise=1,seed=0,size=2000]"]
    assert sum(j.wall for j in chain) == 45.0
    # with no slack allowed, convolve_grid (ended 0.5 s before lightgbm started) breaks the chain
    assert [j.id for j in P.chain_by_times(jobs, tolerance=0.1)] == [chain[-1].id]


def _job(name, wall, inputs=()):
    return P.Job(name, {}, name, T0, wall, inputs=set(inputs))


def test_critical_path_through_a_dag_is_the_longest_wall_chain():
    # a(10) -> b(5) -> d(1); a -> c(20) -> d; e(100) alone; f(3) needs nothing
    jobs = [_job("a", 10), _job("b", 5, "a"), _job("c", 20, "a"), _job("d", 1, "bc"), _job("e", 40), _job("f", 3)]
    assert [j.id for j in P.chain_by_dag(jobs)] == ["e"]
    jobs[4].wall = 30
    assert [j.id for j in P.chain_by_dag(jobs)] == ["a", "c", "d"]
    assert P.critical_path(jobs)[0] == "dag"
    assert P.chain_by_dag([_job("x", 1), _job("y", 2)]) == []   # no edges: no DAG to follow


def _metadata(root, output, rule, log_path, inputs):
    code = base64.urlsafe_b64encode(output.encode()).decode()
    p = Path(root) / ".snakemake" / "metadata" / code
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"rule": rule, "input": inputs, "log": [log_path], "starttime": T0,
                             "endtime": T0 + 1.5, "incomplete": False}))


def test_snakemakes_metadata_gives_the_dag_and_the_cell_rule(tree, paths):
    _metadata(tree, "data/grid/raw.h5", "build_raw_grid", "logs/build_raw_grid.log", [])
    _metadata(tree, "data/grid/instrument.h5", "convolve_grid", "logs/convolve_grid.log", ["data/grid/raw.h5"])
    for s in (0, 1):
        _metadata(tree, f"results/cells/ridge/nl1_n2000_s{s}.json", "run_neural_cell",   # as if a network
                  f"logs/run_cell/ridge/nl1_n2000_s{s}.log", ["data/grid/instrument.h5"])
    _metadata(tree, "figures/moe_gate.pdf", "plot_figure", "logs/plot_figure/moe_gate.log",
              ["results/cells/ridge/nl1_n2000_s0.json"])
    log(tree, "convolve_grid.log", 15.4)
    meta = P.read_metadata(tree)
    assert meta["logs/convolve_grid.log"]["inputs"] == {"data/grid/raw.h5"}
    assert meta["logs/convolve_grid.log"]["outputs"] == {"data/grid/instrument.h5"}
    jobs = {j.id: j for j in P.read_jobs(tree, paths, CFG, meta)}
    cell = "run_neural_cell[estimator=ridge,noise=1,seed=0,size=2000]"
    assert cell in jobs and jobs[cell].wall == 20.0 and jobs[cell].inputs == {"convolve_grid"}
    assert jobs["plot_figure[figure=moe_gate]"].wall == 1.5   # no benchmark: Snakemake's start and end
    method, chain = P.critical_path(list(jobs.values()))
    assert method == "dag"
    assert [j.id for j in chain] == ["build_raw_grid", "convolve_grid", cell, "plot_figure[figure=moe_gate]"]


def _cli():
    spec = importlib.util.spec_from_file_location("profile_paper", ROOT / "bench" / "profile_paper.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_errors_help_and_markdown(tree, tmp_path, capsys, monkeypatch):
    cli = _cli()
    monkeypatch.setattr("pfslogg.config.load_config", lambda *paths: CFG)
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert cli.main(["--root", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"profile_paper: {empty / 'benchmarks'}: no benchmarks folder "
                   "(run the workflow first, or give --root)")

    args = ["--root", str(tree), "--workflow", str(ROOT), "--config", "unused.yaml"]
    assert cli.main(args + ["--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| track | jobs | wall time | CPU time |") and "| data (grid, data sets) | 2 |" in out
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "Critical path, from the recorded times" in out and "By estimator class" in out
    assert "whole tree" in out and "98.9 %" in out   # 91 CPU s / (2 cores x 46 s)

    bad = tree / "benchmarks" / "convolve_grid.tsv"
    bad.write_text("seconds\tmemory\n1\t2\n")
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(bad) in err

    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    words = " ".join(capsys.readouterr().out.split())   # argparse wraps the lines
    assert "by rule, track and estimator class" in words and "--markdown" in words


def test_a_commands_own_cpu_account_in_its_log_replaces_snakemakes_sampled_one(tree, paths):
    """Snakemake samples a job's CPU time every 30 s and loses the last interval; every pfslogg command
    ends its log with its own account, which the profile takes (the benchmark's wall and memory stay)."""
    p = tree / "logs" / "run_cell/ridge/nl1_n2000_s0.log"
    p.write_text("... starts\nrun-cell done in 19.6 s (CPU 33.5 s); wrote results/cells/ridge/nl1_n2000_s0.json\n")
    jobs = {j.id: j for j in P.read_jobs(tree, paths, CFG)}
    ridge = next(j for j in jobs.values() if j.path == "benchmarks/run_cell/ridge/nl1_n2000_s0.tsv")
    assert ridge.cpu == 33.5 and ridge.wall == 20.0 and ridge.rss == 300.0
    assert P.by_rule(list(jobs.values()))["run_cell"]["cpu"] == 78.0 - 18.0 + 33.5
    assert P.logged_times(p) == (19.6, 33.5) and P.logged_times(tree / "logs" / "build_raw_grid.log") is None


def test_every_command_logs_its_cpu_seconds_on_its_last_line(tmp_path):
    """The line the profile reads: ``<command> done in W s (CPU C s)``, C the process's user + system time."""
    import subprocess
    import sys

    out = tmp_path / "raw.h5"
    r = subprocess.run([sys.executable, "-m", "pfslogg", "build-raw-grid", "--params",
                        json.dumps({"grid": {"source": "synth", "resolution": 20000, "wave_range": [8500.0, 8600.0],
                                             "gravity_coupling": 0.85, "margin_nodes": 1, "root": None},
                                    "params": {"T_eff": [5000.0, 5500.0], "log_g": [4.0, 4.5], "M_H": [0.0, 0.0],
                                               "a_M": [0.0, 0.0]}}),
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    log = tmp_path / "job.log"
    log.write_text(r.stdout + r.stderr)
    wall, cpu = P.logged_times(log)
    assert 0 < wall and 0 < cpu < 2 * wall + 5
