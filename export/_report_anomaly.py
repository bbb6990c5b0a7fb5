"""The report's anomaly-detection section: score and threshold rules, ROC AUC per artifact, the ROC curve.

Rendered for bundles whose manifest has an ``anomaly`` section (``model.task =
"anomaly"``); the ROC curve is the trained float32 model's on the test split,
drawn with matplotlib into ``report.html`` (no pyplot: never the user's backend).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from edgeship.core.bundle import Baseline, Manifest

from ._blocks import Cell, Section, Table, Text, cell_text


@dataclass(frozen=True)
class RocPlot:
    """The float32 model's ROC curve; ``report.html`` only, drawn when rendered."""

    fpr: list[float]
    tpr: list[float]
    roc_auc: float


def anomaly_sections(m: Manifest, bl: Baseline | None) -> list[Any]:
    """The "Anomaly detection" section: rules, float32 and baseline figures, per-artifact table, ROC plot."""
    a = m.anomaly
    if a is None:
        return []
    extra = dict(a.extra)
    base = a.baselines or {}
    text = (
        f"Score: {extra.get('score_rule', a.score)}. Threshold: the {a.threshold_quantile:g} quantile of each "
        f"artifact's scores on the {a.validation_normals} validation normal samples (float32 Keras "
        f"{a.threshold:.4g}). Trained float32 model on the test split: ROC AUC {a.roc_auc:.4f}, precision "
        f"{a.precision:.4f}, recall {a.recall:.4f} at the threshold"
        + (f"; PCA baseline ({base.get('pca_components')} components) ROC AUC {base['pca_roc_auc']:.4f}"
           if "pca_roc_auc" in base else "")
        + (f". Normal classes: {', '.join(map(str, a.normal_classes))}." if a.normal_classes else ".")
    )
    rows = []
    for art in m.artifacts:
        met = art.metrics
        if met is None or met.roc_auc is None:
            continue
        rows.append([Cell(art.file), Cell(cell_text(met.roc_auc), "n"), Cell(f"{-(met.roc_auc_drop or 0.0):+.4f}", "n"),
                     Cell(f"{met.threshold:.4g}", "n"), Cell(cell_text(met.precision), "n"), Cell(cell_text(met.recall), "n"),
                     Cell(cell_text(met.accuracy), "n")])
    blocks: list[Any] = [Text.para(text)]
    if rows:
        blocks.append(Table(["artifact", "ROC AUC", "vs keras", "threshold", "precision", "recall", "accuracy"],
                            rows, {1, 2, 3, 4, 5, 6}))
    curve = a.roc_curve or {}
    if curve.get("fpr") and curve.get("tpr"):
        blocks.append(RocPlot(list(curve["fpr"]), list(curve["tpr"]), a.roc_auc))
    return [Section("Anomaly detection", blocks)]


def roc_png(plot: RocPlot) -> bytes | None:
    """The ROC curve as PNG bytes; ``None`` without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(4.6, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(plot.fpr, plot.tpr, color="#1f77b4", lw=1.6, label=f"float32 Keras (AUC {plot.roc_auc:.4f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="chance")
    ax.set_xlabel("false positive rate (normal flagged)")
    ax.set_ylabel("true positive rate (anomaly flagged)")
    ax.set_title("ROC curve, test split", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
