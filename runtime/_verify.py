"""Checks on model bytes before an engine touches them.

LiteRT's Python path builds its interpreter from a flatbuffer without running the
flatbuffers verifier, and crafted files crash the process (tensorflow#115308,
LiteRT#10080). :func:`check_model_bytes` therefore walks the TFLite flatbuffer
itself, in pure Python, the way the C++ ``Verifier`` would: the root offset,
every table's vtable, every vector and string inside the buffer, with the
alignment flatbuffers requires; then the references LiteRT follows without
checking: tensor, buffer, opcode and subgraph indices, buffer sizes against
tensor shapes, external data ranges. The schema slots come from LiteRT's
``schema.fbs`` (``ai_edge_litert/schema_py_generated.py``; a test pins them).

For ONNX it walks the protobuf wire format of the ``ModelProto`` and its
``GraphProto`` (every field tag, varint and length inside the buffer).

What no static check can promise (a kernel's own assumptions), the child-process
probe in :mod:`._probe` covers: bytes that pass here and were never seen before
are loaded and run once in a throw-away process first.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from ._errors import ModelFileError

TFLITE_IDENTIFIER = b"TFL3"
_FLATBUFFER_MAX = (1 << 31) - 1
# A single tensor above this many bytes is not an edge model; it is a corrupt
# shape that would make the engine try a huge allocation.
MAX_TENSOR_BYTES = 1 << 28
_MAX_DEPTH = 64

# Element sizes of tflite::TensorType values (schema.fbs); None = variable-size
# or packed (string, resource, variant, int4/int2/uint4), checked differently.
_TYPE_BYTES: dict[int, float | None] = {
    0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16,
    12: 8, 13: None, 14: None, 15: 4, 16: 2, 17: 0.5, 18: 2, 19: 0.25, 20: 0.5, 21: 1, 22: 1,
}

# Vtable slots (byte offsets into the vtable) of the tables LiteRT reads, as in
# schema_py_generated.py: `self._tab.Offset(N)`.
MODEL = {"version": 4, "operator_codes": 6, "subgraphs": 8, "description": 10, "buffers": 12,
         "metadata_buffer": 14, "metadata": 16, "signature_defs": 18,
         "external_buffer_groups": 20, "external_buffers": 22}
OPERATOR_CODE = {"deprecated_builtin_code": 4, "custom_code": 6, "version": 8, "builtin_code": 10}
SUBGRAPH = {"tensors": 4, "inputs": 6, "outputs": 8, "operators": 10, "name": 12}
TENSOR = {"shape": 4, "type": 6, "buffer": 8, "name": 10, "quantization": 12, "is_variable": 14,
          "sparsity": 16, "shape_signature": 18, "has_rank": 20, "variant_tensors": 22}
OPERATOR = {"opcode_index": 4, "inputs": 6, "outputs": 8, "builtin_options_type": 10, "builtin_options": 12,
            "custom_options": 14, "mutating_variable_inputs": 18, "intermediates": 20,
            "large_custom_options_offset": 22, "large_custom_options_size": 24,
            "builtin_options_2_type": 26, "builtin_options_2": 28}
BUFFER = {"data": 4, "offset": 6, "size": 8}
QUANTIZATION = {"min": 4, "max": 6, "scale": 8, "zero_point": 10, "details_type": 12, "details": 14,
                "quantized_dimension": 16}
SPARSITY = {"traversal_order": 4, "block_map": 6, "dim_metadata": 8}
DIM_METADATA = {"format": 4, "dense_size": 6, "array_segments_type": 8, "array_segments": 10,
                "array_indices_type": 12, "array_indices": 14}
METADATA = {"name": 4, "buffer": 6}
SIGNATURE_DEF = {"inputs": 4, "outputs": 6, "signature_key": 8, "subgraph_index": 12}
TENSOR_MAP = {"name": 4, "tensor_index": 6}
# BuiltinOptions union members whose fields LiteRT follows: vectors, subgraph indices.
OPTIONS_INT_VECTORS = {3: (6, 8), 17: (4,), 30: (4,)}  # ConcatEmbeddings, Reshape, Squeeze
OPTIONS_SUBGRAPHS = {92: (4, 6), 93: (4, 6), 103: (4,)}  # If, While, CallOnce
# SparseIndexVector union: Int32Vector, Uint16Vector, Uint8Vector; `values` at slot 4.
SPARSE_VECTOR_ELEM = {1: 4, 2: 2, 3: 1}


class _Bad(Exception):
    """Internal: the structural walk found a problem (becomes ModelFileError)."""


class _Flatbuffer:
    """Bounds-checked reads of a flatbuffer, mirroring flatbuffers::Verifier."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)

    def _need(self, pos: int, size: int, what: str, align: int = 1) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise _Bad(f"{what} at byte {pos} (+{size}) lies outside the {self.n}-byte file")
        if align > 1 and pos % align:
            raise _Bad(f"{what} at byte {pos} is not {align}-byte aligned")

    def u8(self, pos: int) -> int:
        return self.buf[pos]

    def u16(self, pos: int) -> int:
        return struct.unpack_from("<H", self.buf, pos)[0]

    def i32(self, pos: int) -> int:
        return struct.unpack_from("<i", self.buf, pos)[0]

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.buf, pos)[0]

    def table(self, pos: int, what: str) -> tuple[int, int, int]:
        """Verify the table at ``pos``; return (pos, vtable pos, vtable size)."""
        self._need(pos, 4, what, 4)
        vt = pos - self.i32(pos)
        self._need(vt, 4, f"{what} vtable", 2)
        vt_size, obj_size = self.u16(vt), self.u16(vt + 2)
        if vt_size < 4 or vt_size % 2:
            raise _Bad(f"{what} vtable at byte {vt} has invalid size {vt_size}")
        self._need(vt, vt_size, f"{what} vtable")
        self._need(pos, obj_size, f"{what} object")
        for slot in range(4, vt_size, 2):
            off = self.u16(vt + slot)
            if off and (off < 4 or off >= max(obj_size, 4)):
                raise _Bad(f"{what} field {slot} at offset {off} lies outside its {obj_size}-byte object")
        return pos, vt, vt_size

    def field(self, tab: tuple[int, int, int], slot: int) -> int:
        """Absolute position of a field, or 0 when absent."""
        pos, vt, vt_size = tab
        if slot >= vt_size:
            return 0
        off = self.u16(vt + slot)
        return pos + off if off else 0

    def scalar(self, tab: tuple[int, int, int], slot: int, fmt: str, default: int = 0) -> int:
        p = self.field(tab, slot)
        if not p:
            return default
        size = struct.calcsize(fmt)
        self._need(p, size, f"field {slot}", size)
        return struct.unpack_from(fmt, self.buf, p)[0]

    def ref(self, tab: tuple[int, int, int], slot: int, what: str) -> int:
        """Follow an offset field; 0 when absent."""
        p = self.field(tab, slot)
        if not p:
            return 0
        self._need(p, 4, what, 4)
        return p + self.u32(p)

    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """Verify a vector at ``pos``; return (first element pos, length)."""
        self._need(pos, 4, what, 4)
        length = self.u32(pos)
        if length * elem > self.n:
            raise _Bad(f"{what} claims {length} elements, more than the file holds")
        self._need(pos + 4, length * elem, what, min(max(int(elem), 1), 8) if elem in (2, 4, 8) else 1)
        return pos + 4, length

    def vector_field(self, tab: tuple[int, int, int], slot: int, elem: int, what: str) -> tuple[int, int]:
        pos = self.ref(tab, slot, what)
        return self.vector(pos, elem, what) if pos else (0, 0)

    def string_field(self, tab: tuple[int, int, int], slot: int, what: str) -> str | None:
        pos = self.ref(tab, slot, what)
        if not pos:
            return None
        start, length = self.vector(pos, 1, what)
        self._need(start + length, 1, f"{what} terminator")
        if self.buf[start + length] != 0:
            raise _Bad(f"{what} at byte {pos} is not NUL-terminated")
        try:
            return self.buf[start : start + length].decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{what} at byte {pos} is not valid UTF-8") from None

    def int_array(self, tab: tuple[int, int, int], slot: int, what: str, dtype: str = "<i4") -> np.ndarray:
        size = np.dtype(dtype).itemsize
        start, length = self.vector_field(tab, slot, size, what)
        if not length:
            return np.empty(0, dtype=dtype)
        return np.frombuffer(self.buf, dtype=dtype, count=length, offset=start)

    def tables(self, tab: tuple[int, int, int], slot: int, what: str) -> list[tuple[int, int, int]]:
        start, length = self.vector_field(tab, slot, 4, what)
        out = []
        for i in range(length):
            p = start + 4 * i
            out.append(self.table(p + self.u32(p), f"{what}[{i}]"))
        return out

    def union_table(self, tab: tuple[int, int, int], type_slot: int, slot: int, what: str) -> tuple[int, tuple[int, int, int] | None]:
        kind = self.scalar(tab, type_slot, "<B")
        pos = self.ref(tab, slot, what)
        if not pos:
            return kind, None
        return kind, self.table(pos, what)


