"""The ASGI application: Open Inference Protocol routes on starlette, behind one gate for auth and limits."""

from __future__ import annotations

import asyncio
import hmac
import json
import sys
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import IO, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeship.runtime import InputError

from ._batch import Batcher
from ._metrics import Metrics
from ._repository import VERSION, NotFoundError, Repository, Served, ServeError

JSON = "application/json"
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]


@dataclass
class ServeOptions:
    """Everything ``edgeship serve`` takes; the defaults are the command's."""

    bundles: list[str]
    host: str = "127.0.0.1"
    port: int = 8000
    format: str | None = None
    precision: str | None = None
    threads: int | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_concurrency: int = 64
    request_timeout: float = 30.0
    header_timeout: float = 5.0
    keep_alive_timeout: float = 5.0
    shutdown_timeout: float = 10.0
    auth_token_file: str | None = None
    log_file: str | None = None
    max_batch_size: int = 0
    batch_delay_us: int = 500


class HTTPError(ServeError):
    """An error with its HTTP status; the message is the response's ``{"error": ...}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def status_of(exc: BaseException) -> int:
    if isinstance(exc, HTTPError):
        return exc.status
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    return 500


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps({"error": message}), status, headers, media_type=JSON)


class JsonLog:
    """One JSON object per line, on stderr or appended to a file."""

    def __init__(self, path: str | None) -> None:
        self._file: IO[str] = open(path, "a", buffering=1) if path else sys.stderr  # noqa: SIM115

    def write(self, event: str, **fields: Any) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        self._file.write(json.dumps({"time": stamp, "event": event, **fields}, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not sys.stderr:
            self._file.close()


class Service:
    """The models, metrics, log and limits one server shares across requests."""

    def __init__(self, repo: Repository, options: ServeOptions, log: JsonLog) -> None:
        self.repo, self.options, self.log = repo, options, log
        self.metrics = Metrics()
        self.ready = True
        self.inflight = 0
        self.token = _read_token(options.auth_token_file)
        self.batchers: dict[str, Batcher] = {}
        for name, served in repo.models.items():
            self.metrics.loaded(name, VERSION, served.model, served.loaded_at)
        self.app = Starlette(routes=_routes(self), exception_handlers={HTTPException: _http_error})
        self.asgi = Gate(self)

    def batcher(self, served: Served) -> Batcher | None:
        o = self.options
        if o.max_batch_size <= 1 or served.takes_text or len(served.model.inputs) != 1 \
                or len(served.model.outputs) != 1:
            return None
        b = self.batchers.get(served.name)
        if b is None:
            name, kids = served.name, self.metrics.model(served.name, VERSION)

            def on_exec(seconds: float) -> None:
                kids[2].inc()
                kids[4].observe(seconds)

            b = self.batchers[name] = Batcher(lambda: self.repo.models[name].model, o.max_batch_size,
                                              o.batch_delay_us / 1e6, on_exec)
        return b

    async def reload(self, names: list[str] | None = None) -> dict[str, str]:
        """Reload bundles from disk; a bundle that fails verification keeps its old model (and says why)."""
        result = {}
        for name in names or list(self.repo.models):
            try:
                new = await asyncio.to_thread(self.repo.prepare_reload, name)
            except Exception as exc:
                self.metrics.reload_failure.labels(name).inc()
                self.log.write("reload_failed", model=name, error=type(exc).__name__, message=_one_line(exc),
                               kept=self.repo.models[name].model.path.name)
                result[name] = f"kept the old model: {type(exc).__name__}: {_one_line(exc)}"
                continue
            self.repo.swap(new)
            self.metrics.loaded(name, VERSION, new.model, new.loaded_at)
            self.log.write("reloaded", model=name, file=new.model.path.name, reloads=new.reloads)
            result[name] = "reloaded"
        return result


def _one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines())


def _read_token(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        token = open(path, "rb").read().strip()  # noqa: SIM115
    except OSError as exc:
        raise ServeError(f"Expected a readable --auth-token-file. Received: {path} ({exc.strerror}). "
                            "Fix: write the token into that file.") from None
    if len(token) < 16:
        raise ServeError(f"Expected an auth token of at least 16 characters. Received: {len(token)} in {path}. "
                            "Fix: python -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE.")
    return token


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return error_response(404, f"Expected a route of the Open Inference Protocol (/v2/...). Received: "
                                   f"{request.method} {request.url.path}. Fix: see GET /v2.")
    return error_response(status, f"Expected another method for {request.url.path}. Received: {request.method}. "
                                  f"Fix: {getattr(exc, 'detail', '')}.")


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused past ``limit`` bytes as they stream in (never buffered past it)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    receive = request.receive
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(len(body), limit)
        return body
    try:
        return await asyncio.wait_for(_read_rest(receive, [body], len(body), limit), timeout)
    except asyncio.TimeoutError:
        raise HTTPError(408, f"Expected the request body within {timeout:g} s. Received: part of it. "
                             "Fix: send the body promptly.", {"connection": "close"}) from None


async def _read_rest(receive: Any, chunks: list[bytes], total: int, limit: int) -> bytes:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _too_large(total, limit, so_far=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a request's ``Content-Encoding`` (tritonclient can gzip or deflate), never past ``limit`` bytes."""
    if encoding in (None, "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise HTTPError(415, f"Expected Content-Encoding gzip, deflate or none. Received: {encoding!r}. "
                             "Fix: send the body uncompressed or gzip it.")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputError(f"Expected a {encoding} body. Received: bytes that do not inflate ({exc}). "
                         "Fix: compress the body as Content-Encoding says.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(len(out), limit, so_far=True)
    return out


def _too_large(size: int, limit: int, so_far: bool = False) -> HTTPError:
    got = f"more than {limit:,} bytes" if so_far else f"{size:,} bytes"
    return HTTPError(413, f"Expected a request body of at most {limit:,} bytes. Received: {got}. Fix: send smaller "
                          "batches, or start the server with a larger --max-body-bytes.", {"connection": "close"})


def _routes(service: Service) -> list[Route]:
    from ._routes import make_routes

    return make_routes(service)


def request_id(scope: dict[str, Any]) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            return value.decode("latin-1")[:128]
    return uuid.uuid4().hex


def authorized(token: bytes, scope: dict[str, Any]) -> bool:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, given = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)
    return False


