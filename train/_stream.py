"""Image folders streamed from disk: a lazy split of image files, and its ``tf.data`` pipelines.

:class:`ImageFiles` stands where a decoded ``(N, H, W, C)`` float32 array
would: ``len``, ``shape`` and ``dtype`` are known without reading a pixel;
indexing with a slice or an index array gives another lazy view, and only
``np.asarray(view)`` (or an ``int`` index) decodes, so code that walks the
split in chunks (evaluation, BatchNorm re-estimation, calibration samples)
holds one chunk at a time. :meth:`ImageFiles.dataset` is the training
pipeline: file names shuffled (cheap), decode and resize in parallel
(``tf.io.decode_image`` + ``tf.image.resize`` bilinear with antialias, rounded
back to 8 bits as Pillow does; no resampling for files already at the size), an
optional cache of the decoded 8-bit images in a file (``data.cache_dir``; a new
file per folder listing, size and split, so a changed folder never reads a
stale cache, and then a bounded shuffle buffer), batch, augmentation on the
training branch only, ``* rescale`` per batch, prefetch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: The cached pipeline shuffles decoded images in a buffer of this many (file names shuffle fully when not cached).
SHUFFLE_BUFFER = 1024
#: Rows decoded per chunk when a consumer walks a lazy split.
CHUNK = 256


class ImageFiles:
    """A lazy ``(N, H, W, C)`` float32 split of image files (see the module docstring)."""

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, paths: np.ndarray, size: tuple[int, int], channels: int, rescale: float,
                 cache_dir: str | None = None) -> None:
        self.paths = np.asarray(paths, dtype=str)
        self.size, self.channels, self.rescale, self.cache_dir = size, channels, float(rescale), cache_dir

    # -- the array protocol that the build uses ---------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size[0], self.size[1], self.channels)

    @property
    def nbytes(self) -> int:
        """The decoded float32 size, had the split been loaded."""
        return int(np.prod(self.shape)) * 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            return self._decode(self.paths[[int(index)]])[0]
        return ImageFiles(self.paths[index], self.size, self.channels, self.rescale, self.cache_dir)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float32)
        for i in range(0, len(self), CHUNK):
            out[i : i + CHUNK] = self._decode(self.paths[i : i + CHUNK])
        return out if dtype is None else out.astype(dtype)

    def chunks(self, size: int = CHUNK) -> Iterator[np.ndarray]:
        """The decoded split, ``size`` rows at a time, in order."""
        for i in range(0, len(self), size):
            yield self._decode(self.paths[i : i + size])

    # -- tf.data ---------------------------------------------------------------------------
    def _loader(self) -> Callable[[Any], Any]:
        from edgeship.core.tf import tf_modules

        tf, _ = tf_modules()
        h, w = self.size
        channels = self.channels

        def load(path: Any) -> Any:
            img = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)

            def resized() -> Any:  # back to 8 bits, as Pillow's resize of an 8-bit image
                out = tf.image.resize(tf.cast(img, tf.float32), (h, w), method="bilinear", antialias=True)
                return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

            same = tf.reduce_all(tf.equal(tf.shape(img)[:2], [h, w]))  # files already at the size: no resampling
            return tf.ensure_shape(tf.cond(same, lambda: tf.cast(img, tf.uint8), resized), (h, w, channels))

        return load

    def _scale(self, x: Any) -> Any:
        """uint8 batch -> float32 model input (``* rescale``), after the cache: the cache holds 8-bit pixels."""
        from edgeship.core.tf import tf_modules

        tf, _ = tf_modules()
        return tf.cast(x, tf.float32) * self.rescale

    def _decode(self, paths: np.ndarray) -> np.ndarray:
        from edgeship.core.tf import tf_modules

        tf, _ = tf_modules()
        if len(paths) == 0:
            return np.zeros((0, *self.shape[1:]), dtype=np.float32)
        pipe = tf.data.Dataset.from_tensor_slices(paths).map(self._loader(), num_parallel_calls=tf.data.AUTOTUNE,
                                                             deterministic=True).batch(len(paths)).map(self._scale)
        return _read_errors(lambda: np.asarray(next(iter(pipe)), dtype=np.float32), paths)

    def dataset(self, y: np.ndarray | None, *, batch_size: int, shuffle: bool = False, seed: int = 0,
                augment: Callable[[Any, Any], tuple[Any, Any]] | None = None) -> Any:
        """A batched ``tf.data.Dataset`` of ``(x, y)`` (or ``x`` when ``y`` is None), decoded in parallel.

        Training branch (``shuffle=True``): file names shuffled with ``seed`` each
        epoch, decode + resize in parallel, cached to a file under ``cache_dir``
        when set (then decoded images shuffle in a ``SHUFFLE_BUFFER`` buffer),
        batched, ``augment`` applied per batch, prefetched. Other branches keep
        the order, cache nothing and never augment.
        """
        from edgeship.core.tf import tf_modules

        tf, _ = tf_modules()
        auto = tf.data.AUTOTUNE
        paths = tf.data.Dataset.from_tensor_slices(self.paths)
        ds = paths if y is None else tf.data.Dataset.zip((paths, tf.data.Dataset.from_tensor_slices(np.asarray(y))))
        load = self._loader()
        cache = self._cache_file() if shuffle else None
        if shuffle and cache is None:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        if y is None:
            ds = ds.map(load, num_parallel_calls=auto, deterministic=True)
        else:
            ds = ds.map(lambda p, label: (load(p), label), num_parallel_calls=auto, deterministic=True)
        if cache is not None:
            ds = ds.cache(cache)
            ds = ds.shuffle(min(SHUFFLE_BUFFER, len(self)), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        ds = ds.map(self._scale) if y is None else ds.map(lambda x, label: (self._scale(x), label))
        if augment is not None and shuffle and y is not None:
            ds = ds.map(augment, num_parallel_calls=1)  # one call: augmentation stays seeded
        return ds.prefetch(auto)

    def _cache_file(self) -> str | None:
        if not self.cache_dir:
            return None
        digest = hashlib.sha256("\n".join(self.paths.tolist()).encode())
        digest.update(repr((self.size, self.channels, self.rescale)).encode())
        folder = Path(self.cache_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / f"edgeship-images-{digest.hexdigest()[:16]}")


def _read_errors(fn: Callable[[], Any], paths: np.ndarray) -> Any:
    """``fn()``; a TensorFlow decode error becomes a ``DataError`` naming the first unreadable file of ``paths``."""
    from edgeship.core.tf import tf_modules

    tf, _ = tf_modules()
    try:
        return fn()
    except tf.errors.InvalidArgumentError as exc:
        raise unreadable(paths, exc) from None


def unreadable(paths: np.ndarray, exc: Exception) -> Exception:
    """The ``DataError`` for a decode failure: files are decoded one by one (only now) to name the culprit."""
    from edgeship.core.errors import DataError
    from edgeship.core.tf import tf_modules

    tf, _ = tf_modules()
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
        except tf.errors.OpError as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            return DataError(f"Cannot read image {path}. Received: {type(err).__name__}: {first}. "
                             "Remove or replace the file (supported: BMP, GIF, JPEG, PNG).")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return DataError(f"Expected every image of the streamed folder to decode. Received: {type(exc).__name__}: "
                     f"{first}. Fix the file named in TensorFlow's message, or set data.stream = \"never\".")


def is_lazy(x: Any) -> bool:
    return isinstance(x, ImageFiles)


def chunks(x: Any, size: int = CHUNK) -> Iterator[np.ndarray]:
    """``x`` in row chunks as numpy arrays: decoded one chunk at a time for a streamed split."""
    if is_lazy(x):
        yield from x.chunks(size)
        return
    for i in range(0, len(x), size):
        yield x[i : i + size]


def decoded_bytes(n_images: int, size: tuple[int, int], channels: int) -> int:
    """What ``n_images`` decoded float32 images of ``size`` take in memory."""
    return int(n_images) * size[0] * size[1] * channels * 4


#: File signatures of the formats ``tf.io.decode_image`` reads.
SIGNATURES = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM")


def check_signature(path: Path) -> bool:
    """Whether ``path`` starts like a BMP, GIF, JPEG or PNG file (8 bytes read, nothing decoded)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith(SIGNATURES)


def steps(x: Any, batch_size: int) -> int:
    return max(1, math.ceil(len(x) / batch_size))
