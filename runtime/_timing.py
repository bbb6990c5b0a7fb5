"""What the benchmark and the regression gate both time with: a block of timed calls, and a batch-1 sample input.

Shared by :mod:`._bench` and :mod:`._check`, so neither imports the other.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._errors import InputError
from ._model import Model

# Largest sample input ``sample_input`` builds (a model asking for more is corrupt).
MAX_SAMPLE_BYTES = 1 << 28


def time_block(predict: Any, x: np.ndarray, calls: int, clock: Any = time.perf_counter_ns) -> list[int]:
    """``calls`` back-to-back calls of ``predict(x)``; each call's time in ``clock`` units (ns)."""
    times = []
    for _ in range(calls):
        t0 = clock()
        predict(x)
        times.append(clock() - t0)
    return times


def _one_sample(spec_shape: tuple[int | None, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    shape = (1, *[d if d is not None else 1 for d in spec_shape[1:]])
    if int(np.prod(shape, dtype=np.float64)) * max(dtype.itemsize, 1) > MAX_SAMPLE_BYTES:
        raise InputError(
            f"Expected a model input of at most {MAX_SAMPLE_BYTES >> 20} MiB per sample. Received: shape {shape}. "
            "The model file declares an implausible input; re-export it."
        )
    if dtype.kind == "f":
        return rng.random(shape, dtype=np.float32).astype(dtype, copy=False)
    if dtype.kind == "b":
        return np.zeros(shape, dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)


def sample_input(model: Model, seed: int = 0) -> Any:
    """A batch-1 input for ``model``: uniform [0, 1) floats, or small integer ids.

    One array for a single-input model, a list of arrays otherwise.
    """
    rng = np.random.default_rng(seed)
    if len(model.inputs) == 1:
        return _one_sample(model.inputs[0].shape, np.dtype(model._in_dtype), rng)
    return [
        _one_sample(spec.shape, np.dtype(np.float32) if spec.quantized else np.dtype(spec.dtype), rng)
        for spec in model.inputs
    ]
