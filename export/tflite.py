"""TFLite writers: float32 and full-int8 (W8A8 static, per-channel weights, int8 I/O)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeship._tf import check_keras2_model, tf_modules
from edgeship.runtime._errors import BuildError


def representative(calibration: np.ndarray) -> Any:
    """A TFLite representative-dataset callable yielding batch-1 float32 samples."""

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(calibration)):
            yield [np.ascontiguousarray(calibration[i : i + 1], dtype=np.float32)]

    return gen


def to_tflite(model: Any, precision: str = "float32", calibration: np.ndarray | None = None) -> bytes:
    """Convert a tf_keras model to a TFLite flatbuffer.

    Args:
        model: tf_keras model.
        precision: ``"float32"``, or ``"int8"`` for full-integer post-training
            quantization: int8 weights (per-channel for conv/dense) and int8
            activations calibrated on ``calibration``, with int8 input and output
            tensors (the runtime quantizes and dequantizes for the caller).
        calibration: float32 inputs batch-first, needed for ``"int8"``.
    """
    check_keras2_model(model)
    tf, _ = tf_modules()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        if calibration is None or len(calibration) == 0:
            raise BuildError("int8 TFLite conversion needs calibration samples. Received: none. Pass calibration=x_train[:256].")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif precision != "float32":
        raise BuildError(f"Unsupported TFLite precision. Expected float32 or int8. Received: {precision!r}.")
    return bytes(converter.convert())
