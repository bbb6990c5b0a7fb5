"""A model file's own tensor graph, read without TensorFlow or the ``onnx`` package.

TFLite flatbuffers are read with ``ai_edge_litert``'s generated schema module
(imported lazily); ONNX protobufs with :mod:`._onnxwire`. Both become one
:class:`Graph`: tensors (shape, dtype, bytes, constant or not, quantization)
and operators in execution order — TFLite runs a subgraph's operators in
their stored order, ONNX Runtime a topological order, for which the stored
node order (required to be topological by the ONNX spec) stands in.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import BackendMissingError, ModelFileError
from ._onnxwire import ONNX_DTYPES, parse_onnx
from ._verify import check_model_bytes

# schema TensorType -> (name, bytes per element)
TFLITE_DTYPES: dict[int, tuple[str, float]] = {
    0: ("float32", 4),
    1: ("float16", 2),
    2: ("int32", 4),
    3: ("uint8", 1),
    4: ("int64", 8),
    5: ("string", 0),
    6: ("bool", 1),
    7: ("int16", 2),
    8: ("complex64", 8),
    9: ("int8", 1),
    10: ("float64", 8),
    11: ("complex128", 16),
    12: ("uint64", 8),
    13: ("resource", 0),
    14: ("variant", 0),
    15: ("uint32", 4),
    16: ("uint16", 2),
    17: ("int4", 0.5),
    18: ("bfloat16", 2),
    19: ("int2", 0.25),
    20: ("uint4", 0.5),
    21: ("float8_e4m3fn", 1),
    22: ("float8_e5m2", 1),
}
INT_TYPES = {"int8", "uint8", "int16", "int4", "uint4", "int2"}


@dataclass
class Tensor:
    """One tensor of the graph. ``shape`` uses ``None`` for a dynamic dim."""

    name: str
    shape: list[int | None] | None
    dtype: str
    itemsize: float
    constant: bool
    scale: list[float] | None = None
    zero_point: list[int] | None = None

    def nbytes(self, batch: int = 1) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= batch if d is None else d
        return int(n * self.itemsize)


@dataclass
class Op:
    type: str
    inputs: list[str]
    outputs: list[str]


@dataclass
class Graph:
    format: str
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # output name as the user sees it (Keras / signature name) -> tensor name
    output_names: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def weights_bytes(self) -> int:
        return sum(t.nbytes() or 0 for t in self.tensors.values() if t.constant)


def read_graph(path: str | Path | None = None, fmt: str | None = None, content: bytes | None = None) -> Graph:
    """Parse a ``.tflite`` or ``.onnx`` file (or its bytes with ``fmt``) into a :class:`Graph`."""
    if content is None:
        if path is None:
            raise ModelFileError("read_graph needs a path or content. Received: neither.")
        p = Path(path)
        try:
            content = p.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"Cannot read model file {p}: {exc.strerror}.") from None
        fmt = fmt or {".tflite": "tflite", ".onnx": "onnx"}.get(p.suffix.lower())
    if fmt not in ("tflite", "onnx"):
        raise ModelFileError(
            f"Expected a .tflite or .onnx model. Received: format {fmt!r}. Rename the file or pass fmt."
        )
    check_model_bytes(content, fmt, str(path or f"<{fmt} bytes>"))
    return tflite_graph(content) if fmt == "tflite" else onnx_graph(content)


# -- TFLite ------------------------------------------------------------------
def tflite_schema() -> Any:
    """``ai_edge_litert.schema_py_generated``, imported on first use."""
    try:
        return importlib.import_module("ai_edge_litert.schema_py_generated")
    except ImportError:
        raise BackendMissingError(
            "Reading a .tflite file's structure needs ai_edge_litert's flatbuffer schema. "
            "Received: ai_edge_litert (or flatbuffers) is not installed. Fix: pip install ai-edge-litert"
        ) from None


def _opcode_names(schema: Any) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if isinstance(v, int)}


def _np(vec: Any) -> list[Any]:
    # flatbuffers returns the int 0 for an absent vector
    return [] if isinstance(vec, int) else vec.tolist()


def tflite_buffer_bytes(model: Any, content: bytes, index: int) -> bytes:
    """The bytes of buffer ``index``, whether stored inline or at an offset (large models)."""
    buf = model.Buffers(index)
    if buf is None:
        return b""
    offset, size = int(buf.Offset()), int(buf.Size())
    if offset > 1:
        return bytes(content[offset : offset + size])
    return bytes(buf.DataAsNumpy()) if buf.DataLength() else b""


def tflite_graph(content: bytes) -> Graph:
    schema = tflite_schema()
    try:
        model = schema.Model.GetRootAsModel(content, 0)
        if model.SubgraphsLength() < 1:
            raise ModelFileError("TFLite model has no subgraph. Re-export the model.")
        names = _opcode_names(schema)
        g = Graph(format="tflite")
        sub = model.Subgraphs(0)
        tensor_names = _tflite_tensors(model, sub, g)
        g.ops = [_tflite_op(model, sub.Operators(i), names, tensor_names) for i in range(sub.OperatorsLength())]
        g.inputs = [tensor_names[j] for j in _np(sub.InputsAsNumpy())]
        g.outputs = [tensor_names[j] for j in _np(sub.OutputsAsNumpy())]
        for s in range(model.SignatureDefsLength()):
            sig = model.SignatureDefs(s)
            for j in range(sig.OutputsLength()):
                out = sig.Outputs(j)
                g.output_names[(out.Name() or b"").decode()] = tensor_names[out.TensorIndex()]
            break  # the default signature only
        for m in range(model.MetadataLength()):
            meta = model.Metadata(m)
            key = (meta.Name() or b"").decode(errors="replace")
            raw = tflite_buffer_bytes(model, content, meta.Buffer())
            g.metadata[key] = raw.decode("utf-8", errors="replace")
        g.extra["subgraphs"] = model.SubgraphsLength()
        return g
    except ModelFileError:
        raise
    except Exception as exc:  # flatbuffers raises plain errors on garbage
        raise ModelFileError(
            f"Cannot parse the TFLite flatbuffer: {exc!r}. Expected a valid .tflite; re-export it."
        ) from None


def _tflite_tensors(model: Any, sub: Any, g: Graph) -> list[str]:
    """Add the subgraph's tensors to ``g.tensors``; returns their (made unique) names by index."""
    buffers_n = model.BuffersLength()
    tensor_names: list[str] = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        name = (t.Name() or b"").decode(errors="replace") or f"tensor_{i}"
        if name in g.tensors:  # names are not unique in TFLite; keys must be
            name = f"{name}#{i}"
        tensor_names.append(name)
        g.tensors[name] = _tflite_tensor(model, t, name, buffers_n)
    return tensor_names


