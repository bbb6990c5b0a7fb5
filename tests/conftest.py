"""Shared fixtures: one real build of the default recipe per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def default_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in default recipe built once, end to end, with real TF/tfmot/tf2onnx/ORT/LiteRT."""
    from edgeship.build import build
    from edgeship.recipe import Recipe

    out = tmp_path_factory.mktemp("bundles") / "default"
    build(Recipe.default(), out)
    return out


@pytest.fixture
def bundle_copy(default_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the default bundle that a test may damage."""
    dst = tmp_path / "bundle"
    shutil.copytree(default_bundle, dst)
    return dst
