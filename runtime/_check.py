"""Regression gate: ``baseline.json`` and ``edgeship check``.

A baseline holds, per artifact: accuracy on the bundle's ``eval.npz``, file size,
a RAM estimate (when the manifest has one) and latency as a *ratio* to the fixed
reference workload (:mod:`edgeship.runtime._reference`). ``check`` re-measures the
same quantities and compares them with tolerances:

- accuracy: fails when it falls more than ``accuracy`` (absolute, 0.01 = 1 point); for an
  anomaly detector (``manifest["anomaly"]``) the metric is ROC AUC (``roc_auc``), same tolerance
  below the baseline;
- latency: fails when the ratio exceeds the baseline ratio by more than
  ``latency`` (relative, 0.25 = 25 % slower);
- size and RAM: fail when they grow by more than ``size`` (relative).

Latency is measured single-threaded by default (``threads=1`` for artifact and
reference alike): on a shared 2-core runner a second busy core makes a
two-thread engine's timings swing, while one thread on the free core stays steady.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.bundle import BASELINE_SCHEMA as BASELINE_SCHEMA
from edgeship.core.bundle import Baseline
from edgeship.core.metrics import top1_accuracy
from edgeship.core.task import AnomalyDetection, Classification, task_of

from ._bundle import read_manifest, verify_bundle
from ._errors import BundleError, EdgeshipError, InputError
from ._load import load_eval, load_file
from ._model import Model
from ._profile import cpu_model
from ._reference import load_reference, reference_input, reference_sha256
from ._timing import sample_input, time_block

BASELINE_FILE = "baseline.json"
DEFAULT_TOLERANCES: dict[str, float] = {"accuracy": 0.01, "latency": 0.25, "size": 0.05}
CHECK_ROUNDS = 15
DEFAULT_BLOCK_SECONDS = 0.02
DEFAULT_THREADS = 1


# -- latency ------------------------------------------------------------------
def _calls_for(predict: Any, x: np.ndarray, block_seconds: float) -> int:
    t = time_block(predict, x, 10)  # also the warm-up
    per_call = max(float(np.median(t)) / 1e9, 1e-7)
    return int(min(10_000, max(5, block_seconds / per_call)))


def measure_latency_ratio(
    model: Model,
    x: np.ndarray,
    *,
    rounds: int = CHECK_ROUNDS,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    threads: int | None = DEFAULT_THREADS,
) -> dict[str, Any]:
    """Time ``model.predict(x)`` against the reference workload, interleaved.

    Each round times one block of artifact calls and one block of reference calls
    (each ~``block_seconds`` long; the order alternates between rounds) and takes
    the ratio of the two blocks' median per-call times. The result is the median of
    the round ratios, so a slow spell that hits a few blocks moves few rounds.

    Args:
        model: Loaded artifact (loaded with the same ``threads``).
        x: One input batch for ``model``, usually batch 1.
        rounds: Interleaved rounds.
        block_seconds: Length of each timed block.
        threads: Engine threads for the reference; match the artifact's.

    Returns:
        ``ratio`` (median over rounds), ``ratio_rounds`` (every round's ratio),
        ``latency_ms`` of the artifact over all timed calls (p50, p90, p99, mean),
        ``reference_ms`` (p50), ``calls`` (artifact calls timed).
    """
    if rounds < 1:
        raise InputError(f"Expected rounds >= 1. Received: {rounds}. Pass rounds=15 or more.")
    ref = load_reference(model.format, threads=threads)
    with ref:
        ratios, a_all, r_all = _interleave(model.predict, x, ref.predict, reference_input(), rounds, block_seconds)
    ms = np.asarray(a_all, dtype=np.float64) / 1e6
    return {
        "ratio": float(np.median(ratios)),
        "ratio_rounds": [round(v, 4) for v in ratios],
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
        },
        "reference_ms": {"p50": float(np.median(r_all)) / 1e6},
        "calls": int(ms.size),
    }


def _interleave(predict: Any, x: np.ndarray, rpredict: Any, rx: np.ndarray, rounds: int,
                block_seconds: float) -> tuple[list[float], list[int], list[int]]:
    """Round ratios (median call time of ``predict`` over ``rpredict``) and every timed call, blocks interleaved."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one block would be one outlier more
    try:
        n_a = _calls_for(predict, x, block_seconds)
        n_r = _calls_for(rpredict, rx, block_seconds)
        ratios: list[float] = []
        a_all: list[int] = []
        r_all: list[int] = []
        for r in range(rounds):
            if r % 2 == 0:
                a = time_block(predict, x, n_a)
                b = time_block(rpredict, rx, n_r)
            else:
                b = time_block(rpredict, rx, n_r)
                a = time_block(predict, x, n_a)
            ratios.append(float(np.median(a)) / max(float(np.median(b)), 1.0))
            a_all += a
            r_all += b
    finally:
        if gc_was_enabled:
            gc.enable()
    return ratios, a_all, r_all


def measure_pair_ratio(model: Model, reference: Model, x: np.ndarray, *, rounds: int = CHECK_ROUNDS,
                       block_seconds: float = DEFAULT_BLOCK_SECONDS) -> dict[str, Any]:
    """``model``'s latency over ``reference``'s on the same input ``x``, interleaved as in :func:`measure_latency_ratio`.

    Both are loaded by the caller (with the same threads). Returns ``ratio`` (median
    over rounds; below 1 is faster), ``ratio_rounds``, and the p50 of each in ms.
    """
    if rounds < 1:
        raise InputError(f"Expected rounds >= 1. Received: {rounds}. Pass rounds=15 or more.")
    ratios, a_all, r_all = _interleave(model.predict, x, reference.predict, x, rounds, block_seconds)
    return {"ratio": float(np.median(ratios)), "ratio_rounds": [round(v, 4) for v in ratios],
            "latency_ms": float(np.median(a_all)) / 1e6, "reference_ms": float(np.median(r_all)) / 1e6}


# -- measuring a bundle -------------------------------------------------------
def timing_input(model: Model, x_eval: np.ndarray) -> np.ndarray:
    """The batch-1 input ``model`` is timed on: ``x_eval``'s first sample, or a sample input when it no longer fits."""
    inner = tuple(model.inputs[0].shape[1:])
    if x_eval.ndim == len(inner) + 1 and all(d is None or d == g for d, g in zip(inner, x_eval.shape[1:])):
        return np.ascontiguousarray(x_eval[:1])
    # The artifact no longer takes eval.npz inputs (its input shape changed): time it
    # on a fixed input of its own shape; the accuracy gate reports the mismatch.
    return sample_input(model)


def _accuracy(model: Model, x: np.ndarray, y: np.ndarray) -> tuple[float | None, str | None]:
    try:
        out = model.predict(x)
    except InputError as exc:
        return None, f"cannot run eval.npz: {exc}"
    out = out[0] if isinstance(out, list) else out
    if out.ndim != 2 or out.shape[0] != len(y) or y.ndim != 1:
        return None, f"outputs {out.shape} are not class scores for labels {y.shape}"
    return top1_accuracy(out, y), None


def _roc_auc(model: Model, x: np.ndarray, y: np.ndarray) -> tuple[float | None, str | None]:
    """An anomaly detector's ROC AUC on eval.npz (score = reconstruction error, label 1 = anomalous)."""
    try:
        return AnomalyDetection().quality(model, x, y), None
    except InputError as exc:
        return None, f"cannot score eval.npz: {exc}"


#: Each task metric's guarded measurement on eval.npz (a figure, or why there is none).
_MEASURES = {Classification.metric: _accuracy, AnomalyDetection.metric: _roc_auc}


def machine_info() -> dict[str, Any]:
    """Where a baseline was measured; a check on another machine says so."""
    cpu = cpu_model()
    engines = {}
    for mod in ("ai_edge_litert", "onnxruntime"):
        try:
            from importlib.metadata import version

            engines[mod] = version(mod.replace("_", "-"))
        except Exception:  # not installed: nothing to record
            continue
    return {
        "cpu": cpu,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "engines": engines,
    }


def measure_bundle(
    folder: str | os.PathLike[str],
    *,
    rounds: int = CHECK_ROUNDS,
    threads: int | None = DEFAULT_THREADS,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    tolerances: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Measure every artifact of a bundle; the result is a ``baseline.json`` document.

    Verifies every file against the manifest sha256 first (``IntegrityError``).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    verify_bundle(folder, manifest)
    x_eval, y_eval = load_eval(folder)
    task = task_of(manifest)
    artifacts: dict[str, Any] = {}
    refs: dict[str, Any] = {}
    for entry in manifest.artifacts:
        fmt = entry.format
        if fmt not in refs:
            refs[fmt] = {"sha256": reference_sha256(fmt)}
        with load_file(folder / entry.file, fmt, threads=threads, precision=entry.precision) as model:
            # The task's metric: anomaly detectors are gated on ROC AUC (the threshold's accuracy follows from it).
            metric = task.metric
            acc, acc_error = _MEASURES[metric](model, x_eval, y_eval)
            lat = measure_latency_ratio(
                model, timing_input(model, x_eval), rounds=rounds, block_seconds=block_seconds, threads=threads
            )
            refs[fmt]["engine"] = model.engine
        artifacts[entry.file] = {
            "format": fmt,
            "precision": entry.precision,
            "sha256": entry.sha256,
            "bytes": (folder / entry.file).stat().st_size,
            "ram_bytes": entry.estimates.ram_arena_bytes if entry.estimates else None,
            metric: acc,
            **({"accuracy_error": acc_error} if acc_error else {}),
            "latency_ratio": lat["ratio"],
            "latency_ratio_rounds": lat["ratio_rounds"],
            "latency_ms": lat["latency_ms"],
            "reference_ms": lat["reference_ms"],
        }
    return {
        "schema": BASELINE_SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": manifest.name,
        "eval_samples": int(len(y_eval)),
        "machine": machine_info(),
        "timing": {"threads": threads, "rounds": rounds, "block_seconds": block_seconds},
        "reference": refs,
        "tolerances": dict(tolerances or DEFAULT_TOLERANCES),
        "artifacts": artifacts,
    }


# -- baseline file ------------------------------------------------------------
def write_baseline(path: str | os.PathLike[str], baseline: dict[str, Any]) -> Path:
    """Write ``baseline.json`` atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(baseline, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BundleError(
            f"Expected a baseline file at {path}. Received: no such file. "
            "Write one with `edgeship check BUNDLE --update` (edgeship build writes it into new bundles)."
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"Expected {path} to be JSON. Received: {exc}. Rewrite it with `edgeship check --update`."
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("schema") != BASELINE_SCHEMA
        or not isinstance(data.get("artifacts"), dict)
    ):
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BundleError(
            f"Expected baseline schema {BASELINE_SCHEMA!r} in {path}. Received: {got!r}. "
            "Rewrite it with `edgeship check BUNDLE --update`."
        )
    Baseline.from_json(data, str(path))  # every field present and typed, or a BundleError naming the bad one
    return data


def resolve_tolerances(baseline: dict[str, Any], overrides: dict[str, float | None] | None = None) -> dict[str, float]:
    """Tolerances: explicit overrides, else those stored in the baseline, else the defaults."""
    tol = dict(DEFAULT_TOLERANCES)
    stored = baseline.get("tolerances") or {}
    tol.update({k: float(v) for k, v in stored.items() if k in tol and isinstance(v, (int, float))})
    tol.update({k: float(v) for k, v in (overrides or {}).items() if v is not None})
    for name, value in tol.items():
        if name not in DEFAULT_TOLERANCES:
            raise InputError(f"Unknown tolerance {name!r}. Expected one of {', '.join(DEFAULT_TOLERANCES)}.")
        if not np.isfinite(value) or value < 0:
            raise InputError(
                f"Expected a finite {name} tolerance >= 0. Received: {value}. Pass e.g. --{name}-tol {DEFAULT_TOLERANCES[name]}."
            )
    return tol


# -- the gate -----------------------------------------------------------------
@dataclass
class Row:
    """One artifact and metric: baseline, current, the limit and the verdict."""

    artifact: str
    metric: str
    baseline: float | None
    current: float | None
    limit: float | None
    passed: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "metric": self.metric,
            "baseline": self.baseline,
            "current": self.current,
            "limit": self.limit,
            "status": "pass" if self.passed else "fail",
            "note": self.note,
        }


@dataclass
class CheckResult:
    rows: list[Row]
    tolerances: dict[str, float]
    baseline_path: str
    measured: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "baseline": self.baseline_path,
            "tolerances": self.tolerances,
            "notes": self.notes,
            "rows": [r.to_json() for r in self.rows],
            "measured": self.measured,
        }

    def table(self) -> str:
        """The pass/fail table ``edgeship check`` prints."""
        head = f"{'artifact':<24} {'metric':<9} {'baseline':>10} {'current':>10} {'limit':>10}  result"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(
                f"{r.artifact:<24} {r.metric:<9} {_fmt(r.metric, r.baseline):>10} {_fmt(r.metric, r.current):>10} "
                f"{_fmt(r.metric, r.limit):>10}  {'PASS' if r.passed else 'FAIL'}{'  ' + r.note if r.note else ''}"
            )
        n_fail = len(self.failures)
        lines.append("")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(
            f"{'PASSED' if not n_fail else 'FAILED'}: {len(self.rows) - n_fail} of {len(self.rows)} checks pass"
            + "".join(f"; tolerance {k} {v:g}" for k, v in self.tolerances.items())
        )
        return "\n".join(lines)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    if metric in ("size", "ram"):
        return f"{int(v):,}"
    if metric == "latency":
        return f"{v:.3f}x"
    return f"{v:.4f}"


def compare(baseline: dict[str, Any], measured: dict[str, Any], tolerances: dict[str, float]) -> list[Row]:
    """Gate ``measured`` against ``baseline``; one row per artifact and metric."""
    rows: list[Row] = []
    cur = measured["artifacts"]
    for name, base in baseline["artifacts"].items():
        now = cur.get(name)
        if now is None:
            rows.append(Row(name, "artifact", None, None, None, False, "missing from the bundle"))
            continue
        # accuracy (ROC AUC for an anomaly detector): absolute points
        for metric in ("accuracy", "roc_auc"):
            b, c = base.get(metric), now.get(metric)
            if b is not None:
                limit = b - tolerances["accuracy"]
                ok = c is not None and c >= limit - 1e-12
                note = now.get("accuracy_error", "") if c is None else f"{c - b:+.4f}"
                rows.append(Row(name, metric, b, c, limit, ok, note))
        # latency: ratio to the reference, relative tolerance
        b, c = base.get("latency_ratio"), now.get("latency_ratio")
        if b is not None:
            limit = b * (1 + tolerances["latency"])
            ok = c is not None and c <= limit
            rows.append(Row(name, "latency", b, c, limit, ok, f"{c / b - 1:+.1%}" if c else "not measured"))
        for metric, key in (("size", "bytes"), ("ram", "ram_bytes")):
            b, c = base.get(key), now.get(key)
            if b is None or (metric == "ram" and c is None):
                continue
            limit = b * (1 + tolerances["size"])
            ok = c is not None and c <= limit
            rows.append(Row(name, metric, b, c, limit, ok, f"{c / b - 1:+.1%}" if c is not None and b else ""))
    for name in cur:
        if name not in baseline["artifacts"]:
            rows.append(Row(name, "artifact", None, None, None, True, "new: not in the baseline"))
    return rows


def check_bundle(
    folder: str | os.PathLike[str],
    baseline_path: str | os.PathLike[str] | None = None,
    *,
    accuracy_tol: float | None = None,
    latency_tol: float | None = None,
    size_tol: float | None = None,
    rounds: int | None = None,
) -> CheckResult:
    """Re-measure a bundle and gate it against its baseline (``BUNDLE/baseline.json`` by default).

    Raises:
        BundleError: no usable bundle or baseline, or the baseline was measured
            against another reference workload (ratios would not compare).
        IntegrityError: a bundle file does not match its manifest.
    """
    folder = Path(folder)
    path = Path(baseline_path) if baseline_path else folder / BASELINE_FILE
    read_manifest(folder)  # a clear error for a non-bundle before the baseline one
    baseline = read_baseline(path)
    tol = resolve_tolerances(baseline, {"accuracy": accuracy_tol, "latency": latency_tol, "size": size_tol})
    timing = baseline.get("timing") or {}
    measured = measure_bundle(
        folder,
        rounds=int(rounds or timing.get("rounds") or CHECK_ROUNDS),
        threads=timing.get("threads", DEFAULT_THREADS),
        block_seconds=float(timing.get("block_seconds") or DEFAULT_BLOCK_SECONDS),
        tolerances=tol,
    )
    for fmt, ref in measured["reference"].items():
        stored = (baseline.get("reference") or {}).get(fmt, {}).get("sha256")
        if stored and stored != ref["sha256"]:
            raise BundleError(
                f"The baseline's {fmt} latency reference (sha256 {stored[:12]}) differs from this edgeship's "
                f"({ref['sha256'][:12]}). Received: ratios that do not compare. Rewrite the baseline with "
                "`edgeship check BUNDLE --update` using this edgeship version."
            )
    notes = []
    bm, mm = baseline.get("machine") or {}, measured["machine"]
    if bm and (bm.get("cpu"), bm.get("engines")) != (mm.get("cpu"), mm.get("engines")):
        notes.append(
            f"baseline measured on {bm.get('cpu') or '?'} ({bm.get('engines')}), now on {mm.get('cpu') or '?'} "
            f"({mm.get('engines')}); latency ratios cancel a uniform speed difference, not a different CPU design"
        )
    return CheckResult(compare(baseline, measured, tol), tol, str(path), measured, notes)


def update_baseline(
    folder: str | os.PathLike[str],
    baseline_path: str | os.PathLike[str] | None = None,
    *,
    rounds: int | None = None,
    tolerances: dict[str, float | None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Measure the bundle and (re)write its baseline; keeps tolerances stored in an earlier one."""
    folder = Path(folder)
    path = Path(baseline_path) if baseline_path else folder / BASELINE_FILE
    try:
        old = read_baseline(path)
    except EdgeshipError:
        old = {}
    tol = resolve_tolerances(old, tolerances)
    data = measure_bundle(folder, rounds=int(rounds or CHECK_ROUNDS), tolerances=tol)
    return write_baseline(path, data), data
