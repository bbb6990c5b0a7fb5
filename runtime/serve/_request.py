"""What one request carries: its record on ``request.state``, and its body, read within the limits."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from edgeship.runtime import InputError

from ._errors import BodyTimeoutError, BodyTooLargeError, ClientGone, EncodingError


@dataclass
class RequestInfo:
    """Per-request data on ``scope["state"]["info"]`` (``request.state.info``): what the metrics and the log line say."""

    id: str
    model: str | None = None
    batch: int = 0
    bytes_in: int = 0
    status: int = 0
    error: str | None = None
    accounted: bool = False

    @classmethod
    def start(cls, scope: dict[str, Any]) -> RequestInfo:
        """A new record for the request of ``scope``, under its ``X-Request-ID`` (else a fresh one)."""
        info = cls(_request_id(scope))
        scope.setdefault("state", {})["info"] = info
        return info


def _request_id(scope: dict[str, Any]) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            return value.decode("latin-1")[:128]
    return uuid.uuid4().hex


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused past ``limit`` bytes as they stream in (never buffered past it).

    The whole body, its first byte included, must arrive within ``timeout`` seconds: a request
    whose headers promise a body that never comes gets a 408, not a connection held forever.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(int(length), limit)
    try:
        async with asyncio.timeout(timeout):
            return await _read(request.receive, limit)
    except TimeoutError:
        raise BodyTimeoutError(f"Expected the request body within {timeout:g} s. Received: part of it or none. "
                               "Fix: send the body promptly.") from None


async def _read(receive: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise too_large(total, limit, so_far=bool(chunks) or message.get("more_body", False))
        if not message.get("more_body", False):
            return b"".join([*chunks, chunk]) if chunks else chunk
        chunks.append(chunk)


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a request's ``Content-Encoding`` (tritonclient can gzip or deflate), never past ``limit`` bytes."""
    if encoding in (None, "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise EncodingError(f"Expected Content-Encoding gzip, deflate or none. Received: {encoding!r}. "
                            "Fix: send the body uncompressed or gzip it.")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputError(f"Expected a {encoding} body. Received: bytes that do not inflate ({exc}). "
                         "Fix: compress the body as Content-Encoding says.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large(len(out), limit, so_far=True)
    return out


def too_large(size: int, limit: int, so_far: bool = False) -> BodyTooLargeError:
    got = f"more than {limit:,} bytes" if so_far else f"{size:,} bytes"
    return BodyTooLargeError(f"Expected a request body of at most {limit:,} bytes. Received: {got}. Fix: send "
                             "smaller batches, or start the server with a larger --max-body-bytes.")
