"""``edgeship serve`` under abuse (issue 26): no client can stall, starve or bloat the server, and a reload drops nothing.

Each test starts a real server in a subprocess on 127.0.0.1 and talks to it over raw sockets
where a client library would hide the behaviour. Every attack is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="needs the serve extra: pip install 'edgeship[serve]'")
from serve_helpers import HOST, ServerProcess  # noqa: E402

pytestmark = pytest.mark.serve
INFER = b"/v2/models/digits/infer"
TOKEN = "t" * 32


def _json_body(n: int, name: str = "input") -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": [n, 8, 8, 1], "datatype": "FP32",
                                   "data": [0.0] * (n * 64)}]}).encode()


def _head(length: int, path: bytes = INFER, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n" % (
        path, extra, length)


def _until_closed(sock: socket.socket, deadline_s: float, trickle: bytes | None = None) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took; ``trickle`` is sent every 0.5 s."""
    start, reply = time.monotonic(), b""
    sock.settimeout(0.5)
    while time.monotonic() - start < deadline_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if trickle is not None:
                try:
                    sock.sendall(trickle)
                except OSError:
                    break
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        reply += chunk
    else:
        raise AssertionError(f"connection still open after {deadline_s} s; got {reply[:300]!r}")
    return reply, time.monotonic() - start


def _response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length (the connection stays open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _error(status: int, body: bytes) -> str:
    message = json.loads(body)["error"]
    assert isinstance(message, str) and message.startswith("Expected"), (status, message)
    return message


# HIGH 1 ---------------------------------------------------------------------------------------------------


def test_body_that_never_arrives_gets_408_and_holds_no_slot(default_bundle: Path, tmp_path: Path) -> None:
    """Complete headers, Content-Length 100, no body byte: 408 within --request-timeout, no slot held meanwhile."""
    args = [f"digits={default_bundle}", "--max-concurrency", "2", "--request-timeout", "1.5"]
    with ServerProcess(args, tmp_path / "log") as srv:
        stalled = [socket.create_connection((HOST, srv.port), timeout=10) for _ in range(6)]  # 3x the slots
        try:
            for sock in stalled:
                sock.sendall(_head(100))
            time.sleep(0.3)
            assert srv.request("GET", "/v2/models/digits")[0] == 200
            assert srv.request("GET", "/metrics")[0] == 200
            status, _, body = srv.request("POST", INFER.decode(), _json_body(1))
            assert status == 200, body
            for sock in stalled:
                reply, took = _until_closed(sock, deadline_s=5)
                assert reply.startswith(b"HTTP/1.1 408") and b"within 1.5 s" in reply, reply
                assert took < 4
        finally:
            for sock in stalled:
                sock.close()
        assert srv.request("GET", "/v2/models/digits")[0] == 200


def test_requests_in_the_batcher_hold_slots_and_the_rest_get_503(default_bundle: Path, tmp_path: Path) -> None:
    """The limit still holds for work: requests waiting for a batch fill the slots; one more infer gets 503."""
    args = [f"digits={default_bundle}", "--max-concurrency", "2", "--max-batch-size", "8",
            "--batch-delay-us", "1500000"]
    with ServerProcess(args, tmp_path / "log") as srv:
        results: list[int] = []
        workers = [threading.Thread(target=lambda: results.append(srv.request("POST", INFER.decode(),
                                                                              _json_body(1))[0])) for _ in range(2)]
        for w in workers:
            w.start()
        time.sleep(0.6)  # both bodies in, both waiting in the batcher (1.5 s)
        status, headers, body = srv.request("POST", INFER.decode(), _json_body(1))
        assert status == 503 and headers["retry-after"] == "1" and "at most 2 requests in flight" in _error(status, body)
        for w in workers:
            w.join(10)
        assert results == [200, 200]


# HIGH 2 ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain(default_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server with the default limits."""
    with ServerProcess([f"digits={default_bundle}"], tmp_path_factory.mktemp("plain") / "log") as srv:
        yield srv


def test_samples_per_request_are_capped_by_default_before_any_array(plain: ServerProcess) -> None:
    import psutil

    srv = plain
    assert next(x for x in srv.lines() if x["event"] == "listening")["max_samples"] == 64
    assert srv.request("POST", INFER.decode(), _json_body(64))[0] == 200
    status, _, body = srv.request("POST", INFER.decode(), _json_body(65))
    assert status == 413 and "at most 64 samples per request" in _error(status, body)
    assert "65 samples" in _error(status, body) and "--max-samples" in _error(status, body)

    proc = psutil.Process(srv.proc.pid).children()[0]
    rss = proc.memory_info().rss
    shape = [131000, 8, 8, 1]  # one byte per element: 8,384,000 bytes, under the 8 MiB body limit
    head = json.dumps({"inputs": [{"name": "input", "shape": shape, "datatype": "UINT8",
                                   "parameters": {"binary_data_size": 131000 * 64}}]}).encode()
    status, _, body = srv.request("POST", INFER.decode(), head + bytes(131000 * 64),
                                  {"inference-header-content-length": str(len(head))})
    assert status == 413 and "131000 samples" in _error(status, body)
    assert proc.memory_info().rss - rss < 40 * 1024 * 1024  # the body itself, no arena of 131,000 samples


def test_max_samples_flag(default_bundle: Path, tmp_path: Path) -> None:
    with ServerProcess([f"digits={default_bundle}", "--max-samples", "4"], tmp_path / "log") as srv:
        assert srv.request("POST", INFER.decode(), _json_body(4))[0] == 200
        x = np.zeros((5, 8, 8, 1), np.float32)
        head = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                       "parameters": {"binary_data_size": x.nbytes}}]}).encode()
        status, _, body = srv.request("POST", INFER.decode(), head + x.tobytes(),
                                      {"inference-header-content-length": str(len(head))})
        assert status == 413 and "at most 4 samples per request" in _error(status, body)
        assert srv.request("GET", "/v2/health/ready")[0] == 200


