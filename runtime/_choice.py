"""Which artifact ``load(bundle)`` returns when the device has no profile: a rule from the model and the CPU.

A device profile (``edgeship bench``) is the answer; this is the fallback. Only
artifacts the manifest does not record as missing the accuracy budget are
considered. Then, from the float32 TFLite graph's conv / depthwise / fully
connected operators at batch 1 (:func:`workload`; the build records it in the
manifest, ``workload``, and only an older bundle's graph is read at load):

1. **Memory-bound (fewer than 4 MACs per weight): int8 TFLite.** A fully
   connected layer at batch 1 reads each weight once per inference, so its cost is
   moving the weights, and int8 weights are a quarter of the bytes (the MLPerf Tiny
   autoencoder: 1.0 MAC per weight; the conv nets 36-160). Measured on the
   autoencoder with the float32 weights (1.06 MB) inside a 2 MB L2: int8 TFLite
   1.8x faster than float32 through ``edgeship.runtime`` (5.8 vs 10.7 µs) once the
   engine converts the float I/O (``_floatio``); with the conversion in numpy it was
   1.1x slower, which is why an earlier rule kept float32 when the weights fit in L2.
2. **ARM with the int8 dot product (``asimddp``): int8 TFLite** (4 int8 MACs per
   lane per instruction against one float32 MAC).
3. **x86 with VNNI (``avx512_vnni`` / ``avx_vnni``) and deep reductions (a
   MAC-weighted mean of at least 128 products per output, e.g. resnet8's full 3x3
   convolutions, 260; the digits ``small_cnn``, 435): int8.** A depthwise-separable
   net reduces over few products per output (ds_cnn 55, MobileNetV1-0.25 91:
   depthwise 3x3 = 9, pointwise = the input channels), where int8 gains little and
   XNNPACK's float32 kernels win. The engine: int8 ONNX (ONNX Runtime's u8s8 VNNI
   GEMM kernels) from :data:`LARGE_MACS` MACs per inference (resnet8, 12.5 M: 1.2x
   faster than int8 TFLite), int8 TFLite below it, where ONNX Runtime's larger fixed
   cost per call dominates (small_cnn, 2.0 M: int8 TFLite 9 µs, int8 ONNX 21 µs).
4. **Otherwise float32 TFLite.**

How far each lands from the fastest, measured side by side on the MLPerf Tiny
models: ``benchmarks/mlperf_tiny_results.json`` (``picks``). The rule never leaves
a format/precision the bundle lacks: it falls back to the first of
:data:`DEFAULT_ORDER` the bundle holds.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeship.core.bundle import ArtifactRecord, Manifest

DEFAULT_ORDER = (("tflite", "float32"), ("onnx", "float32"), ("tflite", "int8"), ("onnx", "int8"))
MEMORY_BOUND_MACS_PER_WEIGHT = 4.0
DEEP_REDUCTION = 128.0
LARGE_MACS = 5_000_000
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
    if machine == "arm64" and platform.system() == "Darwin":
        return True
    return machine.startswith(("aarch64", "arm")) and "asimddp" in cpu_flags()


def x86_vnni() -> bool:
    """x86 with the int8 dot-product instructions (AVX-512 VNNI or AVX-VNNI)."""
    return platform.machine().lower() in ("x86_64", "amd64") and bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


@dataclass(frozen=True)
class Workload:
    """Conv / depthwise / fully connected work of a model at batch 1."""

    macs: int
    weights: int
    reduction: float  # MAC-weighted mean of products summed per output value

    @property
    def macs_per_weight(self) -> float:
        return self.macs / self.weights if self.weights else 0.0


def workload(path: Path) -> Workload | None:
    """Read a TFLite file's :class:`Workload`; ``None`` when unreadable or without weighted operators."""
    from ._graph import read_graph

    try:
        graph = read_graph(path, "tflite")
    except Exception:  # an unreadable file: the rule falls back to the default order
        return None
    macs = weights = 0
    weighted_k = 0.0
    for op in graph.ops:
        if op.type not in _WEIGHTED_OPS or len(op.inputs) < 2 or not op.outputs:
            continue
        w, out = graph.tensors.get(op.inputs[1]), graph.tensors.get(op.outputs[0])
        if w is None or out is None or not w.shape or not out.shape or None in w.shape:
            continue
        n_w = 1
        for d in w.shape:
            n_w *= int(d)  # type: ignore[arg-type]
        outputs = 1
        for d in out.shape:
            outputs *= 1 if d is None else int(d)  # batch 1
        # products per output: kh*kw for depthwise, kh*kw*cin (conv) or the input width (dense)
        k = int(w.shape[1]) * int(w.shape[2]) if op.type == "DEPTHWISE_CONV_2D" else n_w // max(1, int(w.shape[0]))  # type: ignore[arg-type]
        macs += outputs * k
        weighted_k += outputs * k * k
        weights += n_w
    return Workload(macs, weights, weighted_k / macs) if macs else None


