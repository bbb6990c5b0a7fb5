"""Classification metrics through scikit-learn, as the bundle's :class:`~edgeship.core.bundle.Evaluation` record."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeship.core.bundle import ClassScores, Evaluation


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> Evaluation:
    """Accuracy, per-class and macro precision/recall/F1, and the confusion matrix.

    Returns an :class:`~edgeship.core.bundle.Evaluation`: ``accuracy``, ``macro``
    (``precision``, ``recall``, ``f1``), ``per_class`` (label -> ``ClassScores``) and
    ``confusion_matrix`` (``to_json()`` gives the manifest's shape); rows of the matrix are true classes,
    columns predicted, both in ``labels`` order. Classes never predicted get
    precision 0 (scikit-learn ``zero_division=0``).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    ids = list(range(len(labels)))
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=ids, average="macro", zero_division=0)
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro={"precision": float(mp), "recall": float(mr), "f1": float(mf)},
        per_class={
            str(name): ClassScores(precision=float(p[i]), recall=float(r[i]), f1=float(f[i]), support=int(s[i]))
            for i, name in enumerate(labels)
        },
        confusion_matrix=tuple(tuple(row) for row in confusion_matrix(y_true, y_pred, labels=ids).astype(int).tolist()),
    )


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 over ``num_classes`` classes (scikit-learn, ``zero_division=0``)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(num_classes)), average="macro", zero_division=0))


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, labels: list[str]) -> Evaluation:
    """:func:`classification_report` of a Keras classifier on ``(x, y)``."""
    from ._stream import chunks, is_lazy

    if is_lazy(x):  # a streamed split: predicted chunk by chunk, never decoded whole
        pred = np.concatenate([np.argmax(model.predict(part, verbose=0, batch_size=256), axis=-1)
                               for part in chunks(x)]) if len(x) else np.zeros(0, dtype=np.int64)
        return classification_report(y, pred, labels)
    probs = model.predict(x, verbose=0, batch_size=256)
    return classification_report(y, np.argmax(probs, axis=-1), labels)
