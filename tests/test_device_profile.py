"""``load(bundle)`` picks the fastest artifact within the budget: device profiles, interleaved bench, no-profile rule.

The bundles here are made of third-party files, the MLPerf Tiny reference models
(tests/data/mlperf_tiny), with a hand-written manifest: no TensorFlow, real engines.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship._mlperf import find_reference
from edgeship.core.bundle import Manifest
from edgeship.core.metrics import roc_auc
from edgeship.runtime import load
from edgeship.runtime._bench import bench_bundle, quality
from edgeship.runtime._choice import (
    DEEP_REDUCTION,
    MEMORY_BOUND_MACS_PER_WEIGHT,
    default_choice,
    int8_dot_product_arm,
    workload,
    x86_vnni,
)
from edgeship.runtime._profile import PROFILE_FILE, TIE, device_fingerprint, eligible, select_fastest


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def make_bundle(folder: Path, files: dict[str, str], x: np.ndarray, y: np.ndarray, **fields: Any) -> Path:
    """A bundle of reference files: ``{"model.int8.tflite": "kws_ref_model.tflite", ...}`` and eval.npz."""
    folder.mkdir(parents=True)
    artifacts = []
    for name, ref in files.items():
        src = find_reference(ref)
        assert src is not None, f"{ref} is committed in tests/data/mlperf_tiny"
        shutil.copyfile(src, folder / name)
        prec, fmt = name.split(".")[1:3]
        artifacts.append({"file": name, "sha256": _sha(folder / name), "bytes": (folder / name).stat().st_size,
                          "format": fmt, "precision": prec})
    np.savez(folder / "eval.npz", x=x.astype(np.float32), y=y)
    ev = folder / "eval.npz"
    manifest = Manifest.new({"name": folder.name, "artifacts": artifacts,
                             "eval": {"file": "eval.npz", "sha256": _sha(ev), "bytes": ev.stat().st_size,
                                      "samples": len(x)}, **fields})
    (folder / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2))
    return folder


@pytest.fixture
def kws_bundle(tmp_path: Path) -> Path:
    """KWS float32 + int8 reference files; labels = the float32 model's own top-1 (so float32 scores 1.0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 20.0, size=(64, 49, 10, 1)).astype(np.float32)
    with load(find_reference("kws_ref_model_float32.tflite"), threads=1) as m:  # type: ignore[arg-type]
        y = np.argmax(m.predict(x), axis=1)
    return make_bundle(tmp_path / "kws", {"model.float32.tflite": "kws_ref_model_float32.tflite",
                                          "model.int8.tflite": "kws_ref_model.tflite"}, x, y)


def _write_profile(bundle: Path, file: str, **changes: Any) -> None:
    profile = {"file": file, "sha256": _sha(bundle / file), "device": device_fingerprint(), **changes}
    (bundle / PROFILE_FILE).write_text(json.dumps(profile))


@pytest.mark.parametrize("name", ["model.float32.tflite", "model.int8.tflite"])
def test_profile_naming_a_variant_makes_load_return_it(kws_bundle: Path, name: str) -> None:
    _write_profile(kws_bundle, name)
    with load(kws_bundle) as m:
        assert m.path.name == name


def test_profile_from_another_device_is_ignored(kws_bundle: Path) -> None:
    rule, _ = default_choice(Manifest.from_json(json.loads((kws_bundle / "manifest.json").read_text())), kws_bundle)
    other = next(a for a in ("model.float32.tflite", "model.int8.tflite") if a != rule.file)
    _write_profile(kws_bundle, other)
    with load(kws_bundle) as m:
        assert m.path.name == other  # this device: applied
    _write_profile(kws_bundle, other, device={**device_fingerprint(), "cpu": "some other CPU"})
    with load(kws_bundle) as m:
        assert m.path.name == rule.file  # measured elsewhere: the no-profile rule


def test_profile_of_other_bytes_is_ignored(kws_bundle: Path) -> None:
    rule, _ = default_choice(Manifest.from_json(json.loads((kws_bundle / "manifest.json").read_text())), kws_bundle)
    other = next(a for a in ("model.float32.tflite", "model.int8.tflite") if a != rule.file)
    _write_profile(kws_bundle, other, sha256="0" * 64)  # measured on an earlier build of the bundle
    with load(kws_bundle) as m:
        assert m.path.name == rule.file


