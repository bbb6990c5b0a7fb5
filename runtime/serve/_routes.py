"""The Open Inference Protocol's REST routes, plus /metrics and the repository reload route."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeship import __version__
from edgeship.runtime import EdgeshipError

from ._protocol import encode_response, parse_request
from ._repository import VERSION

if TYPE_CHECKING:
    from ._app import Service

Endpoint = Callable[[Request], Awaitable[Response]]
_JSON = "application/json"
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status, media_type=_JSON)


def _guard(endpoint: Endpoint) -> Endpoint:
    """Every typed error becomes ``{"error": message}`` with its status; the gate logs it."""
    from ._app import ClientGone, error_response, status_of

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ClientGone:
            request.scope["edgeship"]["status"] = 499
            return Response(b"", 499)  # nobody reads it: the connection is gone
        except Exception as exc:
            status = status_of(exc)
            message = " ".join(line.strip() for line in str(exc).splitlines()) or type(exc).__name__
            if status == 500 and not isinstance(exc, EdgeshipError):
                message = f"{type(exc).__name__}: {message}"
            request.scope["edgeship"]["error"] = f"{type(exc).__name__}: {message}"  # for the log line
            return error_response(status, message, getattr(exc, "headers", None))

    return wrapped


def make_routes(service: Service) -> list[Route]:
    """The routes, each a closure over ``service``."""
    repo = service.repo

    async def server_metadata(request: Request) -> Response:
        from ._app import EXTENSIONS

        return _json({"name": "edgeship", "version": __version__, "extensions": EXTENSIONS})

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        return _json({"ready": service.ready}, 200 if service.ready else 503)

    async def model_metadata(request: Request) -> Response:
        p = request.path_params
        return _json(repo.get(p["name"], p.get("version")).metadata())

    async def model_ready(request: Request) -> Response:
        p = request.path_params
        served = repo.get(p["name"], p.get("version"))
        return _json({"name": served.name, "ready": service.ready}, 200 if service.ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.render(), media_type=_PROMETHEUS)

    async def repository_index(request: Request) -> Response:
        return _json([{"name": n, "version": VERSION, "state": "READY"} for n in repo.models])

    async def repository_load(request: Request) -> Response:
        name = request.path_params["name"]
        repo.get(name)
        result = await service.reload([name])
        return _json({"name": name, "result": result[name]}, 200 if result[name] == "reloaded" else 409)

    infer = _guard(_infer_endpoint(service))
    guard = _guard
    return [
        Route("/v2", guard(server_metadata)),
        Route("/v2/health/live", guard(live)),
        Route("/v2/health/ready", guard(ready)),
        Route("/v2/models/{name}", guard(model_metadata)),
        Route("/v2/models/{name}/versions/{version}", guard(model_metadata)),
        Route("/v2/models/{name}/ready", guard(model_ready)),
        Route("/v2/models/{name}/versions/{version}/ready", guard(model_ready)),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v2/repository/index", guard(repository_index), methods=["POST", "GET"]),
        Route("/v2/repository/models/{name}/load", guard(repository_load), methods=["POST"]),
        Route("/metrics", guard(metrics)),
    ]


def _infer_endpoint(service: Service) -> Endpoint:
    from ._app import HTTPError, inflate, read_body

    repo, options, metrics = service.repo, service.options, service.metrics

    async def infer(request: Request) -> Response:
        info = request.scope["edgeship"]
        p = request.path_params
        served = repo.get(p["name"], p.get("version"))
        info["model"] = served.name
        body = await read_body(request, options.max_body_bytes, options.request_timeout)
        info["bytes"] = len(body)
        body = inflate(body, request.headers.get("content-encoding"), options.max_body_bytes)
        req = parse_request(body, request.headers.get("inference-header-content-length"))
        x = served.arrange(req)
        info["batch"] = req.batch_size
        kids = metrics.model(served.name, VERSION)
        batcher = service.batcher(served)
        if batcher is not None and req.batch_size:
            try:  # a queued request may wait; it never waits past the request timeout
                result = await asyncio.wait_for(batcher.predict(x), options.request_timeout)
            except asyncio.TimeoutError:
                raise HTTPError(503, f"Expected a batched predict within {options.request_timeout:g} s. Received: "
                                     "no result in time. Fix: retry later, or lower the load.",
                                {"retry-after": "1"}) from None
        else:
            start = time.perf_counter()
            result = served.model.predict(x)  # inline: a small model's predict is cheaper than a thread hop
            kids[2].inc()
            kids[4].observe(time.perf_counter() - start)
        kids[1].inc(req.batch_size)
        content, header_length = encode_response(served.name, VERSION, req.id, served.outputs(req, result, x))
        if header_length is None:
            return Response(content, media_type=_JSON)
        return Response(content, media_type="application/octet-stream",
                        headers={"inference-header-content-length": str(header_length)})

    return infer
