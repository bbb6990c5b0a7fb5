"""Parity: is an exported file the same model as the Keras one, on the eval sample?

Checks in the order Optimum's ``validate_model_outputs`` does: output names,
then shapes, then values; every failure is collected before one typed
:class:`~edgeship.core.errors.ParityError` lists them all.

* float variants (``float32``, ``float16``, ...): the largest absolute
  difference per output must be within that variant's tolerance.
* quantized variants (``int8``, ``int16x8``, ...): top-1 agreement with Keras
  (classifier outputs: 2-D, more than one class) on the decisive samples, and
  the output SQNR, ``20*log10(||x|| / ||x - y||)`` dB with x the Keras output
  and y the artifact's dequantized output (ORT ``qdq_loss_debug`` definition).
* cross-format: the TFLite int8 file against the ONNX int8 file, top-1
  agreement on the decisive samples (and SQNR, informative).

Decisive samples (:func:`top1_agreement`): an error of at most e on each of a
sample's scores cannot change its argmax when its top-1 margin (largest minus
second-largest reference score) exceeds 2e. With e the 95th percentile over
samples of the per-sample max ``|x - y|``, only samples whose margin exceeds
2e count for top-1 agreement; a near-uniform output (an untrained classifier)
has few or none, so argmax flips among near-equal scores do not fail parity.
With no decisive sample top-1 agreement is not judged (``None``): for a
quantized variant the SQNR limit alone decides; the cross-format check then
applies no limit (its SQNR is informative; each file's SQNR is checked
against Keras).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.bundle import is_float_precision
from edgeship.core.errors import ParityError
from edgeship.core.metrics import sqnr_db, sqnr_json


@dataclass
class Tolerance:
    """Per-variant limits. ``atol`` is keyed by float precision name."""

    atol: dict[str, float] = field(default_factory=lambda: {"float32": 1e-4, "float16": 1e-2})
    default_atol: float = 1e-3
    min_top1: float = 0.8
    min_sqnr_db: float = 10.0

    def atol_for(self, precision: str) -> float:
        return float(self.atol.get(precision, self.default_atol))


TOP1_RULE = (
    "top-1 agreement counts only decisive samples: those whose reference top-1 margin (largest minus "
    "second-largest output) exceeds margin_threshold, twice the 95th percentile over samples of the "
    "per-sample max |reference - candidate|; with no decisive sample it is not judged (null)"
)


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[float | None, dict[str, Any] | None]:
    """Share of decisive samples with the same argmax, and the rule's record.

    A sample is decisive when its reference top-1 margin (largest minus
    second-largest output) exceeds ``margin_threshold``: twice the 95th
    percentile over samples of the per-sample max ``|reference - candidate|``.
    The record is ``{"rule", "margin_threshold", "decisive_samples",
    "samples"}`` (a non-finite threshold, from NaN/Inf in ``candidate``, is
    written as a string, see :func:`_finite`, and leaves no sample decisive);
    the share is ``None`` when no sample is decisive.

    Returns ``(None, None)`` for non-classifier outputs (not 2-D, or one column).
    """
    if reference.ndim != 2 or reference.shape[1] < 2:
        return None, None
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(candidate, dtype=np.float64)
    n = len(x)
    with np.errstate(invalid="ignore"):  # NaN/Inf in candidate: NaN/Inf threshold, nothing decisive
        error = np.abs(x - y).max(axis=1)  # per-sample L-inf error
        threshold = 2.0 * float(np.percentile(error, 95)) if n else 0.0
        top2 = np.sort(x, axis=1)[:, -2:]
        decisive = (top2[:, 1] - top2[:, 0]) > threshold
    k = int(decisive.sum())
    rule = {"rule": TOP1_RULE, "margin_threshold": _finite(threshold), "decisive_samples": k, "samples": n}
    if k == 0:
        return None, rule
    same = np.argmax(x[decisive], axis=1) == np.argmax(y[decisive], axis=1)
    return float(np.mean(same)), rule


def _finite(v: float) -> float | str:
    # JSON has no inf/nan; keep the manifest strict JSON.
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def compare(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    *,
    quantized: bool,
    atol: float,
    min_top1: float,
    min_sqnr_db: float,
    candidate_shapes: dict[str, tuple[int | None, ...]] | None = None,
    label: str = "artifact",
    classifier: set[str] | None = None,
) -> dict[str, Any]:
    """Compare named outputs: names, then shapes, then values.

    ``classifier`` names the outputs that hold class scores (top-1 agreement is
    checked on those, over the decisive samples of :func:`top1_agreement`);
    ``None`` means every 2-D output with several columns. A quantized output's
    entry records ``top1_agreement`` and ``top1_rule`` (both ``None`` for an
    output that does not hold class scores).

    Returns ``{"passed", "check", "outputs": {name: {...}}, "failures": [str]}``.
    Never raises: the caller decides (see :func:`raise_for`).
    """
    failures: list[str] = []
    outputs: dict[str, Any] = {}
    check = "quantized" if quantized else "float"
    matched = _match_names(reference, candidate, label, failures)
    if matched is None:
        return {"passed": False, "check": check, "outputs": {}, "failures": failures}
    for name, x in reference.items():
        y = matched.get(name)
        if y is None:
            continue
        problem = _shape_problem(name, x, y, (candidate_shapes or {}).get(name), label)
        if problem is not None:
            failures.append(problem)
            continue
        if quantized:
            use_top1 = classifier is None or name in classifier
            entry = _quantized_entry(name, x, y, min_top1, min_sqnr_db, use_top1, label, failures)
        else:
            entry = _float_entry(name, x, y, atol, label, failures)
        outputs[name] = entry
    limits: dict[str, Any] = {"min_top1": min_top1, "min_sqnr_db": min_sqnr_db} if quantized else {"atol": atol}
    return {"passed": not failures, "check": check, "limits": limits, "outputs": outputs, "failures": failures}


def _match_names(
    reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], label: str, failures: list[str]
) -> dict[str, np.ndarray] | None:
    """``candidate`` keyed by the reference's names; ``None`` when the names differ and cannot be paired."""
    ref_names, cand_names = list(reference), list(candidate)
    if sorted(ref_names) == sorted(cand_names):
        return candidate
    failures.append(f"{label}: output names differ: expected {ref_names}, received {cand_names}")
    if len(ref_names) == len(cand_names):  # still compare values, by position
        return dict(zip(ref_names, candidate.values()))
    return None


