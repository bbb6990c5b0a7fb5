"""Dataset registry. A recipe names a dataset; ``load_dataset`` builds the splits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from edgeship.core.errors import RecipeError

DatasetLoader = Callable[..., "Dataset"]
_DATASETS: dict[str, DatasetLoader] = {}
_OPTIONS: dict[str, type] = {}


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What a fit loop reads: the training split and the validation split early stopping watches.

    ``x_*`` are batch-first arrays (or a lazy :class:`~edgeship.train._stream.ImageFiles` streamed from
    disk); ``y_*`` are int class ids, or the inputs themselves for a reconstruction model (``loss="mse"``).
    """

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any


@dataclass
class Dataset:
    """Model-ready splits. ``x_*`` are float32 batch-first, ``y_*`` int class ids."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    #: Text datasets: ``vocabulary``, ``standardize``, ``split``, ``sequence_length`` (goes to manifest["text"]).
    text: dict[str, Any] | None = None
    #: Loader extras, e.g. ``test_texts`` (the raw strings behind ``x_test``) for text datasets.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def training_data(self) -> TrainingData:
        """The train and validation splits, as the fit loops take them."""
        return TrainingData(self.x_train, self.y_train, self.x_val, self.y_val)


def register_dataset(name: str, *, options: type | None = None) -> Callable[[DatasetLoader], DatasetLoader]:
    """Decorator: make a loader available to recipes under ``name``.

    ``options``: a dataclass the loader takes as ``options=``; :func:`load_dataset` builds
    it from the keyword options that name its fields (others go to the loader by name).
    """

    def wrap(fn: DatasetLoader) -> DatasetLoader:
        _DATASETS[name] = fn
        if options is not None:
            _OPTIONS[name] = options
        return fn

    return wrap


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(
    spec: str, *, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1, **options: Any
) -> Dataset:
    """Load ``spec`` (``"digits"``, ``"images:PATH"``, ``"text:PATH"``) and split it, fixed by ``seed``.

    ``options`` go to the loader when it takes them (``image_size``, ``rescale``,
    ``color_mode`` for images; ``text_column``, ``label_column``,
    ``sequence_length``, ``vocab_size`` for text); others are ignored.
    """
    import inspect

    name, _, arg = spec.partition(":")
    if name not in _DATASETS:
        raise RecipeError(
            f"Unknown dataset {spec!r} in data.dataset. Valid names: {', '.join(list_datasets())} "
            "(images:PATH and text:PATH take a path)."
        )
    loader = _DATASETS[name]
    kwargs: dict[str, Any] = {"seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction}
    params = inspect.signature(loader).parameters
    if "path" in params:
        if not arg:
            raise RecipeError(f'Dataset {name!r} needs a path. Received: {spec!r}. Write data.dataset = "{name}:PATH".')
        kwargs["path"] = arg
    given = {k: v for k, v in options.items() if v is not None}
    if name in _OPTIONS:
        record = _OPTIONS[name]
        kwargs["options"] = record(**{k: v for k, v in given.items() if k in {f.name for f in fields(record)}})
    kwargs.update({k: v for k, v in given.items() if k in params and k != "options"})
    return loader(**kwargs)


#: The validation split holds at least this many samples of each class (at most a quarter of the class).
VAL_FLOOR_PER_CLASS = 10


def split(
    x: np.ndarray, y: np.ndarray, *, seed: int, test_fraction: float, val_fraction: float
) -> tuple[np.ndarray, ...]:
    """Stratified train/val/test split, identical for the same seed.

    The test split is scikit-learn's stratified ``train_test_split``.
    The validation split is stratified too, with a floor per class: each class
    gives ``max(round(share * n_c), min(VAL_FLOOR_PER_CLASS, n_c // 4))``
    samples, and at least one, so early stopping and the accuracy budget never
    judge a class on one or two samples. ``test_fraction=0`` skips the test
    split (for datasets that bring their own test set); ``val_fraction`` is
    then a fraction of ``x``.
    """
    from sklearn.model_selection import train_test_split

    from edgeship.core.errors import DataError

    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y)
    try:
        if test_fraction > 0:
            x_rest, x_test, y_rest, y_test = train_test_split(
                x, y, test_size=test_fraction, random_state=seed, stratify=y
            )
        else:
            x_rest, y_rest, x_test, y_test = x, y, x[:0], y[:0]
        rest_counts = np.bincount(y_rest, minlength=len(counts))
        if (rest_counts[counts > 0] < 2).any():
            raise ValueError("a class has fewer than 2 samples left for train + validation")
    except ValueError as exc:
        raise DataError(
            f"Cannot make stratified train/val/test splits. Received: {len(y)} samples, "
            f"the smallest class has {int(counts[counts > 0].min()) if counts.any() else 0} ({exc}). "
            "Add samples (a few per class per split at least) or change data.test_fraction / val_fraction."
        ) from None
    share = val_fraction / (1.0 - test_fraction)
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in np.flatnonzero(rest_counts):
        idx = rng.permutation(np.flatnonzero(y_rest == c))
        n_c = len(idx)
        k = max(int(round(share * n_c)), min(VAL_FLOOR_PER_CLASS, n_c // 4), 1)
        val_idx.append(idx[: min(k, n_c - 1)])
    is_val = np.zeros(len(y_rest), dtype=bool)
    is_val[np.concatenate(val_idx)] = True
    train_order = rng.permutation(np.flatnonzero(~is_val))
    val_order = rng.permutation(np.flatnonzero(is_val))
    return x_rest[train_order], y_rest[train_order], x_rest[val_order], y_rest[val_order], x_test, y_test


@register_dataset("digits")
def _digits(*, seed: int, test_fraction: float, val_fraction: float) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); ships in the wheel."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    scale = 1.0 / 16.0  # pixel values are 0..16
    x = (raw.images.astype(np.float32) * scale)[..., None]
    y = raw.target.astype(np.int64)
    parts = split(x, y, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    return Dataset(
        "digits",
        *parts,
        labels=[str(i) for i in range(10)],
        preprocessing={"scale": scale, "mean": 0.0, "layout": "NHWC", "input_range": [0, 16], "input_shape": [8, 8, 1]},
    )


# The folder and file loaders register themselves on import.
from . import _images as _images  # noqa: E402,F401
from . import _text as _text  # noqa: E402,F401
