"""The task a model does, chosen once: what its quality metric is, how its parity is judged, what its files carry.

A recipe names the task (``model.task``); :func:`task_named` turns the name into
a :class:`Task` once, and the build, the variants' budget, the gates, the
runtime's bench and check, and serve ask the task instead of branching on the
name. The manifest records the task (``task``); a manifest written before it
did is read by :func:`task_of` from what it holds (an ``anomaly`` section).

Two tasks today, registered by name (:func:`register_task`):

* :class:`Classification` (``"classification"``): class scores out; quality is
  top-1 accuracy (``accuracy``); quantized parity counts top-1 agreement on
  the outputs that hold one score per label.
* :class:`AnomalyDetection` (``"anomaly"``): a reconstruction out, scored by
  its mean squared error; quality is ROC AUC (``roc_auc``); parity has no top-1
  (the output is not class scores); each file carries its own threshold.

Numpy only: the device side decides with it too. A model is anything with
``predict(x)`` (and ``score(x)`` for anomaly detection), e.g. a runtime ``Model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np

from .errors import RecipeError
from .metrics import SCORE_RULE, roc_auc, top1_accuracy
from .parity import classifier_outputs


class Scorable(Protocol):
    def predict(self, x: Any) -> Any: ...


class Task:
    """What a task decides. Subclasses set the class attributes and may override the methods."""

    name: ClassVar[str]
    #: The quality metric's name in the manifest and baseline (``ArtifactMetrics``, ``BaselineArtifact``).
    metric: ClassVar[str]
    #: The metric as people read it in logs ("accuracy", "ROC AUC") and in report tables ("top-1", "ROC AUC").
    metric_label: ClassVar[str]
    metric_short: ClassVar[str]
    #: The parity rule recorded with each artifact's parity when it is not the classifier's (``None``).
    parity_rule: ClassVar[str | None] = None
    #: What the budget's reference figure is, in the manifest's ``budget.reference``.
    budget_reference: ClassVar[str]
    #: Whether the budget keeps a one-sample floor (top-1 moves in steps of 1/n; ROC AUC does not).
    one_sample_floor: ClassVar[bool] = True

    def quality(self, model: Scorable, x: np.ndarray, y: np.ndarray) -> float:
        """The task's metric of ``model`` on ``(x, y)``."""
        raise NotImplementedError

    def classifier_outputs(self, reference: dict[str, np.ndarray], labels: list[str] | None) -> set[str]:
        """The outputs holding class scores (top-1 agreement is judged on those only)."""
        return set()

    def check_arch(self, info: Any, dataset: str) -> None:
        """Fail before any work when a zoo architecture (``ModelInfo``) cannot serve the task on ``dataset``."""

    def metric_of(self, metrics: Any) -> float | None:
        """This task's metric from an artifact's recorded metrics (``ArtifactMetrics`` or ``BaselineArtifact``)."""
        return getattr(metrics, self.metric, None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a :class:`Task` available by its ``name``."""
    _TASKS[cls.name] = cls
    return cls


@register_task
class Classification(Task):
    name = "classification"
    metric = "accuracy"
    metric_label = "accuracy"
    metric_short = "top-1"
    budget_reference = "validation top-1 of the trained float32 model before pruning"

    def quality(self, model: Scorable, x: np.ndarray, y: np.ndarray) -> float:
        out = model.predict(x)
        return top1_accuracy(np.asarray(out[0] if isinstance(out, list) else out), y)

    def check_arch(self, info: Any, dataset: str) -> None:
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
                f"model.arch {info.name!r} takes {info.input_kind} input, which data.dataset {dataset!r} does not "
                f"give. Received: a {'text' if is_text else 'numeric'} dataset. Use {want}."
            )

    def classifier_outputs(self, reference: dict[str, np.ndarray], labels: list[str] | None) -> set[str]:
        return classifier_outputs(reference, labels)


@register_task
class AnomalyDetection(Task):
    name = "anomaly"
    metric = "roc_auc"
    metric_label = metric_short = "ROC AUC"
    parity_rule = (
        "reconstruction output (an anomaly detector): float variants by max abs diff (atol), quantized variants by "
        "output SQNR (min_sqnr_db); top-1 agreement does not apply (the output is not class scores)"
    )
    budget_reference = "validation ROC AUC (normal samples and held-out anomalies) of the trained float32 model"
    one_sample_floor = False
    #: How a sample's anomaly score is computed from the reconstruction (manifest and file metadata).
    score_rule: ClassVar[str] = SCORE_RULE

    def check_arch(self, info: Any, dataset: str) -> None:
        # whether a classification arch's output has its input's shape is checked once it is built
        if info.input_kind == "tokens":
            raise RecipeError(
                f'model.task = "anomaly" needs a model that reconstructs its numeric input. Received: model.arch = '
                f"{info.name!r}, which takes token ids. Use fc_autoencoder."
            )

    def quality(self, model: Scorable, x: np.ndarray, y: np.ndarray) -> float:
        score: Callable[[Any], Any] = model.score  # type: ignore[attr-defined]
        return roc_auc(score(x), y)


def task_named(name: str) -> Task:
    """The task registered as ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return _TASKS[name]()
    except KeyError:
        raise ValueError(f"Expected a task name, one of {', '.join(map(repr, _TASKS))}. Received: {name!r}.") from None


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


#: Names older bundles' recipes used for a registered task.
_ALIASES = {"reconstruction": AnomalyDetection.name}


def task_of(manifest: Any) -> Task:
    """The task of a manifest: its ``task`` field; for a manifest older than that field, its recipe's
    ``model.task``, else its sections (an ``anomaly`` section: anomaly detection; else classification)."""
    name = getattr(manifest, "task", None)
    if name is None:
        model = (getattr(manifest, "recipe", None) or {}).get("model")
        given = model.get("task") if isinstance(model, dict) else None
        name = _ALIASES.get(given, given) if isinstance(given, str) else None
    if name not in _TASKS:
        name = AnomalyDetection.name if getattr(manifest, "anomaly", None) is not None else Classification.name
    return task_named(name)


def task_of_model(model: Any) -> Task:
    """The task of a model file with no manifest: anomaly detection when it carries an anomaly rule (its
    metadata), or when its one output has its one input's shape (a reconstruction); else classification."""
    if getattr(model, "anomaly", None) is not None:
        return AnomalyDetection()
    inputs, outputs = getattr(model, "inputs", ()), getattr(model, "outputs", ())
    if len(inputs) == 1 and len(outputs) == 1 and tuple(inputs[0].shape) == tuple(outputs[0].shape):
        return AnomalyDetection()
    return Classification()
