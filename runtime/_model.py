"""The one model API over LiteRT and ONNX Runtime."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._backends import Backend
from ._errors import InputError, ModelFileError, engine_failed
from ._quant import Dequantizer, Quantizer
from ._tensor import TensorInfo
from ._text import Tokenizer, is_text

NanPolicy = Literal["raise", "ignore"]
_ndarray = np.ndarray
_isfinite = math.isfinite
_UNSET = (object(), None)  # no input shape validated yet
# The NaN/Inf check is one BLAS dot of the input with a constant 2**-64 vector: NaN or
# Inf anywhere makes it non-finite, and it cannot overflow for finite input (each term is
# at most 3.4e38 * 2**-64 = 1.8e19). 0.4 µs vs 1.3 µs for np.isfinite(x).all() on 64 values
# right after an engine call, 1.4 µs vs 2.6 µs on 96x96x3 (2-core AMD EPYC). x·x costs the
# same but overflows above 1.8e19 with a RuntimeWarning. Inputs under 2**-62 in magnitude
# give subnormal products: still exact.
_TINY = 2.0**-64
_DOT_MAX = 1 << 20  # above 4 MB of input, skip the extra vector: np.isfinite costs nothing by comparison


class Model:
    """A loaded model: float in, float out, whatever the artifact's precision.

    ``predict`` takes float32 input batch-first in the model's input shape. For a
    fully quantized model it quantizes the input with the model's own scale and
    zero point and dequantizes the outputs, so callers never see int8.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        path: Path,
        format: str,
        precision: str,
        labels: list[str] | None = None,
        preprocessing: dict[str, Any] | None = None,
        nan_policy: NanPolicy = "raise",
        text: dict[str, Any] | None = None,
        anomaly: dict[str, Any] | None = None,
    ) -> None:
        self._backend = backend
        #: Anomaly detectors: ``{"score": "mse", "threshold": t, ...}`` from the manifest or the file's metadata.
        self.anomaly = dict(anomaly) if anomaly else None
        self.path = path
        self.format = format
        self.precision = precision
        self.labels = list(labels) if labels else None
        self.preprocessing = dict(preprocessing or {})
        if nan_policy not in ("raise", "ignore"):
            raise InputError(f"nan_policy must be 'raise' or 'ignore'. Received: {nan_policy!r}.")
        self.nan_policy = nan_policy
        self.engine = backend.engine
        self.inputs: list[TensorInfo] = backend.inputs
        self.outputs: list[TensorInfo] = backend.outputs
        self._run = backend.run
        # Precomputed for the hot path: per-sample shape of the (single) input.
        first = self.inputs[0]
        self._inner = tuple(first.shape[1:])
        self._inner_fixed = all(d is not None for d in self._inner)
        self._float_in = first.dtype.kind == "f"
        # A quantized input is fed float32 and quantized here, or by the engine when the backend
        # says it converts (LiteRT with QUANTIZE / DEQUANTIZE ops added, ``_floatio``); token ids stay integers.
        self._in_dtype = np.dtype(np.float32) if first.quantized else first.dtype
        self._single = len(self.inputs) == 1
        here = not getattr(backend, "quantizes_io", False)
        self._quant = [Quantizer(i) if i.quantized and here else None for i in self.inputs]
        self._dequant = [Dequantizer(o) if o.quantized and here else None for o in self.outputs]
        self._quant_in = self._quant[0] is not None
        self._plain_out = len(self._dequant) == 1 and self._dequant[0] is None
        self._check_finite = nan_policy == "raise" and self._in_dtype.kind == "f"
        self._closed = False
        # The input shape validated last (fast path key) and the one-in/one-out engine call.
        self._ok: tuple[Any, np.ndarray | None] = _UNSET  # (shape, weights): the fast path's key
        run1 = getattr(backend, "run1", None)
        self._run1 = run1 if (self._single and len(self.outputs) == 1 and run1 is not None) else None
        # One input, one output: a closure with the same checks, the (de)quantization and
        # the engine calls inline (the backend's ``fast_predict``) replaces the method.
        fast = getattr(backend, "fast_predict", None)
        if fast is not None and self._run1 is not None:
            self.predict = fast(self)  # type: ignore[method-assign]
        # Text bundles: strings go through the same tokenisation as training (slow path only).
        self._tokenizer = Tokenizer.from_manifest(text) if text else None

    # -- context manager -------------------------------------------------
    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the engine. Further ``predict`` calls raise ``ModelFileError``."""
        if not self._closed:
            self._ok = _UNSET  # sends the fast path to the general one, which raises
            self._backend.close()
            self._closed = True

    def __repr__(self) -> str:
        ins = ", ".join(i.describe() for i in self.inputs)
        return f"Model({self.path.name!r}, {self.format}/{self.precision}, engine={self.engine}, input={ins})"

    # -- inference -------------------------------------------------------
    def predict(self, x: Any) -> Any:
        """Run the model on a batch.

        Args:
            x: float32 array shaped ``(batch, *input_shape)``; a list of arrays
                for a model with several inputs. Integer or float64 arrays are
                cast to float32 when the cast is exact enough to be safe.

        Returns:
            float32 array ``(batch, *output_shape)``, or a list of them when the
            model has several outputs.

        Raises:
            InputError: wrong shape or dtype, or NaN/Inf with ``nan_policy="raise"``.
        """
        # Fast path: a float32 ndarray of a shape already validated once. Every check
        # still runs; each is the cheapest exact form measured (benchmarks/overhead.py).
        shape = x.shape if x.__class__ is _ndarray else None
        ok = self._ok
        if shape != ok[0] or x.dtype is not self._in_dtype:
            if self._closed:
                raise ModelFileError("This model was closed. Load it again with edgeship.runtime.load().")
            if not self._single:
                return self._predict_many(x)
            x = self._coerce(x, self.inputs[0])
            shape = x.shape
            if len(shape) and shape[0] == 0:
                raise InputError(
                    f"Model expects a batch of at least one sample. Received: {x.dtype} {tuple(shape)}. "
                    "Pass x[None, ...] for one sample."
                )
            ok = self._ok = (shape, self._finite_weights(x) if self._check_finite else None)
        if self._check_finite:
            self._check_finite_input(x, ok[1])
        if self._quant_in:
            x = self._quant[0](x)  # type: ignore[misc]
        try:
            if self._run1 is not None:
                out = self._run1(x, shape[0] if shape else 1)
                return out if self._plain_out else self._dequant[0](out)  # type: ignore[misc]
            outs = self._run([x])
        except ModelFileError:
            raise
        except Exception as exc:  # engine errors surface as one typed line
            raise engine_failed(self.engine, self.path.name, exc) from None
        return self._finish(outs)

    @staticmethod
    def _finite_weights(x: np.ndarray) -> np.ndarray | None:
        if x.size > _DOT_MAX:
            return None
        return np.full(x.size, _TINY, np.float64 if x.dtype == np.float64 else np.float32)

    def _check_finite_input(self, x: np.ndarray, weights: np.ndarray | None) -> None:
        """Raise InputError if ``x`` holds NaN or Inf (``weights`` from ``_finite_weights``)."""
        finite = _isfinite(x.ravel().dot(weights)) if weights is not None else bool(np.isfinite(x).all())
        if not finite:
            raise InputError(_nan_message(x, self.inputs[0]))

    def _predict_many(self, x: Any) -> Any:
        arrays = self._prepare_many(x)
        try:
            outs = self._run(arrays)
        except ModelFileError:
            raise
        except Exception as exc:
            raise engine_failed(self.engine, self.path.name, exc) from None
        return self._finish(outs)

    def _finish(self, outs: list[np.ndarray]) -> Any:
        result = []
        for out, dq in zip(outs, self._dequant):
            if dq is not None:
                out = dq(out)
            result.append(out)
        return result[0] if len(result) == 1 else result

    def predict_labels(self, x: Any) -> list[str]:
        """Top-1 class names for a batch; needs labels from the bundle or file metadata."""
        if not self.labels:
            raise InputError(
                f"predict_labels needs class labels. Received: {self.path.name} carries none. "
                "Load it from a bundle, or use predict() and argmax."
            )
        probs = self.predict(x)
        if isinstance(probs, list):
            probs = probs[0]
        return [self.labels[int(i)] for i in np.argmax(probs.reshape(len(probs), -1), axis=1)]

    def score(self, x: Any) -> np.ndarray:
        """Anomaly scores of a batch: the reconstruction error, ``mean((x - predict(x))**2)`` per sample.

        For a model whose output has its input's shape (an autoencoder); float64, shape ``(batch,)``.
        Higher is more anomalous. Works on any such model, with or without a threshold.
        """
        from edgeship.core.metrics import reconstruction_error

        rule = (self.anomaly or {}).get("score", "mse")
        if rule != "mse":
            raise ModelFileError(
                f"Expected the anomaly score rule 'mse' (reconstruction error). Received: {rule!r} in "
                f"{self.path.name}'s metadata. Use the edgeship release that built it."
            )
        out = self.predict(x)
        if isinstance(out, list) or not self._single:
            raise InputError(f"score needs a model with one input and one output. Received: {self.path.name} "
                             f"with {len(self.inputs)} input(s), {len(self.outputs)} output(s).")
        xs = np.asarray(x, dtype=np.float32)
        if xs.shape != out.shape:
            raise InputError(
                f"score needs a reconstruction model: output shaped like the input. Received: input "
                f"{tuple(xs.shape)}, output {tuple(out.shape)} from {self.path.name}. Use predict() for a classifier."
            )
        return reconstruction_error(xs, out)

    def predict_anomaly(self, x: Any) -> np.ndarray:
        """``score(x) > threshold`` per sample (booleans, True = anomalous), at the bundle's threshold."""
        threshold = (self.anomaly or {}).get("threshold")
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise InputError(
                f"predict_anomaly needs an anomaly threshold. Received: {self.path.name} carries none. Load an "
                "anomaly-detection bundle (model.task = \"anomaly\") or one of its files, or compare score(x) "
                "with your own threshold."
            )
        return self.score(x) > float(threshold)

    # -- slow paths ------------------------------------------------------
    def _coerce(self, x: Any, spec: TensorInfo) -> np.ndarray:
        if self._tokenizer is not None and is_text(x):
            return self._tokenizer(x).astype(self._in_dtype, copy=False)
        want = spec.describe().replace(f"{np.dtype(spec.dtype).name} ", "")
        want_dtype = self._in_dtype.name if self._single else np.dtype(np.float32).name
        if not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except Exception:
                raise InputError(
                    f"Model expects input {want_dtype} {want}. Received: {type(x).__name__}. "
                    "Pass a numpy array."
                ) from None
        if x.dtype.kind not in "fiub":
            raise InputError(
                f"Model expects input {want_dtype} {want}. Received: {x.dtype} {tuple(x.shape)}. "
                "Pass a numeric numpy array."
            )
        if x.dtype.kind == "f" and self._in_dtype.kind in "iu":
            raise InputError(
                f"Model expects input {want_dtype} {want}. Received: {x.dtype} {tuple(x.shape)}; floats do not "
                f"cast safely to {want_dtype}. Pass integer ids (x.astype(np.{want_dtype}) if they are whole numbers)."
            )
        inner = tuple(spec.shape[1:])
        if x.ndim != len(spec.shape) or not _shape_matches(x.shape[1:], inner):
            hint = "Pass a batch: x[None, ...]." if _shape_matches(x.shape, inner) else (
                f"Reshape to (batch, {', '.join(str(d) for d in inner)})."
            )
            raise InputError(
                f"Model expects input {want_dtype} {want}. Received: {x.dtype} {tuple(x.shape)}. {hint}"
            )
        if x.dtype != self._in_dtype:
            x = x.astype(self._in_dtype)
        return np.ascontiguousarray(x)

    def _prepare_many(self, x: Any) -> list[np.ndarray]:
        if not isinstance(x, (list, tuple)) or len(x) != len(self.inputs):
            names = ", ".join(i.name for i in self.inputs)
            raise InputError(
                f"Model expects {len(self.inputs)} inputs ({names}). Received: {type(x).__name__}. "
                "Pass a list with one array per input, in that order."
            )
        arrays = []
        for arr, spec, quant in zip(x, self.inputs, self._quant):
            want = spec.dtype if spec.dtype.kind == "f" or not spec.quantized else np.dtype(np.float32)
            if type(arr) is not np.ndarray or arr.dtype != want or not _shape_matches(arr.shape[1:], spec.shape[1:]):
                arr = self._coerce_multi(arr, spec, want)
            if self.nan_policy == "raise" and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise InputError(_nan_message(arr, spec))
            arrays.append(quant(arr) if quant is not None else arr)
        return arrays

    def _coerce_multi(self, x: Any, spec: TensorInfo, want: np.dtype) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != len(spec.shape) or not _shape_matches(x.shape[1:], spec.shape[1:]):
            raise InputError(
                f"Input {spec.name} expects {np.dtype(want).name} {spec.describe().split(' ', 1)[1]}. "
                f"Received: {x.dtype} {tuple(x.shape)}."
            )
        return np.ascontiguousarray(x.astype(want))


def _shape_matches(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))


def _nan_message(x: np.ndarray, spec: TensorInfo) -> str:
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    return (
        f"Model expects finite input values for {spec.name}. Received: {bad} NaN/Inf value(s) "
        f"in an array of {x.size}. Clean the input, or load with nan_policy='ignore'."
    )
