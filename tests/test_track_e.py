"""Track E's figures, drawn from the made-up results tree of test_paper (the aggregates of the workflow's
own aggregate and the error channel's ceiling check made by pfslogg.ceilings.efficiency)."""

import json

import pytest

from pfslogg.errors import InputError
from pfslogg.plots import FIGURES, render

from test_paper import make_results_tree

INPUTS = {"linearity": "results/track_e/linearity.json", "error_channel": "results/track_e/error_channel_ceiling.json",
          "probing": "results/track_e/probing.json"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_results_tree(tmp_path_factory.mktemp("tree") / "wf")


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_figure_renders_reproducibly(tree, tmp_path, name):
    first, second = tmp_path / "a" / f"{name}.pdf", tmp_path / "b" / f"{name}.pdf"
    FIGURES[name]([str(tree / INPUTS[name])], first, {"confidence": 0.95})
    FIGURES[name]([str(tree / INPUTS[name])], second, {"confidence": 0.95})
    data = first.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000 and data == second.read_bytes()


def test_linearity_draws_the_difference_at_every_noise_level(tree):
    import matplotlib.pyplot as plt

    doc = json.loads((tree / INPUTS["linearity"]).read_text())["metrics"]
    fig = render("linearity", [str(tree / INPUTS["linearity"])], {"confidence": 0.95})
    bottom = fig.axes[1]
    points = bottom.collections[-1].get_offsets()          # the verdict-coloured markers, one per level
    comp = doc["comparisons"]["mlp_shortcut"]
    assert len(points) == len(doc["noise_levels"]) == len([k for k in comp if k.startswith("at_nl")])
    assert sorted(points[:, 1]) == pytest.approx(sorted(c["r2_diff"] for k, c in comp.items() if k.startswith("at_")))
    plt.close(fig)


def test_error_channel_draws_every_model_and_the_ceiling(tree):
    import matplotlib.pyplot as plt

    m = json.loads((tree / INPUTS["error_channel"]).read_text())["metrics"]
    fig = render("error_channel", [str(tree / INPUTS["error_channel"])], {})
    left = fig.axes[0]
    from matplotlib.container import BarContainer

    widths = sorted(c.patches[0].get_width() for c in left.containers if isinstance(c, BarContainer))
    expected = [m["overall"]["models"][e]["r2"] for e in m["estimators"]]
    expected += [m["other_sigma"]["overall"]["models"][e]["r2"] for e in m["other_sigma"]["estimators"]]
    assert widths == pytest.approx(sorted(expected)) and len(widths) == 5
    assert any(line.get_xdata()[0] == pytest.approx(m["overall"]["bayes_r2"]) for line in left.lines)
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_wrong_kind_is_one_line_naming_the_file(tree, tmp_path, name):
    other = "linearity" if name == "error_channel" else "error_channel"   # a file of another kind
    wrong = str(tree / INPUTS[other])
    with pytest.raises(InputError) as e:
        FIGURES[name]([wrong], tmp_path / "out.pdf", {})
    assert wrong in str(e.value) and "kind" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out.pdf").exists()


def test_probing_draws_every_probe_and_its_difference_to_ridge(tree):
    doc = json.loads((tree / INPUTS["probing"]).read_text())["metrics"]
    fig = render("probing", [str(tree / INPUTS["probing"])], {"confidence": 0.95})
    left, right = fig.axes[:2]
    probes = [e for e in doc["estimators"] if e != "ridge"]
    from matplotlib.container import BarContainer

    bars = [b for c in left.containers if isinstance(c, BarContainer) for b in c]
    assert len(bars) == len(probes)                              # one bar per probe, Ridge drawn as a line
    assert [round(b.get_width(), 6) for b in bars] == [round(doc["at_default"][e]["r2"], 6) for e in probes]
    ridge = doc["at_default"]["ridge"]["r2"]
    assert any(abs(line.get_xdata()[0] - ridge) < 1e-9 for line in left.get_lines())
    from matplotlib.collections import PathCollection

    diffs = sorted(round(float(c.get_offsets()[0][0]), 6) for c in right.collections if isinstance(c, PathCollection))
    want = sorted(round(c["at_default"]["r2_diff"], 6) for e, c in doc["comparisons"].items())
    assert diffs == want
