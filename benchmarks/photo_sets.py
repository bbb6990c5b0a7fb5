"""Image-folder datasets cut from real photos that pip packages ship (nothing downloads).

Each ``make_*(root, seed)`` writes one ``images:PATH`` dataset under ``root`` and returns
its folder; the same seed writes byte-identical PNGs. A ``photo_set.json`` next to the
class folders records the source photos, the seed and the counts (the loader reads only
sub-folders, so the file is ignored by ``edgeship build``). ``PHOTO_SETS`` maps a name to
its function.

- ``sklearn_china_flower``: scikit-learn's ``load_sample_images()`` (china.jpg, flower.jpg,
  427x640 RGB each), one class per photo, 100 patches per class: a random square crop
  (side 12-45 % of the short side, random position) resized to 25x25 with Pillow,
  grayscale. ``train/`` (80 per class) + ``test/`` (20 per class) folders. Crops are
  drawn independently, so a test patch may overlap a train patch of the same photo.
- ``skimage_scenes``: six of scikit-image's bundled photos (``skimage.data``: astronaut,
  chelsea, coffee, rocket in colour; camera, coins in gray, converted to RGB), one class
  per photo, 70 patches per class (420 images): a random square crop (side 15-50 % of
  the short side) resized to 32x32 RGB. A single folder of class sub-folders; the build
  makes the splits.
- ``skimage_faces``: scikit-image's ``lfw_subset()``: 100 face and 100 non-face 25x25
  grayscale photos (Labeled Faces in the Wild crops), written as PNGs with a seeded
  stratified 80/20 ``train/`` + ``test/`` split.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

MARKER = "photo_set.json"

# skimage.data images that ship inside the scikit-image wheel (no pooch download).
SKIMAGE_SCENES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins")


def _fresh(folder: Path) -> Path:
    """Empty ``folder`` for rewriting; only a folder this module wrote (it has the marker) is removed."""
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise FileExistsError(f"{folder} exists and was not written by benchmarks/photo_sets.py; pick another root")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == bool:
        return img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        return np.clip(np.asarray(img, dtype=np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return img


def _patches(
    photo: np.ndarray, n: int, size: int, mode: str, rng: np.random.Generator, scale: tuple[float, float]
) -> list:
    """``n`` random square crops of ``photo`` (side ``scale`` x the short side), resized to ``size`` in ``mode``."""
    from PIL import Image

    img = Image.fromarray(_to_uint8(photo)).convert(mode)
    w, h = img.size
    short = min(w, h)
    out = []
    for _ in range(n):
        side = int(round(rng.uniform(*scale) * short))
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
        out.append(img.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR))
    return out


def _write(images: list, folder: Path, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        im.save(folder / f"{prefix}_{i:04d}.png", optimize=False)


def _split_write(root: Path, classes: dict[str, list], test_per_class: int) -> None:
    """``train/<class>`` + ``test/<class>``: the last ``test_per_class`` of each (already random) list go to test."""
    for name, images in classes.items():
        _write(images[:-test_per_class], root / "train" / name, name)
        _write(images[-test_per_class:], root / "test" / name, name)


def _marker(root: Path, **info: object) -> None:
    counts = {}
    for sub in sorted(p for p in root.rglob("*") if p.is_dir()):
        pngs = list(sub.glob("*.png"))
        if pngs:
            counts[str(sub.relative_to(root))] = len(pngs)
    (root / MARKER).write_text(json.dumps({**info, "counts": counts, "images": sum(counts.values())}, indent=2) + "\n")


def make_sklearn_china_flower(root: Path, seed: int) -> Path:
    """2 classes (china, flower), 100 grayscale 25x25 patches each, ``train/`` 80 + ``test/`` 20 per class."""
    from sklearn.datasets import load_sample_images

    out = _fresh(Path(root) / "sklearn_china_flower")
    sample = load_sample_images()
    rng = np.random.default_rng(seed)
    classes = {}
    for path, photo in zip(sample.filenames, sample.images):
        name = Path(path).stem
        classes[name] = _patches(photo, 100, 25, "L", rng, (0.12, 0.45))
    _split_write(out, classes, test_per_class=20)
    _marker(out, source="sklearn.datasets.load_sample_images()", photos=["china.jpg", "flower.jpg"], seed=seed,
            size=[25, 25], color="grayscale", layout="train/ + test/")
    return out


def make_skimage_scenes(root: Path, seed: int) -> Path:
    """6 classes, one per bundled ``skimage.data`` photo, 70 RGB 32x32 patches each, one folder of class folders."""
    from skimage import data

    out = _fresh(Path(root) / "skimage_scenes")
    rng = np.random.default_rng(seed)
    for name in SKIMAGE_SCENES:
        photo = getattr(data, name)()
        _write(_patches(photo, 70, 32, "RGB", rng, (0.15, 0.5)), out / name, name)
    _marker(out, source="skimage.data", photos=list(SKIMAGE_SCENES), seed=seed, size=[32, 32], color="rgb",
            layout="class folders")
    return out


def make_skimage_faces(root: Path, seed: int) -> Path:
    """``skimage.data.lfw_subset()``: 100 faces + 100 non-faces, 25x25 gray; seeded 80/20 ``train/`` + ``test/``."""
    from PIL import Image
    from skimage import data

    out = _fresh(Path(root) / "skimage_faces")
    faces = data.lfw_subset()  # (200, 25, 25) float in [0, 1]: 100 faces, then 100 non-faces
    rng = np.random.default_rng(seed)
    classes = {}
    for name, part in (("face", faces[:100]), ("non_face", faces[100:])):
        order = rng.permutation(len(part))
        classes[name] = [Image.fromarray(np.round(part[i] * 255).astype(np.uint8), "L") for i in order]
    _split_write(out, classes, test_per_class=20)
    _marker(out, source="skimage.data.lfw_subset()", photos=["lfw_subset.npy"], seed=seed, size=[25, 25],
            color="grayscale", layout="train/ + test/")
    return out


PHOTO_SETS: dict[str, Callable[[Path, int], Path]] = {
    "sklearn_china_flower": make_sklearn_china_flower,
    "skimage_scenes": make_skimage_scenes,
    "skimage_faces": make_skimage_faces,
}
