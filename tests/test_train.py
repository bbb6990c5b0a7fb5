"""The fit loop: device/precision decisions, schedules, L2, seeding, checkpoints, evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgeship import train
from edgeship.core.bundle import Evaluation
from edgeship.core.errors import RecipeError
from edgeship.train._fit import add_l2


def _digits_subset(n: int = 400) -> train.Dataset:
    ds = train.load_dataset("digits", seed=0)
    ds.x_train, ds.y_train = ds.x_train[:n], ds.y_train[:n]
    return ds


def _plan(n_train: int, epochs: int, *, batch_size: int = 32, learning_rate: float = 1e-3,
          patience: int = 6) -> train.TrainingPlan:
    """Every setting given (none from the dataset-size rule), min_epochs 0."""
    return train.plan_training(n_train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                               early_stopping_patience=patience, min_epochs=0)


def _tiny_cnn() -> object:
    return train.create_model("small_cnn", (8, 8, 1), 10, width=8)


# -- decisions (pure: tested without a GPU) --------------------------------------------


@pytest.mark.parametrize(
    ("setting", "gpus", "policy"),
    [
        ("auto", 0, "float32"),
        ("auto", 1, "mixed_float16"),
        ("auto", 4, "mixed_float16"),
        ("off", 2, "float32"),
        ("mixed_float16", 0, "mixed_float16"),
    ],
)
def test_mixed_precision_decision(setting: str, gpus: int, policy: str) -> None:
    assert train.mixed_precision_policy(setting, gpus) == policy


def test_mixed_precision_rejects_unknown_setting() -> None:
    with pytest.raises(RecipeError, match="mixed_precision"):
        train.mixed_precision_policy("bf16", 1)


GPUS2 = ["/device:GPU:0", "/device:GPU:1"]
CPUS2 = ["/device:CPU:0", "/device:CPU:1"]


@pytest.mark.parametrize(
    ("name", "gpus", "cpus", "kind", "devices"),
    [
        ("auto", [], CPUS2[:1], "default", []),
        ("auto", GPUS2[:1], CPUS2[:1], "one_device", GPUS2[:1]),
        ("auto", GPUS2, CPUS2[:1], "mirrored", GPUS2),
        ("one_device", [], CPUS2, "one_device", CPUS2[:1]),
        ("one_device", GPUS2, CPUS2, "one_device", GPUS2[:1]),
        ("mirrored", [], CPUS2, "mirrored", CPUS2),
        ("mirrored", GPUS2, CPUS2, "mirrored", GPUS2),
    ],
)
def test_strategy_plan(name: str, gpus: list[str], cpus: list[str], kind: str, devices: list[str]) -> None:
    assert train.strategy_plan(name, gpus, cpus, None) == (kind, devices)


def test_multi_worker_reads_tf_config() -> None:
    with pytest.raises(RecipeError, match="TF_CONFIG is not set"):
        train.strategy_plan("multi_worker", [], CPUS2, None)
    with pytest.raises(RecipeError, match="TF_CONFIG must be JSON"):
        train.strategy_plan("multi_worker", [], CPUS2, "{not json")
    cfg = json.dumps({"cluster": {"worker": ["localhost:12345"]}, "task": {"type": "worker", "index": 0}})
    assert train.strategy_plan("multi_worker", [], CPUS2, cfg) == ("multi_worker", [])


def test_recipe_validates_the_training_options() -> None:
    from edgeship.recipe import Recipe

    data = Recipe.default().to_dict()
    assert data["train"]["strategy"] == "auto" and data["train"]["mixed_precision"] == "auto"
    data["train"]["lr_schedule"] = "linear"
    with pytest.raises(RecipeError, match="lr_schedule"):
        Recipe.from_dict(data)
    data["train"].update(lr_schedule="cosine", strategy="tpu")
    with pytest.raises(RecipeError, match="strategy"):
        Recipe.from_dict(data)


# -- schedules ------------------------------------------------------------------------


def test_learning_rate_schedules() -> None:
    assert train.learning_rate_schedule("constant", 1e-3, steps_per_epoch=10, epochs=5) == 1e-3
    exp = train.learning_rate_schedule("exponential", 1e-3, steps_per_epoch=10, epochs=5, decay_rate=0.5)
    assert float(exp(0)) == pytest.approx(1e-3)
    assert float(exp(10)) == pytest.approx(5e-4)  # x0.5 after one epoch
    cos = train.learning_rate_schedule("cosine", 1e-3, steps_per_epoch=10, epochs=5)
    assert float(cos(0)) == pytest.approx(1e-3)
    assert float(cos(25)) == pytest.approx(5e-4, rel=1e-3)  # half way: half the rate
    assert float(cos(50)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(RecipeError, match="lr_schedule"):
        train.learning_rate_schedule("step", 1e-3, steps_per_epoch=10, epochs=5)


# -- evaluation -----------------------------------------------------------------------


def test_classification_report_by_hand() -> None:
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 1])
    record = train.classification_report(y_true, y_pred, ["a", "b", "c"])
    assert isinstance(record, Evaluation)
    rep = record.to_json()  # the manifest's shape
    assert rep["accuracy"] == pytest.approx(3 / 5) == record.accuracy
    assert rep["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rep["per_class"]["b"]["precision"] == pytest.approx(2 / 4)
    assert rep["per_class"]["b"]["recall"] == 1.0
    assert rep["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rep["macro"]["recall"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert rep["macro"]["f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)
    assert rep["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert train.macro_f1(y_true, y_pred, 3) == pytest.approx(rep["macro"]["f1"])
    assert list(rep) == ["accuracy", "macro", "per_class", "confusion_matrix"]
    assert Evaluation.from_json(json.loads(json.dumps(rep))).to_json() == rep  # plain JSON types, round trip


# -- the loop -------------------------------------------------------------------------


def test_train_model_is_seeded_and_reproducible() -> None:
    ds = _digits_subset()

    def run() -> list[np.ndarray]:
        model, _ = train.train_model(_tiny_cnn, ds.training_data, _plan(len(ds.x_train), 2),
                                     train.TrainOptions(seed=3, verbose=0))
        return model.get_weights()

    a, b = run(), run()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_l2_adds_one_penalty_per_kernel_and_raises_the_loss() -> None:
    ds = _digits_subset(200)
    plan = _plan(len(ds.x_train), 1)
    _, plain = train.train_model(_tiny_cnn, ds.training_data, plan, train.TrainOptions(verbose=0))
    _, reg = train.train_model(_tiny_cnn, ds.training_data, plan, train.TrainOptions(l2=0.1, verbose=0))
    assert reg["loss"][0] > plain["loss"][0] + 0.01
    model = _tiny_cnn()
    add_l2(model, 1e-4)
    assert len(model.losses) == 4  # conv1, conv2, conv3, probs


def test_checkpoint_tensorboard_and_early_stopping(tmp_path: Path) -> None:
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    ds = _digits_subset(200)
    ckpt, logs = tmp_path / "best.keras", tmp_path / "logs"
    model, hist = train.train_model(
        _tiny_cnn,
        ds.training_data,
        _plan(len(ds.x_train), 30, patience=1, learning_rate=0.05),
        train.TrainOptions(lr_schedule="exponential", lr_decay_rate=0.5, checkpoint_path=ckpt, log_dir=logs, verbose=0),
    )
    assert len(hist["loss"]) < 30  # stopped early on val_loss
    assert ckpt.is_file() and any(logs.rglob("events.out.tfevents*"))
    best = keras.models.load_model(ckpt)
    # The checkpoint holds the best epoch, which early stopping restored (trainable weights; the
    # BatchNorm moving statistics are re-estimated on the training data afterwards).
    assert len(best.trainable_weights) == len(model.trainable_weights)
    for saved, restored in zip(best.trainable_weights, model.trainable_weights):
        np.testing.assert_allclose(saved.numpy(), restored.numpy(), atol=1e-6)


def test_mixed_float16_training_returns_a_float32_model() -> None:
    ds = _digits_subset(200)
    model, _ = train.train_model(
        _tiny_cnn, ds.training_data, _plan(len(ds.x_train), 1), train.TrainOptions(mixed_precision="mixed_float16", verbose=0)
    )
    assert all(layer.compute_dtype == "float32" for layer in model.layers)
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for what follows


MIRRORED = """
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from edgeship import train
from edgeship.core.tf import tfmot
strategy = train.select_strategy("mirrored")
ds = train.load_dataset("digits", seed=0)
keras = train._fit.tf_modules()[1]


def mlp():
    # No BatchNorm: its moving statistics need more steps than this test should take.
    return keras.Sequential([keras.layers.Flatten(input_shape=(8, 8, 1)), keras.layers.Dense(64, activation="relu"),
                             keras.layers.Dense(10, activation="softmax", dtype="float32")])


plan = train.plan_training(len(ds.x_train), epochs=10, batch_size=32, learning_rate=5e-3, early_stopping_patience=6,
                           min_epochs=0)
model, hist = train.train_model(mlp, ds.training_data, plan, train.TrainOptions(strategy="mirrored", verbose=0))
acc = train.accuracy(model, ds.x_test, ds.y_test)
# The returned clone lives outside the strategy: tfmot can wrap it (a MirroredVariable would raise TypeError).
tfmot().sparsity.keras.prune_low_magnitude(model)
kinds = sorted({type(v).__name__ for v in model.variables})
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "acc": acc, "loss": hist["loss"], "kinds": kinds}))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_converges() -> None:
    # Logical devices must be set before TF initialises them: a fresh interpreter.
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MIRRORED)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["loss"][-1] < result["loss"][0] / 3
    assert result["acc"] > 0.9
    assert not any("Mirrored" in k for k in result["kinds"])
