"""The eight MLPerf Tiny reference .tflite files (mlcommons/tiny) as third-party inputs: inspect, predict, bench.

The int8 files and the float32 KWS file are committed in tests/data/mlperf_tiny/ (with
their Apache-2.0 LICENSE), so these run from a clean clone; the three larger float32 files
are read from $EDGESHIP_MLPERF_DIR or ../shared/mlperf_tiny, and skipped (saying so) where
neither exists. No TensorFlow: the runtime and the raw LiteRT interpreter only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship._mlperf import REFERENCE_FILES, ReferenceFile, find_reference
from edgeship.runtime import benchmark, load
from edgeship.runtime._compare import compare_models
from edgeship.runtime._inspect import format_report, inspect_file

# What each task's files take and give (batch axis left out).
IO = {
    "kws": ((49, 10, 1), (12,)),
    "vww": ((96, 96, 3), (2,)),
    "ic": ((32, 32, 3), (10,)),
    "ad": ((640,), (640,)),
}
# The operators each architecture needs, in both precisions.
CORE_OPS = {
    "kws": {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"},
    "vww": {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "SOFTMAX"},
    "ic": {"CONV_2D", "ADD", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"},
    "ad": {"FULLY_CONNECTED"},
}
IDS = [r.file for r in REFERENCE_FILES]


def _path(ref: ReferenceFile) -> Path:
    p = find_reference(ref.file)
    if p is None:
        if ref.precision == "int8" or ref.file == "kws_ref_model_float32.tflite":
            pytest.fail(f"{ref.file} is committed in tests/data/mlperf_tiny/ and must be found; it is missing")
        pytest.skip(f"{ref.file} ({ref.bytes:,} bytes) is not committed; set EDGESHIP_MLPERF_DIR to the folder "
                    "holding the MLPerf Tiny reference files")
    return p


def test_committed_copies_are_the_published_files() -> None:
    here = Path(__file__).parent / "data" / "mlperf_tiny"
    assert (here / "LICENSE.md").read_text().lstrip().startswith("Apache License")
    committed = sorted(p.name for p in here.glob("*.tflite"))
    assert committed == sorted(r.file for r in REFERENCE_FILES if r.precision == "int8" or r.task == "kws")
    for name in committed:
        size = next(r.bytes for r in REFERENCE_FILES if r.file == name)
        assert (here / name).stat().st_size == size


@pytest.mark.parametrize("ref", REFERENCE_FILES, ids=IDS)
def test_inspect_describes_io_quantization_operators_arena(ref: ReferenceFile) -> None:
    r = inspect_file(_path(ref))
    shape_in, shape_out = IO[ref.task]
    assert r["format"] == "tflite" and r["bytes"] == ref.bytes
    assert len(r["inputs"]) == 1 and len(r["outputs"]) == 1
    (inp,), (out,) = r["inputs"], r["outputs"]
    assert tuple(inp["shape"][1:]) == shape_in and tuple(out["shape"][1:]) == shape_out
    if ref.precision == "int8":
        assert inp["dtype"] == out["dtype"] == "int8"
        assert inp["quantization"]["scale"] > 0 and -128 <= inp["quantization"]["zero_point"] <= 127
        assert out["quantization"]["scale"] > 0
        assert r["int8_op_share"] == 1.0
    else:
        assert inp["dtype"] == out["dtype"] == "float32" and inp["quantization"] is None
        assert r["int8_ops"] == 0
    assert CORE_OPS[ref.task] <= set(r["operators"])
    assert r["operator_total"] == sum(r["operators"].values()) >= len(CORE_OPS[ref.task])
    assert r["estimates"]["ram_arena_bytes"] > 0 and r["weights_bytes"] > 0
    text = format_report(r)
    assert f"{ref.bytes:,} bytes" in text and "activation arena" in text
    assert all(op in text for op in CORE_OPS[ref.task])


def _raw_litert(path: Path, q: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    (i,), (o,) = interp.get_input_details(), interp.get_output_details()
    outs = []
    for row in q:  # the reference files are batch-1
        interp.set_tensor(i["index"], row[None])
        interp.invoke()
        outs.append(interp.get_tensor(o["index"]).copy())
    return np.concatenate(outs)


@pytest.mark.parametrize("ref", REFERENCE_FILES, ids=IDS)
def test_predict_equals_raw_litert_bit_for_bit(ref: ReferenceFile, tmp_path: Path) -> None:
    path = _path(ref)
    rng = np.random.default_rng(0)
    with load(path, threads=1) as model:
        (spec,), (ospec,) = model.inputs, model.outputs
        shape = (3, *spec.shape[1:])
        if ref.precision == "int8":
            # Inputs that sit exactly on the int8 grid: edgeship's quantizer must give back these codes.
            q = rng.integers(-128, 128, size=shape).astype(np.int8)
            x = (q.astype(np.float32) - np.float32(spec.zero_point)) * np.float32(spec.scale)
        else:
            x = rng.random(shape, dtype=np.float32)
            q = x
        y = model.predict(x)
    raw = _raw_litert(path, q)
    if ref.precision == "int8":
        assert raw.dtype == np.int8
        want = (raw.astype(np.float32) - np.float32(ospec.zero_point)) * np.float32(ospec.scale)  # TFLite's dequantize
    else:
        want = raw
    assert y.dtype == np.float32 and y.shape == want.shape
    assert np.array_equal(y.view(np.uint32), want.view(np.uint32))  # bit for bit
    # the same through the CLI: `edgeship predict FILE x.npy --output y.npy`
    from edgeship.cli import main

    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(path), str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--threads", "1"]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy").view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("ref", REFERENCE_FILES, ids=IDS)
def test_bench_runs_on_each(ref: ReferenceFile, capsys: pytest.CaptureFixture[str]) -> None:
    path = _path(ref)
    r = benchmark(path, threads=1, runs=10, warmup=2, min_seconds=0.0)
    assert isinstance(r, dict) and r["runs"] >= 10 and r["file"] == ref.file
    assert 0 < r["latency_ms"]["min"] <= r["latency_ms"]["p50"] <= r["latency_ms"]["max"]
    assert r["precision"] == ref.precision and r["format"] == "tflite"
    from edgeship.cli import main

    assert main(["bench", str(path), "--json", "--runs", "5", "--warmup", "1", "--min-seconds", "0",
                 "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["file"] == ref.file and out["runs"] >= 5


# -- the comparison function ------------------------------------------------------
def _ref(task: str, precision: str) -> Path:
    return _path(next(r for r in REFERENCE_FILES if r.task == task and r.precision == precision))


def test_compare_models_same_file_has_no_differences() -> None:
    p = _ref("kws", "int8")
    c = compare_models(p, p)
    assert c["same_io"] and c["same_operators"] and c["differences"] == []
    assert c["io"]["inputs"]["ours"] == c["io"]["inputs"]["reference"]


def test_compare_models_reports_io_dtype_and_quantization_differences() -> None:
    c = compare_models(_ref("kws", "float32"), _ref("kws", "int8"))
    assert not c["same_io"] and c["same_operators"]  # same graph ops, other precision
    assert "inputs[0] dtype: ours float32 vs reference int8" in c["differences"]
    assert "inputs[0] quantized: ours False vs reference True" in c["differences"]
    assert "outputs[0] dtype: ours float32 vs reference int8" in c["differences"]
    assert c["io"]["inputs"]["reference"][0]["quantization"]["scale"] > 0


def test_compare_models_reports_operator_and_shape_differences() -> None:
    c = compare_models(_ref("ad", "int8"), _ref("kws", "int8"))
    assert not c["same_io"] and not c["same_operators"]
    assert c["operators"]["only_reference"]["CONV_2D"] == 5 and "FULLY_CONNECTED" not in c["operators"]["only_ours"]
    assert c["operators"]["counts_differ"]["FULLY_CONNECTED"] == {"ours": 10, "reference": 1}
    assert "inputs[0] shape: ours [-1, 640] vs reference [-1, 49, 10, 1]" in c["differences"]
    assert any(d.startswith("operators only in the reference: ") and "CONV_2D x5" in d for d in c["differences"])


def test_compare_models_reports_weight_dtypes() -> None:
    """The 'float32' KWS reference is dynamic-range: int8 conv kernels, float32 activations and I/O."""
    c = compare_models(_ref("kws", "float32"), _ref("kws", "int8"))
    assert c["weight_dtypes"]["ours"]["CONV_2D"] == ["int8"]
    assert c["weight_dtypes"]["ours"]["DEPTHWISE_CONV_2D"] == ["float32"]
    assert "DEPTHWISE_CONV_2D weights: ours float32 vs reference int8" in c["differences"]
    assert not any(d.startswith("CONV_2D weights") for d in c["differences"])  # int8 kernels in both
