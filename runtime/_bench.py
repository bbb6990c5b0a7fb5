"""Latency measurement users can trust: warm-up, then at least N runs and T seconds.

Every figure is measured through the same ``Model.predict`` a user calls, on a
batch-1 input (the bundle's first held-out sample when there is one).
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.bundle import ArtifactRecord
from edgeship.core.task import AnomalyDetection, Classification, Task, task_of, task_of_model

from ._bundle import is_bundle, read_manifest, verify_bundle
from ._errors import InputError
from ._load import anomaly_of, load, load_eval, load_file
from ._model import Model
from ._timing import sample_input, time_block

# Interleaved rounds per bundle benchmark (each artifact timed once per round).
DEFAULT_ROUNDS = 21
# Separate loads of each artifact in a bundle benchmark. One load's speed depends on where the
# engine happened to place its weights (cache sets): separate loads of one float32 file differed by
# up to 14 % (MLPerf Tiny autoencoder, 1 MB of weights in a 2 MB L2), more than the gap between two
# variants, so a variant is judged by the median over its loads.
DEFAULT_LOADS = 3


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (Linux VmHWM, else ``resource``)."""
    try:  # VmHWM: ru_maxrss would include a forking parent's peak (Linux keeps it across exec)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    """The process's current resident set size in MiB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (OSError, ValueError, AttributeError):
        return peak_rss_mb()


