"""pfslogg: one command per Snakemake rule (``python -m pfslogg <command> ...``), plus the audit.

Each command is what the rule of the same name runs: it parses the rule's parameter block (one
JSON string, built by :func:`pfslogg.workflow.rule_params`, so Snakemake's metadata records the
exact parameters), makes one library call and writes its outputs atomically -- numbers to a
results JSON with a provenance block. Bad input ends in one line ``error: <file or key>: <what
was expected>`` and exit status 2.
"""

import argparse
import json
import logging
import os
import shlex
import sys
import threading
import time
from pathlib import Path

from .allocator import reuse_freed_memory
from .errors import InputError
from .provenance import now, read_results, write_results

log = logging.getLogger("pfslogg")


# -- data path -----------------------------------------------------------------------------------
def cmd_build_raw_grid(a, p):
    """raw high-resolution grid from the embedded model or the BOSZ files (config grid.source)"""
    g = p["grid"]
    if g["source"] == "synth":
        from .data.synth import SynthModel, build_synth_grid
        build_synth_grid(a.out, p["params"], resolution=g["resolution"], wave_range=tuple(g["wave_range"]),
                         margin=g["margin_nodes"], model=SynthModel(gravity_coupling=g["gravity_coupling"]),
                         progress=True)
    else:
        from .data.bosz import build_bosz_grid
        build_bosz_grid(a.out, g["source"], g["root"], p["params"], resolution=g["resolution"],
                        wave_range=tuple(g["wave_range"]), margin=g["margin_nodes"])


def cmd_convolve_grid(a, p):
    """convolve the raw grid to the instrument's resolution and resample onto its pixels"""
    from .data.instrument import convolve_grid
    i = p["instrument"]
    convolve_grid(a.input, a.out, resolution=i["resolution"], wave_range=tuple(i["wave_range"]),
                  n_pixels=i["n_pixels"], progress=True)


def cmd_simulate_dataset(a, p):
    """draw a data set (pfsspec layout) from the instrument grid and the exposure model"""
    from .data.dataset import SpectraSet, simulate_dataset, summarize_dataset
    started = now()
    noise = dict(p["noise"], mag=p["split"].get("mag", p["noise"]["mag"]))
    simulate_dataset(a.grid, a.out, p["split"]["n"], p["params"], p["seed"], noise,
                     chunk_size=p["chunk_size"], threads=a.threads, progress=True)
    metrics = dict(summarize_dataset(SpectraSet(a.out), a.split), mag_range=noise["mag"])
    write_results(a.summary, metrics, a.rule, [a.grid], params=p, started=started, kind="dataset")


def cmd_describe_dataset(a, p):
    """summarise an existing (pfsspec layout) data set used for a split"""
    from .data.dataset import SpectraSet, summarize_dataset
    started = now()
    metrics = summarize_dataset(SpectraSet(a.input), a.split, check_snr=True)  # the project's SNR, column checked
    write_results(a.summary, metrics, a.rule, [a.input], params=p, started=started, kind="dataset")


def cmd_describe_grid(a, p):
    """numbers that describe the instrument grid (axes, resolving powers, model settings)"""
    from .data.describe import write_grid_description
    write_grid_description(a.grid, a.out, rule=a.rule, command=_command_line())


# -- estimators and experiments --------------------------------------------------------------------
def cmd_run_cell(a, p):
    """train one estimator variant on one cell (noise level, training size, seed), save its model
    folder, and score it on the test set"""
    from .experiments import run_cell
    from .provenance import make_block
    started = now()
    # inputs: the data sets, the grid and the manifest of every upstream model (whose sha256 covers its folder)
    inputs = [a.train, a.val, a.test] + ([a.grid] if a.grid else []) + [
        f"{folder}/estimator.json" for folder in (p["upstream"] if "upstream" in p else {}).values()]
    metrics, details, predictions = run_cell(
        p, a.train, a.val, a.test, a.grid, a.model, threads=a.threads,
        provenance=make_block(a.rule, inputs, params=p, started=started))
    _write_table(a.predictions, predictions)
    write_results(a.out, metrics, a.rule, inputs, params=p, started=started, kind=metrics.get("kind", "estimator"),
                  details=details)


