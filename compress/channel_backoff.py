"""Channel pruning inside the accuracy budget: fine-tune the narrower model, keep more channels when it misses.

Attempts, each pruning the trained model afresh (:func:`channel_plan`):

1. the recipe's channel ratio ``r`` and fine-tuning epochs;
2. the same ratio, fine-tuned longer (as :mod:`edgeship.compress.backoff` does);
3. keeping more channels: ``r + (1 - r) / 2``, then ``r + 3 (1 - r) / 4``, fine-tuned longer.

Each attempt is judged on the decision set against the trained model's
accuracy there (one budget for the whole chain) and recorded as a
:class:`ChannelAttempt` (``manifest["compression"]["channel_attempts"]``).
Without a budget only attempt 1 runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeship.core.bundle import ChannelAttempt
from edgeship.core.errors import AccuracyBudgetError

from .backoff import longer_fine_tune_epochs
from .budget import budget_error, judge, met_cell, text_table
from .channels import ChannelReport, Ranking, prune_channels
from .distill import Distillation, distill_from


def channel_attempts_table(attempts: list[ChannelAttempt]) -> str:
    """The attempts as a fixed-width text table."""
    rows = [("step", "ratio", "epochs", "distilled", "params", "MACs", "acc (no ft)", "val accuracy", "drop", "met")]
    rows += [(a.step, f"{a.channel_ratio:.3f}", str(a.fine_tune_epochs), "yes" if a.distilled else "no",
              f"{a.params:,}", f"{a.macs:,}", f"{a.accuracy_before_fine_tune:.4f}", f"{a.accuracy:.4f}",
              f"{a.drop:+.4f}", met_cell(a.met_budget, a.rejected_by))
             for a in attempts]
    return text_table(rows)


def channel_plan(ratio: float, epochs: int, steps_per_epoch: int, budgeted: bool) -> list[tuple[str, float, int]]:
    """``(step, channel ratio, fine-tune epochs)`` of each attempt, in order (see the module docstring)."""
    plan = [("as_recipe", ratio, epochs)]
    if not budgeted:
        return plan
    longer = longer_fine_tune_epochs(epochs, steps_per_epoch)
    plan.append(("longer_fine_tune", ratio, longer))
    for i, more in enumerate((ratio + (1 - ratio) / 2, ratio + 3 * (1 - ratio) / 4), start=1):
        if more < 1.0 - 1e-9:
            plan.append((f"keep_more_{i}", round(more, 4), longer))
    return plan


def fine_tune_channels(narrow: Any, teacher: Any, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                       y_val: np.ndarray, *, epochs: int, batch_size: int = 32, learning_rate: float = 5e-4,
                       seed: int = 0, augment: Any = None, distill: Distillation | None = None) -> Any:
    """Fine-tune ``narrow`` in place (on the labels, or distilled from ``teacher``); best validation-loss epoch kept.

    BatchNorm statistics are re-estimated on ``x_train`` afterwards. Returns ``narrow``.
    """
    from edgeship.core.tf import tf_modules
    from edgeship.train import TrainingData, compile_classifier, fine_tune, recalibrate_batchnorm, set_seed

    _, keras = tf_modules()
    set_seed(seed)
    trainee = narrow if distill is None else distill_from(teacher, narrow, distill)
    compile_classifier(trainee, learning_rate)
    best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs + 1, restore_best_weights=True)
    fine_tune(trainee, TrainingData(x_train, y_train, x_val, y_val), epochs=epochs, batch_size=batch_size, callbacks=[best],
              verbose=0, augment=augment, seed=seed)
    compile_classifier(narrow, learning_rate)
    recalibrate_batchnorm(narrow, x_train, seed=seed)
    return narrow


def iter_channel_attempts(
    model: Any, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
    channel_ratio: float, fine_tune_epochs: int, reference_accuracy: float, budget: float | None,
    batch_size: int = 32, learning_rate: float = 5e-4, seed: int = 0, ranking: Ranking = "l1",
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None, distill: Distillation | None = None,
    decision: tuple[np.ndarray, np.ndarray] | None = None, say: Callable[[str], None] = lambda _: None,
) -> Iterator[tuple[ChannelAttempt, Any, ChannelReport]]:
    """Every attempt of :func:`channel_plan` in order: ``(attempt, fine-tuned narrow model, prune report)``.

    ``model`` (the trained model, also the teacher when ``distill`` is set) is unchanged.
    """
    from edgeship.train import accuracy

    x_dec, y_dec = decision or (x_val, y_val)
    steps = max(1, math.ceil(len(x_train) / batch_size))
    for step, ratio, epochs in channel_plan(channel_ratio, fine_tune_epochs, steps, budget is not None):
        narrow, report = prune_channels(model, ratio, ranking=ranking)
        before = accuracy(narrow, x_dec, y_dec)
        fine_tune_channels(narrow, model, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, seed=seed, augment=augment, distill=distill)
        acc = accuracy(narrow, x_dec, y_dec)
        drop = reference_accuracy - acc
        ok, verdict = judge(drop, budget)
        say(f"    channels {step}: keep {ratio:.0%} ({report.params[1]:,} of {report.params[0]:,} parameters, "
            f"{report.macs[1] / max(1, report.macs[0]):.0%} of the MACs), {epochs} epoch(s)"
            f"{' distilled' if distill else ''}: val accuracy {before:.4f} -> {acc:.4f}, drop {drop:+.4f}"
            + verdict)
        attempt = ChannelAttempt(step, ratio, epochs, distill is not None, report.params[1], report.macs[1],
                                 before, acc, drop, ok)
        yield attempt, narrow, report


def channel_budget_error(attempts: list[ChannelAttempt], budget: float | None, reference_accuracy: float,
                         downstream: str = "") -> AccuracyBudgetError:
    """The typed error when no channel-pruning attempt is accepted; the message holds the table."""
    return budget_error("channel pruning", channel_attempts_table(attempts), len(attempts), budget, reference_accuracy,
                        downstream, "raise prune.channel_ratio, enable [distill], raise prune.fine_tune_epochs or "
                        "budget.max_accuracy_drop, or set prune.structure = \"unstructured\".")