def _recorded(manifest: Manifest) -> Workload | None:
    """The workload the build recorded in the manifest (``manifest["workload"]``), if any."""
    w = manifest.workload
    return None if w is None else Workload(w.macs, w.weights, w.reduction)


def _within_budget(manifest: Manifest) -> list[ArtifactRecord]:
    from ._profile import accuracy_budget, manifest_met_budget

    met = manifest_met_budget(manifest)
    budget = accuracy_budget(manifest)
    ok = []
    for a in manifest.artifacts:
        if a.file in met:
            if met[a.file]:
                ok.append(a)
        elif a.metrics is None or a.metrics.accuracy_drop <= budget + 1e-12:
            ok.append(a)
    return ok or list(manifest.artifacts)


def default_choice(manifest: Manifest, folder: Path | None = None) -> tuple[ArtifactRecord, str]:
    """The artifact by the rule in the module doc, and a one-line reason."""
    allowed = _within_budget(manifest)
    by = {(a.format, a.precision): a for a in allowed}
    work = _recorded(manifest)
    if work is None:  # a bundle from before the build recorded it: read the float32 graph
        f32 = next((a for a in manifest.artifacts if (a.format, a.precision) == ("tflite", "float32")), None)
        work = workload(folder / f32.file) if (f32 is not None and folder is not None) else None
    wants: list[tuple[tuple[str, str], str]] = []
    if work is not None and work.macs_per_weight < MEMORY_BOUND_MACS_PER_WEIGHT:
        wants.append((("tflite", "int8"), f"int8 TFLite: memory-bound model ({work.macs_per_weight:.1f} MACs per "
                                          f"weight; int8 moves a quarter of the float32 weights' {4 * work.weights:,} B)"))
    if int8_dot_product_arm():
        wants.append((("tflite", "int8"), "int8 TFLite: ARM CPU with the int8 dot product (asimddp)"))
    if work is not None and work.reduction >= DEEP_REDUCTION and x86_vnni():
        deep = f"x86 VNNI and deep reductions ({work.reduction:.0f} products per output)"
        if work.macs >= LARGE_MACS:
            wants.append((("onnx", "int8"), f"int8 ONNX: {deep}, {work.macs / 1e6:.1f} M MACs"))
        wants.append((("tflite", "int8"), f"int8 TFLite: {deep}, {work.macs / 1e6:.1f} M MACs"))
    detail = f", {work.reduction:.0f} products per output" if work is not None else ""
    wants.append((("tflite", "float32"), f"float32 TFLite: compute-bound model{detail}"))
    for key, reason in wants:
        if key in by:
            return by[key], reason
    for key in DEFAULT_ORDER:
        if key in by:
            return by[key], f"first of the default order the bundle holds within the budget ({key[1]} {key[0]})"
    return allowed[0], "the bundle's first artifact within the budget"


def describe(manifest: Manifest, folder: Path | None) -> dict[str, Any]:
    """The no-profile choice as a record (for benchmarks and ``edgeship bench`` output)."""
    a, reason = default_choice(manifest, folder)
    return {"file": a.file, "reason": reason}
