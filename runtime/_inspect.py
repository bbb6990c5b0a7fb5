"""``edgeship inspect FILE``: what is in a .tflite / .onnx file, without TensorFlow.

Reports inputs and outputs (name, shape, dtype, quantization), operator
counts, QuantizeLinear / DequantizeLinear counts, the int8 op share, size,
embedded edgeship metadata, weights bytes and the activation-arena estimate
(:mod:`._ram`); optionally the measured RSS increase.

int8 op share: the share of compute operators (all but quantize/dequantize)
that run on integer tensors. TFLite: the operator's first output is an int
type. ONNX (QDQ): every activation input of the node comes out of a
``DequantizeLinear`` and every output goes into a ``QuantizeLinear`` — the
pattern ONNX Runtime fuses into an int8 kernel; ``QLinear*`` / ``*Integer``
nodes count as int8 too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ._errors import ModelFileError
from ._graph import INT_TYPES, Graph, read_graph
from ._metadata import read_metadata
from ._ram import arena_estimate, constant_tensors, measure_rss_increase

QDQ_OPS = {"QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def _io(graph: Graph, names: list[str], user_names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    by_tensor = {t: n for n, t in (user_names or {}).items()}
    out = []
    for name in names:
        t = graph.tensors.get(name)
        if t is None:
            continue
        quant = None
        if t.scale is not None and t.dtype in INT_TYPES:
            quant = {
                "scale": t.scale[0] if len(t.scale) == 1 else t.scale,
                "zero_point": (t.zero_point or [0])[0] if len(t.scale) == 1 else t.zero_point,
            }
        entry: dict[str, Any] = {
            "name": name,
            "shape": None if t.shape is None else [-1 if d is None else d for d in t.shape],
            "dtype": t.dtype,
            "quantization": quant,
        }
        if by_tensor.get(name, name) != name:
            entry["signature_name"] = by_tensor[name]
        out.append(entry)
    return out


def int8_op_share(graph: Graph) -> tuple[int, int]:
    """``(int8 compute ops, compute ops)``; see the module doc for the rule per format."""
    compute = [op for op in graph.ops if op.type not in QDQ_OPS]
    if graph.format == "tflite":
        n_int = sum(1 for op in compute if op.outputs and graph.tensors[op.outputs[0]].dtype in INT_TYPES)
        return n_int, len(compute)
    producers = {o: op.type for op in graph.ops for o in op.outputs}
    consumers: dict[str, list[str]] = {}
    for op in graph.ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op.type)
    const = constant_tensors(graph)
    n_int = 0
    for op in compute:
        if op.type.startswith("QLinear") or op.type.endswith("Integer") or "com.microsoft.QLinear" in op.type:
            n_int += 1
            continue
        acts = [i for i in op.inputs if i not in const or producers.get(i) == "DequantizeLinear"]
        if not acts:
            continue
        ins_ok = all(producers.get(i) == "DequantizeLinear" for i in acts)
        outs_ok = all(op2 == "QuantizeLinear" for o in op.outputs for op2 in consumers.get(o, ["<graph output>"]))
        if ins_ok and outs_ok:
            n_int += 1
    return n_int, len(compute)


def inspect_file(path: str | Path, *, measure: bool = False) -> dict[str, Any]:
    """Describe a model file; ``measure`` adds the RSS increase measured in a child process."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(
            f"Expected a .tflite or .onnx file. Received: {p}, which does not exist. Pass a model file."
        )
    graph = read_graph(p)
    counts = Counter(op.type for op in graph.ops)
    n_int, n_compute = int8_op_share(graph)
    arena = arena_estimate(graph)
    try:
        metadata = read_metadata(p, graph.format)
    except Exception as exc:  # a model without a loadable engine still gets described
        metadata = {"error": str(exc)}
    report: dict[str, Any] = {
        "file": p.name,
        "format": graph.format,
        "bytes": p.stat().st_size,
        "inputs": _io(graph, graph.inputs),
        "outputs": _io(graph, graph.outputs, graph.output_names),
        "operators": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "operator_total": len(graph.ops),
        "quantize_ops": counts.get("QuantizeLinear", 0) + counts.get("QUANTIZE", 0),
        "dequantize_ops": counts.get("DequantizeLinear", 0) + counts.get("DEQUANTIZE", 0),
        "int8_ops": n_int,
        "compute_ops": n_compute,
        "int8_op_share": (n_int / n_compute) if n_compute else 0.0,
        "weights_bytes": graph.weights_bytes(),
        "estimates": {
            "flash_bytes": p.stat().st_size,
            "ram_arena_bytes": arena.arena_bytes,
            "ram_arena_peak_op": arena.peak_op,
            "ram_arena_unknown_tensors": len(arena.unknown_tensors),
        },
        "metadata": metadata,
        "extra": {k: v for k, v in graph.extra.items()},
    }
    if measure:
        report["estimates"]["rss_increase_bytes"] = measure_rss_increase(p, graph.format)["rss_increase_bytes"]
    return report


