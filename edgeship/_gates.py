"""The build's gates: the architecture fits the task, the model beats chance, and the warnings worth a line."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeship.recipe import Recipe


def check_task(info: Any, dataset: str, task: str = "classification") -> None:
    """Fail before any work when the architecture cannot learn from the dataset or serve the task."""
    from edgeship.core.errors import RecipeError

    if task == "anomaly":
        if info.input_kind == "tokens":
            raise RecipeError(
                f'model.task = "anomaly" needs a model that reconstructs its numeric input. Received: model.arch = '
                f"{info.name!r}, which takes token ids. Use fc_autoencoder."
            )
        return  # whether a classification arch's output has its input's shape is checked once it is built
    if info.task != "classification":
        raise RecipeError(
            f"model.task = \"classification\" needs a classifier. Received: model.arch = {info.name!r}, a "
            f"{info.task} model. For anomaly detection (trained on normal samples with MSE, scored by "
            'reconstruction error) set model.task = "anomaly", or pick a classifier.'
        )
    is_text = dataset.partition(":")[0] == "text"
    if is_text != (info.input_kind == "tokens"):
        want = "text_cnn" if is_text else "an image architecture such as small_cnn"
        raise RecipeError(
            f"model.arch {info.name!r} takes {info.input_kind} input, which data.dataset {dataset!r} does not give. "
            f"Received: a {'text' if is_text else 'numeric'} dataset. Use {want}."
        )


def gate_chance(what: str, accuracy: float, samples: int, base: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The chance-level gate (``edgeship.train.chance_check``) on one accuracy; raises unless allowed.

    Raises:
        ChanceLevelError: ``accuracy`` is not significantly above the majority
            baseline and ``budget.allow_chance_level`` is false.
    """
    from edgeship.core.errors import ChanceLevelError
    from edgeship.train import chance_check

    check = chance_check(accuracy, samples, base["majority"], recipe.budget.chance_alpha)
    if not check.passed and not recipe.budget.allow_chance_level:
        if check.required_accuracy >= 1.0 and accuracy >= 1.0:
            need = check.samples_needed()
            raise ChanceLevelError(
                f"Expected a test split large enough to show that {what} beats always answering the most frequent "
                f"class ({base['majority']:.4f}). Received: {samples} test samples, where even a perfect score is "
                f"not significant (one-sided binomial test, p = {check.p_value:.3f}, needs p < {check.alpha}). "
                f"Add data (at least {need} test samples), or set budget.allow_chance_level = true to ship anyway."
            )
        raise ChanceLevelError(
            f"Expected {what} to beat always answering the most frequent class ({base['majority']:.4f}) "
            f"significantly: at least {check.required_accuracy:.4f} on {samples} test samples "
            f"(one-sided binomial test, p < {check.alpha}). Received: accuracy {accuracy:.4f} (p = {check.p_value:.3f}); "
            f"a logistic regression on the same inputs scores {base['linear']:.4f}. Check that the labels match "
            "the data, add data, or set budget.allow_chance_level = true to ship anyway."
        )
    return check.to_json()


def bundle_warnings(artifacts: list[dict[str, Any]], base: dict[str, Any] | None, budget: float | None,
                    test_samples: int, decision: str, *, anomaly_baselines: dict[str, Any] | None = None) -> list[str]:
    """One line per real concern: artifacts below the linear baseline (anomaly detection: the PCA baseline's
    ROC AUC); artifacts whose test-split drop (top-1, or ROC AUC) exceeds the budget although the decision
    split (validation) met it."""
    from edgeship.compress import effective_budget

    out: list[str] = []
    if anomaly_baselines is not None:
        pca = anomaly_baselines.get("pca_roc_auc")
        names = _named(artifacts, "roc_auc", lambda v: pca is not None and v < pca, "{:.4f}")
        if names:
            out.append(
                f"below the PCA baseline's ROC AUC ({pca:.4f}, {anomaly_baselines['pca_components']} components): "
                f"{names}. The autoencoder does no better than a linear subspace; try more data, more epochs or "
                "another model.arch."
            )
        names = _named(artifacts, "roc_auc_drop", lambda v: budget is not None and v > budget + 1e-9, "{:+.4f}")
        if names:
            out.append(f"on the test split these artifacts lose more ROC AUC than the budget ({budget:.4f}) against "
                       f"the trained float32 model, although the {decision} met it: {names}.")
        return out
    linear = base.get("linear", float("nan")) if base else float("nan")
    names = _named(artifacts, "accuracy", lambda v: bool(np.isfinite(linear)) and v < linear, "{:.4f}")
    if names:
        out.append(
            f"below the linear baseline ({linear:.4f}, {base['linear_model']}): {names}. "  # type: ignore[index]
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


def _named(artifacts: list[dict[str, Any]], key: str, flagged: Any, fmt: str) -> str:
    """``"FILE VALUE, ..."`` for the artifacts whose ``metrics[key]`` is present and ``flagged``; empty when none is."""
    values = [(a["file"], a["metrics"].get(key)) for a in artifacts]
    return ", ".join(f"{name} {fmt.format(v)}" for name, v in values if v is not None and flagged(v))