def cmd_summarize_denoising(a, p):
    """the denoisers against the noisy input (wMAE, MSE per noise level, strength, SNR bin, pixel class) and
    example test spectra (noisy, noiseless, denoised) of each at the default noise level"""
    from .denoising import save_examples, summarize_transforms
    started = now()
    n_cells = len(p["transforms"]) * len(p["noise_levels"]) * int(p["seeds"])
    if len(a.inputs) != n_cells + len(p["transforms"]) + 1 or len(a.examples) != len(p["transforms"]):
        raise InputError(f"summarize-denoising: expected {n_cells} cell results, {len(p['transforms'])} model folders "
                         f"and the test set as --inputs and {len(p['transforms'])} --examples, got {len(a.inputs)} "
                         f"and {len(a.examples)}")
    docs = [read_results(f, kind="transform") for f in a.inputs[:n_cells]]
    models, test = a.inputs[n_cells:-1], a.inputs[-1]
    metrics, details, examples = summarize_transforms(p, docs, models, test)
    for arrays, out in zip(examples, a.examples):
        save_examples(arrays, out)
    write_results(a.out, metrics, a.rule, a.inputs[:n_cells] + [f"{m}/estimator.json" for m in models] + [test],
                  params=p, started=started, kind="denoising", details=details)


def cmd_sample_posterior(a, p):
    """draws of a generative denoiser for test spectra, fitted for log g, against the exact posterior of log g"""
    import pandas as pd
    import torch

    from .data.dataset import SpectraSet
    from .data.views import NoisyView
    from .denoising import sample_posterior
    from .estimators import FitContext, load, make_estimator
    from .threads import numpy_threads
    started = now()
    torch.set_num_threads(max(1, a.threads))
    view = NoisyView(SpectraSet(a.test), float(p["noise_level"]), noise_seed=p["test_noise_seed"], sigma=p["sigma"])
    table = pd.read_csv(a.bayes)
    missing = [c for c in ("post_mean", "post_sd") if c not in table.columns]
    if missing:
        raise InputError(f"{a.bayes}: expected the Bayes ceiling's per-spectrum table, it lacks {missing}")
    fitter = make_estimator("mlfit", {}, random_state=0)
    fitter.fit(None, None, FitContext(grid=a.grid, ranges=p["params"], where="denoising.posterior"))
    with numpy_threads(a.threads):
        metrics, details = sample_posterior(load(a.trained), fitter, view, table["post_mean"].to_numpy(float),
                                            table["post_sd"].to_numpy(float), int(p["stars"]), int(p["samples"]),
                                            seed=int(p["seed"]), snr_edges=p["snr_bins"])
    metrics = {"transform": p["transform"], "noise_level": float(p["noise_level"]), **metrics}
    write_results(a.out, metrics, a.rule, [str(Path(a.trained) / "estimator.json"), a.test, a.grid, a.bayes],
                  params=p, started=started, kind="posterior_samples", details=details)


