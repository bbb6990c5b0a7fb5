"""The task type (edgeship.core.task) and the one parity rule (edgeship.core.parity) every check uses.

Real ONNX Runtime on tiny graphs built here with onnx.helper; manifests of the
layout before the task field still load and name their task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.core.bundle import BudgetRecord, Manifest
from edgeship.core.task import AnomalyDetection, Classification, task_named, task_names, task_of

ARTIFACT = {"file": "model.float32.onnx", "sha256": "0" * 64, "bytes": 1, "format": "onnx", "precision": "float32"}


def test_task_named_lists_the_valid_names() -> None:
    assert task_names() == ("classification", "anomaly")
    assert task_named("anomaly") == AnomalyDetection() and task_named("classification") == Classification()
    with pytest.raises(ValueError, match="one of 'classification', 'anomaly'. Received: 'regression'"):
        task_named("regression")


def test_the_task_owns_its_metric_and_parity_rule() -> None:
    c, a = Classification(), AnomalyDetection()
    assert (c.metric, a.metric) == ("accuracy", "roc_auc")
    assert c.parity_rule is None and "top-1 agreement does not apply" in (a.parity_rule or "")
    probs = {"probs": np.zeros((4, 3)), "aux": np.zeros((4, 5))}
    assert c.classifier_outputs(probs, ["a", "b", "c"]) == {"probs"}
    assert a.classifier_outputs(probs, ["normal", "anomaly"]) == set()


def test_a_manifest_names_its_task_and_an_older_one_is_read_from_its_sections() -> None:
    new = Manifest.new({"name": "m", "task": "anomaly", "artifacts": [ARTIFACT]})
    assert task_of(new) == AnomalyDetection() and new.to_json()["task"] == "anomaly"
    legacy = Manifest.new({"name": "m", "artifacts": [ARTIFACT]})  # written before 0.2: no task field
    assert task_of(legacy) == Classification() and "task" not in legacy.to_json()
    anomaly = {"score": "mse", "threshold_quantile": 0.95, "threshold": 0.1, "roc_auc": 0.9, "precision": 0.8,
               "recall": 0.7, "validation_normals": 10}
    assert task_of(Manifest.new({"name": "m", "anomaly": anomaly, "artifacts": [ARTIFACT]})) == AnomalyDetection()


def test_an_older_budget_record_loads_under_the_new_names() -> None:
    old = {"max_accuracy_drop": 0.01, "effective_max_drop": 0.01, "decision_samples": 179, "reference": "r",
           "reference_val_accuracy": 0.98, "reference_test_accuracy": 0.97, "judged_on": "validation split"}
    b = BudgetRecord.from_json(old)
    assert (b.reference_val, b.reference_test, b.metric) == (0.98, 0.97, None)
    assert "reference_val_accuracy" not in b.to_json() and b.to_json()["reference_test"] == 0.97


def _identity_onnx(path: Path, width: int) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, width])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_quality_through_a_real_runtime_model(tmp_path: Path) -> None:
    from edgeship.runtime import load

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.argmax(scores, axis=1)
    with load(_identity_onnx(tmp_path / "m.onnx", 3)) as model:
        assert Classification().quality(model, scores, y) == 1.0  # an identity's argmax is the label
        # an identity reconstructs perfectly: every score is 0, so ROC AUC is one half (all tied)
        assert AnomalyDetection().quality(model, scores, (y == 0).astype(int)) == pytest.approx(0.5)


def test_cross_platform_parity_judges_by_the_build_rule() -> None:
    """A reconstruction has no top-1; class scores count only decisive samples (the old rule took every argmax)."""
    from edgeship.crossplatform import LIMITS, judge

    rng = np.random.default_rng(1)
    recon = rng.normal(size=(50, 16)).astype(np.float32)
    rec, failure = judge("ae.int8.tflite", True, [recon], [recon + 1e-4], LIMITS, classifier=set())
    assert failure is None and rec.passed and rec.top1_agreement is None and rec.sqnr_db > 30
    x = np.full((100, 4), 0.25, np.float32)
    x[:, 0] += 1e-3  # near-uniform scores: every argmax may flip under a tiny error, none is decisive
    y = x.copy()
    y[:, 1] += 2e-3
    rec, failure = judge("c.int8.tflite", True, {"probs": x}, {"probs": y}, LIMITS)
    assert rec.outputs is not None and rec.outputs["probs"].top1_rule.decisive_samples == 0
    assert rec.top1_agreement is None and failure is None
    rec, failure = judge("c.float32.tflite", False, {"probs": x}, {"probs": y}, LIMITS)
    assert not rec.passed and failure is not None and "max abs diff" in failure


def test_a_manifest_written_by_edgeship_0_1_still_loads() -> None:
    """tests/data/manifest-0.1.0.json: the default build's manifest as edgeship 0.1.0 (35792c0) wrote it."""
    import json

    data = json.loads((Path(__file__).parent / "data" / "manifest-0.1.0.json").read_text())
    m = Manifest.from_json(data)
    assert m.edgeship_version == "0.1.0" and m.task is None and task_of(m) == Classification()
    assert m.budget is not None and m.budget.reference_test == data["budget"]["reference_test_accuracy"]
    attempts = m.compression.quantization_attempts if m.compression else ()
    assert attempts and all(isinstance(a.met_budget, bool) for a in attempts)
    assert m.artifacts[0].parity is not None and m.artifacts[0].parity.passed
