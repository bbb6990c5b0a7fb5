"""Atomic bundle writing: everything goes to a temp folder, then one rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from edgeship.core.bundle import Manifest, write_manifest
from edgeship.core.errors import BuildError
from edgeship.runtime import is_bundle, sha256_file

TMP_PREFIX = ".edgeship-tmp-"


def check_target(out: Path) -> None:
    """Fail early when ``out`` exists and is something a build must not replace."""
    if out.exists() and not is_bundle(out):
        if out.is_file() or any(out.iterdir()):
            raise BuildError(
                f"Expected --out to be a new folder or an earlier edgeship bundle. Received: {out}, "
                "an existing non-bundle path. Pick another --out, or remove it."
            )


class BundleWriter:
    """Write a bundle atomically.

    Files are written into a hidden temp folder beside ``out``; on success the
    temp folder is renamed to ``out`` (replacing an earlier bundle there). On an
    exception the temp folder is removed, so ``out`` never holds a partial
    bundle — even a SIGKILL leaves at most a hidden ``.edgeship-tmp-*`` folder,
    which the next build in that parent folder removes.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out).absolute()
        check_target(self.out)
        self.tmp: Path | None = None

    def __enter__(self) -> BundleWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.out.parent.glob(f"{TMP_PREFIX}{self.out.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{self.out.name}-", dir=self.out.parent))
        self.tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; a bundle is a folder like any other (umask)
        return self

    def path(self, name: str) -> Path:
        assert self.tmp is not None, "BundleWriter used outside its with-block"
        return self.tmp / name

    def write_bytes(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p

    def write_manifest(self, manifest: Manifest | dict[str, Any]) -> Path:
        """Write ``manifest.json`` through the :class:`~edgeship.core.bundle.Manifest` record.

        A dict is validated first (``BundleError`` naming a missing or mistyped
        field), and gains ``schema`` and ``schema_version``.
        """
        if not isinstance(manifest, Manifest):
            manifest = Manifest.new(manifest)
        return write_manifest(self.path(""), manifest)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        self._commit()

    def _commit(self) -> None:
        assert self.tmp is not None
        check_target(self.out)
        old: Path | None = None
        if self.out.exists():
            old = self.out.parent / f"{TMP_PREFIX}{self.out.name}-old"
            shutil.rmtree(old, ignore_errors=True)
            self.out.rename(old)
        self.tmp.rename(self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc/self/status, "Umask:")."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_entry(path: Path) -> dict[str, Any]:
    """``file``, ``sha256`` and ``bytes`` of a written bundle file."""
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