def format_report(r: dict[str, Any]) -> str:
    """The human-readable ``edgeship inspect`` text."""

    def io_line(t: dict[str, Any]) -> str:
        shape = "?" if t["shape"] is None else "(" + ", ".join("N" if d == -1 else str(d) for d in t["shape"]) + ")"
        q = t["quantization"]
        qs = f"  scale {q['scale']} zero_point {q['zero_point']}" if q else ""
        sig = f"  [{t['signature_name']}]" if t.get("signature_name") else ""
        return f"  {t['name']}{sig}: {t['dtype']} {shape}{qs}"

    est = r["estimates"]
    lines = [f"{r['file']}: {r['format']}, {r['bytes']:,} bytes"]
    lines.append("inputs:")
    lines += [io_line(t) for t in r["inputs"]]
    lines.append("outputs:")
    lines += [io_line(t) for t in r["outputs"]]
    ops = ", ".join(f"{k} {v}" for k, v in r["operators"].items())
    lines.append(f"operators ({r['operator_total']}): {ops}")
    lines.append(
        f"quantize ops {r['quantize_ops']}, dequantize ops {r['dequantize_ops']}, "
        f"int8 op share {r['int8_op_share']:.0%} ({r['int8_ops']}/{r['compute_ops']} compute ops)"
    )
    lines.append(f"weights {r['weights_bytes']:,} bytes")
    ram = f"RAM: activation arena {est['ram_arena_bytes']:,} bytes (batch 1)"
    if est.get("ram_arena_unknown_tensors"):
        ram += f", {est['ram_arena_unknown_tensors']} tensors without a recorded shape not counted"
    if "rss_increase_bytes" in est:
        ram += f"; measured peak RSS increase on load + first inference {est['rss_increase_bytes']:,} bytes"
    lines.append(ram)
    lines.append(f"flash: {est['flash_bytes']:,} bytes")
    md = r["metadata"]
    if md:
        labels = md.get("labels")
        if labels is not None:
            shown = ", ".join(map(str, labels[:10])) + (", ..." if len(labels) > 10 else "")
            lines.append(f"metadata: labels ({len(labels)}): {shown}")
        if "preprocessing" in md:
            lines.append(f"metadata: preprocessing {md['preprocessing']}")
        if "recipe_sha256" in md:
            lines.append(f"metadata: recipe sha256 {md['recipe_sha256']}")
        if isinstance(md.get("anomaly"), dict):
            a = md["anomaly"]
            lines.append(f"metadata: anomaly score {a.get('score')}, threshold {a.get('threshold')} "
                         f"(quantile {a.get('threshold_quantile')} of the validation normals' scores)")
        if "error" in md:
            lines.append(f"metadata: unreadable ({md['error']})")
    else:
        lines.append("metadata: none embedded")
    return "\n".join(lines)