# HIGH 3 ---------------------------------------------------------------------------------------------------


def _half_sent(port: int, body: bytes, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=10)
        sock.sendall(_head(len(body)) + body[: len(body) // 2])
        socks.append(sock)
    return socks


def _finish(socks: list[socket.socket], body: bytes) -> list[bytes]:
    replies = []
    for sock in socks:
        sock.sendall(body[len(body) // 2:])
    for sock in socks:
        replies.append(_response(sock))
        sock.close()
    return replies


def test_reload_while_bodies_arrive_drops_nothing(bundle_copy: Path, tmp_path: Path) -> None:
    """8 requests held mid-body across the reload route, then 8 across SIGHUP: every one is answered 200."""
    body = _json_body(2)
    with ServerProcess([f"digits={bundle_copy}"], tmp_path / "log") as srv:
        socks = _half_sent(srv.port, body, 8)
        time.sleep(0.3)  # routed (404-checked), reading their bodies
        status, _, reply = srv.request("POST", "/v2/repository/models/digits/load")
        assert status == 200 and json.loads(reply)["result"] == "reloaded"
        replies = _finish(socks, body)
        assert all(r.startswith(b"HTTP/1.1 200") for r in replies), [r[:200] for r in replies]

        socks = _half_sent(srv.port, body, 8)
        time.sleep(0.3)
        srv.signal(signal.SIGHUP)
        end = time.monotonic() + 60
        while sum(x["event"] == "reloaded" for x in srv.lines()) < 2:
            assert time.monotonic() < end, srv.lines()[-3:]
            time.sleep(0.05)
        replies = _finish(socks, body)
        assert all(r.startswith(b"HTTP/1.1 200") for r in replies), [r[:200] for r in replies]


def test_batched_requests_across_a_reload_finish_on_their_model(bundle_copy: Path, tmp_path: Path) -> None:
    """Requests waiting in the batcher when the model is swapped run on the old one, which closes after them."""
    args = [f"digits={bundle_copy}", "--max-batch-size", "8", "--batch-delay-us", "1500000"]
    with ServerProcess(args, tmp_path / "log") as srv:
        results: list[int] = []
        workers = [threading.Thread(target=lambda: results.append(srv.request("POST", INFER.decode(),
                                                                              _json_body(1))[0])) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(0.4)
        status, _, reply = srv.request("POST", "/v2/repository/models/digits/load")
        assert status == 200 and json.loads(reply)["result"] == "reloaded"
        for w in workers:
            w.join(10)
        assert results == [200, 200, 200]
        assert srv.request("POST", INFER.decode(), _json_body(1))[0] == 200  # and the new model serves


# HIGH 4 ---------------------------------------------------------------------------------------------------


@pytest.fixture
def token_server(default_bundle: Path, tmp_path: Path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    args = [f"digits={default_bundle}", "--header-timeout", "1.5", "--request-timeout", "2",
            "--auth-token-file", str(token)]
    with ServerProcess(args, tmp_path / "log") as srv:
        yield srv


AUTH = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
LIVE = b"GET /v2/models/digits HTTP/1.1\r\nHost: x\r\n%s\r\n"


@pytest.mark.parametrize("stray", [b"\r\n", b"\n", b"G"], ids=["crlf", "lf", "letter"])
def test_one_byte_after_a_401_does_not_hold_the_connection(token_server: ServerProcess, stray: bytes) -> None:
    with socket.create_connection((HOST, token_server.port), timeout=10) as sock:
        sock.sendall(LIVE % b"")
        assert _response(sock).startswith(b"HTTP/1.1 401")
        sock.sendall(stray)  # then nothing more
        reply, took = _until_closed(sock, deadline_s=6)
        assert took < 4 and (reply == b"" or reply.startswith(b"HTTP/1.1 408")), reply


def test_body_of_a_401_trickling_in_is_cut_off(token_server: ServerProcess) -> None:
    """Refused before its body is read, a request whose body trickles in is still closed after --request-timeout."""
    with socket.create_connection((HOST, token_server.port), timeout=10) as sock:
        sock.sendall(_head(1000) + b"{")
        reply, took = _until_closed(sock, deadline_s=8, trickle=b"a")
        assert reply.startswith(b"HTTP/1.1 401") and took < 5, reply[-300:]


@pytest.mark.parametrize("start", [b"\r\n", b"GET /v2/he"], ids=["crlf", "request-line"])
def test_pipelined_request_trickling_in_is_cut_off(token_server: ServerProcess, start: bytes) -> None:
    """A whole request plus the first bytes of the next, then a byte every 0.5 s: closed by --header-timeout."""
    with socket.create_connection((HOST, token_server.port), timeout=10) as sock:
        sock.sendall(LIVE % AUTH + start)
        reply, took = _until_closed(sock, deadline_s=8, trickle=b"\r\n" if start == b"\r\n" else b"a")
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert took < 5 and b"HTTP/1.1 408" in reply, reply[-300:]


@pytest.mark.parametrize("attack, then", [(LIVE % b"", b"\r\n"), (_head(1000) + b"{", b"a")],
                         ids=["stray-byte", "slow-body"])
def test_connection_limit_keeps_authorised_clients_served(default_bundle: Path, tmp_path: Path, attack: bytes,
                                                          then: bytes) -> None:
    """300 unauthenticated connections each holding on after their 401, fd limit 256: 8 of 8 authorised served."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    args = [f"digits={default_bundle}", "--header-timeout", "60", "--request-timeout", "60",
            "--auth-token-file", str(token)]
    with ServerProcess(args, tmp_path / "log", nofile=256) as srv:
        limit = next(x for x in srv.lines() if x["event"] == "listening")["max_connections"]
        assert 8 <= limit < 256 - 64
        abusers: list[socket.socket] = []
        try:
            for _ in range(300):
                sock = socket.create_connection((HOST, srv.port), timeout=1)
                abusers.append(sock)
                try:
                    sock.sendall(attack)
                    _response(sock)  # 401 (or a 503 or 408 when the server is full)
                    sock.sendall(then)
                except (TimeoutError, OSError, AssertionError):
                    break  # the server no longer answers: the old behaviour, the assertions below fail
            served = 0
            for _ in range(8):
                conn = http.client.HTTPConnection(HOST, srv.port, timeout=3)
                try:
                    conn.request("GET", "/v2/models/digits", headers={"authorization": f"Bearer {TOKEN}"})
                    served += conn.getresponse().status == 200
                except (TimeoutError, OSError):
                    break
                finally:
                    conn.close()
            assert served == 8
        finally:
            for sock in abusers:
                sock.close()
    stderr = srv.proc.stderr.read()
    log = (tmp_path / "log").read_text()
    assert "out of system resource" not in stderr + log and "Traceback" not in stderr + log
    assert len(stderr) + len(log) < 200_000


# MEDIUM 5 and 7 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, expected", [
    (b"[" * 100_000, "nested too deeply"),
    (b'{"inputs": [{"name": "input", "shape": [1], "datatype": "FP32", "data": [' + b"9" * 5000 + b"]}]}",
     "invalid JSON"),
    (json.dumps({"inputs": [{"name": "input", "shape": [0, 2**32, 2**32], "datatype": "FP32", "data": []}]}).encode(),
     "size fits in memory"),
    (json.dumps({"inputs": [{"name": "input", "shape": [1] * 65, "datatype": "FP32", "data": [0]}]}).encode(),
     "at most 32 dimensions"),
], ids=["deep-nesting", "huge-integer", "shape-overflow", "65-dims"])
def test_hostile_json_gets_a_typed_400(plain: ServerProcess, body: bytes, expected: str) -> None:
    status, _, reply = plain.request("POST", INFER.decode(), body)
    assert status == 400 and expected in _error(status, reply)
    assert plain.request("POST", INFER.decode(), _json_body(1))[0] == 200


def test_headers_past_the_limit_get_431_and_a_close(plain: ServerProcess) -> None:
    with socket.create_connection((HOST, plain.port), timeout=10) as sock:
        # 67 headers of 1 KiB, no end: just past the 64 KiB limit, sent at once (so all of it is read)
        sock.sendall(b"GET /v2 HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000)
                                                                     for i in range(67)))
        reply, _ = _until_closed(sock, deadline_s=5)
        assert reply.startswith(b"HTTP/1.1 431") and b"at most 65,536 bytes" in reply, reply[:200]
    assert plain.request("GET", "/v2")[0] == 200


def test_crlf_after_a_body_does_not_cut_off_a_slow_response(default_bundle: Path, tmp_path: Path) -> None:
    """Some clients end a POST body with CR/LF: it must not start a header deadline that beats the response."""
    args = [f"digits={default_bundle}", "--header-timeout", "1", "--max-batch-size", "8",
            "--batch-delay-us", "2000000"]
    with ServerProcess(args, tmp_path / "log") as srv:
        with socket.create_connection((HOST, srv.port), timeout=10) as sock:
            body = _json_body(1)
            sock.sendall(_head(len(body)) + body + b"\r\n")
            start = time.monotonic()
            assert _response(sock).startswith(b"HTTP/1.1 200")  # after the 2 s batch delay, past the 1 s deadline
            assert time.monotonic() - start > 1.5


def test_max_connections_past_the_fd_limit_is_refused_at_start(default_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as info:
        ServerProcess([f"digits={default_bundle}", "--max-connections", "1000"], tmp_path / "log", nofile=256)
    message = str(info.value)
    assert "exited 2" in message and "ServeError: Expected --max-connections of at most" in message
    assert "file-descriptor limit 256" in message and "Traceback" not in message


def test_at_the_connection_limit_waiters_make_room_and_busy_ones_do_not(default_bundle: Path, tmp_path: Path) -> None:
    args = [f"digits={default_bundle}", "--max-connections", "3", "--max-batch-size", "8",
            "--batch-delay-us", "1500000"]
    with ServerProcess(args, tmp_path / "log") as srv:
        idle = [socket.create_connection((HOST, srv.port), timeout=10) for _ in range(3)]  # no byte sent
        time.sleep(0.2)
        assert srv.request("GET", "/v2/models/digits")[0] == 200  # took the place of the oldest
        reply, _ = _until_closed(idle[0], deadline_s=3)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        for sock in idle:
            sock.close()
        time.sleep(0.2)

        results: list[int] = []
        workers = [threading.Thread(target=lambda: results.append(srv.request("POST", INFER.decode(),
                                                                              _json_body(1))[0])) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(0.5)  # three whole requests in, waiting for their batch: none can make room
        with socket.create_connection((HOST, srv.port), timeout=10) as sock:
            reply, _ = _until_closed(sock, deadline_s=3)
        assert reply.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in reply and b"at most 3 open" in reply
        for w in workers:
            w.join(10)
        assert results == [200, 200, 200]
