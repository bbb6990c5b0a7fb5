"""Arrays a user hands the CLI: a ``.npy`` batch for ``predict``, an ``.npz`` for ``export --data``.

Each problem is one ``InputError`` that says what was expected, what was
received and the fix, before any engine or TensorFlow is touched. Needs numpy only.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import NoReturn

import numpy as np

from edgeship.runtime import InputError

_NPY_FIX = "Fix: save the batch with np.save(path, x) (numeric, batch first)."
_NPZ_FIX = "Fix: save it with np.savez(path, x=inputs, y=int_labels)."


def _missing(path: Path) -> str | None:
    """Why ``path`` is not a readable file, or None when it is one."""
    if path.is_dir():
        return "a folder"
    if not path.exists():
        return "no such file"
    return None


def read_npy(path: str | Path, what: str = "INPUT") -> np.ndarray:
    """Load one ``.npy`` array without pickles; an ``InputError`` for anything else."""
    path = Path(path)
    expected = f"Expected {what} to be a .npy array file (np.save). Received: {path}"
    reason = _missing(path)
    if reason is None and path.stat().st_size and not _starts_with(path, (b"\x93NUMPY", b"PK\x03\x04")):
        reason = "not a numpy .npy array file"  # np.load would call it a pickle
    if reason is None:
        try:
            x = np.load(path, allow_pickle=False)
        except EOFError:  # np.load's word for an empty or cut-off file
            reason = "empty or cut off"
        except ValueError as exc:
            reason = ("an array of Python objects, which needs pickle" if "allow_pickle" in str(exc)
                      else "not a numpy .npy array file")
        except OSError:
            reason = "not a numpy .npy array file"
        else:
            if isinstance(x, np.ndarray):
                return x
            x.close()
            _raise(f"{expected}, an .npz archive. Fix: pass one of its arrays: np.save('x.npy', np.load(path)['x']).")
    _raise(f"{expected}, {reason}. {_NPY_FIX}")


def _starts_with(path: Path, magics: tuple[bytes, ...]) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    return head.startswith(magics)


def _raise(message: str) -> NoReturn:
    raise InputError(message)


def check_export_npz(path: str | Path) -> None:
    """Check an ``export --data`` archive: ``x`` (eval inputs, numeric, at least one sample), optional
    ``y`` (one integer label >= 0 per sample), ``x_calibration`` (samples shaped like ``x``),
    ``labels`` (1-D class names) and ``preprocessing`` (a JSON object string)."""
    path = Path(path)
    arrays = _read_npz(path)
    if "x" not in arrays:
        _raise(f"Expected --data .npz to hold an array 'x' (eval inputs). Received keys: {sorted(arrays)}. {_NPZ_FIX}")
    x = arrays["x"]
    _check_samples(path, "x", x, None)
    if "x_calibration" in arrays:
        _check_samples(path, "x_calibration", arrays["x_calibration"], x.shape[1:])
    if "y" in arrays:
        _check_labels(path, arrays["y"], len(x))
    if "labels" in arrays and arrays["labels"].ndim != 1:
        _raise(f"Expected --data 'labels' to be a 1-D array of class names. Received: shape "
               f"{arrays['labels'].shape} in {path}. Fix: np.savez(..., labels=np.array(['cat', 'dog'])).")
    if "preprocessing" in arrays:
        _check_preprocessing(path, arrays["preprocessing"])


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    expected = f"Expected --data to be an .npz archive (np.savez). Received: {path}"
    reason = _missing(path)
    if reason is None and not zipfile.is_zipfile(path):
        reason = "empty" if path.stat().st_size == 0 else "not a zip archive, so not an .npz"
    if reason is None:
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as exc:
            reason = ("an array of Python objects, which needs pickle" if "allow_pickle" in str(exc)
                      else f"an unreadable archive ({exc})")
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            reason = f"an unreadable archive ({type(exc).__name__}: {exc})"
    _raise(f"{expected}, {reason}. {_NPZ_FIX}")


def _check_samples(path: Path, key: str, a: np.ndarray, sample_shape: tuple[int, ...] | None) -> None:
    if a.dtype.kind not in "biuf" or a.ndim == 0 or len(a) == 0:
        _raise(f"Expected --data '{key}' to be a numeric array with at least one sample, batch first. "
               f"Received: {a.dtype} {a.shape} in {path}. {_NPZ_FIX}")
    if sample_shape is not None and a.shape[1:] != sample_shape:
        _raise(f"Expected --data '{key}' samples shaped like 'x' samples {sample_shape}. Received: {a.shape[1:]} "
               f"in {path}. Fix: prepare the calibration samples as the eval inputs.")


def _check_labels(path: Path, y: np.ndarray, n: int) -> None:
    integral = y.dtype.kind in "iu" or (y.dtype.kind == "f" and bool(np.all(np.isfinite(y) & (y == np.round(y)))))
    if y.ndim != 1 or len(y) != n or not integral or (y.size and y.min() < 0):
        _raise(f"Expected --data 'y' to hold one integer class index >= 0 per sample of 'x' ({n}). Received: "
               f"{y.dtype} {y.shape} in {path}. Fix: pass y = labels.astype(np.int64), shape ({n},); "
               "one-hot labels: y = onehot.argmax(axis=1).")


def _check_preprocessing(path: Path, p: np.ndarray) -> None:
    try:
        ok = isinstance(json.loads(str(p)), dict)
    except ValueError:
        ok = False
    if not ok:
        _raise(f"Expected --data 'preprocessing' to be a JSON object string. Received: {str(p)[:60]!r} in {path}. "
               "Fix: np.savez(..., preprocessing=json.dumps({'scale': 1 / 255})).")