def _shape_problem(
    name: str, x: np.ndarray, y: np.ndarray, declared: tuple[int | None, ...] | None, label: str
) -> str | None:
    """The failure message when the declared or the received shape does not match the reference's."""
    want = tuple(x.shape[1:])
    if declared is not None and not _shape_ok(tuple(declared[1:]), want):
        return f"{label}: output {name!r} declares shape {_dims(declared)}, expected (N, {', '.join(map(str, want))})"
    if tuple(y.shape) != tuple(x.shape):
        return f"{label}: output {name!r} has shape {tuple(y.shape)}, expected {tuple(x.shape)}"
    return None


def _diff_entry(name: str, x: np.ndarray, y: np.ndarray, label: str, failures: list[str]) -> tuple[dict[str, Any], float]:
    """The max and mean absolute difference (a NaN/Inf in ``y`` is a failure) and the max as a float."""
    diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
    max_diff = float(diff.max()) if diff.size else 0.0
    mean_diff = float(diff.mean()) if diff.size else 0.0
    if not np.isfinite(y).all():
        failures.append(f"{label}: output {name!r} holds NaN/Inf values; max abs diff {max_diff:.4g}")
    return {"max_abs_diff": _finite(max_diff), "mean_abs_diff": _finite(mean_diff)}, max_diff


def _float_entry(
    name: str, x: np.ndarray, y: np.ndarray, atol: float, label: str, failures: list[str]
) -> dict[str, Any]:
    """A float output: every value within ``atol`` of the reference."""
    entry, max_diff = _diff_entry(name, x, y, label, failures)
    entry["atol"] = atol
    if not max_diff <= atol:
        failures.append(f"{label}: output {name!r} max abs diff {max_diff:.4g} > atol {atol:g}")
    return entry


def _quantized_entry(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    min_top1: float,
    min_sqnr_db: float,
    use_top1: bool,
    label: str,
    failures: list[str],
) -> dict[str, Any]:
    """A quantized output: SQNR, and top-1 agreement when it holds class scores (``use_top1``)."""
    entry, max_diff = _diff_entry(name, x, y, label, failures)
    sq = sqnr_db(x, y)
    top1, rule = top1_agreement(x, y) if use_top1 else (None, None)
    entry.update(sqnr_db=sqnr_json(sq), top1_agreement=top1, top1_rule=rule)
    if top1 is not None and rule is not None and top1 < min_top1:
        failures.append(
            f"{label}: output {name!r} top-1 agreement {top1:.4f} on {_decisive(rule)} < {min_top1} "
            f"(max abs diff {max_diff:.4g}, SQNR {sq:.2f} dB)"
        )
    if not sq >= min_sqnr_db:
        failures.append(f"{label}: output {name!r} SQNR {sq:.2f} dB < {min_sqnr_db} dB (max abs diff {max_diff:.4g})")
    return entry


def _decisive(rule: dict[str, Any]) -> str:
    return f"{rule['decisive_samples']}/{rule['samples']} decisive samples"


