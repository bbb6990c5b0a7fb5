"""Channel dependency analysis for tf_keras Sequential and Functional models (channels-last).

Every output channel of a Conv1D/Conv2D (``groups == 1``) or Dense layer is a
*slot*. Each tensor of the graph carries, per index of its last axis, the slot
it comes from: pass-through layers (BatchNorm, activations, dropout, pooling,
padding, depthwise conv with ``depth_multiplier == 1``) keep the map, Flatten
tiles it over the spatial positions (channel-last flatten: index ``k`` holds
channel ``k % C``), GlobalAveragePooling drops the spatial axes, ``Concatenate``
on the last axis joins the maps at their offsets, and an element-wise merge
(``Add``, ``Multiply``, ...) ties index ``i`` of every input together
(union-find). Tied slots form a *group*: its channels are kept or removed
together.

A layer the analysis does not know is left whole: every slot reaching it is
pinned (never removed), its outputs are new pinned slots, and it is reported.
So are the model's outputs (their width is the model's contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Layers that keep the channel map of their single input and hold no per-channel weights.
PASS_THROUGH = frozenset({
    "Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
    "AveragePooling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
    "ActivityRegularization",
})
#: Layers that reduce the spatial axes away and keep the channel map.
GLOBAL_POOL = frozenset({"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"})
#: Element-wise merges: index i of every input is the same channel.
MERGE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
#: Layers whose output channels are new slots (their filters / units can be removed).
PRODUCERS = frozenset({"Conv1D", "Conv2D", "Dense"})
#: Activations that mix the channels: removing one changes the others.
MIXING_ACTIVATIONS = frozenset({"softmax", "log_softmax"})


@dataclass(frozen=True)
class Unsupported:
    """A layer the analysis left whole, and why."""

    layer: str
    kind: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"layer": self.layer, "kind": self.kind, "reason": self.reason}


@dataclass
class Graph:
    """The analysed model: per-layer input/output slot maps, slot owners, ties and pins."""

    inputs: dict[str, list[np.ndarray]] = field(default_factory=dict)  # layer name -> slot map of each input
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # layer name -> slot map of its output
    owner: list[tuple[str, int]] = field(default_factory=list)  # slot -> (producer layer, output channel)
    parent: list[int] = field(default_factory=list)  # union-find over slots
    pinned: set[int] = field(default_factory=set)
    unsupported: list[Unsupported] = field(default_factory=list)
    order: list[Any] = field(default_factory=list)  # the layers in graph order

    def new_slots(self, layer: str, n: int, pinned: bool = False) -> np.ndarray:
        start = len(self.owner)
        self.owner.extend((layer, i) for i in range(n))
        self.parent.extend(range(start, start + n))
        if pinned:
            self.pinned.update(range(start, start + n))
        return np.arange(start, start + n)

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def tie(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(a.tolist(), b.tolist()):
            ra, rb = self.find(x), self.find(y)
            if ra != rb:
                self.parent[rb] = ra

    def pin(self, slots: np.ndarray) -> None:
        self.pinned.update(int(s) for s in np.unique(slots))

    def roots(self, slots: np.ndarray) -> np.ndarray:
        return np.array([self.find(int(s)) for s in slots], dtype=np.int64)


def _wiring(model: Any) -> list[tuple[Any, list[tuple[str, int]]]]:
    """``(layer, [(inbound layer name, tensor index), ...])`` in topological order; inputs have no inbound."""
    config = model.get_config()
    by_name = {layer.name: layer for layer in model.layers}
    if not any("inbound_nodes" in c for c in config["layers"]):  # Sequential: a chain
        chain: list[tuple[Any, list[tuple[str, int]]]] = []
        prev = "__input__"
        for layer in model.layers:
            chain.append((layer, [(prev, 0)]))
            prev = layer.name
        return chain
    wired = []
    for c in config["layers"]:
        nodes = c.get("inbound_nodes") or []
        if len(nodes) > 1:
            wired.append((by_name[c["config"]["name"]], [("__shared__", len(nodes))]))
            continue
        inbound = [(t[0], int(t[2])) for t in _node_tensors(nodes[0])] if nodes else []
        layer = by_name.get(c["config"]["name"]) or model.get_layer(c["name"])
        wired.append((layer, inbound))
    return _toposort(wired)


def _node_tensors(node: Any) -> list[list[Any]]:
    """``[layer name, node index, tensor index]`` of each tensor a call node takes."""
    if isinstance(node, dict):  # Keras 3-style serialisation: {"args": [...], "kwargs": {...}}
        found: list[list[Any]] = []
        _keras_history(node.get("args", []), found)
        return found
    return [t for t in node if isinstance(t, (list, tuple))]


def _keras_history(value: Any, found: list[list[Any]]) -> None:
    if isinstance(value, dict):
        history = value.get("config", {}).get("keras_history") if value.get("class_name") == "__keras_tensor__" else None
        if history:
            found.append(list(history))
            return
        for v in value.values():
            _keras_history(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _keras_history(v, found)


def _toposort(wired: list[tuple[Any, list[tuple[str, int]]]]) -> list[tuple[Any, list[tuple[str, int]]]]:
    done: set[str] = set()
    out: list[tuple[Any, list[tuple[str, int]]]] = []
    pending = list(wired)
    while pending:
        rest = [w for w in pending if not all(n in done or n.startswith("__") for n, _ in w[1])]
        ready = [w for w in pending if w not in rest]
        if not ready:
            raise ValueError(f"cannot order the layers: {[w[0].name for w in rest]}")
        for w in ready:
            out.append(w)
            done.add(w[0].name)
        pending = rest
    return out


def _width(shape: Any) -> int:
    shape = shape[0] if isinstance(shape, list) else shape
    return int(shape[-1])


def analyse(model: Any) -> Graph:
    """The slot maps of every layer of ``model``, the ties between slots, and what is pinned."""
    g = Graph()
    tensors: dict[tuple[str, int], np.ndarray] = {}
    for layer, inbound in _wiring(model):
        g.order.append(layer)
        kind = type(layer).__name__
        if kind == "InputLayer" or (inbound and inbound[0][0] == "__input__"):
            shape = layer.input_shape if kind != "InputLayer" else layer.output_shape
            tensors[("__input__", 0)] = g.new_slots("__input__", _width(shape), pinned=True)
            if kind == "InputLayer":
                tensors[(layer.name, 0)] = tensors[("__input__", 0)]
                continue
        if inbound and inbound[0][0] == "__shared__":
            out = _opaque(g, layer, [], "shared layer (called more than once)")
        else:
            ins = [tensors[key] for key in inbound]
            g.inputs[layer.name] = ins
            out = _step(g, layer, kind, ins)
        g.outputs[layer.name] = out
        tensors[(layer.name, 0)] = out
    for name in model.output_names:
        g.pin(g.outputs[name])
    return g


def _step(g: Graph, layer: Any, kind: str, ins: list[np.ndarray]) -> np.ndarray:
    """The output slot map of one layer (ties and pins recorded in ``g``)."""
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last":
        return _opaque(g, layer, ins, "channels_first data format")
    if kind in PRODUCERS and (kind == "Dense" or cfg.get("groups", 1) == 1):
        out = g.new_slots(layer.name, int(cfg.get("filters") or cfg["units"]))
        if _activation(cfg) in MIXING_ACTIVATIONS:  # a softmax over the channels: its width is its contract
            g.pin(out)
        return out
    if kind == "Activation" and _activation(cfg) in MIXING_ACTIVATIONS:
        return _opaque(g, layer, ins, f"activation {_activation(cfg)} mixes the channels")
    if kind == "DepthwiseConv2D":
        if cfg.get("depth_multiplier", 1) != 1:
            return _opaque(g, layer, ins, "depth_multiplier > 1")
        return ins[0]
    if kind == "BatchNormalization":
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        rank = len(layer.input_shape)
        if not isinstance(axis, int) or axis % rank != rank - 1:
            return _opaque(g, layer, ins, f"BatchNormalization on axis {axis}, not the channel (last) axis")
        return ins[0]
    if kind in PASS_THROUGH or kind in GLOBAL_POOL:
        return ins[0]
    if kind == "Flatten":
        spatial = int(np.prod(layer.input_shape[1:-1])) if len(layer.input_shape) > 2 else 1
        return np.tile(ins[0], spatial)
    if kind == "Concatenate":
        rank = len(layer.output_shape)
        if cfg.get("axis", -1) % rank != rank - 1:
            return _opaque(g, layer, ins, "Concatenate on an axis other than the last")
        return np.concatenate(ins)
    if kind in MERGE:
        if len({len(s) for s in ins}) != 1:
            return _opaque(g, layer, ins, "merge of inputs with different widths (broadcast)")
        for other in ins[1:]:
            g.tie(ins[0], other)
        return ins[0]
    return _opaque(g, layer, ins, "layer type not handled by the channel analysis")


def _activation(cfg: dict[str, Any]) -> str:
    act = cfg.get("activation")
    return str(act.get("config", {}).get("name", act.get("class_name", "")) if isinstance(act, dict) else act)


def _opaque(g: Graph, layer: Any, ins: list[np.ndarray], reason: str) -> np.ndarray:
    """Leave ``layer`` whole: pin what reaches it, and give it new pinned output slots."""
    for s in ins:
        g.pin(s)
    g.unsupported.append(Unsupported(layer.name, type(layer).__name__, reason))
    return g.new_slots(layer.name, _width(layer.output_shape), pinned=True)
