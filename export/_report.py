"""``report.md``: the bundle's variant table, readable without edgeship."""

from __future__ import annotations

from typing import Any


def render_markdown(manifest: dict[str, Any]) -> str:
    m = manifest.get("metrics", {})
    lines = [
        f"# edgeship bundle: {manifest.get('name')}",
        "",
        f"Built {manifest.get('created')} by edgeship {manifest.get('edgeship_version')}, "
        f"recipe sha256 `{str(manifest.get('recipe_sha256'))[:12]}`.",
        "",
        f"Keras float32 test accuracy: {m.get('keras_float32_accuracy', float('nan')):.4f}; "
        f"after compression (reference for the artifacts): {m.get('keras_reference_accuracy', float('nan')):.4f}.",
        "",
        "| file | format | precision | bytes | accuracy | drop vs keras |",
        "|---|---|---|---:|---:|---:|",
    ]
    for a in manifest.get("artifacts", []):
        met = a.get("metrics", {})
        lines.append(
            f"| {a['file']} | {a['format']} | {a['precision']} | {a['bytes']:,} | "
            f"{met.get('accuracy', float('nan')):.4f} | {met.get('accuracy_drop', float('nan')):+.4f} |"
        )
    sparsity = m.get("sparsity") or {}
    if sparsity:
        lines += ["", "## Kernel sparsity", "", "| layer | zeros |", "|---|---:|"]
        lines += [f"| {k} | {v:.1%} |" for k, v in sparsity.items()]
    return "\n".join(lines) + "\n"
