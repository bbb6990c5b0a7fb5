"""``images:PATH`` datasets: loading, both folder layouts, augmentation, errors, and an end-to-end build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship import train
from edgeship.core.errors import DataError

COLORS = {"blue": 2, "green": 1, "red": 0}


def make_folder(root: Path, per_class: int, classes: dict[str, int] = COLORS, seed: int = 0, size: int = 16) -> Path:
    """PNG class folders: noise images whose class channel is bright (learnable in a few epochs)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, channel in classes.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
            img[..., channel] = rng.integers(150, 256, (size, size))
            Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root


def image_recipe(dataset: str, **train_opts: object) -> object:
    from edgeship.recipe import Recipe

    data = Recipe.default().to_dict()
    data["name"] = "images-test"
    data["data"].update(dataset=dataset, image_size=[16, 16])
    data["train"].update(epochs=6, batch_size=8, early_stopping_patience=6, learning_rate=3e-3, **train_opts)
    data["prune"].update(enabled=False)
    data["quantize"].update(calibration_samples=32)
    # A dozen test images cannot show significance over the majority class; these tests are about loading.
    data["budget"].update(allow_chance_level=True)
    if "measure_rss" in data["export"]:
        data["export"]["measure_rss"] = False
    return Recipe.from_dict(data)


def test_class_folders_are_split_stratified_and_rescaled(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", per_class=20)
    ds = train.load_dataset(f"images:{root}", seed=0, image_size=(12, 10), rescale=1 / 255)
    assert ds.labels == ["blue", "green", "red"]  # sorted folder names, as Keras does
    assert ds.input_shape == (12, 10, 3)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 60
    assert sorted(np.bincount(ds.y_test)) == [4, 4, 4]
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # the bright channel is the label
    assert (ds.x_train.mean(axis=(1, 2)).argmax(axis=1) == np.array([2, 1, 0])[ds.y_train]).all()
    again = train.load_dataset(f"images:{root}", seed=0, image_size=(12, 10))
    np.testing.assert_array_equal(again.x_test, ds.x_test)  # same seed, same split
    gray = train.load_dataset(f"images:{root}", seed=0, image_size=(8, 8), color_mode="grayscale")
    assert gray.input_shape == (8, 8, 1)


def test_folder_options_are_a_validated_record(tmp_path: Path) -> None:
    from edgeship.core.errors import DataError

    o = train.ImageFolderOptions(image_size=[12, 10], color_mode="grayscale")
    assert o.image_size == (12, 10) and o.mode == "L" and o.channels == 1
    root = make_folder(tmp_path / "imgs", per_class=6)
    with pytest.raises(DataError, match=r"color_mode must be 'rgb' or 'grayscale'\. Received: 'cmyk'"):
        train.load_dataset(f"images:{root}", color_mode="cmyk")
    with pytest.raises(DataError, match=r"data.stream must be .* Received: 'sometimes'"):
        train.load_dataset(f"images:{root}", stream="sometimes")
    ds = train.load_dataset(f"images:{root}", seed=0, image_size=(8, 8), text_column="ignored")  # other loaders' keys
    assert ds.input_shape == (8, 8, 3) and ds.preprocessing["resize"] == [8, 8]


def test_binary_and_train_test_layout(tmp_path: Path) -> None:
    make_folder(tmp_path / "two" / "train", per_class=12, classes={"cat": 0, "dog": 2})
    make_folder(tmp_path / "two" / "test", per_class=5, classes={"cat": 0, "dog": 2}, seed=1)
    ds = train.load_dataset(f"images:{tmp_path / 'two'}", seed=0, image_size=(16, 16))
    assert ds.labels == ["cat", "dog"]
    assert len(ds.x_test) == 10  # exactly the test/ folder
    assert len(ds.x_train) + len(ds.x_val) == 24
    assert ds.preprocessing["layout_on_disk"] == "train/ + test/ class folders"


def test_augmentation_changes_training_batches_only_as_configured() -> None:
    assert train.make_augmenter() is None
    x = np.random.default_rng(0).random((6, 16, 16, 3)).astype(np.float32)
    y = np.arange(6)
    flip = train.make_augmenter(horizontal_flip=True)
    train.set_seed(0)
    out, y_out = (np.asarray(t) for t in flip(x, y))
    np.testing.assert_array_equal(y_out, y)
    for a, b in zip(out, x):  # each image is either itself or its mirror
        assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])
    assert any(np.array_equal(a, b[:, ::-1]) for a, b in zip(out, x))
    geo = train.make_augmenter(rotation=30, shear=10, zoom=0.2)
    moved = np.asarray(geo(x, y)[0])
    assert moved.shape == x.shape and not np.allclose(moved, x)
    assert abs(float(moved.mean()) - float(x.mean())) < 0.1  # nearest fill: no black borders


