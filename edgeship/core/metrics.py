"""The shared quantities, computed in one place: SQNR in dB and top-1 accuracy.

numpy only, so every stage and the device package can import it (it sits below
all of them, like :mod:`edgeship.core.errors` and :mod:`edgeship.core.bundle`).

SQNR is ``20*log10(||x|| / ||x - y||)`` dB (ONNX Runtime ``qdq_loss_debug``),
``x`` the reference (float) values and ``y`` the candidate (dequantized) ones.
It is stored one way everywhere (manifest parity results and per-layer tables):

* an exact match, or noise at most ``1e-12`` of the signal, is ``SQNR_CAP_DB``
  (120.0): a JSON number, never ``inf`` or the string ``"inf"``; larger values
  are capped there too, as int8 cannot resolve them;
* undefined values are ``NaN`` here and ``null`` in JSON: an all-zero reference
  with nonzero noise (no signal to compare), or NaN/Inf in either array.
"""

from __future__ import annotations

import math

import numpy as np

from edgeship.core.bundle import SQNR_CAP_DB as SQNR_CAP_DB  # the stored cap is part of the manifest schema


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """``20*log10(||x|| / ||x - y||)`` dB over all elements, at most :data:`SQNR_CAP_DB`.

    Returns ``SQNR_CAP_DB`` when the noise is at most ``1e-12`` of the signal
    (an exact match, including two all-zero arrays) and ``NaN`` when the value
    is undefined: ``x`` all zero with nonzero noise, or NaN/Inf in either array.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.asarray(reference, dtype=np.float64).ravel()
        y = np.asarray(candidate, dtype=np.float64).ravel()
        signal = float(np.linalg.norm(x))
        noise = float(np.linalg.norm(x - y))
    if not (math.isfinite(signal) and math.isfinite(noise)):
        return math.nan
    if noise <= 1e-12 * max(signal, 1e-30):
        return SQNR_CAP_DB
    if signal == 0.0:
        return math.nan
    return float(min(SQNR_CAP_DB, 20.0 * math.log10(signal / noise)))


def sqnr_json(value: float) -> float | None:
    """An SQNR as the manifest stores it: the number, or ``None`` (JSON ``null``) when undefined."""
    return float(value) if math.isfinite(value) else None


def top1_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose highest score is at the true label (scores flattened per sample)."""
    scores = np.asarray(scores)
    return float(np.mean(np.argmax(scores.reshape(len(scores), -1), axis=-1) == np.asarray(labels)))


#: How an anomaly score is computed from a reconstruction model's output (manifest and file metadata).
SCORE_RULE = "mse"
SCORE_RULE_TEXT = "mean over all features of (x - reconstruction(x))**2, per sample; higher is more anomalous"


def reconstruction_error(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Per-sample mean squared error between inputs and their reconstructions (float64, shape ``(batch,)``)."""
    x = np.asarray(x, dtype=np.float64)
    r = np.asarray(reconstruction, dtype=np.float64)
    n = len(x)
    return np.mean(np.square(x.reshape(n, -1) - r.reshape(n, -1)), axis=1)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive, here anomalous).

    The Mann-Whitney form with tied scores counted one half, which equals
    scikit-learn's ``roc_auc_score``; numpy only, so the device can compute it.
    ``NaN`` when ``labels`` hold a single class.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties (1-based)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def threshold_at_quantile(normal_scores: np.ndarray, quantile: float) -> float:
    """The anomaly threshold: the ``quantile`` (linear interpolation) of the normal samples' scores."""
    return float(np.quantile(np.asarray(normal_scores, dtype=np.float64), quantile))


def detection_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, and accuracy / precision / recall / F1 of ``score > threshold`` (anomalous = positive)."""
    y = np.asarray(labels).ravel().astype(bool)
    pred = np.asarray(scores).ravel() > threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"roc_auc": roc_auc(scores, labels), "accuracy": float(np.mean(pred == y)), "precision": precision,
            "recall": recall, "f1": f1, "threshold": float(threshold)}
