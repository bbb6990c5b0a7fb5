"""Parity: are two sets of outputs the same model's? One rule for every check edgeship makes.

Build parity (an exported file against the Keras model), cross-format parity
(TFLite int8 against ONNX int8) and cross-platform parity (a file on the
target CPU against the same file on the build host) all call :func:`compare`
or :func:`compare_pair`, with the task's rule (:mod:`edgeship.core.task`) for
which outputs hold class scores. Numpy only: the device side can judge too.

Checks in the order Optimum's ``validate_model_outputs`` does: output names,
then shapes, then values; every failure is collected before one typed
:class:`~edgeship.core.errors.ParityError` lists them all (:func:`raise_for`).

* float variants (``float32``, ``float16``, ...): the largest absolute
  difference per output must be within that variant's tolerance.
* quantized variants (``int8``, ``int16x8``, ...): top-1 agreement with the
  reference on the decisive samples (class-score outputs only), and the output
  SQNR, ``20*log10(||x|| / ||x - y||)`` dB with x the reference output and y
  the candidate's dequantized output (ORT ``qdq_loss_debug`` definition).
* a pair of quantized files: top-1 agreement on the decisive samples (SQNR
  informative).

Decisive samples (:func:`top1_agreement`): an error of at most e on each of a
sample's scores cannot change its argmax when its top-1 margin (largest minus
second-largest reference score) exceeds 2e. With e the 95th percentile over
samples of the per-sample max ``|x - y|``, only samples whose margin exceeds
2e count for top-1 agreement; a near-uniform output (an untrained classifier)
has few or none, so argmax flips among near-equal scores do not fail parity.
With no decisive sample top-1 agreement is not judged (``None``): for a
quantized variant the SQNR limit alone decides; a pair check then applies no
limit (its SQNR is informative; each file's SQNR is checked on its own).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import numpy as np

from .bundle import OutputParity, ParityResult, Top1Rule
from .errors import ParityError
from .metrics import sqnr_db, sqnr_json

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
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


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[float | None, Top1Rule | None]:
    """Share of decisive samples with the same argmax, and the rule's record.

    A sample is decisive when its reference top-1 margin (largest minus
    second-largest output) exceeds ``margin_threshold``: twice the 95th
    percentile over samples of the per-sample max ``|reference - candidate|``.
    A non-finite threshold (NaN/Inf in ``candidate``) is recorded as a string
    and leaves no sample decisive; the share is ``None`` when no sample is decisive.

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
    rule = Top1Rule(rule=TOP1_RULE, margin_threshold=finite(threshold), decisive_samples=k, samples=n)
    if k == 0:
        return None, rule
    same = np.argmax(x[decisive], axis=1) == np.argmax(y[decisive], axis=1)
    return float(np.mean(same)), rule


def finite(v: float) -> float | str:
    """``v``, or its name when not finite: JSON has no inf/nan, and the manifest stays strict JSON."""
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def compare(
    reference: Outputs,
    candidate: Outputs,
    *,
    quantized: bool,
    atol: float,
    min_top1: float,
    min_sqnr_db: float,
    candidate_shapes: dict[str, tuple[int | None, ...]] | None = None,
    label: str = "artifact",
    classifier: Collection[str] | None = None,
    rule: str | None = None,
) -> ParityResult:
    """Compare named outputs: names, then shapes, then values. Never raises: the caller decides (:func:`raise_for`).

    ``classifier`` names the outputs that hold class scores (top-1 agreement is
    checked on those, over the decisive samples of :func:`top1_agreement`);
    ``None`` means every 2-D output with several columns. ``rule``: the task's
    parity rule, recorded when it is not the classifier's default.
    """
    failures: list[str] = []
    outputs: dict[str, OutputParity] = {}
    check = "quantized" if quantized else "float"
    limits = {"min_top1": min_top1, "min_sqnr_db": min_sqnr_db} if quantized else {"atol": atol}
    matched = _match_names(reference, candidate, label, failures)
    for name, x in reference.items() if matched is not None else ():
        y = matched.get(name)
        if y is None:
            continue
        problem = _shape_problem(name, x, y, (candidate_shapes or {}).get(name), label)
        if problem is not None:
            failures.append(problem)
        elif quantized:
            use_top1 = classifier is None or name in classifier
            outputs[name] = _quantized_entry(name, x, y, min_top1, min_sqnr_db, use_top1, label, failures)
        else:
            outputs[name] = _float_entry(name, x, y, atol, label, failures)
    return ParityResult(passed=not failures, check=check, limits=None if matched is None else limits,
                        outputs=outputs, failures=tuple(failures), rule=rule)