def test_arguments_restrict_and_the_profile_ranks_within_them(kws_bundle: Path) -> None:
    cands = [{"file": "model.float32.tflite", "sha256": _sha(kws_bundle / "model.float32.tflite"), "median_ms": 0.5,
              "within_budget": True},
             {"file": "model.int8.tflite", "sha256": _sha(kws_bundle / "model.int8.tflite"), "median_ms": 0.1,
              "within_budget": True}]
    _write_profile(kws_bundle, "model.float32.tflite", candidates=cands)
    with load(kws_bundle, format="tflite") as m:  # both match: the faster per the profile
        assert m.path.name == "model.int8.tflite"
    cands[1]["within_budget"] = False
    _write_profile(kws_bundle, "model.float32.tflite", candidates=cands)
    with load(kws_bundle, format="tflite") as m:  # outside the budget: never picked for speed
        assert m.path.name == "model.float32.tflite"


def test_bench_interleaves_and_load_returns_the_fastest_within_budget(kws_bundle: Path) -> None:
    rows, path = bench_bundle(kws_bundle, threads=1, rounds=4, runs=40, warmup=2, min_seconds=0.05,
                              accuracy_budget=1.0)
    assert len(rows) == 2 and all(r["rounds"] == 4 and len(r["round_ms"]) == 4 for r in rows)
    # three separate loads of each file, timed side by side: the figure is the median over the loads
    assert all(r["loads"] == 3 and len(r["median_ms_per_load"]) == 3 for r in rows)
    assert all(r["median_ms"] == pytest.approx(float(np.median(r["median_ms_per_load"]))) for r in rows)
    assert all(r["runs"] >= 40 and r["within_budget"] and r["metric"] == "top1" for r in rows)
    chosen = [r for r in rows if r["fastest_within_budget"]]
    fastest = min(r["median_ms"] for r in rows)
    rule, _ = default_choice(Manifest.from_json(json.loads((kws_bundle / "manifest.json").read_text())), kws_bundle)
    assert len(chosen) == 1
    assert chosen[0]["median_ms"] == fastest or (chosen[0]["file"] == rule.file
                                                 and chosen[0]["median_ms"] <= (1 + TIE) * fastest)
    profile = json.loads(path.read_text())
    assert profile["file"] == chosen[0]["file"] and profile["sha256"] == _sha(kws_bundle / chosen[0]["file"])
    assert {c["file"] for c in profile["candidates"]} == {"model.float32.tflite", "model.int8.tflite"}
    with load(kws_bundle) as m:
        assert m.path.name == chosen[0]["file"]


def test_bench_with_zero_budget_keeps_the_accurate_variant(kws_bundle: Path) -> None:
    rows, _ = bench_bundle(kws_bundle, threads=1, rounds=2, runs=10, warmup=1, min_seconds=0.0, accuracy_budget=0.0)
    f32 = next(r for r in rows if r["precision"] == "float32")
    int8 = next(r for r in rows if r["precision"] == "int8")
    assert f32["accuracy"] == 1.0  # the labels are its own predictions
    assert int8["within_budget"] == (int8["accuracy"] >= 1.0)
    chosen = next(r for r in rows if r["fastest_within_budget"])
    assert chosen["accuracy"] >= f32["accuracy"]


def _result(file: str, precision: str, acc: float, ms: float) -> dict[str, Any]:
    return {"file": file, "precision": precision, "accuracy": acc, "median_ms": ms, "latency_ms": {"p50": ms}}


def _attempt(artifact: str, met: bool) -> dict[str, object]:
    return {"artifact": artifact, "step": "ptq_per_channel", "method": "minmax", "accuracy": 0.9, "drop": 0.0,
            "bytes": 1, "met_budget": met}


