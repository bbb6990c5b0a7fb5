"""edgeship.runtime — the device side: load, predict, benchmark.

Imports numpy only; engines (LiteRT, ONNX Runtime) load on first use.
Never imports TensorFlow when a lighter TFLite engine is installed.
"""

from ._bench import benchmark as benchmark
from ._bench import time_predict as time_predict
from ._bundle import sha256_file as sha256_file
from ._errors import AccuracyBudgetError as AccuracyBudgetError
from ._errors import BackendMissingError as BackendMissingError
from ._errors import BuildError as BuildError
from ._errors import BundleError as BundleError
from ._errors import ChanceLevelError as ChanceLevelError
from ._errors import DataError as DataError
from ._errors import EdgeshipError as EdgeshipError
from ._errors import InputError as InputError
from ._errors import IntegrityError as IntegrityError
from ._errors import MissingExtraError as MissingExtraError
from ._errors import ModelFileError as ModelFileError
from ._errors import ParityError as ParityError
from ._errors import RecipeError as RecipeError
from ._load import load as load
from ._load import load_eval as load_eval
from ._model import Model as Model
from ._tensor import TensorInfo as TensorInfo

__all__ = [
    "AccuracyBudgetError",
    "BackendMissingError",
    "BuildError",
    "BundleError",
    "ChanceLevelError",
    "DataError",
    "EdgeshipError",
    "InputError",
    "IntegrityError",
    "MissingExtraError",
    "Model",
    "ModelFileError",
    "ParityError",
    "RecipeError",
    "TensorInfo",
    "benchmark",
    "load",
    "load_eval",
    "sha256_file",
    "time_predict",
]
