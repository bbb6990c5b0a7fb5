"""Every quantization variant: exported with real TF / ORT, loaded by the runtime, evaluated on digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.export import ONNX_PRECISIONS, TFLITE_PRECISIONS, OnnxQuantConfig


@pytest.fixture(scope="module")
def tiny() -> dict[str, Any]:
    """A small conv net (no BatchNorm, so 4 epochs suffice) trained on digits."""
    from edgeship import train
    from edgeship.core.tf import tf_modules
    from edgeship.export import to_onnx

    _, keras = tf_modules()
    ds = train.load_dataset("digits")
    L = keras.layers
    model = keras.Sequential(
        [
            L.Input(ds.input_shape, name="input"),
            L.Conv2D(8, 3, activation="relu", name="conv"),
            L.Flatten(name="flatten"),
            L.Dense(10, activation="softmax", name="probs"),
        ]
    )
    train.fit(model, ds.training_data, epochs=4, verbose=0, seed=0)
    return {
        "model": model,
        "ds": ds,
        "float_acc": train.accuracy(model, ds.x_test, ds.y_test),
        "float_onnx": to_onnx(model),
        "cal": ds.x_train[:128],
    }


def _run(data: bytes, fmt: str, tmp_path: Path, tiny: dict[str, Any]) -> tuple[float, Any]:
    from edgeship.runtime._load import load_file

    path = tmp_path / f"m.{fmt}"
    path.write_bytes(data)
    ds = tiny["ds"]
    model = load_file(path, fmt)
    probs = model.predict(ds.x_test)
    acc = float(np.mean(np.argmax(probs, -1) == ds.y_test))
    return acc, model


@pytest.mark.parametrize("precision", TFLITE_PRECISIONS)
def test_every_tflite_variant_loads_and_keeps_accuracy(precision: str, tiny: dict[str, Any], tmp_path: Path) -> None:
    from edgeship.export import to_tflite

    data = to_tflite(tiny["model"], precision, tiny["cal"])
    acc, model = _run(data, "tflite", tmp_path, tiny)
    with model:
        want_in = {"int8": np.int8, "int16x8": np.int16}.get(precision, np.float32)
        assert model.inputs[0].dtype == want_in
        assert model.inputs[0].quantized == (precision in ("int8", "int16x8"))
    assert acc >= tiny["float_acc"] - 0.03, (precision, acc, tiny["float_acc"])
    if precision != "float32":
        assert len(data) < len(to_tflite(tiny["model"], "float32")) * 0.75


@pytest.mark.parametrize("precision", ONNX_PRECISIONS)
def test_every_onnx_variant_loads_and_keeps_accuracy(precision: str, tiny: dict[str, Any], tmp_path: Path) -> None:
    from edgeship.export import quantize_onnx, quantize_onnx_dynamic

    f = tiny["float_onnx"]
    data = {"float32": lambda: f, "int8": lambda: quantize_onnx(f, tiny["cal"]), "dynamic_int8": lambda: quantize_onnx_dynamic(f)}[precision]()
    acc, model = _run(data, "onnx", tmp_path, tiny)
    model.close()
    assert acc >= tiny["float_acc"] - 0.03, (precision, acc)
    if precision != "float32":
        assert len(data) < len(f)  # weights stored as 8-bit (graph overhead dominates a model this small)


def test_tflite_uint8_io_and_per_tensor(tiny: dict[str, Any], tmp_path: Path) -> None:
    from edgeship.export import to_tflite

    u8 = to_tflite(tiny["model"], "int8", tiny["cal"], io_type="uint8")
    acc, model = _run(u8, "tflite", tmp_path, tiny)
    with model:
        assert model.inputs[0].dtype == np.uint8 and model.outputs[0].dtype == np.uint8
    assert acc >= tiny["float_acc"] - 0.03
    per_tensor = to_tflite(tiny["model"], "int8", tiny["cal"], per_channel=False)
    assert per_tensor != to_tflite(tiny["model"], "int8", tiny["cal"])
    assert _run(per_tensor, "tflite", tmp_path, tiny)[0] >= tiny["float_acc"] - 0.05


def test_tflite_denylisted_layer_runs_in_float(tiny: dict[str, Any], tmp_path: Path) -> None:
    from edgeship.export import tflite_sqnr, to_tflite

    sqnr = tflite_sqnr(tiny["model"], tiny["cal"], samples=8)
    assert sqnr and all(np.isfinite(v) for v in sqnr.values())
    conv = next(n for n in sqnr if "conv" in n)
    data = to_tflite(tiny["model"], "int8", tiny["cal"], float_layers=[conv])
    acc, model = _run(data, "tflite", tmp_path, tiny)
    with model:
        assert model.inputs[0].dtype == np.float32  # selective quantization keeps float I/O
    assert acc >= tiny["float_acc"] - 0.03
    assert data != to_tflite(tiny["model"], "int8", tiny["cal"])


@pytest.mark.parametrize(("preset", "calibration"), [("x86", "minmax"), ("arm64", "entropy"), ("x86", "percentile")])
def test_onnx_presets_and_calibration_methods(preset: str, calibration: str, tiny: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    from edgeship.export import quantize_onnx

    cfg = OnnxQuantConfig.preset(preset, calibration=calibration)
    data = quantize_onnx(tiny["float_onnx"], tiny["cal"], cfg)
    acc, model = _run(data, "onnx", tmp_path, tiny)
    model.close()
    assert acc >= tiny["float_acc"] - 0.03, (preset, calibration, acc)
    zp_types = {init.data_type for init in onnx.load_from_string(data).graph.initializer if init.name.endswith("zero_point")}
    act = onnx.TensorProto.UINT8 if cfg.activation_type == "uint8" else onnx.TensorProto.INT8
    assert act in zp_types


def test_onnx_presets_are_typed_configs() -> None:
    assert OnnxQuantConfig.x86() == OnnxQuantConfig(activation_type="uint8", weight_type="int8", per_channel=True)
    assert OnnxQuantConfig.arm64().activation_type == "int8"
    assert OnnxQuantConfig.preset("arm64", per_channel=False).per_channel is False
    with pytest.raises(ValueError, match="Valid names: arm64, x86"):
        OnnxQuantConfig.preset("riscv")


def test_onnx_nodes_to_exclude_and_sqnr(tiny: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    from edgeship.export import onnx_sqnr
    from edgeship.export.onnx import preprocess_onnx, quantize_onnx

    pre = preprocess_onnx(tiny["float_onnx"])
    q = quantize_onnx(tiny["float_onnx"], tiny["cal"])
    sqnr = onnx_sqnr(pre, q, tiny["cal"][:16])
    assert sqnr and all(v > 10 for v in sqnr.values()), sqnr  # a healthy int8 model
    conv = next(n.name for n in onnx.load_from_string(pre).graph.node if n.op_type == "Conv")
    excl = quantize_onnx(tiny["float_onnx"], tiny["cal"], OnnxQuantConfig.x86(nodes_to_exclude=(conv,)))
    ops = [n.op_type for n in onnx.load_from_string(excl).graph.node]
    conv_node = next(n for n in onnx.load_from_string(excl).graph.node if n.name == conv)
    # the excluded Conv reads its float weight directly, not through DequantizeLinear
    producers = {o: n.op_type for n in onnx.load_from_string(excl).graph.node for o in n.output}
    assert producers.get(conv_node.input[1]) != "DequantizeLinear"
    assert "DequantizeLinear" in ops
    assert _run(excl, "onnx", tmp_path, tiny)[0] >= tiny["float_acc"] - 0.03


def test_unknown_tflite_precision_is_a_build_error(tiny: dict[str, Any]) -> None:
    from edgeship.core.errors import BuildError
    from edgeship.export import to_tflite

    with pytest.raises(BuildError, match="Expected one of float32, float16"):
        to_tflite(tiny["model"], "int4")
    with pytest.raises(BuildError, match="needs calibration samples"):
        to_tflite(tiny["model"], "int16x8")
