"""Build-side ``inspect``: the runtime's report, completed with ONNX shape inference.

Files edgeship writes carry every intermediate shape (``value_info``), so the
runtime alone computes the full arena. A foreign ``.onnx`` often does not;
when the ``onnx`` package is installed, shapes are inferred here so no tensor
is left out of the arena estimate.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgeship.runtime import arena_estimate, onnx_graph
from edgeship.runtime import inspect_file as runtime_inspect


def inspect_file(path: str | Path, *, measure: bool = False) -> dict[str, Any]:
    """Like :func:`edgeship.runtime._inspect.inspect_file`, inferring missing ONNX shapes."""
    report = runtime_inspect(path, measure=measure)
    if report["format"] != "onnx" or not report["estimates"]["ram_arena_unknown_tensors"]:
        return report
    try:
        onnx = importlib.import_module("onnx")
    except ImportError:
        return report
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=False)
    arena = arena_estimate(onnx_graph(model.SerializeToString()))
    report["estimates"].update(
        ram_arena_bytes=arena.arena_bytes,
        ram_arena_peak_op=arena.peak_op,
        ram_arena_unknown_tensors=len(arena.unknown_tensors),
        ram_arena_shapes="inferred by onnx.shape_inference",
    )
    return report