def _check_indices(values: np.ndarray, limit: int, what: str, allow_optional: bool = False) -> None:
    if values.size == 0:
        return
    low = -1 if allow_optional else 0
    lo, hi = int(values.min()), int(values.max())
    if lo < low or hi >= limit:
        bad = lo if lo < low else hi
        raise _Bad(f"{what} refers to index {bad}; valid indices are {low}..{limit - 1}")


def _tensor_bytes(shape: np.ndarray, ttype: int, what: str) -> float | None:
    if (shape < 0).any():
        raise _Bad(f"{what} has a negative dimension {shape.tolist()}")
    elem = _TYPE_BYTES.get(ttype, -1)
    if elem == -1:
        raise _Bad(f"{what} has unknown tensor type {ttype}")
    if elem is None:
        return None
    count = 1
    for d in shape.tolist():
        count *= int(d)
        if count * elem > MAX_TENSOR_BYTES:
            raise _Bad(f"{what} shape {shape.tolist()} needs more than {MAX_TENSOR_BYTES >> 20} MiB")
    return count * elem


def verify_tflite(buf: bytes) -> dict[str, Any]:
    """Structurally verify a TFLite flatbuffer; return a small summary.

    Raises:
        ModelFileError: the bytes are not a well-formed TFLite model.
    """
    try:
        return _verify_tflite(buf)
    except _Bad as exc:
        raise ModelFileError(
            f"Expected a valid TFLite flatbuffer. Received: {exc}. The file is corrupt or crafted; "
            "re-export the model."
        ) from None
    except (struct.error, ValueError, IndexError, OverflowError) as exc:  # a read ran off the end
        raise ModelFileError(
            f"Expected a valid TFLite flatbuffer. Received: bytes that do not parse ({exc}). "
            "Re-export the model."
        ) from None


