"""The model API over both engines: choice of artifact, batching, validation, engines, profiles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgeship.runtime._backends as backends
from edgeship.runtime import BackendMissingError, InputError, ModelFileError, load, load_eval
from edgeship.runtime._bench import bench_bundle, benchmark
from edgeship.runtime._profile import PROFILE_FILE, TIE, device_fingerprint

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root


def test_tflite_engine_order_prefers_litert() -> None:
    assert backends.TFLITE_ENGINES == ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow")
    _, name = backends.tflite_interpreter_class()
    assert name == "ai_edge_litert.interpreter"


def test_missing_tflite_engine_names_the_pip_package(default_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "TFLITE_ENGINES", ("no_such_engine_a", "no_such_engine_b"))
    with pytest.raises(BackendMissingError, match="pip install ai-edge-litert"):
        load(default_bundle / "model.float32.tflite", probe=False)


def test_onnx_providers_are_configurable(default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    with load(default_bundle / "model.float32.onnx", providers=["CPUExecutionProvider"]) as m:
        assert m.predict(x[:2]).shape == (2, 10)
    with pytest.raises(BackendMissingError, match="onnxruntime-gpu"):
        load(default_bundle / "model.float32.onnx", providers=["NoSuchExecutionProvider"])


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_batches_int8_and_labels(default_bundle: Path, fmt: str) -> None:
    x, y = load_eval(default_bundle)
    with load(default_bundle, format=fmt, precision="float32") as f32, load(default_bundle, format=fmt, precision="int8") as i8:
        for batch in (1, 5, 32):
            a, b = f32.predict(x[:batch]), i8.predict(x[:batch])
            assert a.shape == b.shape == (batch, 10) and a.dtype == b.dtype == np.float32
            # int8 dequantized into the same probability space as float32
            assert np.abs(a - b).mean() < 0.02 and np.mean(a.argmax(1) == b.argmax(1)) >= 0.9
        # a batch of one sample equals that sample inside a larger batch
        np.testing.assert_allclose(f32.predict(x[4:5])[0], f32.predict(x[:9])[4], atol=1e-5)
        labels = i8.predict_labels(x[:20])
        assert labels == [str(int(k)) for k in np.argmax(i8.predict(x[:20]), axis=1)]
        assert np.mean(np.array(labels) == y[:20].astype(str)) > 0.8


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_nan_inf_policy_and_huge_values(default_bundle: Path, fmt: str) -> None:
    x, _ = load_eval(default_bundle)
    with load(default_bundle, format=fmt, precision="float32") as m:
        m.predict(x[:1])  # the fast path is now primed for this shape
        for bad in (np.nan, np.inf, -np.inf):
            z = x[:1].copy()
            z[0, 3, 3, 0] = bad
            with pytest.raises(InputError, match="1 NaN/Inf value"):
                m.predict(z)
        # values whose squares overflow float32 are finite: not rejected
        big = np.full((1, 8, 8, 1), 3e19, np.float32)
        assert m.predict(big).shape == (1, 10)
        big[0, 0, 0, 0] = np.nan
        with pytest.raises(InputError, match="NaN/Inf"):
            m.predict(big)
    with load(default_bundle, format=fmt, precision="float32", nan_policy="ignore") as m:
        z = x[:1].copy()
        z[0, 0, 0, 0] = np.nan
        assert m.predict(z).shape == (1, 10)
    with pytest.raises(InputError, match="nan_policy"):
        load(default_bundle, nan_policy="warn")  # type: ignore[arg-type]


def test_validation_messages(default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    with load(default_bundle, format="tflite", precision="int8") as m:
        with pytest.raises(InputError, match=r"Received: float32 \(8, 8, 1\).*x\[None, \.\.\.\]"):
            m.predict(x[0])
        with pytest.raises(InputError, match="at least one sample"):
            m.predict(x[:0])
        with pytest.raises(InputError, match="complex"):
            m.predict(np.zeros((1, 8, 8, 1), np.complex64))
        assert m.predict(x[:2].tolist()).shape == (2, 10)  # nested lists are arrays too
        assert m.predict(x[:2].astype(np.float16)).shape == (2, 10)
        np.testing.assert_array_equal(m.predict(x[:3].astype(np.float64)), m.predict(x[:3]))


def test_close_and_context_manager(default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    for fmt in ("tflite", "onnx"):
        with load(default_bundle, format=fmt) as m:
            predict = m.predict
            predict(x[:1])
        with pytest.raises(ModelFileError, match="closed"):
            predict(x[:1])  # a reference taken before close() is closed too
        with pytest.raises(ModelFileError, match="closed"):
            m.predict(x[:1])
        m.close()  # idempotent


def test_choice_by_arguments_profile_and_default(bundle_copy: Path) -> None:
    from edgeship.runtime._bundle import read_manifest
    from edgeship.runtime._choice import default_choice, int8_dot_product_arm, x86_vnni

    rule = default_choice(read_manifest(bundle_copy), bundle_copy)[0].file
    with load(bundle_copy) as m:  # the no-profile rule: deep reductions (3x3 convs), 2 M MACs
        assert m.path.name == rule == ("model.int8.tflite" if x86_vnni() or int8_dot_product_arm()
                                       else "model.float32.tflite")
    profile = {"file": "model.int8.onnx", "device": device_fingerprint()}
    (bundle_copy / PROFILE_FILE).write_text(json.dumps(profile))
    with load(bundle_copy) as m:
        assert m.path.name == "model.int8.onnx"
    with load(bundle_copy, format="tflite") as m:  # arguments win over the profile
        assert m.path.name == "model.float32.tflite"
    profile["device"] = {**device_fingerprint(), "cpu": "some other CPU"}
    (bundle_copy / PROFILE_FILE).write_text(json.dumps(profile))
    with load(bundle_copy) as m:  # measured elsewhere: not applied here
        assert m.path.name == rule


def test_benchmark_statistics_and_sweep(default_bundle: Path) -> None:
    r = benchmark(default_bundle / "model.int8.tflite", runs=30, min_seconds=0.05, warmup=3, thread_sweep=[1, 2])
    assert isinstance(r, dict)
    lat = r["latency_ms"]
    assert set(lat) == {"min", "mean", "std", "p50", "p90", "p95", "p99", "max"}
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert r["runs"] >= 30 and r["seconds"] >= 0.05
    assert r["init_ms"] > 0 and r["first_ms"] > 0 and r["throughput_per_s"] > 0 and r["peak_rss_mb"] > 10
    assert [s["threads"] for s in r["sweep"]] == [1, 2] and all(s["p50_ms"] > 0 for s in r["sweep"])


def test_bench_bundle_records_device_profile(default_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(default_bundle, bundle)
    rows, path = bench_bundle(bundle, runs=20, min_seconds=0.0, warmup=2, accuracy_budget=0.0)
    assert len(rows) == 4 and sum(r["fastest_within_budget"] for r in rows) == 1
    chosen = next(r for r in rows if r["fastest_within_budget"])
    best_float = max(r["accuracy"] for r in rows if r["precision"] == "float32")
    assert chosen["accuracy"] >= best_float  # budget 0: no accuracy lost
    fastest = min(r["median_ms"] for r in rows if r["within_budget"])  # median of interleaved rounds
    assert chosen["median_ms"] <= (1 + TIE) * fastest  # the fastest, or the no-profile rule's pick on a tie
    profile = json.loads(path.read_text())
    assert profile["file"] == chosen["file"] and profile["device"] == device_fingerprint()
    with load(bundle) as m:
        assert m.path.name == chosen["file"]
