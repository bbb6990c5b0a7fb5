"""edgeship.runtime — the device side: load, predict, benchmark.

Imports numpy only; engines (LiteRT, ONNX Runtime) load on first use.
Never imports TensorFlow when a lighter TFLite engine is installed.
"""

from ._bench import benchmark as benchmark
from ._bench import time_predict as time_predict
from ._bundle import sha256_file as sha256_file
from ._errors import BackendMissingError as BackendMissingError
from ._errors import BundleError as BundleError
from ._errors import EdgeshipError as EdgeshipError
from ._errors import InputError as InputError
from ._errors import IntegrityError as IntegrityError
from ._errors import ModelFileError as ModelFileError
from ._errors import SchemaVersionError as SchemaVersionError
from ._load import load as load
from ._load import load_eval as load_eval
from ._model import Model as Model
from ._tensor import TensorInfo as TensorInfo

__all__ = [
    "BackendMissingError",
    "BundleError",
    "EdgeshipError",
    "InputError",
    "IntegrityError",
    "Model",
    "ModelFileError",
    "SchemaVersionError",
    "TensorInfo",
    "benchmark",
    "load",
    "load_eval",
    "sha256_file",
    "time_predict",
]
