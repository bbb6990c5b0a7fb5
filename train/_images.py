"""``images:PATH`` datasets: class sub-folders of images, and training-time augmentation.

Two layouts, as Keras ``image_dataset_from_directory`` reads them:

- ``PATH/<class>/*.png``: split into train/val/test (stratified, fixed seed);
- ``PATH/train/<class>/...`` and ``PATH/test/<class>/...``: the test folder is
  the held-out test split; validation comes out of ``train/``.

Class names are the sub-folder names in sorted order (label ids 0..n-1), as in
Keras. Images are decoded with Pillow, converted to RGB (or grayscale),
resized to ``image_size`` (bilinear) and multiplied by ``rescale``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import DataError

from ._datasets import Dataset, register_dataset, split

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def _class_folders(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        what = "a file" if root.exists() else "nothing (no such path)"
        raise DataError(
            f"Expected a folder of class sub-folders for images:PATH. Received: {root}, {what}. "
            "Point data.dataset at a folder such as images:data/pets holding cats/ and dogs/."
        )
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        classes[sub.name] = files
    found = {k: len(v) for k, v in classes.items()}
    if not any(found.values()):
        raise DataError(
            f"Expected class sub-folders holding images ({', '.join(IMAGE_SUFFIXES)}) in {root}. "
            f"Received: {'no sub-folders' if not classes else f'empty sub-folders {sorted(classes)}'}. "
            "Put each class's images in its own sub-folder."
        )
    empty = sorted(k for k, n in found.items() if n == 0)
    if empty:
        raise DataError(
            f"Every class sub-folder of {root} must hold images. Received: no images in {', '.join(empty)}. "
            "Add images there or remove those folders."
        )
    if len(classes) < 2:
        raise DataError(
            f"A classifier needs at least 2 classes. Received: a single class folder {next(iter(classes))!r} "
            f"in {root}. Add a sub-folder per class."
        )
    return classes


def _read(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    from edgeship.core.tf import require

    pil = require("PIL.Image", "Reading image folders")
    try:
        with pil.open(path) as img:
            img = img.convert(mode).resize((size[1], size[0]), pil.BILINEAR)
            arr = np.asarray(img, dtype=np.float32)
    except Exception as exc:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ...
        raise DataError(
            f"Cannot read image {path}. Received: {type(exc).__name__}: {exc}. "
            "Remove or replace the file (supported: BMP, GIF, JPEG, PNG)."
        ) from None
    return arr[..., None] if arr.ndim == 2 else arr


def _load_folder(
    classes: dict[str, list[Path]], names: list[str], size: tuple[int, int], mode: str, rescale: float
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, name in enumerate(names):
        for f in classes.get(name, []):
            xs.append(_read(f, size, mode))
            ys.append(label)
    x = np.stack(xs).astype(np.float32) * np.float32(rescale)
    return x, np.asarray(ys, dtype=np.int64)


def _list_folder(classes: dict[str, list[Path]], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """File paths and label ids, in the order ``_load_folder`` decodes them; each file's signature checked."""
    from ._stream import check_signature

    paths, ys = [], []
    for label, name in enumerate(names):
        for f in classes.get(name, []):
            if not check_signature(f):
                raise DataError(f"Cannot read image {f}. Received: a file that is not BMP, GIF, JPEG or PNG. "
                                "Remove or replace the file (supported: BMP, GIF, JPEG, PNG).")
            paths.append(str(f))
            ys.append(label)
    return np.asarray(paths, dtype=str), np.asarray(ys, dtype=np.int64)


#: ``data.stream = "auto"`` streams a folder whose decoded float32 images would take more than this (MiB).
STREAM_ABOVE_MB = 512.0