_OPEN = ("/v2/health/",)  # no token needed: orchestrators probe these
_INFER_SUFFIX = "/infer"


class Gate:
    """Outermost ASGI layer: request id, auth, body-size and concurrency limits, metrics and the log line."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.service.app(scope, receive, send)
        start = time.perf_counter()
        svc, path = self.service, scope["path"]
        rid = request_id(scope)
        info = scope["edgeship"] = {"model": None, "batch": 0, "bytes": 0, "status": 0}
        header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                info["status"] = info["status"] or message["status"]
                message["headers"] = [*message.get("headers", []), header]
            elif not message.get("more_body", False):  # metrics and log line before the client can see the end
                self._account(scope, path, rid, info, time.perf_counter() - start)
                info["logged"] = True
            await send(message)

        refusal = self._refusal(scope, path)
        if refusal is not None:
            await refusal(scope, receive, send_with_id)
        else:
            svc.inflight += 1
            svc.metrics.inflight.inc()
            try:
                await svc.app(scope, receive, send_with_id)
            finally:
                svc.inflight -= 1
                svc.metrics.inflight.dec()
        if "logged" not in info:  # no response completed (the client left, or the app failed)
            self._account(scope, path, rid, info, time.perf_counter() - start)

    def _refusal(self, scope: dict[str, Any], path: str) -> Response | None:
        svc = self.service
        if path.startswith(_OPEN):
            return None
        if svc.token is not None and not authorized(svc.token, scope):
            return error_response(401, "Expected an Authorization: Bearer token. Received: none or a wrong one. "
                                       "Fix: send the server's --auth-token-file token.",
                                  {"www-authenticate": "Bearer"})
        if svc.inflight >= svc.options.max_concurrency:
            return error_response(503, f"Expected at most {svc.options.max_concurrency} requests in flight. "
                                       "Received: one more. Fix: retry after the Retry-After seconds.",
                                  {"retry-after": "1"})
        return None

    def _account(self, scope: dict[str, Any], path: str, rid: str, info: dict[str, Any], seconds: float) -> None:
        svc, model = self.service, info["model"]
        if model is None and path.startswith("/v2/models/") and path.endswith(_INFER_SUFFIX):
            name = path.split("/")[3]  # refused before the route ran (401, 503): still that model's failure
            model = name if name in svc.repo.models else None
        if model is not None and path.endswith(_INFER_SUFFIX):
            if info["status"] == 200:
                kids = svc.metrics.model(model, VERSION)
                kids[0].inc()
                kids[3].observe(seconds)
            else:
                svc.metrics.failure.labels(model, VERSION, str(info["status"])).inc()
        extra = {"error": info["error"]} if "error" in info else {}
        svc.log.write("request", request_id=rid, model=model, route=path, method=scope["method"],
                      status=info["status"], batch_size=info["batch"], bytes_in=info["bytes"],
                      latency_ms=round(seconds * 1000, 3), **extra)
