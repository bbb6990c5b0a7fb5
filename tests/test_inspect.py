"""``edgeship inspect``: every variant, text and JSON, and with the runtime alone (no TF, no onnx)."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.cli import main
from edgeship.recipe import OnnxPrecision, TflitePrecision
from edgeship.runtime._inspect import inspect_file

VARIANTS = [("tflite", p) for p in typing.get_args(TflitePrecision)] + [
    ("onnx", p) for p in typing.get_args(OnnxPrecision)
]
META = {
    "labels": ["cat", "dog", "owl"],
    "preprocessing": {"scale": 0.5, "mean": 0.25, "layout": "NHWC"},
    "recipe_sha256": "f" * 64,
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """A tiny conv + depthwise + dense model in every variant, with edgeship metadata embedded."""
    from edgeship import export
    from edgeship.core.tf import tf_modules
    from edgeship.export._metadata import embed_metadata, metadata_dict
    from edgeship.export.onnx import quantize_onnx_dynamic

    _, keras = tf_modules()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            layers.Input((8, 8, 1), name="input"),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    cal = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype(np.float32)
    meta = metadata_dict(META["labels"], META["preprocessing"], META["recipe_sha256"])
    folder = tmp_path_factory.mktemp("inspect")
    float_onnx = export.to_onnx(model)
    out = {}
    for fmt, precision in VARIANTS:
        if fmt == "tflite":
            data = export.to_tflite(model, precision, cal if precision in ("int8", "int16x8") else None)
        else:
            data = {"float32": float_onnx, "int8": None, "dynamic_int8": None}[precision]
            if precision == "int8":
                data = export.quantize_onnx(float_onnx, cal)
            elif precision == "dynamic_int8":
                data = quantize_onnx_dynamic(float_onnx)
        path = folder / f"model.{precision}.{fmt}"
        path.write_bytes(embed_metadata(data, fmt, meta))
        out[(fmt, precision)] = path
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt,precision", VARIANTS, ids=[f"{f}-{p}" for f, p in VARIANTS])
def test_inspect_every_variant(fmt: str, precision: str, variants: dict[tuple[str, str], Path]) -> None:
    path = variants[(fmt, precision)]
    r = inspect_file(path)
    assert r["format"] == fmt and r["bytes"] == path.stat().st_size == r["estimates"]["flash_bytes"]
    assert len(r["inputs"]) == 1 and len(r["outputs"]) == 1
    assert r["inputs"][0]["shape"][1:] == [8, 8, 1] and r["outputs"][0]["shape"][1:] == [3]
    assert r["metadata"] == META
    assert r["operator_total"] == sum(r["operators"].values()) > 0
    assert r["estimates"]["ram_arena_bytes"] > 0 and r["estimates"]["ram_arena_unknown_tensors"] == 0
    assert r["weights_bytes"] > 0
    if fmt == "tflite" and precision == "int8":  # full int8: int8 I/O with its quantization, every op int8
        assert r["inputs"][0]["dtype"] == "int8" and r["inputs"][0]["quantization"]["scale"] > 0
        assert r["outputs"][0]["quantization"]["zero_point"] == -128  # softmax output
        assert r["int8_op_share"] == 1.0
    if fmt == "onnx" and precision == "int8":  # QDQ: float I/O, Q/DQ pairs around int8 compute
        assert r["inputs"][0]["dtype"] == "float32"
        assert r["quantize_ops"] > 0 and r["dequantize_ops"] > r["quantize_ops"]
        assert r["int8_op_share"] >= 0.5
    if precision == "float32":
        assert r["quantize_ops"] == r["dequantize_ops"] == 0 and r["int8_op_share"] == 0.0
    if precision == "float16":
        assert r["weights_bytes"] < inspect_file(variants[("tflite", "float32")])["weights_bytes"]


@pytest.mark.slow
def test_inspect_cli_text_and_json(variants: dict[tuple[str, str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = variants[("onnx", "int8")]
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "model.int8.onnx: onnx" in text and "QuantizeLinear" in text and "int8 op share" in text
    assert "RAM: activation arena" in text and "metadata: labels (3): cat, dog, owl" in text
    assert main(["inspect", str(variants[("tflite", "int8")]), "--json", "--rss"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["estimates"]["rss_increase_bytes"] > 0
    assert main(["inspect", str(path.parent / "missing.onnx")]) == 2


RUNTIME_ONLY = r"""
import sys
for name in ("tensorflow", "tf_keras", "onnx", "tf2onnx"):
    sys.modules[name] = None  # importing any of them now fails: the runtime alone must do
from edgeship.cli import main
for path in sys.argv[1:]:
    assert main(["inspect", path, "--json"]) == 0
"""


@pytest.mark.slow
def test_inspect_without_tensorflow_or_onnx(variants: dict[tuple[str, str], Path]) -> None:
    files = [str(variants[("tflite", "int8")]), str(variants[("onnx", "int8")])]
    proc = subprocess.run([sys.executable, "-c", RUNTIME_ONLY, *files], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    text = proc.stdout.strip()
    while text:
        obj, end = decoder.raw_decode(text)
        reports.append(obj)
        text = text[end:].strip()
    assert [r["format"] for r in reports] == ["tflite", "onnx"]
    assert all(r["metadata"]["labels"] == META["labels"] for r in reports)
