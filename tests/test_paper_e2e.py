"""End to end: Track F and the whole paper on the tiny configuration, in a temporary copy.

One session-scoped run of ``snakemake track_a track_f paper`` serves every test: the PDFs of every
document (the whole study and each registered track's, all targets of ``paper``) exist and render,
hold no undefined reference and print the generated numbers; the guard passes on the
real documents with the numbers of a real run; the provenance audit traces a printed number to
its results file, rule (with its line in the rule file) and inputs, and says STALE once an input
changes; ``snakemake --report`` works.

Only the tests that read a PDF need LaTeX and poppler (fixture ``pdfs``): without LaTeX (outside
CI) the one run stops before the PDFs (``--omit-from compile_paper``; results, figures, tables and
numbers are all made), every other test runs on it, and the PDF tests skip with one reason naming
the missing tool. In CI (CI=true) a missing tool fails them and nothing skips.
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import in_ci, require_tools
from pfslogg import paper
from pfslogg import workflow as W
from workflow_util import ROOT, copy_workflow, snakemake

pytestmark = pytest.mark.e2e
TINY = "tests/configs/tiny.yaml"
LATEX = ("latexmk", "pdflatex", "bibtex")    # what compile_paper runs
POPPLER = ("pdftoppm", "pdftotext")          # what the tests read the PDFs with
DOCS = [Path(p).stem for p in W.paper_outputs()]   # every document that target paper builds


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """The one tiny run of ``snakemake track_a track_f paper``; without LaTeX, up to the PDFs
    (``.args``: its command line, ``.latex``: whether it compiled the PDFs)."""
    latex = all(shutil.which(t) for t in LATEX)
    if not latex and in_ci():
        require_tools(*LATEX)   # fails: CI compiles the paper
    wd = copy_workflow(tmp_path_factory.mktemp("paper_e2e"))
    if not (wd / "report").exists():  # the report's captions (rules refer to ../report/*.rst)
        shutil.copytree(ROOT / "report", wd / "report")
    args = ("track_a", "track_f", "paper", "--cores", "2", "--configfile", TINY,
            *(() if latex else ("--omit-from", "compile_paper")))
    start = time.monotonic()
    proc = snakemake(wd, *args, timeout=1200)
    return SimpleNamespace(wd=wd, elapsed=time.monotonic() - start, log=proc.stdout, args=args, latex=latex)


@pytest.fixture
def pdfs(run):
    """The run, for a test that reads its PDFs: skips without LaTeX or poppler (fails in CI)."""
    require_tools(*LATEX, *POPPLER)
    assert run.latex
    return run


def _text(pdf):
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def _numbers(wd, doc):
    return json.loads((wd / f"paper/generated/{doc}/numbers.json").read_text())["macros"]


def _provenance(wd, query):
    return subprocess.run([sys.executable, "-m", "pfslogg", "provenance", query], cwd=wd,
                          capture_output=True, text=True, timeout=300)


def test_the_run_compiled_the_pdfs_exactly_when_latex_is_there(run):
    built = {p.name for p in (run.wd / "paper/build").glob("*.pdf")}
    assert {"main", "track_a", "track_f"} <= set(DOCS)
    assert ({f"{d}.pdf" for d in DOCS} <= built) if run.latex else not built, built
    assert (run.wd / "paper/generated/main/numbers.tex").is_file()   # the numbers need no LaTeX


@pytest.mark.parametrize("doc", DOCS)
def test_pdf_exists_and_its_first_page_renders(pdfs, doc):
    run = pdfs
    pdf = run.wd / f"paper/build/{doc}.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    png = run.wd / f"{doc}-page1"
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-singlefile", "-f", "1", "-l", "1", str(pdf),
                    str(png)], check=True)
    assert png.with_suffix(".png").stat().st_size > 20_000


@pytest.mark.parametrize("doc", DOCS)
def test_pdf_has_no_undefined_references_or_citations(pdfs, doc):
    run = pdfs
    assert "??" not in _text(run.wd / f"paper/build/{doc}.pdf")
    log = (run.wd / f"paper/build/{doc}.log").read_text(errors="replace")
    assert not re.search(r"(Reference|Citation) .* undefined", log)
    assert "Overfull \\hbox" not in log


@pytest.mark.parametrize("doc", ["track_f", "main"])
def test_generated_numbers_are_the_results(run, doc):
    macros = _numbers(run.wd, doc)
    ridge = macros["TrackFBenchmarkAtDefaultRidgeRtwo"]
    assert ridge["file"] == "results/track_f/benchmark.json" and ridge["key"] == "at_default.ridge.r2"
    results = json.loads((run.wd / "results/track_f/benchmark.json").read_text())["metrics"]
    assert ridge["raw"] == results["at_default"]["ridge"]["r2"]
    seeds = [json.loads((run.wd / f"results/cells/ridge/nl1_n1000_s{s}.json").read_text())["metrics"]
             for s in (0, 1)]
    agg = results["cells"]["ridge"]["nl1"]["n1000"]
    assert agg["n_seeds"] == 2 and agg["r2"] == pytest.approx(sum(m["overall"]["r2"] for m in seeds) / 2)
    assert agg["r2_ci_seeds"][0] <= agg["r2"] <= agg["r2_ci_seeds"][1]
    n_train = yaml.safe_load((ROOT / TINY).read_text())["datasets"]["train"]["n"]
    assert int(macros["DataTrainN"]["formatted"]) == n_train


@pytest.mark.parametrize("doc", ["track_f", "main"])
def test_pdf_prints_the_generated_numbers(pdfs, doc):
    macros = _numbers(pdfs.wd, doc)
    text = _text(pdfs.wd / f"paper/build/{doc}.pdf")
    assert macros["TrackFBenchmarkAtDefaultRidgeRtwo"]["formatted"] in text
    n_train = macros["DataTrainN"]["formatted"]
    assert re.sub(r"(\d)(?=(\d{3})+$)", r"\1 ", n_train) in text   # siunitx groups digits


def test_track_documents_use_exactly_their_results(run):
    f = {m["file"] for m in _numbers(run.wd, "track_f").values()}
    assert "results/track_f/benchmark.json" in f and "results/track_c/fisher.json" in f
    assert "results/track_c/bayes.json" in f   # its abstract compares the baselines with the Bayes ceiling
    assert "results/track_f/pitfalls.json" in f and "results/cells/ridge/nl1_n1000_s0.json" in f
    assert "results/track_c/ceiling_calibration.json" not in f
    main = {m["file"] for m in _numbers(run.wd, "main").values()}
    assert "results/track_c/ceiling_calibration.json" in main and f <= main


@pytest.mark.parametrize("doc", ["track_f", "main"])
def test_guard_passes_on_the_real_documents_with_real_numbers(run, doc):
    numbers_tex = (run.wd / f"paper/generated/{doc}/numbers.tex").read_text()
    assert paper.check_document(run.wd / "paper", doc, numbers_tex) == []
    # and every hand-written source, against the numbers of the whole study
    assert paper.check_paper(run.wd / "paper", (run.wd / "paper/generated/main/numbers.tex").read_text()) == []


def test_provenance_of_a_printed_number(run):
    value = _numbers(run.wd, "track_f")["TrackFBenchmarkAtDefaultRidgeRtwo"]["formatted"]
    proc = _provenance(run.wd, "\\TrackFBenchmarkAtDefaultRidgeRtwo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"\\TrackFBenchmarkAtDefaultRidgeRtwo = {value}" in out
    assert "results/track_f/benchmark.json :: at_default.ridge.r2" in out
    lines = (run.wd / "rules/experiments.smk").read_text().splitlines()
    line = next(i for i, l in enumerate(lines, 1) if l.startswith("rule aggregate_experiment:"))
    assert f"rule aggregate_experiment   defined at rules/experiments.smk:{line}" in out
    assert "python -m pfslogg aggregate-experiment" in out
    # each cell: its own provenance, down to the data sets and Snakemake's record of them
    assert re.search(r"OK\s+results/cells/ridge/nl1_n1000_s0\.json\s+sha256 \w+ unchanged", out)
    assert "rule run_cell   defined at rules/experiments.smk:" in out
    assert "python -m pfslogg run-cell" in out
    assert re.search(r"OK\s+data/datasets/test\.h5\s+sha256 \w+ unchanged", out)
    assert "rule simulate_dataset   defined at rules/data.smk:" in out
    assert "STALE" not in out and "up to date" in out


def test_provenance_of_a_figure_and_a_macro(run):
    proc = _provenance(run.wd, "figures/r2_vs_snr.pdf")
    assert proc.returncode == 0, proc.stderr
    assert "figure figures/r2_vs_snr.pdf   (sidecar figures/r2_vs_snr.pdf.json)" in proc.stdout
    assert "rule plot_figure   defined at rules/figures.smk:" in proc.stdout
    proc = _provenance(run.wd, "\\DataTrainCfgNoiseThroughput")
    assert proc.returncode == 0, proc.stderr
    assert "results/data/train.json :: provenance.params.noise.throughput" in proc.stdout


def test_the_figure_needs_no_latex(run):
    out = snakemake(run.wd, "figures/r2_vs_snr.pdf", "--configfile", TINY, "-n", "--forceall").stdout
    assert "plot_figure" in out
    for rule in ("compile_paper", "collect_numbers", "tabulate", "aggregate_experiment"):
        assert rule not in out


def test_rerun_is_a_no_op(run):
    out = snakemake(run.wd, *run.args, "-n").stdout
    assert "nothing to be done" in out.lower(), out[-3000:]


def test_report_builds_with_every_figure_and_table(run):
    """Every figure and table; the PDFs too where the run compiled them (without LaTeX the report,
    as the run, stops before them)."""
    proc = snakemake(run.wd, "track_f", "paper", "--configfile", TINY, "--report", "report.html",
                     *(() if run.latex else ("--omit-from", "compile_paper")))
    html = (run.wd / "report.html").read_text(errors="replace")
    assert "Report created" in proc.stdout
    for name in ("r2_vs_snr.pdf", "decision.pdf", "leaderboard.tex", "datasets.tex"):
        assert name in html, name
    assert "Figures" in html and "Tables" in html
    if run.latex:
        assert "main.pdf" in html and "track_f.pdf" in html and "Paper" in html


def test_changed_input_makes_the_number_stale(run):
    # last: it changes an input of the workflow
    value = _numbers(run.wd, "track_f")["TrackFBenchmarkAtDefaultRidgeRtwo"]["formatted"]
    with open(run.wd / "data/datasets/test.h5", "ab") as fh:
        fh.write(b"\0")
    proc = _provenance(run.wd, value)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"CHANGED\s+data/datasets/test\.h5\s+sha256 then \w+ now \w+\s+<- STALE", proc.stdout)
    assert "STALE: input data/datasets/test.h5 changed since results/cells/ridge/nl1_n1000_s0.json was made" \
        in proc.stdout
    proc = _provenance(run.wd, "models/ridge/nl1_n1000_s0")
    assert proc.returncode == 0 and proc.stdout.startswith("output models/ridge/nl1_n1000_s0"), proc.stdout[:500]


def test_benchmark_grid_physics(run):
    """Ridge is near-perfect without noise; every estimator loses R^2 as the noise grows (beyond
    the intervals over seeds), on the same test spectra."""
    m = json.loads((run.wd / "results/track_f/benchmark.json").read_text())["metrics"]
    big = f"n{max(m['sizes'])}"
    assert m["cells"]["ridge"]["nl0"][big]["r2"] > 0.99
    for est, by_noise in m["cells"].items():
        r2 = [by_noise[f"nl{t}"][big] for t in ("0", "1", "2")]
        assert r2[0]["r2"] > r2[1]["r2"] > r2[2]["r2"], (est, [c["r2"] for c in r2])
        assert r2[0]["r2_ci_seeds"][0] > r2[2]["r2_ci_seeds"][1], (est, r2)
    csv = (run.wd / "results/track_f/benchmark.csv").read_text().splitlines()
    assert len(csv) == 1 + m["n_cells"]
    assert m["comparisons"] == {}  # the benchmark compares nothing; pitfalls does
    pit = json.loads((run.wd / "results/track_f/pitfalls.json").read_text())["metrics"]
    assert set(pit["comparisons"]) == {"ridge_small_alpha", "lightgbm_standardized"}


def test_no_model_beats_the_bayes_ceiling_in_the_run(run):
    """The efficiency check ran on the tiny run's cells (default noise level, full training size, all
    seeds) and found no model above the Bayes ceiling beyond the intervals."""
    doc = json.loads((run.wd / "results/track_c/efficiency.json").read_text())
    assert doc["kind"] == "efficiency" and doc["metrics"]["n_violations"] == 0
    assert set(doc["metrics"]["estimators"]) >= {"ridge", "lightgbm", "template"}
    # Track E's check on the error-channel cells: those fed the ceiling's (estimated) sigma are checked and
    # pass; those fed the stored sigma are not checked but reported apart, with their distance to the ceiling
    ec = json.loads((run.wd / "results/track_e/error_channel_ceiling.json").read_text())["metrics"]
    assert ec["n_violations"] == 0
    assert set(ec["estimators"]) == {"ridge", "ridge_sigma_estimated", "ridge_flux_sigma_estimated"}
    leak = ec["other_sigma"]
    assert set(leak["estimators"]) == {"ridge_sigma_stored", "ridge_flux_sigma_stored"}
    assert leak["ceiling_sigma"] == "estimated" and leak["sigma"]["ridge_sigma_stored"] == ["stored"]
    assert leak["r2_minus_bayes_max"] == max(r["r2_minus_bayes"] for r in leak["overall"]["models"].values())
    sweep = json.loads((run.wd / "results/track_c/snr_sweep.json").read_text())["metrics"]
    assert [r["mag"] for r in sweep["rows"]] == [19.0, 21.0, 23.0]
    checks = json.loads((run.wd / "results/track_c/crlb_validation.json").read_text())["metrics"]
    assert all(r["ratio_ci"][0] < r["ratio"] < r["ratio_ci"][1] for r in checks["ml"]["rows"])


def test_the_coverage_check_scores_every_interval_on_stars_of_its_own(run):
    """check_coverage ran on the tiny run's uncertainty cells: each model folder read (by its manifest), the
    tiny config's 400 stars simulated at the test's magnitudes with the coverage seed, every interval and the exact
    posterior's scored per SNR bin on them, and the figure drawn from it."""
    doc = json.loads((run.wd / "results/track_c/coverage.json").read_text())
    m, prov = doc["metrics"], doc["provenance"]
    assert doc["kind"] == "coverage" and prov["rule"] == "check_coverage"
    names = prov["params"]["estimators"]
    assert list(m["estimators"]) == names and m["n_intervals"] == len(names) and m["n"] == 400
    assert set(prov["inputs"]) == {"data/grid/instrument.h5"} | {f"models/{e}/nl1_n300_s0/estimator.json" for e in names}
    assert m["mag"] == [19.5, 23.0] and m["bayes"] is not None
    assert sum(b["n"] for b in m["snr_bins"]) <= 400 and m["bin_n_min"] == min(b["n"] for b in m["snr_bins"])
    assert not m["resolves_tolerance"]   # ~100 stars a bin: chance alone moves a calibrated interval by ~9 points
    # every model that gives a sigma has a rescaling per SNR bin, scored from the model's own predictions
    assert m["per_snr_bin_count"] == len(m["per_snr_bin"]) == len(set(m["rescales"]) & set(m["per_snr_bin"])) == 8
    assert set(m["rescales"][e] for e in m["per_snr_bin"]) == set(names) - set(m["rescales"])
    assert m["per_snr_bin_calibrated"] == [e for e in m["per_snr_bin"] if e in m["calibrated_every_bin"]]
    test = json.loads((run.wd / "results/data/test.json").read_text())["provenance"]["params"]
    assert m["seed"] != test.get("seed")   # other stars than the test set's
    assert (run.wd / "figures/coverage_check.pdf").stat().st_size > 0


