"""``text:PATH`` datasets, the device tokenizer (parity with Keras TextVectorization), and a text build."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgeship import train
from edgeship.core.errors import DataError
from edgeship.runtime._errors import BundleError
from edgeship.runtime._text import Tokenizer, is_text

TOPICS = {
    "food": ["pizza", "bread", "salad", "soup", "cheese", "pasta"],
    "sport": ["goal", "match", "team", "score", "league", "coach"],
    "tech": ["chip", "code", "laptop", "software", "cpu", "server"],
}
GOLDEN = Path(__file__).parent / "data" / "tokenizer_keras.json"
FILLER = ["the", "a", "and", "very", "Nice!", "really,", "today"]


def make_csv(path: Path, rows: int = 120, delimiter: str = ",", columns: tuple[str, str] = ("text", "label")) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["id", *columns])
        for i in range(rows):
            label = sorted(TOPICS)[i % 3]
            words = list(rng.choice(TOPICS[label], 4)) + list(rng.choice(FILLER, 3))
            rng.shuffle(words)
            w.writerow([i, " ".join(words).capitalize() + ".", label])
    return path


TRICKY = [
    "Hello, World!  The CPU's   fast...",
    "UPPER lower MiXeD",
    "tabs\tand\nnewlines",
    "",
    "unknownword pizza-party e-mail (brackets) [x] {y} a+b=c 100%",
    "one two three four five six seven eight nine ten eleven twelve thirteen",
    "Ünïcödé Straße café",
]


def test_tokenizer_matches_keras_text_vectorization() -> None:
    vec = train._text.make_vectorizer(
        TRICKY[:3] + ["pizza party email brackets x y ab c 100 café"], vocab_size=30, sequence_length=9
    )
    tok = Tokenizer(vec.get_vocabulary(), sequence_length=9)
    want = vec(np.array(TRICKY, dtype=object)).numpy()
    np.testing.assert_array_equal(tok(TRICKY), want)
    assert tok(TRICKY).dtype == np.int32
    np.testing.assert_array_equal(tok("UPPER lower MiXeD"), want[1:2])  # a single string is a batch of one
    # The recorded ids the device test (test_device_text.py, no TensorFlow) checks against stay Keras's.
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["texts"] == TRICKY and golden["vocabulary"] == vec.get_vocabulary()
    assert golden["sequence_length"] == 9 and golden["ids"] == want.tolist()


def test_tokenizer_settings_and_bad_manifest() -> None:
    tok = Tokenizer(["", "[UNK]", "ab", "b"], sequence_length=3, standardize=None, split="character")
    assert tok.tokens("Ab!") == ["A", "b", "!"]
    np.testing.assert_array_equal(tok(["Ab!"]), [[1, 3, 1]])
    assert is_text(["a"]) and is_text(np.array(["a"])) and not is_text(np.zeros(3)) and not is_text([])
    with pytest.raises(BundleError, match="sequence_length"):
        Tokenizer.from_manifest({"vocabulary": ["", "[UNK]", "a"]})
    with pytest.raises(BundleError, match="standardize"):
        Tokenizer(["", "[UNK]"], sequence_length=2, standardize="stem")


def test_csv_and_tsv_loading(tmp_path: Path) -> None:
    ds = train.load_dataset(f"text:{make_csv(tmp_path / 'a.csv')}", seed=0, sequence_length=10, vocab_size=50)
    assert ds.labels == ["food", "sport", "tech"]
    assert ds.input_shape == (10,) and ds.x_train.dtype == np.int32
    assert ds.text["vocabulary"][:2] == ["", "[UNK]"] and len(ds.text["vocabulary"]) <= 50
    assert len(ds.extras["test_texts"]) == len(ds.x_test) == 24
    # the stored settings reproduce the ids on the device
    np.testing.assert_array_equal(Tokenizer.from_manifest(ds.text)(ds.extras["test_texts"]), ds.x_test)
    tsv = make_csv(tmp_path / "b.tsv", delimiter="\t", columns=("sentence", "topic"))
    ds2 = train.load_dataset(f"text:{tsv}", seed=0, text_column="sentence", label_column="topic")
    assert ds2.labels == ds.labels and ds2.input_shape == (64,)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (
            "no_label_column",
            r"columns 'text' \(text\) and 'label' \(label\).*Received: columns \['id', 'text', 'topic'\]",
        ),
        ("single_label", "single label 'food'"),
        ("empty", "no data rows"),
        ("missing", "no such path"),
    ],
)
def test_bad_tables_fail_with_a_typed_error_and_write_nothing(tmp_path: Path, case: str, match: str) -> None:
    from edgeship.build import build

    path = tmp_path / "data.csv"
    if case == "no_label_column":
        make_csv(path, rows=30, columns=("text", "topic"))
    elif case == "single_label":
        path.write_text("text,label\n" + "".join(f"some words {i},food\n" for i in range(30)))
    elif case == "empty":
        path.write_text("text,label\n")
    out = tmp_path / "bundle"
    with pytest.raises(DataError, match=match):
        build(text_recipe(path), out)
    assert not out.exists()


def text_recipe(path: Path, **train_opts: object) -> object:
    from edgeship.recipe import Recipe

    data = Recipe.default().to_dict()
    data["name"] = "text-test"
    data["data"].update(dataset=f"text:{path}", sequence_length=12, vocab_size=100)
    data["model"].update(arch="text_cnn")
    data["train"].update(epochs=12, batch_size=16, early_stopping_patience=4, learning_rate=1e-2, **train_opts)
    data["prune"].update(enabled=False)
    data["quantize"].update(calibration_samples=32)
    if "measure_rss" in data["export"]:
        data["export"]["measure_rss"] = False
    return Recipe.from_dict(data)


@pytest.mark.slow
def test_text_recipe_builds_end_to_end_and_predicts_strings_without_tensorflow(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.core.tf import tf_modules
    from edgeship.runtime import load, load_eval

    tf, keras = tf_modules()
    csv_path = make_csv(tmp_path / "topics.csv")
    out = build(text_recipe(csv_path, checkpoint=True), tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    text = manifest["text"]
    assert text["sequence_length"] == 12 and text["standardize"] == "lower_and_strip_punctuation"
    assert text["split"] == "whitespace" and text["vocabulary"][:2] == ["", "[UNK]"]
    assert len(manifest["artifacts"]) == 4
    assert manifest["metrics"]["evaluation"]["accuracy"] > 0.7

    # The Keras model with its TextVectorization layer, rebuilt from the bundle's vocabulary.
    ids_model = keras.models.load_model(out / "training" / "best.keras")
    strings_model = train.text_model(ids_model, text)
    sentences = ["The team scored a late goal", "my new laptop has a fast CPU!", "Cheese and bread soup", "zzz qqq"]
    want = strings_model.predict(tf.constant(sentences), verbose=0)
    x, _ = load_eval(out)
    assert x.dtype == np.int32 and x.shape[1:] == (12,)
    want_ids = ids_model.predict(x, verbose=0)
    for fmt in ("tflite", "onnx"):
        for precision in ("float32", "int8"):
            with load(out, format=fmt, precision=precision) as m:
                assert np.dtype(m.inputs[0].dtype).kind == "i"  # token ids, like the Keras model's input
                got = m.predict(sentences)  # strings -> the runtime tokenizer -> ids
                got_ids = m.predict(x)
                if precision == "float32":
                    np.testing.assert_allclose(got, want, atol=1e-4)
                    np.testing.assert_allclose(got_ids, want_ids, atol=1e-4)
                else:
                    assert (got_ids.argmax(1) == want_ids.argmax(1)).mean() >= 0.8
                assert m.predict_labels(["pizza pasta salad"]) == ["food"]

    # On the device: no TensorFlow import on the way from strings to labels.
    code = f"""
        import sys
        from edgeship.runtime import load
        with load({str(out)!r}, format="tflite", precision="int8") as m:
            print(m.predict_labels(["goal match team"]))
        print(sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["['sport']", "[]"]
