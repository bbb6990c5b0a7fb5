"""The text tokenizer on the device: ids equal to Keras TextVectorization's, recorded on the host.

tests/test_text.py keeps ``data/tokenizer_keras.json`` equal to what Keras
computes; this file needs no TensorFlow, so it also runs in the emulated arm64 root.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.runtime._text import Tokenizer

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root

GOLDEN = Path(__file__).parent / "data" / "tokenizer_keras.json"


def test_tokenizer_matches_recorded_keras_ids() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    tok = Tokenizer(golden["vocabulary"], sequence_length=golden["sequence_length"])
    got = tok(golden["texts"])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.array(golden["ids"], dtype=np.int32))
    np.testing.assert_array_equal(tok(golden["texts"][1]), got[1:2])  # a single string is a batch of one
