"""Parity of every export variant against the Keras model, on zoo architectures.

Real conversions (TFLite converter, tf2onnx, ORT quantization) of zoo models
trained for a few epochs on a synthetic task in the test; real LiteRT / ORT
inference. Also: corrupting a quantization scale must raise ParityError, and an
untrained classifier (near-equal scores, argmax flipped by int8 rounding) passes:
top-1 agreement counts only decisive samples.
"""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.core.errors import ParityError
from edgeship.core.metrics import SQNR_CAP_DB, sqnr_db
from edgeship.core.parity import Tolerance, classifier_outputs, compare, compare_pair, raise_for
from edgeship.export._metadata import embed_metadata, metadata_dict
from edgeship.export._parity import check_artifact, keras_outputs
from edgeship.recipe import OnnxPrecision, TflitePrecision

# arch -> (input shape, builder options); small inputs keep the conversions fast.
ARCHS: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "small_cnn": ((8, 8, 1), {"width": 8}),
    "ds_cnn": ((16, 8, 1), {"filters": 16}),
    "resnet8": ((16, 16, 3), {"filters": 8}),
}
TFLITE_VARIANTS = list(typing.get_args(TflitePrecision))
ONNX_VARIANTS = list(typing.get_args(OnnxPrecision))
CLASSES = 6


