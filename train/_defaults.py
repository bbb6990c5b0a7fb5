"""Training settings from the dataset size, for every key a recipe leaves unset.

The rule (documented in the README, recorded in ``manifest["training"]``):

* ``batch_size``: 32 from 640 training samples up; below that the largest power
  of two at most ``n / 20`` (so an epoch has about 20 steps), at least 8.
* ``learning_rate``: Adam ``1e-3 * sqrt(batch_size / 32)`` (square-root
  scaling with the batch size: 5e-4 at batch 8).
* ``epochs`` (the cap; early stopping ends most runs before it): about 3,000
  optimizer steps, ``ceil(3000 / steps_per_epoch)``, between 30 and 300.
* ``min_epochs`` (early stopping cannot stop before it): about 300 steps,
  between 5 and ``epochs // 2``.
* ``early_stopping_patience``: about 600 steps, between 10 and 50 epochs.
* ``head_epochs`` (pretrained ``model.weights`` only: epochs with the loaded
  base frozen before the whole model trains): about 150 steps, between 3 and 20.

Small data gets smaller batches, more epochs and more patience, so a run of
200 photos has had a few thousand steps before it may stop; digits (1,257
training samples) gets batch 32, 75 epochs at most, patience 15.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

RULE = (
    "batch 32 from 640 samples, else the largest power of 2 <= n/20 (>= 8); lr 1e-3*sqrt(batch/32); "
    "epochs ceil(3000/steps) in [30, 300]; min_epochs ceil(300/steps) in [5, epochs//2]; "
    "patience ceil(600/steps) in [10, 50]; head_epochs ceil(150/steps) in [3, 20] (pretrained weights only)"
)


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


@dataclass(frozen=True)
class TrainingPlan:
    """Resolved training settings; ``auto`` names the ones the rule chose."""

    epochs: int
    batch_size: int
    learning_rate: float
    early_stopping_patience: int
    min_epochs: int
    head_epochs: int
    steps_per_epoch: int
    train_samples: int
    auto: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["auto"] = list(self.auto)
        out["rule"] = RULE
        return out


def plan_training(
    n_train: int,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    early_stopping_patience: int | None = None,
    min_epochs: int | None = None,
    head_epochs: int | None = None,
    pretrained: bool = False,
) -> TrainingPlan:
    """Fill every ``None`` setting from ``n_train`` by the module's rule; set values are kept as given."""
    auto: list[str] = []
    n = max(1, int(n_train))
    if batch_size is None:
        batch_size = 32 if n >= 640 else max(8, 2 ** int(math.floor(math.log2(max(1.0, n / 20)))))
        auto.append("batch_size")
    steps = max(1, math.ceil(n / batch_size))
    if learning_rate is None:
        learning_rate = 1e-3 * math.sqrt(batch_size / 32)
        auto.append("learning_rate")
    if epochs is None:
        epochs = _clamp(math.ceil(3000 / steps), 30, 300)
        auto.append("epochs")
    if min_epochs is None:
        min_epochs = _clamp(math.ceil(300 / steps), min(5, epochs), max(min(5, epochs), epochs // 2))
        auto.append("min_epochs")
    if early_stopping_patience is None:
        early_stopping_patience = _clamp(math.ceil(600 / steps), 10, 50)
        auto.append("early_stopping_patience")
    if head_epochs is None:
        head_epochs = _clamp(math.ceil(150 / steps), 3, 20) if pretrained else 0
        auto.append("head_epochs")
    return TrainingPlan(
        epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
        early_stopping_patience=int(early_stopping_patience), min_epochs=int(min(min_epochs, epochs)),
        head_epochs=int(head_epochs), steps_per_epoch=steps, train_samples=n, auto=tuple(auto),
    )
