"""TFLite writers: float32, float16, dynamic-range int8, full int8 (W8A8, per-channel), int16x8."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeship.core.bundle import TFLITE_PRECISIONS as TFLITE_PRECISIONS
from edgeship.core.errors import BuildError
from edgeship.core.tf import check_keras2_model, quiet_engine, tf_modules

from ._feed import batch1


def representative(calibration: np.ndarray) -> Any:
    """A TFLite representative-dataset callable yielding batch-1 float32 samples."""

    def gen() -> Iterator[list[np.ndarray]]:
        for sample in batch1(calibration):
            yield [sample]

    return gen


def to_tflite(
    model: Any,
    precision: str = "float32",
    calibration: np.ndarray | None = None,
    *,
    per_channel: bool = True,
    io_type: str = "int8",
    float_layers: list[str] | tuple[str, ...] = (),
) -> bytes:
    """Convert a tf_keras model to a TFLite flatbuffer.

    Args:
        model: tf_keras model (a tfmot QAT model too: its fake-quant ranges are used).
        precision: one of :data:`TFLITE_PRECISIONS`:

            - ``"float32"``: no quantization.
            - ``"float16"``: float16 weights, float32 compute and I/O.
            - ``"dynamic_int8"``: dynamic-range quantization: int8 weights,
              activations quantized on the fly, float32 I/O; no calibration.
            - ``"int8"``: full-integer W8A8 static PTQ: int8 weights (per-channel
              for conv/dense unless ``per_channel=False``), int8 activations
              calibrated on ``calibration``, ``io_type`` input and output.
            - ``"int16x8"``: 16-bit activations, 8-bit weights, int16 I/O.
        calibration: float32 inputs batch-first; needed for ``int8`` and ``int16x8``.
            Every sample is used, so its length is the number of calibration samples.
        per_channel: per-channel (per output channel) weight scales for ``int8``.
        io_type: ``"int8"`` or ``"uint8"`` input/output tensors for ``int8``.
        float_layers: output tensor names of ops to keep in float (the LiteRT
            quantization debugger's ``denylisted_nodes``); ``int8`` only. The
            model's I/O then stays float32.
    """
    check_keras2_model(model)
    tf, _ = tf_modules()
    _check_arguments(precision, io_type, calibration)
    if precision in ("float32", "float16", "dynamic_int8"):
        converter = _float_converter(tf, model, precision)
    else:
        assert calibration is not None
        converter = quantizing_converter(model, calibration, per_channel=per_channel)
        if float_layers and precision == "int8":
            return _selective_int8(tf, converter, calibration, list(float_layers))
        _integer_io(tf, converter, precision, io_type)
    with quiet_engine():  # the converter prints its settings and deprecation warnings on every call
        return bytes(converter.convert())


def _check_arguments(precision: str, io_type: str, calibration: np.ndarray | None) -> None:
    if precision not in TFLITE_PRECISIONS:
        raise BuildError(
            f"Unsupported TFLite precision. Expected one of {', '.join(TFLITE_PRECISIONS)}. Received: {precision!r}. "
            "Fix quantize.tflite in the recipe."
        )
    if io_type not in ("int8", "uint8"):
        raise BuildError(f"Unsupported TFLite int8 I/O type. Expected int8 or uint8. Received: {io_type!r}.")
    if precision in ("int8", "int16x8") and (calibration is None or len(calibration) == 0):
        raise BuildError(
            f"{precision} TFLite conversion needs calibration samples. Received: none. Pass calibration=x_train[:256]."
        )


def _float_converter(tf: Any, model: Any, precision: str) -> Any:
    """float32 (no optimization), float16 weights, or dynamic-range int8: no calibration needed."""
    converter = _converter(tf, model)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def _integer_io(tf: Any, converter: Any, precision: str, io_type: str) -> None:
    """Integer-only ops and I/O: int16 activations with int8 weights (``int16x8``), else int8 with ``io_type`` I/O."""
    if precision == "int16x8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8 if io_type == "int8" else tf.uint8


def quantizing_converter(model: Any, calibration: np.ndarray, *, per_channel: bool = True) -> Any:
    """A ``TFLiteConverter`` set up for static quantization calibrated on ``calibration``.

    The one converter set-up behind int8 / int16x8 conversion and the per-layer
    SQNR diagnostics (the quantization debugger), so both see the same ranges.
    """
    tf, _ = tf_modules()
    converter = _converter(tf, model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration)
    if not per_channel:
        # No public switch exists; this is the converter's own flag for per-tensor weights.
        converter._experimental_disable_per_channel = True
    return converter


def _converter(tf: Any, model: Any) -> Any:
    """The converter for ``model``, without the converter's ``CONVERSION_METADATA`` entry.

    That entry (96 bytes: TensorFlow version and conversion flags) is provenance,
    never read by an interpreter; the bundle manifest records the toolchain
    (``manifest["toolchain"]``) instead, so device files carry only what runs.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.exclude_conversion_metadata = True
    return converter


def _selective_int8(tf: Any, converter: Any, calibration: np.ndarray, float_layers: list[str]) -> bytes:
    """int8 with the ops producing ``float_layers`` kept in float (QuantizationDebugger denylist)."""
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers)
    with quiet_engine():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative(calibration[:1]), debug_options=options
        )
        return bytes(debugger.get_nondebug_quantized_model())