def cmd_aggregate_experiment(a, p):
    """aggregate the cells of one experiment: a CSV row per cell, one JSON of means and intervals"""
    import pandas as pd

    from .experiments import aggregate, compared_cells, experiment_cells
    from .provenance import read_results
    started = now()
    # inputs (pfslogg.paths.aggregate_inputs): every cell's results, the predictions tables the comparisons
    # read, then the Bayes ceiling where it bounds the power laws
    cells, compared = experiment_cells(p["spec"]), compared_cells(p["spec"], p["default_noise_level"])
    n, k = len(cells), len(compared)
    if len(a.inputs) != n + k + bool(p.get("bayes_bound")):
        raise InputError(f"experiments.{p['experiment']}: {n} cells and {k} predictions tables"
                         f"{' and the Bayes ceiling' if p.get('bayes_bound') else ''} but {len(a.inputs)} inputs")
    docs = {c: read_results(f) for c, f in zip(cells, a.inputs[:n])}
    tables = {c: (f, pd.read_csv(f)) for c, f in zip(compared, a.inputs[n:n + k])}
    metrics, details, rows = aggregate(p["experiment"], p["spec"], docs, p["confidence"],
                                       default_noise_level=p["default_noise_level"], predictions=tables,
                                       n_boot=p["bootstrap"], seed=p["seed"])
    if p["spec"].get("reference"):   # Track A: a power law per variant, and the size to reach the reference
        from .scaling import reference_r2, scaling_summary
        ref = p["spec"]["reference"]
        r2_max = None
        if p.get("bayes_bound"):   # no curve may rise above the Bayes ceiling (its upper confidence limit)
            bayes = read_results(a.inputs[-1], kind="bayes")["metrics"]["overall"]
            r2_max = min(1.0, float(bayes["r2_ci"][1]))
        metrics["power_law"] = scaling_summary(metrics, p["default_noise_level"], r2_max=r2_max,
                                               targets={ref: reference_r2(metrics, ref, p["default_noise_level"])})
    _write_table(a.table, rows)
    write_results(a.out, metrics, a.rule, a.inputs, params=p, started=started, kind="experiment", details=details)


def cmd_summarize_moe(a, p):
    """mixtures of experts against their global models, the best global model, the oracle and the Bayes
    ceiling per bin; fails if a deployable routing beats the Bayes ceiling beyond the intervals"""
    import pandas as pd

    from .mixtures import summarize_mixtures
    started = now()
    cells, inputs = {}, []
    for e, tag, n, s, path in p["cells"]:
        table = path[:-len(".json")] + ".csv"
        cells[(e, tag, int(n), int(s))] = (read_results(path, kind="estimator"), pd.read_csv(table))
        inputs += [path, table]
    bayes = {}
    for tag, (path, table) in p["bayes"].items():
        bayes[tag] = (read_results(path, kind="bayes"), pd.read_csv(table))
        inputs += [path, table]
    metrics, details = summarize_mixtures(p, cells, bayes)
    write_results(a.out, metrics, a.rule, inputs, params=p, started=started, kind="moe", details=details)
    if metrics["violations"]:
        lines = [f"{v['variant']} ({v['routing']}, noise {v['noise_level']:g}, {v['size']} spectra): R2 above "
                 f"{v['r2_ci_lo']:.3f} > Bayes {v['bayes_r2_ci_hi']:.3f}" for v in metrics["violations"]]
        raise InputError(f"{a.out}: {len(lines)} deployable routing(s) beat the Bayes ceiling beyond the intervals "
                         "(a bug): " + "; ".join(lines))


# -- ceilings ------------------------------------------------------------------------------------
def cmd_compute_fisher_ceiling(a, p):
    """marginal Cramer-Rao bound on log g of every test spectrum (exact Jacobian of the grid model)"""
    from .ceilings.fisher import fisher_ceiling
    from .data.dataset import SpectraSet, check_same_wave
    from .data.gridio import read_grid
    from .data.interp import GridInterpolator
    from .evaluation import prior_variance
    started = now()
    test = SpectraSet(a.test)
    interp = GridInterpolator(read_grid(a.grid))
    check_same_wave(test.wave, interp.wave, a.test, a.grid)
    metrics, per, details = fisher_ceiling(interp, test, p["noise_level"], p["params"], p["evaluation"]["snr_bins"],
                                           prior_variance(*p["params"]["log_g"]))
    _write_table(a.per_spectrum, per)
    write_results(a.out, metrics, a.rule, [a.grid, a.test], params=p, started=started, kind="fisher",
                  details=details)


