"""A minimal reader of the ONNX protobuf wire format, for the device side.

The runtime must describe ``.onnx`` files (inspect, RAM estimate) without the
``onnx`` package. Only the fields edgeship needs are decoded: graph nodes,
initializers, value infos (shapes), opsets and ``metadata_props``. Field
numbers are those of ``onnx/onnx.proto`` (IR version 3 and later).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._errors import ModelFileError

# TensorProto.DataType -> (numpy-style name, bytes per element)
ONNX_DTYPES: dict[int, tuple[str, float]] = {
    1: ("float32", 4),
    2: ("uint8", 1),
    3: ("int8", 1),
    4: ("uint16", 2),
    5: ("int16", 2),
    6: ("int32", 4),
    7: ("int64", 8),
    8: ("string", 0),
    9: ("bool", 1),
    10: ("float16", 2),
    11: ("float64", 8),
    12: ("uint32", 4),
    13: ("uint64", 8),
    16: ("bfloat16", 2),
    17: ("float8e4m3fn", 1),
    18: ("float8e4m3fnuz", 1),
    19: ("float8e5m2", 1),
    20: ("float8e5m2fnuz", 1),
    21: ("uint4", 0.5),
    22: ("int4", 0.5),
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelFileError("Truncated ONNX protobuf (varint runs past the end). Re-export the model.")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)``; length-delimited values as bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield num, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ModelFileError("Truncated ONNX protobuf (field runs past the end). Re-export the model.")
            yield num, wire, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            yield num, wire, int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            yield num, wire, int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise ModelFileError(f"Not an ONNX protobuf: unknown wire type {wire}. Expected a .onnx model file.")


def _packed_ints(value: int | bytes) -> list[int]:
    if isinstance(value, int):
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass
class OnnxTensor:
    """An initializer or a typed value: name, element type, shape (``None`` = symbolic dim)."""

    name: str
    elem_type: int = 0
    shape: list[int | None] | None = None
    raw: bytes = b""
    float_data: list[float] = field(default_factory=list)

    @property
    def dtype(self) -> str:
        return ONNX_DTYPES.get(self.elem_type, (f"onnx_type_{self.elem_type}", 0))[0]

    def nbytes(self, batch: int = 1) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= batch if d is None else d
        return int(n * ONNX_DTYPES.get(self.elem_type, ("", 0))[1])


@dataclass
class OnnxNode:
    op_type: str
    domain: str
    name: str
    inputs: list[str]
    outputs: list[str]
    const: OnnxTensor | None = None  # the value of a Constant node


@dataclass
class OnnxModel:
    ir_version: int = 0
    producer: str = ""
    opsets: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    nodes: list[OnnxNode] = field(default_factory=list)
    initializers: dict[str, OnnxTensor] = field(default_factory=dict)
    inputs: list[OnnxTensor] = field(default_factory=list)
    outputs: list[OnnxTensor] = field(default_factory=list)
    value_info: dict[str, OnnxTensor] = field(default_factory=dict)


def _tensor(buf: bytes) -> OnnxTensor:
    t = OnnxTensor(name="", shape=[])
    for num, _, v in fields(buf):
        if num == 1:
            t.shape.extend(_signed64(d) for d in _packed_ints(v))  # type: ignore[union-attr]
        elif num == 2:
            t.elem_type = int(v)  # type: ignore[arg-type]
        elif num == 8:
            t.name = bytes(v).decode()  # type: ignore[arg-type]
        elif num == 9:
            t.raw = bytes(v)  # type: ignore[arg-type]
        elif num == 4:  # float_data, packed or not
            if isinstance(v, bytes):
                t.float_data.extend(struct.unpack(f"<{len(v) // 4}f", v))
            else:
                t.float_data.append(struct.unpack("<f", v.to_bytes(4, "little"))[0])
    return t


def _value_info(buf: bytes) -> OnnxTensor:
    t = OnnxTensor(name="")
    for num, _, v in fields(buf):
        if num == 1:
            t.name = bytes(v).decode()  # type: ignore[arg-type]
        elif num == 2:
            for tnum, _, tv in fields(v):  # type: ignore[arg-type]
                if tnum != 1:  # only tensor_type
                    continue
                for snum, _, sv in fields(tv):  # type: ignore[arg-type]
                    if snum == 1:
                        t.elem_type = int(sv)  # type: ignore[arg-type]
                    elif snum == 2:
                        t.shape = []
                        for dnum, _, dv in fields(sv):  # type: ignore[arg-type]
                            if dnum != 1:
                                continue
                            dim: int | None = None
                            for knum, _, kv in fields(dv):  # type: ignore[arg-type]
                                if knum == 1:
                                    dim = _signed64(int(kv))  # type: ignore[arg-type]
                            t.shape.append(dim if dim is not None and dim >= 0 else None)
    return t


def _node(buf: bytes) -> OnnxNode:
    n = OnnxNode(op_type="", domain="", name="", inputs=[], outputs=[])
    for num, _, v in fields(buf):
        if num == 1:
            n.inputs.append(bytes(v).decode())  # type: ignore[arg-type]
        elif num == 2:
            n.outputs.append(bytes(v).decode())  # type: ignore[arg-type]
        elif num == 3:
            n.name = bytes(v).decode()  # type: ignore[arg-type]
        elif num == 4:
            n.op_type = bytes(v).decode()  # type: ignore[arg-type]
        elif num == 7:
            n.domain = bytes(v).decode()  # type: ignore[arg-type]
        elif num == 5 and n.const is None:
            attr_name, attr_t = "", None
            for anum, _, av in fields(v):  # type: ignore[arg-type]
                if anum == 1:
                    attr_name = bytes(av).decode()  # type: ignore[arg-type]
                elif anum == 5:
                    attr_t = _tensor(av)  # type: ignore[arg-type]
            if attr_name == "value" and attr_t is not None:
                n.const = attr_t
    return n


def parse_onnx(content: bytes, *, graph: bool = True) -> OnnxModel:
    """Decode an ONNX ``ModelProto``; with ``graph=False`` only its header and metadata."""
    m = OnnxModel()
    for num, _, v in fields(content):
        if num == 1:
            m.ir_version = int(v)  # type: ignore[arg-type]
        elif num == 2:
            m.producer = bytes(v).decode(errors="replace")  # type: ignore[arg-type]
        elif num == 8:
            domain, version = "", 0
            for onum, _, ov in fields(v):  # type: ignore[arg-type]
                if onum == 1:
                    domain = bytes(ov).decode()  # type: ignore[arg-type]
                elif onum == 2:
                    version = int(ov)  # type: ignore[arg-type]
            m.opsets[domain or "ai.onnx"] = version
        elif num == 14:
            key = value = ""
            for enum, _, ev in fields(v):  # type: ignore[arg-type]
                if enum == 1:
                    key = bytes(ev).decode()  # type: ignore[arg-type]
                elif enum == 2:
                    value = bytes(ev).decode()  # type: ignore[arg-type]
            m.metadata[key] = value
        elif num == 7 and graph:
            for gnum, _, gv in fields(v):  # type: ignore[arg-type]
                if gnum == 1:
                    m.nodes.append(_node(gv))  # type: ignore[arg-type]
                elif gnum == 5:
                    t = _tensor(gv)  # type: ignore[arg-type]
                    m.initializers[t.name] = t
                elif gnum == 11:
                    m.inputs.append(_value_info(gv))  # type: ignore[arg-type]
                elif gnum == 12:
                    m.outputs.append(_value_info(gv))  # type: ignore[arg-type]
                elif gnum == 13:
                    t = _value_info(gv)  # type: ignore[arg-type]
                    m.value_info[t.name] = t
    if m.ir_version == 0:
        raise ModelFileError("Not an ONNX model: no ir_version field. Expected a .onnx ModelProto; re-export it.")
    return m
