"""BatchNorm statistics that match the training data.

Keras' ``BatchNormalization`` keeps exponential moving averages of each batch's
mean and variance (momentum 0.99) and uses them at inference. After a few
hundred steps they trail the weights; on a small dataset (tens of steps in
all) they are still near their initial values (mean 0, variance 1), so the
inference-mode model can sit at chance while the training-mode model is right.

Two fixes, both applied by ``train_model``:

* :func:`momentum_for_steps` sets the momentum from the steps per epoch so the
  averages follow the weights within an epoch (what validation and early
  stopping see);
* :func:`recalibrate_batchnorm` re-estimates every BatchNorm layer's moving
  mean and variance exactly, over the training inputs, in layer order, with
  the model's final weights ("precise BN", Wu & Johnson 2021, arXiv:2105.07576).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeship.core.tf import tf_modules

#: At most this many training samples feed the re-estimation (a sample of larger sets, fixed by ``seed``).
MAX_RECALIBRATION_SAMPLES = 4096
#: For a folder streamed from disk: a smaller sample, decoded into memory once (bounded, whatever the folder size).
MAX_STREAMED_RECALIBRATION_SAMPLES = 1024


def batchnorm_layers(model: Any) -> list[Any]:
    """The model's ``BatchNormalization`` layers in graph order, nested models flattened."""
    _, keras = tf_modules()
    out: list[Any] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            out.append(layer)
        elif hasattr(layer, "layers"):
            out.extend(batchnorm_layers(layer))
    return out


def momentum_for_steps(steps_per_epoch: int, default: float = 0.99) -> float:
    """``min(default, 0.1 ** (1 / steps_per_epoch))``: one epoch's steps cut an old batch's weight to 10% or less."""
    return float(min(default, 0.1 ** (1.0 / max(1, steps_per_epoch))))


def set_batchnorm_momentum(model: Any, steps_per_epoch: int) -> float | None:
    """Lower every BatchNorm layer's momentum to :func:`momentum_for_steps`; returns it (None: no BN layer).

    Call before the model is compiled and fitted (Keras reads the momentum when it traces the train step).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return None
    m = momentum_for_steps(steps_per_epoch)
    for layer in layers:
        layer.momentum = min(float(layer.momentum), m)
    return m


def _probe(keras: Any, model: Any, layer: Any) -> Any:
    """A model from ``model``'s inputs to ``layer``'s input.

    A layer of a cloned or re-wrapped Sequential model can have several inbound
    nodes (one per graph it was called in); take the one reachable from the inputs.
    """
    last: Exception | None = None
    for i in range(max(1, len(getattr(layer, "_inbound_nodes", [])))):
        try:
            return keras.Model(model.inputs, layer.get_input_at(i))
        except ValueError as exc:  # "Graph disconnected": a node of another graph
            last = exc
    raise ValueError(f"Cannot reach BatchNorm layer {layer.name!r} from the model's inputs ({last}).")


def recalibrate_batchnorm(model: Any, x: np.ndarray, *, batch_size: int = 256, seed: int = 0) -> int:
    """Set every BatchNorm layer's moving mean/variance to its input's statistics over ``x``.

    Layers are done in graph order, each with the layers before it already
    recalibrated, so every layer sees the inputs the final inference-mode model
    gives it. Statistics are over all axes but the layer's feature axis
    (population variance). Inputs are the un-augmented training inputs.

    Returns:
        How many layers were recalibrated.
    """
    tf, keras = tf_modules()
    layers = batchnorm_layers(model)
    if not layers or len(x) == 0:
        return 0
    from ._stream import is_lazy

    cap = MAX_STREAMED_RECALIBRATION_SAMPLES if is_lazy(x) else MAX_RECALIBRATION_SAMPLES
    if len(x) > cap:
        rng = np.random.default_rng(seed)
        x = x[np.sort(rng.choice(len(x), cap, replace=False))]
    if is_lazy(x):  # a streamed folder: the sample decoded once, not once per BatchNorm layer
        x = np.asarray(x)
    for layer in layers:
        probe = _probe(keras, model, layer)
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        total = total_sq = None
        count = 0
        for i in range(0, len(x), batch_size):
            # Eager calls, not predict(): a new probe per layer would retrace predict's tf.function each time.
            feats = np.asarray(probe(tf.constant(np.asarray(x[i : i + batch_size])), training=False),
                               dtype=np.float64)
            ax = [a % feats.ndim for a in axes]
            reduce = tuple(d for d in range(feats.ndim) if d not in ax)
            s1, s2 = feats.sum(axis=reduce), np.square(feats).sum(axis=reduce)
            total = s1 if total is None else total + s1
            total_sq = s2 if total_sq is None else total_sq + s2
            count += feats.size // s1.size
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        layer.moving_mean.assign(mean.astype(np.float32).reshape(layer.moving_mean.shape))
        layer.moving_variance.assign(var.astype(np.float32).reshape(layer.moving_variance.shape))
    return len(layers)
