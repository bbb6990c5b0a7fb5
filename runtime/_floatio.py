"""Float32 I/O for an integer-I/O TFLite model, done by the engine: QUANTIZE / DEQUANTIZE ops added in memory.

A fully quantized ``.tflite`` (int8 inputs and outputs, what a microcontroller
wants) makes every caller on a Linux device quantize and dequantize around the
engine. In numpy that is six array calls in and one out: 4 µs per call on a 640
value input, as long as the MLPerf Tiny autoencoder's whole int8 inference (5 µs),
which left the int8 file slower through ``edgeship.runtime`` than the float32 one.

So the TFLite backend runs a copy of the graph, built here at load, in which each
quantized input gets a float32 tensor and a ``QUANTIZE`` op in front of it and each
quantized output a ``DEQUANTIZE`` op and a float32 tensor after it; the engine's own
kernels do the conversion (the same formula, ``q = round(x / scale) + zero_point``
clamped, and ``(q - zero_point) * scale``), about 0.2 µs. The file on disk, its
sha256 and what ``Model.inputs`` / ``Model.outputs`` report are unchanged: the int8
tensors and their quantization. The cost is paid at load: the flatbuffer tools (about
5 MB resident, 15 ms to import, once per process) and about 35 ms per MB of graph;
``EDGESHIP_INT8_IO=numpy`` keeps the numpy path instead. Anything this does not handle (no flatbuffer
tools installed, per-channel or other-typed I/O, an input that is also an output, a
graph that does not load afterwards) keeps the original graph and the numpy path.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

#: I/O tensor types the engine's QUANTIZE / DEQUANTIZE ops convert from and to float32 (schema TensorType).
_INT8, _UINT8, _INT16, _FLOAT32 = 9, 3, 7, 0
_QUANTIZE, _DEQUANTIZE = 114, 6


def _tools() -> Any | None:
    try:
        return importlib.import_module("ai_edge_litert.tools.flatbuffer_utils")
    except Exception:  # tflite_runtime / tensorflow-only devices, or no flatbuffers package
        return None


def _per_tensor(tensor: Any) -> bool:
    q = tensor.quantization
    if tensor.type not in (_INT8, _UINT8, _INT16) or q is None or q.scale is None or q.zeroPoint is None:
        return False
    return len(q.scale) == 1 and len(q.zeroPoint) == 1 and float(q.scale[0]) > 0.0


def float_io_content(content: bytes) -> bytes | None:
    """``content`` with float32 inputs/outputs converted by in-graph ops, or ``None`` when not applicable.

    Applies when every input and output of the main subgraph is a per-tensor
    quantized int8, uint8 or int16 tensor; other graphs are left alone.
    """
    fb = _tools()
    if fb is None:
        return None
    try:
        model = fb.read_model_from_bytearray(bytearray(content))
        graph = model.subgraphs[0]
        ins, outs = [int(i) for i in graph.inputs], [int(o) for o in graph.outputs]
        if not ins or not outs or set(ins) & set(outs):
            return None
        if not all(_per_tensor(graph.tensors[i]) for i in ins + outs):
            return None
        edit = _GraphEdit(fb.schema_fb, model, graph)
        new_in = {i: edit.float_twin(i) for i in ins}
        new_out = {o: edit.float_twin(o) for o in outs}
        graph.operators = ([edit.op(_QUANTIZE, new_in[i], i) for i in ins] + list(graph.operators or [])
                           + [edit.op(_DEQUANTIZE, o, new_out[o]) for o in outs])
        graph.inputs = np.array([new_in[i] for i in ins], dtype=np.int32)
        graph.outputs = np.array([new_out[o] for o in outs], dtype=np.int32)
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == 0:
                for entry in sig.inputs or []:
                    entry.tensorIndex = new_in.get(entry.tensorIndex, entry.tensorIndex)
                for entry in sig.outputs or []:
                    entry.tensorIndex = new_out.get(entry.tensorIndex, entry.tensorIndex)
        return bytes(fb.convert_object_to_bytearray(model))
    except Exception:  # an unusual file: keep the original graph (the numpy path)
        return None


class _GraphEdit:
    """Adds operator codes, float32 twin tensors and single-input ops to the main subgraph of a ``ModelT``."""

    def __init__(self, schema: Any, model: Any, graph: Any) -> None:
        self.schema, self.model, self.graph = schema, model, graph
        self.codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]

    def opcode(self, builtin: int) -> int:
        """The operator-code index of ``builtin``, added when the model has none."""
        if builtin not in self.codes:
            code = self.schema.OperatorCodeT()
            code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
            self.model.operatorCodes.append(code)
            self.codes.append(builtin)
        return self.codes.index(builtin)

    def float_twin(self, index: int) -> int:
        """A new float32 tensor with tensor ``index``'s name and shape (and an empty buffer); its index."""
        src = self.graph.tensors[index]
        twin = self.schema.TensorT()
        twin.shape = np.array(src.shape, dtype=np.int32)
        if src.shapeSignature is not None:
            twin.shapeSignature = np.array(src.shapeSignature, dtype=np.int32)
        twin.type = _FLOAT32
        twin.name = src.name
        self.model.buffers.append(self.schema.BufferT())
        twin.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(twin)
        return len(self.graph.tensors) - 1

    def op(self, builtin: int, source: int, target: int) -> Any:
        made = self.schema.OperatorT()
        made.opcodeIndex = self.opcode(builtin)
        made.inputs = np.array([source], dtype=np.int32)
        made.outputs = np.array([target], dtype=np.int32)
        return made
