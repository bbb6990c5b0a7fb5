"""Inference engines behind :class:`edgeship.runtime.Model`.

Engines are imported lazily, on the first load of a model of their format, so
``import edgeship.runtime`` stays cheap and never pulls in TensorFlow when a
lighter engine is installed.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import platform
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from ._errors import BackendMissingError, ModelFileError, engine_failed
from ._tensor import TensorInfo

# Order matters: the first one installed wins. LiteRT is the maintained engine;
# many devices still only have tflite_runtime; TensorFlow is the heavy fallback.
TFLITE_ENGINES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow")


class Backend(Protocol):
    engine: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...


def tflite_interpreter_class() -> tuple[Any, str]:
    """Return the first importable TFLite ``Interpreter`` class and its module name."""
    for name in TFLITE_ENGINES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if name == "tensorflow":
            return module.lite.Interpreter, "tensorflow.lite"
        return module.Interpreter, name
    raise BackendMissingError(
        "Running a .tflite model needs a TFLite engine. Received: none of "
        "ai_edge_litert, tflite_runtime or tensorflow is installed. "
        "Fix: pip install ai-edge-litert"
    )


#: LiteRT's line on stderr at the first allocation of an interpreter in a process (C++, fd 2): no concern of a
#: user's. Other lines pass through; ``-v`` (``edgeship.core.progress.verbose()``) keeps this one too.
ENGINE_NOTICES = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)
_notice = {"seen": False}
_notice_lock = threading.Lock()


@contextlib.contextmanager
def engine_notice_held_back() -> Iterator[None]:
    """Run the block with fd 2 captured, then write back what it wrote except :data:`ENGINE_NOTICES` lines.

    LiteRT prints its line once per process, so after it was seen (or with ``-v``) the block runs as is. The
    capture is at the file-descriptor level, where native code writes; whatever another thread writes to
    stderr meanwhile is written back after the block, not lost.
    """
    from edgeship.core import progress

    if _notice["seen"] or progress.verbose():
        yield
        return
    with _notice_lock, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if line.strip() not in ENGINE_NOTICES]
            _notice["seen"] = len(kept) < len(lines)
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _signature_names(interp: Any) -> dict[int, str]:
    """Tensor index -> name in the file's only signature (``{}`` without exactly one, or on an old engine)."""
    try:
        signatures = interp.get_signature_list()
        if len(signatures) != 1:
            return {}
        runner = interp.get_signature_runner(next(iter(signatures)))
        details = {**runner.get_input_details(), **runner.get_output_details()}
        return {int(d["index"]): str(name) for name, d in details.items()}
    except Exception:  # tflite_runtime / tensorflow builds without signature runners
        return {}


def _tflite_info(detail: dict[str, Any], signature_names: dict[int, str] | None = None) -> TensorInfo:
    signature = detail.get("shape_signature")
    if signature is None or len(signature) == 0:
        signature = detail["shape"]
    shape = tuple(None if int(d) < 0 else int(d) for d in signature)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"])
    quantized = dtype.kind in "iu" and scale != 0.0
    return TensorInfo(
        name=detail["name"],
        shape=shape,
        dtype=dtype,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
        signature_name=(signature_names or {}).get(int(detail["index"])),
    )