@dataclass(frozen=True)
class ImageFolderOptions:
    """How an ``images:PATH`` folder is read; ``load_dataset`` makes it from its keyword options.

    Images are resized to ``image_size`` (height, width), converted to ``color_mode``
    (``rgb`` or ``grayscale``) and multiplied by ``rescale``. ``stream``: ``auto`` (stream
    when the decoded float32 images would take more than ``stream_above_mb`` MiB),
    ``always`` or ``never``; ``cache_dir``: cache the decoded training images of a
    streamed folder in a file there.
    """

    image_size: tuple[int, int] = (32, 32)
    color_mode: str = "rgb"
    rescale: float = 1.0 / 255.0
    stream: str = "auto"
    stream_above_mb: float = STREAM_ABOVE_MB
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))
        if self.color_mode not in _MODES:
            raise DataError(
                f"data.color_mode must be 'rgb' or 'grayscale'. Received: {self.color_mode!r}. Fix the recipe."
            )
        if self.stream not in ("auto", "always", "never"):
            raise DataError(f"data.stream must be 'auto', 'always' or 'never'. Received: {self.stream!r}. Fix the recipe.")

    @property
    def mode(self) -> str:
        """Pillow's mode: ``RGB`` or ``L``."""
        return _MODES[self.color_mode]

    @property
    def channels(self) -> int:
        return 3 if self.mode == "RGB" else 1


_MODES = {"rgb": "RGB", "grayscale": "L"}


@register_dataset("images", options=ImageFolderOptions)
def _images(*, path: str, seed: int, test_fraction: float, val_fraction: float,
            options: ImageFolderOptions | None = None) -> Dataset:
    """A folder of class sub-folders (or ``train/`` + ``test/`` folders of them).

    In memory (Pillow) unless ``options.stream`` is ``"always"``, or ``"auto"`` and the
    decoded float32 images would take more than ``stream_above_mb`` MiB: then the
    train and test splits are lazy :class:`~edgeship.train._stream.ImageFiles`
    streamed with ``tf.data`` (``cache_dir``: cache the decoded training images
    in a file there), and only the validation split is decoded into memory.
    The splits are the same files either way (split on the file list).
    """
    from ._stream import ImageFiles, decoded_bytes

    o = options or ImageFolderOptions()
    root = Path(path).expanduser()
    folders, names = _image_folders(root)
    n_files = sum(len(v) for classes in folders for v in classes.values())
    streamed = o.stream == "always" or (
        o.stream == "auto" and decoded_bytes(n_files, o.image_size, o.channels) > o.stream_above_mb * 2**20)
    load = _list_folder if streamed else (lambda c, n: _load_folder(c, n, o.image_size, o.mode, o.rescale))
    x, y = load(folders[0], names)
    if len(folders) == 2:
        x_test, y_test = load(folders[1], names)
        x_train, y_train, x_val, y_val, _, _ = split(x, y, seed=seed, test_fraction=0.0, val_fraction=val_fraction)
    else:
        x_train, y_train, x_val, y_val, x_test, y_test = split(
            x, y, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction
        )
    if streamed:
        def lazy(paths: np.ndarray) -> ImageFiles:
            return ImageFiles(paths, o.image_size, o.channels, o.rescale, o.cache_dir)

        x_train, x_test = lazy(x_train), lazy(x_test)
        x_val = np.asarray(lazy(x_val))  # early stopping and the budget judge on it many times: decoded once
    return Dataset(
        f"images:{root.name}", x_train, y_train, x_val, y_val, x_test, y_test, labels=names,
        preprocessing=_preprocessing(o, two_folders=len(folders) == 2),
        extras={"streamed": True} if streamed else {},
    )


def _image_folders(root: Path) -> tuple[list[dict[str, list[Path]]], list[str]]:
    """The class folders (``[root]``, or ``[root/train, root/test]``) and the sorted class names."""
    if not ((root / "train").is_dir() and (root / "test").is_dir()):
        classes = _class_folders(root)
        return [classes], sorted(classes)
    train_classes = _class_folders(root / "train")
    test_classes = _class_folders(root / "test")
    names = sorted(train_classes)
    if sorted(test_classes) != names:
        raise DataError(
            f"train/ and test/ in {root} must hold the same class folders. Received: train {names}, "
            f"test {sorted(test_classes)}. Make the class folders match."
        )
    return [train_classes, test_classes], names


def _preprocessing(o: ImageFolderOptions, *, two_folders: bool) -> dict[str, Any]:
    """The manifest's ``preprocessing`` for a folder read with ``o``."""
    size = o.image_size
    return {
        "scale": float(o.rescale),
        "mean": 0.0,
        "layout": "NHWC",
        "input_range": [0, 255],
        "input_shape": [size[0], size[1], o.channels],
        "resize": [size[0], size[1]],
        "color_mode": o.color_mode,
        "layout_on_disk": "train/ + test/ class folders" if two_folders else "class folders",
    }