def _shape_ok(got: tuple[int | None, ...], want: tuple[int, ...]) -> bool:
    return len(got) == len(want) and all(g is None or g == w for g, w in zip(got, want))


def _dims(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def keras_outputs(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """The Keras model's outputs on ``x``, keyed by Keras output name."""
    ys = model.predict(x, batch_size=64, verbose=0)
    ys = ys if isinstance(ys, list) else [ys]
    return {name: np.asarray(y) for name, y in zip(model.output_names, ys)}


def artifact_outputs(
    path: Path, fmt: str, x: np.ndarray, precision: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int | None, ...]]]:
    """Run a model file through the runtime; outputs (dequantized) keyed by user-facing name.

    TFLite tensor names are converter-made (``StatefulPartitionedCall:0``): the
    default signature maps them back to the Keras output names. ONNX keeps them.
    """
    from edgeship.runtime._graph import read_graph
    from edgeship.runtime._load import load_file

    graph = read_graph(path, fmt)
    by_tensor = {tensor: name for name, tensor in graph.output_names.items()}
    with load_file(Path(path), fmt, precision=precision, nan_policy="ignore") as model:
        ys = model.predict(x)
        ys = ys if isinstance(ys, list) else [ys]
        names = [by_tensor.get(o.name, o.name) for o in model.outputs]
        shapes = {n: tuple(o.shape) for n, o in zip(names, model.outputs)}
        return {n: np.asarray(y) for n, y in zip(names, ys)}, shapes


def check_artifact(
    path: Path,
    fmt: str,
    precision: str,
    reference: dict[str, np.ndarray],
    x: np.ndarray,
    tolerance: Tolerance | None = None,
    classifier: set[str] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parity of one file against the Keras outputs ``reference`` on ``x``.

    ``classifier``: the outputs holding class scores (see :func:`compare`).

    Returns the result dict (for the manifest) and the artifact's outputs (for
    the cross-format check).
    """
    tol = tolerance or Tolerance()
    outs, shapes = artifact_outputs(path, fmt, x, precision)
    quantized = not is_float_precision(precision)
    result = compare(
        reference,
        outs,
        quantized=quantized,
        atol=tol.atol_for(precision),
        min_top1=tol.min_top1,
        min_sqnr_db=tol.min_sqnr_db,
        candidate_shapes=shapes,
        label=Path(path).name,
        classifier=classifier,
    )
    result["samples"] = int(len(x))
    return result, outs


def classifier_outputs(reference: dict[str, np.ndarray], labels: list[str] | None) -> set[str]:
    """Outputs with one column per label: those hold class scores."""
    n = len(labels or [])
    return {k for k, v in reference.items() if n > 1 and v.ndim == 2 and v.shape[1] == n}


def check_cross(
    a: dict[str, np.ndarray],
    b: dict[str, np.ndarray],
    *,
    label: str,
    min_top1: float,
    classifier: set[str] | None = None,
) -> dict[str, Any]:
    """Agreement of two quantized artifacts (TFLite int8 vs ONNX int8).

    Top-1 agreement of ``b`` with ``a`` over the decisive samples of
    :func:`top1_agreement` (``a`` is the reference side) must reach
    ``min_top1``; with no decisive sample it is not judged. SQNR is informative.
    """
    failures: list[str] = []
    outputs: dict[str, Any] = {}
    for name, x in a.items():
        y = b.get(name)
        if y is None or y.shape != x.shape:
            failures.append(f"{label}: output {name!r} missing or shaped differently in the second file")
            continue
        max_diff = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0
        top1, rule = top1_agreement(x, y) if classifier is None or name in classifier else (None, None)
        outputs[name] = {
            "max_abs_diff": _finite(max_diff),
            "top1_agreement": top1,
            "top1_rule": rule,
            "sqnr_db": sqnr_json(sqnr_db(x, y)),
        }
        if top1 is not None and rule is not None and top1 < min_top1:
            failures.append(
                f"{label}: output {name!r} top-1 agreement {top1:.4f} on {_decisive(rule)} < {min_top1} "
                f"(max abs diff {max_diff:.4g})"
            )
    return {
        "passed": not failures,
        "pair": label,
        "limits": {"min_top1": min_top1},
        "outputs": outputs,
        "failures": failures,
    }


def raise_for(results: list[dict[str, Any]]) -> None:
    """Raise one :class:`ParityError` listing every failure of ``results``, if any."""
    failures = [f for r in results for f in r.get("failures", [])]
    if failures:
        raise ParityError(
            f"Expected every artifact to match the Keras model on the eval sample. Received {len(failures)} "
            f"parity failure(s): {'; '.join(failures)}. Fix: check the converter/quantization settings, "
            "loosen [export] parity limits, or set export.allow_parity_failure = true to ship anyway "
            "(the manifest then records the failure)."
        )
