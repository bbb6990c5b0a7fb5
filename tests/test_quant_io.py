"""int8 I/O handled by the runtime, and the NaN/Inf check, on the fast and the general path.

The reference is the engine itself fed codes computed with the textbook formula
``q = clip(rint(x / scale) + zero_point)`` and read back with ``(q - zero_point) * scale``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import edgeship.runtime._model as model_module
from edgeship.runtime import InputError, load, load_eval
from edgeship.runtime._quant import Dequantizer, Quantizer
from edgeship.runtime._tensor import TensorInfo

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root


@pytest.mark.parametrize(("dtype", "zero_point"), [(np.int8, -3), (np.uint8, 128), (np.int16, 0)])
def test_quantizer_matches_the_reference_formula(dtype: type, zero_point: int) -> None:
    spec = TensorInfo("x", (None, 4), np.dtype(dtype), scale=0.0137, zero_point=zero_point)
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    for n in (8, 20_000):  # both sides of the small/large clip switch
        x = (rng.standard_normal((n // 4, 4)) * 3).astype(np.float32)
        x[0, :2] = (1e6, -1e6)  # saturates
        expected = np.clip(np.rint(x / np.float32(0.0137)) + zero_point, info.min, info.max).astype(dtype)
        got = Quantizer(spec)(x)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("dtype", "zero_point"), [(np.int8, -128), (np.int8, 7), (np.uint8, 3), (np.int16, -5)])
def test_dequantizer_table_is_bit_identical_to_arithmetic(dtype: type, zero_point: int) -> None:
    spec = TensorInfo("y", (None, 10), np.dtype(dtype), scale=0.00390625 * 1.37, zero_point=zero_point)
    info = np.iinfo(dtype)
    codes = np.arange(max(info.min, -1000), min(info.max, 1000) + 1).astype(dtype).reshape(1, -1)
    expected = (codes.astype(np.float32) - np.float32(zero_point)) * np.float32(spec.scale)
    got = Dequantizer(spec)(codes)
    assert got.dtype == np.float32 and got.shape == codes.shape
    np.testing.assert_array_equal(got, expected)


def test_int8_tflite_predict_equals_engine_with_reference_conversion(default_bundle: Path) -> None:
    path = default_bundle / "model.int8.tflite"
    x, _ = load_eval(default_bundle)
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8  # the case under test
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]

    def reference(sample: np.ndarray) -> np.ndarray:
        q = np.clip(np.rint(sample / np.float32(s_in)) + z_in, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        return (interp.get_tensor(out["index"]).astype(np.float32) - np.float32(z_out)) * np.float32(s_out)

    with load(path, threads=1) as m:
        assert "predict" in vars(m), "int8 models take the specialised fast path"
        for i in range(40):  # first call validates, the rest run the fast path
            np.testing.assert_array_equal(m.predict(x[i : i + 1]), reference(x[i : i + 1]))
        batch = m.predict(x[:3])  # the general path, one sample at a time
        np.testing.assert_array_equal(batch, np.concatenate([reference(x[i : i + 1]) for i in range(3)]))


def test_engine_side_float_io_matches_the_numpy_path_and_reports_the_files_int8_tensors(
    default_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteRT runs an int8-I/O file with QUANTIZE / DEQUANTIZE ops added in memory (``runtime._floatio``): the
    same outputs as quantizing in numpy, the file's int8 tensors in ``inputs`` / ``outputs``, file untouched."""
    import hashlib

    import edgeship.runtime._floatio as floatio

    path = default_bundle / "model.int8.tflite"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    x, _ = load_eval(default_bundle)
    grid = np.linspace(-1.0, 2.0, x[:1].size, dtype=np.float32).reshape(x[:1].shape)  # out of range both ways
    with load(path, threads=1) as engine_side:
        assert engine_side._backend.quantizes_io and engine_side._quant == [None]
        (spec,), (ospec,) = engine_side.inputs, engine_side.outputs
        assert spec.dtype == np.int8 and spec.quantized and ospec.dtype == np.int8 and ospec.quantized
        a = [engine_side.predict(x[i : i + 1]) for i in range(60)] + [engine_side.predict(x[:7]), engine_side.predict(grid)]
    monkeypatch.setenv("EDGESHIP_INT8_IO", "numpy")  # the documented switch: numpy converts, no flatbuffer tools
    with load(path, threads=1) as numpy_side:
        assert not numpy_side._backend.quantizes_io and numpy_side._quant[0] is not None
        b = [numpy_side.predict(x[i : i + 1]) for i in range(60)] + [numpy_side.predict(x[:7]), numpy_side.predict(grid)]
    monkeypatch.delenv("EDGESHIP_INT8_IO")
    monkeypatch.setattr(floatio, "_tools", lambda: None)  # a device without the flatbuffer tools: numpy too
    with load(path, threads=1) as without_tools:
        assert not without_tools._backend.quantizes_io
        np.testing.assert_array_equal(without_tools.predict(grid), b[-1])
    for got, want in zip(a, b):
        np.testing.assert_array_equal(got, want)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(("fmt", "precision"), [("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8")])
def test_finite_check_is_exact_without_warnings(default_bundle: Path, fmt: str, precision: str) -> None:
    x, _ = load_eval(default_bundle)
    with load(default_bundle, format=fmt, precision=precision) as m, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for batch in (1, 4):
            m.predict(x[:batch])
            m.predict(x[:batch])  # primed: the fast path for this shape
            # the largest finite floats pass the check, and raise no overflow warning
            edge = np.full((batch, 8, 8, 1), np.finfo(np.float32).max if precision == "float32" else 1e6, np.float32)
            edge[..., 0, 0, 0] *= -1
            assert m.predict(edge).shape == (batch, 10)
            for bad in (np.nan, np.inf, -np.inf):
                z = x[:batch].copy()
                z[batch - 1, 7, 7, 0] = bad  # the last value of the last sample
                with pytest.raises(InputError, match="1 NaN/Inf value"):
                    m.predict(z)


def test_finite_check_for_inputs_too_large_for_the_dot(default_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "_DOT_MAX", 64)  # batches above one sample take np.isfinite
    x, _ = load_eval(default_bundle)
    with load(default_bundle, format="tflite", precision="float32") as m:
        m.predict(x[:2])
        assert m._ok[1] is None
        z = x[:2].copy()
        z[1, 0, 0, 0] = np.inf
        with pytest.raises(InputError, match="NaN/Inf"):
            m.predict(z)
        np.testing.assert_array_equal(m.predict(x[:2]), m.predict(x[:2].copy()))
