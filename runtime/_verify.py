"""Checks on model bytes before an engine touches them."""

from __future__ import annotations

from ._errors import ModelFileError

TFLITE_IDENTIFIER = b"TFL3"


def check_model_bytes(content: bytes, fmt: str, name: str) -> None:
    """Reject bytes that cannot be a model of ``fmt``, with a typed error."""
    if len(content) < 8:
        raise ModelFileError(f"{name} is {len(content)} bytes; a {fmt} model is larger. The file is truncated; re-export it.")
    if fmt == "tflite" and content[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(
            f"{name} is not a TFLite flatbuffer: expected identifier {TFLITE_IDENTIFIER!r} at byte 4, "
            f"found {bytes(content[4:8])!r}. Re-export the model."
        )
