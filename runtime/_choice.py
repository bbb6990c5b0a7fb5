"""Which artifact ``load(bundle)`` returns when the device has no profile: a rule from the model and the CPU.

A device profile (``edgeship bench``) is the answer; this is the fallback. The rule:

1. **Memory-bound models: int8 TFLite.** At batch 1 a fully connected layer reads
   each weight once per inference, so its cost is streaming the weights, and int8
   weights are a quarter of the bytes. The measure is arithmetic intensity: MACs per
   weight over the CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED operators of the
   float32 TFLite file. Below :data:`MEMORY_BOUND_MACS_PER_WEIGHT` (the MLPerf Tiny
   autoencoder: 1.0) int8 wins; convolutional nets reuse each weight over every
   output position (ds_cnn about 100, resnet8 about 160, MobileNetV1-0.25 at 96x96
   about 34) and are compute-bound.
2. **Compute-bound on ARM with the int8 dot-product instructions (``asimddp``): int8
   TFLite** (4 int8 MACs per lane per instruction against 1 float32).
3. **Otherwise float32 TFLite.** On x86, even with AVX-512 VNNI, XNNPACK's float32
   kernels beat its int8 ones on the three convolutional MLPerf Tiny models at one
   thread, and ONNX Runtime pays a larger fixed cost per call (measured side by side:
   ``benchmarks/mlperf_tiny_results.json``).

The rule never leaves a format/precision the bundle lacks: it falls back to the
first of :data:`DEFAULT_ORDER` the bundle holds.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

from edgeship.bundle import ArtifactRecord, Manifest

DEFAULT_ORDER = (("tflite", "float32"), ("onnx", "float32"), ("tflite", "int8"), ("onnx", "int8"))
MEMORY_BOUND_MACS_PER_WEIGHT = 4.0
_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags (/proc/cpuinfo ``flags`` on x86, ``Features`` on ARM); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def int8_dot_product_arm() -> bool:
    """ARM with the int8 dot-product extension (``asimddp``; Apple silicon has it throughout)."""
    machine = platform.machine().lower()
    if machine in ("arm64",) and platform.system() == "Darwin":
        return True
    return machine.startswith(("aarch64", "arm")) and "asimddp" in cpu_flags()


def macs_per_weight(path: Path) -> float | None:
    """MACs per weight element of a TFLite file's conv / depthwise / fully connected operators at batch 1.

    ``None`` when the file cannot be read or has none of those operators.
    """
    from ._graph import read_graph

    try:
        graph = read_graph(path, "tflite")
    except Exception:  # an unreadable file: the rule falls back to the default order
        return None
    macs = weights = 0
    for op in graph.ops:
        if op.type not in _WEIGHTED_OPS or len(op.inputs) < 2 or not op.outputs:
            continue
        w, out = graph.tensors.get(op.inputs[1]), graph.tensors.get(op.outputs[0])
        if w is None or out is None or w.shape is None or out.shape is None or None in w.shape[1:]:
            continue
        n_w = 1
        for d in w.shape:
            n_w *= int(d or 1)
        positions = 1
        for d in out.shape[:-1]:
            positions *= 1 if d is None else int(d)  # batch 1
        if op.type == "DEPTHWISE_CONV_2D":
            per_output = int(w.shape[1] or 1) * int(w.shape[2] or 1)  # kh * kw
            macs += positions * int(out.shape[-1] or 1) * per_output
        else:
            macs += positions * n_w  # each output position uses every weight once
        weights += n_w
    return macs / weights if weights else None


def default_choice(manifest: Manifest, folder: Path | None = None) -> tuple[ArtifactRecord, str]:
    """The artifact by the rule in the module doc, and a one-line reason."""
    by = {(a.format, a.precision): a for a in manifest.artifacts}
    want = ("tflite", "float32")
    reason = "float32 TFLite: compute-bound model, no ARM int8 dot product"
    f32 = by.get(("tflite", "float32"))
    intensity = macs_per_weight(folder / f32.file) if (f32 is not None and folder is not None) else None
    if intensity is not None and intensity < MEMORY_BOUND_MACS_PER_WEIGHT:
        want, reason = ("tflite", "int8"), f"int8 TFLite: memory-bound model ({intensity:.1f} MACs per weight)"
    elif int8_dot_product_arm():
        want, reason = ("tflite", "int8"), "int8 TFLite: ARM CPU with int8 dot product (asimddp)"
    if want in by:
        return by[want], reason
    for key in DEFAULT_ORDER:
        if key in by:
            return by[key], f"first of the default order the bundle holds ({key[1]} {key[0]})"
    return manifest.artifacts[0], "the bundle's first artifact"


def describe(manifest: Manifest, folder: Path | None) -> dict[str, Any]:
    """The no-profile choice as a record (for benchmarks and ``edgeship bench`` output)."""
    a, reason = default_choice(manifest, folder)
    return {"file": a.file, "reason": reason}
