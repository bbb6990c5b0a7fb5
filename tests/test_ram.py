"""RAM and flash estimates, checked two ways: by hand, and against measured RSS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.runtime._graph import read_graph
from edgeship.runtime._ram import arena_estimate, estimates, measure_rss_increase


def _branchy_keras_model() -> object:
    """x(16) -> a=Dense32+relu -> b=Dense32(a), c=Dense32(a) -> d=b+c -> y=Dense4(d)."""
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    layers = keras.layers
    ones = "ones"  # the converter drops all-zero biases; non-zero ones stay, as in a trained model
    x = layers.Input((16,), name="input")
    a = layers.Dense(32, activation="relu", bias_initializer=ones, name="a")(x)
    b = layers.Dense(32, bias_initializer=ones, name="b")(a)
    c = layers.Dense(32, bias_initializer=ones, name="c")(a)
    d = layers.Add(name="d")([b, c])
    y = layers.Dense(4, bias_initializer=ones, name="y")(d)
    return keras.Model(x, y)


def test_tflite_arena_equals_hand_computed_peak(tmp_path: Path) -> None:
    from edgeship import export

    path = tmp_path / "branchy.float32.tflite"
    path.write_bytes(export.to_tflite(_branchy_keras_model(), "float32"))
    graph = read_graph(path)
    assert [op.type for op in graph.ops] == ["FULLY_CONNECTED"] * 3 + ["ADD", "FULLY_CONNECTED"]
    # float32, batch 1: x 16*4 = 64 B, a b c d 32*4 = 128 B each, y 4*4 = 16 B.
    # live per op: FC a {x,a} 192 | FC b {a,b} 256 | FC c {a,b,c} 384 | ADD {b,c,d} 384 | FC y {d,y} 144
    hand_peak = 3 * 128
    est = arena_estimate(graph)
    assert est.arena_bytes == hand_peak
    assert est.peak_op == 2 and len(est.peak_tensors) == 3
    # weights: kernels 16*32 + 2*32*32 + 32*4 floats; the three identical all-ones 32-biases are
    # one tensor after the converter's deduplication, plus the 4-bias.
    assert graph.weights_bytes() == 4 * (16 * 32 + 2 * 32 * 32 + 32 * 4 + 32 + 4)
    assert estimates(path, measure=False)["flash_bytes"] == path.stat().st_size


def test_onnx_arena_equals_hand_computed_peak(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def w(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)

    def vi(name: str, n: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, n])

    nodes = [
        helper.make_node("MatMul", ["X", "W1"], ["A"]),
        helper.make_node("Relu", ["A"], ["B"]),
        helper.make_node("MatMul", ["B", "W2"], ["C"]),
        helper.make_node("Add", ["B", "C"], ["D"]),
        helper.make_node("MatMul", ["D", "W3"], ["Y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "branchy",
        [vi("X", 8)],
        [vi("Y", 2)],
        initializer=[w("W1", (8, 16)), w("W2", (16, 16)), w("W3", (16, 2))],
        value_info=[vi(n, 16) for n in "ABCD"],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "branchy.onnx"
    path.write_bytes(model.SerializeToString())
    parsed = read_graph(path)
    # X 8*4 = 32 B, A B C D 16*4 = 64 B, Y 2*4 = 8 B.
    # MatMul {X,A} 96 | Relu {A,B} 128 | MatMul {B,C} 128 | Add {B,C,D} 192 | MatMul {D,Y} 72
    est = arena_estimate(parsed)
    assert est.arena_bytes == 192 and est.peak_tensors == ["B", "C", "D"]
    assert parsed.weights_bytes() == 4 * (8 * 16 + 16 * 16 + 16 * 2)
    assert not est.unknown_tensors
    # the same graph through ONNX Runtime: it runs, so the parsed structure is a real model
    import onnxruntime as ort

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"X": np.ones((1, 8), np.float32)}
    )
    assert out[0].shape == (1, 2)


def test_int8_dequantized_weights_are_not_activations(tmp_path: Path) -> None:
    """A DequantizeLinear of a constant weight is folded by ORT: it must not count as arena."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w_q = numpy_helper.from_array(np.ones((8, 4), np.int8), "Wq")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    nodes = [
        helper.make_node("DequantizeLinear", ["Wq", "s"], ["W"]),
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
    ]
    g = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        initializer=[w_q, scale],
        value_info=[helper.make_tensor_value_info("W", TensorProto.FLOAT, [8, 4])],
    )
    path = tmp_path / "q.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert arena_estimate(read_graph(path)).arena_bytes == 8 * 4 + 4 * 4  # X and Y only
    del onnx


@pytest.mark.slow
def test_rss_prediction_within_1_5x_for_resnet8_int8(tmp_path: Path) -> None:
    """Predicted RSS increase = engine baseline (trivial model) + arena + weights, per engine."""
    from edgeship import export, train
    from edgeship.core.tf import tf_modules
    from edgeship.export._metadata import embed_metadata

    _, keras = tf_modules()
    train.set_seed(0)
    rng = np.random.default_rng(0)
    resnet8 = train.create_model("resnet8", (32, 32, 3), 10)
    trivial = keras.Sequential([keras.layers.Input((4,), name="input"), keras.layers.Dense(2, name="probs")])
    files: dict[tuple[str, str], Path] = {}
    for name, model, shape in (("resnet8", resnet8, (32, 32, 3)), ("trivial", trivial, (4,))):
        cal = rng.normal(size=(16, *shape)).astype(np.float32)
        for fmt, data in (
            ("tflite", export.to_tflite(model, "int8", cal)),
            ("onnx", export.quantize_onnx(export.to_onnx(model), cal)),
        ):
            path = tmp_path / f"{name}.int8.{fmt}"
            path.write_bytes(embed_metadata(data, fmt, {}))  # the build's bytes: shapes recorded for ONNX
            files[(name, fmt)] = path
    report = []
    for fmt in ("tflite", "onnx"):
        baseline = min(measure_rss_increase(files[("trivial", fmt)])["rss_increase_bytes"] for _ in range(2))
        est = estimates(files[("resnet8", fmt)], measure=False)
        measured = min(measure_rss_increase(files[("resnet8", fmt)])["rss_increase_bytes"] for _ in range(2))
        predicted = baseline + est["ram_arena_bytes"] + est["weights_bytes"]
        report.append(
            f"{fmt}: baseline {baseline:,} arena {est['ram_arena_bytes']:,} weights {est['weights_bytes']:,} "
            f"predicted {predicted:,} measured {measured:,} ratio {measured / predicted:.2f}"
        )
        assert "ram_arena_unknown_tensors" not in est
        assert measured / 1.5 <= predicted <= measured * 1.5, report[-1]
        assert est["ram_arena_bytes"] > 0
    print("\n".join(report))