def cmd_compute_bayes_ceiling(a, p):
    """posterior mean and sd of log g of every test spectrum over a fine parameter grid (Bayes ceiling)"""
    from .ceilings.bayes import bayes_ceiling
    from .data.dataset import SpectraSet, check_same_wave
    from .data.gridio import read_grid
    from .data.interp import GridInterpolator
    from .evaluation import prior_variance
    started = now()
    test = SpectraSet(a.test)
    interp = GridInterpolator(read_grid(a.grid, fields=("flux",)))
    check_same_wave(test.wave, interp.wave, a.test, a.grid)
    metrics, per = bayes_ceiling(interp, test, p["noise_level"], p["test_noise_seed"], p["params"], p["evaluation"],
                                 prior_variance(*p["params"]["log_g"]), p["bayes"], threads=a.threads,
                                 sigma=p.get("sigma", "estimated"))
    _write_table(a.per_spectrum, per)
    write_results(a.out, metrics, a.rule, [a.grid, a.test], params=p, started=started, kind="bayes")


def cmd_calibrate_ceiling(a, p):
    """median Fisher R2_max at the original study's SNR points (information-content calibration)"""
    from .ceilings.calibration import calibration_points, check_calibration
    from .data.gridio import read_grid
    started = now()
    metrics = calibration_points(read_grid(a.grid), p["params"], p["noise"], p["ceiling"], seed=p["seed"])
    check_calibration(metrics)   # nothing written when the embedded problem left the tolerance
    write_results(a.out, metrics, a.rule, [a.grid], params=p, started=started, kind="calibration")


def _exposure(wave, noise):
    from .data.noise import ExposureModel
    return ExposureModel(wave, exposures=int(noise["exposures"]), exp_time=float(noise["exp_time"]),
                         throughput=float(noise["throughput"]))


def cmd_compute_crlb_validation(a, p):
    """checks of the CRLB: node jumps, finite-difference steps, cell profile, ML fits against the bound"""
    from .ceilings.validation import crlb_validation
    from .data.gridio import read_grid
    from .threads import numpy_threads
    started = now()
    grid = read_grid(a.grid, fields=("flux",))
    with numpy_threads(a.threads):
        metrics, details = crlb_validation(grid, p["params"], _exposure(grid.wave, p["noise"]), p["validation"],
                                           seed=p["seed"])
    write_results(a.out, metrics, a.rule, [a.grid], params=p, started=started, kind="crlb_validation",
                  details=details)


def cmd_compute_snr_sweep(a, p):
    """ceilings over SNR: 3D/4D CRLB, Schur decay and the Bayes ceiling on a parameter grid per magnitude"""
    from .ceilings.sweep import snr_sweep
    from .data.gridio import read_grid
    from .data.interp import GridInterpolator
    from .evaluation import prior_variance
    started = now()
    grid = read_grid(a.grid, fields=("flux",))
    sw = p["sweep"]
    metrics = snr_sweep(GridInterpolator(grid), _exposure(grid.wave, p["noise"]), p["params"], sw["mags"], sw["points"],
                        sw["seeing"], prior_variance(*p["params"]["log_g"]), p["bayes"], p["evaluation"],
                        seed=p["seed"], threads=a.threads)
    write_results(a.out, metrics, a.rule, [a.grid], params=p, started=started, kind="snr_sweep")


