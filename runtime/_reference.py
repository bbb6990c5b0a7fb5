"""The fixed reference workload that latency gates are measured against.

A wall-clock threshold on a shared CI machine either flakes or catches nothing: the
same model runs 2x slower on a slower or busier runner. edgeship therefore stores
latency as a *ratio*: an artifact's per-call time divided by the per-call time of a
fixed reference model, both timed in the same process, on the same engine, with the
same thread count, in interleaved blocks. A uniformly slower machine (or a slower
clock for the whole run) slows both and leaves the ratio unchanged.

The reference is a small float32 CNN (16x16x1 input: conv 16 -> conv 32 -> max-pool
-> conv 32 -> global average pool -> dense 10; seeded weights), shipped as
``reference.tflite`` and ``reference.onnx`` next to this module and generated once by
``benchmarks/make_reference_models.py``. An engine model rather than a numpy loop,
because the ratio cancels best when numerator and denominator share everything but
the model: the engine's dispatch overhead, its thread pool and its kernels (XNNPACK
for LiteRT, MLAS for ONNX Runtime). It runs about as long as a small edge model
(~50-80 µs per call on a 2-core x86-64 AVX2 machine), so per-call Python overhead
weighs the same on both sides of the ratio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._bundle import sha256_file
from ._errors import BundleError

HERE = Path(__file__).resolve().parent
REFERENCE_FILES = {"tflite": "reference.tflite", "onnx": "reference.onnx"}
# The sha256 of the shipped files: a baseline is only comparable with a check
# measured against the same reference, so both record and compare it.
REFERENCE_SHA256 = {
    "tflite": "c89120b0289fff6a2840c93b71634c4d85fb36b000de350636e20aaeda859dcf",
    "onnx": "478b1b8dc6219ec1d14c2b5860d9cce1cca5267f30ecf87bb71f98c3f85ecbe4",
}
REFERENCE_INPUT_SHAPE = (1, 16, 16, 1)


def reference_path(fmt: str) -> Path:
    """The shipped reference model for an engine format (``"tflite"`` or ``"onnx"``)."""
    if fmt not in REFERENCE_FILES:
        raise BundleError(
            f"Expected an artifact format with a latency reference ({', '.join(REFERENCE_FILES)}). "
            f"Received: {fmt!r}. Only TFLite and ONNX artifacts can be latency-gated."
        )
    path = HERE / REFERENCE_FILES[fmt]
    if not path.is_file():
        raise BundleError(
            f"The latency reference {path.name} is missing from the edgeship install ({HERE}). "
            "Received: no such file. Reinstall edgeship."
        )
    return path


def reference_sha256(fmt: str) -> str:
    return sha256_file(reference_path(fmt))


def reference_input() -> np.ndarray:
    """The fixed batch-1 input the reference is timed on."""
    return np.random.default_rng(0).random(REFERENCE_INPUT_SHAPE, dtype=np.float32)


def load_reference(fmt: str, threads: int | None = 1):  # -> Model
    """Load the reference model for ``fmt`` on the same engine the artifact uses."""
    from ._load import load_file

    return load_file(reference_path(fmt), fmt, threads=threads, precision="float32")
