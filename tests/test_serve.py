"""``edgeship serve``: a real server in a subprocess on loopback, called with the real tritonclient."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="needs the serve extra: pip install 'edgeship[serve]'")
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http] (the dev extra)")
from serve_helpers import HOST, ServerProcess  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from edgeship.runtime import load, load_eval  # noqa: E402

pytestmark = pytest.mark.serve
CHOICE = ["--format", "tflite", "--precision", "int8"]


@pytest.fixture(scope="module")
def server(default_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("serve") / "requests.log"
    with ServerProcess([f"digits={default_bundle}", *CHOICE], log) as srv:
        yield srv


@pytest.fixture(scope="module")
def local(default_bundle: Path):
    with load(default_bundle, format="tflite", precision="int8") as model:
        yield model


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[object]:
    c = httpclient.InferenceServerClient(server.url, connection_timeout=30, network_timeout=30)
    yield c
    c.close()


def _infer(client, local, x: np.ndarray, *, binary: bool, outputs: list | None = None, model: str = "digits"):
    inp = httpclient.InferInput(local.inputs[0].public_name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    return client.infer(model, [inp], outputs=outputs)


def test_server_ready_and_model_metadata(client, local) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digits")
    meta = client.get_model_metadata("digits")
    assert meta["inputs"] == [{"name": local.inputs[0].public_name, "datatype": "FP32", "shape": [-1, 8, 8, 1]}]
    assert meta["outputs"] == [{"name": local.outputs[0].public_name, "datatype": "FP32", "shape": [-1, 10]}]
    # the names every artifact of the bundle shares (the TFLite signature's = the ONNX graph's), not
    # serving_default_input:0 / StatefulPartitionedCall:0: a client survives the server loading another artifact
    assert (meta["inputs"][0]["name"], meta["outputs"][0]["name"]) == ("input", "probs")
    assert meta["parameters"]["labels"] == local.labels and meta["parameters"]["file"] == "model.int8.tflite"
    assert client.get_model_metadata("digits", model_version="1")["name"] == "digits"
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    assert client.get_model_repository_index() == [{"name": "digits", "version": "1", "state": "READY"}]
    client.load_model("digits")  # the model_repository extension: reload from disk (verified), 200
    assert client.is_model_ready("digits")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_in_process_predict_bit_for_bit(client, local, default_bundle: Path, binary: bool) -> None:
    x, _ = load_eval(default_bundle)
    batch = np.ascontiguousarray(x[:7])
    wanted = [httpclient.InferRequestedOutput(local.outputs[0].public_name, binary_data=binary)]
    for outputs in (None, wanted):
        result = _infer(client, local, batch, binary=binary, outputs=outputs)
        got = result.as_numpy(local.outputs[0].public_name)
        expected = local.predict(batch)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()
    inp = httpclient.InferInput(local.inputs[0].public_name, list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch, binary_data=binary)
    for algorithm in ("gzip", "deflate"):  # tritonclient's request compression
        got = client.infer("digits", [inp], request_compression_algorithm=algorithm).as_numpy(local.outputs[0].public_name)
        assert got.tobytes() == local.predict(batch).tobytes()


def test_classification_extension_returns_labels(client, local, default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    out = httpclient.InferRequestedOutput(local.outputs[0].public_name, class_count=3)
    got = _infer(client, local, x[:4], binary=True, outputs=[out]).as_numpy(local.outputs[0].public_name)
    assert got.shape == (4, 3)
    probs = local.predict(x[:4])
    for row, p in zip(got, probs):
        score, index, label = row[0].decode().split(":")
        assert int(index) == int(np.argmax(p)) and label == local.labels[int(index)]
        assert abs(float(score) - float(p.max())) < 1e-5


def _error(server: ServerProcess, path: str, body: bytes) -> tuple[int, str]:
    status, _, data = server.request("POST", path, body, {"content-type": "application/json"})
    return status, json.loads(data)["error"]


def test_faults_get_status_and_typed_message(server: ServerProcess, client, local) -> None:
    status, msg = _error(server, "/v2/models/digits/infer", b'{"inputs": [')
    assert status == 400 and msg.startswith("Expected a JSON inference request body. Received: invalid JSON")
    with pytest.raises(InferenceServerException) as info:
        _infer(client, local, np.zeros((2, 8, 8), np.float32), binary=True)
    assert info.value.status() == "400" and "Model expects input float32 (N, 8, 8, 1)" in info.value.message()
    bad = np.zeros((1, 8, 8, 1), np.float32)
    bad[0, 3, 3, 0] = np.nan
    with pytest.raises(InferenceServerException) as info:
        _infer(client, local, bad, binary=True)
    assert info.value.status() == "400" and "finite input values" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        _infer(client, local, bad, binary=True, model="nope")
    assert info.value.status() == "404" and "Received: 'nope'" in info.value.message()
    assert server.request("GET", "/v2/nothing/here")[0] == 404
    status, _, body = server.request("POST", "/v2/models/digits/infer", b"{}", {"content-encoding": "br"})
    assert status == 415 and "Expected Content-Encoding gzip, deflate or none" in json.loads(body)["error"]
    status, _, body = server.request("POST", "/v2/models/digits/infer", b"not gzip", {"content-encoding": "gzip"})
    assert status == 400 and "Expected a gzip body" in json.loads(body)["error"]
    assert client.is_server_ready()


def _raw(port: int, data: bytes, *, read: bool = True, timeout: float = 10) -> bytes:
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(data)
        if not read:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_body_over_limit_is_refused_before_it_is_read(server: ServerProcess, client) -> None:
    import psutil

    proc = psutil.Process(server.proc.pid).children()[0]
    rss = proc.memory_info().rss
    head = (b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (20 * 1024 * 1024))
    start = time.monotonic()
    reply = _raw(server.port, head + b"x" * 65536)  # 64 KiB of the 20 MB: the answer comes without the rest
    assert reply.startswith(b"HTTP/1.1 413") and b"at most 8,388,608 bytes" in reply
    assert time.monotonic() - start < 5
    assert proc.memory_info().rss - rss < 10 * 1024 * 1024
    assert client.is_server_ready()


def test_client_disconnecting_mid_request_leaves_server_healthy(server: ServerProcess, client, local) -> None:
    head = b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    for _ in range(5):
        _raw(server.port, head + b'{"inputs": [', read=False)
    time.sleep(0.3)
    assert client.is_server_ready()
    assert _infer(client, local, np.zeros((1, 8, 8, 1), np.float32), binary=True).as_numpy(
        local.outputs[0].public_name).shape == (1, 10)


def test_slow_header_client_is_cut_off_while_others_are_served(default_bundle: Path, tmp_path: Path) -> None:
    with ServerProcess([str(default_bundle), "--header-timeout", "1.5"], tmp_path / "log") as srv:
        result: dict[str, object] = {}

        def trickle() -> None:
            start = time.monotonic()
            with socket.create_connection((HOST, srv.port), timeout=0.5) as sock:
                for byte in b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                    try:
                        sock.sendall(bytes([byte]))  # one byte each half second: the headers would take 25 s
                        result["reply"] = sock.recv(65536)
                        break  # the server answered or closed
                    except TimeoutError:
                        continue
                    except OSError as exc:
                        result["reply"] = repr(exc).encode()
                        break
            result["seconds"] = time.monotonic() - start

        slow = threading.Thread(target=trickle)
        slow.start()
        served = 0
        while slow.is_alive() and served < 200:
            assert srv.request("GET", "/v2/health/ready")[0] == 200
            served += 1
            time.sleep(0.01)
        slow.join(15)
        assert served >= 20, "other clients were not served while the slow one trickled"
        assert float(result["seconds"]) < 5, result  # type: ignore[arg-type]
        assert b"408 Request Timeout" in result["reply"], result  # type: ignore[operator]

        with socket.create_connection((HOST, srv.port), timeout=10) as sock:  # the deadline holds per request
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"}"):
                reply += sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200")
            time.sleep(2)  # idle past the header deadline: keep-alive's time, not the deadline's
            start = time.monotonic()
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/health/live HTTP/1.1\r\nHo")
            reply = _until_closed(sock, b"")
            assert reply.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408 Request Timeout" in reply
            assert 1.4 < time.monotonic() - start < 5


def test_metrics_count_requests_and_log_lines_parse(server: ServerProcess, client, local) -> None:
    def counters() -> dict[str, float]:
        text = server.request("GET", "/metrics")[2].decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r'^(\S+\{[^}]*model="digits".*?\}) (\S+)$', text, re.M)}

    before = counters()
    x = np.zeros((3, 8, 8, 1), np.float32)
    for _ in range(5):
        _infer(client, local, x, binary=True)
    assert _error(server, "/v2/models/digits/infer", b"{}")[0] == 400
    after = counters()

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta('nv_inference_request_success_total{model="digits",version="1"}') == 5
    assert delta('nv_inference_count_total{model="digits",version="1"}') == 15
    assert delta('nv_inference_exec_count_total{model="digits",version="1"}') == 5
    assert delta('nv_inference_request_failure_total{model="digits",reason="400",version="1"}') == 1
    assert delta('nv_inference_request_duration_seconds_count{model="digits",version="1"}') == 5
    text = server.request("GET", "/metrics")[2].decode()
    assert re.search(r'^edgeship_model_load_info\{.*file="model.int8.tflite".*model="digits".*\} 1.0$', text, re.M)
    assert "nv_inference_pending_request_count" in text

    status, headers, _ = server.request("GET", "/v2/models/digits", headers={"X-Request-ID": "abc-123"})
    assert status == 200 and headers["x-request-id"] == "abc-123"
    line = next(r for r in reversed(server.lines()) if r.get("request_id") == "abc-123")
    assert {"time", "request_id", "model", "route", "status", "batch_size", "bytes_in", "latency_ms"} <= set(line)
    bad = [r for r in server.lines() if r.get("route") == "/v2/models/digits/infer" and r["status"] == 400]
    assert bad[-1]["error"].startswith("InputError: Expected a JSON object with a non-empty \"inputs\" list")
    infer = [r for r in server.lines() if r.get("route") == "/v2/models/digits/infer" and r["status"] == 200]
    assert infer[-1]["batch_size"] == 3 and infer[-1]["bytes_in"] > 3 * 64 * 4 and infer[-1]["latency_ms"] > 0


def test_auth_token(default_bundle: Path, tmp_path: Path) -> None:
    token = "s3cret-token-0123456789abcdef"
    (tmp_path / "token").write_text(token + "\n")
    with ServerProcess([str(default_bundle), "--auth-token-file", str(tmp_path / "token")], tmp_path / "log") as srv:
        name = Path(default_bundle).name
        assert srv.request("GET", f"/v2/models/{name}")[0] == 401
        assert srv.request("GET", f"/v2/models/{name}", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert srv.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})[0] == 401
        assert srv.request("POST", f"/v2/models/{name}/infer", b"{}")[0] == 401
        metrics = srv.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})[2].decode()
        assert f'nv_inference_request_failure_total{{model="{name}",reason="401",version="1"}} 1.0' in metrics
        assert srv.request("GET", f"/v2/models/{name}", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert srv.request("GET", "/v2/health/ready")[0] == 200 and srv.request("GET", "/v2/health/live")[0] == 200
        c = httpclient.InferenceServerClient(srv.url)
        try:
            assert c.get_model_metadata(name, headers={"Authorization": f"Bearer {token}"})["name"] == name
            with pytest.raises(InferenceServerException) as info:
                c.get_model_metadata(name)
            assert info.value.status() == "401"
        finally:
            c.close()


def _load(srv: ServerProcess, name: str, count: int, threads: int, results: list[str]) -> None:
    """``count`` JSON infer requests over ``threads``, each on a fresh connection; outcomes into ``results``."""
    import http.client

    # the TFLite tensor name: the metadata lists the input as "input", and accepts this as an alias of it
    body = json.dumps({"inputs": [{"name": "serving_default_input:0", "shape": [1, 8, 8, 1], "datatype": "FP32",
                                   "data": [0.5] * 64}]}).encode()
    lock = threading.Lock()
    todo = iter(range(count))

    def worker() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=20)
            try:
                conn.connect()
            except OSError:
                outcome = "refused"
            else:
                outcome = _one(conn, name, body)
            finally:
                conn.close()
            with lock:
                results.append(outcome)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)


def _one(conn, name: str, body: bytes) -> str:
    """"ok" (full 200), "refused" (no byte of a response came: closed before the request was taken), or the fault."""
    import http.client

    try:
        conn.request("POST", f"/v2/models/{name}/infer", body, {"content-type": "application/json"})
        resp = conn.getresponse()
    except (ConnectionError, http.client.RemoteDisconnected):
        return "refused"
    try:
        data = resp.read()
    except (http.client.IncompleteRead, ConnectionError) as exc:
        return f"reset mid-response: {exc!r}"
    if resp.status == 200 and json.loads(data)["outputs"][0]["shape"] == [1, 10]:
        return "ok"
    return f"status {resp.status}: {data[:200]!r}"


def test_sigterm_under_load_drains_and_exits_zero(default_bundle: Path, tmp_path: Path) -> None:
    srv = ServerProcess([f"digits={default_bundle}"], tmp_path / "log")
    results: list[str] = []
    try:
        loader = threading.Thread(target=_load, args=(srv, "digits", 200, 8, results))
        loader.start()
        while len(results) < 60 and loader.is_alive():
            time.sleep(0.005)
        srv.signal(signal.SIGTERM)
        loader.join(60)
        code = srv.proc.wait(20)
    finally:
        srv.stop()
    assert len(results) == 200
    faults = [r for r in results if r not in ("ok", "refused")]
    assert not faults, faults[:5]
    assert results.count("ok") >= 60 and code == 0
    assert [r["event"] for r in srv.lines()][-1] == "stopped"


def test_sighup_reload_drops_nothing_and_keeps_old_model_on_tamper(bundle_copy: Path, tmp_path: Path) -> None:
    srv = ServerProcess([f"digits={bundle_copy}", *CHOICE], tmp_path / "log")
    try:
        results: list[str] = []
        loader = threading.Thread(target=_load, args=(srv, "digits", 300, 4, results))
        loader.start()
        time.sleep(0.2)
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reloaded")
        loader.join(60)
        assert results.count("ok") == 300, [r for r in results if r != "ok"][:5]

        model_file = bundle_copy / "model.int8.tflite"
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model_file.write_bytes(bytes(data))
        results.clear()
        loader = threading.Thread(target=_load, args=(srv, "digits", 100, 4, results))
        loader.start()
        srv.signal(signal.SIGHUP)
        failed = _wait_for(srv, "reload_failed")
        loader.join(60)
        assert results.count("ok") == 100
        assert failed["error"] == "IntegrityError" and "model.int8.tflite" in failed["message"]
        assert failed["kept"] == "model.int8.tflite"
        assert srv.request("GET", "/v2/health/ready")[0] == 200
        assert srv.request("GET", "/v2/models/digits/ready")[0] == 200
        status, _, body = srv.request("POST", "/v2/repository/models/digits/load")  # the reload route says the same
        assert status == 409 and "kept the old model: IntegrityError" in json.loads(body)["result"]
    finally:
        assert srv.stop() == 0


def _wait_for(srv: ServerProcess, event: str, deadline_s: float = 60) -> dict:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = [r for r in srv.lines() if r.get("event") == event]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} log line within {deadline_s} s: {srv.lines()[-3:]}")


def test_serve_without_the_extra_names_it(default_bundle: Path) -> None:
    code = f"""
