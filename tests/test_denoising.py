"""Track D's evaluation of denoisers (pfslogg.denoising), the Gaussian-smoothing baseline transform
(pfslogg.estimators.smooth) and Track D's figures (pfslogg.plots.track_d)."""

import json

import numpy as np
import pytest

from pfslogg import denoising as D
from pfslogg.data.dataset import SpectraSet, simulate_dataset
from pfslogg.data.instrument import pixel_wave
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import REGISTRY, load, make_estimator
from pfslogg.plots import track_d

from conftest import DEFAULT_NOISE, TINY_RANGES

N = 160
EDGES = [[1.0, 5.0], [5.0, 10.0], [10.0, 40.0]]
FLOOR = 1e-6


@pytest.fixture(scope="module")
def view(coarse_instrument_grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("denoising") / "set.h5"
    simulate_dataset(coarse_instrument_grid, path, N, TINY_RANGES, seed=11, noise=DEFAULT_NOISE, chunk_size=256)
    return NoisyView(SpectraSet(path), 1.0, noise_seed=3)


def smoother(**hyper):
    return make_estimator("smooth", hyper, kinds=("transform",)).fit(None, None)


@pytest.fixture(scope="module")
def evaluated(view):
    return D.evaluate_transform(smoother(), view, [0.25, 0.5, 1.0], EDGES, FLOOR, n_boot=200, confidence=0.9,
                                seed=0, batch=64)


# -- metrics ------------------------------------------------------------------------------------------
def test_wmae_and_mse_match_hand_computed_values():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    x0 = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 2.0, 0.0]])
    sigma = np.array([[1.0, 2.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    # row 0: |d| = 0, 1, 2, 3 over max(sigma, 0.5) = 1, 2, 0.5, 4 -> 0, 0.5, 4, 0.75
    np.testing.assert_allclose(D.wmae(x, x0, sigma, 0.5), [5.25 / 4, 4.0 / 4])
    np.testing.assert_allclose(D.mse(x, x0), [14.0 / 4, 6.0 / 4])
    mask = np.array([False, True, True, False])
    np.testing.assert_allclose(D.wmae(x, x0, sigma, 0.5, mask), [4.5 / 2, 3.0 / 2])
    np.testing.assert_allclose(D.mse(x, x0, mask), [5.0 / 2, 5.0 / 2])


@pytest.mark.parametrize("call, word", [
    (lambda: D.wmae(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 3)), 1.0), "denoised"),
    (lambda: D.wmae(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), 0.0), "floor"),
    (lambda: D.wmae(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 2)), 1.0), "sigma"),
    (lambda: D.mse(np.ones((2, 3)), np.ones((2, 3)), np.zeros(3, bool)), "mask"),
])
def test_metrics_reject_bad_input_naming_it(call, word):
    with pytest.raises(InputError, match=word):
        call()


@pytest.mark.parametrize("n_pixels", [4096, 512])
def test_pixel_classes_partition_the_pixels_and_the_ca_line_is_a_core(n_pixels):
    wave = pixel_wave(n_pixels=n_pixels)
    classes = D.pixel_classes(wave)
    assert list(classes) == list(D.PIXEL_CLASSES)
    stack = np.stack(list(classes.values()))
    assert stack.dtype == bool and stack.shape == (3, n_pixels)
    np.testing.assert_array_equal(stack.sum(0), 1)                 # every pixel in exactly one class
    for line in (8498.02, 8542.09, 8662.14):
        assert classes["line_cores"][np.argmin(np.abs(wave - line))]
    assert not classes["line_cores"][np.argmin(np.abs(wave - 8300.0))]   # no strong line near 8300 A
    assert 0.1 < classes["sky_lines"].mean() < 0.3                 # the OH model: ~19 % above twice the median
    assert 0.02 < classes["line_cores"].mean() < 0.12
    if n_pixels == 4096:   # a core is about +-1 resolution element (1.7 A = 4 pixels) wide
        alone = D.pixel_classes(wave, lines=[8542.09])["line_cores"]
        assert 7 <= alone.sum() <= 9 and alone[np.abs(wave - 8542.09) < 1.6].all()


def test_pixel_classes_reject_bad_wave():
    with pytest.raises(InputError, match="wave"):
        D.pixel_classes(np.array([8000.0, 7999.0, 8001.0]))


# -- the smoothing baseline ---------------------------------------------------------------------------
def test_smooth_is_a_registered_transform_that_does_not_predict(tmp_path):
    cls = REGISTRY["smooth"]
    assert cls.kind == "transform" and cls.label == "Gaussian smoothing"
    with pytest.raises(InputError, match="estimator"):
        make_estimator("smooth")                                   # not a log g estimator
    est = smoother()
    with pytest.raises(InputError, match="transform"):
        est.predict(np.ones((2, 8)), np.ones((2, 8)))
    y = np.random.default_rng(0).normal(1, 0.1, (3, 64))
    np.testing.assert_array_equal(est.transform(y, None, strength=0.0), y)   # s = 0: the identity exactly
    s1 = est.transform(y, None, strength=1.0)
    np.testing.assert_allclose(est.transform(y, None, strength=0.5), 0.5 * (y + s1))
    np.testing.assert_array_equal(est.transform(y, None), s1)               # default strength 1
    assert s1.std(1).mean() < y.std(1).mean()
    back = load(est.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.transform(y, None, 0.5), est.transform(y, None, 0.5))
    assert back.fitted() == {"width": 1.5, "search": None}


