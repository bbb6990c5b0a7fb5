"""Fold BatchNorm into the Dense / Conv layer before it, so the converters see one layer.

A ``BatchNormalization`` that directly follows a ``Dense``, ``Conv1D``,
``Conv2D`` or ``DepthwiseConv2D`` with no activation between (the layer's
``activation`` is linear, and the BatchNorm is the only consumer of its
output) computes, in inference mode, per output channel ``c``::

    y = gamma_c * (z - mean_c) / sqrt(var_c + eps) + beta_c,   z = x W + b

which is the same layer with ``W' = W * s`` and ``b' = (b - mean) * s + beta``,
``s = gamma / sqrt(var + eps)``. :func:`fold_batchnorm` returns a new model
without those BatchNorm layers (the folded layer takes ``use_bias = True``).
The TFLite converter folds Conv2D + BatchNorm itself, but not Dense +
BatchNorm: each of those leaves a MUL and an ADD (with their own quantization
parameters) in the int8 graph; tf2onnx leaves a BatchNormalization node
(or Mul + Add) in ONNX.

Scaling is per output channel, so a kernel zero stays zero: pruned sparsity
survives folding. A BatchNorm after an activation (``conv -> ReLU -> BN``) cannot
be folded into the conv and is left as it is (:attr:`FoldReport.unfolded`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeship.core.tf import tf_modules

#: Layer classes whose output channels a following BatchNorm can be folded into.
FOLDABLE = ("Dense", "Conv1D", "Conv2D", "DepthwiseConv2D")


@dataclass(frozen=True)
class FoldReport:
    """What :func:`fold_batchnorm` did: ``folded`` maps each removed BatchNorm to the layer it went into."""

    folded: dict[str, str] = field(default_factory=dict)
    unfolded: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"folded": dict(self.folded), "unfolded": list(self.unfolded)}


def _is_linear(cfg: dict[str, Any]) -> bool:
    act = cfg.get("activation", "linear")
    return act in (None, "linear")


def _fold_pairs(layers: list[dict[str, Any]], outputs: list[Any], sequential: bool) -> tuple[dict[str, str], list[str]]:
    """``{bn_name: producer_name}`` for every foldable pair in a model config's layer list, and the BN names left."""
    by_name = {entry["config"]["name"]: entry for entry in layers}
    consumers: dict[str, int] = {}
    if not sequential:
        for entry in layers:
            for node in entry.get("inbound_nodes", []):
                for inbound in _node_inputs(node):
                    consumers[inbound[0]] = consumers.get(inbound[0], 0) + 1
        for out in outputs:
            consumers[out[0]] = consumers.get(out[0], 0) + 1
    pairs: dict[str, str] = {}
    left: list[str] = []
    for i, entry in enumerate(layers):
        if entry["class_name"] != "BatchNormalization":
            continue
        name = entry["config"]["name"]
        if sequential:
            prev = layers[i - 1] if i > 0 else None
        else:
            nodes = entry.get("inbound_nodes", [])
            ins = _node_inputs(nodes[0]) if len(nodes) == 1 else []
            prev = by_name.get(ins[0][0]) if len(ins) == 1 else None
            if prev is not None and (consumers.get(prev["config"]["name"], 0) != 1
                                     or len(prev.get("inbound_nodes", [])) != 1):
                prev = None  # the producer's output goes elsewhere too, or the layer is shared
        axis = entry["config"].get("axis", -1)
        axis_ok = axis in (-1, [-1]) or (isinstance(axis, list) and len(axis) == 1 and axis[0] == -1)
        if prev is not None and prev["class_name"] in FOLDABLE and _is_linear(prev["config"]) and (
            axis_ok or _last_axis(entry, axis)
        ):
            pairs[name] = prev["config"]["name"]
        else:
            left.append(name)
    return pairs, left


def _last_axis(entry: dict[str, Any], axis: Any) -> bool:
    """Whether a positive BatchNorm axis is the last one of its input (known from the built shape)."""
    shape = entry.get("build_config", {}).get("input_shape")
    ax = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    return isinstance(ax, int) and shape is not None and ax == len(shape) - 1


