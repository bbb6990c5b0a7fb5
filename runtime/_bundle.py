"""Bundle folders: manifest reading (through :mod:`edgeship.core.bundle`'s records), sha256 verification, artifact choice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgeship.core.bundle import MANIFEST, ArtifactRecord, EvalFile, Manifest

from ._choice import DEFAULT_ORDER as DEFAULT_ORDER  # the no-profile fallback order (see _choice)
from ._errors import BundleError, IntegrityError

EVAL_FILE = "eval.npz"
MODEL_SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_bundle(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def read_manifest(folder: Path) -> Manifest:
    """Read and validate ``manifest.json`` of a bundle folder.

    Raises:
        BundleError: no manifest, not JSON, or not the layout its schema names.
        SchemaVersionError: a ``schema_version`` this edgeship does not read.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"Expected a bundle folder holding {MANIFEST}, or a .tflite/.onnx file. "
            f"Received: folder {folder} without {MANIFEST}. Pass the folder `edgeship build --out` wrote."
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}). Rebuild the bundle.") from None
    return Manifest.from_json(manifest, str(path))


def verify_file(folder: Path, entry: ArtifactRecord | EvalFile) -> Path:
    """Check one manifest entry's file exists and matches its sha256 and size."""
    name = entry.file
    path = folder / name
    if not name or Path(name).name != name:
        raise BundleError(f"Manifest entry names an invalid file {name!r}; expected a plain file name.")
    if not path.is_file():
        raise IntegrityError(f"Bundle file {name} listed in the manifest is missing from {folder}. Rebuild the bundle.")
    size = path.stat().st_size
    if size != entry.bytes:
        raise IntegrityError(
            f"Bundle file {name} does not match its manifest: expected {entry.bytes} bytes, "
            f"found {size}. The file was changed after the build; rebuild or restore it."
        )
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise IntegrityError(
            f"Bundle file {name} does not match its manifest: expected sha256 {entry.sha256}, "
            f"found {actual}. The file was changed after the build; rebuild or restore it."
        )
    return path


def verify_bundle(folder: Path, manifest: Manifest) -> None:
    """Verify every artifact (and the eval sample) against the manifest."""
    for entry in manifest.artifacts:
        verify_file(folder, entry)
    if manifest.eval is not None:
        verify_file(folder, manifest.eval)


def choose_artifact(
    manifest: Manifest,
    format: str | None = None,
    precision: str | None = None,
    profile: dict[str, Any] | None = None,
    folder: Path | None = None,
) -> ArtifactRecord:
    """Pick an artifact: by the arguments, else by the device profile, else by the no-profile rule
    (:func:`edgeship.runtime._choice.default_choice`: by the manifest's recorded workload, or for a bundle
    built before it was recorded, by reading the float32 TFLite file in ``folder``).

    ``format`` / ``precision`` restrict the choice; among several matches the
    profile's fastest candidate within the budget wins, else the first in manifest
    order. A profile only counts for the file it names when that file's sha256 is
    still the manifest's (a rebuilt bundle ignores a stale profile); the caller
    drops profiles measured on another device (:func:`edgeship.runtime._profile.profile_applies`).
    """
    artifacts = manifest.artifacts
    if format or precision:
        hits = manifest.artifact(format, precision)
        if not hits:
            have = ", ".join(f"{a.format}/{a.precision}" for a in artifacts)
            raise BundleError(
                f"No artifact with format={format!r} precision={precision!r} in this bundle. "
                f"Received bundle with: {have}. Pick one of those."
            )
        ranked = _profile_ranking(hits, profile)
        return ranked[0] if ranked else hits[0]
    if profile and profile.get("file"):
        for a in artifacts:
            if a.file == profile["file"] and profile.get("sha256") in (None, a.sha256):
                return a
    from ._choice import default_choice

    return default_choice(manifest, folder)[0]


def _profile_ranking(hits: list[ArtifactRecord], profile: dict[str, Any] | None) -> list[ArtifactRecord]:
    """``hits`` the profile measured within the budget, fastest first."""
    if not profile or not isinstance(profile.get("candidates"), list):
        return []
    sha = {h.file: h.sha256 for h in hits}
    speed: dict[str, float] = {}
    for c in profile["candidates"]:
        if (isinstance(c, dict) and c.get("file") in sha and c.get("within_budget") is True
                and c.get("sha256") in (None, sha[c["file"]]) and isinstance(c.get("median_ms"), (int, float))):
            speed[c["file"]] = float(c["median_ms"])
    return sorted((h for h in hits if h.file in speed), key=lambda h: speed[h.file])
