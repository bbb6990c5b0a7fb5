"""The one calibration feeder: a batch of samples as batch-1 arrays, in the dtype the model takes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def batch1(x: np.ndarray) -> Iterator[np.ndarray]:
    """``x[i : i + 1]`` for each row, contiguous; integer inputs (token ids) keep their dtype, the rest is float32.

    Feeds the TFLite representative dataset, ONNX Runtime's calibration reader
    and the per-layer SQNR runs alike, so all three see the same inputs.
    """
    dtype = x.dtype if x.dtype.kind in "iu" else np.float32
    for i in range(len(x)):
        yield np.ascontiguousarray(x[i : i + 1], dtype=dtype)
