"""The Open Inference Protocol (KServe v2 REST) wire format: numpy only, no web framework.

Request and response bodies are JSON, optionally followed by raw tensor bytes (the
binary tensor data extension): the ``Inference-Header-Content-Length`` header gives the
JSON part's length, each binary input carries ``parameters.binary_data_size``, and the
bytes follow in input order. BYTES elements in binary form are a 4-byte little-endian
length then the bytes, as Triton and tritonclient write them.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeship.runtime import InputError, TensorInfo

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
#: More dimensions than any model input has, and within what numpy allows on every version.
MAX_DIMS = 32
_NAMES = {dt: name for name, dt in DATATYPES.items() if name != "BYTES"}
_LEN = struct.Struct("<I")


def datatype_of(dtype: np.dtype) -> str:
    """The protocol datatype name of a numpy dtype (``float32`` -> ``FP32``; strings -> ``BYTES``)."""
    return _NAMES.get(np.dtype(dtype), "BYTES")


def tensor_metadata(info: TensorInfo, *, datatype: str | None = None) -> dict[str, Any]:
    """``{"name", "datatype", "shape"}`` with -1 for dynamic dimensions (the batch).

    The name is the one every format of the model shares (``TensorInfo.public_name``: a TFLite
    file's signature name, ``input`` / ``probs``, not ``serving_default_input:0``), so a client
    keeps working when the server loads another artifact of the bundle.
    """
    return {"name": info.public_name, "datatype": datatype or datatype_of(info.dtype),
            "shape": [-1 if d is None else int(d) for d in info.shape]}


@dataclass
class OutputRequest:
    """One entry of a request's ``outputs``: binary or JSON, and the top-k of the classification extension."""

    name: str
    binary: bool
    classification: int = 0


@dataclass
class InferRequest:
    """A decoded inference request: input arrays by name, in request order, and the outputs asked for."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[OutputRequest] | None
    binary_default: bool
    batch_size: int = field(default=0)


class SamplesError(InputError):
    """A request with more samples than the server's ``--max-samples`` (HTTP 413), refused before any array is made."""


def _bad(expected: str, received: str, fix: str) -> InputError:
    return InputError(f"Expected {expected}. Received: {received}. {fix}")


def parse_request(body: bytes, header_length: str | None, *, max_samples: int | None = None) -> InferRequest:
    """Decode an infer body; ``header_length`` is the ``Inference-Header-Content-Length`` header, if any.

    An input with more than ``max_samples`` samples (its first dimension; a BYTES input's
    element count) raises :class:`SamplesError` from its shape alone, before its data is decoded.
    """
    split = _header_split(body, header_length)
    try:
        head = json.loads(body[:split])
    except RecursionError:
        raise _bad("a JSON inference request body", "JSON nested too deeply to decode",
                   'Send {"inputs": [{"name", "shape", "datatype", "data"}]} with flat or shallow data.') from None
    except ValueError as exc:  # invalid JSON, bad UTF-8, or an integer past Python's 4,300 digits
        raise _bad("a JSON inference request body", f"invalid JSON ({exc})",
                   'Send {"inputs": [{"name", "shape", "datatype", "data"}]}.') from None
    if not isinstance(head, dict) or not isinstance(head.get("inputs"), list) or not head["inputs"]:
        raise _bad('a JSON object with a non-empty "inputs" list', _kind(head),
                   'Send {"inputs": [{"name", "shape", "datatype", "data"}]}.')
    params = _params(head)
    blob, offset, inputs = memoryview(body)[split:], 0, {}
    for spec in head["inputs"]:
        name, array, used = _decode_input(spec, blob, offset, max_samples)
        inputs[name], offset = array, offset + used
    if offset != len(blob):
        raise _bad(f"{offset} bytes of binary tensor data after the JSON header", f"{len(blob)}",
                   "Make each input's parameters.binary_data_size match the bytes sent.")
    outputs = head.get("outputs")
    wanted = None if outputs is None else [_decode_output(o) for o in _as_list(outputs, "outputs")]
    request_id = head.get("id")
    return InferRequest(str(request_id) if request_id is not None else None, inputs, wanted,
                        bool(params.get("binary_data_output", False)))


def _header_split(body: bytes, header_length: str | None) -> int:
    if header_length is None:
        return len(body)
    try:
        split = int(header_length)
    except ValueError:
        split = -1
    if not 0 < split <= len(body):
        raise _bad(f"an Inference-Header-Content-Length between 1 and the body length {len(body)}",
                   repr(header_length), "Send the byte length of the JSON part of the body.")
    return split


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)[:8]}"
    return f"a JSON {type(value).__name__}"


def _params(obj: dict[str, Any]) -> dict[str, Any]:
    params = obj.get("parameters") or {}
    if not isinstance(params, dict):
        raise _bad('"parameters" to be a JSON object', _kind(params), "Send parameters as {key: value}.")
    return params


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(f'"{what}" to be a list', _kind(value), f"Send {what} as a JSON list.")
    return value


