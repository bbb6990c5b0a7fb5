"""The Open Inference Protocol's REST routes, plus /metrics and the repository reload route.

Routes raise typed errors (:mod:`._errors`); the app's exception handlers answer them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeship import __version__

from ._errors import JSON, OverloadedError
from ._protocol import InferRequest, encode_response, parse_request
from ._repository import VERSION, Served
from ._request import RequestInfo, inflate, read_body
from ._service import Service

Endpoint = Callable[[Request], Awaitable[Response]]
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status, media_type=JSON)


def make_routes(service: Service) -> list[Route]:
    """The routes, each a closure over ``service``."""
    repo = service.repo

    async def server_metadata(request: Request) -> Response:
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

    infer = _infer_endpoint(service)
    return [
        Route("/v2", server_metadata),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2/models/{name}", model_metadata),
        Route("/v2/models/{name}/versions/{version}", model_metadata),
        Route("/v2/models/{name}/ready", model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v2/repository/index", repository_index, methods=["POST", "GET"]),
        Route("/v2/repository/models/{name}/load", repository_load, methods=["POST"]),
        Route("/metrics", metrics),
    ]


def _infer_endpoint(service: Service) -> Endpoint:
    repo, options, metrics = service.repo, service.options, service.metrics

    async def infer(request: Request) -> Response:
        info: RequestInfo = request.state.info
        p = request.path_params
        info.model = repo.get(p["name"], p.get("version")).name  # an unknown name: 404 before the body
        body = await read_body(request, options.max_body_bytes, options.request_timeout)
        info.bytes_in = len(body)
        body = inflate(body, request.headers.get("content-encoding"), options.max_body_bytes)
        req = parse_request(body, request.headers.get("inference-header-content-length"),
                            max_samples=options.max_samples)
        # routed once the body is in: a reload while it arrived serves it on the new model, and the
        # model it runs on stays open until it is answered (Served.use)
        served = repo.get(p["name"], p.get("version"))
        with service.slot(), served.use():
            return await _run(served, req, info)

    async def _run(served: Served, req: InferRequest, info: RequestInfo) -> Response:
        x = served.arrange(req)
        info.batch = req.batch_size
        series = metrics.model(served.name, VERSION)
        batcher = service.batcher(served)
        if batcher is not None and req.batch_size:
            try:  # a queued request may wait; it never waits past the request timeout
                result = await asyncio.wait_for(batcher.predict(x), options.request_timeout)
            except asyncio.TimeoutError:
                raise OverloadedError(f"Expected a batched predict within {options.request_timeout:g} s. "
                                      "Received: no result in time. Fix: retry later, or lower the load.") from None
        else:
            start = time.perf_counter()
            result = served.model.predict(x)  # inline: a small model's predict is cheaper than a thread hop
            series.executed(time.perf_counter() - start)
        series.count.inc(req.batch_size)
        content, header_length = encode_response(served.name, VERSION, req.id, served.outputs(req, result, x))
        if header_length is None:
            return Response(content, media_type=JSON)
        return Response(content, media_type="application/octet-stream",
                        headers={"inference-header-content-length": str(header_length)})

    return infer
