"""report.md and the self-contained report.html, from a real bundle's manifest and baseline."""

from __future__ import annotations

import base64
import copy
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from edgeship.core.bundle import Manifest
from edgeship.core.errors import BundleError
from edgeship.export._report import pareto_png, render_html, render_markdown, variant_rows, write_reports
from edgeship.runtime import load, load_eval


@pytest.fixture(scope="module")
def manifest(default_bundle: Path) -> dict:
    return json.loads((default_bundle / "manifest.json").read_text())


@pytest.fixture(scope="module")
def baseline(default_bundle: Path) -> dict:
    return json.loads((default_bundle / "baseline.json").read_text())


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def _real_evaluation(bundle: Path) -> dict:
    """Confusion matrix and per-class metrics of the int8 TFLite artifact, computed here."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    x, y = load_eval(bundle)
    with load(bundle, format="tflite", precision="int8") as model:
        pred = np.argmax(model.predict(x), axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(10), zero_division=0)
    return {
        "accuracy": float(np.mean(pred == y)),
        "macro": {"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f.mean())},
        "per_class": {
            str(c): {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]), "support": int(s[c])}
            for c in range(10)
        },
        "confusion_matrix": confusion_matrix(y, pred, labels=range(10)).tolist(),
    }


def test_bundle_holds_both_reports_and_html_is_self_contained(default_bundle: Path) -> None:
    page = (default_bundle / "report.html").read_text()
    md = (default_bundle / "report.md").read_text()
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', page)
    assert refs and all(r.startswith("data:") for r in refs)  # nothing to fetch: opens offline
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(pngs) == 1
    w, h = _png_size(base64.b64decode(pngs[0]))
    assert w > 400 and h > 250
    for text in (page, md):
        for name in ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx", "model.int8.onnx"):
            assert name in text
        assert "p50 (ms)" in text and "p99 (ms)" in text and "latency / reference" in text


def test_variant_rows_carry_manifest_and_baseline_numbers(manifest: dict, baseline: dict) -> None:
    rows = {r["file"]: r for r in variant_rows(manifest, baseline)}
    for a in manifest["artifacts"]:
        r = rows[a["file"]]
        b = baseline["artifacts"][a["file"]]
        assert (r["format"], r["precision"], r["bytes"]) == (a["format"], a["precision"], a["bytes"])
        assert r["accuracy"] == pytest.approx(a["metrics"]["accuracy"])
        assert r["p50_ms"] == b["latency_ms"]["p50"] and r["p99_ms"] == b["latency_ms"]["p99"]
        assert r["latency_ratio"] == b["latency_ratio"]


def test_only_sections_with_data_are_rendered(manifest: dict) -> None:
    """An export-like manifest (no evaluation, no pruning or quantization tables), without a baseline."""
    bare = copy.deepcopy(manifest)
    bare["metrics"] = {"keras_reference_accuracy": 0.9}
    bare["compression"] = {"sparsity": {}, "schedule": {}, "prune_attempts": [], "quantization_attempts": [], "sqnr_db": {}}
    for a in bare["artifacts"]:
        del a["estimates"]["rss_increase_bytes"]
    page, md = render_html(bare), render_markdown(bare)
    for title in ("Evaluation", "Kernel sparsity", "Quantization attempts", "SQNR", "Accuracy vs latency", "Baselines",
                  "Pruning"):
        assert f"<h2>{title}" not in page and f"## {title}" not in md
    assert "<img" not in page  # no latency, no plot
    assert "p50 (ms)" not in page and "RSS increase" not in page  # columns without data are left out
    assert "<h2>Variants</h2>" in page and "model.int8.onnx" in page and "<h2>Parity</h2>" in page


def test_reports_read_the_manifest_through_its_records(manifest: dict) -> None:
    """A dict is validated as a Manifest first: a malformed one is a BundleError naming the field."""
    bad = copy.deepcopy(manifest)
    bad["artifacts"][0]["metrics"]["accuracy"] = "high"
    with pytest.raises(BundleError, match=r"artifacts\[0\]\.metrics\.accuracy to be a number"):
        render_markdown(bad)
    assert render_markdown(Manifest.from_json(manifest)) == render_markdown(manifest)


def test_every_section_renders_from_an_extended_manifest(
    default_bundle: Path, manifest: dict, baseline: dict, tmp_path: Path
) -> None:
    m = copy.deepcopy(manifest)
    ev = _real_evaluation(default_bundle)
    m.setdefault("metrics", {})["evaluation"] = ev
    comp = m.setdefault("compression", {})
    comp.setdefault("sparsity", m["metrics"].get("sparsity") or {"conv1": 0.5})
    comp.setdefault(
        "quantization_attempts",
        [
            {
                "artifact": "model.int8.tflite",
                "step": "ptq_per_channel",
                "method": "PTQ",
                "accuracy": ev["accuracy"],
                "drop": 0.0,
                "bytes": 1,
                "met_budget": True,
            }
        ],
    )
    comp.setdefault("sqnr_db", {"tflite": {"conv1/Relu;conv1/BiasAdd": 30.0}})
    md_path, html_path = write_reports(tmp_path, m, baseline)
    page, md = html_path.read_text(), md_path.read_text()
    for title in (
        "Variants",
        "Accuracy vs latency",
        "Evaluation",
        "Parity",
        "Kernel sparsity per layer",
        "Quantization attempts",
        "SQNR per tensor (dB)",
    ):
        assert f"<h2>{title}</h2>" in page
    for title in (
        "Variants",
        "Evaluation",
        "Parity",
        "Kernel sparsity",
        "Quantization attempts",
        "SQNR per tensor (dB)",
    ):
        assert f"## {title}" in md
    # the confusion matrix in the page holds every eval sample, on the right cells
    cells = re.findall(r'title="true (\w+), predicted (\w+)">(\d+)<', page)
    assert len(cells) == 100
    grid = np.zeros((10, 10), int)
    for t, p, n in cells:
        grid[int(t), int(p)] = int(n)
    assert grid.tolist() == ev["confusion_matrix"]
    assert grid.sum() == len(load_eval(default_bundle)[1])
    assert f"{ev['per_class']['3']['recall']:.4g}" in page
    # markdown tables are well formed: each row has the header's column count
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        counts = {line.count(" | ") for line in block.strip().splitlines() if not line.startswith("|--")}
        assert len(counts) == 1, block


def test_html_escapes_manifest_text(manifest: dict) -> None:
    m = copy.deepcopy(manifest)
    m["name"] = "<script>alert(1)</script>"
    m["labels"] = ["<b>zero</b>"] + [str(i) for i in range(1, 10)]
    assert len(m["metrics"]["evaluation"]["confusion_matrix"]) == 10  # labels head its rows and columns
    page = render_html(m)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>zero</b>" not in page and "&lt;b&gt;zero&lt;/b&gt;" in page


def test_pareto_plot_needs_latency(manifest: dict, baseline: dict) -> None:
    rows = variant_rows(manifest, baseline)
    w, h = _png_size(pareto_png(rows))
    assert (w, h) == (792, 484)  # 7.2 x 4.4 in at 110 dpi
    assert pareto_png(variant_rows(manifest)) is None


def test_failures_warnings_and_attempts_render_in_both_reports(manifest: dict) -> None:
    """A failed parity check, warnings, and attempt records."""
    m = copy.deepcopy(manifest)
    m["warnings"] = ["calibration | set <small>"]
    m["artifacts"][1]["parity"]["passed"] = False
    m["artifacts"][1]["parity"]["failures"] = ["SQNR 3.1 dB < 10 dB"]
    m["compression"]["prune_attempts"] = [
        {"step": "as_recipe", "target_sparsity": 0.5, "fine_tune_epochs": 4, "fine_tune_steps": 40, "accuracy": 0.8,
         "drop": 0.1, "met_budget": False, "rejected_by": "budget"},
        {"step": "lower", "target_sparsity": 0.25, "fine_tune_epochs": 4, "fine_tune_steps": 40, "accuracy": 0.9,
         "drop": 0.0, "met_budget": True, "rejected_by": ""},
    ]
    m["compression"]["quantization_attempts"] = [
        {"artifact": "model.int8.tflite", "step": "ptq", "method": "minmax", "accuracy": 0.9, "drop": 0.05,
         "bytes": 1000, "met_budget": False},
        {"artifact": "model.int8.onnx", "step": "qat", "method": "qat", "accuracy": 0.95, "drop": 0.0,
         "bytes": 1000, "met_budget": True},
    ]
    page, md = render_html(m), render_markdown(m)
    assert "> **Warning:** calibration | set <small>" in md
    assert '<p class="warn"><b>Warning:</b> calibration | set &lt;small&gt;</p>' in page
    assert '<td class="fail">FAIL – SQNR 3.1 dB &lt; 10 dB</td>' in page
    assert "| model.int8.tflite | probs | quantized |" in md and "| FAIL |" in md
    assert "| lower | 0.25 | 4 | 40 | 0.9 | 0 | yes |  |" in md  # the last column is rejected_by, empty
    assert "| model.int8.onnx | qat | qat | 0.95 |" in md
    assert md.count("## Quantization attempts") == 1 and page.count("<h2>Quantization attempts</h2>") == 1
    assert "## Pruning schedule" in md and "Pruning schedule" not in page  # Markdown only
    assert "<h2>Build timings</h2>" in page and "Build timings" not in md  # page only
