"""Per-layer quantization diagnostics: SQNR in dB of float against int8 activations.

SQNR = 20·log10(‖x‖ / ‖x − x̂‖) where ``x`` is the float model's activation and
``x̂`` the dequantized int8 one, computed per sample and averaged over samples
(so a rare large activation does not hide the error on the common inputs).
Higher is better; ~40 dB is a clean int8 layer, < 10 dB a broken one.

TFLite: ``tf.lite.experimental.QuantizationDebugger`` (keys are the op output
tensor names its ``denylisted_nodes`` accepts). ONNX: both models re-run with
every intermediate tensor as an output (ONNX Runtime ``qdq_loss_debug``; keys
are node names, as ``nodes_to_exclude`` accepts).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.metrics import SQNR_CAP_DB, sqnr_db
from edgeship.core.tf import quiet_engine, tf_modules

from ._feed import batch1
from .tflite import quantizing_converter, representative

MAX_DB = SQNR_CAP_DB  # an exact match reports this instead of +inf (JSON has no inf)


def tflite_sqnr(model: Any, calibration: np.ndarray, *, samples: int = 32, per_channel: bool = True) -> dict[str, float]:
    """Per-op SQNR of full-int8 PTQ of a tf_keras model, from the LiteRT quantization debugger.

    ``calibration`` calibrates the ranges; its first ``samples`` rows are run.
    """

    tf, _ = tf_modules()
    converter = quantizing_converter(model, calibration, per_channel=per_channel)

    def metric(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
        return sqnr_db(f, (np.asarray(q, dtype=np.int32) - int(zero_point)) * float(scale))

    options = tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics={"sqnr_db": metric})
    with quiet_engine():  # converter settings, tf.lite.Interpreter deprecation, XNNPACK delegate lines
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative(calibration[:samples]), debug_options=options
        )
        debugger.run()
    out: dict[str, float] = {}
    for verify_name, stats in debugger.layer_statistics.items():
        tensor_name, _ = debugger._get_operand_name_and_index(verify_name)
        out[tensor_name] = _finite(stats["sqnr_db"])
    return out


def _finite(value: float) -> float:
    # The debugger averages per-sample values with nanmean; all-NaN means the tensor was always zero.
    v = float(value)
    return round(v, 3) if math.isfinite(v) else MAX_DB


def onnx_sqnr(float_model: bytes, qdq_model: bytes, inputs: np.ndarray) -> dict[str, float]:
    """Per-node SQNR of a QDQ model against its float model, over the samples in ``inputs``.

    ``float_model`` must be the graph the QDQ model was quantized from, after
    ``quant_pre_process`` (:func:`edgeship.export.onnx.preprocess_onnx`), so the
    tensor names match.
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    with tempfile.TemporaryDirectory(prefix="edgeship-sqnr-") as tmp:
        paths = {}
        for tag, content in (("float", float_model), ("qdq", qdq_model)):
            src, aug = Path(tmp, f"{tag}.onnx"), Path(tmp, f"{tag}.aug.onnx")
            src.write_bytes(content)
            modify_model_output_intermediate_tensors(str(src), str(aug))
            paths[tag] = str(aug)
        graph = onnx.load_from_string(float_model).graph
        name = graph.input[0].name
        float_acts = collect_activations(paths["float"], _ReaderIter(name, inputs))
        qdq_acts = collect_activations(paths["qdq"], _ReaderIter(name, inputs))
    matched = create_activation_matching(qdq_acts, float_acts)
    producer = {out: node for node in graph.node for out in node.output}
    order = {out: i for i, node in enumerate(graph.node) for out in node.output}
    result: dict[str, float] = {}
    # In graph order: the quantizer reports the tensors as a set, whose order changes with each process.
    for tensor, match in sorted(matched.items(), key=lambda item: order.get(item[0], len(order))):
        if tensor not in producer or "float" not in match:
            continue
        per_sample = [sqnr_db(f, q) for f, q in zip(match["float"], match["post_qdq"])]
        value = _finite(np.nanmean(per_sample)) if not np.isnan(per_sample).all() else MAX_DB
        # The quantizer fuses e.g. Gemm -> Relu: only the Relu output gets a QDQ pair.
        # The nodes before it whose outputs are not quantized share its SQNR, so that
        # keeping the group in float (nodes_to_exclude) keeps all of it.
        node = producer[tensor]
        while node is not None and node.name not in result:
            result[node.name] = value
            first = node.input[0] if node.input else None
            node = producer.get(first) if first is not None and first not in matched else None
    return result


class _ReaderIter:
    """Batch-1 feeds for ``collect_activations``, which only iterates its reader."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self._name, self._x = name, x

    def __iter__(self) -> Any:
        for sample in batch1(self._x):
            yield {self._name: sample}


def most_sensitive(sqnr: dict[str, float], k: int) -> list[str]:
    """The ``k`` names with the lowest SQNR, plus any name tied with a chosen one.

    Ties are kept together because :func:`onnx_sqnr` gives a fused node group
    (e.g. Gemm + Relu) one shared value: the group goes to float as a whole.
    """
    ranked = sorted((v, n) for n, v in sqnr.items())
    chosen = {v for v, _ in ranked[:k]}
    return [n for v, n in ranked if v in chosen]
