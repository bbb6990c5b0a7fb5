"""``baseline.json`` and the ``edgeship check`` gate on the real default bundle.

Timings are never asserted here: latency rows are either made irrelevant with a
wide tolerance, or the baseline is edited so far (4x) that noise cannot matter.
The real "1.5x slower model" and "20 runs under a busy core" figures come from
benchmarks/check_stability.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeship.cli import main
from edgeship.platforms import LATENCY_UNDER_EMULATION, emulated
from edgeship.runtime import load, load_eval, sha256_file
from edgeship.runtime._check import (
    BASELINE_SCHEMA,
    DEFAULT_TOLERANCES,
    check_bundle,
    compare,
    measure_latency_ratio,
    read_baseline,
    resolve_tolerances,
)
from edgeship.runtime._errors import BundleError, InputError
from edgeship.runtime._reference import REFERENCE_SHA256, reference_path

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root

# Latency not under test: never flakes. Under emulation one timing round (qemu's timings mean nothing there).
WIDE = ["--latency-tol", "100", "--rounds", "1" if emulated() else "3"]


def _edit_baseline(bundle: Path, fn) -> None:
    path = bundle / "baseline.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_shipped_reference_models_match_their_pinned_sha256() -> None:
    for fmt, sha in REFERENCE_SHA256.items():
        assert sha256_file(reference_path(fmt)) == sha
        with load(reference_path(fmt), threads=1) as ref:
            assert ref.inputs[0].shape[1:] == (16, 16, 1)


def test_build_writes_baseline_for_every_artifact(default_bundle: Path) -> None:
    manifest = json.loads((default_bundle / "manifest.json").read_text())
    base = read_baseline(default_bundle / "baseline.json")
    assert base["schema"] == BASELINE_SCHEMA
    assert base["timing"]["threads"] == 1 and base["tolerances"] == DEFAULT_TOLERANCES
    assert set(base["reference"]) == {"tflite", "onnx"}
    assert set(base["artifacts"]) == {a["file"] for a in manifest["artifacts"]}
    for a in manifest["artifacts"]:
        b = base["artifacts"][a["file"]]
        assert b["bytes"] == a["bytes"] and b["sha256"] == a["sha256"]
        assert b["accuracy"] == pytest.approx(a["metrics"]["accuracy"])  # same eval.npz, same runtime
        assert b["latency_ratio"] > 0 and len(b["latency_ratio_rounds"]) == base["timing"]["rounds"]
        assert 0 < b["latency_ms"]["p50"] <= b["latency_ms"]["p99"]
        if (a.get("estimates") or {}).get("ram_arena_bytes") is not None:
            assert b["ram_bytes"] == a["estimates"]["ram_arena_bytes"]


def test_check_unchanged_bundle_passes_and_prints_table(
    default_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(default_bundle), *WIDE]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "FAIL" not in out
    for metric in ("accuracy", "latency", "size"):
        assert metric in out
    assert main(["check", str(default_bundle), *WIDE, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True
    assert {r["metric"] for r in data["rows"]} >= {"accuracy", "latency", "size"}
    assert all(r["status"] == "pass" for r in data["rows"])


@pytest.mark.skipif(emulated(), reason=LATENCY_UNDER_EMULATION)
def test_latency_gate_fails_when_the_baseline_was_4x_faster(
    bundle_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def faster(data):
        for a in data["artifacts"].values():
            a["latency_ratio"] /= 4

    _edit_baseline(bundle_copy, faster)
    assert main(["check", str(bundle_copy), "--rounds", "3", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    failed = {(r["artifact"], r["metric"]) for r in data["rows"] if r["status"] == "fail"}
    assert failed == {(name, "latency") for name in data["measured"]["artifacts"]}


def test_size_gate_and_missing_artifact(bundle_copy: Path) -> None:
    def shrink(data):
        data["artifacts"]["model.int8.tflite"]["bytes"] //= 2
        data["artifacts"]["model.gone.tflite"] = {"format": "tflite", "accuracy": 0.9, "bytes": 10}

    _edit_baseline(bundle_copy, shrink)
    result = check_bundle(bundle_copy, latency_tol=100, rounds=3)
    failed = {(r.artifact, r.metric) for r in result.failures}
    assert failed == {("model.int8.tflite", "size"), ("model.gone.tflite", "artifact")}


def test_tolerances_flags_override_baseline_and_defaults(bundle_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def strict(data):
        data["tolerances"]["size"] = 0.0
        data["artifacts"]["model.float32.onnx"]["bytes"] -= 1  # one byte larger than its baseline now

    _edit_baseline(bundle_copy, strict)
    assert main(["check", str(bundle_copy), *WIDE]) == 1  # stored size tolerance 0 applies
    capsys.readouterr()
    assert main(["check", str(bundle_copy), *WIDE, "--size-tol", "0.01"]) == 0  # the flag wins
    assert resolve_tolerances({"tolerances": {"accuracy": 0.05}}, {"latency": 0.5}) == {
        "accuracy": 0.05,
        "latency": 0.5,
        "size": DEFAULT_TOLERANCES["size"],
    }
    with pytest.raises(InputError, match="accuracy tolerance >= 0"):
        resolve_tolerances({}, {"accuracy": -0.1})


def test_accuracy_row_compares_absolute_points() -> None:
    base = {"artifacts": {"m.tflite": {"accuracy": 0.98, "latency_ratio": 1.0, "bytes": 100}}}
    now = {"artifacts": {"m.tflite": {"accuracy": 0.969, "latency_ratio": 1.0, "bytes": 100}}}
    rows = {r.metric: r for r in compare(base, now, dict(DEFAULT_TOLERANCES))}
    assert not rows["accuracy"].passed and rows["accuracy"].limit == pytest.approx(0.97)
    now["artifacts"]["m.tflite"]["accuracy"] = 0.97
    rows = {r.metric: r for r in compare(base, now, dict(DEFAULT_TOLERANCES))}
    assert rows["accuracy"].passed and rows["latency"].passed and rows["size"].passed


def test_bad_input_exits_2(bundle_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert main(["check", str(bundle_copy), "--baseline", str(tmp_path / "missing.json")]) == 2
    assert "check BUNDLE --update" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["check", str(bundle_copy), "--baseline", str(tmp_path / "bad.json")]) == 2
    (tmp_path / "other.json").write_text(json.dumps({"schema": "x", "artifacts": {}}))
    assert main(["check", str(bundle_copy), "--baseline", str(tmp_path / "other.json")]) == 2
    assert main(["check", str(bundle_copy), "--accuracy-tol", "-1"]) == 2
    capsys.readouterr()
    assert main(["check", str(bundle_copy), "--latency-tol", "abc"]) == 2  # argparse: not a number
    assert "UsageError" in capsys.readouterr().err

    def other_reference(data):
        data["reference"]["tflite"]["sha256"] = "0" * 64

    _edit_baseline(bundle_copy, other_reference)
    capsys.readouterr()
    assert main(["check", str(bundle_copy), *WIDE]) == 2
    assert "latency reference" in capsys.readouterr().err
    # a changed artifact whose manifest was not updated is an integrity error, not a regression
    model = bundle_copy / "model.int8.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    assert main(["check", str(bundle_copy), *WIDE]) == 2
    assert "IntegrityError" in capsys.readouterr().err


def test_update_writes_a_baseline_that_then_passes(
    bundle_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bundle_copy / "baseline.json").unlink()
    assert main(["check", str(bundle_copy)]) == 2
    out = tmp_path / "ci-baseline.json"
    assert (
        main(["check", str(bundle_copy), "--baseline", str(out), "--update", "--rounds", "3", "--latency-tol", "0.4"])
        == 0
    )
    assert "baseline written" in capsys.readouterr().out
    data = read_baseline(out)
    assert data["tolerances"]["latency"] == 0.4 and data["timing"]["rounds"] == 3
    assert main(["check", str(bundle_copy), "--baseline", str(out), "--latency-tol", "100"]) == 0
    with pytest.raises(BundleError):
        check_bundle(bundle_copy)  # still no baseline inside the bundle


def test_latency_ratio_measures_both_sides_interleaved(default_bundle: Path) -> None:
    x, _ = load_eval(default_bundle)
    with load(default_bundle, format="onnx", precision="float32", threads=1) as model:
        r = measure_latency_ratio(model, x[:1], rounds=4, block_seconds=0.005)
    assert len(r["ratio_rounds"]) == 4
    assert min(r["ratio_rounds"]) <= r["ratio"] <= max(r["ratio_rounds"])
    assert r["calls"] >= 4 * 5 and r["reference_ms"]["p50"] > 0
    with pytest.raises(InputError, match="rounds >= 1"):
        measure_latency_ratio(model, x[:1], rounds=0)


def test_check_runs_on_the_runtime_alone(default_bundle: Path) -> None:
    code = (
        "import sys\n"
        "from edgeship.runtime._check import check_bundle\n"
        f"r = check_bundle({str(default_bundle)!r}, latency_tol=100, rounds=1)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tf_keras', 'onnx', 'tf2onnx', 'matplotlib'})\n"
        "print(r.passed, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip().splitlines()[-1] == "True []"