def compare_pair(a: Outputs, b: Outputs, *, label: str, min_top1: float,
                 classifier: Collection[str] | None = None) -> ParityResult:
    """Agreement of two quantized files (``a`` is the reference side), e.g. TFLite int8 against ONNX int8.

    Top-1 agreement of ``b`` with ``a`` over the decisive samples must reach
    ``min_top1``; with no decisive sample it is not judged. SQNR is informative.
    """
    failures: list[str] = []
    outputs: dict[str, OutputParity] = {}
    for name, x in a.items():
        y = b.get(name)
        if y is None or y.shape != x.shape:
            failures.append(f"{label}: output {name!r} missing or shaped differently in the second file")
            continue
        max_diff = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0
        top1, rule = top1_agreement(x, y) if classifier is None or name in classifier else (None, None)
        outputs[name] = OutputParity(max_abs_diff=finite(max_diff), top1_agreement=top1, top1_rule=rule,
                                     sqnr_db=sqnr_json(sqnr_db(x, y)), quantized=True)
        if top1 is not None and rule is not None and top1 < min_top1:
            failures.append(f"{label}: output {name!r} top-1 agreement {top1:.4f} on {_decisive(rule)} < {min_top1} "
                            f"(max abs diff {max_diff:.4g})")
    return ParityResult(passed=not failures, pair=label, limits={"min_top1": min_top1}, outputs=outputs,
                        failures=tuple(failures))


def classifier_outputs(reference: Outputs, labels: list[str] | None) -> set[str]:
    """Outputs with one column per label: those hold class scores."""
    n = len(labels or [])
    return {k for k, v in reference.items() if n > 1 and v.ndim == 2 and v.shape[1] == n}


def raise_for(results: Iterable[ParityResult]) -> None:
    """Raise one :class:`ParityError` listing every failure of ``results``, if any."""
    failures = [f for r in results for f in r.failures]
    if failures:
        raise ParityError(
            f"Expected every artifact to match the Keras model on the eval sample. Received {len(failures)} "
            f"parity failure(s): {'; '.join(failures)}. Fix: check the converter/quantization settings, "
            "loosen [export] parity limits, or set export.allow_parity_failure = true to ship anyway "
            "(the manifest then records the failure)."
        )


def _match_names(reference: Outputs, candidate: Outputs, label: str, failures: list[str]) -> Outputs | None:
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


def _diffs(name: str, x: np.ndarray, y: np.ndarray, label: str, failures: list[str]) -> tuple[float, float]:
    """The max and mean absolute difference; a NaN/Inf in ``y`` is a failure."""
    diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
    max_diff = float(diff.max()) if diff.size else 0.0
    mean_diff = float(diff.mean()) if diff.size else 0.0
    if not np.isfinite(y).all():
        failures.append(f"{label}: output {name!r} holds NaN/Inf values; max abs diff {max_diff:.4g}")
    return max_diff, mean_diff


def _float_entry(name: str, x: np.ndarray, y: np.ndarray, atol: float, label: str, failures: list[str]) -> OutputParity:
    """A float output: every value within ``atol`` of the reference."""
    max_diff, mean_diff = _diffs(name, x, y, label, failures)
    if not max_diff <= atol:
        failures.append(f"{label}: output {name!r} max abs diff {max_diff:.4g} > atol {atol:g}")
    return OutputParity(max_abs_diff=finite(max_diff), mean_abs_diff=finite(mean_diff), atol=atol)


def _quantized_entry(name: str, x: np.ndarray, y: np.ndarray, min_top1: float, min_sqnr_db: float,
                     use_top1: bool, label: str, failures: list[str]) -> OutputParity:
    """A quantized output: SQNR, and top-1 agreement when it holds class scores (``use_top1``)."""
    max_diff, mean_diff = _diffs(name, x, y, label, failures)
    sq = sqnr_db(x, y)
    top1, rule = top1_agreement(x, y) if use_top1 else (None, None)
    if top1 is not None and rule is not None and top1 < min_top1:
        failures.append(
            f"{label}: output {name!r} top-1 agreement {top1:.4f} on {_decisive(rule)} < {min_top1} "
            f"(max abs diff {max_diff:.4g}, SQNR {sq:.2f} dB)"
        )
    if not sq >= min_sqnr_db:
        failures.append(f"{label}: output {name!r} SQNR {sq:.2f} dB < {min_sqnr_db} dB (max abs diff {max_diff:.4g})")
    return OutputParity(max_abs_diff=finite(max_diff), mean_abs_diff=finite(mean_diff), sqnr_db=sqnr_json(sq),
                        top1_agreement=top1, top1_rule=rule, quantized=True)


def _decisive(rule: Top1Rule) -> str:
    return f"{rule.decisive_samples}/{rule.samples} decisive samples"


def _shape_ok(got: tuple[int | None, ...], want: tuple[int, ...]) -> bool:
    return len(got) == len(want) and all(g is None or g == w for g, w in zip(got, want))


def _dims(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"