def _tflite_tensor(model: Any, t: Any, name: str, buffers_n: int) -> Tensor:
    shape = _np(t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else _np(t.ShapeAsNumpy())
    dtype, itemsize = TFLITE_DTYPES.get(t.Type(), (f"tflite_type_{t.Type()}", 0))
    b = t.Buffer()
    buf = model.Buffers(b) if 0 < b < buffers_n else None
    constant = buf is not None and (buf.DataLength() > 0 or int(buf.Offset()) > 1)
    q = t.Quantization()
    scale = zp = None
    if q is not None and q.ScaleLength():
        scale = [float(s) for s in _np(q.ScaleAsNumpy())]
        zp = [int(z) for z in _np(q.ZeroPointAsNumpy())] if q.ZeroPointLength() else [0] * len(scale)
    return Tensor(
        name=name,
        shape=[None if int(d) < 0 else int(d) for d in shape],
        dtype=dtype,
        itemsize=itemsize,
        constant=constant,
        scale=scale,
        zero_point=zp,
    )


def _tflite_op(model: Any, op: Any, names: dict[int, str], tensor_names: list[str]) -> Op:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    op_type = names.get(builtin, f"BUILTIN_{builtin}")
    if op_type == "CUSTOM":
        op_type = "CUSTOM:" + (code.CustomCode() or b"").decode(errors="replace")
    ins = [tensor_names[j] for j in _np(op.InputsAsNumpy()) if j >= 0]
    outs = [tensor_names[j] for j in _np(op.OutputsAsNumpy()) if j >= 0]
    return Op(op_type, ins, outs)


# -- ONNX --------------------------------------------------------------------
def onnx_graph(content: bytes) -> Graph:
    m = parse_onnx(content)
    g = Graph(format="onnx", metadata=dict(m.metadata))
    g.extra.update(opsets=m.opsets, producer=m.producer, ir_version=m.ir_version)

    def add(t: Any, constant: bool) -> None:
        dtype, itemsize = ONNX_DTYPES.get(t.elem_type, (f"onnx_type_{t.elem_type}", 0))
        g.tensors[t.name] = Tensor(t.name, None if t.shape is None else list(t.shape), dtype, itemsize, constant)

    for t in m.initializers.values():
        add(t, True)
    for t in [*m.inputs, *m.outputs, *m.value_info.values()]:
        if t.name not in g.tensors:
            add(t, False)
    for n in m.nodes:
        if n.op_type == "Constant" and n.const is not None and n.outputs:
            n.const.name = n.outputs[0]
            add(n.const, True)
        for out in n.outputs:
            if out and out not in g.tensors:  # produced but its shape is not recorded
                g.tensors[out] = Tensor(out, None, "unknown", 0, False)
        g.ops.append(
            Op(
                n.op_type if not n.domain or n.domain == "ai.onnx" else f"{n.domain}.{n.op_type}",
                [i for i in n.inputs if i],
                [o for o in n.outputs if o],
            )
        )
    # Quantization of QDQ models: a DequantizeLinear's scale/zero point describe its input.
    for n in m.nodes:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.inputs) >= 2:
            scale = m.initializers.get(n.inputs[1])
            target = n.outputs[0] if n.op_type == "QuantizeLinear" else n.inputs[0]
            if scale is not None and target in g.tensors:
                g.tensors[target].scale = _values(scale)
    g.inputs = [t.name for t in m.inputs if t.name not in m.initializers]
    g.outputs = [t.name for t in m.outputs]
    g.output_names = {name: name for name in g.outputs}
    return g


def _values(t: Any) -> list[float]:
    import numpy as np

    if t.raw and t.elem_type in (1, 10, 11):
        dt = {1: np.float32, 10: np.float16, 11: np.float64}[t.elem_type]
        return [float(v) for v in np.frombuffer(t.raw, dtype=dt)]
    return [float(v) for v in t.float_data]
