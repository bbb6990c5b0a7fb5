"""Runtime on a real bundle: float I/O for every precision, typed errors, integrity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.runtime import (
    BundleError,
    InputError,
    IntegrityError,
    ModelFileError,
    load,
    load_eval,
    sha256_file,
)

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root

VARIANTS = [("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8")]


def test_manifest_lists_four_artifacts_with_matching_sha(default_bundle: Path) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    assert {"schema", "name", "labels", "preprocessing", "artifacts"} <= set(manifest)
    got = {(a["format"], a["precision"]) for a in manifest["artifacts"]}
    assert got == set(VARIANTS)
    for a in manifest["artifacts"]:
        path = default_bundle / a["file"]
        assert a["sha256"] == sha256_file(path)
        assert a["bytes"] == path.stat().st_size
        assert {"name", "shape", "dtype", "quantization"} <= set(a["inputs"][0])
        assert {"name", "shape", "dtype", "quantization"} <= set(a["outputs"][0])
    int8_tflite = next(a for a in manifest["artifacts"] if a["file"] == "model.int8.tflite")
    assert int8_tflite["inputs"][0]["dtype"] == "int8"
    assert int8_tflite["inputs"][0]["quantization"]["scale"] > 0


@pytest.mark.parametrize(("fmt", "precision"), VARIANTS)
def test_every_artifact_predicts_float_and_meets_accuracy(default_bundle: Path, fmt: str, precision: str) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    x, y = load_eval(default_bundle)
    with load(default_bundle, format=fmt, precision=precision) as model:
        probs = model.predict(x)
        assert probs.dtype == np.float32 and probs.shape == (len(x), 10)
        acc = float(np.mean(np.argmax(probs, axis=1) == y))
        assert acc >= 0.95
        # probabilities come back dequantized, not as raw int8 codes
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05)
        entry = next(a for a in manifest["artifacts"] if a["format"] == fmt and a["precision"] == precision)
        assert entry["metrics"]["accuracy"] == pytest.approx(acc)
        assert model.predict_labels(x[:3]) == [str(i) for i in np.argmax(probs[:3], axis=1)]


def test_int8_within_two_points_of_float(default_bundle: Path) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    acc = {(a["format"], a["precision"]): a["metrics"]["accuracy"] for a in manifest["artifacts"]}
    for fmt in ("tflite", "onnx"):
        assert acc[(fmt, "float32")] - acc[(fmt, "int8")] <= 0.02


def test_single_model_file_and_batch_one(default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    for name in ("model.int8.tflite", "model.float32.onnx"):
        with load(default_bundle / name) as m:
            assert m.predict(x[:1]).shape == (1, 10)
            np.testing.assert_allclose(m.predict(x[:7])[3], m.predict(x[3:4])[0], atol=1e-5)


def test_wrong_shape_and_dtype_errors(default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    with load(default_bundle) as m:
        with pytest.raises(InputError, match=r"expects input float32 \(N, 8, 8, 1\).*Received: float32 \(8, 8, 1\).*x\[None, \.\.\.\]"):
            m.predict(x[0])
        with pytest.raises(InputError, match=r"Received: float32 \(2, 4, 4, 1\)"):
            m.predict(np.zeros((2, 4, 4, 1), np.float32))
        with pytest.raises(InputError, match="Received: <U1"):
            m.predict(np.array([["a"]]))
        with pytest.raises(InputError, match="NaN/Inf"):
            m.predict(np.full((1, 8, 8, 1), np.nan, np.float32))
        # float64 and ints are castable
        assert m.predict(x[:2].astype(np.float64)).shape == (2, 10)
        assert m.predict(np.ones((1, 8, 8, 1), np.int64)).shape == (1, 10)


def test_tampered_file_is_refused(bundle_copy: Path) -> None:
    target = bundle_copy / "model.int8.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.int8.onnx.*sha256"):
        load(bundle_copy)  # even though the default choice is another artifact


def test_missing_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "model.float32.tflite").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        load(bundle_copy)


def test_paths_that_are_not_models(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="Received: .*nothing"):
        load(tmp_path / "nope")
    with pytest.raises(BundleError, match="without manifest.json"):
        load(tmp_path)
    other = tmp_path / "weights.h5"
    other.write_bytes(b"x" * 100)
    with pytest.raises(BundleError, match=r"\.h5"):
        load(other)


def test_corrupt_model_files_get_typed_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        load(bad)
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"this is not protobuf at all" * 10)
    with pytest.raises(ModelFileError):
        load(bad_onnx)


def test_closed_model_raises(default_bundle: Path) -> None:
    m = load(default_bundle)
    m.close()
    with pytest.raises(ModelFileError, match="closed"):
        m.predict(np.zeros((1, 8, 8, 1), np.float32))
