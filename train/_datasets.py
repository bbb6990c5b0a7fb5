"""Dataset registry. A recipe names a dataset; ``load_dataset`` builds the splits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeship.runtime._errors import RecipeError

DatasetLoader = Callable[..., "Dataset"]
_DATASETS: dict[str, DatasetLoader] = {}


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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Decorator: make a loader available to recipes under ``name``."""

    def wrap(fn: DatasetLoader) -> DatasetLoader:
        _DATASETS[name] = fn
        return fn

    return wrap


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(spec: str, *, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1) -> Dataset:
    """Load ``spec`` (``"digits"`` or ``"kind:PATH"``) and split it, fixed by ``seed``."""
    name, _, arg = spec.partition(":")
    if name not in _DATASETS:
        raise RecipeError(
            f"Unknown dataset {spec!r} in data.dataset. Valid names: {', '.join(list_datasets())}."
        )
    kwargs: dict[str, Any] = {"seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction}
    if arg:
        kwargs["path"] = arg
    return _DATASETS[name](**kwargs)


def split(
    x: np.ndarray, y: np.ndarray, *, seed: int, test_fraction: float, val_fraction: float
) -> tuple[np.ndarray, ...]:
    """Stratified train/val/test split, identical for the same seed."""
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    val_of_rest = val_fraction / (1.0 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_of_rest, random_state=seed, stratify=y_rest
    )
    return x_train, y_train, x_val, y_val, x_test, y_test


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
