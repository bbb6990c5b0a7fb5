"""RAM and flash estimates for a model file.

* flash: the file's bytes.
* arena: the activation memory an engine must hold at once, computed from the
  model's own tensor graph: every non-constant tensor is live from the
  operator that produces it (graph inputs: from the start) to the last
  operator that reads it (graph outputs: to the end); the arena is the peak,
  over the execution order, of the summed bytes of live tensors, batch 1.
  It ignores in-place reuse (which can only lower the figure) and kernel
  scratch buffers such as im2col (which raise it), so treat it as the
  activation lower bound a planner without scratch would reach.
* measured: the peak RSS increase of loading the file and running one
  inference, in a fresh child process (so earlier allocations do not hide it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import ModelFileError
from ._graph import Graph, read_graph


@dataclass
class ArenaEstimate:
    arena_bytes: int
    peak_op: int  # index in execution order where the peak is reached (-1: no ops)
    peak_tensors: list[str]
    unknown_tensors: list[str]  # non-constant tensors without a recorded shape (not counted)

    def to_json(self) -> dict[str, Any]:
        return {
            "arena_bytes": self.arena_bytes,
            "peak_op": self.peak_op,
            "peak_tensors": self.peak_tensors,
            "unknown_tensors": len(self.unknown_tensors),
        }


def arena_estimate(graph: Graph, batch: int = 1) -> ArenaEstimate:
    """Peak of live non-constant tensor bytes across ``graph.ops`` (see module doc)."""
    n = len(graph.ops)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in graph.inputs:
        first[name] = -1
        last[name] = -1
    for i, op in enumerate(graph.ops):
        for name in op.outputs:
            first.setdefault(name, i)
            last[name] = max(last.get(name, i), i)
        for name in op.inputs:
            if name in first:
                last[name] = max(last[name], i)
    for name in graph.outputs:
        if name in first:
            last[name] = n
    constant = constant_tensors(graph)
    sizes: dict[str, int] = {}
    unknown: list[str] = []
    for name in first:
        t = graph.tensors.get(name)
        if t is None or name in constant:
            continue
        size = t.nbytes(batch)
        if size is None:
            unknown.append(name)
        else:
            sizes[name] = size
    best, best_at, best_live = 0, -1, []
    for i in range(n):
        live = [name for name, size in sizes.items() if first[name] <= i <= last[name]]
        total = sum(sizes[name] for name in live)
        if total > best:
            best, best_at, best_live = total, i, live
    if n == 0:
        best = sum(sizes.values())
    return ArenaEstimate(best, best_at, sorted(best_live), unknown)


def constant_tensors(graph: Graph) -> set[str]:
    """Stored constants, plus outputs of operators that read constants only.

    Engines fold such operators at load time (ONNX Runtime folds the
    ``DequantizeLinear`` of an int8 weight into the fused int8 kernel), so
    their outputs are weights, not activations.
    """
    const = {name for name, t in graph.tensors.items() if t.constant}
    feeds = set(graph.inputs)
    for op in graph.ops:
        if op.inputs and all(i in const and i not in feeds for i in op.inputs):
            const.update(op.outputs)
    return const


def estimates(path: str | Path, *, measure: bool = True, graph: Graph | None = None) -> dict[str, Any]:
    """``flash_bytes``, ``ram_arena_bytes``, ``weights_bytes`` and (``measure``) ``rss_increase_bytes``."""
    p = Path(path)
    graph = graph or read_graph(p)
    arena = arena_estimate(graph)
    result: dict[str, Any] = {
        "flash_bytes": p.stat().st_size,
        "ram_arena_bytes": arena.arena_bytes,
        "weights_bytes": graph.weights_bytes(),
    }
    if arena.unknown_tensors:
        result["ram_arena_unknown_tensors"] = len(arena.unknown_tensors)
    if measure:
        result["rss_increase_bytes"] = measure_rss_increase(p)["rss_increase_bytes"]
    return result


_CHILD = r"""
import json, sys
import numpy as np
path, fmt = sys.argv[1], sys.argv[2]
def rss():
    with open("/proc/self/status") as fh:
        f = dict(l.split(":", 1) for l in fh if ":" in l)
    return int(f["VmRSS"].split()[0]) * 1024, int(f["VmHWM"].split()[0]) * 1024
from edgeship.runtime._backends import OnnxBackend, TFLiteBackend, tflite_interpreter_class
if fmt == "tflite":
    tflite_interpreter_class()
else:
    import onnxruntime
content = open(path, "rb").read()
try:  # reset the high-water mark so the peak covers load + inference only
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
before, _ = rss()
backend = TFLiteBackend(content, 1) if fmt == "tflite" else OnnxBackend(content, 1)
arrays = []
for spec in backend.inputs:
    shape = [1 if d is None else d for d in spec.shape]
    float_fed = spec.quantized and getattr(backend, "quantizes_io", False)  # the engine quantizes the input
    arrays.append(np.zeros(shape, dtype=np.float32 if float_fed else spec.dtype))
backend.run(arrays)
after, peak = rss()
print(json.dumps({"rss_before_bytes": before, "rss_after_bytes": after, "peak_bytes": peak,
                  "rss_increase_bytes": peak - before}))
"""


def measure_rss_increase(path: str | Path, fmt: str | None = None, timeout: float = 120.0) -> dict[str, int]:
    """Peak RSS increase (bytes) of loading ``path`` and running one batch-1 inference.

    Runs in a fresh Python child process with one engine thread: the engine
    module is imported first, then RSS is read (``/proc/self/status``), then
    the model is loaded and run once, then the peak (``VmHWM``) is read. The
    reading therefore covers engine set-up, weights copies and the arena, but
    not the engine import. The input is zeros (batch 1). Linux only.
    """
    p = Path(path)
    fmt = fmt or {".tflite": "tflite", ".onnx": "onnx"}.get(p.suffix.lower())
    if not Path("/proc/self/status").exists():
        raise ModelFileError("Measuring RSS needs Linux /proc. Received: no /proc/self/status. Skip the measurement.")
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(p.absolute()), str(fmt)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelFileError(f"Measuring the RSS of {p.name} failed in the child process: {tail[0]}")
    result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
