"""edgeship.export — TFLite / ONNX writers and the atomic bundle (needs ``edgeship[build]``)."""

from ._bundle import BundleWriter as BundleWriter
from ._bundle import file_entry as file_entry
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
]
