"""Pruning schedules, 2:4 sparsity, exclusion, and sparsity surviving (P)QAT into the exported TFLite weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgeship.compress import PruneSchedule


@pytest.fixture(scope="module")
def digits() -> Any:
    from edgeship import train

    return train.load_dataset("digits")


def _mlp(ds: Any) -> Any:
    """Flatten -> Dense(32) -> Dense(16) -> softmax: every kernel's input dim is a multiple of 4."""
    from edgeship import train
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    L = keras.layers
    model = keras.Sequential(
        [
            L.Input(ds.input_shape, name="input"),
            L.Flatten(name="flatten"),
            L.Dense(32, activation="relu", name="hidden"),
            L.Dense(16, activation="relu", name="hidden2"),
            L.Dense(10, activation="softmax", name="probs"),
        ]
    )
    if id(ds) not in _TRAINED:
        train.fit(model, ds.training_data, epochs=10, learning_rate=3e-3, verbose=0, seed=0)
        _TRAINED[id(ds)] = model.get_weights()
    model.set_weights(_TRAINED[id(ds)])
    return model


_TRAINED: dict[int, list[np.ndarray]] = {}  # train once per module, each test prunes a fresh copy


def _prune(ds: Any, **kw: Any) -> Any:
    from edgeship import compress

    return compress.prune(_mlp(ds), ds.x_train, ds.y_train, ds.x_val, ds.y_val, fine_tune_epochs=2, verbose=0, **kw)


@pytest.mark.parametrize("kind", ["constant", "polynomial"])
def test_schedules_reach_target_sparsity(kind: str, digits: Any) -> None:
    from edgeship import compress, train

    model = _prune(digits, schedule=PruneSchedule(kind, target_sparsity=0.7))
    report = compress.sparsity_report(model)
    assert set(report) == {"hidden", "hidden2", "probs"}
    for layer, frac in report.items():
        assert frac == pytest.approx(0.7, abs=0.01), (layer, frac)
    assert train.accuracy(model, digits.x_test, digits.y_test) > 0.5


def test_schedule_resolution() -> None:
    const = PruneSchedule("constant", 0.5).resolved(steps_per_epoch=40, epochs=4)
    assert (const.end_step, const.frequency) == (160, 40)
    poly = PruneSchedule("polynomial", 0.8).resolved(steps_per_epoch=40, epochs=4)
    assert poly.end_step == 120 and poly.frequency == 12  # the last epoch recovers at the final sparsity
    assert PruneSchedule("polynomial", 0.8, begin_step=10, end_step=50, frequency=5).resolved(40, 4).to_json() == {
        "kind": "polynomial", "target_sparsity": 0.8, "initial_sparsity": 0.0, "begin_step": 10,
        "end_step": 50, "frequency": 5, "m_by_n": None,
    }


def test_two_four_structured_sparsity(digits: Any) -> None:
    model = _prune(digits, schedule=PruneSchedule("constant", 0.5, m_by_n=(2, 4)))
    for name in ("hidden", "hidden2", "probs"):
        kernel = model.get_layer(name).get_weights()[0]  # (in, out)
        blocks = kernel.T.reshape(kernel.shape[1], -1, 4)  # 4 consecutive input weights per output
        zeros_per_block = np.count_nonzero(blocks == 0, axis=-1)
        assert (zeros_per_block >= 2).all(), (name, zeros_per_block.min())


def test_exclude_by_name_and_type(digits: Any) -> None:
    from edgeship import compress
    from edgeship.core.errors import RecipeError

    model = _prune(digits, schedule=PruneSchedule("constant", 0.6), exclude=["probs"])
    report = compress.sparsity_report(model)
    assert report["probs"] < 0.05 and report["hidden"] == pytest.approx(0.6, abs=0.01)
    assert compress.excluded_layers(model, ["Dense"]) == ["hidden", "hidden2", "probs"]
    with pytest.raises(RecipeError, match="prune.exclude names no layer"):
        compress.excluded_layers(model, ["conv9"])


def test_pqat_keeps_sparsity_in_exported_tflite_weights(digits: Any) -> None:
    """Pruning-preserving QAT: >= 95% of the target sparsity survives into the int8 .tflite."""
    from edgeship import compress
    from edgeship.export import to_tflite

    target = 0.75
    pruned = _prune(digits, schedule=PruneSchedule("constant", target))
    pqat = compress.quantize_aware(pruned, digits.x_train, digits.y_train, digits.x_val, digits.y_val,
                                   scheme="pqat", epochs=1, verbose=0)
    exported = compress.tflite_weight_sparsity(to_tflite(pqat, "int8", digits.x_train[:64]))
    assert len(exported) == 3
    for tensor, frac in exported.items():
        assert frac >= 0.95 * target, (tensor, frac)
    # Plain QAT has no such guarantee: it is the contrast that makes the check meaningful.
    qat = compress.quantize_aware(pruned, digits.x_train, digits.y_train, digits.x_val, digits.y_val,
                                  scheme="qat", epochs=1, verbose=0)
    plain = compress.tflite_weight_sparsity(to_tflite(qat, "int8", digits.x_train[:64]))
    assert min(plain.values()) < 0.95 * target
    float_weights = compress.qat_float_weights(pqat, pruned)
    assert min(compress.sparsity_report(float_weights).values()) >= 0.95 * target
