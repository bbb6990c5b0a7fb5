"""Compression inside `edgeship build`: every recipe-selected variant in the bundle, loaded and evaluated."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest


def test_default_bundle_records_compression(default_bundle: Path) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    comp = manifest["compression"]
    assert set(comp) == {"sparsity", "schedule", "prune_attempts", "quantization_attempts", "sqnr_db", "batchnorm_fold"}
    assert comp["batchnorm_fold"] == {"folded": {"bn1": "conv1", "bn2": "conv2", "bn3": "conv3"}, "unfolded": []}
    assert comp["prune_attempts"][-1]["met_budget"] and comp["prune_attempts"][0]["step"] == "as_recipe"
    target = manifest["recipe"]["prune"]["target_sparsity"]
    assert comp["sparsity"] and all(v == pytest.approx(target, abs=0.01) for v in comp["sparsity"].values())
    assert comp["schedule"]["kind"] == "polynomial" and comp["schedule"]["target_sparsity"] == target
    # The default budget is met by the first attempt of every artifact: plain PTQ for int8.
    attempts = comp["quantization_attempts"]
    assert [(a["artifact"], a["step"], a["met_budget"]) for a in attempts] == [
        ("model.float32.tflite", "export", True),
        ("model.int8.tflite", "ptq_per_channel", True),
        ("model.float32.onnx", "export", True),
        ("model.int8.onnx", "ptq_per_channel", True),
    ]
    assert set(comp["sqnr_db"]) == {"tflite", "onnx"}
    for fmt, table in comp["sqnr_db"].items():
        assert table and all(isinstance(v, float) for v in table.values()), fmt
        assert np.median(list(table.values())) > 15.0, (fmt, table)  # a healthy int8 model
    for art in manifest["artifacts"]:
        data = (default_bundle / art["file"]).read_bytes()
        assert art["metrics"]["gzip_bytes"] == len(gzip.compress(data, compresslevel=9))
    f32 = next(a for a in manifest["artifacts"] if a["file"] == "model.float32.tflite")
    i8 = next(a for a in manifest["artifacts"] if a["file"] == "model.int8.tflite")
    assert i8["metrics"]["gzip_bytes"] < 0.35 * f32["metrics"]["gzip_bytes"]
    # BatchNorm folded into the pruned convs scales each output channel: the zeros ship in the int8 file
    from edgeship.compress import tflite_weight_sparsity

    shipped = tflite_weight_sparsity((default_bundle / "model.int8.tflite").read_bytes())
    convs = {k: v for k, v in shipped.items() if "conv" in k.lower()}
    assert len(convs) == 3 and all(v >= target - 0.02 for v in convs.values()), shipped


@pytest.mark.slow
def test_build_writes_loads_and_evaluates_every_variant(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.recipe import Recipe
    from edgeship.runtime import load, load_eval

    tflite = ["float32", "float16", "dynamic_int8", "int8", "int16x8"]
    onnx = ["float32", "int8", "dynamic_int8"]
    recipe = Recipe.from_dict({
        "name": "variants",
        "train": {"epochs": 12},
        "prune": {"target_sparsity": 0.5, "fine_tune_epochs": 2, "schedule": "polynomial", "exclude": ["probs"]},
        "quantize": {
            "tflite": tflite, "onnx": onnx, "io_type": "uint8", "onnx_preset": "arm64",
            "calibration_method": "entropy", "calibration_samples": 128,
        },
        "export": {"measure_rss": False},
    })
    out = build(recipe, tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    files = {a["file"] for a in manifest["artifacts"]}
    assert files == {f"model.{p}.tflite" for p in tflite} | {f"model.{p}.onnx" for p in onnx}
    x, y = load_eval(out)
    float_acc = next(a for a in manifest["artifacts"] if a["file"] == "model.float32.tflite")["metrics"]["accuracy"]
    for art in manifest["artifacts"]:
        with load(out, format=art["format"], precision=art["precision"]) as model:
            acc = float(np.mean(np.argmax(model.predict(x), -1) == y))
            in_dtype = model.inputs[0].dtype
        assert acc == pytest.approx(art["metrics"]["accuracy"], abs=1e-9), art["file"]
        assert acc >= float_acc - 0.05, (art["file"], acc, float_acc)
        want = {("tflite", "int8"): np.uint8, ("tflite", "int16x8"): np.int16}.get((art["format"], art["precision"]), np.float32)
        assert in_dtype == want, art["file"]
    comp = manifest["compression"]
    assert comp["sparsity"]["probs"] < 0.05  # excluded by name
    assert comp["sparsity"]["conv1"] == pytest.approx(0.5, abs=0.01)
    assert comp["schedule"]["kind"] == "polynomial" and comp["schedule"]["exclude"] == ["probs"]
    onnx_attempt = next(a for a in comp["quantization_attempts"] if a["artifact"] == "model.int8.onnx")
    assert "entropy a:int8 w:int8" in onnx_attempt["method"]  # the arm64 preset with entropy calibration
    report = (out / "report.md").read_text()
    assert "Quantization attempts" in report and "Pruning schedule" in report
