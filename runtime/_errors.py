"""Typed errors shared by every edgeship stage.

Every error edgeship raises on purpose derives from :class:`EdgeshipError`, so a
build script can ``except EdgeshipError`` and print one line. Messages follow one
shape: what was expected, what was received, and how to fix it.
"""

from __future__ import annotations


class EdgeshipError(Exception):
    """Base class of every error edgeship raises on purpose."""


class RecipeError(EdgeshipError, ValueError):
    """A recipe file is missing, unreadable, or fails validation."""


class InputError(EdgeshipError, ValueError):
    """An input given to ``predict`` does not match the model's input."""


class BundleError(EdgeshipError):
    """A path is not a usable bundle or model file."""


class IntegrityError(BundleError):
    """A bundle file no longer matches the sha256 recorded in its manifest."""


class ModelFileError(BundleError):
    """A model file is corrupt or not the format its name says."""


class BackendMissingError(EdgeshipError, ImportError):
    """No installed inference engine can run this model format."""


class MissingExtraError(EdgeshipError, ImportError):
    """A build-side command was run without the ``edgeship[build]`` extra."""


class BuildError(EdgeshipError):
    """A build stage failed in a way the recipe can fix."""


class DataError(EdgeshipError, ValueError):
    """A dataset named by the recipe is empty, unreadable, or not laid out as expected."""


class ParityError(BuildError):
    """An exported artifact's outputs differ from the Keras model's beyond the recipe's tolerance."""


class AccuracyBudgetError(BuildError):
    """No pruning or quantization attempt kept top-1 accuracy within the recipe's ``budget.max_accuracy_drop``."""


class ChanceLevelError(BuildError):
    """A shipped artifact does not beat the majority-class baseline significantly (``budget.allow_chance_level``)."""
