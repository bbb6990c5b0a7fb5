"""Build parity: is an exported file the same model as the Keras one, on the eval sample?

The Keras side and the file side run here (TensorFlow, the runtime); the
comparison itself is :mod:`edgeship.core.parity`, the one rule every parity
check uses (build, cross-format, cross-platform).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.bundle import ParityResult, is_float_precision
from edgeship.core.parity import Outputs, Tolerance, compare


def keras_outputs(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """The Keras model's outputs on ``x``, keyed by Keras output name."""
    ys = model.predict(x, batch_size=64, verbose=0)
    ys = ys if isinstance(ys, list) else [ys]
    return {name: np.asarray(y) for name, y in zip(model.output_names, ys)}


def artifact_outputs(
    path: Path, fmt: str, x: np.ndarray, precision: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int | None, ...]]]:
    """Run a model file through the runtime; outputs (dequantized) keyed by user-facing name.

    TFLite tensor names are converter-made (``StatefulPartitionedCall:0``): the
    default signature maps them back to the Keras output names. ONNX keeps them.
    """
    from edgeship.runtime import load_file, read_graph

    graph = read_graph(path, fmt)
    by_tensor = {tensor: name for name, tensor in graph.output_names.items()}
    with load_file(Path(path), fmt, precision=precision, nan_policy="ignore") as model:
        ys = model.predict(x)
        ys = ys if isinstance(ys, list) else [ys]
        names = [by_tensor.get(o.name, o.name) for o in model.outputs]
        shapes = {n: tuple(o.shape) for n, o in zip(names, model.outputs)}
        return {n: np.asarray(y) for n, y in zip(names, ys)}, shapes


def check_artifact(
    path: Path,
    fmt: str,
    precision: str,
    reference: dict[str, np.ndarray],
    x: np.ndarray,
    tolerance: Tolerance | None = None,
    classifier: Collection[str] | None = None,
    rule: str | None = None,
) -> tuple[ParityResult, Outputs]:
    """Parity of one file against the Keras outputs ``reference`` on ``x``.

    ``classifier``: the outputs holding class scores, ``rule`` the task's parity
    rule (see :func:`edgeship.core.parity.compare`).

    Returns the result (for the manifest) and the artifact's outputs (for
    the cross-format check).
    """
    tol = tolerance or Tolerance()
    outs, shapes = artifact_outputs(path, fmt, x, precision)
    quantized = not is_float_precision(precision)
    result = compare(
        reference,
        outs,
        quantized=quantized,
        atol=tol.atol_for(precision),
        min_top1=tol.min_top1,
        min_sqnr_db=tol.min_sqnr_db,
        candidate_shapes=shapes,
        label=Path(path).name,
        classifier=classifier,
        rule=rule,
    )
    return dataclasses.replace(result, samples=int(len(x))), outs
