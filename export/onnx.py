"""ONNX writers: float32 via tf2onnx; static QDQ and dynamic int8 via ONNX Runtime's quantizer."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeship.core.bundle import ONNX_PRECISIONS as ONNX_PRECISIONS
from edgeship.core.tf import check_keras2_model, require, scoped_log_levels, tf_modules

from ._feed import batch1

INPUT_NAME = "input"


def to_onnx(model: Any, opset: int = 17) -> bytes:
    """Convert a tf_keras model to float32 ONNX; the input is named ``input``, batch dynamic."""
    check_keras2_model(model)
    tf, _ = tf_modules()
    tf2onnx = require("tf2onnx", "ONNX export")
    # Integer inputs (token ids for text models) keep their dtype; the rest is float32.
    in_dtype = tf.as_dtype(model.inputs[0].dtype)
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), in_dtype if in_dtype.is_integer else tf.float32, name=INPUT_NAME),)
    # tf2onnx numbers the nodes it makes from a process-wide counter; start it at 1 for this
    # export so the same model always gives the same bytes (and sha256), however many exports
    # ran before, and give the caller's counter back afterwards.
    counter = tf2onnx.utils.INTERNAL_NAME
    tf2onnx.utils.INTERNAL_NAME = 1
    try:
        with scoped_log_levels(("tf2onnx",), logging.ERROR):
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    finally:
        tf2onnx.utils.INTERNAL_NAME = counter
    return bytes(proto.SerializeToString())


class _Reader:
    """ORT ``CalibrationDataReader``: one batch-1 sample per call."""

    def __init__(self, name: str, calibration: np.ndarray) -> None:
        self._items = iter([{name: sample} for sample in batch1(calibration)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


CalibrationName = Literal["minmax", "entropy", "percentile"]
QuantTypeName = Literal["int8", "uint8"]


@dataclass(frozen=True)
class OnnxQuantConfig:
    """ONNX Runtime static QDQ quantization settings (``quantize_static``), typed.

    Attributes:
        calibration: activation range calibration: ``"minmax"``, ``"entropy"``
            (KL-divergence threshold) or ``"percentile"`` (99.999th, by default).
        per_channel: per-output-channel weight scales.
        activation_type: ``"uint8"`` or ``"int8"`` activations.
        weight_type: ``"int8"`` or ``"uint8"`` weights.
        reduce_range: 7-bit weights (for u8s8 on x86 CPUs without VNNI, where
            the 16-bit intermediate sums can saturate).
        percentile: the percentile kept by ``"percentile"`` calibration.
        nodes_to_exclude: node names kept in float.
    """

    calibration: CalibrationName = "minmax"
    per_channel: bool = True
    activation_type: QuantTypeName = "uint8"
    weight_type: QuantTypeName = "int8"
    reduce_range: bool = False
    percentile: float = 99.999
    nodes_to_exclude: tuple[str, ...] = ()

    @classmethod
    def x86(cls, **changes: Any) -> OnnxQuantConfig:
        """x86-64 (AVX2/AVX-512): u8 activations, s8 per-channel weights, ORT's advice for x86."""
        return replace(cls(activation_type="uint8", weight_type="int8", per_channel=True), **changes)

    @classmethod
    def arm64(cls, **changes: Any) -> OnnxQuantConfig:
        """arm64 (NEON dot-product kernels): s8 activations, s8 per-channel weights (S8S8 QDQ)."""
        return replace(cls(activation_type="int8", weight_type="int8", per_channel=True), **changes)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> OnnxQuantConfig:
        """A named preset from :data:`ONNX_PRESETS`, with ``changes`` applied."""
        if name not in ONNX_PRESETS:
            raise ValueError(f"Unknown ONNX quantization preset {name!r}. Valid names: {', '.join(sorted(ONNX_PRESETS))}.")
        return replace(ONNX_PRESETS[name](), **changes)

    def describe(self) -> str:
        pc = "per-channel" if self.per_channel else "per-tensor"
        excl = f", {len(self.nodes_to_exclude)} node(s) in float" if self.nodes_to_exclude else ""
        return f"QDQ {self.calibration} a:{self.activation_type} w:{self.weight_type} {pc}{excl}"


ONNX_PRESETS: dict[str, Callable[[], OnnxQuantConfig]] = {"x86": OnnxQuantConfig.x86, "arm64": OnnxQuantConfig.arm64}


def _quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[name]


def preprocess_onnx(float_model: bytes) -> bytes:
    """``quant_pre_process`` (shape inference + graph cleanup) as ORT advises before quantizing."""
    require("onnx", "ONNX int8 export")
    require("sympy", "ONNX int8 export (quant_pre_process)")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="edgeship-onnxpre-") as tmp:
        src, pre = Path(tmp, "f.onnx"), Path(tmp, "pre.onnx")
        src.write_bytes(float_model)
        quant_pre_process(str(src), str(pre))
        return pre.read_bytes()


def quantize_onnx(
    float_model: bytes,
    calibration: np.ndarray,
    config: OnnxQuantConfig | None = None,
    *,
    per_channel: bool | None = None,
    activation_type: str | None = None,
    weight_type: str | None = None,
) -> bytes:
    """Static int8 quantization in QDQ format (ONNX Runtime ``quantize_static``).

    ``config`` defaults to :meth:`OnnxQuantConfig.x86` (u8 activations, s8
    per-channel weights, MinMax calibration); the keyword arguments override
    it. Every calibration sample is used. Inputs and outputs stay float32.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    cfg = config or OnnxQuantConfig.x86()
    overrides = {"per_channel": per_channel, "activation_type": activation_type, "weight_type": weight_type}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    extra = {"CalibPercentile": cfg.percentile} if cfg.calibration == "percentile" else {}
    with scoped_log_levels(("",), logging.ERROR), tempfile.TemporaryDirectory(prefix="edgeship-onnxq-") as tmp:
        pre, dst = Path(tmp, "pre.onnx"), Path(tmp, "q.onnx")
        pre.write_bytes(preprocess_onnx(float_model))
        name = onnx.load(str(pre)).graph.input[0].name
        with contextlib.redirect_stdout(io.StringIO()):  # entropy/percentile calibrators print progress
            quantize_static(
                str(pre),
                str(dst),
                _Reader(name, calibration),
                quant_format=QuantFormat.QDQ,
                activation_type=_quant_type(cfg.activation_type),
                weight_type=_quant_type(cfg.weight_type),
                per_channel=cfg.per_channel,
                reduce_range=cfg.reduce_range,
                calibrate_method=methods[cfg.calibration],
                nodes_to_exclude=list(cfg.nodes_to_exclude) or None,
                extra_options=extra,
            )
        return dst.read_bytes()


def quantize_onnx_dynamic(float_model: bytes, *, weight_type: QuantTypeName = "int8") -> bytes:
    """Dynamic int8 quantization (ONNX Runtime ``quantize_dynamic``): int8 weights,
    activations quantized per batch at run time (ConvInteger / MatMulInteger); float32 I/O."""
    from onnxruntime.quantization import quantize_dynamic

    with scoped_log_levels(("",), logging.ERROR), tempfile.TemporaryDirectory(prefix="edgeship-onnxdq-") as tmp:
        pre, dst = Path(tmp, "pre.onnx"), Path(tmp, "q.onnx")
        pre.write_bytes(preprocess_onnx(float_model))
        quantize_dynamic(str(pre), str(dst), weight_type=_quant_type(weight_type))
        return dst.read_bytes()
