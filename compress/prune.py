"""Magnitude pruning with tfmot: ``prune_low_magnitude``, fine-tune, ``strip_pruning``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeship._tf import check_keras2_model, tf_modules, tfmot
from edgeship.train import compile_classifier, set_seed
from edgeship.train._fit import keras_verbosity


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
) -> Any:
    """Prune every prunable layer to ``target_sparsity`` (unstructured, by magnitude).

    The schedule is tfmot ``ConstantSparsity`` applied from step 0 and re-applied
    every epoch while the model fine-tunes; the wrappers are stripped afterwards,
    so the result is a plain tf_keras model whose kernels hold the zeros.
    """
    check_keras2_model(model)
    _, keras = tf_modules()
    mot = tfmot()
    set_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(x_train) / batch_size))
    schedule = mot.sparsity.keras.ConstantSparsity(target_sparsity, begin_step=0, frequency=steps_per_epoch)
    wrapped = mot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    compile_classifier(wrapped, learning_rate)
    wrapped.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=fine_tune_epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[mot.sparsity.keras.UpdatePruningStep()],
        verbose=keras_verbosity() if verbose is None else verbose,
    )
    stripped = mot.sparsity.keras.strip_pruning(wrapped)
    compile_classifier(stripped, learning_rate)
    return stripped


def sparsity_report(model: Any) -> dict[str, float]:
    """Fraction of exact zeros in each layer's kernel (weights of rank >= 2)."""
    report: dict[str, float] = {}
    for layer in model.layers:
        kernels = [w for w in layer.get_weights() if w.ndim >= 2]
        if kernels:
            total = sum(k.size for k in kernels)
            zeros = sum(int(np.count_nonzero(k == 0)) for k in kernels)
            report[layer.name] = zeros / total
    return report
