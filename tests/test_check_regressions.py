"""The gate against real regressions: re-exported models written over a baselined bundle.

Uses the helpers of benchmarks/check_stability.py (real tf_keras training, real
TFLite/tf2onnx/ORT converters). Accuracy is asserted; latency is not (a timing):
the latency figures for the ~1.5x slower model come from that benchmark.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from edgeship.cli import main
from edgeship.runtime._check import check_bundle

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "check_stability.py"


def _bench():
    spec = importlib.util.spec_from_file_location("check_stability", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_perturbed_weights_fail_accuracy_and_slowed_model_keeps_it(tmp_path: Path) -> None:
    cs = _bench()
    keras, model, x_tr, x_te, y_te = cs.train_digits()
    cal = x_tr[:128]
    base = tmp_path / "base"
    cs.write_bundle(base, cs.export_all(model, cal), x_te, y_te)
    assert main(["check", str(base), "--update", "--rounds", "3"]) == 0
    assert main(["check", str(base), "--latency-tol", "100", "--rounds", "3"]) == 0

    # the benchmark's "1.5x slower" model computes the same function: accuracy holds; its
    # identity conv adds 48x48x3x3 weights, so size grows (the benchmark passes --size-tol 1)
    slow = tmp_path / "slow"
    shutil.copytree(base, slow)
    cs.overwrite(slow, cs.export_all(cs.with_identity_conv(keras, model), cal))
    result = check_bundle(slow, latency_tol=100, rounds=3)
    assert {(r.artifact, r.metric) for r in result.failures} <= {(a, "size") for a in result.measured["artifacts"]}
    assert ("model.float32.tflite", "size") in {(r.artifact, r.metric) for r in result.failures}

    noisy, sigma, acc0, acc1 = cs.perturbed(keras, model, x_te, y_te)
    assert 0.05 <= acc0 - acc1 <= 0.15
    cs.overwrite(base, cs.export_all(noisy, cal))
    result = check_bundle(base, latency_tol=100, rounds=3)
    acc_rows = [r for r in result.rows if r.metric == "accuracy"]
    assert len(acc_rows) == 4 and not any(r.passed for r in acc_rows), result.table()
    assert all(r.baseline - r.current >= 0.03 for r in acc_rows)
    assert {r.metric for r in result.failures} == {"accuracy"}
    assert main(["check", str(base), "--latency-tol", "100", "--rounds", "3"]) == 1
