"""Transfer learning: load_pretrained from files and ImageNet (offline), and set_trainable."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship import train
from edgeship.core.errors import RecipeError
from edgeship.core.tf import tf_modules
from edgeship.train._weights import load_pretrained, set_trainable

BASE = ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3"]  # small_cnn's weighted layers before the head
CLOSED_PORT = "http://127.0.0.1:9"  # discard port on loopback: refused at once, nothing leaves the machine


def _digits(classes: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = d.target < classes
    return (d.images[keep] / 16.0)[..., None].astype("float32"), d.target[keep]


def _weights(model: Any, names: list[str]) -> dict[str, list[np.ndarray]]:
    return {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in names}


def _equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list[np.ndarray]], Path]:
    """A small_cnn trained briefly on digits 0-4, saved in every format; returns its base weights and the folder."""
    _, keras = tf_modules()
    keras.utils.set_random_seed(0)
    x, y = _digits(5)
    model = train.create_model("small_cnn", (8, 8, 1), 5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    out = tmp_path_factory.mktemp("pretrained")
    model.save_weights(out / "base.h5")
    model.save_weights(out / "base.weights.h5")
    model.save(out / "full.keras")
    model.save(out / "full.h5")
    return _weights(model, [*BASE, "probs"]), out


# -- files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["base.h5", "base.weights.h5", "full.keras", "full.h5"])
def test_base_loads_from_each_save_format_and_the_new_head_stays_fresh(
    pretrained: tuple[dict[str, list[np.ndarray]], Path], name: str
) -> None:
    saved, folder = pretrained
    _, keras = tf_modules()
    keras.utils.set_random_seed(1)
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    head_before = model.get_layer("probs").get_weights()

    loaded = load_pretrained(model, folder / name, arch="small_cnn")

    assert loaded == BASE
    for layer in BASE:
        assert _equal(model.get_layer(layer).get_weights(), saved[layer]), layer
    assert _equal(model.get_layer("probs").get_weights(), head_before)  # 10 classes here, 5 in the file


def test_head_is_not_loaded_even_when_the_class_count_matches(
    pretrained: tuple[dict[str, list[np.ndarray]], Path],
) -> None:
    # Same count, other classes: the pretrained head would be wrong, and freezing it would leave nothing to train.
    saved, folder = pretrained
    model = train.create_model("small_cnn", (8, 8, 1), 5)
    head_before = model.get_layer("probs").get_weights()
    assert load_pretrained(model, str(folder / "base.h5"), arch="small_cnn") == BASE
    assert _equal(model.get_layer("probs").get_weights(), head_before)
    assert not _equal(head_before, saved["probs"])


@pytest.mark.parametrize("ext", [".h5", ".keras"])
def test_unnamed_layers_match_by_rank_when_keras_numbered_them_differently(tmp_path: Path, ext: str) -> None:
    # Files from edgeship before 0.2: ds_cnn's layers were auto-named, numbered per process (conv2d_5... where
    # the first ds_cnn of a process had conv2d). Such a file is made here by cloning with Keras' own names.
    _, keras = tf_modules()
    keras.utils.set_random_seed(2)
    built = train.create_model("ds_cnn", (49, 10, 1), 12)
    train.create_model("ds_cnn", (49, 10, 1), 12)  # Keras' per-process counters move on

    def auto_named(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name != "probs":
            config.pop("name", None)
        return type(layer).from_config(config)

    source = keras.models.clone_model(built, clone_function=auto_named)
    source.set_weights(built.get_weights())
    path = tmp_path / f"ds_cnn{ext}"
    source.save_weights(path) if ext == ".h5" else source.save(path)
    model = train.create_model("ds_cnn", (49, 10, 1), 12)
    assert [layer.name for layer in model.layers] != [layer.name for layer in source.layers]

    loaded = load_pretrained(model, path, arch="ds_cnn")

    src = [layer for layer in source.layers if layer.weights and layer.name != "probs"]
    dst = [layer for layer in model.layers if layer.weights and layer.name != "probs"]
    assert loaded == [layer.name for layer in dst]
    assert all(_equal(a.get_weights(), b.get_weights()) for a, b in zip(src, dst))


def test_a_file_sharing_no_layer_is_a_recipe_error_listing_both_sides(tmp_path: Path) -> None:
    _, keras = tf_modules()
    other = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(3, name="encoder")])
    other.save_weights(tmp_path / "other.h5")
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    with pytest.raises(RecipeError, match="no layer matched") as info:
        load_pretrained(model, tmp_path / "other.h5", arch="small_cnn")
    assert "encoder" in str(info.value) and "conv1" in str(info.value)
    assert "model.save_weights" in str(info.value)


def test_same_names_with_other_shapes_is_a_recipe_error_naming_the_shapes(tmp_path: Path) -> None:
    train.create_model("small_cnn", (8, 8, 1), 10, width=8).save_weights(tmp_path / "narrow.h5")
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    before = _weights(model, BASE)
    with pytest.raises(
        RecipeError, match=r"other shapes: \[conv1: \(3, 3, 1, 8\) in the source vs \(3, 3, 1, 48\) in the model"
    ):
        load_pretrained(model, tmp_path / "narrow.h5", arch="small_cnn")
    assert all(_equal(model.get_layer(n).get_weights(), w) for n, w in before.items())


def test_missing_and_unreadable_files_are_recipe_errors(tmp_path: Path) -> None:
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    with pytest.raises(RecipeError, match="does not exist"):
        load_pretrained(model, tmp_path / "nope.h5", arch="small_cnn")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(RecipeError, match="not a readable HDF5"):
        load_pretrained(model, tmp_path / "junk.h5", arch="small_cnn")
    (tmp_path / "junk.keras").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive
    with pytest.raises(RecipeError, match="cannot load"):
        load_pretrained(model, tmp_path / "junk.keras", arch="small_cnn")


# -- ImageNet (nothing downloads) ---------------------------------------------------------


class _Hung(BaseException):
    """Not an Exception, so load_pretrained's download handler cannot turn a hang into a pass."""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No network and an empty Keras cache; fails the test instead of hanging past 60 s."""
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, CLOSED_PORT)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    # urlopen caches an opener (and so the proxy settings) on first use; start from none.
    monkeypatch.setattr(urllib.request, "_opener", None)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # get_file caches in ~/.keras, not KERAS_HOME, and falls back to /tmp/.keras if that is not writable.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".keras").mkdir()

    def hung(*_: Any) -> None:
        raise _Hung("the ImageNet download did not fail within 60 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def mobilenet() -> Any:
    return train.create_model("mobilenet_v2", (96, 96, 3), 4, alpha=0.35)


@pytest.mark.usefixtures("offline")
def test_imagenet_on_another_arch_names_mobilenet_v2_and_the_path_fix() -> None:
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    with pytest.raises(RecipeError, match="'mobilenet_v2'.*Received: model.arch = 'small_cnn'") as info:
        load_pretrained(model, "imagenet", arch="small_cnn")
    assert "model.weights = PATH" in str(info.value)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(
    ("shape", "alpha", "fix"),
    [
        ((64, 64, 3), 0.35, "data.image_size"),
        ((96, 96, 1), 0.35, 'data.color_mode = "rgb"'),
        ((96, 96, 3), 0.6, "Set model.alpha"),
    ],
)
def test_imagenet_needs_a_published_size_rgb_and_alpha(shape: tuple[int, int, int], alpha: float, fix: str) -> None:
    model = train.create_model("mobilenet_v2", shape, 4, alpha=alpha)
    with pytest.raises(RecipeError, match="Received: ") as info:
        load_pretrained(model, "imagenet", arch="mobilenet_v2", alpha=alpha)
    assert fix in str(info.value)


@pytest.mark.usefixtures("offline")
def test_imagenet_offline_is_a_recipe_error_pointing_to_a_weights_file(mobilenet: Any) -> None:
    before = _weights(mobilenet, ["Conv1", "bn_Conv1"])
    start = time.monotonic()
    with pytest.raises(RecipeError, match="Could not download the ImageNet weights for mobilenet_v2") as info:
        load_pretrained(mobilenet, "imagenet", arch="mobilenet_v2", alpha=0.35)
    assert time.monotonic() - start < 30
    assert "model.weights = PATH" in str(info.value) and "offline" in str(info.value)
    assert all(_equal(mobilenet.get_layer(n).get_weights(), w) for n, w in before.items())


@pytest.fixture
def fake_imagenet(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """keras.applications.MobileNetV2 with weights=None (random, seeded) in place of the download."""
    _, keras = tf_modules()
    real = keras.applications.MobileNetV2
    built: list[Any] = []

    def fake(**kwargs: Any) -> Any:
        if kwargs.get("weights") != "imagenet":  # the zoo building a model
            return real(**kwargs)
        del kwargs["weights"]
        assert kwargs["include_top"] is False
        keras.utils.set_random_seed(3)
        built.append(real(weights=None, **kwargs))
        return built[-1]

    monkeypatch.setattr(keras.applications, "MobileNetV2", fake)
    return built


@pytest.mark.usefixtures("offline")
def test_imagenet_copies_every_mobilenet_v2_layer_by_name_and_leaves_the_head(
    mobilenet: Any, fake_imagenet: list[Any]
) -> None:
    head_before = mobilenet.get_layer("probs").get_weights()
    loaded = load_pretrained(mobilenet, "imagenet", arch="mobilenet_v2")  # alpha None: the zoo's 0.35
    (source,) = fake_imagenet
    weighted = [layer.name for layer in source.layers if layer.weights]
    assert loaded == weighted and len(loaded) == 104 and "probs" not in loaded
    assert all(_equal(mobilenet.get_layer(n).get_weights(), source.get_layer(n).get_weights()) for n in loaded)
    assert _equal(mobilenet.get_layer("probs").get_weights(), head_before)


@pytest.mark.usefixtures("offline", "fake_imagenet")
def test_imagenet_with_another_alpha_than_the_model_is_a_recipe_error_and_copies_nothing() -> None:
    model = train.create_model("mobilenet_v2", (96, 96, 3), 4, alpha=0.5)
    before = _weights(model, ["Conv1", "block_16_project"])
    with pytest.raises(RecipeError, match=r"other shapes.*Pass the model's alpha"):
        load_pretrained(model, "imagenet", arch="mobilenet_v2", alpha=0.35)
    assert all(_equal(model.get_layer(n).get_weights(), w) for n, w in before.items())


# -- set_trainable ------------------------------------------------------------------------


def test_frozen_base_is_unchanged_by_fit_while_the_head_trains(
    pretrained: tuple[dict[str, list[np.ndarray]], Path],
) -> None:
    _, folder = pretrained
    _, keras = tf_modules()
    keras.utils.set_random_seed(4)
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    base = load_pretrained(model, folder / "base.h5", arch="small_cnn")
    set_trainable(model, base, False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = _weights(model, [*base, "probs"])
    x, y = _digits(10)

    model.fit(x[:64], y[:64], epochs=1, batch_size=16, verbose=0)  # 4 steps

    # BatchNorm included: frozen, it runs in inference mode and keeps its moving statistics.
    for name in base:
        assert _equal(model.get_layer(name).get_weights(), before[name]), name
    assert not _equal(model.get_layer("probs").get_weights(), before["probs"])
    assert [w.name for w in model.trainable_weights] == ["probs/kernel:0", "probs/bias:0"]

    set_trainable(model, base, True)
    assert all(model.get_layer(n).trainable for n in base)
    assert len(model.trainable_weights) == 2 * 3 + 2 * 3 + 2  # conv kernel+bias, BN gamma+beta, head


def test_set_trainable_rejects_unknown_layer_names() -> None:
    model = train.create_model("small_cnn", (8, 8, 1), 10)
    with pytest.raises(RecipeError, match=r"Received: \[conv9\]"):
        set_trainable(model, ["conv1", "conv9"], False)
    assert model.get_layer("conv1").trainable  # nothing changed