def _verify_tflite(buf: bytes) -> dict[str, Any]:
    fb = _Flatbuffer(buf)
    model = _tflite_model(fb, buf)
    buffers, buffer_sizes = _tflite_buffers(fb, model)
    op_codes = _tflite_operator_codes(fb, model)
    tensor_counts, n_ops = _tflite_subgraphs(fb, model, buffer_sizes, len(op_codes))
    _check_indices(fb.int_array(model, MODEL["metadata_buffer"], "Model.metadata_buffer"), len(buffers), "Model.metadata_buffer")
    for i, md in enumerate(fb.tables(model, MODEL["metadata"], "Model.metadata")):
        fb.string_field(md, METADATA["name"], f"Metadata[{i}].name")
        idx = fb.scalar(md, METADATA["buffer"], "<I")
        if idx >= len(buffers):
            raise _Bad(f"Metadata[{i}] refers to buffer {idx}; the model has {len(buffers)}")
    _tflite_signatures(fb, model, tensor_counts)
    for key in ("external_buffer_groups", "external_buffers"):
        fb.tables(model, MODEL[key], f"Model.{key}")
    return {"subgraphs": len(tensor_counts), "operators": n_ops, "tensors": sum(tensor_counts), "buffers": len(buffers)}


def _tflite_model(fb: _Flatbuffer, buf: bytes) -> tuple[int, int, int]:
    """The root ``Model`` table, after the size, identifier and schema version checks."""
    if fb.n > _FLATBUFFER_MAX:
        raise _Bad(f"a {fb.n}-byte file; flatbuffers are limited to 2 GiB")
    fb._need(0, 8, "file header")
    if buf[4:8] != TFLITE_IDENTIFIER:
        raise _Bad(f"identifier {bytes(buf[4:8])!r} instead of {TFLITE_IDENTIFIER!r} at byte 4")
    model = fb.table(fb.u32(0), "Model")
    version = fb.scalar(model, MODEL["version"], "<I")
    if version != 3:
        raise _Bad(f"schema version {version}; LiteRT reads version 3")
    fb.string_field(model, MODEL["description"], "Model.description")
    return model