def test_select_fastest_skips_variants_the_manifest_records_as_missing_the_budget() -> None:
    results = [_result("model.float32.tflite", "float32", 0.95, 0.30), _result("model.int8.tflite", "int8", 0.95, 0.10),
               _result("model.int8.onnx", "int8", 0.95, 0.20)]
    assert select_fastest(results, 0.01)["file"] == "model.int8.tflite"
    manifest = Manifest.new({
        "name": "m",
        "artifacts": [{"file": r["file"], "sha256": "0" * 64, "bytes": 1, "format": r["file"].rsplit(".", 1)[1],
                       "precision": r["precision"]} for r in results],
        "compression": {"sparsity": {}, "schedule": {}, "prune_attempts": [], "sqnr_db": {},
                        "quantization_attempts": [_attempt("model.int8.tflite", False), _attempt("model.int8.onnx", True)]},
    })
    assert eligible(results, 0.01, manifest) == {"model.float32.tflite", "model.int8.onnx"}
    assert select_fastest(results, 0.01, manifest)["file"] == "model.int8.onnx"


def test_select_fastest_ranks_by_median_of_rounds_and_judges_accuracy_on_the_device() -> None:
    a = _result("model.float32.tflite", "float32", 0.90, 0.30)
    b = _result("model.int8.tflite", "int8", 0.88, 0.10)  # 2 points below: outside a 0.01 budget
    c = _result("model.float32.onnx", "float32", 0.90, 0.25)
    c["latency_ms"]["p50"] = 0.01  # one lucky p50; the median of rounds decides
    assert select_fastest([a, b, c], 0.01)["file"] == "model.float32.onnx"
    assert select_fastest([a, b, c], 0.05)["file"] == "model.int8.tflite"
    worse = [_result("model.int8.tflite", "int8", 0.5, 0.1), _result("model.int8.onnx", "int8", 0.6, 0.2)]
    assert select_fastest(worse, 0.0)["file"] == "model.int8.onnx"  # nothing float to judge against: best accuracy


def _rule(bundle: Path) -> tuple[str, str]:
    choice, reason = default_choice(Manifest.from_json(json.loads((bundle / "manifest.json").read_text())), bundle)
    return choice.file, reason


def test_workload_of_the_reference_models() -> None:
    ad, kws, ic = (workload(find_reference(f)) for f in  # type: ignore[arg-type]
                   ("ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite"))
    assert ad is not None and kws is not None and ic is not None
    assert ad.macs == ad.weights == 264_192 and ad.macs_per_weight == 1.0  # fully connected at batch 1
    assert kws.macs == 2_656_768 and kws.macs_per_weight > 100 > MEMORY_BOUND_MACS_PER_WEIGHT
    assert kws.reduction < DEEP_REDUCTION < ic.reduction  # depthwise-separable vs full 3x3 convolutions
    assert ic.macs == 12_501_632


