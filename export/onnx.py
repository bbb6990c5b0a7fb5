"""ONNX writers: float32 via tf2onnx, int8 via ONNX Runtime static QDQ quantization."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeship._tf import check_keras2_model, require, tf_modules

INPUT_NAME = "input"


def to_onnx(model: Any, opset: int = 17) -> bytes:
    """Convert a tf_keras model to float32 ONNX; the input is named ``input``, batch dynamic."""
    check_keras2_model(model)
    tf, _ = tf_modules()
    tf2onnx = require("tf2onnx", "ONNX export")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    return bytes(proto.SerializeToString())


class _Reader:
    """ORT ``CalibrationDataReader``: one batch-1 sample per call."""

    def __init__(self, name: str, calibration: np.ndarray) -> None:
        self._items = iter([{name: np.ascontiguousarray(calibration[i : i + 1], dtype=np.float32)} for i in range(len(calibration))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_onnx(
    float_model: bytes,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    activation_type: str = "uint8",
    weight_type: str = "int8",
) -> bytes:
    """Static int8 quantization in QDQ format (ONNX Runtime ``quantize_static``).

    Defaults are ONNX Runtime's x86 advice: u8 activations, s8 weights,
    per-channel weights, MinMax calibration. Inputs and outputs stay float32.
    """
    require("onnx", "ONNX int8 export")
    require("sympy", "ONNX int8 export (quant_pre_process)")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    logging.getLogger("root").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="edgeship-onnxq-") as tmp:
        src, pre, dst = Path(tmp, "f.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "q.onnx")
        src.write_bytes(float_model)
        quant_pre_process(str(src), str(pre))
        import onnx

        name = onnx.load(str(pre)).graph.input[0].name
        quantize_static(
            str(pre),
            str(dst),
            _Reader(name, calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=types[activation_type],
            weight_type=types[weight_type],
            per_channel=per_channel,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return dst.read_bytes()
