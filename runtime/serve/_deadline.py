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
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # what Config(http="httptools") loads

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s")


class HeaderDeadline(asyncio.Protocol):
    """One HTTP connection: uvicorn's protocol inside, a 408 and a close when headers are late.

    Make a class per server with :meth:`limit`; uvicorn constructs it with its own keyword
    arguments, passed through untouched.
    """

    seconds: ClassVar[float] = 5.0
    #: This server's open connections (for the drain at shutdown).
    live: ClassVar[set[HeaderDeadline]] = set()

    @classmethod
    def limit(cls, seconds: float) -> type[HeaderDeadline]:
        """A protocol class for ``Config(http=...)`` with a ``seconds`` header deadline."""
        return type("HeaderDeadline", (cls,), {"seconds": seconds, "live": set()})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inner = HttpToolsProtocol(*args, **kwargs)
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn's own parser
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self.headers_seen = 0  # requests on this connection whose headers arrived

    @property
    def waiting(self) -> bool:
        """Open, and no request's headers have arrived yet (a request may be on its way)."""
        return self.headers_seen == 0 and self._transport is not None and not self._transport.is_closing()

    # asyncio.Protocol: watch, then hand on
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.live.add(self)
        self.inner.connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a connection that never sends a byte is cut off too

    def data_received(self, data: bytes) -> None:
        if self._parser is not None:
            try:
                self._parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade):
                self._parser = None  # uvicorn answers a bad request or an upgrade itself
                self._disarm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.live.discard(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        if self._timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self.headers_seen += 1
        self._disarm()  # the body has --request-timeout; the idle time after the response, keep-alive's

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            body = (b'{"error": "Expected the request headers within %.3g s. Received: part of them. '
                    b'Fix: send the whole request promptly."}' % self.seconds)
            self._transport.write(_408 % (len(body), body))
            self._transport.close()
