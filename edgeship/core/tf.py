"""The one place that imports TensorFlow for the build side.

tfmot works only with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before
TensorFlow is first imported, and every build module uses ``tf_keras``.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from edgeship.core.errors import BuildError, MissingExtraError

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


@contextmanager
def quiet_engine() -> Iterator[None]:
    """Hold back an engine's own chatter for one call: native stdout/stderr lines and Python warnings.

    TensorFlow prints oneDNN / CUDA-probe lines from C++ before its log level
    is read, and the TFLite converter prints its settings and deprecation
    warnings on every call; none of it is a concern of the user's. Output is
    captured at the file-descriptor level (native code writes there) and
    replayed on stderr when the call raises, so nothing that explains a failure
    is lost. Python's warning filters are restored on exit. With ``-v``
    (``edgeship.core.progress.verbose()``) everything passes through.
    """
    from edgeship.core import progress as _progress

    if _progress.verbose():
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = (os.dup(1), os.dup(2))
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        failed = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
                sys.stderr.flush()


@contextmanager
def scoped_log_levels(names: tuple[str, ...], level: int) -> Iterator[None]:
    """Raise the given loggers (``""`` is the root logger) to ``level`` for one call, then restore them.

    ONNX Runtime's quantizer logs through the root logger and tf2onnx through
    its own; the caller's logging configuration is theirs, not ours to change.
    With ``-v`` (``edgeship.core.progress.verbose()``) the levels stay as they are.
    """
    import logging

    from edgeship.core import progress as _progress

    if _progress.verbose():
        yield
        return
    loggers = [logging.getLogger(n) if n else logging.getLogger() for n in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.getEffectiveLevel()))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, saved):
            lg.setLevel(lvl)


def tf_modules() -> tuple[Any, Any]:
    """Return ``(tensorflow, tf_keras)`` with legacy Keras forced on and TF logs quiet."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules and "tf_keras" in sys.modules:
        return sys.modules["tensorflow"], sys.modules["tf_keras"]
    with quiet_engine():  # the import and the first device probe print C++ lines that ignore the log level
        tf = require("tensorflow", "Building models")
        keras = require("tf_keras", "Building models")
        tf.config.list_physical_devices()
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
