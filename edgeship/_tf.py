"""The one place that imports TensorFlow for the build side.

tfmot works only with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before
TensorFlow is first imported, and every build module uses ``tf_keras``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from edgeship.runtime._errors import BuildError, MissingExtraError

BUILD_EXTRA = 'pip install "edgeship[build]"'


def require(module: str, purpose: str) -> ModuleType:
    """Import a build-side dependency or raise ``MissingExtraError`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the build extra. Received: cannot import {module} ({exc.name} missing). "
            f"Fix: {BUILD_EXTRA}"
        ) from None


def tf_modules() -> tuple[Any, Any]:
    """Return ``(tensorflow, tf_keras)`` with legacy Keras forced on and TF logs quiet."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "Building models")
    keras = require("tf_keras", "Building models")
    return tf, keras


def tfmot() -> Any:
    tf_modules()
    return require("tensorflow_model_optimization", "Pruning and quantization-aware training")


def check_keras2_model(model: Any) -> None:
    """Reject Keras 3 models with a clear error: tfmot supports Keras 2 only."""
    _, keras = tf_modules()
    if isinstance(model, keras.Model):
        return
    kind = f"{type(model).__module__}.{type(model).__name__}"
    raise BuildError(
        f"edgeship needs a tf_keras (Keras 2) model, because tensorflow-model-optimization "
        f"does not support Keras 3. Received: {kind}. Fix: build the model with `import tf_keras as keras` "
        "(and TF_USE_LEGACY_KERAS=1), or save it as .keras/.h5 with tf_keras and pass the file."
    )
