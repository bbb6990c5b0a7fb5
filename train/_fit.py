"""The training loop: Adam with a learning-rate schedule, L2, early stopping, seeded.

``train_model`` builds the model inside the chosen ``tf.distribute`` strategy
and dtype policy, trains it, and hands back a fresh float32 clone built outside
any strategy scope with the trained weights: tfmot cannot wrap a model whose
variables were made inside a strategy scope (``MirroredVariable``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeship.core.errors import RecipeError
from edgeship.core.metrics import top1_accuracy
from edgeship.core.tf import tf_modules

from ._batchnorm import recalibrate_batchnorm, set_batchnorm_momentum
from ._datasets import TrainingData
from ._defaults import TrainingPlan
from ._strategy import mixed_precision_policy, select_strategy, visible_devices
from ._weights import set_trainable

Schedule = Literal["constant", "exponential", "cosine"]


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow the Keras way."""
    _, keras = tf_modules()
    keras.utils.set_random_seed(int(seed))


def keras_verbosity() -> int:
    """Keras' own epoch lines only where edgeship's stage display does not fold epochs in (or with ``-v``):
    progress bars in a terminal, one line per epoch in CI logs."""
    from edgeship.core import progress as _progress

    if not _progress.keras_lines():
        return 0
    return 1 if sys.stderr.isatty() else 2


def _stage_epochs() -> Any:
    """A Keras callback that reports each finished epoch to the running stage's display line."""
    from edgeship.core import progress as _progress

    _, keras = tf_modules()

    class StageEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            _progress.epoch(epoch + 1, self.params.get("epochs"), logs or {})

    return StageEpochs()


def _epoch_hook(fn: Callable[[int, dict[str, float]], None]) -> Any:
    """A Keras callback handing each finished epoch's logs to ``fn``."""
    _, keras = tf_modules()

    class EpochHook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            fn(epoch, {k: float(v) for k, v in (logs or {}).items()})

    return EpochHook()


def learning_rate_schedule(
    schedule: str, learning_rate: float, *, steps_per_epoch: int, epochs: int, decay_rate: float = 0.9
) -> Any:
    """A float (``constant``) or a Keras schedule stepped per batch.

    ``exponential``: ``lr * decay_rate ** (step / steps_per_epoch)`` (smooth, per epoch);
    ``cosine``: cosine decay from ``lr`` to 0 over ``epochs * steps_per_epoch`` steps.
    """
    _, keras = tf_modules()
    if schedule == "constant":
        return float(learning_rate)
    if schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            float(learning_rate), decay_steps=max(1, steps_per_epoch), decay_rate=float(decay_rate)
        )
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            float(learning_rate), decay_steps=max(1, steps_per_epoch * epochs)
        )
    raise RecipeError(
        f"train.lr_schedule must be 'constant', 'exponential' or 'cosine'. Received: {schedule!r}. Fix the recipe."
    )


CLASSIFIER_LOSS = "sparse_categorical_crossentropy"


def compile_classifier(model: Any, learning_rate: Any, loss: str = CLASSIFIER_LOSS) -> None:
    """Adam + sparse categorical cross-entropy + accuracy; ``learning_rate`` may be a schedule.

    ``loss="mse"`` compiles a reconstruction model (an autoencoder: targets are the inputs), without accuracy.
    """
    _, keras = tf_modules()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        metrics=["accuracy"] if loss == CLASSIFIER_LOSS else [],
    )


def add_l2(model: Any, l2: float) -> None:
    """Add ``l2 * sum(w**2)`` for every conv/dense/depthwise/embedding kernel to the model's losses."""
    if l2 <= 0:
        return
    tf, _ = tf_modules()
    for layer in _all_layers(model):
        for attr in ("kernel", "depthwise_kernel", "embeddings"):
            w = getattr(layer, attr, None)
            if w is not None:
                model.add_loss(lambda w=w: float(l2) * tf.reduce_sum(tf.square(tf.cast(w, tf.float32))))


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if hasattr(layer, "layers") else [layer])
    return out


