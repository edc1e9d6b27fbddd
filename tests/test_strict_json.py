"""Every JSON the workflow writes is strict JSON (no NaN/Infinity, which Python's json module would
write and read but other parsers reject), with ``kind``, ``metrics`` and ``provenance``."""

import json
import math

import numpy as np
import pytest

from pfslogg.atomic import write_json
from pfslogg.evaluation import summarize


def _reject(constant):
    raise ValueError(f"not strict JSON: {constant}")


def strict_loads(text):
    """json.loads that refuses NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_reject)


def _finite_everywhere(obj, where=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite_everywhere(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite_everywhere(v, f"{where}[{i}]")
    elif isinstance(obj, float):
        assert math.isfinite(obj), where


def test_strict_loads_rejects_nan_and_infinity():
    for text in ('{"a": NaN}', '[Infinity]', '[-Infinity]'):
        with pytest.raises(ValueError, match="not strict JSON"):
            strict_loads(text)
    assert strict_loads('{"a": null, "b": [1.5, -2e300]}') == {"a": None, "b": [1.5, -2e300]}


def test_write_json_writes_non_finite_floats_as_null(tmp_path):
    obj = {"nan": float("nan"), "inf": [np.inf, -np.inf, 1.0], "f32": np.float32("nan"),
           "array": np.array([np.nan, 2.0]), "nested": {"tuple": (np.float64("inf"), np.int64(3))}}
    write_json(tmp_path / "x.json", obj)
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text, text
    assert strict_loads(text) == {"nan": None, "inf": [None, None, 1.0], "f32": None, "array": [None, 2.0],
                                  "nested": {"tuple": [None, 3]}}


def test_summary_of_one_spectrum_has_no_interval_and_stays_strict(tmp_path):
    m = summarize([3.0], [3.2], 4 / 3, n_resamples=50, seed=0)
    assert m["n"] == 1
    write_json(tmp_path / "one.json", {"kind": "estimator", "metrics": m, "provenance": {}})
    text = (tmp_path / "one.json").read_text()
    assert "NaN" not in text and "Infinity" not in text, text
    back = strict_loads(text)["metrics"]
    assert back["r2_ci"] == [None, None], back
    assert back["r2"] == pytest.approx(1 - 0.2**2 / (4 / 3))


@pytest.mark.e2e
def test_every_json_of_the_tiny_run_is_strict_with_kind_metrics_provenance(tiny_run):
    files = sorted(p for d in ("results", "figures") for p in (tiny_run / d).rglob("*.json"))
    rel = {str(p.relative_to(tiny_run)) for p in files}
    assert {"results/track_c/fisher.json", "figures/r2_vs_snr.pdf.json"} <= rel, sorted(rel)
    for path in files:
        name = str(path.relative_to(tiny_run))
        try:
            doc = strict_loads(path.read_text())
        except ValueError as e:   # json.JSONDecodeError is a ValueError too
            raise AssertionError(f"{name}: {e}") from None
        assert isinstance(doc, dict), name
        missing = {"kind", "metrics", "provenance"} - set(doc)
        assert not missing, f"{name}: no {sorted(missing)}"
        assert isinstance(doc["kind"], str) and doc["kind"], name
        assert isinstance(doc["provenance"], dict) and doc["provenance"], name
        _finite_everywhere(doc, name)
