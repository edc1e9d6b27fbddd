"""Where a network looks against where the Fisher information on log g is (pfslogg.nn.maps) and its
figure (attention_maps): a tiny ViT and a tiny CNN fitted on small data sets of the tiny 4096-pixel
grid, their maps computed with the interpolator of the same grid."""

import json
import types

import matplotlib.text
import numpy as np
import pytest
import torch

from pfslogg import PARAMS
from pfslogg.ceilings.fisher import crlb_logg, fisher_logg_map
from pfslogg.data.dataset import SpectraSet
from pfslogg.data.gridio import read_grid
from pfslogg.data.interp import GridInterpolator
from pfslogg.data.views import NoisyView
from pfslogg.errors import InputError
from pfslogg.estimators import FitContext, make_estimator
from pfslogg.nn.maps import GROUPS, LOGG_SPLIT, TEFF_SPLIT, attention_maps, band_heads, group_index, line_list
from pfslogg.plots import FIGURES, render
from pfslogg.provenance import write_results

from conftest import TINY_RANGES, simulate_splits

THREADS = 1
COMMON = {"epochs": 2, "batch_size": 64, "block_size": 256, "buffer_blocks": 2}
TINY = {"vit": {"patch": 64, "dim": 16, "depth": 1, "heads": 2, "mlp": 32},
        "cnn": {"channels": 4, "depth": 2, "kernel_size": 7, "pool": 4}}
NOISE, SEED = 1.0, 13


@pytest.fixture(scope="module")
def setup(tiny_instrument_grid, tmp_path_factory):
    """(interp, test set, {class: (fitted estimator, metrics, details)})."""
    torch.set_num_threads(THREADS)
    paths = simulate_splits(tiny_instrument_grid, tmp_path_factory.mktemp("maps"),
                            (("train", 400, 1), ("val", 100, 2), ("test", 120, 3)))
    sets = {k: SpectraSet(p) for k, p in paths.items()}
    interp = GridInterpolator(read_grid(tiny_instrument_grid))
    out = {}
    for cls, hyper in TINY.items():
        est = make_estimator(cls, {**COMMON, **hyper}).fit(
            NoisyView(sets["train"], NOISE, rng_seed=5), NoisyView(sets["val"], NOISE, noise_seed=11),
            FitContext(threads=THREADS))
        metrics, details = attention_maps(est, sets["test"], NOISE, SEED, interp, TINY_RANGES, n_spectra=100,
                                          batch=32, progress=False)
        out[cls] = (est, metrics, details)
    return interp, sets["test"], out


def _blocks(metrics):
    return [*metrics["groups"].values(), metrics["overall"]]


def test_maps_cover_every_spectrum_once_in_the_four_groups(setup):
    _, test, fits = setup
    m = fits["vit"][1]
    assert m["n_spectra"] == 100 and m["overall"]["n"] == 100 and m["n_pixels"] == 4096
    assert list(m["groups"]) == list(GROUPS)
    assert sum(g["n"] for g in m["groups"].values()) == 100
    p = test.params.iloc[:100]
    giant, cool = p["log_g"].to_numpy() < LOGG_SPLIT, p["T_eff"].to_numpy() < TEFF_SPLIT
    assert m["groups"]["cool_giants"]["n"] == int((giant & cool).sum())
    assert m["groups"]["warm_dwarfs"]["n"] == int((~giant & ~cool).sum())
    assert np.array_equal(np.bincount(group_index(p), minlength=4), [g["n"] for g in m["groups"].values()])


def test_vit_maps_are_normalised_and_scores_are_in_range(setup):
    _, _, fits = setup
    _, m, d = fits["vit"]
    assert d["estimator"] == "vit" and d["kinds"] == ["cls", "rollout", "saliency"]
    assert 0 < len(d["wave"]) <= 1024 and np.all(np.diff(d["wave"]) > 0)
    assert 7100 <= d["wave"][0] and d["wave"][-1] <= 8850
    for name, maps in d["maps"].items():
        n = m["overall"]["n"] if name == "overall" else m["groups"][name]["n"]
        assert set(maps) == {"cls", "rollout", "saliency", "fisher"}
        for kind, y in maps.items():
            if not n:
                assert y is None
                continue
            y = np.asarray(y)
            assert y.shape == (len(d["wave"]),) and (y >= 0).all()
            # density per pixel over a flat map, on equal bins of 4096 / 1024 pixels: mean 1 <=> mass 1
            assert y.mean() == pytest.approx(1.0, abs=1e-9), (name, kind)
    for g in _blocks(m):
        if not g["n"]:
            continue
        assert set(g["correlations"]) == {"cls", "rollout", "saliency"}
        assert all(-1 <= r <= 1 for r in g["correlations"].values() if r is not None)
        assert set(g["top10_share"]) == set(g["line_share"]) == {"cls", "rollout", "saliency", "fisher"}
        assert all(0 <= v <= 1 for v in [*g["top10_share"].values(), *g["line_share"].values()])
        assert g["top10_share"]["fisher"] > 0.5   # the information sits in few pixels
    assert m["flat"]["top10_share"] == pytest.approx(0.1, abs=1e-3) and 0 < m["flat"]["line_share"] < 0.2


def test_metrics_and_details_are_strict_json(setup):
    _, _, fits = setup
    for _, m, d in fits.values():
        text = json.dumps({"metrics": m, "details": d}, allow_nan=False)
        assert len(text) < 2_000_000