def make_augmenter(
    *, shear: float = 0.0, zoom: float = 0.0, horizontal_flip: bool = False, rotation: float = 0.0
) -> Any | None:
    """A ``(x_batch, y_batch) -> (x_batch, y_batch)`` tf function, or ``None`` when nothing is on.

    One random affine transform per image about its centre, as Keras
    ``ImageDataGenerator`` defines the ranges: ``rotation`` in degrees
    (uniform in +-rotation), ``shear`` angle in degrees (+-shear), ``zoom``
    a fraction (scale uniform in [1-zoom, 1+zoom]); then a random left-right
    flip with probability 1/2 when ``horizontal_flip``. Edges are filled with
    the nearest pixel. Used on training batches only, never at evaluation or export.
    """
    if not (shear or zoom or horizontal_flip or rotation):
        return None
    from edgeship.core.tf import tf_modules

    tf, _ = tf_modules()
    rot = float(rotation) * math.pi / 180.0
    shr = float(shear) * math.pi / 180.0
    zm = float(zoom)

    def augment(x: Any, y: Any) -> tuple[Any, Any]:
        x = tf.cast(x, tf.float32)
        n = tf.shape(x)[0]
        h = tf.cast(tf.shape(x)[1], tf.float32)
        w = tf.cast(tf.shape(x)[2], tf.float32)
        if rot or shr or zm:
            theta = tf.random.uniform([n], -rot, rot)
            sh = tf.random.uniform([n], -shr, shr)
            z = tf.random.uniform([n], 1.0 - zm, 1.0 + zm)
            # Output->input map: rotation(theta) . shear(sh) . zoom(z) about the centre.
            a0, a1 = z * tf.cos(theta), -z * tf.sin(theta + sh)
            b0, b1 = z * tf.sin(theta), z * tf.cos(theta + sh)
            cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
            a2 = cx - a0 * cx - a1 * cy
            b2 = cy - b0 * cx - b1 * cy
            zeros = tf.zeros([n])
            transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
            x = tf.raw_ops.ImageProjectiveTransformV3(
                images=x,
                transforms=transforms,
                output_shape=tf.shape(x)[1:3],
                fill_value=0.0,
                interpolation="BILINEAR",
                fill_mode="NEAREST",
            )
        if horizontal_flip:
            flip = tf.random.uniform([n]) < 0.5
            x = tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)
        return x, y

    return augment


#: The budget's decision set aims at this many samples per unit of budget: 1,000 for a 1-point budget.
DECISION_SAMPLES_PER_BUDGET = 10
#: At most this many augmented copies of each validation sample.
MAX_DECISION_COPIES = 16


def decision_set(
    x_val: np.ndarray, y_val: np.ndarray, augment: Any | None, budget: float | None, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """The validation split, plus augmented copies of it when it is too small to resolve ``budget``.

    An accuracy budget of 1 point cannot be judged on 60 validation images: one
    image is 1.7 points, and a small split is often answered perfectly by the
    trained model and by a damaged one alike. With the training's augmentation,
    each validation image also enters as ``copies`` randomly transformed views
    (``copies = min(16, ceil(10 / (budget * n)) - 1)``, seeded), so the budget
    sees how the compressed model answers in the neighbourhood of each held-out
    image, where pruning and int8 flip low-margin answers. The views are never
    trained on. They are not independent samples, so the budget's floor
    (``compress.effective_budget``) stays one validation image. Without augmentation, a budget, or when the split is already
    large enough, the split is returned unchanged (``copies = 0``).

    Returns:
        ``(x, y, copies)``: the originals first, then each round of copies.
    """
    n = len(y_val)
    if augment is None or budget is None or budget <= 0 or n == 0:
        return x_val, y_val, 0
    copies = min(MAX_DECISION_COPIES, math.ceil(DECISION_SAMPLES_PER_BUDGET / (budget * n)) - 1)
    if copies <= 0:
        return x_val, y_val, 0
    from edgeship.core.tf import tf_modules

    tf, _ = tf_modules()
    tf.random.set_seed(seed)
    views = [np.asarray(augment(tf.constant(x_val), tf.constant(y_val))[0]).astype(x_val.dtype) for _ in range(copies)]
    return np.concatenate([x_val, *views]), np.tile(y_val, copies + 1), copies
