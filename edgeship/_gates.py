"""The build's gates: the model beats chance, and the warnings worth a line (the task checks the architecture)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeship.core.bundle import ArtifactRecord, Baselines, ChanceCheck
from edgeship.recipe import Recipe


def gate_chance(what: str, accuracy: float, samples: int, base: Baselines, recipe: Recipe) -> ChanceCheck:
    """The chance-level gate (``edgeship.train.chance_check``) on one accuracy; raises unless allowed.

    Raises:
        ChanceLevelError: ``accuracy`` is not significantly above the majority
            baseline and ``budget.allow_chance_level`` is false.
    """
    from edgeship.core.errors import ChanceLevelError
    from edgeship.train import chance_check

    check = chance_check(accuracy, samples, base.majority, recipe.budget.chance_alpha)
    if not check.passed and not recipe.budget.allow_chance_level:
        if check.required_accuracy >= 1.0 and accuracy >= 1.0:
            need = check.samples_needed()
            raise ChanceLevelError(
                f"Expected a test split large enough to show that {what} beats always answering the most frequent "
                f"class ({base.majority:.4f}). Received: {samples} test samples, where even a perfect score is "
                f"not significant (one-sided binomial test, p = {check.p_value:.3f}, needs p < {check.alpha}). "
                f"Add data (at least {need} test samples), or set budget.allow_chance_level = true to ship anyway."
            )
        raise ChanceLevelError(
            f"Expected {what} to beat always answering the most frequent class ({base.majority:.4f}) "
            f"significantly: at least {check.required_accuracy:.4f} on {samples} test samples "
            f"(one-sided binomial test, p < {check.alpha}). Received: accuracy {accuracy:.4f} (p = {check.p_value:.3f}); "
            f"a logistic regression on the same inputs scores {_num(base.linear):.4f}. Check that the labels match "
            "the data, add data, or set budget.allow_chance_level = true to ship anyway."
        )
    return check


def classifier_warnings(artifacts: list[ArtifactRecord], base: Baselines | None, budget: float | None,
                        test_samples: int, decision: str) -> list[str]:
    """One line per real concern: artifacts below the linear baseline; artifacts whose test-split top-1 drop
    exceeds the budget although the decision split (validation) met it."""
    from edgeship.compress import effective_budget

    out: list[str] = []
    linear = _num(base.linear if base else None)
    names = _named(artifacts, "accuracy", lambda v: bool(np.isfinite(linear)) and v < linear, "{:.4f}")
    if names and base is not None:
        out.append(
            f"below the linear baseline ({linear:.4f}, {base.linear_model}): {names}. "
            "The network does no better than a linear model on these inputs; try more data, data.augmentation, "
            "model.weights (transfer learning) or another model.arch."
        )
    limit = effective_budget(budget, test_samples)
    names = _named(artifacts, "accuracy_drop", lambda v: limit is not None and v > limit + 1e-9, "{:+.4f}")
    if names:
        out.append(
            f"on the test split ({test_samples} samples) these artifacts lose more than the budget "
            f"({limit:.4f}) against the trained float32 model, although the {decision} met it: {names}. "
            "The decision split is too small or too easy to see the loss; more data gives a truer check."
        )
    return out


def anomaly_warnings(artifacts: list[ArtifactRecord], baselines: dict[str, Any] | None, budget: float | None,
                     decision: str) -> list[str]:
    """One line per real concern: artifacts below the PCA baseline's ROC AUC; artifacts whose test-split
    ROC AUC drop exceeds the budget although the decision split (validation) met it."""
    out: list[str] = []
    pca = (baselines or {}).get("pca_roc_auc")
    names = _named(artifacts, "roc_auc", lambda v: pca is not None and v < pca, "{:.4f}")
    if names and baselines is not None:
        out.append(
            f"below the PCA baseline's ROC AUC ({pca:.4f}, {baselines['pca_components']} components): "
            f"{names}. The autoencoder does no better than a linear subspace; try more data, more epochs or "
            "another model.arch."
        )
    names = _named(artifacts, "roc_auc_drop", lambda v: budget is not None and v > budget + 1e-9, "{:+.4f}")
    if names:
        out.append(f"on the test split these artifacts lose more ROC AUC than the budget ({budget:.4f}) against "
                   f"the trained float32 model, although the {decision} met it: {names}.")
    return out


def _num(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _named(artifacts: list[ArtifactRecord], key: str, flagged: Any, fmt: str) -> str:
    """``"FILE VALUE, ..."`` for the artifacts whose ``metrics.<key>`` is set and ``flagged``; empty when none is."""
    values = [(a.file, getattr(a.metrics, key, None)) for a in artifacts]
    return ", ".join(f"{name} {fmt.format(v)}" for name, v in values if v is not None and flagged(v))
