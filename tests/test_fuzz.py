"""Fuzz verified loading: mutated and truncated .tflite / .onnx files never crash the process.

Each file either loads and predicts (a changed weight byte still allows that) or
raises edgeship's typed error. The originals are tiny models built here.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeship.runtime import EdgeshipError, ModelFileError, load
from edgeship.runtime._bench import sample_input
from edgeship.runtime._verify import BUFFER, MODEL, _Flatbuffer, _wire_fields

# 4 originals -> 2,080 files; the emulated arm64 stage runs a subset ($EDGESHIP_FUZZ_FILES per original).
FILES_PER_ORIGINAL = int(os.environ.get("EDGESHIP_FUZZ_FILES", "520"))
pytestmark = pytest.mark.device  # runtime only: where TensorFlow is absent, the originals are the default bundle's


def _originals(request: pytest.FixtureRequest) -> dict[str, bytes]:
    """Tiny models built here with TensorFlow; without it (the arm64 root), the default bundle's four files."""
    if importlib.util.find_spec("tensorflow") is not None:
        return _tiny_models()
    bundle = request.getfixturevalue("default_bundle")
    return {name: (bundle / f"model.{name}").read_bytes()
            for name in ("float32.tflite", "int8.tflite", "float32.onnx", "int8.onnx")}


def _tiny_models() -> dict[str, bytes]:
    from edgeship.core.tf import tf_modules

    tf, keras = tf_modules()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(5, activation="softmax"),
    ])
    calib = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
    out = {"float32.tflite": bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())}
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    out["int8.tflite"] = bytes(conv.convert())

    import tf2onnx

    spec = [tf.TensorSpec((None, 8, 8, 1), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    out["float32.onnx"] = proto.SerializeToString()

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    tmp = Path(__import__("tempfile").mkdtemp())
    (tmp / "f.onnx").write_bytes(out["float32.onnx"])
    quantize_static(str(tmp / "f.onnx"), str(tmp / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ)
    out["int8.onnx"] = (tmp / "q.onnx").read_bytes()
    return out


def _structure_positions(data: bytes, suffix: str) -> np.ndarray:
    """Byte positions outside weight payloads, where a mutation hits structure."""
    weight = np.zeros(len(data), bool)
    if suffix == ".tflite":
        fb = _Flatbuffer(data)
        model = fb.table(fb.u32(0), "Model")
        for b in fb.tables(model, MODEL["buffers"], "buffers"):
            start, length = fb.vector_field(b, BUFFER["data"], 1, "data")
            weight[start : start + length] = True
    else:
        top = _wire_fields(data, 0, len(data), "model")
        g0, g1 = top[7][0]
        for s, e in _wire_fields(data, g0, g1, "graph").get(5, []):
            weight[s:e] = True
    return np.flatnonzero(~weight)


def _mutate(data: bytes, rng: np.random.Generator, structure: np.ndarray) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "flip", "flip-structure", "word-structure", "splice"], p=[0.2, 0.2, 0.25, 0.25, 0.1])
    buf = bytearray(data)
    if kind == "truncate":
        return kind, bytes(buf[: int(rng.integers(0, len(buf)))])
    if kind == "flip":
        for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 5))):
            buf[pos] ^= int(rng.integers(1, 256))
    elif kind == "flip-structure":
        for pos in rng.choice(structure, size=int(rng.integers(1, 4))):
            buf[pos] ^= 1 << int(rng.integers(0, 8))
    elif kind == "word-structure":
        pos = int(rng.choice(structure)) & ~3
        old = int.from_bytes(buf[pos : pos + 4], "little")
        new = int(rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, old + int(rng.integers(-64, 65)), int(rng.integers(0, 1 << 32))]))
        buf[pos : pos + 4] = (new & 0xFFFFFFFF).to_bytes(4, "little")
    else:  # splice: duplicate or drop a chunk
        a = int(rng.integers(0, len(buf)))
        b = min(len(buf), a + int(rng.integers(1, 64)))
        buf = buf[:a] + buf[b:] if rng.random() < 0.5 else buf[:b] + buf[a:b] + buf[b:]
    return kind, bytes(buf)


