"""The accuracy budget's bookkeeping: attempts, their table, the budget a split can resolve, and the loop.

:func:`meet_budget` runs the steps it is given in order and keeps the first
whose top-1 drop against the reference is within the budget; it does not know
how a step makes its bytes or how they are evaluated. The orchestrator
(:mod:`edgeship.variants`) owns that: it plans the variants, calls export's
converters and quantizers, evaluates through the runtime, and hands the steps
and an ``evaluate`` callable here. Pruning's back-off (:mod:`.backoff`) uses the
same budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from edgeship.core.bundle import QuantizationAttempt as Attempt
from edgeship.core.errors import AccuracyBudgetError

Step = tuple[str, str, Callable[[], bytes]]

STEPS = ("ptq_per_channel", "more_calibration", "other_calibration", "qat", "float_fallback")


def text_table(rows: list[tuple[str, ...]]) -> str:
    """Rows (the first is the header) as fixed-width text columns, one line per row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def attempts_table(attempts: list[Attempt]) -> str:
    """The attempts as a fixed-width text table (one line per attempt)."""
    rows = [("artifact", "step", "method", "accuracy", "drop", "bytes", "met")]
    rows += [
        (a.artifact, a.step, a.method, f"{a.accuracy:.4f}", f"{a.drop:+.4f}", f"{a.bytes:,}", met_cell(a.met_budget))
        for a in attempts
    ]
    return text_table(rows)


def effective_budget(budget: float | None, samples: int) -> float | None:
    """``max(budget, 1 / samples)``: the budget as a split of ``samples`` can resolve it.

    A drop smaller than one sample cannot be measured: on a 20-sample
    validation split one sample is 5 points, so a 1-point budget is judged as
    "at most one sample lost". Splits of ``1 / budget`` samples or more (100
    for 0.01) are judged at the budget itself.
    """
    if budget is None or samples <= 0:
        return budget
    return max(float(budget), 1.0 / samples)


def judge(drop: float, budget: float | None) -> tuple[bool, str]:
    """Whether a top-1 ``drop`` is within ``budget`` (``None``: no budget, always), and the progress-line suffix."""
    ok = budget is None or drop <= budget + 1e-9
    return ok, "" if budget is None else f" -> {'meets' if ok else 'misses'} budget {budget:.4f}"


def met_cell(met: bool, rejected_by: str = "") -> str:
    """The "met" column of an attempts table: yes / no, and why a later stage turned the attempt down."""
    return ("yes" if met else "no") + (f" ({rejected_by})" if rejected_by else "")


def budget_error(what: str, table: str, attempts: int, budget: float | None, reference: float, downstream: str,
                 fix: str) -> AccuracyBudgetError:
    """The typed error when no attempt of a back-off is accepted; the message holds the attempts ``table``."""
    return AccuracyBudgetError(
        f"Expected {what} within budget.max_accuracy_drop={'none' if budget is None else f'{budget:.4g}'} "
        f"(validation top-1 of the trained float32 model {reference:.4f}). Received: {attempts} attempts, "
        f"none accepted: {table.replace(chr(10), ' | ')}." + (f" {downstream}" if downstream else "") + f" Fix: {fix}"
    )


def meet_budget(
    artifact: str,
    steps: Iterator[Step],
    evaluate: Callable[[bytes], float],
    reference: float,
    budget: float | None,
    history: list[Attempt],
    say: Callable[[str], None] = lambda _: None,
    metric: str = "accuracy",
) -> bytes:
    """Run ``steps`` until one meets ``budget``; append every attempt to ``history``.

    ``metric`` names what ``evaluate`` measures in the messages (``"ROC AUC"`` for an anomaly detector);
    the attempts keep it in their ``accuracy`` field.

    Raises:
        AccuracyBudgetError: no step met the budget; the message holds the table.
    """
    tried = 0
    for step, method, make in steps:
        data = make()
        acc = float(evaluate(data))
        drop = reference - acc
        ok, verdict = judge(drop, budget)
        history.append(Attempt(artifact, step, method, acc, drop, len(data), ok))
        tried += 1
        say(f"    {artifact} {step} ({method}): {metric} {acc:.4f}, drop {drop:+.4f}, {len(data):,} bytes"
            + verdict)
        if ok:
            return data
    mine = [a for a in history if a.artifact == artifact]
    table = attempts_table(mine).replace("\n", " | ")
    raise AccuracyBudgetError(
        f"Expected {artifact} within budget.max_accuracy_drop={'none' if budget is None else f'{budget:.4g}'} "
        f"({'top-1' if metric == 'accuracy' else metric} drop vs the float32 model's "
        f"{reference:.4f}). Received: {tried} attempts, none within budget: {table}. "
        "Fix: raise budget.max_accuracy_drop, raise quantize.qat_epochs / quantize.max_float_layers, "
        f"or drop {artifact.split('.')[1]} from quantize.{artifact.rsplit('.', 1)[-1]}."
    )