import sys
sys.modules['uvicorn'] = None  # as if the serve extra were not installed
from edgeship.cli import main
sys.exit(main(['serve', {str(default_bundle)!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'pip install "edgeship[serve]"' in proc.stderr and "MissingExtraError" in proc.stderr


def test_two_bundles_each_under_its_name(default_bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(default_bundle, other)
    with ServerProcess([str(default_bundle), f"second={other}", "--format", "onnx"], tmp_path / "log") as srv:
        assert srv.request("GET", f"/v2/models/{default_bundle.name}/ready")[0] == 200
        status, _, body = srv.request("GET", "/v2/models/second/versions/1")
        assert status == 200 and json.loads(body)["parameters"]["format"] == "onnx"
        assert srv.request("GET", "/v2/models/second/versions/2")[0] == 404


def _until_closed(sock: socket.socket, reply: bytes) -> bytes:
    """Read until the server closes (these replies say connection: close)."""
    while more := sock.recv(65536):
        reply += more
    return reply


def test_limits_concurrency_body_timeout_and_streamed_size(default_bundle: Path, tmp_path: Path) -> None:
    args = [f"digits={default_bundle}", "--max-concurrency", "1", "--request-timeout", "1.5",
            "--max-body-bytes", "100000"]
    with ServerProcess(args, tmp_path / "log") as srv:
        with socket.create_connection((HOST, srv.port), timeout=10) as holder:
            holder.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            time.sleep(0.3)  # the half-sent request holds no slot: it takes one once its body is in
            assert srv.request("GET", "/v2/models/digits")[0] == 200
            assert srv.request("GET", "/v2/health/ready")[0] == 200  # health is never refused
            reply = _until_closed(holder, b"")  # the body never comes: 408 after --request-timeout
            assert reply.startswith(b"HTTP/1.1 408") and b"within 1.5 s" in reply
        assert srv.request("GET", "/v2/models/digits")[0] == 200

        with socket.create_connection((HOST, srv.port), timeout=0.1) as sock:
            sock.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            reply = b""
            for _ in range(10):  # 32 KiB chunks, no Content-Length: counted as they stream in
                sock.sendall(b"8000\r\n" + b"x" * 0x8000 + b"\r\n")
                try:
                    reply = sock.recv(65536)
                    break
                except TimeoutError:
                    continue
            sock.settimeout(5)
            reply = _until_closed(sock, reply)
            assert reply.startswith(b"HTTP/1.1 413") and b"more than 100,000 bytes" in reply


def test_dynamic_batching_matches_predict(default_bundle: Path, tmp_path: Path) -> None:
    import http.client

    x, _ = load_eval(default_bundle)
    args = [f"digits={default_bundle}", "--format", "tflite", "--precision", "float32",
            "--max-batch-size", "8", "--batch-delay-us", "3000"]
    got: dict[int, np.ndarray] = {}
    with ServerProcess(args, tmp_path / "log") as srv:
        def send(i: int) -> None:
            body = json.dumps({"inputs": [{"name": "serving_default_input:0", "shape": [1, 8, 8, 1],
                                           "datatype": "FP32", "data": x[i].reshape(-1).tolist()}]})
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=20)
            try:
                conn.request("POST", "/v2/models/digits/infer", body)
                out = json.loads(conn.getresponse().read())["outputs"][0]
                got[i] = np.array(out["data"], np.float32).reshape(out["shape"])
            finally:
                conn.close()

        pool = [threading.Thread(target=send, args=(i,)) for i in range(32)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(30)
        text = srv.request("GET", "/metrics")[2].decode()
    with load(default_bundle, format="tflite", precision="float32") as model:
        for i in range(32):
            np.testing.assert_allclose(got[i], model.predict(x[i:i + 1]), rtol=0, atol=1e-6)
    count = float(re.search(r'^nv_inference_count_total\{model="digits",version="1"\} (\S+)$', text, re.M)[1])
    execs = float(re.search(r'^nv_inference_exec_count_total\{model="digits",version="1"\} (\S+)$', text, re.M)[1])
    assert count == 32 and execs < count


@pytest.mark.slow
def test_text_bundle_takes_bytes_strings(tmp_path: Path) -> None:
    from test_text import make_csv, text_recipe

    from edgeship.build import build

    out = build(text_recipe(make_csv(tmp_path / "topics.csv")), tmp_path / "text")
    sentences = np.array([b"The team scored a late goal", b"Cheese and bread soup"], dtype=object)
    with ServerProcess([f"topics={out}", *CHOICE], tmp_path / "log") as srv:
        c = httpclient.InferenceServerClient(srv.url)
        try:
            meta = c.get_model_metadata("topics")
            assert meta["inputs"][0]["datatype"] == "BYTES" and meta["inputs"][0]["shape"] == [-1]
            with load(out, format="tflite", precision="int8") as model:
                want = model.predict([s.decode() for s in sentences])
                for binary in (True, False):
                    inp = httpclient.InferInput(meta["inputs"][0]["name"], [2], "BYTES")
                    inp.set_data_from_numpy(sentences, binary_data=binary)
                    got = c.infer("topics", [inp]).as_numpy(meta["outputs"][0]["name"])
                    assert got.tobytes() == want.tobytes()
        finally:
            c.close()
