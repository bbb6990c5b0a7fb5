"""Embed labels, preprocessing and the recipe hash into each model file.

Called on the converter's bytes before the file's sha256 is taken, so the
manifest hash covers the metadata. The layout is documented in
:mod:`edgeship.runtime._metadata`, which reads it back on the device. The same
pass makes names depend on the model only: tf2onnx's process-numbered node names
are renumbered (ONNX), and biases the converter folded get their layer's name (TFLite).
"""

from __future__ import annotations

import json
import re
from typing import Any

from edgeship.core.errors import BuildError
from edgeship.core.tf import require
from edgeship.runtime import METADATA_SCHEMA, ONNX_PREFIX, TFLITE_METADATA_NAME


def metadata_dict(
    labels: list[str] | None, preprocessing: dict[str, Any] | None, recipe_sha256: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"schema": METADATA_SCHEMA}
    if labels is not None:
        data["labels"] = [str(label) for label in labels]
    if preprocessing is not None:
        data["preprocessing"] = preprocessing
    if recipe_sha256 is not None:
        data["recipe_sha256"] = recipe_sha256
    return data


def embed_metadata(content: bytes, fmt: str, metadata: dict[str, Any], *, onnx_shapes: bool = True) -> bytes:
    """Return ``content`` with ``metadata`` (see :func:`metadata_dict`) embedded.

    Args:
        content: model bytes from the converter.
        fmt: ``"tflite"`` or ``"onnx"``.
        metadata: JSON-serialisable dict with ``labels``, ``preprocessing``, ``recipe_sha256``.
        onnx_shapes: for ONNX, also record inferred shapes of intermediate tensors
            (``value_info``, ONNX shape inference), so the device can estimate the
            activation arena from the file alone. Values and operators are unchanged.

    TFLite biases named after fused ops are renamed (:func:`_name_biases`), ONNX
    generated names renumbered (:func:`_canonical_generated_names`).
    """
    if fmt == "tflite":
        return _embed_tflite(content, metadata)
    if fmt == "onnx":
        return _embed_onnx(content, metadata, onnx_shapes)
    raise BuildError(f"Cannot embed metadata: expected format tflite or onnx. Received: {fmt!r}.")


def _embed_tflite(content: bytes, metadata: dict[str, Any]) -> bytes:
    fb = require("ai_edge_litert.tools.flatbuffer_utils", "Embedding TFLite metadata")
    schema = fb.schema_fb
    model = fb.read_model_from_bytearray(bytearray(content))
    _name_biases(model)
    payload = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    buffer = schema.BufferT()
    buffer.data = list(payload)
    entries = [m for m in (model.metadata or []) if _name(m.name) != TFLITE_METADATA_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*entries, entry]
    return bytes(fb.convert_object_to_bytearray(model))


def _name(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


#: TFLite builtin operators with a bias input: operator code -> the bias's input index.
_BIAS_INPUT = {3: 2, 4: 2, 9: 2, 67: 3}  # CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV


def _name_biases(model: Any) -> None:
    """Name each constant bias ``<layer>/bias`` after its weights' layer.

    The converter names a bias it made by folding (a Dense's bias with the
    BatchNorm after it, say) after every op fused into it:
    ``fc_autoencoder/relu_9/Relu;fc_autoencoder/dense_9/BiasAdd`` reads as a
    ReLU output in Netron or ``edgeship inspect``, and its bytes go into every
    file (about 30 per layer). Only such fused names (with ``;``) change, to
    ``fc_autoencoder/dense_9/bias`` from the weights' ``fc_autoencoder/dense_9/MatMul``;
    values, shapes, operators and every activation's name stay as converted
    (the quantization debugger's names for ``quantize.float_layers``).
    """
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes or []]
    for graph in model.subgraphs or []:
        tensors = graph.tensors or []
        taken = {_name(t.name) for t in tensors}
        for op in graph.operators or []:
            at = _BIAS_INPUT.get(codes[op.opcodeIndex])
            inputs = list(op.inputs) if op.inputs is not None else []
            if at is None or len(inputs) <= at or min(inputs[1], inputs[at]) < 0:
                continue
            bias, weights = tensors[inputs[at]], tensors[inputs[1]]
            data = model.buffers[bias.buffer].data if bias.buffer < len(model.buffers) else None
            old = _name(bias.name)
            if data is None or len(data) == 0 or ";" not in old:
                continue  # not a constant, or already named by one op
            scope = _name(weights.name).split(";")[0].rpartition("/")[0]
            new = f"{scope}/bias" if scope else ""
            if new and new not in taken:
                bias.name = new.encode()
                taken.add(new)


