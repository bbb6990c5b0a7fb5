"""edgeship.export — TFLite / ONNX writers, parity checks, metadata, reports and the atomic bundle (needs ``edgeship[build]``).

Importing it loads no TensorFlow: the converters import it on first use.
"""

from ._bundle import BundleWriter as BundleWriter
from ._bundle import check_target as check_target
from ._bundle import file_entry as file_entry
from ._inspect import inspect_file as inspect_file
from ._metadata import embed_metadata as embed_metadata
from ._metadata import metadata_dict as metadata_dict
from ._parity import check_artifact as check_artifact
from ._parity import keras_outputs as keras_outputs
from ._report import write_reports as write_reports
from ._sqnr import most_sensitive as most_sensitive
from ._sqnr import onnx_sqnr as onnx_sqnr
from ._sqnr import tflite_sqnr as tflite_sqnr
from .onnx import ONNX_PRECISIONS as ONNX_PRECISIONS
from .onnx import OnnxQuantConfig as OnnxQuantConfig
from .onnx import quantize_onnx as quantize_onnx
from .onnx import quantize_onnx_dynamic as quantize_onnx_dynamic
from .onnx import to_onnx as to_onnx
from .tflite import TFLITE_PRECISIONS as TFLITE_PRECISIONS
from .tflite import to_tflite as to_tflite

__all__ = [
    "BundleWriter", "file_entry", "quantize_onnx", "to_onnx", "to_tflite",
    "ONNX_PRECISIONS", "OnnxQuantConfig", "TFLITE_PRECISIONS", "quantize_onnx_dynamic",
    "most_sensitive", "onnx_sqnr", "tflite_sqnr",
    # what the orchestrator takes from export
    "check_artifact", "check_target", "embed_metadata", "inspect_file", "keras_outputs", "metadata_dict",
    "write_reports",
]