@dataclass(frozen=True)
class TrainOptions:
    """How :func:`train_model` trains, beyond the :class:`~edgeship.train.TrainingPlan`'s numbers.

    Attributes:
        lr_schedule: ``constant`` | ``exponential`` | ``cosine`` (:func:`learning_rate_schedule`),
            with ``lr_decay_rate`` for ``exponential``.
        l2: Weight of the L2 penalty on every kernel (0: none).
        seed: Seeds Python, numpy and TensorFlow before building and again before the first batch.
        strategy: ``auto`` | ``one_device`` | ``mirrored`` | ``multi_worker`` (see ``select_strategy``).
        mixed_precision: ``auto`` (mixed_float16 when a GPU is visible) | ``off`` | ``mixed_float16``.
        augment: Optional ``(x_batch, y_batch) -> (x_batch, y_batch)`` tf function, applied
            to training batches only.
        checkpoint_path: Where to save the best model (lowest ``val_loss``), ``.keras`` or ``.h5``.
        log_dir: TensorBoard log folder.
        verbose: Keras' verbosity (``None``: :func:`keras_verbosity`).
        pretrained: Called with the fresh model (inside the scope) to load pretrained
            weights; returns the names of the loaded layers (the base). The plan's ``head_epochs``
            then first train the head with the base frozen (BatchNorm in it stays in inference
            mode), then the whole model at ``learning_rate / 10``, the usual Keras transfer-learning recipe.
        recalibrate: Re-estimate BatchNorm statistics on ``x_train`` after training
            (:func:`~edgeship.train.recalibrate_batchnorm`).
        loss: ``"sparse_categorical_crossentropy"`` (a classifier) or ``"mse"`` (a
            reconstruction model: pass the inputs as ``y_train`` / ``y_val``).
        on_epoch: Called after each epoch of the main training run with the 0-based epoch and
            Keras' logs (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``); an exception it
            raises ends training and propagates (``edgeship search`` prunes a trial this way).
    """

    lr_schedule: str = "constant"
    lr_decay_rate: float = 0.9
    l2: float = 0.0
    seed: int = 0
    strategy: str = "auto"
    mixed_precision: str = "auto"
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None
    checkpoint_path: str | Path | None = None
    log_dir: str | Path | None = None
    verbose: int | None = None
    pretrained: Callable[[Any], list[str]] | None = None
    recalibrate: bool = True
    loss: str = CLASSIFIER_LOSS
    on_epoch: Callable[[int, dict[str, float]], None] | None = None


def train_model(
    build_fn: Callable[[], Any], data: TrainingData, plan: TrainingPlan, options: TrainOptions | None = None
) -> tuple[Any, dict[str, list[float]]]:
    """Build a classifier with ``build_fn`` and train it on ``data`` as ``plan`` says; returns ``(model, history)``.

    ``build_fn`` makes a fresh, uncompiled tf_keras model (called inside the strategy scope).
    From ``plan``: ``epochs``, ``batch_size``, ``learning_rate``, ``early_stopping_patience``,
    ``min_epochs`` (early stopping cannot end the run before this epoch, Keras ``start_from_epoch``)
    and ``head_epochs`` (with ``options.pretrained``). The rest is in ``options``
    (:class:`TrainOptions`; ``None``: the defaults).

    BatchNorm momentum follows the steps per epoch (:func:`~edgeship.train.set_batchnorm_momentum`).
    Early stopping watches ``val_loss`` from ``min_epochs`` on and restores the best
    weights. The returned model is float32, built outside any strategy scope, and compiled.
    """
    tf, keras = tf_modules()
    o = options or TrainOptions()
    dist = select_strategy(o.strategy)  # first: a multi-worker strategy must exist before devices are listed
    set_seed(o.seed)
    gpus, _ = visible_devices()
    policy = mixed_precision_policy(o.mixed_precision, len(gpus))
    default_strategy = dist is tf.distribute.get_strategy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model, final_lr, hist = _train_in_scope(build_fn, dist, data, plan, o)
    except tf.errors.OpError as exc:
        if o.strategy != "multi_worker":
            raise
        from ._cluster import cluster_failure, worker_role

        raise cluster_failure(exc, worker_role()) from None  # a peer died or timed out: typed, not a hang
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if not default_strategy or policy != "float32":
        model = _plain_clone(build_fn, model, final_lr, o.loss)
    if o.recalibrate:
        recalibrate_batchnorm(model, data.x_train, seed=o.seed)
    return model, hist


