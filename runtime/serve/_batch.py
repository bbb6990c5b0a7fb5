"""Dynamic batching: requests that arrive within a short delay run as one ``predict`` call.

Off by default. On a CPU the engine's cost per sample barely falls with the batch, so
batching mostly trades latency for a little throughput; benchmarks/serve_load.py measures it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np


class Batcher:
    """Collects single-input numeric requests for one model; flushes at ``max_batch`` rows or after ``delay_s``."""

    def __init__(self, model: Callable[[], Any], max_batch: int, delay_s: float,
                 on_exec: Callable[[float], None]) -> None:
        self._model = model  # its Served's model: a reload makes a new batcher, this one flushes on the old
        self._max = max_batch
        self._delay = delay_s
        self._on_exec = on_exec
        self._pending: list[tuple[np.ndarray, asyncio.Future[Any]]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None

    async def predict(self, x: np.ndarray) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((x, future))
        self._rows += len(x)
        if self._rows >= self._max:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._delay, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._pending, self._rows = self._pending, [], 0
        if not items:
            return
        model = self._model()
        try:
            batch = np.concatenate([x for x, _ in items]) if len(items) > 1 else items[0][0]
            clock = asyncio.get_running_loop().time
            start = clock()
            y = model.predict(batch)
            self._on_exec(clock() - start)
        except Exception:  # a bad sample or mismatched shapes: each request gets its own answer
            self._one_by_one(model, items)
            return
        offset = 0
        for x, future in items:
            if not future.done():
                future.set_result(y[offset:offset + len(x)])
            offset += len(x)

    def _one_by_one(self, model: Any, items: list[tuple[np.ndarray, asyncio.Future[Any]]]) -> None:
        clock = asyncio.get_running_loop().time
        for x, future in items:
            if future.done():
                continue
            start = clock()
            try:
                future.set_result(model.predict(x))
            except Exception as exc:
                future.set_exception(exc)
            self._on_exec(clock() - start)
