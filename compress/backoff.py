"""Pruning inside the accuracy budget: back off until the pruned model keeps its accuracy.

The budget (``budget.max_accuracy_drop``) is measured against the trained
float32 model before pruning, on the validation split. Attempts, in order,
each pruning the trained model afresh:

1. the recipe's sparsity and fine-tuning epochs (unset: :func:`default_fine_tune_epochs`);
2. the same sparsity, fine-tuned longer: ``max(2 * epochs, ceil(300 / steps_per_epoch))``
   epochs, so a small dataset gets at least about 300 optimizer steps;
3. half, then a quarter of the sparsity, with the longer fine-tuning
   (skipped for 2:4 sparsity, whose ratio is fixed).

The first attempt within budget is kept (``edgeship build`` keeps it only
when the int8 artifacts made from it meet the budget too: pruning and
quantization share one budget, so a pruning that leaves no room for int8 backs
off further). Every attempt is recorded
(:class:`PruneAttempt`, ``manifest["compression"]["prune_attempts"]``); when
none is within budget, :class:`~edgeship.core.errors.AccuracyBudgetError` carries
the table and no bundle is written. Without a budget only attempt 1 runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from edgeship.core.bundle import PruneAttempt
from edgeship.core.errors import AccuracyBudgetError

from .budget import budget_error, judge, met_cell, text_table
from .distill import Distillation
from .prune import PruneSchedule, prune

#: The longer fine-tuning runs at least this many optimizer steps.
MIN_FINE_TUNE_STEPS = 300


def default_fine_tune_epochs(steps_per_epoch: int) -> int:
    """``max(4, ceil(300 / steps_per_epoch))``: at least 4 epochs and about 300 optimizer steps."""
    return max(4, math.ceil(MIN_FINE_TUNE_STEPS / max(1, steps_per_epoch)))


def prune_attempts_table(attempts: list[PruneAttempt]) -> str:
    """The attempts as a fixed-width text table (one line per attempt)."""
    rows = [("step", "sparsity", "epochs", "steps", "val accuracy", "drop", "met")]
    rows += [
        (a.step, f"{a.target_sparsity:.3f}", str(a.fine_tune_epochs), str(a.fine_tune_steps), f"{a.accuracy:.4f}",
         f"{a.drop:+.4f}", met_cell(a.met_budget, a.rejected_by))
        for a in attempts
    ]
    return text_table(rows)


def longer_fine_tune_epochs(epochs: int, steps_per_epoch: int) -> int:
    """The back-off's longer fine-tuning: ``max(2 * epochs, ceil(300 / steps_per_epoch))`` epochs."""
    return max(2 * epochs, math.ceil(MIN_FINE_TUNE_STEPS / max(1, steps_per_epoch)))


def backoff_plan(schedule: PruneSchedule, fine_tune_epochs: int, steps_per_epoch: int, budgeted: bool) -> list[tuple[str, PruneSchedule, int]]:
    """``(step, schedule, epochs)`` for each attempt, in order (see the module docstring)."""
    plan = [("as_recipe", schedule, fine_tune_epochs)]
    if not budgeted:
        return plan
    longer = longer_fine_tune_epochs(fine_tune_epochs, steps_per_epoch)
    plan.append(("longer_fine_tune", schedule, longer))
    if schedule.m_by_n is None:
        for factor, step in ((0.5, "half_sparsity"), (0.25, "quarter_sparsity")):
            target = schedule.target_sparsity * factor
            plan.append((step, replace(schedule, target_sparsity=target,
                                       initial_sparsity=min(schedule.initial_sparsity, target)), longer))
    return plan


def iter_prune_attempts(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    schedule: PruneSchedule,
    fine_tune_epochs: int,
    reference_accuracy: float,
    budget: float | None,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    seed: int = 0,
    exclude: list[str] | tuple[str, ...] = (),
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    distill: Distillation | None = None,
    decision: tuple[np.ndarray, np.ndarray] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[tuple[PruneAttempt, Any, PruneSchedule, int]]:
    """Every attempt of the back-off plan in order: ``(attempt, pruned model, schedule, epochs)``.

    Each attempt is judged on ``decision`` (default: the validation split), the
    set ``reference_accuracy`` was measured on. The caller stops at the first it accepts; ``edgeship build`` accepts one
    only when the quantized artifacts made from it meet the budget too.
    """
    from edgeship.train import accuracy

    steps = max(1, math.ceil(len(x_train) / batch_size))
    for step, sched, epochs in backoff_plan(schedule, fine_tune_epochs, steps, budget is not None):
        pruned = prune(
            model, x_train, y_train, x_val, y_val, target_sparsity=sched.target_sparsity,
            fine_tune_epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
            schedule=sched, exclude=exclude, verbose=0, augment=augment, distill=distill,
        )
        acc = accuracy(pruned, *(decision or (x_val, y_val)))
        drop = reference_accuracy - acc
        ok, verdict = judge(drop, budget)
        say(f"    prune {step}: sparsity {sched.target_sparsity:.0%}, {epochs} epoch(s) ({epochs * steps} steps): "
            f"val accuracy {acc:.4f}, drop {drop:+.4f}"
            + verdict)
        yield PruneAttempt(step, sched.target_sparsity, epochs, epochs * steps, acc, drop, ok), pruned, sched, epochs


def prune_budget_error(attempts: list[PruneAttempt], budget: float | None, reference_accuracy: float,
                       downstream: str = "") -> AccuracyBudgetError:
    """The typed error when no pruning attempt is accepted; the message holds the table."""
    return budget_error("pruning", prune_attempts_table(attempts), len(attempts), budget, reference_accuracy, downstream,
                        "lower prune.target_sparsity, raise prune.fine_tune_epochs or budget.max_accuracy_drop, "
                        "or set prune.enabled = false.")


def prune_to_budget(*args: Any, **kwargs: Any) -> tuple[Any, PruneSchedule, int, list[PruneAttempt]]:
    """Prune within the budget: the first attempt of :func:`iter_prune_attempts` that meets it.

    Takes exactly :func:`iter_prune_attempts`' arguments (``model``, the four
    splits, ``schedule``, ``fine_tune_epochs``, ``reference_accuracy`` (validation
    top-1 before pruning), ``budget``, ...).

    Returns:
        ``(pruned model, schedule used, fine-tune epochs used, every attempt)``.

    Raises:
        AccuracyBudgetError: no attempt met the budget; the message holds the table.
    """
    attempts: list[PruneAttempt] = []
    for attempt, pruned, sched, epochs in iter_prune_attempts(*args, **kwargs):
        attempts.append(attempt)
        if attempt.met_budget:
            return pruned, sched, epochs, attempts
    raise prune_budget_error(attempts, kwargs.get("budget"), kwargs["reference_accuracy"])