def test_zero_range_transform_is_the_identity() -> None:
    x = np.random.default_rng(1).random((2, 9, 7, 1)).astype(np.float32)
    ident = train.make_augmenter(rotation=1e-9)
    np.testing.assert_allclose(np.asarray(ident(x, np.zeros(2))[0]), x, atol=1e-5)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("empty", "no sub-folders"),
        ("empty_classes", "empty sub-folders"),
        ("single", "single class folder 'cats'"),
        ("unreadable", "Cannot read image .*broken.png"),
        ("missing", "no such path"),
    ],
)
@pytest.mark.parametrize("stream", ["never", "always"])
def test_bad_folders_fail_with_a_typed_error_and_write_nothing(tmp_path: Path, case: str, match: str,
                                                               stream: str) -> None:
    from edgeship.build import build
    from edgeship.recipe import Recipe

    root = tmp_path / "data"
    if case == "empty":
        root.mkdir()
    elif case == "empty_classes":
        (root / "a").mkdir(parents=True)
        (root / "b").mkdir()
    elif case == "single":
        make_folder(root, per_class=6, classes={"cats": 0})
    elif case == "unreadable":
        make_folder(root, per_class=6, classes={"a": 0, "b": 1})
        (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    out = tmp_path / "bundle"
    recipe = image_recipe(f"images:{root}").to_dict()
    recipe["data"]["stream"] = stream
    with pytest.raises(DataError, match=match):
        build(Recipe.from_dict(recipe), out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data"] if root.exists() else [])


def test_unknown_architecture_and_wrong_task_fail_before_any_work(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.core.errors import RecipeError
    from edgeship.recipe import Recipe

    data = Recipe.default().to_dict()
    data["model"]["arch"] = "resnet9000"
    with pytest.raises(RecipeError, match="Valid names: .*mobilenet_v1_025"):
        build(Recipe.from_dict(data), tmp_path / "a")
    data["model"]["arch"] = "fc_autoencoder"
    with pytest.raises(RecipeError, match="reconstruction model"):
        build(Recipe.from_dict(data), tmp_path / "b")
    data["model"]["arch"] = "text_cnn"
    with pytest.raises(RecipeError, match="takes tokens input"):
        build(Recipe.from_dict(data), tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_images_recipe_builds_end_to_end_from_train_test_folders(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.core.tf import tf_modules
    from edgeship.runtime import load, load_eval

    _, keras = tf_modules()
    make_folder(tmp_path / "data" / "train", per_class=20)
    make_folder(tmp_path / "data" / "test", per_class=6, seed=1)
    recipe = image_recipe(
        f"images:{tmp_path / 'data'}",
        checkpoint=True,
        tensorboard=True,
    )
    recipe.data.augmentation.horizontal_flip = True
    recipe.data.augmentation.rotation = 10.0
    out = build(recipe, tmp_path / "bundle")

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == ["blue", "green", "red"]
    assert {(a["format"], a["precision"]) for a in manifest["artifacts"]} == {
        ("tflite", "float32"),
        ("tflite", "int8"),
        ("onnx", "float32"),
        ("onnx", "int8"),
    }
    ev = manifest["metrics"]["evaluation"]
    assert set(ev) >= {"accuracy", "macro", "per_class", "confusion_matrix"}
    assert sum(map(sum, ev["confusion_matrix"])) == 18 == sum(c["support"] for c in ev["per_class"].values())
    assert ev["accuracy"] > 0.6  # 3 classes: chance is 1/3
    assert all(0.0 <= a["metrics"]["macro_f1"] <= 1.0 for a in manifest["artifacts"])
    assert "## Evaluation" in (out / "report.md").read_text()
    assert any((out / "training" / "logs").rglob("events.out.tfevents*"))

    # The Keras model (best checkpoint = the restored weights, no pruning) and both formats take the same input.
    keras_model = keras.models.load_model(out / "training" / "best.keras")
    x, y = load_eval(out)
    assert x.shape[1:] == tuple(keras_model.input_shape[1:]) and x.dtype == np.float32
    want = keras_model.predict(x, verbose=0)
    for fmt in ("tflite", "onnx"):
        for precision in ("float32", "int8"):
            with load(out, format=fmt, precision=precision) as m:
                assert tuple(m.inputs[0].shape[1:]) == (16, 16, 3)
                got = m.predict(x)
                if precision == "float32":
                    np.testing.assert_allclose(got, want, atol=1e-4)
                else:
                    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.8
                assert m.predict_labels(x[:2])[0] in manifest["labels"]


@pytest.mark.slow
def test_images_recipe_builds_from_a_single_folder_of_classes(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.runtime import load

    make_folder(tmp_path / "data", per_class=15, classes={"no": 0, "yes": 2})  # binary
    recipe = image_recipe(f"images:{tmp_path / 'data'}")
    recipe.export.formats = ["tflite"]  # the two-folder test covers all four artifacts
    recipe.quantize.enabled = False
    out = build(recipe, tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == ["no", "yes"]
    assert len(manifest["metrics"]["evaluation"]["confusion_matrix"]) == 2
    with load(out) as m:
        assert m.predict(np.zeros((1, 16, 16, 3), np.float32)).shape == (1, 2)


# -- folders streamed from disk (data.stream; edgeship.train._stream) ---------------------------------------


def test_a_streamed_folder_has_the_same_splits_and_pixels_and_decodes_lazily(tmp_path: Path) -> None:
    from edgeship.train._stream import ImageFiles

    root = make_folder(tmp_path / "imgs", per_class=20)
    mem = train.load_dataset(f"images:{root}", seed=0, image_size=(16, 16))
    lazy = train.load_dataset(f"images:{root}", seed=0, image_size=(16, 16), stream="always")
    assert lazy.extras == {"streamed": True} and not mem.extras.get("streamed")
    assert isinstance(lazy.x_train, ImageFiles) and isinstance(lazy.x_test, ImageFiles)
    assert isinstance(lazy.x_val, np.ndarray)  # decoded once: early stopping and the budget read it often
    assert lazy.input_shape == mem.input_shape and lazy.x_train.shape == mem.x_train.shape
    for split in ("y_train", "y_val", "y_test"):
        np.testing.assert_array_equal(getattr(lazy, split), getattr(mem, split))  # split on the same file list
    # 16x16 files at 16x16: no resampling, so TensorFlow's decode equals Pillow's exactly
    np.testing.assert_array_equal(np.asarray(lazy.x_train), mem.x_train)
    np.testing.assert_array_equal(lazy.x_val, mem.x_val)
    view = lazy.x_test[[3, 1]]
    assert isinstance(view, ImageFiles) and len(view) == 2  # indexing reads nothing
    np.testing.assert_array_equal(np.asarray(view), mem.x_test[[3, 1]])
    np.testing.assert_array_equal(lazy.x_test[5], mem.x_test[5])
    # resized: TF bilinear with antialias against Pillow's bilinear, the same picture
    small_mem = train.load_dataset(f"images:{root}", seed=0, image_size=(12, 10))
    small = train.load_dataset(f"images:{root}", seed=0, image_size=(12, 10), stream="always")
    assert np.abs(np.asarray(small.x_train) - small_mem.x_train).mean() < 0.02


def test_auto_streams_only_above_the_size_threshold(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", per_class=10)  # 30 images of 16x16x3 float32: 92,160 bytes
    assert not train.load_dataset(f"images:{root}", image_size=(16, 16), stream_above_mb=0.1).extras
    assert train.load_dataset(f"images:{root}", image_size=(16, 16), stream_above_mb=0.05).extras["streamed"]
    assert not train.load_dataset(f"images:{root}", image_size=(16, 16), stream="never",
                                  stream_above_mb=0.05).extras


def test_the_streamed_pipeline_augments_the_training_branch_only_and_caches_to_a_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", per_class=12)
    ds = train.load_dataset(f"images:{root}", image_size=(16, 16), stream="always", cache_dir=str(tmp_path / "c"))
    x, y = ds.x_train, ds.y_train
    plain = np.asarray(x)
    flip = train.make_augmenter(horizontal_flip=True)
    ordered = list(x.dataset(y, batch_size=8, augment=flip).as_numpy_iterator())  # not the training branch
    np.testing.assert_array_equal(np.concatenate([b[0] for b in ordered]), plain)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ordered]), y)
    train.set_seed(0)
    pipe = x.dataset(y, batch_size=8, shuffle=True, seed=0, augment=flip)
    epochs = [list(pipe.as_numpy_iterator()) for _ in range(2)]
    labels = [np.concatenate([b[1] for b in e]) for e in epochs]
    assert sorted(labels[0]) == sorted(labels[1]) == sorted(y)  # every image once per epoch
    assert not np.array_equal(labels[0], labels[1])  # reshuffled each epoch
    images = np.concatenate([b[0] for b in epochs[1]])
    as_is = [any(np.array_equal(img, p) for p in plain) for img in images]
    flipped = [any(np.array_equal(img[:, ::-1], p) for p in plain) for img in images]
    assert all(a or f for a, f in zip(as_is, flipped)) and not all(as_is)  # flipped views, nothing else
    assert [p.suffix for p in sorted((tmp_path / "c").iterdir())] == [".data-00000-of-00001", ".index"]


@pytest.mark.slow
def test_a_streamed_folder_builds_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeship import build as build_mod
    from edgeship.recipe import Recipe

    monkeypatch.setattr(build_mod, "STREAMED_EVAL_SAMPLES", 6)  # artifacts verified on a sample of the test split
    make_folder(tmp_path / "data", per_class=15)
    recipe = image_recipe(f"images:{tmp_path / 'data'}").to_dict()
    recipe["data"].update(stream="always", cache_dir=str(tmp_path / "cache"))
    recipe["export"]["formats"] = ["tflite"]
    recipe["quantize"]["tflite"] = ["int8"]
    out = build_mod.build(Recipe.from_dict(recipe), tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["eval"]["samples"] == 6
    assert len(np.load(out / "eval.npz")["y"]) == 6
    assert sum(map(sum, manifest["metrics"]["evaluation"]["confusion_matrix"])) == 9  # the whole test split
    assert manifest["metrics"]["keras_float32_accuracy"] >= 0.8
    assert any((tmp_path / "cache").iterdir())
