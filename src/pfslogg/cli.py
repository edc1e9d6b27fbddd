"""Command-line entry points: ``python -m pfslogg <command> ...``.

Each command is what one Snakemake rule runs: it parses the rule's parameters (one JSON string,
so the exact command in Snakemake's metadata records them), calls the library, and writes its
outputs atomically -- numbers to a results JSON with a provenance block. Bad input ends in one
line ``error: <file or key>: <what was expected>`` and exit status 2.
"""

import argparse
import json
import logging
import shlex
import sys

import numpy as np

from .errors import InputError
from .provenance import now, write_results

log = logging.getLogger("pfslogg")


def _command_line(argv):
    return "python -m pfslogg " + shlex.join(argv)


# -- commands ----------------------------------------------------------------------------------
def cmd_build_grid(a, p):
    if p["grid"]["source"] == "synth":
        from .data.synth import SynthModel, build_synth_grid
        build_synth_grid(a.out, p["params"], resolution=p["grid"]["resolution"],
                         wave_range=tuple(p["grid"]["wave_range"]), margin=p["grid"]["margin_nodes"],
                         model=SynthModel(gravity_coupling=p["grid"]["gravity_coupling"]))
    else:
        from .data.bosz import build_bosz_grid
        build_bosz_grid(a.out, p["grid"]["source"], p["grid"]["root"], p["params"],
                        resolution=p["grid"]["resolution"], wave_range=tuple(p["grid"]["wave_range"]),
                        margin=p["grid"]["margin_nodes"])


def cmd_convolve_grid(a, p):
    from .data.instrument import convolve_grid
    i = p["instrument"]
    convolve_grid(a.input, a.out, resolution=i["resolution"], wave_range=tuple(i["wave_range"]),
                  n_pixels=i["n_pixels"])


def cmd_simulate_dataset(a, p):
    from .data.dataset import SpectraSet, simulate_dataset
    started = now()
    noise = dict(p["noise"])
    noise["mag"] = p["split"].get("mag", noise["mag"])
    simulate_dataset(a.grid, a.out, p["split"]["n"], p["params"], p["seed"], noise,
                     chunk_size=p["chunk_size"], threads=a.threads)
    metrics = _dataset_summary(SpectraSet(a.out), a.split)
    metrics["mag_range"] = noise["mag"]
    write_results(a.summary, metrics, a.rule, [a.grid], params=p, started=started)


def cmd_describe_dataset(a, p):
    from .data.dataset import SpectraSet
    started = now()
    ds = SpectraSet(a.input)
    metrics = _dataset_summary(ds, a.split)
    if "mag" in ds.params.columns:
        metrics["mag_range"] = [float(ds.params["mag"].min()), float(ds.params["mag"].max())]
    write_results(a.summary, metrics, a.rule, [a.input], params=p, started=started)


def _dataset_summary(ds, split):
    """Size and SNR distribution (SNR = median flux/sigma per spectrum) of a data set."""
    snr = ds.snr(1.0)
    return {"split": split, "n": int(len(snr)),
            "snr_median": float(np.median(snr)), "snr_p05": float(np.percentile(snr, 5)),
            "snr_p95": float(np.percentile(snr, 95)), "snr_min": float(snr.min()), "snr_max": float(snr.max())}


def cmd_train(a, p):
    from .data.dataset import SpectraSet
    from .estimators import make_estimator
    hyper = dict(p["hyper"])
    if p["estimator"] == "template":
        hyper.update(grid_path=a.grid, ranges=p["params"])
    else:
        hyper.update(noise_level=p["noise_level"], random_state=p["seed"], val_noise_seed=p["val_noise_seed"])
        if p["estimator"] == "lightgbm":
            hyper["n_jobs"] = a.threads
    est = make_estimator(p["estimator"], **hyper)
    train = SpectraSet(a.train)
    if p["estimator"] == "template":
        from .data.gridio import read_grid
        check_same_wave(train.wave, read_grid(a.grid, fields=()).wave, a.train, a.grid)
    est.fit(train, SpectraSet(a.val))
    est.save(a.out)


def cmd_evaluate(a, p):
    from .data.dataset import SpectraSet
    from .estimators import Estimator
    from .evaluation import metrics_by_snr, prior_variance, summarize
    started = now()
    est = Estimator.load(a.model)
    test = SpectraSet(a.test)
    nl = p["noise_level"]
    pred = np.empty(test.n)
    for s, e in test.chunks(2048):
        flux, err = test.noisy(s, e, nl, seed=p["test_noise_seed"])
        pred[s:e] = est.predict(flux, err * nl)
    y, snr = test.logg, test.snr(nl)
    var = prior_variance(*p["params"]["log_g"])
    ev = p["evaluation"]
    metrics = {"estimator": p["estimator"], "label": est.label, "n_test": int(test.n), "noise_level": nl,
               "var_prior": var,
               "overall": summarize(y, pred, var, n_resamples=ev["bootstrap"], seed=p["seed"]),
               "snr_bins": metrics_by_snr(y, pred, snr, ev["snr_bins"], var, n_resamples=ev["bootstrap"],
                                          seed=p["seed"]),
               "hyper": est.summary()}
    _write_table(a.predictions, {"log_g": y, "log_g_pred": pred, "snr": snr})
    write_results(a.out, metrics, a.rule, [a.model, a.test], params=p, started=started)


