from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgeship.cli import main
from edgeship.runtime import load_eval


def test_predict_saves_and_prints_labels(default_bundle: Path, tmp_path: Path, capsys) -> None:
    x, _ = load_eval(default_bundle)
    inp = tmp_path / "x.npy"
    np.save(inp, x[:5])
    out = tmp_path / "y.npy"
    assert main(["predict", str(default_bundle / "model.int8.tflite"), str(inp), "--output", str(out)]) == 0
    assert np.load(out).shape == (5, 10)
    assert main(["predict", str(default_bundle), str(inp), "--labels"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 6  # "saved ..." from the first call + 5 labels


def test_bench_json_file_and_bundle(default_bundle: Path, capsys) -> None:
    assert main(["bench", str(default_bundle / "model.float32.onnx"), "--json", "--runs", "20", "--min-seconds", "0"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert set(one["latency_ms"]) >= {"p50", "p90", "p99", "mean", "min", "max"}
    assert one["runs"] >= 20 and one["init_ms"] > 0
    assert main(["bench", str(default_bundle), "--json", "--runs", "20", "--min-seconds", "0", "--no-record"]) == 0
    many = json.loads(capsys.readouterr().out)
    assert sorted(r["file"] for r in many) == sorted(
        ["model.float32.tflite", "model.int8.tflite", "model.float32.onnx", "model.int8.onnx"]
    )
    assert all(r["latency_ms"]["p50"] > 0 for r in many)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeship", *args], capture_output=True, text=True, timeout=300)


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line; engines may print their own INFO lines before it, never a traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgeship: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_input_gets_one_line_typed_error(tmp_path: Path) -> None:
    line = _error_line(_cli("build", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")))
    assert "RecipeError" in line and "missing.toml" in line

    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\narchitecture = 'x'\n")
    line = _error_line(_cli("build", str(bad), "--out", str(tmp_path / "o")))
    assert "RecipeError" in line and "model.architecture" in line
    assert not (tmp_path / "o").exists()

    line = _error_line(_cli("predict", str(tmp_path), str(bad)))
    assert "BundleError" in line and "without manifest.json" in line


def test_predict_wrong_shape_cli(default_bundle: Path, tmp_path: Path) -> None:
    inp = tmp_path / "x.npy"
    np.save(inp, np.zeros((8, 8), np.float32))
    line = _error_line(_cli("predict", str(default_bundle), str(inp)))
    assert "InputError" in line and "expects input float32 (N, 8, 8, 1)" in line and "Received: float32 (8, 8)" in line


def test_predict_empty_or_cut_off_npy_is_one_typed_line(default_bundle: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.npy"
    np.save(cut, np.zeros((4, 8, 8, 1), np.float32))
    cut.write_bytes(cut.read_bytes()[:100])  # the header survives, the data does not
    for path, reason in ((empty, "empty or cut off"), (cut, "")):
        proc = _cli("predict", str(default_bundle), str(path))
        assert "Traceback" not in proc.stderr, proc.stderr
        line = _error_line(proc)
        assert "InputError" in line and "Expected INPUT to be a .npy array file" in line and reason in line
