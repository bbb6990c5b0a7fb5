"""Transfer learning: pretrained weights into a fresh zoo model, and freezing its base.

:func:`load_pretrained` copies weights into a model built by
:func:`~edgeship.train.create_model`, from a file (``model.save_weights`` or
``model.save`` output) or from Keras' ImageNet MobileNetV2. It returns the
names of the layers it loaded, the "base"; the classifier head ``probs`` is
never loaded, so a build can train it first with the base frozen
(:func:`set_trainable`) and fine-tune everything after.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import RecipeError
from edgeship.core.tf import tf_modules

#: The zoo's classifier head. Never loaded: its classes are the new task's, even when their count matches.
HEAD = "probs"

#: Architectures that accept ``model.weights = "imagenet"``.
IMAGENET_ARCHS = ("mobilenet_v2",)
#: Square input sizes and width multipliers that keras.applications publishes MobileNetV2 ImageNet weights for.
IMAGENET_SIZES = (96, 128, 160, 192, 224)
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

_PASS_PATH = "model.weights = PATH to a weights file saved with model.save_weights(...)"

Weights = dict[str, list[np.ndarray]]


def load_pretrained(model: Any, spec: str | os.PathLike[str], *, arch: str, alpha: float | None = None) -> list[str]:
    """Copy pretrained weights into a freshly built zoo model; return the names of the layers loaded.

    Only layers whose every weight has the same shape in the source and in
    ``model`` are copied; the rest keep their fresh initialisation. The head
    ``probs`` is never copied, even when the class count matches, so the
    returned list is exactly the base to freeze for head-first training.

    Args:
        model: A tf_keras model from :func:`~edgeship.train.create_model` (``arch``).
        spec: ``"imagenet"``, or the path of a tf_keras weights file or saved model:

            * ``model.save_weights("x.h5")`` or ``model.save("x.h5")`` (legacy HDF5):
              layers matched by name (sublayers of a nested model by their own names),
              with Keras' per-process numbering of unnamed layers ignored (see below);
            * ``model.save("x.keras")`` or a SavedModel directory: loaded with
              ``tf_keras.models.load_model``, then layers matched by name the same way;
            * ``model.save_weights("x.weights.h5")``: this format stores no layer
              names, only Keras' positional paths (``layers/conv2d_1``), so layers are
              matched by that path, which is the same in two models of one architecture.

            ``"imagenet"``: Keras' MobileNetV2 ImageNet weights (downloaded once into
            ``~/.keras/models``), for ``mobilenet_v2`` with a square RGB input of
            96, 128, 160, 192 or 224 pixels; they expect inputs scaled to [-1, 1].
            All of the application's layers are copied, or none.
        arch: The zoo name ``model`` was built from (``model.arch``).
        alpha: ``mobilenet_v2``'s width multiplier ``model`` was built with; ``None``
            means the zoo's default. Used with ``"imagenet"`` only.

    Returns:
        Names of the layers whose weights were loaded, in model order.

    Unnamed layers (``ds_cnn``, ``resnet8``, ``mobilenet_v1_025``) get names
    numbered per process (``conv2d_3`` here may be ``conv2d_8`` in the file), so
    a name is compared without its ``_<n>`` suffix, by its rank among the
    layers sharing that stem: the n-th ``conv2d*`` layer loads the file's n-th.

    Raises:
        RecipeError: The file is missing or unreadable, shares no loadable layer
            with ``model``, or ``"imagenet"`` does not apply to this architecture,
            input shape or alpha, or cannot be downloaded.
    """
    if str(spec).strip().lower() == "imagenet":
        return _load_imagenet(model, arch, alpha)
    return _load_file(model, Path(spec), arch)


def set_trainable(model: Any, layer_names: Iterable[str], trainable: bool) -> None:
    """Freeze (``trainable=False``) or unfreeze the named layers of ``model``.

    In tf_keras a ``BatchNormalization`` layer with ``trainable=False`` also runs
    in inference mode: it normalises with its moving mean and variance and does
    not update them. That is why the head-first phase keeps the base's
    pretrained BatchNorm statistics instead of re-estimating them from the first
    batches of the new data. Unfreezing a BatchNorm layer puts it back in
    training mode; to fine-tune with the statistics kept, unfreeze the other
    base layers only.

    Keras reads ``trainable`` when it builds the train step, so compile the
    model again after calling this.

    Args:
        model: A tf_keras model; names are looked up in nested models too.
        layer_names: Layer names, such as the list :func:`load_pretrained` returns.
        trainable: The new value of each layer's ``trainable``.

    Raises:
        RecipeError: A name is not a layer of ``model``.
    """
    # A bare string would otherwise be taken as a list of one-letter names.
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    by_name = {layer.name: layer for layer in _named_layers(model)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise RecipeError(
            f"Expected names of layers of model {model.name!r}. Received: {_preview(unknown)}, which it does not "
            f"have (it has {_preview(list(by_name))}). Pass names from load_pretrained(...) for this model."
        )
    for name in names:
        by_name[name].trainable = bool(trainable)


# -- files ------------------------------------------------------------------------------


def _load_file(model: Any, path: Path, arch: str) -> list[str]:
    if not path.exists():
        raise RecipeError(
            f"Expected model.weights to be 'imagenet' or an existing weights file. Received: {str(path)!r}, "
            f"which does not exist. Pass {_PASS_PATH} or model.save(...), or fix the path."
        )
    source, by_path = _read_weights(path)
    if by_path:
        shown = {p: layer for p, layer in _v3_paths(model).items() if layer.weights}
        targets = {p: layer for p, layer in shown.items() if layer.name != HEAD}
        keyed = source
    else:
        weighted = [layer for layer in _leaf_layers(model) if layer.weights]
        shown = {layer.name: layer for layer in weighted}
        targets = {k: layer for k, layer in zip(_name_keys(shown), weighted) if layer.name != HEAD}
        keyed = dict(zip(_name_keys(source), source.values()))
    plan, mismatched = _plan(targets, keyed)
    if not plan:
        how = "Keras weight path (.weights.h5 files store no layer names)" if by_path else "layer name"
        shapes = f" Layers found in both but with other shapes: {_preview(mismatched, 3)}." if mismatched else ""
        raise RecipeError(
            f"Expected {path} to hold weights for the base of this {arch} model, matched by {how} with equal "
            f"shapes. Received: no layer matched. The file has {_preview(list(source))}; the model has "
            f"{_preview(list(shown))}.{shapes} Fix: pass model.weights = a file saved with model.save_weights(...) "
            f"or model.save(...) from a {arch} model built with the same input channels and options."
        )
    return _apply(plan)


def _name_keys(names: Iterable[str]) -> list[str]:
    """Match keys for layer names in model order: the name with Keras' numbering replaced by a rank.

    Keras numbers unnamed layers per process (``conv2d``, ``conv2d_1``, ...), so
    the same layer of ``ds_cnn`` is ``conv2d_3`` in one build and ``conv2d_8`` in
    a build that made a model before. Its rank among the layers whose names share
    the stem ``conv2d`` is the same in both; a uniquely named layer (``conv1``,
    ``block_1_expand``) keys as its own name, rank 0.
    """
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        stem = re.sub(r"_\d+$", "", name)
        keys.append(f"{stem}#{seen.get(stem, 0)}")
        seen[stem] = seen.get(stem, 0) + 1
    return keys


def _read_weights(path: Path) -> tuple[Weights, bool]:
    """``(weights by key, keyed by Keras path rather than layer name)`` from any tf_keras save format."""
    if path.is_dir() or zipfile.is_zipfile(path):
        return _read_saved_model(path), False
    import h5py  # a TensorFlow dependency; imported here to keep module import light

    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:  # model.save_weights("x.h5")
                return _read_legacy_h5(f), False
            if "model_weights" in f and "layer_names" in f["model_weights"].attrs:  # model.save("x.h5")
                return _read_legacy_h5(f["model_weights"]), False
            if "layers" in f or "vars" in f:  # model.save_weights("x.weights.h5")
                return _read_v3_h5(f), True
            kind = f"an HDF5 file with groups {_preview(list(f))}"
    except (OSError, KeyError, ValueError) as exc:  # h5py: not HDF5, truncated, unreadable, malformed groups
        kind = f"not a readable HDF5 weights file ({_first_line(exc)})"
    raise RecipeError(
        f"Expected model.weights to be a tf_keras weights file or saved model (.h5, .weights.h5, .keras). "
        f"Received: {path}, {kind}. Pass {_PASS_PATH} or model.save(...)."
    )


def _read_legacy_h5(group: Any) -> Weights:
    """Weights by layer name, in model order (the order of the ``layer_names`` attribute), leaves only."""
    out: Weights = {}
    for name in _strings(group.attrs["layer_names"]):
        layer_group = group[name]
        weight_names = _strings(layer_group.attrs.get("weight_names", []))
        parts: Weights = {}
        for weight_name in weight_names:
            owner = weight_name.rsplit("/", 2)[-2] if "/" in weight_name else name
            parts.setdefault(owner, []).append(np.asarray(layer_group[weight_name]))
        if len(parts) > 1:
            # A nested model: one group holding all its sublayers' weights, named
            # "<sublayer>/<variable>:0". Split it so sublayers match by their own names.
            for owner, arrays in parts.items():
                out.setdefault(owner, arrays)
        elif parts:
            # One layer: its group name is the layer's name even if its variables were named otherwise.
            out.setdefault(name, next(iter(parts.values())))
    return out


def _read_v3_h5(f: Any) -> Weights:
    out: Weights = {}

    def visit(name: str, obj: Any) -> None:
        # Keras v3 stores each layer's variables as "<layer path>/vars/0", "/vars/1", ... in weights order.
        if name.endswith("vars") and hasattr(obj, "keys") and len(obj):
            out[name.rsplit("/", 1)[0] if "/" in name else ""] = [np.asarray(obj[str(i)]) for i in range(len(obj))]

    f.visititems(visit)
    return out


def _read_saved_model(path: Path) -> Weights:
    _, keras = tf_modules()
    try:
        source = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types here (ValueError, TypeError, OSError, zipfile errors)
        raise RecipeError(
            f"Expected model.weights to be a model saved with tf_keras model.save(...). Received: {path}, which "
            f"tf_keras cannot load ({_first_line(exc)}). Pass {_PASS_PATH} from the model instead."
        ) from None
    return {layer.name: layer.get_weights() for layer in _leaf_layers(source) if layer.weights}


def _v3_paths(model: Any, prefix: str = "layers") -> dict[str, Any]:
    """Each leaf layer under the path Keras v3 saving gives it (tf_keras ``saving_lib``).

    Keras names a layer by its class in snake case, numbered in ``model.layers``
    order (``conv2d``, ``conv2d_1``, ...), and recurses into nested models under
    ``<path>/layers``.
    """
    out: dict[str, Any] = {}
    used: dict[str, int] = {}
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        path = f"{prefix}/{base}" if used[base] == 0 else f"{prefix}/{base}_{used[base]}"
        if hasattr(layer, "layers"):  # a nested model, as in _leaf_layers
            out.update(_v3_paths(layer, f"{path}/layers"))
        else:
            out[path] = layer
    return out


def _snake_case(name: str) -> str:
    # Same rule as tf_keras.src.utils.generic_utils.to_snake_case, which is private.
    snake = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()
    return snake if not snake.startswith("_") else "private" + snake


# -- ImageNet ---------------------------------------------------------------------------


def _load_imagenet(model: Any, arch: str, alpha: float | None) -> list[str]:
    if arch not in IMAGENET_ARCHS:
        raise RecipeError(
            f"model.weights = 'imagenet' works for model.arch {', '.join(map(repr, IMAGENET_ARCHS))}. "
            f"Received: model.arch = {arch!r}. Pass {_PASS_PATH}, or use model.arch = 'mobilenet_v2'."
        )
    shape = tuple(model.input_shape[1:])
    sizes = ", ".join(map(str, IMAGENET_SIZES))
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] not in IMAGENET_SIZES or shape[2] != 3:
        raise RecipeError(
            f"ImageNet weights for mobilenet_v2 exist for square RGB inputs of {sizes} pixels. Received: input "
            f"shape {shape}. Set data.image_size to [96, 96], [128, 128], ... or [224, 224] and data.color_mode = "
            f'"rgb", or pass {_PASS_PATH}.'
        )
    alpha = _zoo_default_alpha() if alpha is None else float(alpha)
    published = [a for a in IMAGENET_ALPHAS if math.isclose(a, alpha)]
    if not published:
        raise RecipeError(
            f"ImageNet weights for mobilenet_v2 exist for alpha {', '.join(f'{a:g}' for a in IMAGENET_ALPHAS)}. "
            f"Received: model.alpha = {alpha:g}. Set model.alpha to one of those, or pass {_PASS_PATH}."
        )
    _, keras = tf_modules()
    try:
        pretrained = keras.applications.MobileNetV2(
            input_shape=shape, alpha=published[0], include_top=False, weights="imagenet", pooling="avg"
        )
    except Exception as exc:  # get_file raises a bare Exception for URLError/HTTPError, OSError for disk errors
        raise RecipeError(
            f"Could not download the ImageNet weights for mobilenet_v2 ({_first_line(exc)}). This machine looks "
            f"offline. Pass {_PASS_PATH}."
        ) from None
    source = {layer.name: layer.get_weights() for layer in _leaf_layers(pretrained) if layer.weights}
    # The zoo builds MobileNetV2 on its own Input tensor, so the application's
    # layers (Conv1, bn_Conv1, block_1_expand, ..., Conv_1_bn) sit directly in
    # the model under the same names; _leaf_layers also looks into nested models.
    targets = {layer.name: layer for layer in _leaf_layers(model) if layer.weights and layer.name != HEAD}
    plan, mismatched = _plan(targets, source)
    missing = [name for name in source if name not in targets]
    if mismatched or missing:
        # All or nothing: a half-copied base (another alpha matches some layers) would train silently worse.
        raise RecipeError(
            f"Expected this mobilenet_v2 model to have the layers of the ImageNet MobileNetV2 (alpha "
            f"{published[0]:g}). Received: {len(mismatched)} of its layers have other shapes "
            f"({_preview(mismatched, 2)}) and {len(missing)} are absent ({_preview(missing, 3)}). Pass the "
            f"model's alpha (model.alpha) to load_pretrained(..., alpha=...)."
        )
    return _apply(plan)


def _zoo_default_alpha() -> float:
    from ._zoo import mobilenet_v2

    return float(inspect.signature(mobilenet_v2).parameters["alpha"].default)


# -- shared -----------------------------------------------------------------------------


def _plan(targets: dict[str, Any], source: Weights) -> tuple[list[tuple[Any, list[np.ndarray]]], list[str]]:
    """``(layer, arrays)`` for every target whose weight shapes all match, and what differs for the others."""
    plan, mismatched = [], []
    for key, layer in targets.items():
        arrays = source.get(key)
        if arrays is None:
            continue
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if want == got:
            plan.append((layer, arrays))
        elif len(want) != len(got):
            mismatched.append(f"{layer.name}: {len(got)} weights in the source vs {len(want)} in the model")
        else:
            g, w = next((g, w) for g, w in zip(got, want) if g != w)
            mismatched.append(f"{layer.name}: {g} in the source vs {w} in the model")
    return plan, mismatched


def _apply(plan: list[tuple[Any, list[np.ndarray]]]) -> list[str]:
    # Checked in full before any write, so a failure leaves the model as built.
    for layer, arrays in plan:
        layer.set_weights(arrays)
    return [layer.name for layer, _ in plan]


def _leaf_layers(model: Any) -> list[Any]:
    """Layers in model order, with nested models replaced by their own layers."""
    out = []
    for layer in model.layers:
        out.extend(_leaf_layers(layer) if hasattr(layer, "layers") else [layer])
    return out


def _named_layers(model: Any) -> list[Any]:
    """Every layer, nested models included both as themselves and through their layers."""
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_named_layers(layer))
    return out


def _strings(values: Iterable[Any]) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}, ... ({len(items)} in all)]" if len(items) > limit else f"[{shown}]"