def cmd_check_ceiling(a, p):
    """efficiency of every model against both ceilings; fails if one beats the Bayes ceiling beyond the CIs"""
    from .ceilings.efficiency import efficiency, labels, other_sigma, split_by_sigma
    started = now()
    bayes, fisher = read_results(a.bayes, kind="bayes"), read_results(a.fisher, kind="fisher")
    cells = {}
    for f in a.inputs:
        doc = read_results(f)
        cells.setdefault(doc["metrics"]["estimator"], []).append(doc)
    names = labels(cells)                   # chosen among every cell, checked or not
    mode = bayes["metrics"].get("sigma")   # a model fed another sigma than the ceiling's is no comparison:
    cells, leaky = split_by_sigma(cells, mode)   # reported apart (the error-channel leak), never checked
    if not cells:
        raise InputError(f"{a.bayes}: the Bayes ceiling used sigma '{mode}', none of the cells {sorted(leaky)} did: "
                         "nothing to check against it")
    learned = None
    if p.get("target"):   # the learned models among them: those of a class fitted to training spectra
        from .estimators import REGISTRY
        learned = [e for e, docs in cells.items()
                   if getattr(REGISTRY.get(docs[0]["metrics"].get("class")), "learns", True)]
    metrics = efficiency(bayes["metrics"], fisher["metrics"], cells, names, target=p.get("target"), learned=learned)
    if leaky:
        metrics["other_sigma"] = other_sigma(bayes["metrics"], fisher["metrics"], leaky, mode, names)
    write_results(a.out, metrics, a.rule, [a.bayes, a.fisher, *a.inputs], params=p, started=started,
                  kind="efficiency")
    if metrics["violations"]:
        lines = [f"{v['estimator']} in SNR bin {v['lo']}: R2 {v['r2']:.3f} {v['r2_ci']} above the Bayes interval "
                 f"{v['bayes_r2_ci']}" for v in metrics["violations"]]
        raise InputError(f"{a.out}: {len(lines)} model(s) beat the Bayes ceiling beyond the intervals (a bug): "
                         + "; ".join(lines))


def cmd_check_uncertainties(a, p):
    """per-star sigma(log g) of each estimator that gives one against the exact posterior sd of the same spectra"""
    import pandas as pd

    from .uncertainty import compare_with_posterior
    started = now()
    if len(a.inputs) != 1 + len(p["estimators"]):
        raise InputError(f"check-uncertainties: expected the Bayes table and {len(p['estimators'])} predictions "
                         f"tables as --inputs, got {len(a.inputs)}")
    bayes = pd.read_csv(a.inputs[0])
    tables = {e: pd.read_csv(f) for e, f in zip(p["estimators"], a.inputs[1:])}
    metrics = compare_with_posterior(bayes, tables, p["snr_bins"], ranges=p.get("params"))
    write_results(a.out, {"noise_level": p["noise_level"], "size": p["size"], "labels": p.get("labels") or {},
                          "rescales": p.get("rescales") or {}, "per_snr_bin": p.get("per_snr_bin") or [],
                          **metrics}, a.rule, a.inputs, params=p,
                  started=started, kind="uncertainties")