class TFLiteBackend:
    """LiteRT interpreter, one per model, guarded by a lock.

    The TFLite interpreter is not thread-safe (its tensors are shared state), so
    every set/invoke/get sequence runs under one lock.
    """

    def __init__(self, content: bytes, threads: int | None = None) -> None:
        cls, self.engine = tflite_interpreter_class()
        kwargs: dict[str, Any] = {"model_content": content}
        if threads:
            kwargs["num_threads"] = int(threads)
        #: Whether the engine converts float32 I/O to and from the file's integer I/O (``_floatio``).
        self.quantizes_io = False
        try:
            self._interp = cls(**kwargs)
            in_details = self._interp.get_input_details()
            out_details = self._interp.get_output_details()
            named = _signature_names(self._interp)
            self.inputs = [_tflite_info(d, named) for d in in_details]  # the file's tensors, whatever runs
            self.outputs = [_tflite_info(d, named) for d in out_details]
            quantized_io = self.inputs and self.outputs and all(t.quantized for t in self.inputs + self.outputs)
            if quantized_io and os.environ.get("EDGESHIP_INT8_IO", "engine") != "numpy":
                self._use_float_io(cls, kwargs)
            with engine_notice_held_back():
                self._interp.allocate_tensors()
            in_details = self._interp.get_input_details()
            out_details = self._interp.get_output_details()
        except (ValueError, RuntimeError, TypeError, KeyError) as exc:
            raise ModelFileError(
                f"LiteRT could not load the model: {_first_line(exc)}. Expected a valid .tflite flatbuffer; "
                "re-export the model."
            ) from None
        if not self.inputs or not self.outputs:
            raise ModelFileError(
                f"LiteRT could not load the model: it has {len(self.inputs)} inputs and {len(self.outputs)} "
                "outputs. Expected at least one of each; re-export the model."
            )
        self._lock = threading.Lock()
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._in_idx = [d["index"] for d in in_details]
        self._out_idx = [d["index"] for d in out_details]
        self._batch = [int(d["shape"][0]) if len(d["shape"]) else 1 for d in in_details]
        self._set = self._interp.set_tensor
        self._invoke = self._interp.invoke
        self._get = self._interp.get_tensor
        self._in0, self._out0, self._batch0 = self._in_idx[0], self._out_idx[0], self._batch[0]

    def _use_float_io(self, cls: Any, kwargs: dict[str, Any]) -> None:
        """Run the graph with engine-side (de)quantization when it converts (see ``_floatio``).

        ``EDGESHIP_INT8_IO=numpy`` in the environment skips this (the caller's check): the
        conversion then runs in numpy, and the flatbuffer tools (about 5 MB of resident
        Python modules, 15 ms to import once per process) are never imported.
        """
        from ._floatio import float_io_content

        content = float_io_content(kwargs["model_content"])
        if content is None:
            return
        try:
            interp = cls(**{**kwargs, "model_content": content})
            ins, outs = interp.get_input_details(), interp.get_output_details()
        except (ValueError, RuntimeError, TypeError, KeyError):
            return

        def shapes(details: list[dict[str, Any]]) -> list[tuple[int, ...]]:
            return [tuple(int(v) for v in d.get("shape_signature", d["shape"])) for d in details]

        same = shapes(ins + outs) == shapes(self._interp.get_input_details() + self._interp.get_output_details())
        if same and all(np.dtype(d["dtype"]) == np.float32 for d in ins + outs):
            self._interp, self.quantizes_io = interp, True

    @property
    def dynamic_batch(self) -> bool:
        return all(len(i.shape) > 0 and i.shape[0] is None for i in self.inputs)

    def _resize(self, batch: int) -> None:
        for pos, idx in enumerate(self._in_idx):
            shape = [batch, *self._interp.get_input_details()[pos]["shape"][1:]]
            self._interp.resize_tensor_input(idx, shape)
        self._interp.allocate_tensors()
        self._batch = [batch] * len(self._in_idx)
        self._batch0 = batch

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        batch = arrays[0].shape[0] if arrays[0].ndim else 1
        with self._lock:
            if batch != self._batch[0]:
                if self.dynamic_batch:
                    self._resize(batch)
                else:
                    return self._run_per_sample(arrays, batch)
            for idx, arr in zip(self._in_idx, arrays):
                self._set(idx, arr)
            self._invoke()
            return [self._get(idx) for idx in self._out_idx]

    def run1(self, x: np.ndarray, batch: int) -> np.ndarray:
        """One input of ``batch`` samples, one output: the hot path of ``Model.predict``."""
        # acquire/release rather than `with`: 0.25 µs less per call (benchmarks/overhead.py).
        self._acquire()
        try:
            if batch == self._batch0:
                self._set(self._in0, x)
                self._invoke()
                return self._get(self._out0)
        finally:
            self._release()
        return self.run([x])[0]

    def fast_predict(self, model: Any) -> Any:
        """``model.predict`` specialised for one input and one output.

        Same checks as ``Model.predict``, with every name bound in a closure and the
        engine calls inline: about 1 µs less per call than the general path
        (benchmarks/overhead.py). An int8 model's input is quantized before the lock is
        taken and its output dequantized after it is released, so threads overlap that
        work. Anything but an ndarray of the model's dtype, of the shape validated last
        (which ``Model.close`` resets) and of the interpreter's current batch goes to
        ``Model.predict``.
        """
        general = type(model).predict.__get__(model)
        ndarray, in_dtype, check, isfinite = np.ndarray, model._in_dtype, model._check_finite, math.isfinite
        quant, dequant = model._quant[0], model._dequant[0]
        acquire, release, set_tensor, invoke, get_tensor = self._acquire, self._release, self._set, self._invoke, self._get
        i0, o0, backend = self._in0, self._out0, self

        def predict(x: Any) -> Any:
            if x.__class__ is ndarray and x.dtype is in_dtype:
                shape = x.shape
                ok = model._ok
                if shape == ok[0] and shape[0] == backend._batch0:  # else quantizing here would be wasted
                    if check:
                        w = ok[1]  # see Model: one dot with 2**-64 is non-finite iff x holds NaN/Inf
                        if w is None or not isfinite(x.ravel().dot(w)):
                            model._check_finite_input(x, None)
                    feed = x if quant is None else quant(x)
                    acquire()
                    try:
                        if shape[0] == backend._batch0:  # again under the lock: another thread may resize
                            set_tensor(i0, feed)
                            invoke()
                            out = get_tensor(o0)
                        else:
                            out = None
                    except Exception as exc:
                        raise engine_failed(backend.engine, model.path.name, exc) from None
                    finally:
                        release()
                    if out is not None:
                        return out if dequant is None else dequant(out)
            return general(x)

        predict.__doc__ = type(model).predict.__doc__
        return predict

    def _run_per_sample(self, arrays: list[np.ndarray], batch: int) -> list[np.ndarray]:
        # Fixed-batch model (batch 1 usually): run one sample at a time.
        step = self._batch[0]
        if batch % step:
            raise ValueError(f"batch {batch} is not a multiple of the model's fixed batch {step}")
        parts: list[list[np.ndarray]] = [[] for _ in self._out_idx]
        for start in range(0, batch, step):
            for idx, arr in zip(self._in_idx, arrays):
                self._set(idx, arr[start : start + step])
            self._invoke()
            for pos, idx in enumerate(self._out_idx):
                parts[pos].append(self._get(idx))
        return [np.concatenate(p, axis=0) for p in parts]

    def close(self) -> None:
        with self._lock:
            self._interp = None  # type: ignore[assignment]
            self._set = self._invoke = self._get = _closed  # type: ignore[assignment]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _closed(*_: Any) -> Any:
    raise ModelFileError("This model was closed. Load it again with edgeship.runtime.load().")


