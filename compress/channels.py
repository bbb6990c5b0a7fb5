"""Structured channel pruning: remove whole filters / units, rebuild a narrower tf_keras model.

:func:`channel_groups` finds the channels that must go together
(:mod:`edgeship.compress._channel_graph`: conv -> BatchNorm -> activation ->
next conv / dense, through Flatten (channel-last index mapping) and global
pooling; depthwise channels tied to their producer's; both inputs of ``Add``
tied; ``Concatenate`` offsets). :func:`prune_channels` ranks the groups of each
cluster (groups tied by any merge) by the L1 norm of their producers' filters
(``ranking="l1"``) or by ``|gamma|`` of the BatchNorms on them
(``ranking="bn_gamma"``), keeps the best ``keep_ratio`` of them, and rebuilds
the model with the same layer types and configs, fewer filters / units, and the
surviving weights copied. Layers the analysis cannot handle are left whole and
listed in the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from edgeship.core.errors import RecipeError
from edgeship.core.tf import check_keras2_model, tf_modules

from ._channel_graph import PRODUCERS, Graph, Unsupported, analyse

Ranking = Literal["l1", "bn_gamma"]
RANKINGS = ("l1", "bn_gamma")


@dataclass(frozen=True)
class ChannelGroup:
    """Channels removed together: ``members`` are ``(producer layer, output channel)`` pairs.

    ``cluster`` numbers the set of groups ranked against each other (the groups of
    producers tied by a merge); ``pinned`` groups reach a layer left whole or a model output.
    """

    root: int
    members: tuple[tuple[str, int], ...]
    cluster: int
    pinned: bool


@dataclass
class ChannelReport:
    """What :func:`prune_channels` did: ``(before, after)`` pairs, and what it left whole."""

    ranking: str
    keep_ratio: float
    channels: dict[str, tuple[int, int]]
    params: tuple[int, int]
    macs: tuple[int, int]
    groups: int
    prunable_groups: int
    removed_groups: int
    unsupported: list[Unsupported] = field(default_factory=list)
    #: Layers ranked by L1 although ``bn_gamma`` was asked: no BatchNorm on their channels.
    ranking_fallback: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ranking": self.ranking, "keep_ratio": self.keep_ratio,
            "channels": {k: list(v) for k, v in self.channels.items()},
            "params": list(self.params), "macs": list(self.macs), "groups": self.groups,
            "prunable_groups": self.prunable_groups, "removed_groups": self.removed_groups,
            "unsupported": [u.to_json() for u in self.unsupported], "ranking_fallback": self.ranking_fallback,
        }


def channel_groups(model: Any) -> list[ChannelGroup]:
    """Every group of producer channels of ``model`` that must be removed together, pinned ones included."""
    check_keras2_model(model)
    return _groups(analyse(model))


def _groups(g: Graph) -> list[ChannelGroup]:
    members: dict[int, list[tuple[str, int]]] = {}
    pinned: set[int] = {g.find(s) for s in g.pinned}
    producers = {layer.name for layer in g.order if type(layer).__name__ in PRODUCERS}
    for slot, owner in enumerate(g.owner):
        if owner[0] in producers or slot in g.pinned:
            members.setdefault(g.find(slot), []).append(owner)
    cluster_of = _clusters(members)
    return [ChannelGroup(root, tuple(m), cluster_of[root], root in pinned) for root, m in sorted(members.items())]


def _clusters(members: dict[int, list[tuple[str, int]]]) -> dict[int, int]:
    """Number the groups by the set of producer layers they touch (union over shared layers)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for m in members.values():
        layers = [name for name, _ in m]
        for other in layers[1:]:
            parent[find(other)] = find(layers[0])
    ids: dict[str, int] = {}
    return {root: ids.setdefault(find(m[0][0]), len(ids)) for root, m in members.items()}


def prune_channels(model: Any, keep_ratio: float = 1.0, *, ranking: Ranking = "l1",
                   remove: Iterable[tuple[str, int]] | None = None) -> tuple[Any, ChannelReport]:
    """A narrower copy of ``model`` keeping ``keep_ratio`` of each cluster's prunable channel groups.

    Args:
        keep_ratio: fraction of the prunable groups kept per cluster (at least one), in (0, 1].
        ranking: ``"l1"`` (sum of ``|w|`` of each group's filters) or ``"bn_gamma"``
            (sum of ``|gamma|`` of the BatchNorms on the group; L1 where there is none).
        remove: instead of ranking, remove exactly the groups holding these
            ``(producer layer, output channel)`` pairs.

    Returns:
        ``(narrow model, report)``; ``model`` is unchanged. With nothing removed the
        copy computes the same outputs bit for bit.
    """
    check_keras2_model(model)
    if ranking not in RANKINGS:
        raise RecipeError(f"Channel ranking must be one of {RANKINGS}. Received: {ranking!r}. Use 'l1' or 'bn_gamma'.")
    if not 0.0 < keep_ratio <= 1.0:
        raise RecipeError(f"keep_ratio must be in (0, 1]. Received: {keep_ratio}. Set prune.channel_ratio to e.g. 0.5.")
    g = analyse(model)
    groups = _groups(g)
    fallback: list[str] = []
    if remove is not None:
        drop = _named_groups(g, groups, remove)
    else:
        scores, fallback = _scores(model, g, groups, ranking)
        drop = _lowest(groups, scores, keep_ratio)
    narrow = _rebuild(model, g, drop)
    report = ChannelReport(
        ranking=ranking, keep_ratio=keep_ratio, channels=_widths(g, model, narrow),
        params=(int(model.count_params()), int(narrow.count_params())), macs=(count_macs(model), count_macs(narrow)),
        groups=len(groups), prunable_groups=sum(not gr.pinned for gr in groups), removed_groups=len(drop),
        unsupported=list(g.unsupported), ranking_fallback=fallback,
    )
    return narrow, report


