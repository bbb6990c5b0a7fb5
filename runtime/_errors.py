"""Typed errors the device side raises.

The common base :class:`EdgeshipError` and :class:`BundleError` live in
``edgeship.core.errors`` (below both the build side and the runtime), so
``except EdgeshipError`` catches every error of every stage. Errors only a build
raises (``RecipeError``, ``ParityError``, ...) are there too, exported from
``edgeship``, not from ``edgeship.runtime``.
"""

from __future__ import annotations

from edgeship.core.errors import BundleError as BundleError
from edgeship.core.errors import EdgeshipError as EdgeshipError
from edgeship.core.errors import SchemaVersionError as SchemaVersionError


class InputError(EdgeshipError, ValueError):
    """An input given to ``predict`` does not match the model's input."""


class IntegrityError(BundleError):
    """A bundle file no longer matches the sha256 recorded in its manifest."""


class ModelFileError(BundleError):
    """A model file is corrupt or not the format its name says."""


class BackendMissingError(EdgeshipError, ImportError):
    """No installed inference engine can run this model format."""


def engine_failed(engine: str, file: str, exc: BaseException) -> ModelFileError:
    """The one message for an inference engine that raised while running a model: a typed line, no engine trace."""
    return ModelFileError(f"The {engine} engine failed to run {file}: {exc}")