def _tflite_buffers(fb: _Flatbuffer, model: tuple[int, int, int]) -> tuple[list[tuple[int, int, int]], list[int]]:
    """``Model.buffers`` and each buffer's byte count (inline data, or data stored after the flatbuffer)."""
    buffers = fb.tables(model, MODEL["buffers"], "Model.buffers")
    if not buffers:
        raise _Bad("a model without buffers (the converter always writes the empty buffer 0)")
    buffer_sizes: list[int] = []
    for i, b in enumerate(buffers):
        start, length = fb.vector_field(b, BUFFER["data"], 1, f"Buffer[{i}].data")
        offset = fb.scalar(b, BUFFER["offset"], "<Q")
        size = fb.scalar(b, BUFFER["size"], "<Q")
        if offset > 1:  # data stored after the flatbuffer (models over 2 GiB)
            if offset + size > fb.n:
                raise _Bad(f"Buffer[{i}] points at bytes {offset}..{offset + size} outside the file")
            length = size
        buffer_sizes.append(length)
    return buffers, buffer_sizes


def _tflite_operator_codes(fb: _Flatbuffer, model: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    op_codes = fb.tables(model, MODEL["operator_codes"], "Model.operator_codes")
    for i, oc in enumerate(op_codes):
        fb.scalar(oc, OPERATOR_CODE["deprecated_builtin_code"], "<b")
        fb.scalar(oc, OPERATOR_CODE["builtin_code"], "<i")
        fb.scalar(oc, OPERATOR_CODE["version"], "<i")
        fb.string_field(oc, OPERATOR_CODE["custom_code"], f"OperatorCode[{i}].custom_code")
    return op_codes


def _tflite_subgraphs(fb: _Flatbuffer, model: tuple[int, int, int], buffer_sizes: list[int],
                      n_codes: int) -> tuple[list[int], int]:
    """Every subgraph's tensors, inputs, outputs and operators; returns the tensor count per subgraph and the op count."""
    subgraphs = fb.tables(model, MODEL["subgraphs"], "Model.subgraphs")
    if not subgraphs:
        raise _Bad("a model without subgraphs")
    n_sub = len(subgraphs)
    tensor_counts: list[int] = []
    n_ops = 0
    for s, sg in enumerate(subgraphs):
        where = f"SubGraph[{s}]"
        fb.string_field(sg, SUBGRAPH["name"], f"{where}.name")
        tensors = fb.tables(sg, SUBGRAPH["tensors"], f"{where}.tensors")
        n_t = len(tensors)
        tensor_counts.append(n_t)
        for t, tt in enumerate(tensors):
            _verify_tensor(fb, tt, f"{where}.tensors[{t}]", buffer_sizes)
        _check_indices(fb.int_array(sg, SUBGRAPH["inputs"], f"{where}.inputs"), n_t, f"{where}.inputs")
        _check_indices(fb.int_array(sg, SUBGRAPH["outputs"], f"{where}.outputs"), n_t, f"{where}.outputs")
        ops = fb.tables(sg, SUBGRAPH["operators"], f"{where}.operators")
        n_ops += len(ops)
        for o, op in enumerate(ops):
            _verify_operator(fb, op, f"{where}.operators[{o}]", n_codes, n_t, n_sub)
    return tensor_counts, n_ops


def _tflite_signatures(fb: _Flatbuffer, model: tuple[int, int, int], tensor_counts: list[int]) -> None:
    """Each ``SignatureDef`` names an existing subgraph and, in it, existing tensors."""
    n_sub = len(tensor_counts)
    for i, sd in enumerate(fb.tables(model, MODEL["signature_defs"], "Model.signature_defs")):
        fb.string_field(sd, SIGNATURE_DEF["signature_key"], f"SignatureDef[{i}].signature_key")
        sub = fb.scalar(sd, SIGNATURE_DEF["subgraph_index"], "<I")
        if sub >= n_sub:
            raise _Bad(f"SignatureDef[{i}] refers to subgraph {sub}; the model has {n_sub}")
        for key in ("inputs", "outputs"):
            for j, tm in enumerate(fb.tables(sd, SIGNATURE_DEF[key], f"SignatureDef[{i}].{key}")):
                fb.string_field(tm, TENSOR_MAP["name"], f"SignatureDef[{i}].{key}[{j}].name")
                idx = fb.scalar(tm, TENSOR_MAP["tensor_index"], "<I")
                if idx >= tensor_counts[sub]:
                    raise _Bad(f"SignatureDef[{i}].{key}[{j}] refers to tensor {idx}; subgraph {sub} has {tensor_counts[sub]}")


def _verify_tensor(fb: _Flatbuffer, tt: tuple[int, int, int], where: str, buffer_sizes: list[int]) -> None:
    shape = fb.int_array(tt, TENSOR["shape"], f"{where}.shape")
    signature = fb.int_array(tt, TENSOR["shape_signature"], f"{where}.shape_signature")
    if signature.size and signature.size != shape.size:
        raise _Bad(f"{where} shape_signature rank {signature.size} differs from shape rank {shape.size}")
    if (signature < -1).any():
        raise _Bad(f"{where} shape_signature {signature.tolist()} has a dimension below -1")
    if signature.size and ((signature != -1) & (signature != shape)).any():
        raise _Bad(f"{where} shape_signature {signature.tolist()} contradicts its shape {shape.tolist()}")
    ttype = fb.scalar(tt, TENSOR["type"], "<b")
    fb.string_field(tt, TENSOR["name"], f"{where}.name")
    buf_idx = fb.scalar(tt, TENSOR["buffer"], "<I")
    if buf_idx >= len(buffer_sizes):
        raise _Bad(f"{where} refers to buffer {buf_idx}; the model has {len(buffer_sizes)}")
    sparse = fb.ref(tt, TENSOR["sparsity"], f"{where}.sparsity")
    if sparse:
        _verify_sparsity(fb, fb.table(sparse, f"{where}.sparsity"), where)
    need = _tensor_bytes(shape, ttype, where)
    have = buffer_sizes[buf_idx]
    if have and need is not None and not sparse and have < need:
        raise _Bad(f"{where} shape {shape.tolist()} needs {int(need)} bytes but its buffer {buf_idx} holds {have}")
    q = fb.ref(tt, TENSOR["quantization"], f"{where}.quantization")
    if q:
        qt = fb.table(q, f"{where}.quantization")
        for key, fmt in (("min", "<f4"), ("max", "<f4"), ("scale", "<f4"), ("zero_point", "<i8")):
            fb.int_array(qt, QUANTIZATION[key], f"{where}.quantization.{key}", fmt)
        scale = fb.int_array(qt, QUANTIZATION["scale"], f"{where}.quantization.scale", "<f4")
        zps = fb.int_array(qt, QUANTIZATION["zero_point"], f"{where}.quantization.zero_point", "<i8")
        qdim = fb.scalar(qt, QUANTIZATION["quantized_dimension"], "<i")
        if scale.size > 1:
            if not 0 <= qdim < max(shape.size, 1) or (shape.size and scale.size != int(shape[qdim])):
                raise _Bad(f"{where} has {scale.size} per-channel scales for dimension {qdim} of shape {shape.tolist()}")
            if zps.size not in (0, scale.size):
                raise _Bad(f"{where} has {zps.size} zero points for {scale.size} scales")
        fb.union_table(qt, QUANTIZATION["details_type"], QUANTIZATION["details"], f"{where}.quantization.details")
    for i, vt in enumerate(fb.tables(tt, TENSOR["variant_tensors"], f"{where}.variant_tensors")):
        fb.int_array(vt, 4, f"{where}.variant_tensors[{i}].shape")


def _verify_sparsity(fb: _Flatbuffer, st: tuple[int, int, int], where: str) -> None:
    fb.int_array(st, SPARSITY["traversal_order"], f"{where}.sparsity.traversal_order")
    fb.int_array(st, SPARSITY["block_map"], f"{where}.sparsity.block_map")
    for i, dm in enumerate(fb.tables(st, SPARSITY["dim_metadata"], f"{where}.sparsity.dim_metadata")):
        for t_slot, v_slot in ((DIM_METADATA["array_segments_type"], DIM_METADATA["array_segments"]),
                               (DIM_METADATA["array_indices_type"], DIM_METADATA["array_indices"])):
            kind, vt = fb.union_table(dm, t_slot, v_slot, f"{where}.sparsity.dim_metadata[{i}]")
            if vt is not None:
                if kind not in SPARSE_VECTOR_ELEM:
                    raise _Bad(f"{where} sparse index vector has unknown type {kind}")
                fb.vector_field(vt, 4, SPARSE_VECTOR_ELEM[kind], f"{where}.sparsity.dim_metadata[{i}].values")


def _verify_operator(fb: _Flatbuffer, op: tuple[int, int, int], where: str, n_codes: int, n_t: int, n_sub: int) -> None:
    opcode = fb.scalar(op, OPERATOR["opcode_index"], "<I")
    if opcode >= n_codes:
        raise _Bad(f"{where} uses opcode {opcode}; the model has {n_codes} operator codes")
    for key in ("inputs", "outputs", "intermediates"):
        _check_indices(fb.int_array(op, OPERATOR[key], f"{where}.{key}"), n_t, f"{where}.{key}", allow_optional=True)
    fb.vector_field(op, OPERATOR["custom_options"], 1, f"{where}.custom_options")
    fb.vector_field(op, OPERATOR["mutating_variable_inputs"], 1, f"{where}.mutating_variable_inputs")
    big_off = fb.scalar(op, OPERATOR["large_custom_options_offset"], "<Q")
    big_size = fb.scalar(op, OPERATOR["large_custom_options_size"], "<Q")
    if big_off > 1 and big_off + big_size > fb.n:
        raise _Bad(f"{where} custom options at bytes {big_off}..{big_off + big_size} lie outside the file")
    kind, opts = fb.union_table(op, OPERATOR["builtin_options_type"], OPERATOR["builtin_options"], f"{where}.builtin_options")
    if opts is not None:
        for slot in OPTIONS_INT_VECTORS.get(kind, ()):
            fb.vector_field(opts, slot, 4, f"{where}.builtin_options")
        for slot in OPTIONS_SUBGRAPHS.get(kind, ()):
            idx = fb.scalar(opts, slot, "<i")
            if not 0 <= idx < n_sub:
                raise _Bad(f"{where} refers to subgraph {idx}; the model has {n_sub}")
    fb.union_table(op, OPERATOR["builtin_options_2_type"], OPERATOR["builtin_options_2"], f"{where}.builtin_options_2")


# -- ONNX: protobuf wire format ---------------------------------------------

def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Bad(f"a varint at byte {pos} runs past its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _wire_fields(buf: bytes, start: int, end: int, what: str) -> dict[int, list[tuple[int, int]]]:
    """Walk one protobuf message; return {field number: [(start, end) of each value]}."""
    fields: dict[int, list[tuple[int, int]]] = {}
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Bad(f"{what} has field number 0 at byte {pos}")
        if wire == 0:
            _, nxt = _varint(buf, pos, end)
        elif wire == 1:
            nxt = pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            nxt = pos + length
        elif wire == 5:
            nxt = pos + 4
        else:
            raise _Bad(f"{what} has unsupported wire type {wire} at byte {pos}")
        if nxt > end:
            raise _Bad(f"{what} field {number} at byte {pos} runs past the end of its message")
        fields.setdefault(number, []).append((pos, nxt))
        pos = nxt
    return fields


def verify_onnx(buf: bytes) -> dict[str, Any]:
    """Check an ONNX ModelProto's wire format, its graph and its node list.

    Raises:
        ModelFileError: the bytes are not a well-formed ONNX model.
    """
    try:
        top = _wire_fields(buf, 0, len(buf), "ModelProto")
        if 1 not in top:
            raise _Bad("no ir_version (field 1)")
        if 7 not in top or len(top[7]) != 1:
            raise _Bad("no single graph (field 7)")
        if 8 not in top:
            raise _Bad("no opset_import (field 8)")
        g0, g1 = top[7][0]
        graph = _wire_fields(buf, g0, g1, "GraphProto")
        for number in (1, 11, 12):  # node, input, output
            for i, (s, e) in enumerate(graph.get(number, [])):
                _wire_fields(buf, s, e, f"GraphProto field {number}[{i}]")
        if not graph.get(12):
            raise _Bad("a graph without outputs")
        return {"nodes": len(graph.get(1, [])), "initializers": len(graph.get(5, []))}
    except _Bad as exc:
        raise ModelFileError(
            f"Expected a valid ONNX model (protobuf ModelProto). Received: {exc}. The file is corrupt "
            "or truncated; re-export the model."
        ) from None


def check_model_bytes(content: bytes, fmt: str, name: str) -> None:
    """Reject bytes that cannot be a well-formed model of ``fmt``, with a typed error."""
    if len(content) < 8:
        raise ModelFileError(f"Expected a {fmt} model file. Received: {name}, {len(content)} bytes, which is "
                             "truncated. Re-export it.")
    if fmt == "tflite":
        if content[4:8] != TFLITE_IDENTIFIER:
            raise ModelFileError(
                f"Expected a TFLite flatbuffer (identifier {TFLITE_IDENTIFIER!r} at byte 4). Received: {name}, "
                f"which is not a TFLite flatbuffer ({bytes(content[4:8])!r} there). Re-export the model."
            )
        try:
            verify_tflite(content)
        except ModelFileError as exc:
            raise ModelFileError(f"{name}: {exc}") from None
    elif fmt == "onnx":
        try:
            verify_onnx(content)
        except ModelFileError as exc:
            raise ModelFileError(f"{name}: {exc}") from None