def _embed_onnx(content: bytes, metadata: dict[str, Any], shapes: bool) -> bytes:
    onnx = require("onnx", "Embedding ONNX metadata")
    model = onnx.load_from_string(content)
    if shapes:
        try:
            model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        except Exception:  # shape inference is a nicety for the RAM estimate only
            pass
    _canonical_generated_names(model)
    props = {p.key: p.value for p in model.metadata_props if not p.key.startswith(ONNX_PREFIX)}
    for key, value in metadata.items():
        props[ONNX_PREFIX + key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return bytes(model.SerializeToString())


_GENERATED = re.compile(r"__(\d+)")


def _canonical_generated_names(model: Any) -> None:
    """Renumber tf2onnx's generated ``name__N`` suffixes in order of first use.

    tf2onnx numbers the nodes it inserts from a process-global counter
    (``tf2onnx.utils.make_name``), so the same model converted twice in one
    process gets different names (``Conv2D__6`` then ``Conv2D__42``) and
    different bytes. Names carry no semantics; renumbering them 1, 2, 3... in
    graph order makes the bytes depend on the model only. Models with
    subgraphs (If/Loop) are left as they are.
    """
    graph = model.graph
    if any(a.type in (5, 10) for n in graph.node for a in n.attribute):  # GRAPH / GRAPHS attributes
        return
    numbers: dict[str, str] = {}

    def rename(name: str) -> str:
        def sub(m: re.Match[str]) -> str:
            return "__" + numbers.setdefault(m.group(1), str(len(numbers) + 1))

        return _GENERATED.sub(sub, name) if name else name

    for node in graph.node:
        node.name = rename(node.name)
        node.input[:] = [rename(i) for i in node.input]
        node.output[:] = [rename(o) for o in node.output]
    for t in graph.initializer:
        t.name = rename(t.name)
    for v in [*graph.input, *graph.output, *graph.value_info]:
        v.name = rename(v.name)
        for dim in v.type.tensor_type.shape.dim:  # symbolic dims: "unk__37"
            if dim.HasField("dim_param"):
                dim.dim_param = rename(dim.dim_param)
    # tf2onnx also merges initializers with equal values and keeps an arbitrary one's
    # name (untrained BatchNorm ones/zeros, for instance): name shared ones by first use,
    # and store initializers in first-use order.
    uses: dict[str, int] = {}
    order: dict[str, tuple[int, int]] = {}
    for i, node in enumerate(graph.node):
        for j, name in enumerate(node.input):
            uses[name] = uses.get(name, 0) + 1
            order.setdefault(name, (i, j))
    inits = {t.name for t in graph.initializer}
    shared = sorted((n for n in inits if uses.get(n, 0) > 1), key=lambda n: order[n])
    new_names = {n: f"shared_const__{k}" for k, n in enumerate(shared, start=1)}
    if new_names:
        for node in graph.node:
            node.input[:] = [new_names.get(i, i) for i in node.input]
        for t in graph.initializer:
            t.name = new_names.get(t.name, t.name)
        order = {new_names.get(n, n): i for n, i in order.items()}
    ranked = sorted(graph.initializer, key=lambda t: (order.get(t.name, (len(graph.node), 0)), t.name))
    copies = [type(t)() for t in ranked]
    for dst, src in zip(copies, ranked):
        dst.CopyFrom(src)
    del graph.initializer[:]
    graph.initializer.extend(copies)
