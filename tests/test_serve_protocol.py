"""The Open Inference Protocol codec against the real tritonclient's request builder and response parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("starlette", reason="needs the serve extra: pip install 'edgeship[serve]'")
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http] (the dev extra)")

from edgeship.runtime import InputError  # noqa: E402
from edgeship.runtime.serve import classify, encode_response, parse_request  # noqa: E402

pytestmark = pytest.mark.serve


def _body(inputs, outputs=None):
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    return body, None if json_size is None else str(json_size)


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_requests_decode_exactly(binary: bool) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    ids = np.arange(6, dtype=np.int64).reshape(2, 3)
    words = np.array([b"hello", "wörld".encode(), b""], dtype=object)
    inputs = [httpclient.InferInput("x", [3, 4], "FP32"), httpclient.InferInput("ids", [2, 3], "INT64"),
              httpclient.InferInput("text", [3], "BYTES")]
    for inp, arr in zip(inputs, (x, ids, words)):
        inp.set_data_from_numpy(arr, binary_data=binary)
    req = parse_request(*_body(inputs, [httpclient.InferRequestedOutput("y", binary_data=binary, class_count=2)]))
    assert req.inputs["x"].tobytes() == x.tobytes() and req.inputs["x"].dtype == np.float32
    assert (req.inputs["ids"] == ids).all() and req.inputs["ids"].dtype == np.int64
    assert [bytes(b) if isinstance(b, bytes) else b.encode() for b in req.inputs["text"]] == list(words)
    assert req.outputs[0].name == "y" and req.outputs[0].classification == 2 and req.outputs[0].binary is binary


def test_nested_and_flat_json_data() -> None:
    for data in ([[1, 2], [3, 4]], [1, 2, 3, 4]):
        body = json.dumps({"inputs": [{"name": "a", "shape": [2, 2], "datatype": "INT32", "data": data}]}).encode()
        arr = parse_request(body, None).inputs["a"]
        assert arr.shape == (2, 2) and arr.dtype == np.int32 and arr.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("body", "header", "message"),  # header "json": the length of the body's JSON part
    [
        (b"[1, 2]", None, 'Expected a JSON object with a non-empty "inputs" list. Received: a JSON list'),
        (b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP33", "data": [1, 2]}]}', None, "datatype in"),
        (b'{"inputs": [{"name": "a", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}', None,
         "Expected input 'a' with 3 values for shape [3]. Received: 2 values"),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": ["x"]}]}', None, "as FP32 values"),
        (b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", '
         b'"parameters": {"binary_data_size": 8}}]}abcd', "json", "binary_data_size within the 4 bytes left"),
        (b'{"inputs": []}', "999", "Inference-Header-Content-Length between 1 and the body length"),
    ],
)
def test_bad_requests_are_typed_one_liners(body: bytes, header: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        parse_request(body, str(len(body) - 4) if header == "json" else header)
    assert "\n" not in str(info.value)


def test_responses_parse_with_tritonclient() -> None:
    y = np.random.default_rng(1).random((2, 5)).astype(np.float32)
    top = classify(y, 2, ["a", "b", "c", "d", "e"])
    for binary in (True, False):
        body, header = encode_response("m", "1", "req-7", [("y", y, binary), ("top", top, binary)])
        result = httpclient.InferenceServerClient.parse_response_body(body, header_length=header)
        assert result.as_numpy("y").tobytes() == y.tobytes()
        got = result.as_numpy("top")
        assert got.shape == (2, 2)
        best = int(np.argmax(y[0]))
        text = got[0, 0].decode() if isinstance(got[0, 0], bytes) else str(got[0, 0])
        assert text == f"{y[0, best]:f}:{best}:{'abcde'[best]}"
        assert result.get_response()["id"] == "req-7"


def test_compressed_body_is_inflated_only_up_to_the_limit() -> None:
    import gzip

    from edgeship.runtime.serve._errors import BodyTooLargeError
    from edgeship.runtime.serve._request import inflate

    assert inflate(gzip.compress(b'{"a": 1}'), "gzip", 100) == b'{"a": 1}'
    bomb = gzip.compress(bytes(10 * 1024 * 1024))  # 10 MiB of zeros in about 10 KB
    with pytest.raises(BodyTooLargeError) as info:
        inflate(bomb, "gzip", 1024 * 1024)
    assert info.value.status_code == 413 and "more than 1,048,576 bytes" in str(info.value)