def cmd_fisher(a, p):
    from .data.dataset import SpectraSet
    from .evaluation import bin_index, prior_variance
    from .ceilings.fisher import crlb_logg, r2_max
    from .data.gridio import read_grid
    from .data.interp import GridInterpolator
    from . import PARAMS
    started = now()
    test = SpectraSet(a.test)
    interp = GridInterpolator(read_grid(a.grid))
    check_same_wave(test.wave, interp.wave, a.test, a.grid)
    theta = test.params[list(PARAMS)].to_numpy(float)
    nl = p["noise_level"]
    sigma = np.empty((test.n, len(test.wave)))
    for s, e in test.chunks():
        sigma[s:e] = test.read(s, e)[1] * nl
    crlb = crlb_logg(interp, theta, sigma, p["params"])
    var = prior_variance(*p["params"]["log_g"])
    r2m = r2_max(crlb, var)
    snr = test.snr(nl)
    edges = p["evaluation"]["snr_bins"]
    idx = bin_index(snr, edges)

    def band(sel):
        return {"n": int(sel.sum()), "r2max_median": float(np.median(r2m[sel])),
                "r2max_p10": float(np.percentile(r2m[sel], 10)), "r2max_p90": float(np.percentile(r2m[sel], 90)),
                "r2max_mean_crlb": float(max(0.0, 1 - np.mean(np.minimum(crlb[sel], 1e6)) / var))}

    bins = []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() >= 10:
            bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]),
                         "snr_median": float(np.median(snr[sel])), **band(sel)})
    metrics = {"n": int(test.n), "var_prior": var, "nuisance": [q for q in PARAMS if q != "log_g"
                                                                 and p["params"][q][1] > p["params"][q][0]],
               "overall": band(np.ones(test.n, bool)), "snr_bins": bins}
    _write_table(a.per_spectrum, {"log_g": test.logg, "snr": snr, "crlb": crlb, "r2max": r2m})
    write_results(a.out, metrics, a.rule, [a.grid, a.test], params=p, started=started)


def cmd_ceiling_calibration(a, p):
    from .ceilings.calibration import ceiling_curve
    from .data.gridio import read_grid
    started = now()
    curve = ceiling_curve(read_grid(a.grid), p["params"], p["noise"], p["ceiling"]["snr"],
                          n=p["ceiling"]["n_spectra"], seed=p["seed"])
    points = [{"snr": s, "r2max_median": float(m), "r2max_p10": float(lo), "r2max_p90": float(hi), "original": o}
              for s, (m, lo, hi), o in zip(p["ceiling"]["snr"], curve, p["ceiling"]["original"])]
    write_results(a.out, {"points": points, "n_spectra": p["ceiling"]["n_spectra"]}, a.rule, [a.grid],
                  params=p, started=started)


def cmd_plot(a, p):
    from . import plots
    started = now()
    fn = {"r2_vs_snr": plots.plot_r2_vs_snr, "ceiling_calibration": plots.plot_ceiling_calibration}[a.kind]
    fn(a.inputs, a.out, p)
    write_results(a.out + ".json", {"figure": a.out}, a.rule, a.inputs, params=p, started=started)


def check_same_wave(data_wave, grid_wave, data_path, grid_path):
    """A data set and the instrument grid must share their pixels (an external pfsspec data set may
    not: then instrument.wave_range/n_pixels must be set to its wavelengths)."""
    if len(data_wave) != len(grid_wave) or not np.allclose(data_wave, grid_wave, atol=0.01):
        raise InputError(f"{data_path}: its {len(data_wave)} pixels ({data_wave[0]:.2f}-{data_wave[-1]:.2f} A) differ "
                         f"from the instrument grid {grid_path} ({len(grid_wave)} pixels, "
                         f"{grid_wave[0]:.2f}-{grid_wave[-1]:.2f} A); set instrument.wave_range and n_pixels to match")


def _write_table(path, cols):
    import pandas as pd
    from .atomic import atomic_path
    with atomic_path(path) as tmp:
        pd.DataFrame(cols).to_csv(tmp, index=False, float_format="%.6g")


# -- parser ------------------------------------------------------------------------------------
def build_parser():
    ap = argparse.ArgumentParser(prog="python -m pfslogg", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name, fn, *args):
        s = sub.add_parser(name)
        s.add_argument("--params", required=True, help="the rule's parameters as one JSON object")
        s.add_argument("--rule", default=name.replace("-", "_"), help="Snakemake rule name (provenance)")
        s.add_argument("--threads", type=int, default=1)
        for arg in args:
            s.add_argument(f"--{arg}", required=True, nargs="+" if arg == "inputs" else None)
        s.set_defaults(func=fn)

    add("build-grid", cmd_build_grid, "out")
    add("convolve-grid", cmd_convolve_grid, "input", "out")
    add("simulate-dataset", cmd_simulate_dataset, "grid", "split", "out", "summary")
    add("describe-dataset", cmd_describe_dataset, "input", "split", "summary")
    add("train", cmd_train, "train", "val", "grid", "out")
    add("evaluate", cmd_evaluate, "model", "test", "out", "predictions")
    add("fisher", cmd_fisher, "grid", "test", "out", "per-spectrum")
    add("ceiling-calibration", cmd_ceiling_calibration, "grid", "out")
    add("plot", cmd_plot, "kind", "inputs", "out")
    return ap


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "provenance":
        from .provenance.audit import main as audit_main
        return audit_main(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        print(f"error: --params: not valid JSON ({e})", file=sys.stderr)
        return 2
    sys.argv = ["pfslogg", *argv]  # the provenance block records the exact command
    import torch
    torch.set_num_threads(max(1, args.threads))
    try:
        args.func(args, params)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
