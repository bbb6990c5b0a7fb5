"""The training loop: Adam, early stopping on validation loss, seeded."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from edgeship._tf import tf_modules


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow the Keras way."""
    _, keras = tf_modules()
    keras.utils.set_random_seed(int(seed))


def keras_verbosity() -> int:
    # Progress bars in a terminal; one line per epoch in CI logs.
    return 1 if sys.stderr.isatty() else 2


def compile_classifier(model: Any, learning_rate: float) -> None:
    _, keras = tf_modules()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def fit(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    patience: int = 6,
    seed: int = 0,
    verbose: int | None = None,
) -> dict[str, list[float]]:
    """Train a classifier with Adam; early stopping restores the best weights.

    Returns the Keras history dict (``loss``, ``val_loss``, ``accuracy``, ...).
    """
    _, keras = tf_modules()
    set_seed(seed)
    compile_classifier(model, learning_rate)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[stop],
        verbose=keras_verbosity() if verbose is None else verbose,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a Keras classifier, via scikit-learn."""
    from sklearn.metrics import accuracy_score

    probs = model.predict(x, verbose=0, batch_size=256)
    return float(accuracy_score(y, np.argmax(probs, axis=-1)))