def _train_in_scope(build_fn: Callable[[], Any], dist: Any, data: TrainingData, plan: TrainingPlan,
                    o: TrainOptions) -> tuple[Any, float, dict[str, list[float]]]:
    """Build inside ``dist``'s scope, train the head first when pretrained, then the whole model.

    Returns the model, the learning rate of its last phase and the main run's history.
    """
    steps = max(1, math.ceil(len(data.x_train) / plan.batch_size))
    verbosity = keras_verbosity() if o.verbose is None else o.verbose

    def run(model: Any, n_epochs: int, callbacks: list[Any]) -> dict[str, list[float]]:
        return fine_tune(model, data, epochs=n_epochs, batch_size=plan.batch_size, callbacks=callbacks,
                         verbose=verbosity, augment=o.augment, seed=o.seed)

    base: list[str] = []
    final_lr = plan.learning_rate
    with dist.scope():
        model = build_fn()
        if o.pretrained is not None:
            base = list(o.pretrained(model))
        set_batchnorm_momentum(model, steps)
        add_l2(model, o.l2)
    if base and plan.head_epochs > 0:
        _train_head(model, base, dist, plan.learning_rate, o.seed, lambda: run(model, plan.head_epochs, []), o.loss)
        final_lr = plan.learning_rate / 10
    with dist.scope():
        compile_classifier(model, learning_rate_schedule(o.lr_schedule, final_lr, steps_per_epoch=steps,
                                                         epochs=plan.epochs, decay_rate=o.lr_decay_rate), o.loss)
    callbacks = _training_callbacks(plan.early_stopping_patience, plan.min_epochs, o.checkpoint_path, o.log_dir)
    if o.on_epoch is not None:
        callbacks.append(_epoch_hook(o.on_epoch))
    set_seed(o.seed)  # same RNG state at the first batch whatever building the model consumed
    return model, final_lr, run(model, plan.epochs, callbacks)


def _train_head(model: Any, base: list[str], dist: Any, learning_rate: float, seed: int, run: Callable[[], Any],
                loss: str = CLASSIFIER_LOSS) -> None:
    """Transfer learning's first phase: the pretrained ``base`` layers frozen while the head trains."""
    set_trainable(model, base, False)
    with dist.scope():
        compile_classifier(model, learning_rate, loss)
    set_seed(seed)
    run()
    set_trainable(model, base, True)


def _plain_clone(build_fn: Callable[[], Any], model: Any, learning_rate: float, loss: str = CLASSIFIER_LOSS) -> Any:
    """A fresh float32 clone outside any strategy scope: tfmot and the converters get plain variables."""
    clone = build_fn()
    clone.set_weights(model.get_weights())
    compile_classifier(clone, learning_rate, loss)
    return clone


def _training_callbacks(patience: int, min_epochs: int, checkpoint_path: str | Path | None,
                        log_dir: str | Path | None) -> list[Any]:
    """Early stopping on ``val_loss`` (best weights restored), and the optional checkpoint and TensorBoard logs."""
    _, keras = tf_modules()
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True, start_from_epoch=int(min_epochs)
        )
    ]
    if checkpoint_path is not None:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor="val_loss", save_best_only=True))
    if log_dir is not None:
        from edgeship.core.tf import require

        require("tensorboard", "TensorBoard logs (train.tensorboard = true)")
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=0, write_graph=False))
    return callbacks


