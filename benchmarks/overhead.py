"""Overhead of edgeship ``Model.predict`` over raw engine calls on the same model.

Same process, same engine object: the raw calls go to the very interpreter or
session that the edgeship ``Model`` wraps, so only edgeship's own work differs
(validation, NaN/Inf check, int8 (de)quantization, locking). The exception is an
int8-I/O TFLite file: edgeship runs it with the (de)quantization in the graph, so
the raw calls go to a second LiteRT interpreter on the unchanged file. Calls alternate
raw / edgeship one by one (interleaved), so a noisy neighbour slows both alike;
each round reports the median per-call time of each, and the figures are the
median over rounds of (edgeship - raw) in µs and edgeship / raw as a ratio.

For int8 artifacts the raw call is fed an already-quantized int8 input and
returns int8, so the edgeship figure includes the float->int8->float
conversion work a raw caller would otherwise write themselves.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.runtime import load
from edgeship.runtime._quant import Dequantizer, Quantizer


def raw_call(model: Any, x: np.ndarray, convert: bool = False, threads: int = 1) -> Any:
    """A zero-argument callable that runs the model's engine directly on ``x``.

    For a model with int8 input/output, ``convert=False`` feeds pre-quantized codes
    and returns int8 (the engine alone); ``convert=True`` also quantizes the float
    input and dequantizes the output the way a caller would write it by hand. For
    an int8-I/O TFLite file edgeship runs a graph with QUANTIZE / DEQUANTIZE ops
    added (``runtime/_floatio.py``), so the raw caller gets its own LiteRT
    interpreter on the file as it is, with the same thread count.
    """
    backend = model._backend
    spec = model.inputs[0]
    quantized = spec.quantized
    if quantized and not convert:  # what a raw caller would feed: the int8 codes
        x = Quantizer(spec)(x)
    if model.format == "tflite":
        interp = backend._interp
        i, o = backend._in_idx[0], backend._out_idx[0]
        if quantized:
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=str(model.path), num_threads=threads)
            interp.allocate_tensors()
            i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        set_tensor, invoke, get_tensor = interp.set_tensor, interp.invoke, interp.get_tensor
        if quantized and convert:
            s_in, z_in, out = np.float32(spec.scale), np.float32(spec.zero_point), model.outputs[0]
            s_out, z_out = np.float32(out.scale), np.float32(out.zero_point)

            def call_convert() -> Any:
                set_tensor(i, np.clip(np.rint(x / s_in) + z_in, -128, 127).astype(np.int8))
                invoke()
                return (get_tensor(o).astype(np.float32) - z_out) * s_out

            return call_convert

        def call() -> Any:
            set_tensor(i, x)
            invoke()
            return get_tensor(o)

        return call
    run, names, feed = backend._session.run, backend._out_names, backend._in_names[0]

    def call_ort() -> Any:
        return run(names, {feed: x})

    return call_ort


def interleaved(model: Any, x: np.ndarray, *, rounds: int = 7, pairs: int = 2000, warmup: int = 200,
                convert: bool = False, threads: int = 1) -> dict[str, Any]:
    raw = raw_call(model, x, convert, threads)
    ours = model.predict
    clock = time.perf_counter_ns
    expect = _first(raw())
    out = model.outputs[0]
    if not convert and out.quantized:  # the raw engine's int8 codes, read as TFLite defines them
        expect = Dequantizer(out)(expect)
    np.testing.assert_allclose(ours(x), expect, rtol=0, atol=1e-6)  # same numbers: like for like
    for _ in range(warmup):
        raw()
        ours(x)
    per_round = []
    for r in range(rounds):
        t_raw = np.empty(pairs, np.int64)
        t_ours = np.empty(pairs, np.int64)
        for k in range(pairs):
            if (k + r) & 1:  # alternate which goes first
                t0 = clock(); raw(); t1 = clock(); ours(x); t2 = clock()  # noqa: E702
                t_raw[k], t_ours[k] = t1 - t0, t2 - t1
            else:
                t0 = clock(); ours(x); t1 = clock(); raw(); t2 = clock()  # noqa: E702
                t_ours[k], t_raw[k] = t1 - t0, t2 - t1
        m_raw, m_ours = float(np.median(t_raw)) / 1e3, float(np.median(t_ours)) / 1e3
        per_round.append({"raw_us": m_raw, "edgeship_us": m_ours, "extra_us": m_ours - m_raw, "ratio": m_ours / m_raw})
    return {
        "rounds": rounds,
        "pairs_per_round": pairs,
        "raw_us": statistics.median(r["raw_us"] for r in per_round),
        "edgeship_us": statistics.median(r["edgeship_us"] for r in per_round),
        "extra_us": statistics.median(r["extra_us"] for r in per_round),
        "ratio": statistics.median(r["ratio"] for r in per_round),
        "per_round": per_round,
    }


def overhead(path: Path, x: np.ndarray, *, threads: int = 1, nan_policy: str = "raise", convert: bool = False,
             **kw: Any) -> dict[str, Any]:
    with load(path, threads=threads, nan_policy=nan_policy) as model:  # type: ignore[arg-type]
        if convert and not model.inputs[0].quantized:
            return {}
        res = interleaved(model, np.ascontiguousarray(x[:1], dtype=np.float32), convert=convert, threads=threads, **kw)
        return {"file": path.name, "format": model.format, "precision": model.precision, "engine": model.engine,
                "threads": threads, "nan_policy": nan_policy,
                "raw_baseline": "engine + hand-written int8 conversion" if convert else "engine only", **res}


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, list) else out
