"""Latency measurement: warm-up, then at least N runs and at least T seconds."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._bundle import is_bundle, read_manifest, verify_bundle
from ._load import load, load_eval, load_file
from ._model import Model


def sample_input(model: Model, seed: int = 0) -> np.ndarray:
    """A batch-1 input for ``model``: uniform [0, 1) floats, or small token ids."""
    spec = model.inputs[0]
    shape = (1, *[d if d is not None else 1 for d in spec.shape[1:]])
    rng = np.random.default_rng(seed)
    if model._in_dtype.kind == "f":
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, 2, size=shape).astype(model._in_dtype)


def time_predict(model: Model, x: np.ndarray, *, warmup: int = 10, runs: int = 100, min_seconds: float = 1.0) -> dict[str, Any]:
    """Time ``model.predict(x)`` after ``warmup`` calls; at least ``runs`` and ``min_seconds``."""
    predict = model.predict
    clock = time.perf_counter_ns
    t0 = clock()
    predict(x)
    first_ms = (clock() - t0) / 1e6
    for _ in range(warmup):
        predict(x)
    times: list[int] = []
    deadline = clock() + int(min_seconds * 1e9)
    while len(times) < runs or clock() < deadline:
        t0 = clock()
        predict(x)
        times.append(clock() - t0)
    ms = np.asarray(times, dtype=np.float64) / 1e6
    return {
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
            "min": float(ms.min()),
            "max": float(ms.max()),
        },
        "first_ms": first_ms,
        "runs": int(ms.size),
        "batch": int(x.shape[0]),
    }


def benchmark(
    path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 100,
    min_seconds: float = 1.0,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Benchmark a model file (one dict) or every artifact of a bundle (a list).

    Each result holds ``latency_ms`` {p50, p90, p99, mean, min, max}, ``init_ms``
    (load and engine set-up), ``first_ms``, ``runs`` and ``file``.
    """
    p = Path(path)
    if not is_bundle(p):
        t0 = time.perf_counter()
        model = load(p, threads=threads)
        init_ms = (time.perf_counter() - t0) * 1e3
        with model:
            result = time_predict(model, sample_input(model), warmup=warmup, runs=runs, min_seconds=min_seconds)
        return {"file": p.name, "format": model.format, "precision": model.precision, "init_ms": init_ms, **result}
    manifest = read_manifest(p)
    verify_bundle(p, manifest)
    x_eval, _ = load_eval(p)
    results = []
    for entry in manifest["artifacts"]:
        t0 = time.perf_counter()
        model = load_file(p / entry["file"], entry["format"], threads=threads, precision=entry.get("precision"))
        init_ms = (time.perf_counter() - t0) * 1e3
        with model:
            x = np.ascontiguousarray(x_eval[:1])
            result = time_predict(model, x, warmup=warmup, runs=runs, min_seconds=min_seconds)
        results.append({
            "file": entry["file"],
            "format": entry["format"],
            "precision": entry.get("precision"),
            "bytes": entry.get("bytes"),
            "accuracy": (entry.get("metrics") or {}).get("accuracy"),
            "init_ms": init_ms,
            **result,
        })
    return results
