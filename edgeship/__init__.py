"""edgeship: Keras model to verified device artifacts, and a runtime to run them.

Stages live in sub-packages: ``edgeship.train``, ``edgeship.compress``,
``edgeship.export`` and ``edgeship.runtime`` (the only one a device needs).
This package itself stays import-light: no TensorFlow, no engines.
"""

from .errors import AccuracyBudgetError as AccuracyBudgetError
from .errors import BuildError as BuildError
from .errors import BundleError as BundleError
from .errors import ChanceLevelError as ChanceLevelError
from .errors import ClusterError as ClusterError
from .errors import DataError as DataError
from .errors import EdgeshipError as EdgeshipError
from .errors import MissingExtraError as MissingExtraError
from .errors import ParityError as ParityError
from .errors import PlatformError as PlatformError
from .errors import RecipeError as RecipeError
from .errors import SchemaVersionError as SchemaVersionError
from .errors import SearchError as SearchError
from .errors import WheelMissingError as WheelMissingError

__version__ = "0.1.0"

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