def fit(
    model: Any,
    data: TrainingData,
    *,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    patience: int = 6,
    seed: int = 0,
    verbose: int | None = None,
) -> dict[str, list[float]]:
    """Train an existing classifier in place on ``data`` with Adam; early stopping restores the best weights.

    The simple path (no strategy, float32); BatchNorm statistics are
    re-estimated on ``data.x_train`` at the end. Returns the Keras history dict
    (``loss``, ``val_loss``, ``accuracy``, ...). See :func:`train_model` for
    schedules, L2, strategies, mixed precision, augmentation and checkpoints.
    """
    _, keras = tf_modules()
    set_seed(seed)
    compile_classifier(model, learning_rate)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = fine_tune(model, data, epochs=epochs, batch_size=batch_size, callbacks=[stop], verbose=verbose)
    recalibrate_batchnorm(model, data.x_train, seed=seed)
    return history


def fine_tune(
    model: Any,
    data: TrainingData,
    *,
    epochs: int,
    batch_size: int = 32,
    callbacks: list[Any] | None = None,
    verbose: int | None = None,
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Fit a compiled ``model`` on ``data``'s training split, shuffled each epoch; returns the Keras history dict.

    The one fit loop behind :func:`fit`, :func:`train_model`, pruning and QAT (which pass
    their tfmot callbacks, e.g. ``UpdatePruningStep``). ``augment`` (a
    ``(x_batch, y_batch)`` tf function) transforms training batches, shuffled
    with ``seed``; validation batches are never augmented. Compile first
    (:func:`compile_classifier`); it does not seed: callers do.
    """
    from edgeship.core import progress as _progress

    from ._stream import is_lazy

    x_train, y_train, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    verbosity = keras_verbosity() if verbose is None else verbose
    callbacks = list(callbacks or [])
    if verbosity == 0 and _progress.in_stage():
        callbacks.append(_stage_epochs())  # epochs fold into the stage's line; reads logs, changes nothing
    validation = x_val.dataset(y_val, batch_size=batch_size) if is_lazy(x_val) else (x_val, y_val)
    if is_lazy(x_train):  # an image folder streamed from disk (train._stream): tf.data decodes it batch by batch
        from ._stream import _read_errors

        batches = x_train.dataset(y_train, batch_size=batch_size, shuffle=True, seed=seed, augment=augment)
        history = _read_errors(lambda: model.fit(batches, validation_data=validation, epochs=epochs,
                                                 callbacks=callbacks, verbose=verbosity), x_train.paths)
        return _history(history)
    if augment is None:
        history = model.fit(
            x_train, y_train, validation_data=validation, epochs=epochs, batch_size=batch_size, shuffle=True,
            callbacks=callbacks, verbose=verbosity,
        )
        return _history(history)
    tf, _ = tf_modules()
    batches = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(augment, num_parallel_calls=1)  # one call: augmentation stays seeded
        .prefetch(2)
    )
    history = model.fit(batches, validation_data=validation, epochs=epochs, callbacks=callbacks,
                        verbose=verbosity)
    return _history(history)


def _history(history: Any) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a Keras classifier (inference mode), via scikit-learn.

    Eager calls in batches of 256 rather than ``predict``: the budget's back-off
    evaluates several fresh models, and each would retrace ``predict``'s
    tf.function (and TF would log a retracing warning for it).
    """

    from ._stream import chunks

    tf, _ = tf_modules()
    probs = np.concatenate(
        [np.asarray(model(tf.constant(part), training=False)) for part in chunks(x, 256)]
    ) if len(x) else np.zeros((0, 1))
    return top1_accuracy(probs.reshape(len(x), -1), y)