def latency_stats(ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    """min, mean, std, p50, p90, p95, p99 and max of per-call times, in milliseconds."""
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {
        "min": float(ms.min()),
        "mean": float(ms.mean()),
        "std": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(ms.max()),
    }


def time_predict(
    model: Model, x: Any, *, warmup: int = 10, runs: int = 100, min_seconds: float = 1.0
) -> dict[str, Any]:
    """Time ``model.predict(x)``: one first call, ``warmup`` untimed calls, then at
    least ``runs`` timed calls and at least ``min_seconds`` of them.

    Returns:
        ``latency_ms`` (min, mean, std, p50, p90, p95, p99, max), ``first_ms`` (the
        first call, which pays lazy engine set-up when it directly follows a load),
        ``runs``, ``batch``, ``seconds`` (wall time of the timed loop) and
        ``throughput_per_s`` (samples per second over it).
    """
    predict = model.predict
    clock = time.perf_counter_ns
    t0 = clock()
    predict(x)
    first_ms = (clock() - t0) / 1e6
    for _ in range(warmup):
        predict(x)
    times: list[int] = []
    append = times.append
    start = clock()
    deadline = start + int(min_seconds * 1e9)
    while len(times) < runs or clock() < deadline:
        t0 = clock()
        predict(x)
        append(clock() - t0)
    total_s = (clock() - start) / 1e9  # wall time of the timed loop, >= min_seconds
    batch = int((x[0] if isinstance(x, list) else x).shape[0])
    return {
        "latency_ms": latency_stats(times),
        "first_ms": first_ms,
        "runs": len(times),
        "batch": batch,
        "seconds": total_s,
        "throughput_per_s": batch * len(times) / total_s if total_s > 0 else float("inf"),
    }


def _measure(
    open_model: Any,
    x: Any | None,
    *,
    warmup: int,
    runs: int,
    min_seconds: float,
    eval_data: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, Any]:
    rss_before = rss_mb()
    t0 = time.perf_counter()
    model = open_model()
    init_ms = (time.perf_counter() - t0) * 1e3
    with model:
        sample = sample_input(model) if x is None else x
        result = time_predict(model, sample, warmup=warmup, runs=runs, min_seconds=min_seconds)
        out: dict[str, Any] = {
            "format": model.format,
            "precision": model.precision,
            "engine": model.engine,
            "init_ms": init_ms,
            **result,
            "rss_increase_mb": rss_mb() - rss_before,
            "peak_rss_mb": peak_rss_mb(),
        }
        if eval_data is not None:
            out["metric"], out["accuracy"] = quality(model, eval_data)
    return out


def benchmark(
    path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 100,
    min_seconds: float = 1.0,
    thread_sweep: Sequence[int] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    loads: int = DEFAULT_LOADS,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Benchmark a model file (one dict) or every artifact of a bundle (a list).

    Each result holds ``latency_ms`` {min, mean, std, p50, p90, p95, p99, max},
    ``init_ms`` (read, verify and engine set-up), ``first_ms``, ``runs``,
    ``throughput_per_s``, ``rss_increase_mb`` (load and runs), ``peak_rss_mb`` (the
    process's peak so far), ``threads`` and ``file``. With ``thread_sweep`` each
    result gets ``sweep``: the same measurement per engine thread count.

    A bundle's artifacts are all loaded (each ``loads`` times, separately) and timed
    *interleaved*: ``rounds`` rounds, each timing one block of calls per load (the
    order rotates and reverses between rounds), so a slow spell on a shared machine
    hits every artifact alike. Each bundle result also holds ``median_ms`` (per load,
    the median over rounds of each block's median call time; then the median over
    the loads: the figure the fastest artifact is chosen by), ``median_ms_per_load``,
    ``round_ms`` (every round's block median), ``rounds``, ``bytes``,
    ``accuracy`` and ``metric`` (measured here on the bundle's ``eval.npz``:
    ``"top1"``, or ``"roc_auc"`` of the reconstruction error for a reconstruction /
    anomaly model) and ``manifest_accuracy`` (recorded at build time).
    """
    p = Path(path)
    kw = {"warmup": warmup, "runs": runs, "min_seconds": min_seconds}
    if not is_bundle(p):
        return _benchmark_file(p, threads, thread_sweep, kw)
    if rounds < 1:
        raise InputError(f"Expected rounds >= 1. Received: {rounds}. Pass rounds=9 or more.")
    if loads < 1:
        raise InputError(f"Expected loads >= 1. Received: {loads}. Pass loads=3.")
    manifest = read_manifest(p)
    verify_bundle(p, manifest)
    eval_data = load_eval(p)
    x = np.ascontiguousarray(eval_data[0][:1])
    openers = _openers(p, manifest, threads)
    timed = measure_interleaved(openers, x, rounds=rounds, loads=loads, **kw)
    task = task_of(manifest)
    results = []
    for entry, open_model, (model, r) in zip(manifest.artifacts, openers, timed):
        with model:
            metric, value = quality(model, eval_data, task)
        r = {"file": entry.file, "bytes": entry.bytes, "threads": threads,
             "manifest_accuracy": _manifest_accuracy(task, entry), **r, "metric": metric, "accuracy": value}
        if thread_sweep:
            r["sweep"] = _sweep(lambda t, f=open_model: f(t), x, thread_sweep, kw)
        results.append(r)
    return results


def _benchmark_file(p: Path, threads: int | None, thread_sweep: Sequence[int] | None,
                    kw: dict[str, Any]) -> dict[str, Any]:
    """:func:`benchmark` of one model file."""
    result = {"file": p.name, "threads": threads, **_measure(lambda: load(p, threads=threads), None, eval_data=None, **kw)}
    if thread_sweep:
        result["sweep"] = _sweep(lambda t: load(p, threads=t), None, thread_sweep, kw)
    return result


def _openers(p: Path, manifest: Any, threads: int | None) -> list[Callable[..., Model]]:
    """Per artifact of the bundle at ``p``, a function loading it (with ``threads``, or the count given)."""
    openers = []
    for entry in manifest.artifacts:

        def open_model(t: int | None = threads, entry: ArtifactRecord = entry) -> Model:
            return load_file(
                p / entry.file, entry.format, threads=t, precision=entry.precision,
                labels=manifest.label_list(), text=manifest.text, anomaly=anomaly_of(manifest, entry),
            )

        openers.append(open_model)
    return openers


def _manifest_accuracy(task: Task, entry: ArtifactRecord) -> float | None:
    """The task's figure recorded at build time: ROC AUC for an anomaly detector, else top-1 accuracy."""
    return task.metric_of(entry.metrics) if entry.metrics else None


#: The name a benchmark result gives each task's metric (``metric``).
BENCH_METRIC = {Classification.metric: "top1", AnomalyDetection.metric: "roc_auc"}


def quality(model: Model, eval_data: tuple[np.ndarray, np.ndarray], task: Task | None = None) -> tuple[str, float]:
    """The figure the accuracy budget is judged on, on ``eval_data``: ``("top1", accuracy)``, or for an anomaly
    detector ``("roc_auc", AUC)`` of the per-sample mean squared reconstruction error against the 0 (normal) /
    1 (anomalous) labels. ``task``: the bundle's (:func:`~edgeship.core.task.task_of` its manifest); ``None``:
    the file's own (:func:`~edgeship.core.task.task_of_model`)."""
    task = task or task_of_model(model)
    return BENCH_METRIC[task.metric], task.quality(model, *eval_data)


def measure_interleaved(
    openers: Sequence[Callable[[], Model]],
    x: Any,
    *,
    rounds: int = DEFAULT_ROUNDS,
    warmup: int = 10,
    runs: int = 100,
    min_seconds: float = 1.0,
    loads: int = 1,
) -> list[tuple[Model, dict[str, Any]]]:
    """Load every model (``loads`` separate times each), then time them side by side: ``rounds`` rounds of one
    block per load.

    Each block is at least ``ceil(runs / rounds)`` calls and about
    ``min_seconds / (rounds * loads * len(openers))`` seconds; round ``r`` runs the
    loads in an order rotated by ``r``, reversed on odd rounds. Garbage collection is
    off while timing.

    Returns:
        Per opener, in order: one open model (the caller closes it; the other loads
        are closed here) and its result: ``median_ms`` (per load, the median over
        rounds of the block medians; then the median over loads),
        ``median_ms_per_load``, ``round_ms`` (per round, the median over loads),
        ``rounds``, ``loads``, ``latency_ms`` (over every timed call), ``first_ms``,
        ``init_ms`` (the first load's), ``runs``, ``batch``, ``seconds``,
        ``throughput_per_s``, ``rss_increase_mb`` (the first load's),
        ``peak_rss_mb``, ``format``, ``precision``, ``engine``.
    """
    models: list[Model] = []
    heads: list[dict[str, Any]] = []  # models[k * loads + j]: opener k's load j
    try:
        _open_loads(openers, x, loads, warmup, models, heads)
        calls = _block_calls(models, heads, rounds=rounds, loads=loads, runs=runs, min_seconds=min_seconds)
        times, medians = _timed_rounds(models, heads, calls, rounds)
    except BaseException:
        for m in models:
            m.close()
        raise
    out = []
    for k in range(len(openers)):
        mine = range(k * loads, (k + 1) * loads)
        for i in mine[1:]:
            models[i].close()
        model = models[mine[0]]
        out.append((model, _interleaved_result(model, heads[mine[0]], [times[i] for i in mine],
                                               [medians[i] for i in mine], rounds=rounds, loads=loads)))
    return out


def _open_loads(openers: Sequence[Callable[[], Model]], x: Any, loads: int, warmup: int,
                models: list[Model], heads: list[dict[str, Any]]) -> None:
    """Load each opener ``loads`` times, appending to ``models`` as it goes (the caller closes them on failure);
    per load: its input, load time, first call and RSS growth into ``heads``, then ``warmup`` calls."""
    for open_model in openers:
        for _ in range(loads):
            rss_before = rss_mb()
            t0 = time.perf_counter()
            model = open_model()
            init_ms = (time.perf_counter() - t0) * 1e3
            models.append(model)
            xi = sample_input(model) if x is None else x
            t1 = time.perf_counter_ns()
            model.predict(xi)
            first_ms = (time.perf_counter_ns() - t1) / 1e6
            for _ in range(warmup):
                model.predict(xi)
            heads.append({"x": xi, "init_ms": init_ms, "first_ms": first_ms,
                          "rss_increase_mb": rss_mb() - rss_before})


def _block_calls(models: list[Model], heads: list[dict[str, Any]], *, rounds: int, loads: int, runs: int,
                 min_seconds: float) -> list[int]:
    """Calls per block for each load: at least ``ceil(runs / (rounds * loads))``, about its share of ``min_seconds``."""
    block_s = min_seconds / (rounds * max(1, len(models)))
    per_block = math.ceil(runs / (rounds * loads))
    calls = []
    for model, h in zip(models, heads):
        probe = time_block(model.predict, h["x"], 5)
        per_call = max(float(np.median(probe)) / 1e9, 1e-7)
        calls.append(int(min(100_000, max(per_block, block_s / per_call))))
    return calls


def _timed_rounds(models: list[Model], heads: list[dict[str, Any]], calls: list[int],
                  rounds: int) -> tuple[list[list[int]], list[list[float]]]:
    """Per load, every timed call (ns) and each round's block median (ms); round ``r`` rotates the order by ``r``
    and reverses it on odd rounds. Garbage collection is off meanwhile."""
    times: list[list[int]] = [[] for _ in models]
    medians: list[list[float]] = [[] for _ in models]
    order = list(range(len(models)))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            k = r % len(order)
            this = order[k:] + order[:k]
            for i in (this[::-1] if r % 2 else this):
                block = time_block(models[i].predict, heads[i]["x"], calls[i])
                times[i] += block
                medians[i].append(float(np.median(block)) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, medians


def _interleaved_result(model: Model, h: dict[str, Any], times: list[list[int]], medians: list[list[float]], *,
                        rounds: int, loads: int) -> dict[str, Any]:
    """One opener's :func:`measure_interleaved` result from its loads' ``times`` and block ``medians``."""
    t = [v for block in times for v in block]
    per_load = [float(np.median(m)) for m in medians]
    seconds = sum(t) / 1e9
    xi = h["x"]
    batch = int((xi[0] if isinstance(xi, list) else xi).shape[0])
    return {
        "format": model.format,
        "precision": model.precision,
        "engine": model.engine,
        "init_ms": h["init_ms"],
        "first_ms": h["first_ms"],
        "median_ms": float(np.median(per_load)),
        "median_ms_per_load": per_load,
        "round_ms": [float(np.median([m[r] for m in medians])) for r in range(rounds)],
        "rounds": rounds,
        "loads": loads,
        "latency_ms": latency_stats(t),
        "runs": len(t),
        "batch": batch,
        "seconds": seconds,
        "throughput_per_s": batch * len(t) / seconds if seconds > 0 else float("inf"),
        "rss_increase_mb": h["rss_increase_mb"],
        "peak_rss_mb": peak_rss_mb(),
    }


def _sweep(open_model: Any, x: Any | None, counts: Sequence[int], kw: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for t in counts:
        m = _measure(lambda t=t: open_model(int(t)), x, eval_data=None, **kw)
        out.append({
            "threads": int(t),
            "p50_ms": m["latency_ms"]["p50"],
            "p99_ms": m["latency_ms"]["p99"],
            "throughput_per_s": m["throughput_per_s"],
        })
    return out


def bench_bundle(
    path: str | os.PathLike[str],
    *,
    accuracy_budget: float | None = None,
    record: bool = True,
    **kw: Any,
) -> tuple[list[dict[str, Any]], Path]:
    """Benchmark every artifact of a bundle, interleaved, and pick the fastest within the accuracy budget.

    When the no-profile rule's pick is within 5% of the fastest (``_profile.TIE``, the bar
    ``load()`` is held to), it is kept, so re-benchmarking on a busy machine does not flip the
    choice on noise.
    Marks each result with ``within_budget`` (see :func:`edgeship.runtime._profile.eligible`),
    ``fastest_within_budget`` and the ``accuracy_budget`` used, and, with ``record``, writes
    the choice and every candidate's figures to the bundle's ``device_profile.json``, so
    that ``load(bundle)`` picks it on this device.

    Returns:
        The results, and the path of the device profile (written or not).
    """
    from ._profile import PROFILE_FILE, eligible, select_fastest, write_profile
    from ._profile import accuracy_budget as budget_of

    folder = Path(path)
    results = benchmark(folder, **kw)
    assert isinstance(results, list)
    manifest = read_manifest(folder)
    budget = budget_of(manifest, accuracy_budget)
    from ._choice import default_choice

    rule = default_choice(manifest, folder)[0].file  # kept when within TIE of the fastest
    chosen = select_fastest(results, budget, manifest, prefer=rule)
    ok = eligible(results, budget, manifest)
    for r in results:
        r["accuracy_budget"] = budget
        r["within_budget"] = r["file"] in ok
        r["fastest_within_budget"] = r is chosen
    profile = folder / PROFILE_FILE
    if record:
        write_profile(folder, chosen, results, budget, manifest)
    return results, profile
