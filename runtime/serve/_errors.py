"""The server's errors, each carrying its HTTP status, and the one table that turns errors into responses.

Every route raises; nothing catches to build a response. Starlette's ``exception_handlers``
look a raised exception up along its MRO in :data:`EXCEPTION_HANDLERS` and answer with the
Open Inference Protocol's error body, ``{"error": "<one-line message>"}``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from edgeship.runtime import EdgeshipError, InputError

from ._protocol import SamplesError

JSON = "application/json"


class ServeError(EdgeshipError, ValueError):
    """The server cannot start or answer as asked: a bad option, a busy port, a token file, a name clash."""

    status_code: ClassVar[int] = 500
    #: Response headers the status needs (``connection: close`` when the body is left unread, ...).
    headers: ClassVar[dict[str, str]] = {}


class NotFoundError(ServeError, LookupError):
    """An unknown model name or version (HTTP 404)."""

    status_code = 404


class UnauthorizedError(ServeError):
    """No bearer token, or a wrong one (HTTP 401)."""

    status_code = 401
    headers = {"www-authenticate": "Bearer"}


class BodyTimeoutError(ServeError):
    """The request body did not arrive within ``--request-timeout`` (HTTP 408; the connection closes)."""

    status_code = 408
    headers = {"connection": "close"}


class BodyTooLargeError(ServeError):
    """The request body is past ``--max-body-bytes``, as sent or once inflated (HTTP 413; the connection closes)."""

    status_code = 413
    headers = {"connection": "close"}


class EncodingError(ServeError):
    """A ``Content-Encoding`` the server cannot undo (HTTP 415)."""

    status_code = 415


class OverloadedError(ServeError):
    """Too many requests in flight, or no batched result in time (HTTP 503; retry after a second)."""

    status_code = 503
    headers = {"retry-after": "1"}


class ClientGone(Exception):
    """The client disconnected before its request body arrived (logged as 499; nobody reads the answer)."""

    status_code: ClassVar[int] = 499


def one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines())


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps({"error": message}), status, headers, media_type=JSON)


def _typed(status: int | None) -> Any:
    """A handler answering with ``status``, or with the exception's own ``status_code`` when ``None``."""

    async def handle(request: Request, exc: Exception) -> Response:
        code = status if status is not None else exc.status_code  # type: ignore[attr-defined]
        text = one_line(exc) or type(exc).__name__
        named = f"{type(exc).__name__}: {text}"
        # a 500 that is no edgeship error names its type to the client too: "RuntimeError: ..."
        message = named if code == 500 and not isinstance(exc, EdgeshipError) else text
        info = request.state.info
        info.status, info.error = code, named  # for the log line
        return error_response(code, message, getattr(exc, "headers", None))

    return handle


async def _client_gone(request: Request, exc: Exception) -> Response:
    request.state.info.status = ClientGone.status_code
    return Response(b"", ClientGone.status_code)  # nobody reads it: the connection is gone


async def _no_route(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return error_response(404, f"Expected a route of the Open Inference Protocol (/v2/...). Received: "
                                   f"{request.method} {request.url.path}. Fix: see GET /v2.")
    return error_response(status, f"Expected another method for {request.url.path}. Received: {request.method}. "
                                  f"Fix: {getattr(exc, 'detail', '')}.")


#: Looked up along the raised exception's MRO. Starlette answers the ``Exception`` entry from its
#: outermost middleware and then re-raises (for the server to log); the gate stops that re-raise
#: once the answer is out (see ``Gate.__call__``), so a 500 keeps the connection like any error.
EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: _no_route,  # starlette's own: no such route, or the wrong method
    ClientGone: _client_gone,
    ServeError: _typed(None),  # each subclass carries its status_code
    SamplesError: _typed(413),  # more samples than --max-samples: a client can split the batch
    InputError: _typed(400),  # the runtime's: a request the model cannot take
    Exception: _typed(500),  # anything else (an engine failure): a 500 that names the error
}


async def refuse(request: Request, exc: ServeError) -> Response:
    """The response for an error found before the app runs (auth, concurrency): the same table's."""
    return await EXCEPTION_HANDLERS[ServeError](request, exc)  # type: ignore[no-any-return]
