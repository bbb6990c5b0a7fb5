"""``text:PATH`` datasets: a CSV or TSV with a text column and a label column.

Strings become token ids through a Keras ``TextVectorization`` layer adapted on
the training split only (``lower_and_strip_punctuation``, whitespace split,
ids 0 = padding and 1 = out-of-vocabulary, padded or truncated to
``sequence_length``). The ``x_*`` arrays are int32 token ids: the exported
models take ids, because TFLite cannot run string ops. The vocabulary and these
settings travel in the bundle (manifest ``"text"``) and the runtime's
tokenizer (``edgeship.runtime._text``) applies them on the device.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import DataError
from edgeship.core.tf import tf_modules

from ._datasets import Dataset, register_dataset, split

STANDARDIZE = "lower_and_strip_punctuation"
SPLIT = "whitespace"


def read_table(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and label strings from a CSV (``,``) or TSV (``.tsv``/``.tab``: tab) file with a header row."""
    if not path.is_file():
        what = "a folder" if path.is_dir() else "nothing (no such path)"
        raise DataError(
            f"Expected a CSV or TSV file for text:PATH. Received: {path}, {what}. "
            "Point data.dataset at a file such as text:data/reviews.csv."
        )
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter=delimiter))
            header = list(rows[0].keys()) if rows else []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"Cannot read {path} as UTF-8 {'TSV' if delimiter == chr(9) else 'CSV'}. Received: {exc}. Fix the file."
        ) from None
    if not rows:
        raise DataError(f"Expected a header row and data rows in {path}. Received: no data rows. Add examples.")
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DataError(
            f"Expected columns {text_column!r} (text) and {label_column!r} (label) in {path}. "
            f"Received: columns {[h for h in header if h is not None]}, no {', '.join(repr(m) for m in missing)}. "
            "Rename the columns or set data.text_column / data.label_column."
        )
    texts = [(r[text_column] or "") for r in rows]
    labels = [(r[label_column] or "").strip() for r in rows]
    if any(not lab for lab in labels):
        first = next(i for i, lab in enumerate(labels) if not lab)
        raise DataError(
            f"Every row of {path} needs a label. Received: an empty {label_column!r} in data row {first + 1}. Fix the file."
        )
    return texts, labels


def make_vectorizer(texts: list[str], *, vocab_size: int, sequence_length: int) -> Any:
    """A ``TextVectorization`` layer adapted on ``texts``."""
    tf, keras = tf_modules()
    vec = keras.layers.TextVectorization(
        max_tokens=vocab_size,
        standardize=STANDARDIZE,
        split=SPLIT,
        output_mode="int",
        output_sequence_length=sequence_length,
        name="vectorize",
    )
    vec.adapt(tf.constant(texts, dtype=tf.string), batch_size=256)
    return vec


@register_dataset("text")
def _text(
    *,
    path: str,
    seed: int,
    test_fraction: float,
    val_fraction: float,
    text_column: str = "text",
    label_column: str = "label",
    sequence_length: int = 64,
    vocab_size: int = 2000,
) -> Dataset:
    """A CSV/TSV text classification table; labels are the sorted distinct label strings."""
    tf, _ = tf_modules()
    p = Path(path).expanduser()
    texts, label_strings = read_table(p, text_column, label_column)
    names = sorted(set(label_strings))
    if len(names) < 2:
        raise DataError(
            f"A classifier needs at least 2 classes. Received: a single label {names[0]!r} in column "
            f"{label_column!r} of {p}. Add rows of other classes."
        )
    index = {n: i for i, n in enumerate(names)}
    y = np.asarray([index[s] for s in label_strings], dtype=np.int64)
    rows = np.arange(len(texts))
    r_train, y_train, r_val, y_val, r_test, y_test = split(
        rows, y, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction
    )
    vec = make_vectorizer([texts[i] for i in r_train], vocab_size=vocab_size, sequence_length=sequence_length)

    def ids(r: np.ndarray) -> np.ndarray:
        return vec(tf.constant([texts[i] for i in r], dtype=tf.string)).numpy().astype(np.int32)

    vocabulary = [str(t) for t in vec.get_vocabulary()]
    return Dataset(
        f"text:{p.name}",
        ids(r_train),
        y_train,
        ids(r_val),
        y_val,
        ids(r_test),
        y_test,
        labels=names,
        preprocessing={"layout": "token_ids", "dtype": "int32", "input_shape": [int(sequence_length)]},
        text={
            "vocabulary": vocabulary,
            "standardize": STANDARDIZE,
            "split": SPLIT,
            "sequence_length": int(sequence_length),
            "oov_token": "[UNK]",
            "padding_id": 0,
        },
        extras={"test_texts": [texts[i] for i in r_test], "train_texts": [texts[i] for i in np.concatenate([r_train, r_val])]},
    )


def text_model(model: Any, text: dict[str, Any]) -> Any:
    """The end-to-end Keras model: string input -> ``TextVectorization`` (from ``text``) -> ``model``.

    ``model`` takes int32 token ids (what the bundle's artifacts take); the
    result takes a batch of strings, shape ``(batch,)``.
    """
    tf, keras = tf_modules()
    vec = keras.layers.TextVectorization(
        standardize=text["standardize"],
        split=text["split"],
        output_mode="int",
        output_sequence_length=int(text["sequence_length"]),
        vocabulary=text["vocabulary"][2:],
        name="vectorize",
    )
    inputs = keras.Input(shape=(), dtype=tf.string, name="text")
    ids = tf.cast(vec(inputs), tf.int32)
    return keras.Model(inputs, model(ids), name=f"{model.name}_text")
