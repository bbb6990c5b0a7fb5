"""Regenerate the latency reference workload shipped in ``runtime/`` (run once; needs ``edgeship[build]``).

    python benchmarks/make_reference_models.py

Writes ``runtime/reference.tflite`` and ``runtime/reference.onnx``: one fixed small
CNN (seeded weights, float32, batch 1) in both formats, and prints their sha256 for
``runtime/_reference.py``. Changing these files changes every latency ratio, so every
existing ``baseline.json`` must be rewritten (``edgeship check --update``); the
baseline records the reference sha256 and ``check`` refuses a mismatch.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from edgeship.core.tf import tf_modules  # noqa: E402
from edgeship.export import to_onnx, to_tflite  # noqa: E402

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


def reference_model():
    """Conv-BN-free small CNN: conv 16 -> conv 32 -> max-pool -> conv 32 -> global pool -> dense 10."""
    tf, keras = tf_modules()
    keras.utils.set_random_seed(1234)
    layers = keras.layers
    model = keras.Sequential(
        [
            layers.Input((16, 16, 1), name="input"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="edgeship_reference",
    )
    model(np.zeros((1, 16, 16, 1), np.float32))
    return model


def main() -> int:
    model = reference_model()
    for name, data in (("reference.tflite", to_tflite(model, "float32")), ("reference.onnx", to_onnx(model, 17))):
        (RUNTIME / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