def cmd_check_coverage(a, p):
    """coverage of every shipped per-star interval of log g on a large set of stars simulated at the test's
    magnitudes, per SNR bin, beside the exact posterior's"""
    from .ceilings.bayes import view_posterior
    from .data.gridio import read_grid
    from .data.interp import GridInterpolator
    from .data.simview import SimulatorView
    from .estimators import load
    from .threads import numpy_threads
    from .uncertainty import coverage_check
    started = now()
    if len(a.inputs) != len(p["estimators"]):
        raise InputError(f"check-coverage: expected the model folders of {len(p['estimators'])} estimators "
                         f"({', '.join(p['estimators'])}) as --inputs, got {len(a.inputs)}")
    models = {e: load(folder) for e, folder in zip(p["estimators"], a.inputs)}
    if "torch" in sys.modules:   # a network among them: predict on the threads the rule has
        import torch
        torch.set_num_threads(max(1, a.threads))
    s = p["set"]
    view = SimulatorView(a.grid, int(s["n"]), p["params"], int(s["seed"]), s["noise"], float(p["noise_level"]),
                         noise_seed=int(s["noise_seed"]), sigma=p["sigma"], chunk_size=int(s["chunk_size"]))
    with numpy_threads(a.threads):
        posterior = None
        if p.get("bayes"):
            interp = GridInterpolator(read_grid(a.grid, fields=("flux",)))
            post, _, _ = view_posterior(interp, view, p["params"], p["bayes"], threads=a.threads)
            posterior = (post["mean"], post["sd"])
        metrics = coverage_check(models, view, p["snr_bins"], posterior=posterior, rescales=p.get("rescales"))
    per_bin = [e for e in p.get("per_snr_bin") or [] if e in metrics["estimators"]]   # the shipped sigmas
    metrics["per_snr_bin_calibrated"] = [e for e in per_bin if e in metrics["calibrated_every_bin"]]
    metrics["per_snr_bin_calibrated_count"] = len(metrics["per_snr_bin_calibrated"])
    metrics["per_snr_bin_count"] = len(per_bin)
    manifests = [str(Path(f) / "estimator.json") for f in a.inputs]   # each folder by its manifest (every sha256)
    write_results(a.out, {"noise_level": float(p["noise_level"]), "size": int(p["size"]), "mag": list(s["noise"]["mag"]),
                          "seed": int(s["seed"]), "labels": p.get("labels") or {}, "rescales": p.get("rescales") or {},
                          "per_snr_bin": p.get("per_snr_bin") or [], **metrics},
                  a.rule, [a.grid, *manifests], params=p, started=started, kind="coverage")


def cmd_compute_attention_maps(a, p):
    """attention rollout, [CLS] attention and gradient saliency of a trained ViT by stellar type, against the Fisher information"""
    from .data.dataset import SpectraSet, check_same_wave
    from .data.gridio import read_grid
    from .data.interp import GridInterpolator
    from .estimators import load
    from .nn.maps import attention_maps
    started = now()
    import torch
    torch.set_num_threads(max(1, a.threads))
    test = SpectraSet(a.test)
    interp = GridInterpolator(read_grid(a.grid, fields=("flux",)))
    check_same_wave(test.wave, interp.wave, a.test, a.grid)
    est = load(a.trained)
    metrics, details = attention_maps(est, test, p["noise_level"], p["test_noise_seed"], interp, p["params"],
                                      n_spectra=p["n_spectra"])
    manifest = str(Path(a.trained) / "estimator.json")   # the folder, by its manifest (which holds every sha256)
    write_results(a.out, {"estimator": p["estimator"], **metrics}, a.rule, [manifest, a.test, a.grid], params=p,
                  started=started, kind="attention", details=details)


# -- figures, tables, paper ------------------------------------------------------------------------
def cmd_plot_figure(a, p):
    """draw one figure from results JSONs (figure names: pfslogg.plots.FIGURES)"""
    from .plots import FIGURES
    started = now()
    if p["figure"] not in FIGURES:
        raise InputError(f"figure '{p['figure']}': unknown, expected one of {sorted(FIGURES)}")
    FIGURES[p["figure"]](a.inputs, a.out, p)
    write_results(a.out + ".json", {"figure": a.out}, a.rule, a.inputs, params=p, started=started, kind="figure")


def cmd_tabulate(a, p):
    """write one LaTeX table (booktabs + siunitx) whose every value is a macro"""
    from .paper import write_table
    write_table(p["table"], a.results, a.out, files=a.inputs)


def cmd_collect_numbers(a, p):
    """one LaTeX macro per number of a document's results JSONs, each with its file and key"""
    from .paper import write_numbers_tex
    numbers = write_numbers_tex(a.results, a.out, index_path=a.index, files=a.inputs)
    log.info("%s: %d macros", a.out, len(numbers))


def cmd_check_paper(a, p):
    """check the hand-written LaTeX for hand-typed results and undefined result macros"""
    from .paper.guard import check_paper_cli
    problems = check_paper_cli(a.paper, a.numbers, a.doc)
    for line in problems:
        print(line)
    if problems:
        raise InputError(f"{a.paper}: {len(problems)} problem(s) in the hand-written LaTeX")


