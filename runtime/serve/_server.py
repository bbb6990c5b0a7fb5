"""uvicorn underneath: the header deadline (see _deadline), SIGTERM drains and exits 0, SIGHUP reloads the bundles."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import Generator

import uvicorn

from ._app import make_app
from ._deadline import HeaderDeadline
from ._errors import ServeError
from ._repository import Repository
from ._service import JsonLog, ServeOptions, Service


class _Server(uvicorn.Server):
    """uvicorn's server with our signal handling: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads."""

    def __init__(self, config: uvicorn.Config, service: Service, listener: socket.socket,
                 protocol: type[HeaderDeadline]) -> None:
        super().__init__(config)
        self.service, self.protocol = service, protocol
        self.listener: socket.socket | None = listener
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._stop, "SIGINT")
        hup = getattr(signal, "SIGHUP", None)  # POSIX only
        if hup is not None:
            loop.add_signal_handler(hup, self._schedule_reload)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, hup):
                if sig is not None:
                    loop.remove_signal_handler(sig)

    def _stop(self, name: str) -> None:
        if self.should_exit:
            self.force_exit = True
        self.service.ready = False
        self.service.log.write("stopping", signal=name, inflight=self.service.inflight)
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Take the connections already queued in the listen backlog before closing it, then drain.

        Closing a listening socket resets the connections still in its backlog: their clients
        completed the TCP handshake and sent a request that nobody reads. uvicorn also closes a
        connection that has not delivered a request yet, and a close with unread bytes is a reset
        too. So accept the backlog, stop listening, give connections without a request up to
        0.25 s to deliver one, and let uvicorn finish every request.
        """
        taken = await self._accept_backlog()
        for server in self.servers:
            server.close()
        self.service.log.write("draining", backlog_taken=taken, connections=len(self.protocol.live),
                               requests=len(self.server_state.tasks))
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline and any(c.waiting for c in self.protocol.live):
            await asyncio.sleep(0.005)  # a connection accepted but not yet read: its request is on the way
        await super().shutdown(sockets)

    async def _accept_backlog(self) -> int:
        loop = asyncio.get_running_loop()
        factory = functools.partial(self.protocol, config=self.config,
                                    server_state=self.server_state, app_state=self.lifespan.state)
        taken = 0
        while self.listener is not None:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, OSError):
                break
            conn.setblocking(False)
            await loop.connect_accepted_socket(factory, conn)
            taken += 1
        return taken

    def _schedule_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    async def _reload(self) -> None:
        self.service.log.write("reloading", signal="SIGHUP")
        await self.service.reload()


#: File descriptors kept for what is not a connection: the log, model files, the event loop, a reload.
_RESERVED_FDS = 64


def connection_budget(asked: int) -> tuple[int, int]:
    """``(max connections, accept backlog)`` within the file-descriptor limit, raised to the hard limit first.

    asyncio accepts up to ``backlog`` connections in one go before any of them can be closed, so
    connections plus backlog plus a reserve stay below the limit: accept() never fails with
    EMFILE (which asyncio logs as a traceback per attempt and answers by not accepting for 1 s).
    """
    try:
        import resource
    except ImportError:  # not POSIX: no limit to read
        return asked or 1024, 2048
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(1 << 20, 65536 if hard == resource.RLIM_INFINITY else hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    spare = (1 << 20 if soft == resource.RLIM_INFINITY else soft) - _RESERVED_FDS
    backlog = max(8, min(2048, spare // 4))
    room = spare - backlog
    if room < 1 or asked > room:
        raise ServeError(f"Expected --max-connections of at most {max(room, 0)} (file-descriptor limit {soft}, "
                         f"less {_RESERVED_FDS} reserved and a backlog of {backlog}). Received: {asked or 'the default'}. "
                         "Fix: raise the limit (ulimit -n, systemd LimitNOFILE=) or lower --max-connections.")
    return asked or min(4096, room), backlog


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say TCP; without it Nagle's
    # algorithm holds a response's second write for the client's delayed ACK (40 ms on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"Expected a free address to listen on. Received: {host}:{port} ({exc.strerror}). "
                         "Fix: pick another --port, or 0 for any free one.") from None
    sock.listen(2048)
    return sock


def run(options: ServeOptions) -> int:
    """Load the bundles, listen, and serve until SIGTERM; returns the exit code (0 after a clean drain)."""
    log = JsonLog(options.log_file)
    repo = None
    try:
        repo = Repository(options.bundles, format=options.format, precision=options.precision,
                          threads=options.threads)
        service = Service(repo, options, log)
        max_connections, backlog = connection_budget(options.max_connections)
        sock = _listen(options.host, options.port)
    except Exception as exc:
        if options.log_file:  # on stderr the command's own error line says it once
            log.write("error", error=type(exc).__name__, message=" ".join(str(exc).split()))
        for served in (repo.models.values() if repo else ()):
            served.model.close()
        log.close()
        raise
    protocol = HeaderDeadline.limit(options.header_timeout, options.request_timeout + 1, max_connections,
                                    options.max_header_bytes)
    config = uvicorn.Config(
        make_app(service), http=protocol, lifespan="off", access_log=False, backlog=backlog,
        log_config=None, log_level="warning", timeout_keep_alive=max(1, int(options.keep_alive_timeout)),
        timeout_graceful_shutdown=max(1, int(options.shutdown_timeout)), server_header=False,
    )
    server = _Server(config, service, sock, protocol)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.write("listening", host=host, port=port, url=f"http://{shown}:{port}/v2", pid=os.getpid(),
              max_connections=max_connections, max_samples=options.max_samples,
              models={n: {"file": s.model.path.name, "format": s.model.format, "precision": s.model.precision,
                          "engine": s.model.engine} for n, s in repo.models.items()})
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        for served in repo.models.values():
            served.model.close()
        sock.close()
    log.write("stopped", requests_inflight=service.inflight)
    log.close()
    return 0

