"""Device-side tokenizer: strings to token ids without TensorFlow (numpy + stdlib only).

Applies the same steps as the Keras ``TextVectorization`` layer the model was
trained with, from the vocabulary and settings a text bundle's manifest holds
under ``"text"``:

1. standardize: ``"lower_and_strip_punctuation"`` (default), ``"lower"``,
   ``"strip_punctuation"`` or ``None``; punctuation is Keras'
   ``DEFAULT_STRIP_REGEX``;
2. split: ``"whitespace"`` (default) or ``"character"``;
3. look up: index 0 is padding (``""``), index 1 the out-of-vocabulary token
   (``"[UNK]"``), as ``TextVectorization.get_vocabulary()`` lists them;
4. truncate or zero-pad at the end to ``sequence_length``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._errors import BundleError, InputError

# Keras text_vectorization.DEFAULT_STRIP_REGEX (string.punctuation, escaped for RE2).
STRIP_REGEX = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SPLIT = ("whitespace", "character")


class Tokenizer:
    """Strings to int32 token ids ``(batch, sequence_length)``, as the model's TextVectorization did."""

    def __init__(
        self,
        vocabulary: Sequence[str],
        *,
        sequence_length: int,
        standardize: str | None = "lower_and_strip_punctuation",
        split: str = "whitespace",
        oov_index: int = 1,
    ) -> None:
        if standardize not in STANDARDIZE or split not in SPLIT:
            raise BundleError(
                f"Expected text standardize in {STANDARDIZE} and split in {SPLIT}. "
                f"Received: standardize={standardize!r}, split={split!r}. Rebuild the bundle with a supported setting."
            )
        if int(sequence_length) < 1 or len(vocabulary) < 2:
            raise BundleError(
                "Expected a text vocabulary of at least 2 entries and sequence_length >= 1. "
                f"Received: {len(vocabulary)} entries, sequence_length={sequence_length}. Rebuild the bundle."
            )
        self.vocabulary = list(vocabulary)
        self.sequence_length = int(sequence_length)
        self.standardize = standardize
        self.split = split
        self.oov_index = int(oov_index)
        # Index 0 is padding: an empty token never maps there.
        self._index = {tok: i for i, tok in enumerate(self.vocabulary) if i > 0}

    @classmethod
    def from_manifest(cls, text: dict[str, Any]) -> Tokenizer:
        """Build from a bundle manifest's ``"text"`` entry."""
        try:
            return cls(
                text["vocabulary"],
                sequence_length=text["sequence_length"],
                standardize=text.get("standardize", "lower_and_strip_punctuation"),
                split=text.get("split", "whitespace"),
            )
        except KeyError as exc:
            raise BundleError(
                f"Expected manifest['text'] to hold vocabulary and sequence_length. Received: no {exc.args[0]!r}. "
                "Rebuild the bundle."
            ) from None

    def tokens(self, text: str) -> list[str]:
        """The standardized, split tokens of one string (before lookup)."""
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.lower()
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = STRIP_REGEX.sub("", text)
        return text.split() if self.split == "whitespace" else list(text)

    def __call__(self, texts: Any) -> np.ndarray:
        """Token ids for a string or a batch of strings (list, tuple or numpy str/object array)."""
        batch = to_string_batch(texts)
        out = np.zeros((len(batch), self.sequence_length), dtype=np.int32)
        get, oov, n = self._index.get, self.oov_index, self.sequence_length
        for row, text in enumerate(batch):
            ids = [get(tok, oov) for tok in self.tokens(text)[:n]]
            out[row, : len(ids)] = ids
        return out


def is_text(x: Any) -> bool:
    """True for a str, a non-empty list/tuple of str, or a numpy array of str/bytes/objects."""
    if isinstance(x, (str, bytes)):
        return True
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(isinstance(t, (str, bytes)) for t in x)
    return isinstance(x, np.ndarray) and x.dtype.kind in "USO"


def to_string_batch(x: Any) -> list[str]:
    if isinstance(x, (str, bytes)):
        x = [x]
    items = list(np.asarray(x, dtype=object).reshape(-1)) if isinstance(x, np.ndarray) else list(x)
    batch = []
    for t in items:
        if isinstance(t, bytes):
            t = t.decode("utf-8")
        if not isinstance(t, str):
            raise InputError(
                f"Text model expects strings. Received: {type(t).__name__} in the batch. Pass a list of str."
            )
        batch.append(t)
    return batch
