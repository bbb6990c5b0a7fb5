"""``edgeship export`` (a saved model, no retraining), embedded metadata, bare files, parity in the bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.cli import main
from edgeship.core.errors import ParityError
from edgeship.runtime import InputError, load, load_eval
from edgeship.runtime._metadata import read_metadata

LABELS = ["zero", "one", "two"]


def test_bare_files_out_of_a_bundle_predict_labels_by_name(default_bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    x, _ = load_eval(default_bundle)
    for entry in manifest["artifacts"]:
        bare = tmp_path / entry["file"]
        shutil.copy(default_bundle / entry["file"], bare)  # alone: no manifest beside it
        with load(default_bundle, format=entry["format"], precision=entry["precision"]) as in_bundle:
            expected = in_bundle.predict_labels(x[:16])
        with load(bare) as model:
            assert model.labels == manifest["labels"]
            assert model.preprocessing == manifest["preprocessing"]
            assert model.predict_labels(x[:16]) == expected
        meta = read_metadata(bare)
        assert meta["recipe_sha256"] == manifest["recipe_sha256"]
        assert entry["estimates"]["flash_bytes"] == entry["bytes"]
        assert entry["parity"]["passed"]


def test_manifest_records_parity_and_estimates(default_bundle: Path) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    assert manifest["parity"]["passed"] and not manifest["parity"]["allowed_failure"]
    cross = manifest["parity"]["cross_format"]
    assert (
        cross["pair"] == "model.int8.tflite vs model.int8.onnx" and cross["outputs"]["probs"]["top1_agreement"] >= 0.8
    )
    for a in manifest["artifacts"]:
        assert set(a["estimates"]) >= {"flash_bytes", "ram_arena_bytes", "rss_increase_bytes"}
        out = a["parity"]["outputs"]["probs"]
        if a["precision"] == "float32":
            assert out["max_abs_diff"] <= 1e-4
        else:
            assert out["sqnr_db"] >= 10 and out["top1_agreement"] >= 0.8


def test_every_artifact_shares_the_public_io_names(default_bundle: Path) -> None:
    """TFLite tensors are converter-named (``serving_default_input:0``); their signature names equal the ONNX
    graph's (``input`` / ``probs``), and ``TensorInfo.public_name`` gives those for every format."""
    names = set()
    for f in ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx", "model.int8.onnx"):
        with load(default_bundle / f) as m:
            names.add((tuple(i.public_name for i in m.inputs), tuple(o.public_name for o in m.outputs)))
            if m.format == "tflite":
                assert m.inputs[0].name == "serving_default_input:0"  # the tensor name stays what the file says
    assert names == {(("input",), ("probs",))}


