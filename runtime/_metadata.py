"""Read the metadata edgeship embeds in each model file, on the device.

No TensorFlow and no ``onnx`` package: ONNX files are read through ONNX
Runtime's ``get_modelmeta().custom_metadata_map``; TFLite files through
``ai_edge_litert``'s flatbuffer schema module (imported lazily).

Layout written by ``edgeship.export._metadata``:

* ONNX ``metadata_props``: ``edgeship.labels`` (JSON list),
  ``edgeship.preprocessing`` (JSON object: scale, mean, layout, ...),
  ``edgeship.recipe_sha256``, plus ``edgeship.schema``; anomaly detectors also
  ``edgeship.anomaly`` (JSON object ``{"score": "mse", "threshold": t,
  "threshold_quantile": q}``: the score rule and this file's threshold).
* TFLite: one ``Model.metadata`` entry named ``edgeship`` whose buffer holds
  the UTF-8 JSON object ``{"schema", "labels", "preprocessing", "recipe_sha256"[, "anomaly"]}``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from ._errors import ModelFileError

METADATA_SCHEMA = "edgeship.metadata/1"
TFLITE_METADATA_NAME = "edgeship"
ONNX_PREFIX = "edgeship."
KEYS = ("labels", "preprocessing", "recipe_sha256", "anomaly")


def read_metadata(
    path: str | Path | None = None, fmt: str | None = None, *, content: bytes | None = None, session: Any = None
) -> dict[str, Any]:
    """The embedded edgeship metadata of a model file, ``{}`` when it carries none.

    Args:
        path: ``.tflite`` or ``.onnx`` file (or pass ``content`` and ``fmt``).
        session: an ONNX Runtime ``InferenceSession`` already open on the file,
            to avoid a second one.

    Returns:
        ``{"labels": [...], "preprocessing": {...}, "recipe_sha256": "..."}``, the
        keys present in the file only.
    """
    if content is None:
        if path is None:
            raise ModelFileError("read_metadata needs a path or content. Received: neither.")
        p = Path(path)
        fmt = fmt or {".tflite": "tflite", ".onnx": "onnx"}.get(p.suffix.lower())
        content = p.read_bytes() if fmt == "tflite" or session is None else b""
    if fmt == "onnx":
        raw = _onnx_map(content, session)
        return decode({k[len(ONNX_PREFIX) :]: v for k, v in raw.items() if k.startswith(ONNX_PREFIX)})
    if fmt == "tflite":
        text = tflite_metadata(content).get(TFLITE_METADATA_NAME)
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ModelFileError(
                f"The embedded {TFLITE_METADATA_NAME!r} metadata is not JSON. Re-export the model."
            ) from None
        return {k: data[k] for k in KEYS if k in data}
    raise ModelFileError(f"Expected a .tflite or .onnx model. Received: format {fmt!r}.")


def decode(props: dict[str, str]) -> dict[str, Any]:
    """ONNX string properties (prefix removed) to typed values."""
    out: dict[str, Any] = {}
    for key in KEYS:
        if key not in props:
            continue
        value = props[key]
        if key == "recipe_sha256":
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ModelFileError(
                f"The embedded metadata {ONNX_PREFIX}{key} is not JSON. Re-export the model."
            ) from None
    return out


def _onnx_map(content: bytes, session: Any) -> dict[str, str]:
    if session is None:
        ort = importlib.import_module("onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(content, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelFileError(f"ONNX Runtime could not open the model to read its metadata: {first}") from None
    try:
        return dict(session.get_modelmeta().custom_metadata_map)
    except (UnicodeDecodeError, RuntimeError) as exc:  # ORT decodes the strings as UTF-8
        raise ModelFileError(f"The ONNX metadata_props are unreadable ({exc}). Re-export the model.") from None


def tflite_metadata(content: bytes) -> dict[str, str]:
    """Every ``Model.metadata`` entry of a TFLite flatbuffer, name -> UTF-8 text."""
    from ._graph import tflite_buffer_bytes, tflite_schema

    schema = tflite_schema()
    try:
        model = schema.Model.GetRootAsModel(content, 0)
        out = {}
        for i in range(model.MetadataLength()):
            meta = model.Metadata(i)
            name = (meta.Name() or b"").decode(errors="replace")
            out[name] = tflite_buffer_bytes(model, content, meta.Buffer()).decode("utf-8", errors="replace")
        return out
    except Exception as exc:
        raise ModelFileError(
            f"Cannot read the TFLite metadata: {exc!r}. Expected a valid .tflite; re-export it."
        ) from None


def attach_embedded(model: Any) -> Any:
    """Give a model loaded from a bare file the labels and preprocessing embedded in it.

    Called by ``load()`` after the engine has accepted the file, so reading the
    metadata never touches bytes the engine (or the load-time probe) rejected.
    """
    session = getattr(getattr(model, "_backend", None), "_session", None)  # reuse ORT's open session
    try:
        meta = read_metadata(model.path, model.format, session=session)
    except ModelFileError:
        return model  # a file without readable metadata still runs; predict_labels explains
    labels = meta.get("labels")
    if not model.labels and isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
        model.labels = list(labels)
    if not model.preprocessing and isinstance(meta.get("preprocessing"), dict):
        model.preprocessing = dict(meta["preprocessing"])
    if model.anomaly is None and isinstance(meta.get("anomaly"), dict):
        model.anomaly = dict(meta["anomaly"])
    return model
