"""A header deadline around uvicorn's HTTP protocol: each request's headers must arrive within N seconds.

uvicorn times out idle keep-alive connections, but nothing times out a request whose headers
trickle in (its ``--timeout-request-start`` was planned in uvicorn#157 and never added; 0.55 has
no such option), so one slow client could hold a connection forever (slowloris). An ASGI layer
cannot help: the app runs only once the headers are complete.

uvicorn takes any ``asyncio.Protocol`` class as ``Config(http=...)``. :class:`HeaderDeadline` is
one: it holds the protocol uvicorn would use for ``http="httptools"`` and passes every
``asyncio.Protocol`` call on to it unchanged (composition: it reads and overrides none of that
class's attributes or methods). It follows the same bytes with its own httptools parser, whose
callbacks say when a request begins and when its headers end.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # what Config(http="httptools") loads

_CLOSE = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\n%scontent-length: %d\r\n\r\n%s"


class HeaderDeadline(asyncio.Protocol):
    """One HTTP connection: uvicorn's protocol inside, a 408 and a close when headers are late.

    Also the connection limits: a 431 and a close past ``max_header_bytes`` of request line and
    headers, a 408 and a close when a body is still arriving ``body_seconds`` after its headers,
    and at most ``max_connections`` open at once. At that limit a new connection takes the
    place of the oldest one still waiting for its headers, else for its body (408); when every
    connection has a whole request in, the new one gets a 503 and is closed.

    Make a class per server with :meth:`limit`; uvicorn constructs it with its own keyword
    arguments, passed through untouched.
    """

    seconds: ClassVar[float] = 5.0
    #: The backstop for a body: the app's read_body answers at --request-timeout, but nothing reads
    #: the body of a request refused before it (a 401), which could otherwise trickle in forever.
    body_seconds: ClassVar[float] = 31.0
    max_connections: ClassVar[int] = 1024
    max_header_bytes: ClassVar[int] = 64 * 1024
    #: This server's open connections, oldest first (for the limit and the drain at shutdown).
    live: ClassVar[dict[HeaderDeadline, None]] = {}

    @classmethod
    def limit(cls, seconds: float, body_seconds: float = 31.0, max_connections: int = 1024,
              max_header_bytes: int = 64 * 1024) -> type[HeaderDeadline]:
        """A protocol class for ``Config(http=...)`` with these limits, and its own set of connections."""
        return type("HeaderDeadline", (cls,), {"seconds": seconds, "body_seconds": body_seconds, "live": {},
                                               "max_connections": max_connections, "max_header_bytes": max_header_bytes})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inner = HttpToolsProtocol(*args, **kwargs)
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn's own parser
        self._timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._in_request = False  # headers complete, body not yet: body_seconds, not the header deadline
        self._header_bytes = 0
        self.headers_seen = 0  # requests on this connection whose headers arrived
        self.messages = 0  # ... and whose bodies arrived

    @property
    def waiting(self) -> bool:
        """Open, and no request's headers have arrived yet (a request may be on its way)."""
        return self.headers_seen == 0 and self._transport is not None and not self._transport.is_closing()

    # asyncio.Protocol: watch, then hand on
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        full = len(self.live) >= self.max_connections and not self._evict_one()
        self.live[self] = None
        self.inner.connection_made(transport)  # type: ignore[arg-type]
        if full:
            self._answer(b"503 Service Unavailable", f"Expected at most {self.max_connections} open connections, "
                         "each with a request in progress. Received: one more. Fix: retry in a second.", b"retry-after: 1\r\n")
            return
        self._arm()  # a connection that never sends a byte is cut off too

    def data_received(self, data: bytes) -> None:
        if self._parser is not None:
            done = self.messages
            try:
                self._parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade):
                self._parser = None  # uvicorn answers a bad request or an upgrade itself
                self._disarm()
            if self._parser is not None and self._timer is None and not self._in_request and self.messages == done:
                # bytes between requests that begin no request line, a bare CR/LF say: they start the next
                # request's deadline too (uvicorn's keep-alive timer stops at any byte). Not when they came
                # with the end of a body: some clients send a CR/LF after it, and the response may be slow.
                self._arm()
            if self._in_request and self._body_timer is None:  # a body still to come
                self._body_timer = asyncio.get_running_loop().call_later(self.body_seconds, self._body_late)
            if self._header_bytes > self.max_header_bytes:
                self._parser = None
                self._disarm()
                self._answer(b"431 Request Header Fields Too Large", f"Expected a request line and headers of at "
                             f"most {self.max_header_bytes:,} bytes. Received: more. Fix: send fewer or shorter headers.")
                return  # never handed on: uvicorn would keep every header
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._disarm_body()
        self.live.pop(self, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        if self._timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self.headers_seen += 1
        self._in_request, self._header_bytes = True, 0
        self._disarm()  # the body has --request-timeout; the idle time after the response, keep-alive's

    def on_message_complete(self) -> None:
        self._in_request = False
        self.messages += 1
        self._disarm_body()

    def _evict_one(self) -> bool:
        """Close the oldest connection waiting for its headers, else for its body (408); False when none is."""
        for waiting_for_body in (False, True):
            for conn in self.live:
                if (conn._body_timer if waiting_for_body else conn._timer) is not None:
                    conn._disarm_body()
                    conn._expire()
                    return True
        return False

    def _disarm_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        self._body_timer = None
        self._answer(b"408 Request Timeout", f"Expected the request body within {self.body_seconds:g} s. "
                     "Received: part of it. Fix: send the body promptly.")

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._disarm()
        self._answer(b"408 Request Timeout", f"Expected the request headers within {self.seconds:g} s. "
                     "Received: part of them. Fix: send the whole request promptly.")

    def _answer(self, status: bytes, message: str, headers: bytes = b"") -> None:
        if self._transport is not None and not self._transport.is_closing():
            body = json.dumps({"error": message}).encode()
            self._transport.write(_CLOSE % (status, headers, len(body), body))
            self._transport.close()