def _task(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy class templates: learnable in a few epochs, so the model is confident."""
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(CLASSES, *shape)).astype(np.float32)
    y = rng.integers(0, CLASSES, 480)
    x = templates[y] + 0.5 * rng.normal(size=(len(y), *shape)).astype(np.float32)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    """Each architecture, trained briefly; its eval and calibration samples."""
    from edgeship import train

    out = {}
    for arch, (shape, options) in ARCHS.items():
        train.set_seed(0)
        x, y = _task(shape)
        model = train.create_model(arch, shape, CLASSES, **options)
        train.compile_classifier(model, 3e-3)
        model.fit(x, y, epochs=4, batch_size=32, verbose=0)
        out[arch] = {"model": model, "x_eval": x[:96], "calibration": x[96:160], "onnx": {}}
    return out


def _convert(case: dict[str, Any], fmt: str, precision: str) -> bytes:
    from edgeship import export
    from edgeship.export.onnx import quantize_onnx_dynamic

    model, calibration = case["model"], case["calibration"]
    if fmt == "tflite":
        needs_cal = precision in ("int8", "int16x8")
        return export.to_tflite(model, precision, calibration if needs_cal else None)
    if "float32" not in case["onnx"]:
        case["onnx"]["float32"] = export.to_onnx(model)
    float_onnx = case["onnx"]["float32"]
    if precision == "float32":
        return float_onnx
    if precision == "int8":
        return export.quantize_onnx(float_onnx, calibration)
    return quantize_onnx_dynamic(float_onnx)


def _write(tmp: Path, case: dict[str, Any], fmt: str, precision: str) -> Path:
    data = embed_metadata(_convert(case, fmt, precision), fmt, metadata_dict(None, None, "0" * 64))
    path = tmp / f"model.{precision}.{fmt}"
    path.write_bytes(data)
    return path


VARIANTS = [("tflite", p) for p in TFLITE_VARIANTS] + [("onnx", p) for p in ONNX_VARIANTS]


def test_every_registered_variant_has_a_parity_case() -> None:
    # Guard: a precision added to the recipe without a parity case fails here.
    assert {p for f, p in VARIANTS if f == "tflite"} == set(typing.get_args(TflitePrecision))
    assert {p for f, p in VARIANTS if f == "onnx"} == set(typing.get_args(OnnxPrecision))
    assert len(ARCHS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHS))
def test_parity_every_variant(arch: str, trained: dict[str, Any], tmp_path: Path) -> None:
    case = trained[arch]
    model, x = case["model"], case["x_eval"]
    reference = keras_outputs(model, x)
    assert list(reference) == model.output_names
    tol = Tolerance()
    int8_outs: dict[str, dict[str, np.ndarray]] = {}
    summary = {}
    for fmt, precision in VARIANTS:
        path = _write(tmp_path, case, fmt, precision)
        result, outs = check_artifact(path, fmt, precision, reference, x, tol)
        assert result.passed, result.failures
        name = model.output_names[0]
        entry = result.outputs[name]
        if precision.startswith("float"):
            assert result.check == "float" and entry.max_abs_diff <= tol.atol_for(precision)
        else:
            assert result.check == "quantized"
            assert entry.sqnr_db >= tol.min_sqnr_db  # a number: an exact match is SQNR_CAP_DB, never "inf"
            assert entry.top1_agreement >= tol.min_top1
        if precision == "int8":
            int8_outs[fmt] = outs
        summary[f"{fmt}/{precision}"] = entry
    cross = compare_pair(int8_outs["tflite"], int8_outs["onnx"], label="tflite int8 vs onnx int8", min_top1=tol.min_top1)
    assert cross.passed, cross.failures
    print(
        arch,
        {
            k: {m: v for m, v in e.to_json().items() if m in ("max_abs_diff", "sqnr_db", "top1_agreement")}
            for k, e in summary.items()
        },
    )


@pytest.mark.slow
def test_untrained_classifier_passes_int8_parity(tmp_path: Path) -> None:
    # An untrained classifier's softmax is near-uniform on digits: int8 rounding flips most argmaxes
    # (plain top-1 agreement ~0.6) at ~38 dB SQNR. Those samples are not decisive, so parity passes.
    from edgeship import train
    from edgeship.train._datasets import load_dataset

    data = load_dataset("digits")
    train.set_seed(0)
    model = train.create_model("small_cnn", (8, 8, 1), 10, width=8)  # never fitted
    x = data.x_test
    case = {"model": model, "x_eval": x, "calibration": data.x_val[:100], "onnx": {}}
    reference = keras_outputs(model, x)
    classifier = classifier_outputs(reference, data.labels)
    assert classifier == {"probs"}
    tol = Tolerance()
    results, int8_outs = [], {}
    for fmt in ("tflite", "onnx"):
        result, outs = check_artifact(_write(tmp_path, case, fmt, "int8"), fmt, "int8", reference, x, tol, classifier)
        flips = np.argmax(reference["probs"], 1) != np.argmax(outs["probs"], 1)
        assert flips.mean() > 1 - tol.min_top1  # the old all-samples rule fails here
        assert result.passed, result.failures
        entry = result.outputs["probs"]
        assert entry.sqnr_db >= tol.min_sqnr_db
        rule = entry.top1_rule
        assert rule.samples == len(x) and rule.margin_threshold > 0
        assert rule.decisive_samples <= len(x) // 20  # few or none: the scores are near-equal
        assert entry.top1_agreement is None or entry.top1_agreement >= tol.min_top1
        json.dumps(result.to_json(), allow_nan=False)
        results.append(result)
        int8_outs[fmt] = outs
    cross = compare_pair(
        int8_outs["tflite"],
        int8_outs["onnx"],
        label="tflite int8 vs onnx int8",
        min_top1=tol.min_top1,
        classifier=classifier,
    )
    assert cross.passed, cross.failures
    assert cross.outputs["probs"].top1_rule.decisive_samples <= len(x) // 20
    raise_for([*results, cross])  # no ParityError
    print({r.outputs["probs"].top1_rule.decisive_samples for r in [*results, cross]}, len(x))


# -- failures are collected, typed and specific ----------------------------------
def test_compare_checks_names_then_shapes_then_values() -> None:
    ref = {"probs": np.eye(4, dtype=np.float32), "aux": np.ones((4, 2), np.float32)}
    bad_shape = {"probs": np.eye(4, dtype=np.float32)[:, :3], "aux": np.ones((4, 2), np.float32) + 0.5}
    r = compare(ref, bad_shape, quantized=False, atol=1e-4, min_top1=0.9, min_sqnr_db=10)
    assert not r.passed
    assert any("'probs' has shape (4, 3), expected (4, 4)" in f for f in r.failures)
    assert any("'aux' max abs diff 0.5 > atol" in f for f in r.failures)  # both collected
    renamed = {"logits": np.eye(4, dtype=np.float32), "aux": ref["aux"]}
    r = compare(ref, renamed, quantized=False, atol=1e-4, min_top1=0.9, min_sqnr_db=10)
    assert "output names differ" in r.failures[0]
    with pytest.raises(ParityError, match=r"2 parity failure\(s\).*'probs'"):
        raise_for([compare(ref, bad_shape, quantized=False, atol=1e-4, min_top1=0.9, min_sqnr_db=10)])


def test_top1_only_for_class_score_outputs() -> None:
    # A reconstruction output (autoencoder) is 2-D too; only outputs named as classifiers get top-1.
    rng = np.random.default_rng(0)
    x = {"recon": rng.normal(size=(32, 16)).astype(np.float32)}
    y = {"recon": x["recon"] + 0.01 * rng.normal(size=(32, 16)).astype(np.float32)}
    r = compare(x, y, quantized=True, atol=0, min_top1=1.0, min_sqnr_db=10, classifier=set())
    assert r.passed and r.outputs["recon"].top1_agreement is None
    assert r.outputs["recon"].sqnr_db > 30
    r = compare(x, {"recon": x["recon"] * 0.2}, quantized=True, atol=0, min_top1=0.0, min_sqnr_db=10, classifier=set())
    assert not r.passed and "SQNR 1.94 dB < 10" in r.failures[0]  # 20*log10(1/0.8)


def _scores(confident_kept: int, confident_flipped: int, low_margin_flipped: int) -> tuple[np.ndarray, np.ndarray]:
    """4-class scores, reference and candidate. Confident: margin 0.8; low margin: 0.01.

    Kept samples move by 0.01 without changing the argmax; flipped ones swap classes 0 and 1
    (error 0.8 for a confident sample, 0.01 for a low-margin one).
    """
    confident, low = np.array([0.85, 0.05, 0.05, 0.05]), np.array([0.26, 0.25, 0.25, 0.24])
    swap = [1, 0, 2, 3]
    ref = [confident] * (confident_kept + confident_flipped) + [low] * low_margin_flipped
    cand = [confident + [-0.01, 0.01, 0, 0]] * confident_kept + [confident[swap]] * confident_flipped
    cand += [low[swap]] * low_margin_flipped
    return np.array(ref), np.array(cand)


def test_top1_counts_confident_flips_only() -> None:
    # 100 samples: 20 confident, of which 5 flipped (the 5% largest errors), and 80 low-margin, all flipped.
    x, y = _scores(15, 5, 80)
    r = compare({"probs": x}, {"probs": y}, quantized=True, atol=0, min_top1=0.8, min_sqnr_db=0)
    e95 = 0.01 + 0.05 * (0.8 - 0.01)  # np.percentile interpolates between the 95th and 96th smallest error
    rule = r.outputs["probs"].top1_rule
    assert rule.margin_threshold == pytest.approx(2 * e95)
    assert (rule.decisive_samples, rule.samples) == (20, 100)  # the confident ones only
    assert r.outputs["probs"].top1_agreement == pytest.approx(15 / 20)
    assert not r.passed and "'probs' top-1 agreement 0.7500 on 20/100 decisive samples < 0.8" in r.failures[0]
    cross = compare_pair({"probs": x}, {"probs": y}, label="a vs b", min_top1=0.8)
    assert list(cross.failures) == [
        "a vs b: output 'probs' top-1 agreement 0.7500 on 20/100 decisive samples < 0.8 (max abs diff 0.8)"
    ]
    json.dumps([r.to_json(), cross.to_json()], allow_nan=False)


def test_low_margin_flips_are_not_counted() -> None:
    # 82 of 100 argmaxes flip (the old rule: agreement 0.18), but only 2 of the 20 decisive samples do.
    x, y = _scores(18, 2, 80)
    assert np.mean(np.argmax(x, 1) == np.argmax(y, 1)) == pytest.approx(0.18)
    r = compare({"probs": x}, {"probs": y}, quantized=True, atol=0, min_top1=0.8, min_sqnr_db=10)
    assert r.passed, r.failures
    entry = r.outputs["probs"]
    assert entry.top1_rule.margin_threshold == pytest.approx(0.02)  # 2 x the 95th-percentile error 0.01
    assert entry.top1_rule.decisive_samples == 20 and entry.top1_agreement == pytest.approx(0.9)


def test_no_decisive_sample_leaves_top1_unjudged() -> None:
    # All low-margin and all flipped: top-1 agreement is not judged, the SQNR limit decides.
    x, y = _scores(0, 0, 100)
    r = compare({"probs": x}, {"probs": y}, quantized=True, atol=0, min_top1=1.0, min_sqnr_db=10)
    entry = r.outputs["probs"]
    assert r.passed, r.failures
    assert entry.top1_agreement is None and entry.top1_rule.decisive_samples == 0
    assert entry.sqnr_db > 30
    cross = compare_pair({"probs": x}, {"probs": y}, label="a vs b", min_top1=1.0)
    assert cross.passed and cross.outputs["probs"].top1_agreement is None
    # A broken file is still caught by SQNR; NaN / Inf outputs keep the record strict JSON.
    r = compare({"probs": x}, {"probs": x * 0.2}, quantized=True, atol=0, min_top1=1.0, min_sqnr_db=10)
    assert r.outputs["probs"].top1_agreement is None
    assert list(r.failures) == ["artifact: output 'probs' SQNR 1.94 dB < 10 dB (max abs diff 0.208)"]
    for bad in (np.nan, np.inf):
        r = compare(
            {"probs": x},
            {"probs": np.where(np.eye(4)[1] > 0, bad, y)},
            quantized=True,
            atol=0,
            min_top1=1.0,
            min_sqnr_db=10,
        )
        assert not r.passed and r.outputs["probs"].top1_agreement is None
        assert any("SQNR" in f for f in r.failures) and not any("top-1" in f for f in r.failures)
        json.dumps(r.to_json(), allow_nan=False)


def test_sqnr_definition() -> None:
    x = np.array([3.0, 4.0])
    assert sqnr_db(x, x * 1.1) == pytest.approx(20.0)  # ||x|| / ||0.1 x|| = 10 -> 20 dB
    assert sqnr_db(x, x) == SQNR_CAP_DB  # infinity is stored one way: the cap, a JSON number
    assert sqnr_db(x, x + 1e-30) == SQNR_CAP_DB
    assert math.isnan(sqnr_db(np.zeros(2), x))  # no signal: undefined, stored as null
    assert math.isnan(sqnr_db(x, np.array([np.nan, 1.0])))


def test_sqnr_one_implementation_and_one_storage() -> None:
    """Parity and the per-layer tables share one sqnr_db; undefined values are stored as null, never "inf"."""
    from edgeship.core.metrics import sqnr_db as shared
    from edgeship.export._sqnr import sqnr_db as compress_sqnr

    assert compress_sqnr is shared and sqnr_db is shared
    x = {"probs": np.array([[0.9, 0.1], [0.2, 0.8]])}
    same = compare(x, x, quantized=True, atol=0, min_top1=0.8, min_sqnr_db=10)
    assert same.passed and same.outputs["probs"].sqnr_db == SQNR_CAP_DB
    zero = compare({"probs": np.zeros((2, 2))}, x, quantized=True, atol=0, min_top1=0.8, min_sqnr_db=10)
    assert not zero.passed and zero.outputs["probs"].sqnr_db is None
    json.dumps([same.to_json(), zero.to_json()], allow_nan=False)


def _corrupt_tflite_weight_scale(path: Path, factor: float) -> None:
    """Scale the per-channel scales of the first conv's weights: the kernel's multiplier changes."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(path.read_bytes()))
    sub = model.subgraphs[0]
    conv = next(op for op in sub.operators if fb.opcode_to_name(model, op.opcodeIndex) == "CONV_2D")
    q = sub.tensors[conv.inputs[1]].quantization
    q.scale = [s * factor for s in q.scale]
    path.write_bytes(bytes(fb.convert_object_to_bytearray(model)))


def _corrupt_onnx_dequant_scale(path: Path, factor: float) -> None:
    """Scale the initializer of the first weight DequantizeLinear's scale."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    node = next(
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 4
    )
    scale = inits[node.input[1]]
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(factor), scale.name))
    path.write_bytes(model.SerializeToString())


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_corrupted_quantization_scale_raises_parity_error(fmt: str, trained: dict[str, Any], tmp_path: Path) -> None:
    case = trained["small_cnn"]
    model, x = case["model"], case["x_eval"]
    reference = keras_outputs(model, x)
    path = _write(tmp_path, case, fmt, "int8")
    good, _ = check_artifact(path, fmt, "int8", reference, x)
    assert good.passed, good.failures
    (_corrupt_tflite_weight_scale if fmt == "tflite" else _corrupt_onnx_dequant_scale)(path, 0.02)
    bad, _ = check_artifact(path, fmt, "int8", reference, x)
    assert not bad.passed
    diff = bad.outputs["probs"].max_abs_diff
    assert diff > good.outputs["probs"].max_abs_diff
    with pytest.raises(ParityError) as info:
        raise_for([bad])
    message = str(info.value)
    assert "'probs'" in message and f"max abs diff {diff:.4g}" in message


def test_top1_accuracy_one_helper() -> None:
    """The runtime (check, bench), the pytest plugin and the reports count top-1 the same way."""
    from edgeship.core.metrics import top1_accuracy

    assert top1_accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 1, 1])) == pytest.approx(2 / 3)
    assert top1_accuracy(np.zeros((2, 1, 3)) + [0.0, 1.0, 0.0], np.array([1, 0])) == 0.5  # scores flattened per sample
