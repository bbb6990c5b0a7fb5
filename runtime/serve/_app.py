"""The ASGI application: the routes on starlette, behind one gate for auth, limits, metrics and the log line."""

from __future__ import annotations

import contextlib
import hmac
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from ._errors import EXCEPTION_HANDLERS, OverloadedError, ServeError, UnauthorizedError, refuse
from ._repository import VERSION
from ._request import RequestInfo
from ._routes import make_routes
from ._service import Service

_OPEN = ("/v2/health/",)  # no token needed: orchestrators probe these
_INFER_SUFFIX = "/infer"


def make_app(service: Service) -> Gate:
    """The server's ASGI application: the gate in front of the starlette app."""
    return Gate(service, Starlette(routes=make_routes(service), exception_handlers=EXCEPTION_HANDLERS))


def _is_infer(scope: dict[str, Any]) -> bool:
    return scope["method"] == "POST" and scope["path"].endswith(_INFER_SUFFIX)


def authorized(token: bytes, scope: dict[str, Any]) -> bool:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, given = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)
    return False


class Gate:
    """Outermost ASGI layer: request id, auth, concurrency limit, metrics and the log line."""

    def __init__(self, service: Service, app: Starlette) -> None:
        self.service, self.app = service, app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        svc, path = self.service, scope["path"]
        info = RequestInfo.start(scope)
        header = (b"x-request-id", info.id.encode("latin-1"))

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                info.status = info.status or message["status"]
                message["headers"] = [*message.get("headers", []), header]
            elif not message.get("more_body", False):  # metrics and log line before the client can see the end
                self._account(scope, info, time.perf_counter() - start)
            await send(message)

        refusal = self._refusal(scope, path)
        if refusal is not None:
            response = await refuse(Request(scope, receive), refusal)
            await response(scope, receive, send_with_id)
        else:
            # an infer request takes its concurrency slot in the route, once its body is in
            slot = contextlib.nullcontext() if _is_infer(scope) else svc.slot()
            try:
                with slot:
                    await self.app(scope, receive, send_with_id)
            except OverloadedError as exc:
                response = await refuse(Request(scope, receive), exc)
                await response(scope, receive, send_with_id)
            except Exception:
                if not info.accounted:  # no whole answer went out: uvicorn answers or drops the connection
                    raise
                # else starlette's 500 handler answered, and re-raised only for the server to log: the
                # log line already has the error, and the connection may serve its next request
        if not info.accounted:  # no response completed (the client left, or the app failed)
            self._account(scope, info, time.perf_counter() - start)

    def _refusal(self, scope: dict[str, Any], path: str) -> ServeError | None:
        svc = self.service
        if path.startswith(_OPEN):
            return None
        if svc.token is not None and not authorized(svc.token, scope):
            return UnauthorizedError("Expected an Authorization: Bearer token. Received: none or a wrong one. "
                                     "Fix: send the server's --auth-token-file token.")
        return None

    def _account(self, scope: dict[str, Any], info: RequestInfo, seconds: float) -> None:
        info.accounted = True
        svc, model, path = self.service, info.model, scope["path"]
        if model is None and path.startswith("/v2/models/") and path.endswith(_INFER_SUFFIX):
            name = path.split("/")[3]  # refused before the route ran (401, 503): still that model's failure
            model = name if name in svc.repo.models else None
        if model is not None and path.endswith(_INFER_SUFFIX):
            if info.status == 200:
                series = svc.metrics.model(model, VERSION)
                series.success.inc()
                series.request_duration.observe(seconds)
            else:
                svc.metrics.failure.labels(model, VERSION, str(info.status)).inc()
        extra = {"error": info.error} if info.error is not None else {}
        svc.log.write("request", request_id=info.id, model=model, route=path, method=scope["method"],
                      status=info.status, batch_size=info.batch, bytes_in=info.bytes_in,
                      latency_ms=round(seconds * 1000, 3), **extra)
