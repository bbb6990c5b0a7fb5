"""edgeship.runtime — the device side: load, predict, benchmark, check.

Imports numpy only; engines (LiteRT, ONNX Runtime) load on first use.
Never imports TensorFlow when a lighter TFLite engine is installed.

Besides the user's API (``load``, ``Model``, ``benchmark``, the errors), this is
where the build side and the CLI take what they need from the device side: the
bundle's manifest and files, the regression gate, file inspection and RAM
estimates, the embedded metadata's names. Nobody outside this package imports
its ``_private`` modules.
"""

from ._bench import bench_bundle as bench_bundle
from ._bench import benchmark as benchmark
from ._bench import time_predict as time_predict
from ._bundle import is_bundle as is_bundle
from ._bundle import read_manifest as read_manifest
from ._bundle import sha256_file as sha256_file
from ._bundle import verify_bundle as verify_bundle
from ._check import BASELINE_FILE as BASELINE_FILE
from ._check import CHECK_ROUNDS as CHECK_ROUNDS
from ._check import check_bundle as check_bundle
from ._check import measure_bundle as measure_bundle
from ._check import measure_latency_ratio as measure_latency_ratio
from ._check import measure_pair_ratio as measure_pair_ratio
from ._check import read_baseline as read_baseline
from ._check import resolve_tolerances as resolve_tolerances
from ._check import timing_input as timing_input
from ._check import update_baseline as update_baseline
from ._check import write_baseline as write_baseline
from ._choice import describe as describe
from ._choice import workload as workload
from ._errors import BackendMissingError as BackendMissingError
from ._errors import BundleError as BundleError
from ._errors import EdgeshipError as EdgeshipError
from ._errors import InputError as InputError
from ._errors import IntegrityError as IntegrityError
from ._errors import ModelFileError as ModelFileError
from ._errors import SchemaVersionError as SchemaVersionError
from ._graph import onnx_graph as onnx_graph
from ._graph import read_graph as read_graph
from ._inspect import format_report as format_report
from ._inspect import inspect_file as inspect_file
from ._load import load as load
from ._load import load_eval as load_eval
from ._load import load_file as load_file
from ._metadata import METADATA_SCHEMA as METADATA_SCHEMA
from ._metadata import ONNX_PREFIX as ONNX_PREFIX
from ._metadata import TFLITE_METADATA_NAME as TFLITE_METADATA_NAME
from ._model import Model as Model
from ._ram import arena_estimate as arena_estimate
from ._ram import estimates as estimates
from ._tensor import TensorInfo as TensorInfo

__all__ = [
    # the user's API
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
    # bundles, the regression gate, inspection: what the build side and the CLI use
    "BASELINE_FILE",
    "CHECK_ROUNDS",
    "METADATA_SCHEMA",
    "ONNX_PREFIX",
    "TFLITE_METADATA_NAME",
    "arena_estimate",
    "bench_bundle",
    "check_bundle",
    "describe",
    "estimates",
    "format_report",
    "inspect_file",
    "is_bundle",
    "load_file",
    "measure_bundle",
    "measure_latency_ratio",
    "measure_pair_ratio",
    "onnx_graph",
    "read_baseline",
    "read_graph",
    "read_manifest",
    "resolve_tolerances",
    "timing_input",
    "update_baseline",
    "verify_bundle",
    "workload",
    "write_baseline",
]