def _decode_input(spec: Any, blob: memoryview, offset: int, max_samples: int | None) -> tuple[str, np.ndarray, int]:
    """One input tensor: (name, array, binary bytes consumed)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _bad('each input to be an object with "name", "shape", "datatype" and "data"', _kind(spec),
                   "Describe every input tensor.")
    name, datatype, shape = spec["name"], spec.get("datatype"), spec.get("shape")
    if datatype not in DATATYPES:
        raise _bad(f"input {name!r} datatype in {sorted(DATATYPES)}", repr(datatype), "Use a protocol datatype name.")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise _bad(f"input {name!r} shape as a list of non-negative integers", _short(shape), "Send the full shape.")
    if len(shape) > MAX_DIMS:
        raise _bad(f"input {name!r} shape of at most {MAX_DIMS} dimensions", f"{len(shape)}", "Send the model's shape.")
    count = math.prod(shape)  # exact: a product past int64 is refused below, not wrapped around
    _check_samples(name, datatype, shape, count, max_samples)
    size = _params(spec).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise _bad(f"input {name!r} binary_data_size within the {len(blob) - offset} bytes left", repr(size),
                       "Send the tensor bytes after the JSON header, in input order.")
        return name, _from_binary(name, datatype, shape, count, blob[offset:offset + size]), size
    if "data" not in spec:
        raise _bad(f'input {name!r} to carry "data" or parameters.binary_data_size', "neither",
                   "Send the values in data, or as binary tensor data.")
    return name, _from_json(name, datatype, shape, count, spec["data"]), 0


def _check_samples(name: str, datatype: str, shape: list[int], count: int, limit: int | None) -> None:
    samples = count if datatype == "BYTES" else (shape[0] if shape else 1)
    if limit is not None and samples > limit:
        raise SamplesError(f"Expected at most {limit:,} samples per request. Received: input {name!r} with "
                           f"{_short(samples)} samples. Fix: split the batch into requests of at most {limit:,}, or start "
                           "the server with a larger --max-samples.")
    if math.prod(d for d in shape if d) * DATATYPES[datatype].itemsize >= 2**62:  # numpy's limit, zeros aside
        raise _bad(f"input {name!r} shape whose size fits in memory", _short(shape), "Send the model's shape.")


def _short(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        return "more than 2**64"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _from_binary(name: str, datatype: str, shape: list[int], count: int, raw: memoryview) -> np.ndarray:
    if datatype == "BYTES":
        items = _split_bytes(name, raw)
        if len(items) != count:
            raise _bad(f"input {name!r} with {count} BYTES elements for shape {shape}", f"{len(items)}",
                       "Make shape match the strings sent.")
        return np.array(items, dtype=object).reshape(shape)
    dtype = DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise _bad(f"input {name!r} {datatype} {shape}: {count * dtype.itemsize} bytes", f"{len(raw)} bytes",
                   "Make shape and datatype match the binary data.")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _split_bytes(name: str, raw: memoryview) -> list[bytes]:
    items, pos, end = [], 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise _bad(f"input {name!r} BYTES elements as 4-byte length + bytes", "a truncated element",
                       "Serialize as tritonclient.utils.serialize_byte_tensor does.")
        (n,) = _LEN.unpack_from(raw, pos)
        if pos + 4 + n > end:
            raise _bad(f"input {name!r} BYTES element of {n} bytes", f"{end - pos - 4} bytes left",
                       "Serialize as tritonclient.utils.serialize_byte_tensor does.")
        items.append(bytes(raw[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return items


def _from_json(name: str, datatype: str, shape: list[int], count: int, data: Any) -> np.ndarray:
    dtype = DATATYPES[datatype]
    try:
        if datatype == "BYTES":
            flat = np.array(data, dtype=object).reshape(-1)
            if not all(isinstance(s, str) for s in flat):
                raise ValueError("BYTES data must be strings")
        else:
            flat = np.asarray(data, dtype=dtype).reshape(-1)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(f"input {name!r} data as {datatype} values (flat or nested lists)", f"{exc}",
                   "Send numbers (strings for BYTES) in data.") from None
    if flat.size != count:
        raise _bad(f"input {name!r} with {count} values for shape {shape}", f"{flat.size} values",
                   "Make shape match the data.")
    return flat.reshape(shape)


def _decode_output(spec: Any) -> OutputRequest:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _bad('each requested output to be an object with a "name"', _kind(spec), "Name the output.")
    params = _params(spec)
    k = params.get("classification", 0)
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise _bad("parameters.classification as a non-negative integer", repr(k), "Send the k of the top-k.")
    return OutputRequest(spec["name"], bool(params.get("binary_data", False)), k)


def classify(scores: np.ndarray, k: int, labels: list[str] | None) -> np.ndarray:
    """The classification extension: top-``k`` per sample as ``"score:index:label"`` bytes, shape (batch, k)."""
    flat = scores.reshape(len(scores), -1)
    k = min(k, flat.shape[1])
    top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    rows = []
    for row, idx in zip(flat, top):
        rows.append([
            (f"{row[i]:f}:{i}:{labels[i]}" if labels and i < len(labels) else f"{row[i]:f}:{i}").encode()
            for i in idx
        ])
    return np.array(rows, dtype=object).reshape(len(flat), k)


def encode_response(
    model: str, version: str, request_id: str | None, outputs: list[tuple[str, np.ndarray, bool]]
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length."""
    tensors, chunks = [], []
    for name, array, binary in outputs:
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array.dtype), "shape": list(array.shape)}
        if binary:
            raw = _bytes_of(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = ([s.decode("utf-8", "replace") for s in array.reshape(-1)] if array.dtype == object
                             else array.reshape(-1).tolist())
        tensors.append(entry)
    head: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request_id is not None:
        head["id"] = request_id
    header = json.dumps(head, separators=(",", ":")).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _bytes_of(array: np.ndarray) -> bytes:
    if array.dtype != object:
        return np.ascontiguousarray(array).tobytes()
    parts = []
    for item in array.reshape(-1):
        raw = item if isinstance(item, bytes) else str(item).encode()
        parts += [_LEN.pack(len(raw)), raw]
    return b"".join(parts)
