"""Shared fixtures: one real build of the default recipe per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


#: A bundle built beforehand (on the host, for the emulated arm64 stage, which has no TensorFlow): the
#: ``default_bundle`` fixture copies it instead of building.
PREBUILT_BUNDLE = "EDGESHIP_TEST_BUNDLE"


@pytest.fixture(scope="session")
def default_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in default recipe built once, end to end, with real TF/tfmot/tf2onnx/ORT/LiteRT.

    With ``$EDGESHIP_TEST_BUNDLE`` set, a copy of that bundle (built by ``edgeship build`` on the host).
    """
    prebuilt = os.environ.get(PREBUILT_BUNDLE)
    if prebuilt:
        if not (Path(prebuilt) / "manifest.json").is_file():
            pytest.fail(f"${PREBUILT_BUNDLE}={prebuilt} is not a bundle folder (no manifest.json)")
        out = tmp_path_factory.mktemp("bundles") / "default"
        shutil.copytree(prebuilt, out)
        return out
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``emulated`` use the arm64 root and the package index: `make test-arm` runs them, not `make test`."""
    if os.environ.get("EDGESHIP_ARM_STAGE") == "1":
        return
    skip = pytest.mark.skip(reason="uses the emulated arm64 root: `make test-arm` runs it (EDGESHIP_ARM_STAGE=1)")
    for item in items:
        if item.get_closest_marker("emulated"):
            item.add_marker(skip)