def _node_inputs(node: Any) -> list[list[Any]]:
    """The ``[layer_name, node_index, tensor_index, ...]`` entries of one inbound node (tf_keras config layout)."""
    if isinstance(node, dict):  # Keras 3 layout: not produced by tf_keras
        return []
    return [list(x) for x in node if isinstance(x, (list, tuple)) and x and isinstance(x[0], str)]


def _scale_shift(bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``: BN(z) = z * s + t."""
    gamma = bn.gamma.numpy() if bn.gamma is not None else np.ones(bn.moving_mean.shape, np.float32)
    beta = bn.beta.numpy() if bn.beta is not None else np.zeros(bn.moving_mean.shape, np.float32)
    mean = bn.moving_mean.numpy().astype(np.float64)
    var = bn.moving_variance.numpy().astype(np.float64)
    s = gamma.astype(np.float64) / np.sqrt(var + float(bn.epsilon))
    return s, beta.astype(np.float64) - mean * s


def _folded_weights(layer: Any, bn: Any) -> list[np.ndarray]:
    """``[kernel', bias']`` of ``layer`` with ``bn`` folded in (float64 arithmetic, stored float32)."""
    s, t = _scale_shift(bn)
    kernel = layer.get_weights()[0].astype(np.float64)
    bias = layer.bias.numpy().astype(np.float64) if getattr(layer, "use_bias", False) else np.zeros(s.shape)
    if type(layer).__name__ == "DepthwiseConv2D":  # kernel (kh, kw, in, mult): output channel = in * mult + m
        kernel = kernel * s.reshape(kernel.shape[2], kernel.shape[3])
    else:  # Dense (in, out), Conv (..., in, out): the output channel is the last axis
        kernel = kernel * s
    return [kernel.astype(np.float32), (bias * s + t).astype(np.float32)]


def fold_batchnorm(model: Any) -> tuple[Any, FoldReport]:
    """A new tf_keras model with every foldable BatchNorm folded into the layer before it.

    Works on Sequential and Functional tf_keras models (nested models are left
    as they are). Layer names are kept; the folded layers get
    ``use_bias = True``. Without a foldable pair the model itself is returned.
    The input model is not changed.

    Returns:
        ``(model, report)``: the folded model (inference only: it is not compiled)
        and which BatchNorm went into which layer.
    """
    _, keras = tf_modules()
    config = copy.deepcopy(model.get_config())
    sequential = isinstance(model, keras.Sequential)
    layers = config["layers"]
    pairs, left = _fold_pairs(layers, [] if sequential else config.get("output_layers", []), sequential)
    if not pairs:
        return model, FoldReport({}, tuple(left))
    for entry in layers:
        if entry["config"]["name"] in pairs.values():
            entry["config"]["use_bias"] = True
    kept = [e for e in layers if e["config"]["name"] not in pairs]
    if not sequential:
        def redirect(ref: list[Any]) -> list[Any]:
            return [pairs.get(ref[0], ref[0]), *ref[1:]] if ref[0] in pairs else ref

        for entry in kept:
            entry["inbound_nodes"] = [[redirect(list(x)) for x in node] for node in entry.get("inbound_nodes", [])]
        config["output_layers"] = [redirect(list(x)) for x in config.get("output_layers", [])]
    config["layers"] = kept
    custom = {type(layer).__name__: type(layer) for layer in model.layers}
    cls = keras.Sequential if sequential else keras.Model
    folded = cls.from_config(config, custom_objects=custom)
    folded_into = {v: k for k, v in pairs.items()}
    for layer in folded.layers:
        source = model.get_layer(layer.name)
        if layer.name in folded_into:
            layer.set_weights(_folded_weights(source, model.get_layer(folded_into[layer.name])))
        elif source.weights:
            layer.set_weights(source.get_weights())
    return folded, FoldReport(dict(pairs), tuple(left))