def test_converter_provenance_is_in_the_manifest_not_in_the_files(default_bundle: Path) -> None:
    """The converter's CONVERSION_METADATA (TF version, flags) is left out of the device files; the manifest
    records the toolchain instead. The runtime's own entries stay."""
    from importlib.metadata import version

    from edgeship.runtime._metadata import tflite_metadata

    manifest = json.loads((default_bundle / "manifest.json").read_text())
    assert manifest["toolchain"]["tensorflow"] == version("tensorflow")
    assert manifest["toolchain"]["tf2onnx"] == version("tf2onnx")
    for a in manifest["artifacts"]:
        if a["format"] == "tflite":
            entries = tflite_metadata((default_bundle / a["file"]).read_bytes())
            assert "CONVERSION_METADATA" not in entries
            assert {"edgeship", "min_runtime_version"} <= set(entries)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small tf_keras model trained in the test, saved, with an .npz of eval data and a fast recipe."""
    from edgeship import train
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    train.set_seed(0)
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(3, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    x = (templates[y] + 0.4 * rng.normal(size=(300, 6, 6, 1))).astype(np.float32)
    model = keras.Sequential(
        [
            keras.layers.Input((6, 6, 1), name="input"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    train.compile_classifier(model, 1e-2)
    model.fit(x, y, epochs=4, verbose=0)
    folder = tmp_path_factory.mktemp("saved")
    model.save(folder / "trained.keras")
    np.savez(
        folder / "data.npz",
        x=x[:96],
        y=y[:96],
        x_calibration=x[96:],
        labels=np.array(LABELS),
        preprocessing=json.dumps({"scale": 1.0, "mean": 0.0, "layout": "NHWC"}),
    )
    (folder / "fast.toml").write_text(
        'name = "saved-export"\n[quantize]\ncalibration_samples = 32\ntflite = ["float32", "int8"]\n'
        'onnx = ["float32", "int8"]\n[export]\nmeasure_rss = false\n'
    )
    return {"model": folder / "trained.keras", "npz": folder / "data.npz", "recipe": folder / "fast.toml"}


@pytest.mark.slow
def test_export_command_bundles_a_saved_model_without_training(saved: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    rc = main(
        [
            "export",
            "--model",
            str(saved["model"]),
            "--data",
            str(saved["npz"]),
            "--out",
            str(out),
            "--recipe",
            str(saved["recipe"]),
        ]
    )
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == LABELS and manifest["source"]["keras_model"] == "trained.keras"
    assert "train" not in manifest["timings_s"]  # no training stage ran
    assert [(a["format"], a["precision"]) for a in manifest["artifacts"]] == [
        ("tflite", "float32"),
        ("tflite", "int8"),
        ("onnx", "float32"),
        ("onnx", "int8"),
    ]
    assert manifest["parity"]["passed"] and manifest["parity"]["cross_format"]["passed"]
    for a in manifest["artifacts"]:
        assert read_metadata(out / a["file"])["labels"] == LABELS
        assert "rss_increase_bytes" not in a["estimates"]  # measure_rss = false
    x = np.load(saved["npz"])["x"][:8]
    with load(out, format="onnx", precision="int8") as model:
        assert set(model.predict_labels(x)) <= set(LABELS)


@pytest.mark.slow
def test_export_with_a_recipe_uses_its_dataset_splits(saved: dict[str, Path], tmp_path: Path) -> None:
    from edgeship.build import export_saved_model
    from edgeship.core.tf import tf_modules
    from edgeship.runtime import InputError

    recipe = tmp_path / "digits.toml"
    recipe.write_text(
        'name = "digits-export"\n[quantize]\nenabled = false\n[export]\nformats = ["tflite"]\n'
        "measure_rss = false\nparity_min_top1 = 0.0\n"
    )
    with pytest.raises(InputError, match=r"expects inputs \(N, 6, 6, 1\).*\(360, 8, 8, 1\)"):
        export_saved_model(saved["model"], recipe, tmp_path / "wrong")  # a 6x6 model against 8x8 digits
    assert not (tmp_path / "wrong").exists()

    _, keras = tf_modules()
    digits_model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1), name="input"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    digits_model.save(tmp_path / "digits.keras")
    out = export_saved_model(tmp_path / "digits.keras", recipe, tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["test"] == 360 and manifest["labels"] == [str(i) for i in range(10)]
    assert [a["file"] for a in manifest["artifacts"]] == ["model.float32.tflite"]
    assert manifest["artifacts"][0]["parity"]["outputs"]["probs"]["max_abs_diff"] <= 1e-4


def _corrupting(fmt: str, precision: str, real: Any) -> Any:
    """Wrap the real metadata step so one artifact's first weight scale is shrunk 50x."""

    def wrapped(data: bytes, f: str, meta: dict[str, Any], **kw: Any) -> bytes:
        data = real(data, f, meta, **kw)
        if f != fmt or precision != "int8":
            return data
        import onnx
        from onnx import numpy_helper

        model = onnx.load_from_string(data)
        inits = {t.name: t for t in model.graph.initializer}
        node = next(
            n
            for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 4
        )
        s = inits[node.input[1]]
        s.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(s) * np.float32(0.02), s.name))
        return model.SerializeToString()

    return wrapped