def _write_table(path, cols):
    import pandas as pd
    from .atomic import atomic_path
    with atomic_path(path) as tmp:
        pd.DataFrame(cols).to_csv(tmp, index=False, float_format="%.6g")


def _command_line():
    return "python -m pfslogg " + shlex.join(sys.argv[1:])


# options that name files a command writes; the other path options name what it reads
OUTPUT_OPTIONS = {"out", "summary", "model", "predictions", "per_spectrum", "table", "index", "examples"}
NAME_OPTIONS = {"split", "doc"}   # options that name something, not a file
NOT_PATHS = {"params", "rule", "func", "command", "threads"} | NAME_OPTIONS


def _path_options(args, outputs):
    """``(option, path)`` of every path the command line names: its outputs, or its inputs."""
    for k, v in vars(args).items():
        if k in NOT_PATHS or (k in OUTPUT_OPTIONS) != outputs:
            continue
        for p in (v if isinstance(v, list) else [v]):
            if isinstance(p, str):
                yield k, p


def _missing_input(args):
    """The first input path option naming no file or folder, as an error line (None when all exist)."""
    for k, p in _path_options(args, outputs=False):
        if not os.path.exists(p):
            return f"--{k.replace('_', '-')} {p}: no such file or folder (an input of {args.command})"
    return None


def _paths(args, outputs):
    return [p for _, p in _path_options(args, outputs) if os.path.exists(p)]


def _size(path):
    p = Path(path)
    n = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _files(paths):
    return ", ".join(f"{p} ({_size(p)})" for p in paths) or "none"


def _snakemake_ancestor():
    """PID of the nearest ancestor that is a snakemake process (None outside Snakemake)."""
    pid = os.getppid()
    for _ in range(8):
        if pid <= 1:
            return None
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        base = [os.path.basename(c) for c in cmd[:3]]
        if base[:1] == [b"snakemake"] or b"snakemake" in base[1:2] or cmd[1:3] == [b"-m", b"snakemake"]:
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


def die_with_workflow(poll_s=1.0):
    """Stop this command when the snakemake process that started it is gone.

    A SIGKILL of snakemake (a user's Ctrl-\\, the OOM killer) leaves its running jobs behind as
    orphans that go on writing their outputs after Snakemake stopped tracking them, so that the
    rerun finds "incomplete" files. A daemon thread watches the ancestor and ends this process
    (exit 3) as soon as it disappears; the atomic writers leave no partial output under a final name.
    """
    pid = _snakemake_ancestor()
    if pid is None:
        return None

    def gone():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except OSError:
            return True

    def watch():
        while not gone():
            time.sleep(poll_s)
        print(f"error: the workflow that started this job (snakemake, pid {pid}) is gone: stopping", file=sys.stderr,
              flush=True)
        os._exit(3)

    threading.Thread(target=watch, name="die-with-workflow", daemon=True).start()
    return pid