def test_track_a_fits_a_power_law_and_maps_attention(run):
    """The tiny run's Track A: every neural variant trained by the engine, a power law per network
    (four sizes), the ablation differences, and attention maps of the ViT."""
    scaling = json.loads((run.wd / "results/track_a/scaling.json").read_text())["metrics"]
    for e in ("vit", "cnn"):
        fit = scaling["power_law"][e]
        assert "skipped" not in fit and fit["n_sizes"] == 4
        bayes = json.loads((run.wd / "results/track_c/bayes.json").read_text())["metrics"]["overall"]
        assert fit["r2_inf"] <= fit["r2_inf_max"] == pytest.approx(bayes["r2_ci"][1])   # bounded by the ceiling
    assert "results/track_c/bayes.json" in json.loads((run.wd / "results/track_a/scaling.json").read_text())[
        "provenance"]["inputs"]
    ablations = json.loads((run.wd / "results/track_a/ablations.json").read_text())["metrics"]
    assert set(ablations["comparisons"]) >= {"vit_patch32", "vit_l1", "cnn_k21", "mlp_shortcut"}
    att = json.loads((run.wd / "results/track_a/attention.json").read_text())
    assert att["kind"] == "attention" and att["metrics"]["n_spectra"] == 40
    cell = json.loads((run.wd / "results/cells/vit/nl1_n300_s0.json").read_text())
    assert cell["provenance"]["rule"] == "run_neural_cell" and len(cell["details"]["fitted"]["history"]["val_r2"]) == 2
    assert not (run.wd / "checkpoints/vit/nl1_n300_s0").exists()   # removed once the model folder exists