def test_no_profile_rule(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arm, vnni = int8_dot_product_arm(), x86_vnni()
    # memory-bound (the autoencoder's fully connected layers): int8 TFLite
    ad = make_bundle(tmp_path / "ad", {"model.float32.tflite": "ad01_int8.tflite", "model.int8.tflite": "ad01_int8.tflite"},
                     rng.random((4, 640)), np.array([0, 0, 1, 1]))
    file, reason = _rule(ad)
    assert file == "model.int8.tflite" and "memory-bound" in reason
    # depthwise-separable (shallow reductions): float32 TFLite unless ARM with dot product
    kws = make_bundle(tmp_path / "kws", {"model.float32.tflite": "kws_ref_model_float32.tflite",
                                         "model.int8.tflite": "kws_ref_model.tflite"},
                      rng.random((2, 49, 10, 1)), np.array([0, 1]))
    assert _rule(kws)[0] == ("model.int8.tflite" if arm else "model.float32.tflite")
    with load(kws) as m:
        assert m.path.name == _rule(kws)[0]
    # full convolutions (deep reductions) on x86 VNNI: int8 ONNX (any .onnx file stands in for the record)
    onnx = Path(__import__("edgeship.runtime", fromlist=["x"]).__file__).parent / "reference.onnx"
    ic = make_bundle(tmp_path / "ic", {"model.float32.tflite": "pretrainedResnet_quant.tflite",
                                       "model.int8.tflite": "pretrainedResnet_quant.tflite"},
                     rng.random((2, 32, 32, 3)), np.array([0, 1]))
    shutil.copyfile(onnx, ic / "model.int8.onnx")
    manifest = json.loads((ic / "manifest.json").read_text())
    entry = {"file": "model.int8.onnx", "sha256": _sha(ic / "model.int8.onnx"),
             "bytes": (ic / "model.int8.onnx").stat().st_size, "format": "onnx", "precision": "int8"}
    manifest["artifacts"].append(entry)
    (ic / "manifest.json").write_text(json.dumps(manifest))
    want = "model.int8.tflite" if arm else "model.int8.onnx" if vnni else "model.float32.tflite"
    assert _rule(ic)[0] == want
    # ... but never a variant the build recorded as missing the budget
    manifest["compression"] = {"sparsity": {}, "schedule": {}, "prune_attempts": [], "sqnr_db": {},
                               "quantization_attempts": [_attempt("model.int8.onnx", False),
                                                         _attempt("model.int8.tflite", False)]}
    (ic / "manifest.json").write_text(json.dumps(manifest))
    assert _rule(ic)[0] == "model.float32.tflite"


def test_anomaly_bundle_is_judged_on_roc_auc(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 5.0, size=(40, 640)).astype(np.float32)
    y = np.r_[np.zeros(20, np.int64), np.ones(20, np.int64)]
    bundle = make_bundle(tmp_path / "ad", {"model.int8.tflite": "ad01_int8.tflite"}, x, y,
                         recipe={"model": {"task": "anomaly"}})
    rows, _ = bench_bundle(bundle, threads=1, rounds=2, runs=10, warmup=1, min_seconds=0.0)
    with load(bundle) as m:
        err = ((m.predict(x) - x) ** 2).mean(axis=1)
        assert quality(m, (x, y)) == ("roc_auc", roc_auc(err, y))  # outputs shaped as inputs: reconstruction
    assert rows[0]["metric"] == "roc_auc" and rows[0]["accuracy"] == pytest.approx(roc_auc(err, y))


def test_roc_auc_matches_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.integers(0, 6, 50).astype(np.float64)  # many ties
        y = rng.integers(0, 2, 50)
        assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert roc_auc(np.arange(4.0), np.array([0, 0, 1, 1])) == 1.0
    assert np.isnan(roc_auc(np.arange(3.0), np.zeros(3)))


def test_select_fastest_keeps_the_rule_pick_on_a_tie() -> None:
    results = [_result("model.float32.tflite", "float32", 0.9, 0.1045), _result("model.int8.tflite", "int8", 0.9, 0.1000)]
    assert TIE == 0.05
    assert select_fastest(results, 0.01)["file"] == "model.int8.tflite"
    assert select_fastest(results, 0.01, prefer="model.float32.tflite")["file"] == "model.float32.tflite"  # 4.5%: tie
    results[0]["median_ms"] = 0.1060  # 6% slower: no longer a tie
    assert select_fastest(results, 0.01, prefer="model.float32.tflite")["file"] == "model.int8.tflite"
    results[0]["accuracy"], results[1]["accuracy"] = 0.9, 0.5  # the fast one is outside the budget
    assert select_fastest(results, 0.01, prefer="model.int8.tflite")["file"] == "model.float32.tflite"


def test_the_build_records_the_workload_so_load_reads_no_graph(bundle_copy: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``manifest["workload"]`` is what the no-profile rule reads; only a bundle without it reads the float32 graph."""
    from edgeship.runtime import _choice

    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    (bundle_copy / PROFILE_FILE).unlink(missing_ok=True)
    measured = _choice.workload(bundle_copy / "model.float32.tflite")
    assert measured is not None
    assert manifest["workload"] == {"macs": measured.macs, "weights": measured.weights, "reduction": measured.reduction}
    with load(bundle_copy) as m:
        picked = m.path.name

    def no_reading(path: Path) -> None:
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(_choice, "workload", no_reading)
    with load(bundle_copy) as m:
        assert m.path.name == picked
    # a bundle from before the record: the rule reads the graph, and picks the same
    monkeypatch.undo()
    del manifest["workload"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    reads = []
    monkeypatch.setattr(_choice, "workload", lambda path, real=_choice.workload: reads.append(path) or real(path))
    with load(bundle_copy) as m:
        assert m.path.name == picked and reads == [bundle_copy / "model.float32.tflite"]