# -- parser ------------------------------------------------------------------------------------------
# command -> (function, arguments); a trailing "*" takes one or more paths, a leading "?" is optional.
COMMANDS = {
    "build-raw-grid": (cmd_build_raw_grid, ["out"]),
    "convolve-grid": (cmd_convolve_grid, ["input", "out"]),
    "simulate-dataset": (cmd_simulate_dataset, ["grid", "split", "out", "summary"]),
    "describe-dataset": (cmd_describe_dataset, ["input", "split", "summary"]),
    "describe-grid": (cmd_describe_grid, ["grid", "out"]),
    "run-cell": (cmd_run_cell, ["train", "val", "test", "?grid", "model", "out", "predictions"]),
    "aggregate-experiment": (cmd_aggregate_experiment, ["inputs*", "out", "table"]),
    "summarize-moe": (cmd_summarize_moe, ["out"]),
    "summarize-denoising": (cmd_summarize_denoising, ["inputs*", "out", "examples*"]),
    "sample-posterior": (cmd_sample_posterior, ["trained", "test", "grid", "bayes", "out"]),
    "compute-fisher-ceiling": (cmd_compute_fisher_ceiling, ["grid", "test", "out", "per-spectrum"]),
    "compute-bayes-ceiling": (cmd_compute_bayes_ceiling, ["grid", "test", "out", "per-spectrum"]),
    "calibrate-ceiling": (cmd_calibrate_ceiling, ["grid", "out"]),
    "compute-crlb-validation": (cmd_compute_crlb_validation, ["grid", "out"]),
    "compute-snr-sweep": (cmd_compute_snr_sweep, ["grid", "out"]),
    "check-ceiling": (cmd_check_ceiling, ["bayes", "fisher", "inputs*", "out"]),
    "check-uncertainties": (cmd_check_uncertainties, ["inputs*", "out"]),
    "check-coverage": (cmd_check_coverage, ["grid", "inputs*", "out"]),
    "compute-attention-maps": (cmd_compute_attention_maps, ["trained", "test", "grid", "out"]),
    "plot-figure": (cmd_plot_figure, ["inputs*", "out"]),
    "tabulate": (cmd_tabulate, ["results", "inputs*", "out"]),
    "collect-numbers": (cmd_collect_numbers, ["results", "inputs*", "out", "index"]),
    "check-paper": (cmd_check_paper, ["paper", "?numbers", "?doc"]),
}


def build_parser():
    ap = argparse.ArgumentParser(
        prog="python -m pfslogg", description=__doc__.splitlines()[0],
        epilog="python -m pfslogg provenance <macro | value | file>: trace a number to rule, parameters, "
               "inputs and commit (python -m pfslogg provenance --help)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="command")
    for name, (fn, args) in COMMANDS.items():
        doc = " ".join(fn.__doc__.split())
        s = sub.add_parser(name, help=doc, description=doc)
        s.add_argument("--params", default="{}", help="the rule's parameter block as one JSON object")
        s.add_argument("--rule", default=name.replace("-", "_"), help="Snakemake rule name (provenance)")
        s.add_argument("--threads", type=int, default=1, help="CPU threads")
        for arg in args:
            many, optional = arg.endswith("*"), arg.startswith("?")
            arg = arg.strip("*?")
            s.add_argument(f"--{arg}", required=not optional, nargs="+" if many else None)
        s.set_defaults(func=fn)
    sub.add_parser("provenance", help="trace a number, macro or file to rule, parameters, inputs and commit",
                   add_help=False)
    return ap


def cpu_seconds():
    """User + system CPU seconds of this process and the children it waited for, all threads: the profile
    of a run (:mod:`pfslogg.profiling`) reads them from the log's last line, since Snakemake's benchmark
    samples a job every 30 s and misses the CPU time of its last interval."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "provenance":
        from .audit import main as audit_main
        return audit_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("fontTools", "matplotlib", "PIL", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        print(f"error: --params: not valid JSON ({e})", file=sys.stderr)
        return 2
    missing = _missing_input(args)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    sys.argv = ["pfslogg", *argv]  # the provenance block records the exact command
    die_with_workflow()
    reuse_freed_memory()
    if "torch" in sys.modules or args.command in ("build-raw-grid",):
        import torch
        torch.set_num_threads(max(1, args.threads))
    t0, c0 = time.perf_counter(), cpu_seconds()
    log.info("%s (rule %s, %d thread(s)) starts; reads %s", args.command, args.rule, args.threads,
             _files(_paths(args, outputs=False)))
    try:
        args.func(args, params)
    except InputError as e:
        log.info("%s failed after %.1f s", args.command, time.perf_counter() - t0)
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("%s done in %.1f s (CPU %.1f s); wrote %s", args.command, time.perf_counter() - t0, cpu_seconds() - c0,
             _files(_paths(args, outputs=True)))
    return 0