def _classify(exc: ModelFileError) -> str:
    text = str(exc)
    if "probe process" in text:
        return "ModelFileError: probe caught a crash/timeout"
    if "could not load" in text:
        return "ModelFileError: engine refused at load"
    if "failed to run" in text:
        return "ModelFileError: engine error at predict"
    return "ModelFileError: structural check"


def _load_and_predict(path: Path) -> tuple[str, str | None]:
    """Load ``path`` and predict once; the outcome, and the error if one escaped untyped."""
    try:
        with load(path) as m:
            m.predict(sample_input(m))
        return "loaded and predicted", None
    except ModelFileError as exc:
        return _classify(exc), None
    except EdgeshipError as exc:
        return type(exc).__name__, None
    except BaseException as exc:  # noqa: BLE001 - the test is that nothing else escapes
        return "ESCAPED", f"{type(exc).__name__}: {exc}"


def test_fuzzed_model_files_load_or_raise_typed_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("EDGESHIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGESHIP_PROBE", "1")
    originals = _originals(request)
    rng = np.random.default_rng(6)
    counts: collections.Counter[str] = collections.Counter()
    by_kind: collections.Counter[tuple[str, str]] = collections.Counter()
    escaped: list[str] = []
    files = 0
    for name, data in originals.items():
        suffix = Path(name).suffix
        # The originals themselves load and predict.
        (tmp_path / f"orig{suffix}").write_bytes(data)
        with load(tmp_path / f"orig{suffix}") as m:
            assert np.isfinite(m.predict(sample_input(m))).all()
        structure = _structure_positions(data, suffix)
        for i in range(FILES_PER_ORIGINAL):
            kind, mutated = _mutate(data, rng, structure)
            path = tmp_path / f"m{i}.{name}"
            path.write_bytes(mutated)
            files += 1
            outcome, error = _load_and_predict(path)
            if error:
                escaped.append(f"{name} #{i} ({kind}): {error}")
            counts[outcome] += 1
            by_kind[(suffix, outcome)] += 1
            path.unlink()
    report = {"files": files, "outcomes": dict(counts), "by_format": {f"{k[0]} {k[1]}": v for k, v in sorted(by_kind.items())}}
    print("\nfuzz outcomes:", json.dumps(report, indent=2))
    assert files == 4 * FILES_PER_ORIGINAL
    assert not escaped, "\n".join(escaped[:20])
    assert counts["loaded and predicted"] > 0
    assert sum(v for k, v in counts.items() if k.startswith("ModelFileError")) > 0


def test_probe_alone_catches_engine_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """With the structural check switched off, the child-process probe is the only guard.

    Structure-targeted mutations then reach LiteRT itself; some crash it. The test
    process must still survive every file and see only typed errors.
    """
    import edgeship.runtime._load as load_module

    monkeypatch.setenv("EDGESHIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(load_module, "check_model_bytes", lambda content, fmt, name: None)
    originals = _originals(request)
    rng = np.random.default_rng(7)
    counts: collections.Counter[str] = collections.Counter()
    escaped: list[str] = []
    for name in ("float32.tflite", "int8.tflite"):
        data = originals[name]
        structure = _structure_positions(data, ".tflite")
        for i in range(min(20, FILES_PER_ORIGINAL)):
            buf = bytearray(data)
            pos = int(rng.choice(structure)) & ~3
            buf[pos : pos + 4] = int(rng.integers(0, 1 << 32)).to_bytes(4, "little")
            path = tmp_path / f"p{i}.{name}"
            path.write_bytes(bytes(buf))
            outcome, error = _load_and_predict(path)
            if error:
                escaped.append(f"{name} #{i}: {error}")
            counts[outcome] += 1
    print("\nprobe-only outcomes:", json.dumps(dict(counts), indent=2))
    assert not escaped, "\n".join(escaped[:20])
