"""The accuracy-budget chain on a model plain PTQ cannot quantize: one layer with extreme activation outliers.

The model is a trained digits MLP plus one extra hidden unit that fires at ~2e4
on ~8% of the inputs (a rarely-set pixel times 2e4) and feeds nothing (zero
outgoing weights). The float model is unchanged, but the per-tensor int8 range
of the hidden activations becomes [0, ~2e4], so every informative activation
rounds to zero and int8 top-1 falls to chance. Calibration cannot fix that
(the outlier is real data), so the chain has to reach a later step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.core.errors import AccuracyBudgetError, BuildError


@pytest.fixture(scope="module")
def outlier() -> dict[str, Any]:
    from edgeship import train
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    ds = train.load_dataset("digits")
    L = keras.layers

    def mlp(hidden: int) -> Any:
        return keras.Sequential(
            [
                L.Input(ds.input_shape, name="input"),
                L.Flatten(name="flatten"),
                L.Dense(hidden, activation="relu", name="hidden"),
                L.Dense(10, activation="softmax", name="probs"),
            ]
        )

    base = mlp(32)
    train.fit(base, ds.training_data, epochs=10, learning_rate=3e-3, verbose=0, seed=0)
    freq = (ds.x_train.reshape(len(ds.x_train), -1) > 0).mean(axis=0)
    pixel = int(np.argmin(np.abs(freq - 0.08)))
    w1, b1, w2, b2 = base.get_weights()
    w1 = np.concatenate([w1, np.zeros((w1.shape[0], 1), np.float32)], axis=1)
    w1[pixel, -1] = 2e4
    model = mlp(33)
    model.set_weights([w1, np.append(b1, 0.0).astype(np.float32), np.concatenate([w2, np.zeros((1, 10), np.float32)]), b2])
    float_acc = train.accuracy(model, ds.x_test, ds.y_test)
    assert float_acc == train.accuracy(base, ds.x_test, ds.y_test) and float_acc > 0.85
    return {"model": model, "ds": ds, "float_acc": float_acc}


def _write(outlier: dict[str, Any], out: Path, quantize: dict[str, Any], formats: list[str]) -> Path:
    from edgeship import train
    from edgeship.build import ShipData, write_bundle
    from edgeship.recipe import Recipe
    from edgeship.variants import CompressData

    ds = outlier["ds"]
    recipe = Recipe.from_dict(
        {"name": "outlier", "quantize": quantize, "export": {"formats": formats, "measure_rss": False}}
    )
    data = ShipData(ds.x_train[:256], ds.x_test, ds.y_test, ds.labels, ds.preprocessing,
                    train.accuracy(outlier["model"], ds.x_test, ds.y_test))
    return write_bundle(outlier["model"], recipe, out, data,
                        compress_data=CompressData(ds.x_train, ds.y_train, ds.x_val, ds.y_val, seed=0))


def test_plain_ptq_breaks_the_outlier_model(outlier: dict[str, Any], tmp_path: Path) -> None:
    from edgeship.export import to_tflite
    from edgeship.runtime._load import load_file

    ds = outlier["ds"]
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(outlier["model"], "int8", ds.x_train))
    with load_file(path, "tflite") as m:
        acc = float(np.mean(np.argmax(m.predict(ds.x_test), -1) == ds.y_test))
    assert acc < outlier["float_acc"] - 0.5


@pytest.mark.slow
def test_fallback_chain_meets_the_budget_and_records_every_attempt(outlier: dict[str, Any], tmp_path: Path) -> None:
    budget = 0.02
    out = _write(outlier, tmp_path / "bundle", {"accuracy_budget": budget, "qat_epochs": 1}, ["tflite", "onnx"])
    manifest = json.loads((out / "manifest.json").read_text())
    comp = manifest["compression"]
    assert set(comp) == {"sparsity", "schedule", "prune_attempts", "quantization_attempts", "sqnr_db", "batchnorm_fold"}
    attempts = [a for a in comp["quantization_attempts"] if a["step"] != "export"]  # float32 files: one attempt each
    keys = {"artifact", "step", "method", "accuracy", "drop", "bytes", "met_budget"}
    assert all(set(a) == keys for a in attempts)
    for artifact, expected_steps in (
        ("model.int8.tflite", ["ptq_per_channel", "more_calibration", "qat"]),
        ("model.int8.onnx", ["ptq_per_channel", "more_calibration", "other_calibration", "other_calibration", "qat"]),
    ):
        mine = [a for a in attempts if a["artifact"] == artifact]
        steps = [a["step"] for a in mine]
        assert steps[: len(expected_steps)] == expected_steps, steps
        assert steps[len(expected_steps):] and set(steps[len(expected_steps):]) == {"float_fallback"}
        assert [a["met_budget"] for a in mine] == [False] * (len(mine) - 1) + [True]
        assert all(a["drop"] > budget for a in mine[:-1]) and mine[-1]["drop"] <= budget
        assert all(a["bytes"] > 0 and 0.0 <= a["accuracy"] <= 1.0 for a in mine)
        shipped = next(a for a in manifest["artifacts"] if a["file"] == artifact)
        assert shipped["metrics"]["accuracy"] > outlier["float_acc"] - 0.05
        assert shipped["metrics"]["gzip_bytes"] > 0
    # The layers kept in float are the lowest-SQNR ones; the hidden (outlier) layer is among them.
    sq = comp["sqnr_db"]
    assert set(sq) == {"tflite", "onnx"}
    hidden_t = next(n for n in sq["tflite"] if "hidden" in n)
    assert sq["tflite"][hidden_t] < 10.0
    assert hidden_t in [a for a in attempts if a["artifact"] == "model.int8.tflite"][-1]["method"]
    report = (out / "report.md").read_text()
    assert "float_fallback" in report


def test_unmeetable_budget_fails_with_the_table_and_writes_no_bundle(outlier: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(AccuracyBudgetError) as info:
        _write(outlier, out, {"accuracy_budget": 0.01, "qat_epochs": 0, "max_float_layers": 1},
               ["tflite"])
    msg = str(info.value)
    assert isinstance(info.value, BuildError)
    for step in ("ptq_per_channel", "more_calibration", "float_fallback"):
        assert f"model.int8.tflite  {step}" in msg, msg
    assert "budget.max_accuracy_drop=0.01" in msg and "Fix:" in msg  # quantize.accuracy_budget is its 0.1 spelling
    assert not out.exists()
    assert not any(p.name.startswith(".edgeship-tmp-") for p in tmp_path.iterdir())



def _artifact(file: str, **metrics: float) -> Any:
    from edgeship.core.bundle import ArtifactMetrics, ArtifactRecord

    figures = {"accuracy": 0.0, "accuracy_drop": 0.0, "macro_f1": 0.0, "gzip_bytes": 1, **metrics}
    return ArtifactRecord(file=file, sha256="0" * 64, bytes=1, format="tflite" if file.endswith(".tflite") else "onnx",
                          precision="int8", metrics=ArtifactMetrics(**figures))


def test_bundle_warnings_name_each_artifact_below_the_baseline_or_over_the_budget() -> None:
    from edgeship._gates import anomaly_warnings, classifier_warnings
    from edgeship.core.bundle import Baselines

    arts = [_artifact("a.tflite", accuracy=0.70, accuracy_drop=0.05), _artifact("b.onnx", accuracy=0.90)]
    base = Baselines(majority=0.1, majority_class=0, linear=0.8, linear_model="lr")
    below, over = classifier_warnings(arts, base, 0.01, 400, "validation split")
    assert "below the linear baseline (0.8000, lr): a.tflite 0.7000." in below and "b.onnx" not in below
    assert "(400 samples)" in over and "a.tflite +0.0500" in over and "b.onnx" not in over
    assert classifier_warnings(arts, None, None, 400, "validation split") == []  # no baseline, no budget: nothing to say
    # 20 test samples cannot resolve 1 point: a 0.05 drop is one sample, within the budget as judged
    assert classifier_warnings(arts, None, 0.01, 20, "validation split") == []
    auc = [_artifact("m.tflite", roc_auc=0.90, roc_auc_drop=0.05)]
    pca, drop = anomaly_warnings(auc, {"pca_roc_auc": 0.95, "pca_components": 8}, 0.02, "validation split")
    assert "PCA baseline's ROC AUC (0.9500, 8 components): m.tflite 0.9000" in pca and "m.tflite +0.0500" in drop
