"""Magnitude pruning with tfmot: ``prune_low_magnitude``, fine-tune, ``strip_pruning``.

Unstructured (ConstantSparsity or PolynomialDecay schedule) or 2:4 structured
(``sparsity_m_by_n``), with layers excluded by name or class name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from edgeship.compress.distill import Distillation, distill_from
from edgeship.core.errors import RecipeError
from edgeship.core.tf import check_keras2_model, tf_modules, tfmot
from edgeship.train import TrainingData, compile_classifier, fine_tune, recalibrate_batchnorm, set_seed

ScheduleKind = Literal["constant", "polynomial"]


@dataclass(frozen=True)
class PruneSchedule:
    """When and how far to prune, in optimizer steps.

    Attributes:
        kind: ``"constant"`` (tfmot ``ConstantSparsity``: ``target_sparsity``
            from ``begin_step`` on) or ``"polynomial"`` (``PolynomialDecay``:
            ``initial_sparsity`` to ``target_sparsity`` between ``begin_step``
            and ``end_step``, cubic).
        target_sparsity: final fraction of zero weights per pruned layer.
        initial_sparsity: starting fraction (polynomial only).
        begin_step: first step that prunes.
        end_step: last step that prunes; ``None``: for constant, the end of
            fine-tuning; for polynomial, one epoch before it (the last epoch
            recovers accuracy at the final sparsity).
        frequency: steps between mask updates; ``None``: once per epoch for
            constant, ``min(100, ramp steps // 10)`` for polynomial.
        m_by_n: ``(2, 4)`` for 2:4 structured sparsity (each block of 4 weights
            along the input channels keeps its 2 largest); ``target_sparsity``
            is then 0.5 by construction.
    """

    kind: ScheduleKind = "constant"
    target_sparsity: float = 0.5
    initial_sparsity: float = 0.0
    begin_step: int = 0
    end_step: int | None = None
    frequency: int | None = None
    m_by_n: tuple[int, int] | None = None

    def resolved(self, steps_per_epoch: int, epochs: int) -> PruneSchedule:
        """This schedule with ``end_step`` and ``frequency`` filled in for a run."""
        total = max(1, steps_per_epoch * epochs)
        end = self.end_step
        if end is None:
            end = total if self.kind == "constant" or epochs < 2 else total - steps_per_epoch
        end = max(end, self.begin_step + 1)
        freq = self.frequency
        if freq is None:
            freq = steps_per_epoch if self.kind == "constant" else max(1, min(100, (end - self.begin_step) // 10))
        return PruneSchedule(self.kind, self.target_sparsity, self.initial_sparsity, self.begin_step, end, freq, self.m_by_n)

    def to_tfmot(self) -> Any:
        mot = tfmot()
        if self.end_step is None or self.frequency is None:
            raise ValueError("Call resolved(steps_per_epoch, epochs) first.")
        if self.kind == "polynomial":
            return mot.sparsity.keras.PolynomialDecay(
                initial_sparsity=self.initial_sparsity,
                final_sparsity=self.target_sparsity,
                begin_step=self.begin_step,
                end_step=self.end_step,
                frequency=self.frequency,
            )
        return mot.sparsity.keras.ConstantSparsity(
            self.target_sparsity, begin_step=self.begin_step, end_step=self.end_step, frequency=self.frequency
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["m_by_n"] = list(self.m_by_n) if self.m_by_n else None
        return out


def _prunable(layer: Any) -> bool:
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    return bool(PruneRegistry.supports(layer)) and any(len(w.shape) >= 2 for w in layer.weights)


def excluded_layers(model: Any, exclude: list[str] | tuple[str, ...]) -> list[str]:
    """Names of the layers matching ``exclude`` (layer names or class names, e.g. ``"Dense"``).

    Raises:
        RecipeError: an entry matches no layer.
    """
    names = {layer.name for layer in model.layers}
    kinds = {type(layer).__name__ for layer in model.layers}
    unknown = [e for e in exclude if e not in names and e not in kinds]
    if unknown:
        raise RecipeError(
            f"prune.exclude names no layer of the model. Received: {unknown}. "
            f"Use layer names ({', '.join(sorted(names))}) or class names ({', '.join(sorted(kinds))})."
        )
    return [layer.name for layer in model.layers if layer.name in exclude or type(layer).__name__ in exclude]


def prune(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    target_sparsity: float = 0.5,
    fine_tune_epochs: int = 4,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    seed: int = 0,
    verbose: int | None = None,
    schedule: PruneSchedule | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    distill: Distillation | None = None,
) -> Any:
    """Prune the prunable layers (conv / dense kernels) by magnitude while fine-tuning.

    Fine-tuning keeps the weights of the epoch with the lowest validation loss
    among those at the final sparsity (the trained model was picked the same
    way, by early stopping), with the training's ``augment`` on its batches.

    Args:
        schedule: the pruning schedule; ``None`` is ``ConstantSparsity`` at
            ``target_sparsity`` from step 0, mask updated every epoch.
        exclude: layer names or class names left dense.
        augment: the training's batch augmentation (``edgeship.train.make_augmenter``), if any.
        distill: fine-tune on the distillation loss with ``model`` itself as the teacher
            (:mod:`edgeship.compress.distill`), so the pruned model learns the trained model's
            outputs, not only the labels; ``None`` trains on the labels alone.

    ``model`` itself is left unchanged.

    Returns:
        A plain tf_keras model (wrappers stripped) whose kernels hold the zeros,
        its BatchNorm statistics re-estimated on ``x_train``.
    """
    check_keras2_model(model)
    mot = tfmot()
    set_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(x_train) / batch_size))
    sched = (schedule or PruneSchedule(target_sparsity=target_sparsity)).resolved(steps_per_epoch, fine_tune_epochs)
    wrapped = _wrapped_copy(model, set(excluded_layers(model, exclude)), sched)
    trainee = wrapped if distill is None else distill_from(model, wrapped, distill)
    compile_classifier(trainee, learning_rate)
    best = _best_at_target(sched, steps_per_epoch, fine_tune_epochs)
    fine_tune(trainee, TrainingData(x_train, y_train, x_val, y_val), epochs=fine_tune_epochs, batch_size=batch_size,
              callbacks=[mot.sparsity.keras.UpdatePruningStep(), best], verbose=verbose, augment=augment, seed=seed)
    stripped = mot.sparsity.keras.strip_pruning(wrapped)
    compile_classifier(stripped, learning_rate)
    recalibrate_batchnorm(stripped, x_train, seed=seed)  # fine-tuning moved the weights under the BN averages
    return stripped


def _wrapped_copy(model: Any, skip: set[str], sched: PruneSchedule) -> Any:
    """A copy of ``model`` with every prunable layer not in ``skip`` wrapped by ``prune_low_magnitude``.

    tfmot wraps the layer objects it is given and zeroes their kernels in place: it
    works on a copy, so the caller's model is unchanged (the back-off prunes the
    same trained model several times).
    """
    _, keras = tf_modules()
    mot = tfmot()
    params: dict[str, Any] = {"pruning_schedule": sched.to_tfmot()}
    if sched.m_by_n:
        params["sparsity_m_by_n"] = tuple(sched.m_by_n)
    source = keras.models.clone_model(model)
    source.set_weights(model.get_weights())

    def wrap(layer: Any) -> Any:
        if layer.name in skip or not _prunable(layer):
            return layer
        return mot.sparsity.keras.prune_low_magnitude(layer, **params)

    return keras.models.clone_model(source, clone_function=wrap)


def _best_at_target(sched: PruneSchedule, steps_per_epoch: int, epochs: int) -> Any:
    """Keep the epoch with the lowest validation loss among those that end at the final sparsity."""
    _, keras = tf_modules()
    reach = sched.end_step if sched.kind == "polynomial" else sched.begin_step
    at_target = min(epochs - 1, int(reach) // steps_per_epoch)
    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs + 1, restore_best_weights=True,
                                         start_from_epoch=max(0, at_target))


def sparsity_report(model: Any) -> dict[str, float]:
    """Fraction of exact zeros in each layer's kernel (weights of rank >= 2)."""
    report: dict[str, float] = {}
    for layer in model.layers:
        if hasattr(layer, "layer"):  # a tfmot wrapper (QAT / pruning): report the wrapped layer
            layer = layer.layer
        kernels = [w for w in layer.get_weights() if w.ndim >= 2]
        if kernels:
            total = sum(k.size for k in kernels)
            zeros = sum(int(np.count_nonzero(k == 0)) for k in kernels)
            report[layer.name] = zeros / total
    return report


def tflite_weight_sparsity(content: bytes) -> dict[str, float]:
    """Fraction of exact zeros in each constant conv / fully-connected weight tensor of a .tflite file.

    Reads the flatbuffer (no interpreter), so it measures what ships: for int8
    weights (symmetric, zero point 0) a zero byte is a zero weight. Keys are
    TFLite tensor names; only tensors of rank 2 or 4 with stored data count.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    dtypes = {schema.TensorType.INT8: np.int8, schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16}
    report: dict[str, float] = {}
    for graph in model.subgraphs:
        for t in graph.tensors:
            buf = model.buffers[t.buffer]
            shape = list(t.shape) if t.shape is not None else []
            if buf.data is None or len(shape) not in (2, 4) or t.type not in dtypes:
                continue
            w = np.frombuffer(bytes(buf.data), dtype=dtypes[t.type])
            if w.size != int(np.prod(shape)) or w.size < 16:
                continue
            name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            report[name] = float(np.count_nonzero(w == 0)) / w.size
    return report
