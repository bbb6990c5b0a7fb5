"""Stage progress lines on stderr: what runs, and how long it took."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def say(message: str) -> None:
    print(f"[edgeship] {message}", file=sys.stderr, flush=True)


@contextmanager
def stage(name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
    say(f"{name} ...")
    t0 = time.perf_counter()
    yield
    seconds = time.perf_counter() - t0
    if timings is not None:
        timings[name] = round(seconds, 3)
    say(f"{name} done in {seconds:.1f} s")