def _named_groups(g: Graph, groups: list[ChannelGroup], remove: Iterable[tuple[str, int]]) -> set[int]:
    index = {owner: slot for slot, owner in enumerate(g.owner)}
    pinned = {gr.root for gr in groups if gr.pinned}
    drop: set[int] = set()
    for pair in remove:
        if tuple(pair) not in index:
            raise RecipeError(f"No producer channel {pair}. Received: {pair!r}. Name a Conv/Dense layer and channel.")
        root = g.find(index[tuple(pair)])
        if root in pinned:
            raise RecipeError(f"Channel {pair} cannot be removed: it reaches a layer left whole or a model output. "
                              "Pick a channel of a prunable group (see channel_groups()).")
        drop.add(root)
    return drop


def _lowest(groups: list[ChannelGroup], scores: dict[int, float], keep_ratio: float) -> set[int]:
    """The roots of the lowest-scored ``1 - keep_ratio`` of each cluster's prunable groups."""
    by_cluster: dict[int, list[ChannelGroup]] = {}
    for gr in groups:
        if not gr.pinned:
            by_cluster.setdefault(gr.cluster, []).append(gr)
    drop: set[int] = set()
    for members in by_cluster.values():
        keep = max(1, math.ceil(keep_ratio * len(members) - 1e-9))
        ranked = sorted(members, key=lambda gr: (scores[gr.root], gr.root))
        drop.update(gr.root for gr in ranked[: len(members) - keep])
    return drop


def _scores(model: Any, g: Graph, groups: list[ChannelGroup], ranking: str) -> tuple[dict[int, float], list[str]]:
    l1 = _l1_per_channel(model)
    gamma = _gamma_per_root(model, g) if ranking == "bn_gamma" else {}
    scores, fallback = {}, set()
    for gr in groups:
        if gr.root in gamma:
            scores[gr.root] = gamma[gr.root]
            continue
        scores[gr.root] = float(sum(l1.get(name, np.zeros(c + 1))[c] for name, c in gr.members))
        if ranking == "bn_gamma" and not gr.pinned:
            fallback.update(name for name, _ in gr.members)
    return scores, sorted(fallback)


def _l1_per_channel(model: Any) -> dict[str, np.ndarray]:
    """Per producer layer, the L1 norm of each output channel's filter."""
    out = {}
    for layer in model.layers:
        if type(layer).__name__ in PRODUCERS:
            kernel = layer.get_weights()[0]
            out[layer.name] = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return out


def _gamma_per_root(model: Any, g: Graph) -> dict[int, float]:
    scores: dict[int, float] = {}
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization" and layer.name in g.inputs and layer.scale:
            gamma = np.abs(layer.gamma.numpy())
            for root, value in zip(g.roots(g.inputs[layer.name][0]).tolist(), gamma.tolist()):
                scores[root] = scores.get(root, 0.0) + float(value)
    return scores


def _rebuild(model: Any, g: Graph, drop: set[int]) -> Any:
    """``model`` with the slots of the ``drop`` groups removed: same layer types and configs, weights copied.

    Layers left whole (``g.unsupported``) and layers the analysis never reached keep their config and weights.
    """
    _, keras = tf_modules()
    whole = {u.layer for u in g.unsupported}
    sliced = {name for name in g.inputs if name not in whole}

    def keep(slots: np.ndarray) -> np.ndarray:
        return np.array([r not in drop for r in g.roots(slots).tolist()], dtype=bool)

    def clone(layer: Any) -> Any:
        cfg = layer.get_config()
        if type(layer).__name__ in PRODUCERS and layer.name in sliced:
            cfg["filters" if "filters" in cfg else "units"] = int(keep(g.outputs[layer.name]).sum())
        return layer.__class__.from_config(cfg)

    narrow = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name in sliced:
            ins, outs = keep(g.inputs[layer.name][0]), keep(g.outputs[layer.name])
            weights = _slice(type(layer).__name__, weights, ins, outs)
        narrow.get_layer(layer.name).set_weights(weights)
    return narrow


def _slice(kind: str, weights: list[np.ndarray], ins: np.ndarray, outs: np.ndarray) -> list[np.ndarray]:
    """One layer's surviving weights, given which input and output channels stay."""
    if kind in PRODUCERS:  # kernel (..., Cin, Cout), bias (Cout,)
        kernel = weights[0][..., ins, :][..., outs]
        return [kernel, *(w[outs] for w in weights[1:])]
    if kind == "DepthwiseConv2D":  # depthwise kernel (kh, kw, C, 1), bias (C,)
        return [weights[0][:, :, ins, :], *(w[ins] for w in weights[1:])]
    if kind == "BatchNormalization":  # gamma, beta, moving mean, moving variance: (C,)
        return [w[ins] for w in weights]
    return weights


def _widths(g: Graph, before: Any, after: Any) -> dict[str, tuple[int, int]]:
    return {layer.name: (_out_width(layer), _out_width(after.get_layer(layer.name)))
            for layer in before.layers if type(layer).__name__ in PRODUCERS}


def _out_width(layer: Any) -> int:
    return int(layer.get_weights()[0].shape[-1])


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one inference: Conv / Dense / DepthwiseConv kernels times their output positions."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in PRODUCERS or kind == "DepthwiseConv2D":
            kernel = layer.get_weights()[0]
            positions = int(np.prod(layer.output_shape[1:-1])) if len(layer.output_shape) > 2 else 1
            total += positions * int(kernel.size)
    return total
