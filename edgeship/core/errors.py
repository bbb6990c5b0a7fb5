"""Typed errors: the common base, the bundle errors both sides raise, and the build side's errors.

Every error edgeship raises on purpose derives from :class:`EdgeshipError`, so a
build script can ``except EdgeshipError`` and print one line. Messages follow one
shape: what was expected, what was received, and how to fix it.

This module imports nothing, so the device package (``edgeship.runtime``) can
import the base from it. The errors device code raises (``InputError``,
``IntegrityError``, ``ModelFileError``, ``BackendMissingError``) live in
``edgeship.runtime``; those only a build raises live here and are exported from
``edgeship``.
"""

from __future__ import annotations


class EdgeshipError(Exception):
    """Base class of every error edgeship raises on purpose."""


# -- bundles: raised by the records module (edgeship.core.bundle), the writer and the runtime
class BundleError(EdgeshipError):
    """A path is not a usable bundle or model file."""


class SchemaVersionError(BundleError):
    """A manifest's ``schema_version`` is one this edgeship cannot read."""


# -- the build side: recipe, data, training, compression, export
class RecipeError(EdgeshipError, ValueError):
    """A recipe file is missing, unreadable, or fails validation."""


class DataError(EdgeshipError, ValueError):
    """A dataset named by the recipe is empty, unreadable, or not laid out as expected."""


class MissingExtraError(EdgeshipError, ImportError):
    """A build-side command was run without the ``edgeship[build]`` extra."""


class BuildError(EdgeshipError):
    """A build stage failed in a way the recipe can fix."""


class ParityError(BuildError):
    """An exported artifact's outputs differ from the Keras model's beyond the recipe's tolerance."""


class AccuracyBudgetError(BuildError):
    """No pruning or quantization attempt kept top-1 accuracy within the recipe's ``budget.max_accuracy_drop``."""


class ChanceLevelError(BuildError):
    """A shipped artifact does not beat the majority-class baseline significantly (``budget.allow_chance_level``)."""


class SearchError(EdgeshipError):
    """``edgeship search`` found no trial that meets every constraint, or cannot measure a trial."""


class ClusterError(BuildError):
    """Multi-worker training (``train.strategy = "multi_worker"``): ``TF_CONFIG`` is unusable, or a worker died."""


# -- target platforms: the emulated device root and one-file packages (edgeship.platforms, edgeship.package)
class PlatformError(EdgeshipError):
    """A target platform cannot be used here: unknown name, no emulated root, no root rights, no binfmt."""


class WheelMissingError(PlatformError):
    """A package has no wheel for the requested platform and Python version (``edgeship package``)."""