def test_smooth_checks_its_hyper_parameters():
    with pytest.raises(InputError, match="width"):
        make_estimator("smooth", {"width": -1}, kinds=("transform",))
    with pytest.raises(InputError, match="strengths"):
        make_estimator("smooth", {"strengths": []}, kinds=("transform",))
    with pytest.raises(InputError, match="strength"):
        smoother().transform(np.ones((1, 8)), None, strength=float("nan"))


def test_smooth_chooses_the_width_by_validation_wmae(view):
    widths = [0.0, 1.5, 500.0]
    est = make_estimator("smooth", {"widths": widths, "strength": 1.0, "max_val": 60},
                         kinds=("transform",)).fit(None, view)
    search = est.fitted()["search"]
    assert search["width"] == widths and search["n_val"] == 60
    assert est.width_ == widths[int(np.argmin(search["val_wmae"]))]
    # no smoothing keeps all the noise, 500 pixels flattens every line and slope
    assert search["val_wmae"][1] < min(search["val_wmae"][0], search["val_wmae"][2])
    assert abs(search["val_wmae"][0] - np.sqrt(2 / np.pi)) < 0.06


# -- evaluation ---------------------------------------------------------------------------------------
def _rows(metrics):
    """Every result row of a metrics dict (identity and strengths; overall, classes, SNR bins)."""
    blocks = [metrics["overall"]] + list(metrics["snr_bins"])
    for b in blocks:
        for part in [b] + list(b["classes"].values()):
            yield part["identity"]
            yield from part["strengths"]


def test_identity_improvement_is_exactly_zero(evaluated, view):
    metrics, _ = evaluated
    blocks = [metrics["overall"]] + metrics["snr_bins"]
    idents = [p["identity"] for b in blocks for p in [b, *b["classes"].values()]]
    assert len(idents) == 4 * (1 + len(metrics["snr_bins"]))
    for row in idents:
        assert row["identity"] is True and row["strength"] == 0.0
        assert row["wmae_improvement"] == 0.0 and row["mse_improvement"] == 0.0
        assert row["wmae_improvement_ci"] == [0.0, 0.0] and row["mse_improvement_ci"] == [0.0, 0.0]
    # a transform at s = 0 is scored the same
    m0, _ = D.evaluate_transform(smoother(), view, [0.0], EDGES, FLOOR, 50, 0.9, 0)
    assert m0["overall"]["strengths"][0]["wmae_improvement"] == 0.0
    # the noisy input's wMAE: E|N(0, 1)| = sqrt(2 / pi) when sigma is the noise's
    assert abs(metrics["overall"]["identity"]["wmae"] - np.sqrt(2 / np.pi)) < 0.05


def test_smoothing_improves_wmae_at_noise_level_1(evaluated):
    metrics, _ = evaluated
    rows = {r["strength"]: r for r in metrics["overall"]["strengths"]}
    assert list(rows) == [0.25, 0.5, 1.0]
    for s in (0.25, 0.5):
        assert rows[s]["wmae_improvement"] > 5.0 and rows[s]["wmae_improvement_ci"][0] > 0
        assert rows[s]["wmae"] < metrics["overall"]["identity"]["wmae"]
    assert rows[0.5]["mse_improvement"] > rows[0.25]["mse_improvement"] > 0


def test_bootstrap_intervals_contain_the_point_estimate(evaluated):
    metrics, _ = evaluated
    n = 0
    for row in _rows(metrics):
        for key in ("wmae", "mse", "wmae_improvement", "mse_improvement"):
            lo, hi = row[f"{key}_ci"]
            assert lo <= row[key] <= hi, (key, row)
            n += 1
    assert n > 100


def test_metrics_layout_table_and_json(evaluated, view):
    metrics, table = evaluated
    json.dumps(metrics, allow_nan=False)
    assert metrics["n"] == N and metrics["strengths"] == [0.25, 0.5, 1.0] and metrics["confidence"] == 0.9
    assert metrics["model"] == {"class": "smooth", "label": "Gaussian smoothing", "strength": 1.0}
    assert set(metrics["pixel_classes"]) == set(D.PIXEL_CLASSES)
    assert sum(c["n_pixels"] for c in metrics["pixel_classes"].values()) == view.n_pixels
    snr = view.snr()
    for b, (lo, hi) in zip(metrics["snr_bins"], [e for e in EDGES if ((snr >= e[0]) & (snr < e[1])).sum() >= 10]):
        assert (b["lo"], b["hi"]) == (lo, hi) and b["n"] == int(((snr >= lo) & (snr < hi)).sum())
    assert sum(b["n"] for b in metrics["snr_bins"]) <= N
    assert len(table) == N
    assert {"row", "snr", "log_g", "wmae_noisy", "mse_s0.5", "wmae_line_cores_s1", "mse_continuum_noisy"} <= set(table)
    np.testing.assert_allclose(table["wmae_s0.5"].mean(), metrics["overall"]["strengths"][1]["wmae"])
    np.testing.assert_allclose(table["mse_sky_lines_noisy"].mean(),
                               metrics["overall"]["classes"]["sky_lines"]["identity"]["mse"])


