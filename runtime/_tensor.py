"""Tensor descriptions shared by the engines and the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the engine sees it.

    Attributes:
        name: Tensor name in the model file.
        shape: Shape with ``None`` for a dynamic dimension (the batch, usually).
        dtype: numpy dtype the engine expects or returns (``int8`` for a fully
            quantized TFLite model).
        scale: Quantization scale when ``dtype`` is an integer type that holds
            quantized reals, else ``None``. real = (q - zero_point) * scale.
        zero_point: Quantization zero point, paired with ``scale``.
        signature_name: The name the file's signature gives the tensor (a TFLite
            file's ``serving_default``: the Keras layer's, ``input`` / ``probs``),
            ``None`` without one. An ONNX file names its graph I/O that way already.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int | None = None
    signature_name: str | None = None

    @property
    def public_name(self) -> str:
        """The name that is the same in every format of one model: the signature's, else the tensor's."""
        return self.signature_name or self.name

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": [d if d is not None else -1 for d in self.shape],
            "dtype": np.dtype(self.dtype).name,
            "quantization": (
                {"scale": self.scale, "zero_point": self.zero_point} if self.quantized else None
            ),
        }

    def describe(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{np.dtype(self.dtype).name} ({dims})"