def test_a_cnn_gives_saliency_but_no_attention(setup):
    _, _, fits = setup
    _, m, d = fits["cnn"]
    assert d["estimator"] == "cnn" and d["kinds"] == ["saliency"]
    assert set(d["maps"]["overall"]) == {"saliency", "fisher"}
    for g in _blocks(m):
        assert set(g["correlations"]) == {"saliency"}


def test_fisher_map_adds_up_to_the_marginal_information(setup):
    interp, test, _ = setup
    flux, sigma = NoisyView(test, NOISE, n=8, noise_seed=SEED).load(np.float64)
    theta = test.params[list(PARAMS)].to_numpy(float)[:8]
    per_pixel = fisher_logg_map(interp, theta, sigma, TINY_RANGES)
    assert per_pixel.shape == (8, 4096) and (per_pixel >= 0).all()
    assert np.allclose(per_pixel.sum(1), 1.0 / crlb_logg(interp, theta, sigma, TINY_RANGES), rtol=1e-6)


def test_noise_level_zero_and_a_foreign_pixel_grid(setup):
    interp, test, fits = setup
    est = fits["cnn"][0]
    m, _ = attention_maps(est, test, 0.0, SEED, interp, TINY_RANGES, n_spectra=10, progress=False)
    assert m["overall"]["n"] == 10 and m["overall"]["top10_share"]["fisher"] > 0.5
    with pytest.raises(InputError, match="pixels"):
        attention_maps(est, test, NOISE, SEED, types.SimpleNamespace(wave=np.arange(512.0)), TINY_RANGES)


def test_line_list_holds_the_gravity_sensitive_lines_inside_the_range():
    wave = np.linspace(7100.0, 8850.0, 4096)
    lines = line_list(wave)
    names = {r["name"] for r in lines}
    assert names == {"Ca II", "Na I", "K I", "Mg I", "O I"}
    assert any(abs(r["wave"] - 8542.09) < 1e-6 for r in lines) and len(lines) == 11
    heads = [r["wave"] for r in band_heads(wave)]
    assert 7589.0 in heads and 7054.0 not in heads and 8859.0 not in heads


@pytest.fixture(scope="module")
def results(setup, tmp_path_factory):
    """{class: path of a results file of kind "attention"}."""
    root = tmp_path_factory.mktemp("attention_results")
    out = {}
    for cls, (_, m, d) in setup[2].items():
        out[cls] = root / f"{cls}.json"
        write_results(out[cls], m, "test", [], kind="attention", details=d)
    return out


@pytest.mark.parametrize("cls", list(TINY))
def test_figure_renders_reproducibly(results, tmp_path, cls):
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    FIGURES["attention_maps"]([str(results[cls])], first, {"figure": "attention_maps"})
    FIGURES["attention_maps"]([str(results[cls])], second, {"figure": "attention_maps"})
    assert first.read_bytes() == second.read_bytes() and first.stat().st_size > 10_000


def test_figure_draws_one_panel_per_group_with_the_maps(results):
    import matplotlib.pyplot as plt

    fig = render("attention_maps", [str(results["vit"])], {"attention": "cls"})
    try:
        assert len(fig.axes) == 4
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert any("[CLS]" in s for s in labels) and any("saliency" in s for s in labels)
        assert any("Fisher" in s for s in labels)
        assert "cool giants" in fig.axes[0].get_title("left")
    finally:
        plt.close(fig)


def test_figure_is_readable_at_print_size(results, tmp_path):
    """Included at the text width (paper/sections/track_a.tex), every text prints at 8 pt or more, and
    the names of the lines above the panels do not overlap."""
    import re
    from pathlib import Path

    import matplotlib.pyplot as plt

    from pfslogg.plots.common import TEXT_WIDTH_IN

    tex = (Path(__file__).parents[1] / "paper/sections/track_a.tex").read_text()
    assert re.search(r"\\includegraphics\[width=\\linewidth\]\{figures/attention_maps.pdf\}", tex)
    out = tmp_path / "maps.pdf"
    FIGURES["attention_maps"]([str(results["vit"])], out, {})
    width_pt = float(re.search(rb"/MediaBox \[\s*0 0 ([\d.]+)", out.read_bytes()).group(1))
    scale = TEXT_WIDTH_IN * 72 / width_pt
    fig = render("attention_maps", [str(results["vit"])], {})
    try:
        fig.canvas.draw()
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]
        assert min(t.get_fontsize() for t in texts) * scale >= 8.0
        names = [t for t in fig.axes[0].texts if t.get_text() in {"Ca II", "Na I", "K I", "Mg I", "O I"}]
        assert {t.get_text() for t in names} == {"Ca II", "Na I", "K I", "Mg I", "O I"} and len(names) == 5
        boxes = [t.get_window_extent() for t in names]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    finally:
        plt.close(fig)


def test_figure_refuses_a_file_of_another_kind(results, tmp_path):
    wrong = tmp_path / "wrong.json"
    doc = json.loads(results["vit"].read_text())
    wrong.write_text(json.dumps({**doc, "kind": "fisher"}))
    with pytest.raises(InputError, match="wrong.json"):
        FIGURES["attention_maps"]([str(wrong)], tmp_path / "out.pdf", {})
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"kind": "attention", "metrics": {}, "details": {}}))
    with pytest.raises(InputError, match="broken.json"):
        render("attention_maps", [str(broken)])
