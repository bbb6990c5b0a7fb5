"""Helpers of the tests that use the emulated arm64 root (test_crossplatform.py, test_package.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeship import platforms
from edgeship.core.errors import PlatformError


def require_arm_root() -> Path:
    """The ready arm64 root; skip (fail in the arm stage) when this machine has none."""
    try:
        return platforms.require_root("linux-aarch64")
    except PlatformError as exc:
        if os.environ.get("EDGESHIP_ARM_STAGE") == "1":
            pytest.fail(f"the arm stage needs the emulated root: {exc}")
        pytest.skip(f"no emulated arm64 root here (make test-arm sets one up): {exc}")
