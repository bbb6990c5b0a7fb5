"""Compare two model files' interfaces and operator sets: our export against a third-party reference.

Weights are not compared (a model of the same architecture trained on other data
has no bearing on them); what must match for a drop-in replacement is the I/O
(shape, dtype, quantized or not) and, for the same runtime kernels, the
operators. Quantization scale/zero point differ with the calibration data and
are reported, not judged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._graph import read_graph
from ._inspect import inspect_file


def _spec(t: dict[str, Any]) -> dict[str, Any]:
    shape = t["shape"]
    return {
        "shape": None if shape is None else [d if i else -1 for i, d in enumerate(shape)],  # batch: any
        "dtype": t["dtype"],
        "quantized": t["quantization"] is not None,
    }


def weight_dtypes(path: str | Path) -> dict[str, list[str]]:
    """Per operator type, the dtypes of its constant weight inputs (the second input: kernels, filters).

    Tells a float32 model from a dynamic-range one (int8 weights, float32 activations),
    which have the same I/O and operators.
    """
    graph = read_graph(path)
    out: dict[str, set[str]] = {}
    for op in graph.ops:
        if len(op.inputs) > 1:
            t = graph.tensors.get(op.inputs[1])
            if t is not None and t.constant and t.shape and len(t.shape) >= 2:
                out.setdefault(op.type, set()).add(t.dtype)
    return {k: sorted(v) for k, v in sorted(out.items())}


def compare_models(ours: str | Path, reference: str | Path) -> dict[str, Any]:
    """What differs between model file ``ours`` and ``reference`` (both ``.tflite`` or ``.onnx``).

    Returns:
        ``same_io`` (inputs and outputs agree in count, shape but the batch axis,
        dtype and whether quantized), ``io`` (per side: the specs and quantization,
        and ``differences``: one line each), ``same_operators`` (the same operator
        types), ``operators`` (``only_ours``, ``only_reference``, and per common type the
        two counts where they differ), ``weight_dtypes`` per side (:func:`weight_dtypes`),
        ``bytes``, ``weights_bytes`` and ``arena_bytes`` per side, and
        ``differences``: every difference as one line, empty when the two match.
    """
    a, b = inspect_file(ours), inspect_file(reference)
    diffs: list[str] = []
    io: dict[str, Any] = {}
    for kind in ("inputs", "outputs"):
        sa, sb = [_spec(t) for t in a[kind]], [_spec(t) for t in b[kind]]
        if len(sa) != len(sb):
            diffs.append(f"{kind}: {len(sa)} ours vs {len(sb)} reference")
        for i, (x, y) in enumerate(zip(sa, sb)):
            for key in ("shape", "dtype", "quantized"):
                if x[key] != y[key]:
                    diffs.append(f"{kind}[{i}] {key}: ours {x[key]} vs reference {y[key]}")
        io[kind] = {
            "ours": [{**s, "quantization": t["quantization"]} for s, t in zip(sa, a[kind])],
            "reference": [{**s, "quantization": t["quantization"]} for s, t in zip(sb, b[kind])],
        }
    same_io = not diffs
    oa, ob = a["operators"], b["operators"]
    only_ours = sorted(set(oa) - set(ob))
    only_ref = sorted(set(ob) - set(oa))
    counts = {k: {"ours": oa[k], "reference": ob[k]} for k in sorted(set(oa) & set(ob)) if oa[k] != ob[k]}
    if only_ours:
        diffs.append("operators only in ours: " + ", ".join(f"{k} x{oa[k]}" for k in only_ours))
    if only_ref:
        diffs.append("operators only in the reference: " + ", ".join(f"{k} x{ob[k]}" for k in only_ref))
    for k, c in counts.items():
        diffs.append(f"{k}: {c['ours']} ours vs {c['reference']} reference")
    wa, wb = weight_dtypes(ours), weight_dtypes(reference)
    for k in sorted(set(wa) & set(wb)):
        if wa[k] != wb[k]:
            diffs.append(f"{k} weights: ours {'/'.join(wa[k])} vs reference {'/'.join(wb[k])}")
    return {
        "ours": a["file"],
        "reference": b["file"],
        "same_io": same_io,
        "io": io,
        "same_operators": not only_ours and not only_ref,
        "operators": {"only_ours": {k: oa[k] for k in only_ours}, "only_reference": {k: ob[k] for k in only_ref},
                      "counts_differ": counts},
        "weight_dtypes": {"ours": wa, "reference": wb},
        "bytes": {"ours": a["bytes"], "reference": b["bytes"]},
        "weights_bytes": {"ours": a["weights_bytes"], "reference": b["weights_bytes"]},
        "arena_bytes": {"ours": a["estimates"]["ram_arena_bytes"], "reference": b["estimates"]["ram_arena_bytes"]},
        "differences": diffs,
    }