#: ORT's session option (``kOrtSessionOptionsAvx2PrecisionMode``, onnxruntime PR #12088). x86-64 CPUs without
#: VNNI (AVX2, AVX-512 without VNNI) multiply u8 activations by s8 weights with ``vpmaddubsw``, whose int16
#: intermediate saturates, so an int8 QDQ model gives other answers there than on a VNNI CPU. "1" makes ORT
#: shift the s8 weights to u8 at load and use its u8u8 kernels, which cannot saturate.
X64_QUANT_PRECISION = "session.x64quantprecision"
#: ``EDGESHIP_X64_QUANT_PRECISION``: ``auto`` (default, see :func:`x64_quant_precision`), ``1`` always, ``0`` never
#: (ORT's default, the saturating kernels: for tests and measurements of the fix).
ENV_X64_QUANT_PRECISION = "EDGESHIP_X64_QUANT_PRECISION"


def x64_quant_precision() -> bool:
    """Whether ONNX sessions get :data:`X64_QUANT_PRECISION` = 1: on x86-64 CPUs without AVX512-VNNI.

    ORT acts on the option on every x86 CPU with AVX2, VNNI or not, and on a VNNI CPU, which does not
    saturate, it changes no output but swaps the VNNI kernels for slower u8u8 ones (docs/cpus.md), so a CPU
    whose CPUID reports AVX512-VNNI keeps ORT's default. When the CPU's features cannot be read, it is set:
    right answers first. ``$EDGESHIP_X64_QUANT_PRECISION`` overrides.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    mode = os.environ.get(ENV_X64_QUANT_PRECISION, "auto").strip().lower()
    if mode in ("0", "false", "no", "off"):
        return False
    if mode in ("1", "true", "yes", "on"):
        return True
    return cpu_features().get("AVX512VNNI") is not True


_CPU_FEATURES: dict[str, bool] | None = None


def cpu_features() -> dict[str, bool]:
    """The CPU's features as numpy's dispatcher read them with CPUID (``{}`` when this numpy does not say).

    CPUID, not ``/proc/cpuinfo``: it is what ORT's MLAS and XNNPACK dispatch on, and under qemu user-mode
    emulation ``/proc/cpuinfo`` is the host's while CPUID is the emulated CPU's.
    """
    global _CPU_FEATURES
    if _CPU_FEATURES is None:
        found: dict[str, bool] = {}
        for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
            try:
                found = dict(importlib.import_module(name).__cpu_features__)
                break
            except (ImportError, AttributeError):
                continue
        _CPU_FEATURES = found
    return _CPU_FEATURES


_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def _ort_info(arg: Any) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in arg.shape)
    if arg.type not in _ORT_TYPES:
        raise ModelFileError(
            f"ONNX Runtime could not load the model: unsupported tensor type {arg.type} for {arg.name}. "
            "Expected float, int or bool tensors; re-export the model."
        )
    return TensorInfo(name=arg.name, shape=shape, dtype=np.dtype(_ORT_TYPES[arg.type]))


def _ort_session(ort: Any, content: bytes, options: Any, providers: list[str]) -> tuple[Any, bool]:
    """The session, and whether it has :data:`X64_QUANT_PRECISION` (when :func:`x64_quant_precision` asks for it).

    ORT 1.32 cannot apply the option to a model whose weight DequantizeLinear nodes share one zero-point
    initializer (tf2onnx's conversion of an int8 .tflite does: "Attempt to replace the existing tensor"); such
    a model is loaded without it, with a RuntimeWarning, rather than not at all.
    """
    fix = x64_quant_precision()
    if fix:
        options.add_session_config_entry(X64_QUANT_PRECISION, "1")
    try:
        return ort.InferenceSession(content, sess_options=options, providers=providers), fix
    except Exception as exc:  # ORT raises its own exception types from C++
        error = exc
    if fix:
        options.add_session_config_entry(X64_QUANT_PRECISION, "0")
        try:
            session = ort.InferenceSession(content, sess_options=options, providers=providers)
        except Exception:
            pass
        else:
            warnings.warn(
                f"ONNX Runtime could not apply {X64_QUANT_PRECISION}=1 to this model ({_first_line(error)}); "
                "it runs on the default u8s8 int8 kernels, which saturate on x86 CPUs without VNNI, so its "
                "outputs here may differ from a VNNI CPU's. Fix: give each weight DequantizeLinear its own "
                "zero-point initializer (edgeship's int8 ONNX does), or ship the int8 TFLite artifact.",
                RuntimeWarning, stacklevel=4)
            return session, False
    raise ModelFileError(
        f"ONNX Runtime could not load the model: {_first_line(error)}. Expected a valid .onnx model; re-export it."
    ) from None


class OnnxBackend:
    """ONNX Runtime session. ``InferenceSession.run`` is thread-safe."""

    def __init__(
        self,
        content: bytes,
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError:
            raise BackendMissingError(
                "Running a .onnx model needs ONNX Runtime. Received: onnxruntime is not "
                "installed. Fix: pip install onnxruntime"
            ) from None
        self.engine = "onnxruntime"
        options = ort.SessionOptions()
        # FATAL only: an engine error reaches the caller as ModelFileError with ORT's message,
        # so ORT's own coloured log line on stderr would only repeat it.
        options.log_severity_level = 4
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        chosen = list(providers) if providers else ["CPUExecutionProvider"]
        missing = [p for p in chosen if p not in available]
        if missing:
            raise BackendMissingError(
                f"ONNX Runtime providers {missing} are not available. Received: installed "
                f"providers {available}. Fix: install the matching onnxruntime build "
                "(for CUDA: pip install onnxruntime-gpu) or pass providers=None."
            )
        self._session, self.x64_quant_precision = _ort_session(ort, content, options, chosen)
        try:
            self.inputs = [_ort_info(a) for a in self._session.get_inputs()]
            self.outputs = [_ort_info(a) for a in self._session.get_outputs()]
        except (UnicodeDecodeError, ValueError, RuntimeError) as exc:  # e.g. names that are not UTF-8
            raise ModelFileError(
                f"ONNX Runtime could not load the model: {_first_line(exc)}. Expected a valid .onnx model; re-export it."
            ) from None
        if not self.inputs or not self.outputs:
            raise ModelFileError(
                f"ONNX Runtime could not load the model: it has {len(self.inputs)} inputs and "
                f"{len(self.outputs)} outputs. Expected at least one of each; re-export the model."
            )
        self._in_names = [i.name for i in self.inputs]
        self._out_names = [o.name for o in self.outputs]
        self._in0 = self._in_names[0]
        self._run = self._session.run

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._run(self._out_names, dict(zip(self._in_names, arrays)))

    def run1(self, x: np.ndarray, batch: int) -> np.ndarray:
        """One input, one output: the hot path of ``Model.predict``."""
        return self._run(self._out_names, {self._in0: x})[0]

    def fast_predict(self, model: Any) -> Any:
        """``model.predict`` specialised for one input and one output (see
        ``TFLiteBackend.fast_predict``). ``InferenceSession.run`` is thread-safe."""
        general = type(model).predict.__get__(model)
        ndarray, in_dtype, check, isfinite = np.ndarray, model._in_dtype, model._check_finite, math.isfinite
        quant, dequant = model._quant[0], model._dequant[0]
        run, out_names, in0, backend = self._run, self._out_names, self._in0, self

        def predict(x: Any) -> Any:
            ok = model._ok
            if x.__class__ is ndarray and x.dtype is in_dtype and x.shape == ok[0]:
                if check:
                    w = ok[1]  # see Model: one dot with 2**-64 is non-finite iff x holds NaN/Inf
                    if w is None or not isfinite(x.ravel().dot(w)):
                        model._check_finite_input(x, None)
                try:
                    out = run(out_names, {in0: x if quant is None else quant(x)})[0]
                except Exception as exc:
                    raise engine_failed(backend.engine, model.path.name, exc) from None
                return out if dequant is None else dequant(out)
            return general(x)

        predict.__doc__ = type(model).predict.__doc__
        return predict

    def close(self) -> None:
        self._session = None
        self._run = _closed
