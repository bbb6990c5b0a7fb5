"""Footprint: the base install (`pip install edgeship`, no extras) runs load, predict and bench
without TensorFlow, in a fresh virtual environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "edgeship", "train", "compress", "export", "runtime"]


@pytest.mark.slow
def test_base_install_runs_without_tensorflow(default_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"  # a clean copy: pip's in-tree build must not write into the repo
    src.mkdir()
    for name in SOURCES:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(item, src / name)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for f in ("manifest.json", "eval.npz", "model.float32.tflite", "model.int8.tflite", "model.float32.onnx", "model.int8.onnx"):
        shutil.copy2(default_bundle / f, bundle / f)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(src)], capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]

    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        assert importlib.util.find_spec("tensorflow") is None, "TensorFlow must not be installed"
        assert importlib.util.find_spec("tf_keras") is None
        import numpy as np
        from edgeship.runtime import load, load_eval, benchmark
        bundle = {str(bundle)!r}
        x, y = load_eval(bundle)
        accs = {{}}
        for fmt in ("tflite", "onnx"):
            for prec in ("float32", "int8"):
                with load(bundle, format=fmt, precision=prec) as m:
                    p = m.predict(x)
                    accs[f"{{fmt}}/{{prec}}"] = float(np.mean(np.argmax(p, axis=1) == y))
                    assert m.predict_labels(x[:2])
        rows = benchmark(bundle, runs=20, min_seconds=0.0, warmup=2)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "onnx", "pydantic"))
        print(json.dumps({{"accuracy": accs, "p50_ms": {{r["file"]: r["latency_ms"]["p50"] for r in rows}}, "heavy": heavy}}))
        """
    )
    # cwd outside the repo: `python -c` puts the cwd first on sys.path, and the repo's
    # edgeship/ folder would shadow the installed package.
    run = subprocess.run([str(py), "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    import json

    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert min(out["accuracy"].values()) > 0.9
    assert len(out["p50_ms"]) == 4
    cli = subprocess.run([str(venv / "bin" / "edgeship"), "bench", str(bundle), "--runs", "10", "--min-seconds", "0"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "fastest within the accuracy budget" in cli.stdout
    assert (bundle / "device_profile.json").is_file()
