"""A build killed at any point leaves no bundle and no partial file at the target path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeship.export._bundle import TMP_PREFIX, BundleWriter

RECIPE = """
name = "killed"
[train]
epochs = 2
early_stopping_patience = 2
[prune]
enabled = false
[quantize]
calibration_samples = 16
"""


@pytest.mark.slow
def test_sigkill_during_export_leaves_nothing_at_the_target(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(RECIPE)
    parent = tmp_path / "builds"
    parent.mkdir()
    out = parent / "bundle"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeship", "build", str(tmp_path / "r.toml"), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    killed_with: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            temps = list(parent.glob(f"{TMP_PREFIX}*"))
            written = [p.name for t in temps for p in t.iterdir()] if temps else []
            if any(name.startswith("model.") for name in written):  # export is under way
                killed_with = written
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and not killed_with:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert killed_with, "the build finished or stalled before export started; nothing was tested"
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    # Only the hidden temp folder is left beside the target; nothing at or named like the target.
    leftovers = list(parent.iterdir())
    assert all(p.name.startswith(f"{TMP_PREFIX}bundle-") and p.is_dir() for p in leftovers), leftovers
    # The next build into the same parent removes the stale temp folder.
    with BundleWriter(out) as bundle:
        bundle.write_bytes("model.float32.tflite", b"x" * 8)
        current = bundle.path("model.float32.tflite").parent
        assert [p for p in parent.iterdir() if p.name.startswith(TMP_PREFIX)] == [current]
    assert sorted(p.name for p in parent.iterdir()) == ["bundle"]


def test_exception_inside_the_writer_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(RuntimeError):
        with BundleWriter(out) as bundle:
            bundle.write_bytes("model.int8.tflite", b"partial")
            raise RuntimeError("killed mid-export")
    assert list(tmp_path.iterdir()) == []