@pytest.mark.slow
def test_corrupted_scale_fails_the_export_unless_allowed(
    saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeship import export
    from edgeship.build import export_saved_model

    # the orchestrator takes embed_metadata from edgeship.export (its public name): patch it there
    monkeypatch.setattr(export, "embed_metadata", _corrupting("onnx", "int8", export.embed_metadata))
    recipe = saved["recipe"].parent / "onnx_only.toml"
    recipe.write_text(
        'name = "onnx-only"\n[quantize]\ncalibration_samples = 32\nonnx = ["int8"]\n'
        '[export]\nformats = ["onnx"]\nmeasure_rss = false\n'
    )
    out = tmp_path / "bundle"
    with pytest.raises(ParityError, match=r"model\.int8\.onnx: output 'probs' .*max abs diff \d"):
        export_saved_model(saved["model"], saved["npz"], out, recipe_path=recipe)
    assert not out.exists() and list(tmp_path.iterdir()) == []

    recipe.write_text(recipe.read_text() + "allow_parity_failure = true\n")
    export_saved_model(saved["model"], saved["npz"], out, recipe_path=recipe)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is False and manifest["parity"]["allowed_failure"] is True
    assert any("'probs'" in f for f in manifest["parity"]["failures"])
    assert manifest["artifacts"][0]["parity"]["passed"] is False


FAST_RECIPE = """
name = "repro"
seed = 3
[train]
epochs = 4
early_stopping_patience = 4
[prune]
enabled = false
[quantize]
calibration_samples = 16
[export]
measure_rss = false
"""


@pytest.mark.slow
def test_same_recipe_and_seed_give_the_same_manifest(tmp_path: Path) -> None:
    """Two `edgeship build` runs (fresh processes, as a build script runs them): same manifest but timestamps."""
    import subprocess
    import sys

    recipe = tmp_path / "repro.toml"
    recipe.write_text(FAST_RECIPE)
    manifests = []
    for name in ("a", "b"):
        proc = subprocess.run(
            [sys.executable, "-m", "edgeship", "build", str(recipe), "--out", str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        m = json.loads((tmp_path / name / "manifest.json").read_text())
        for key in ("created", "timings_s"):  # the timestamp and stage durations
            m.pop(key)
        manifests.append(m)
    a, b = manifests
    assert [x["sha256"] for x in a["artifacts"]] == [x["sha256"] for x in b["artifacts"]]
    assert a == b


def test_onnx_export_leaves_the_callers_logging_and_tf2onnx_state_alone() -> None:
    """ORT's quantizer logs through the root logger and tf2onnx through its own: both are quietened per call only."""
    import logging

    import tf2onnx

    from edgeship import export, train

    root, t2o = logging.getLogger(), logging.getLogger("tf2onnx")
    before = (root.level, t2o.level, tf2onnx.utils.INTERNAL_NAME)
    model = train.create_model("small_cnn", (8, 8, 1), 3, width=4)
    x = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)
    data = export.to_onnx(model)
    export.quantize_onnx(data, x)
    export.quantize_onnx_dynamic(data)
    assert (root.level, t2o.level, tf2onnx.utils.INTERNAL_NAME) == before


@pytest.mark.parametrize("change, match", [
    ({"y": np.full(96, 7)}, r"Expected labels 'y' in 0\.\.2 .*Received: values from 7 to 7"),
    ({"labels": np.array(["a", "b"])}, r"Expected 3 class names .*Received: 2"),
])
def test_export_labels_must_fit_the_model(saved: dict[str, Path], tmp_path: Path, change: dict[str, Any],
                                          match: str) -> None:
    from edgeship.build import export_saved_model

    with np.load(saved["npz"]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(change)
    data = tmp_path / "bad.npz"
    np.savez(data, **arrays)
    with pytest.raises(InputError, match=match):
        export_saved_model(saved["model"], data, tmp_path / "out", recipe_path=saved["recipe"])
    assert not (tmp_path / "out").exists()
