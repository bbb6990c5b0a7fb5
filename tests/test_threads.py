"""Thread safety: 8 threads x 2,000 predictions give exactly the single-threaded results."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from edgeship.runtime import load, load_eval

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root

# The emulated arm64 stage makes fewer calls per thread ($EDGESHIP_THREAD_CALLS): qemu runs them ~50x slower.
THREADS, CALLS = 8, int(os.environ.get("EDGESHIP_THREAD_CALLS", "2000"))
VARIANTS = [("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8")]


def _batches(x: np.ndarray, t: int) -> list[np.ndarray]:
    # Each thread its own inputs and its own batch size (1, 2 or 3), so threads also
    # race on the interpreter's batch handling, not only on its tensors.
    size = 1 + t % 3
    starts = (np.arange(CALLS) * 7 + t * 31) % (len(x) - size)
    return [np.ascontiguousarray(x[s : s + size]) for s in starts]


@pytest.mark.parametrize(("fmt", "precision"), VARIANTS)
def test_eight_threads_match_single_threaded(default_bundle: Path, fmt: str, precision: str) -> None:
    x, _ = load_eval(default_bundle)
    inputs = [_batches(x, t) for t in range(THREADS)]
    with load(default_bundle, format=fmt, precision=precision) as model:
        expected = [[model.predict(b) for b in batches] for batches in inputs]
        got: list[list[np.ndarray] | None] = [None] * THREADS
        errors: list[BaseException] = []
        barrier = threading.Barrier(THREADS)

        def work(t: int) -> None:
            try:
                barrier.wait()
                got[t] = [model.predict(b) for b in inputs[t]]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert not errors, errors[:3]
    mismatches = sum(
        not np.array_equal(a, b) for t in range(THREADS) for a, b in zip(expected[t], got[t] or [])
    )
    assert all(g is not None and len(g) == CALLS for g in got)
    assert mismatches == 0, f"{mismatches} of {THREADS * CALLS} predictions differ from single-threaded"