def test_evaluation_is_deterministic_and_independent_of_the_batch(view, evaluated):
    again, table = D.evaluate_transform(smoother(), view, [1.0, 0.5, 0.25, 0.5], EDGES, FLOOR, n_boot=200,
                                        confidence=0.9, seed=0, batch=7)
    metrics, first = evaluated
    np.testing.assert_array_equal(table.to_numpy(), first.to_numpy())   # per-spectrum: batches do not mix
    assert again == metrics                                              # strengths sorted, duplicates dropped


@pytest.mark.parametrize("change, word", [
    ({"strengths": [-0.1]}, "strengths"),
    ({"strengths": []}, "strengths"),
    ({"snr_edges": [[5.0, 1.0]]}, "snr_edges"),
    ({"snr_edges": [3.0, 4.0]}, "snr_edges"),
    ({"floor": -1}, "floor"),
    ({"n_boot": 0}, "n_boot"),
    ({"confidence": 1.5}, "confidence"),
    ({"batch": 0}, "batch"),
    ({"model": object()}, "model"),
])
def test_evaluate_rejects_bad_input_naming_the_argument(view, change, word):
    kw = {"model": smoother(), "view": view, "strengths": [0.5], "snr_edges": EDGES, "floor": FLOOR,
          "n_boot": 10, "confidence": 0.9, "seed": 0, **change}
    with pytest.raises(InputError, match=word):
        D.evaluate_transform(**kw)


def test_bootstrap_means_are_paired_weighted_means():
    values = np.arange(12, dtype=float).reshape(6, 2)
    sel = np.array([True, False, True, True, False, False])
    everything, part = D.bootstrap_means(values, [None, sel], n_boot=50, seed=1)
    assert everything.shape == part.shape == (50, 2)
    np.testing.assert_allclose(everything[:, 1] - everything[:, 0], 1.0)   # the same weights for both columns
    assert np.all((part >= values[sel].min(0)) & (part <= values[sel].max(0)) | np.isnan(part))
    again = D.bootstrap_means(values, [None, sel], n_boot=50, seed=1)[0]
    np.testing.assert_array_equal(again, everything)


# -- examples and figures -----------------------------------------------------------------------------
def test_example_spectra(view, tmp_path):
    rows = D.example_rows(view)
    assert rows == sorted(rows) and 1 <= len(rows) <= 3
    ex = D.example_spectra(smoother(), view, rows[::-1], [0.5, 1.0])
    k, p = len(rows), view.n_pixels
    assert ex["noisy"].shape == ex["clean"].shape == ex["sigma"].shape == (k, p)
    assert ex["denoised"].shape == (2, k, p) and list(ex["rows"]) == rows
    np.testing.assert_array_equal(ex["clean"], view.read_clean_rows(rows))
    back = D.load_examples(D.save_examples(ex, tmp_path / "ex.npz"))
    np.testing.assert_array_equal(back["denoised"], ex["denoised"])
    assert back["label"] == "Gaussian smoothing"
    with pytest.raises(InputError, match="rows"):
        D.example_spectra(smoother(), view, [N + 5])


def _pdf(path):
    data = path.read_bytes()
    return data[:5] == b"%PDF-" and len(data) > 1000


def test_every_figure_writes_a_pdf(evaluated, view, tmp_path):
    metrics, _ = evaluated
    other = dict(metrics, model={"class": "smooth", "label": "other smoothing", "strength": 0.5})
    both = [metrics, {"kind": "denoising", "metrics": other}]
    track_d.plot_strength(both, tmp_path / "a.pdf")
    track_d.plot_snr(both, tmp_path / "b.pdf", strengths=[0.5, 1.0])
    track_d.plot_classes(metrics, tmp_path / "c.pdf")
    track_d.plot_examples(D.example_spectra(smoother(), view, D.example_rows(view)), tmp_path / "d.pdf")
    for name in "abcd":
        assert _pdf(tmp_path / f"{name}.pdf"), name
    # the same figure, the same bytes
    track_d.plot_strength(both, tmp_path / "a2.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "a2.pdf").read_bytes()


def test_figures_reject_what_they_cannot_draw(evaluated, tmp_path):
    import matplotlib.pyplot as plt

    metrics, _ = evaluated
    before = set(plt.get_fignums())   # what earlier tests of the session left open is not this test's
    with pytest.raises(InputError, match="evaluate_transform"):
        track_d.plot_strength({"wrong": 1}, tmp_path / "x.pdf")
    with pytest.raises(InputError, match="strength"):
        track_d.plot_classes(metrics, tmp_path / "x.pdf", strengths=[0.33])
    with pytest.raises(InputError, match="example"):
        track_d.plot_examples({"wave": np.arange(4.0)}, tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    assert set(plt.get_fignums()) == before   # bad input leaves no figure open
