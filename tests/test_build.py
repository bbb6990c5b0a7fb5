"""The build pipeline: atomic bundles and early, typed failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeship.build import build
from edgeship.core.errors import BuildError, RecipeError
from edgeship.recipe import Recipe


def fast_recipe(**overrides: object) -> Recipe:
    data = Recipe.default().to_dict()
    data["train"].update(epochs=2, early_stopping_patience=2)
    data["prune"].update(enabled=False)
    data["quantize"].update(calibration_samples=32)
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        data[section][field] = value
    return Recipe.from_dict(data)


def test_failure_during_export_leaves_no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeship import export

    def broken(*_: object, **__: object) -> bytes:
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export, "quantize_onnx", broken)
    out = tmp_path / "bundle"
    with pytest.raises(RuntimeError, match="converter crashed"):
        build(fast_recipe(), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp folder left either


def test_rebuild_replaces_an_earlier_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    build(fast_recipe(export__formats=["tflite"]), out)
    first = json.loads((out / "manifest.json").read_text())
    assert {a["format"] for a in first["artifacts"]} == {"tflite"}
    build(fast_recipe(export__formats=["onnx"], quantize__enabled=False), out)
    second = json.loads((out / "manifest.json").read_text())
    assert [a["file"] for a in second["artifacts"]] == ["model.float32.onnx"]
    assert sorted(p.name for p in out.iterdir()) == [
        "baseline.json", "eval.npz", "manifest.json", "model.float32.onnx", "report.html", "report.md"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_out_that_is_not_a_bundle_is_refused_before_training(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(BuildError, match="existing non-bundle path"):
        build(fast_recipe(), tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_unknown_dataset_and_arch_list_valid_names() -> None:
    from edgeship import train

    with pytest.raises(RecipeError, match="Valid names: digits"):
        train.load_dataset("mnist")
    with pytest.raises(RecipeError, match="Valid names: .*small_cnn"):
        train.create_model("resnet999", (8, 8, 1), 10)


def test_build_leaves_the_callers_logging_as_it_was(tmp_path: Path) -> None:
    """The root logger (level, handlers) and tf2onnx's logger are the caller's: a build must not change them."""
    import logging

    root, tf2onnx_logger = logging.getLogger(), logging.getLogger("tf2onnx")
    mine = logging.NullHandler()
    saved = (root.level, list(root.handlers), tf2onnx_logger.level)
    root.setLevel(logging.INFO)  # a caller's own configuration, not the default
    root.addHandler(mine)
    tf2onnx_logger.setLevel(logging.DEBUG)
    try:
        before = (root.level, list(root.handlers), tf2onnx_logger.level, tf2onnx_logger.handlers[:])
        build(fast_recipe(), tmp_path / "bundle")  # both formats, int8 too: tf2onnx and the ORT quantizer run
        after = (root.level, list(root.handlers), tf2onnx_logger.level, tf2onnx_logger.handlers[:])
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        tf2onnx_logger.setLevel(saved[2])
    assert after == before
