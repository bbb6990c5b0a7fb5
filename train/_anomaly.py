"""Anomaly detection data: the one-class protocol, and ``anomaly:PATH`` files.

Labels are ``0`` = normal, ``1`` = anomalous (``labels = ["normal", "anomaly"]``).

* train: normal samples only (an autoencoder learns to reconstruct them);
* validation: normal samples (early stopping on their reconstruction loss, and
  the threshold: a quantile of their scores) **and** held-out anomalies, which
  only the accuracy budget reads (ROC AUC of each compressed artifact against
  the trained float32 model's); training never sees an anomaly;
* test: normal samples and anomalies; the bundle reports ROC AUC and
  precision / recall at the threshold there.

Normal samples are split by ``test_fraction`` / ``val_fraction`` (at least
``VAL_FLOOR_PER_CLASS`` validation normals, at most a quarter); anomalies go
``val_fraction / (val_fraction + test_fraction)`` to validation, the rest to test.

``anomaly:PATH`` files:

* ``.npz``: ``x`` (samples, features...) numeric and ``y`` (samples,) with
  0 = normal, 1 = anomalous;
* ``.csv`` (``.tsv``): a header row, a label column (``data.label_column``,
  default ``label``) holding ``normal`` / ``anomalous`` (also ``anomaly``,
  ``0`` / ``1``), every other column a numeric feature. Inputs are used as they
  are (scale them beforehand); ``preprocessing`` records ``{"scale": 1.0}``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import DataError, RecipeError

from ._datasets import VAL_FLOOR_PER_CLASS, Dataset

LABELS = ["normal", "anomaly"]
_WORDS = {"normal": 0, "0": 0, "anomalous": 1, "anomaly": 1, "abnormal": 1, "1": 1}


def one_class_split(x: np.ndarray, anomalous: np.ndarray, *, seed: int, test_fraction: float,
                    val_fraction: float) -> tuple[np.ndarray, ...]:
    """``x_train, y_train, x_val, y_val, x_test, y_test`` of the one-class protocol (module docstring)."""
    anomalous = np.asarray(anomalous).astype(bool)
    normal_idx, anomaly_idx = np.flatnonzero(~anomalous), np.flatnonzero(anomalous)
    n = len(normal_idx)
    n_test = int(round(test_fraction * n))
    n_val = max(int(round(val_fraction * n)), min(VAL_FLOOR_PER_CLASS, n // 4), 1)
    if n - n_test - n_val < 2 or len(anomaly_idx) < 2:
        raise DataError(
            f"Expected at least a few normal samples for each split and 2 anomalies. Received: {n} normal and "
            f"{len(anomaly_idx)} anomalous samples. Add samples, or change data.test_fraction / val_fraction."
        )
    rng = np.random.default_rng(seed)
    normal_idx, anomaly_idx = rng.permutation(normal_idx), rng.permutation(anomaly_idx)
    k = max(1, int(round(len(anomaly_idx) * val_fraction / (val_fraction + test_fraction))))
    k = min(k, len(anomaly_idx) - 1)
    train = normal_idx[n_test + n_val:]
    val = rng.permutation(np.r_[normal_idx[n_test:n_test + n_val], anomaly_idx[:k]])
    test = rng.permutation(np.r_[normal_idx[:n_test], anomaly_idx[k:]])
    y = anomalous.astype(np.int64)
    return x[train], y[train], x[val], y[val], x[test], y[test]


def load_anomaly_dataset(spec: str, *, normal_classes: list[int] | None = None, flatten: bool = False,
                         seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1,
                         label_column: str = "label") -> Dataset:
    """The one-class splits of ``spec``: ``"digits"`` with ``normal_classes``, or ``"anomaly:PATH"``.

    ``flatten``: inputs as vectors (``fc_autoencoder`` and other ``input_kind =
    "vector"`` models): digits become 64 values, each in [0, 1].
    """
    kind, _, path = spec.partition(":")
    if kind == "digits":
        x, anomalous, pre, name = _digits(normal_classes)
    elif kind == "anomaly":
        if not path:
            raise RecipeError(f'Dataset "anomaly" needs a path. Received: {spec!r}. Write data.dataset = "anomaly:PATH".')
        x, anomalous = _read_file(Path(path), label_column)
        pre, name = {"scale": 1.0, "mean": 0.0, "input_shape": list(x.shape[1:])}, Path(path).name
    else:
        raise RecipeError(f'Anomaly detection reads "digits" or "anomaly:PATH". Received: data.dataset = {spec!r}.')
    if flatten:
        x = x.reshape(len(x), -1)
        pre = {**pre, "layout": "flattened", "input_shape": [int(x.shape[1])]}
    parts = one_class_split(x, anomalous, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    return Dataset(name, *parts, labels=list(LABELS), preprocessing=pre)


def _digits(normal_classes: list[int] | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any], str]:
    from sklearn.datasets import load_digits

    if not normal_classes:
        raise RecipeError('Expected data.normal_classes for anomaly detection on "digits", e.g. [1]. Received: none.')
    bad = [c for c in normal_classes if not 0 <= c <= 9]
    if bad or len(normal_classes) == 10:
        raise RecipeError(
            f"Expected data.normal_classes to be digits 0-9, not all ten (the rest are the anomalies). "
            f"Received: {normal_classes}. Fix the recipe."
        )
    raw = load_digits()
    scale = 1.0 / 16.0
    x = (raw.images.astype(np.float32) * scale)[..., None]
    anomalous = ~np.isin(raw.target, normal_classes)
    pre = {"scale": scale, "mean": 0.0, "layout": "NHWC", "input_range": [0, 16], "input_shape": [8, 8, 1],
           "normal_classes": list(normal_classes)}
    return x, anomalous, pre, f"digits (normal: {', '.join(map(str, normal_classes))})"


def _read_file(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"Expected an anomaly data file (.csv, .tsv or .npz). Received: {path}, which does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"Expected a readable .npz (np.savez). Received: {path} ({exc}).") from None
        if "x" not in arrays or "y" not in arrays:
            raise DataError(f"Expected arrays 'x' (samples, features) and 'y' (0 normal, 1 anomalous) in {path}. "
                            f"Received keys: {sorted(arrays)}. Save with np.savez(path, x=x, y=y).")
        x, y = arrays["x"], arrays["y"]
        if x.dtype.kind not in "fiu" or len(x) != len(y) or x.ndim < 2:
            raise DataError(f"Expected numeric 'x' shaped (samples, features...) and one 'y' per sample in {path}. "
                            f"Received: x {x.dtype} {x.shape}, y {y.shape}.")
        values = set(np.unique(y).tolist())
        if not values <= {0, 1}:
            raise DataError(f"Expected 'y' to hold 0 (normal) and 1 (anomalous) in {path}. Received values: "
                            f"{sorted(values)[:10]}. Map your labels to 0/1.")
        return x.astype(np.float32), y.astype(bool)
    if suffix not in (".csv", ".tsv"):
        raise DataError(f"Expected an anomaly data file .csv, .tsv or .npz. Received: {path.name}.")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","))
    if not rows or label_column not in rows[0]:
        raise DataError(f"Expected a header row with a {label_column!r} column in {path}. "
                        f"Received: {rows[0] if rows else 'an empty file'}. Set data.label_column.")
    head, body = rows[0], [r for r in rows[1:] if r]
    at = head.index(label_column)
    labels, feats = [], []
    for i, row in enumerate(body, start=2):
        word = row[at].strip().lower() if at < len(row) else ""
        if word not in _WORDS:
            raise DataError(f"Expected {label_column!r} to be normal or anomalous (or 0 / 1) in {path}, line {i}. "
                            f"Received: {row[at] if at < len(row) else 'nothing'!r}.")
        labels.append(_WORDS[word])
        try:
            feats.append([float(v) for j, v in enumerate(row) if j != at])
        except ValueError:
            raise DataError(f"Expected numeric feature columns in {path}, line {i}. Received: {row}.") from None
    if not feats or len({len(r) for r in feats}) != 1 or not feats[0]:
        raise DataError(f"Expected every row of {path} to hold the same number of numeric features. "
                        "Received: rows of different lengths, or no feature column.")
    return np.asarray(feats, dtype=np.float32), np.asarray(labels, dtype=bool)


def pca_baseline(x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, components: int,
                 seed: int = 0) -> dict[str, Any]:
    """ROC AUC of PCA reconstruction error: PCA fit on the training normals, ``components`` kept.

    The linear counterpart of an autoencoder with a ``components``-wide
    bottleneck (a linear autoencoder trained with MSE spans the same subspace),
    so it is what the network has to beat; scikit-learn ``PCA`` and
    ``roc_auc_score``.
    """
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score

    n, d = len(x_train), int(np.prod(x_train.shape[1:]))
    k = max(1, min(components, d, n - 1))
    pca = PCA(n_components=k, random_state=seed).fit(x_train.reshape(n, -1))
    flat = x_test.reshape(len(x_test), -1)
    recon = pca.inverse_transform(pca.transform(flat))
    scores = np.mean(np.square(flat - recon), axis=1)
    return {"pca_roc_auc": float(roc_auc_score(y_test, scores)), "pca_components": k,
            "rule": "PCA fit on the training normals; score = mean squared reconstruction error; ROC AUC on test"}
