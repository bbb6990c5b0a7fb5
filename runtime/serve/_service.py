"""What one server shares across requests: the options, the models, the metrics, the log and the limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ._batch import Batcher
from ._errors import OverloadedError, ServeError, one_line
from ._metrics import Metrics
from ._repository import VERSION, Repository, Served


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
    max_samples: int = 64
    max_connections: int = 0  # 0: up to 4,096, below the file-descriptor limit (see _server.connection_budget)
    max_header_bytes: int = 64 * 1024
    request_timeout: float = 30.0
    header_timeout: float = 5.0
    keep_alive_timeout: float = 5.0
    shutdown_timeout: float = 10.0
    auth_token_file: str | None = None
    log_file: str | None = None
    max_batch_size: int = 0
    batch_delay_us: int = 500


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
        self.batchers: dict[str, tuple[Served, Batcher]] = {}
        for name, served in repo.models.items():
            self.metrics.loaded(name, VERSION, served.model, served.loaded_at)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of ``--max-concurrency`` slots for a request's work, or :class:`OverloadedError` (503).

        An infer request takes its slot only once its body is in: requests still reading their
        body (bounded by ``--request-timeout`` and ``--max-connections``) never hold one.
        """
        limit = self.options.max_concurrency
        if self.inflight >= limit:
            raise OverloadedError(f"Expected at most {limit} requests in flight. "
                                  "Received: one more. Fix: retry after the Retry-After seconds.")
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            yield
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()

    def batcher(self, served: Served) -> Batcher | None:
        """The dynamic batcher of ``served``; ``None`` when batching is off or the model cannot batch."""
        o = self.options
        if o.max_batch_size <= 1 or served.takes_text or len(served.model.inputs) != 1 \
                or len(served.model.outputs) != 1:
            return None
        held = self.batchers.get(served.name)
        if held is None or held[0] is not served:  # new, or reloaded: the old batcher flushes on the old model
            b = Batcher(lambda: served.model, o.max_batch_size, o.batch_delay_us / 1e6,
                        self.metrics.model(served.name, VERSION).executed)
            held = self.batchers[served.name] = (served, b)
        return held[1]

    async def reload(self, names: list[str] | None = None) -> dict[str, str]:
        """Reload bundles from disk; a bundle that fails verification keeps its old model (and says why)."""
        result = {}
        for name in names or list(self.repo.models):
            try:
                new = await asyncio.to_thread(self.repo.prepare_reload, name)
            except Exception as exc:
                self.metrics.reload_failure.labels(name).inc()
                self.log.write("reload_failed", model=name, error=type(exc).__name__, message=one_line(exc),
                               kept=self.repo.models[name].model.path.name)
                result[name] = f"kept the old model: {type(exc).__name__}: {one_line(exc)}"
                continue
            self.repo.swap(new)
            self.metrics.loaded(name, VERSION, new.model, new.loaded_at)
            self.log.write("reloaded", model=name, file=new.model.path.name, reloads=new.reloads)
            result[name] = "reloaded"
        return result


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
