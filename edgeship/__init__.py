"""edgeship: Keras model to verified device artifacts, and a runtime to run them.

Stages live in sub-packages: ``edgeship.train``, ``edgeship.compress``,
``edgeship.export`` and ``edgeship.runtime`` (the only one a device needs).
This package itself stays import-light: no TensorFlow, no engines.
"""

from .core.errors import AccuracyBudgetError as AccuracyBudgetError
from .core.errors import BuildError as BuildError
from .core.errors import BundleError as BundleError
from .core.errors import ChanceLevelError as ChanceLevelError
from .core.errors import ClusterError as ClusterError
from .core.errors import DataError as DataError
from .core.errors import EdgeshipError as EdgeshipError
from .core.errors import MissingExtraError as MissingExtraError
from .core.errors import ParityError as ParityError
from .core.errors import PlatformError as PlatformError
from .core.errors import RecipeError as RecipeError
from .core.errors import SchemaVersionError as SchemaVersionError
from .core.errors import SearchError as SearchError
from .core.errors import WheelMissingError as WheelMissingError

__version__ = "0.2.0"

__all__ = [
    "AccuracyBudgetError",
    "BuildError",
    "BundleError",
    "ChanceLevelError",
    "ClusterError",
    "DataError",
    "EdgeshipError",
    "MissingExtraError",
    "ParityError",
    "PlatformError",
    "RecipeError",
    "SchemaVersionError",
    "SearchError",
    "WheelMissingError",
]
