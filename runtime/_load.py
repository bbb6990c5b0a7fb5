"""``load()``: a bundle folder or a single model file to a :class:`Model`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._backends import OnnxBackend, TFLiteBackend
from ._bundle import (
    EVAL_FILE,
    MODEL_SUFFIXES,
    choose_artifact,
    is_bundle,
    read_manifest,
    verify_bundle,
)
from ._errors import BundleError, ModelFileError
from ._metadata import attach_embedded
from ._model import Model, NanPolicy
from ._probe import probe_model_bytes
from ._profile import PROFILE_FILE
from ._verify import check_model_bytes


def load(
    path: str | os.PathLike[str],
    format: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
    *,
    providers: list[str] | None = None,
    nan_policy: NanPolicy = "raise",
    verify: bool = True,
    probe: bool | None = None,
) -> Model:
    """Load a bundle folder or a single ``.tflite`` / ``.onnx`` file.

    Args:
        path: A bundle folder (holding ``manifest.json``) or a model file.
        format: ``"tflite"`` or ``"onnx"``; with a bundle, restricts the choice.
        precision: ``"float32"``, ``"int8"``, ...; with a bundle, restricts the choice.
        threads: Engine intra-op threads; ``None`` keeps the engine default.
        providers: ONNX Runtime execution providers; CPU when ``None``.
        nan_policy: ``"raise"`` rejects NaN/Inf inputs, ``"ignore"`` passes them on.
        verify: Check every bundle file against its manifest sha256 first.
        probe: Load never-seen model bytes once in a child process first, so a file that
            would crash the engine raises ModelFileError instead (default: on, unless
            the environment sets EDGESHIP_PROBE=0). The structural check always runs.

    Raises:
        BundleError: the path is neither a bundle nor a model file.
        IntegrityError: a bundle file no longer matches its manifest.
        ModelFileError: the model bytes are corrupt.
    """
    p = Path(path)
    if is_bundle(p):
        return _load_bundle(p, format, precision, threads, providers, nan_policy, verify, probe)
    if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES:
        fmt = MODEL_SUFFIXES[p.suffix.lower()]
        if format and format != fmt:
            raise BundleError(f"Expected a {format} model. Received: {p.name}, a {fmt} file.")
        model = load_file(p, fmt, threads=threads, providers=providers, nan_policy=nan_policy, probe=probe)
        return attach_embedded(model)  # a bare file still knows its labels and preprocessing
    if p.is_dir():
        read_manifest(p)  # raises the "folder without manifest.json" error
    what = "nothing (no such path)" if not p.exists() else f"{p.suffix or 'a file without suffix'}"
    raise BundleError(
        f"Expected a bundle folder (with manifest.json) or a .tflite/.onnx model file. "
        f"Received: {p} — {what}. Pass the folder written by `edgeship build --out` or one of its model files."
    )


def load_file(
    p: Path,
    fmt: str,
    *,
    threads: int | None = None,
    providers: list[str] | None = None,
    nan_policy: NanPolicy = "raise",
    precision: str | None = None,
    labels: list[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
    text: dict[str, Any] | None = None,
    probe: bool | None = None,
    anomaly: dict[str, Any] | None = None,
) -> Model:
    try:
        content = p.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {p}: {exc.strerror}.") from None
    check_model_bytes(content, fmt, p.name)
    probe_model_bytes(content, fmt, p.name, threads, probe)
    backend = TFLiteBackend(content, threads) if fmt == "tflite" else OnnxBackend(content, threads, providers)
    if precision is None:
        precision = _guess_precision(backend)
    return Model(
        backend,
        path=p,
        format=fmt,
        precision=precision,
        labels=labels,
        preprocessing=preprocessing,
        text=text,
        nan_policy=nan_policy,
        anomaly=anomaly,
    )


def _guess_precision(backend: Any) -> str:
    first = backend.inputs[0]
    if first.quantized:
        return np.dtype(first.dtype).name
    return "float32" if first.dtype == np.float32 else np.dtype(first.dtype).name


def read_profile(folder: Path) -> dict[str, Any] | None:
    path = folder / PROFILE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    from ._profile import profile_applies  # measured on another device: ignore it

    return data if profile_applies(data) else None


def _load_bundle(
    folder: Path,
    format: str | None,
    precision: str | None,
    threads: int | None,
    providers: list[str] | None,
    nan_policy: NanPolicy,
    verify: bool,
    probe: bool | None = None,
) -> Model:
    manifest = read_manifest(folder)
    if verify:
        verify_bundle(folder, manifest)
    entry = choose_artifact(manifest, format, precision, read_profile(folder), folder)
    return load_file(
        folder / entry.file,
        entry.format,
        threads=threads,
        providers=providers,
        nan_policy=nan_policy,
        precision=entry.precision,
        labels=manifest.label_list(),
        preprocessing=manifest.preprocessing,
        text=manifest.text,
        probe=probe,
        anomaly=anomaly_of(manifest, entry),
    )


def anomaly_of(manifest: Any, entry: Any) -> dict[str, Any] | None:
    """An anomaly detector's score rule and this artifact's threshold, from the manifest (``None``: not one)."""
    info = manifest.anomaly
    if info is None:
        return None
    threshold = entry.metrics.threshold if entry.metrics is not None and entry.metrics.threshold is not None else None
    return {"score": info.score, "threshold_quantile": info.threshold_quantile,
            "threshold": info.threshold if threshold is None else threshold}


def load_eval(folder: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's held-out sample: inputs ``x`` (model-ready float32) and labels ``y``."""
    p = Path(folder) / EVAL_FILE
    if not p.is_file():
        raise BundleError(f"Expected {EVAL_FILE} in bundle {folder}. Received: no such file. Rebuild the bundle.")
    with np.load(p, allow_pickle=False) as data:
        return data["x"], data["y"]
