"""Knowledge distillation: the loss against a hand computation, and pruning fine-tuned by distillation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest


def test_distillation_loss_equals_hand_computation() -> None:
    from edgeship.compress import distillation_loss

    # One sample, two classes, label 0. teacher p = (0.8, 0.2), student q = (0.6, 0.4), T = 2, alpha = 0.25.
    # Tempered: softmax(log p / T) = sqrt(p) / sum(sqrt(p)).
    t = np.sqrt([0.8, 0.2]) / np.sqrt([0.8, 0.2]).sum()
    s = np.sqrt([0.6, 0.4]) / np.sqrt([0.6, 0.4]).sum()
    kl = t[0] * math.log(t[0] / s[0]) + t[1] * math.log(t[1] / s[1])
    ce = -math.log(0.6)
    expected = 0.25 * ce + 0.75 * 4 * kl
    got = float(distillation_loss(np.array([0]), np.array([[0.8, 0.2]], np.float32), np.array([[0.6, 0.4]], np.float32),
                                  temperature=2.0, student_loss_weight=0.25))
    assert got == pytest.approx(expected, rel=1e-5)
    # alpha = 1 is the labels' cross-entropy alone; a student equal to its teacher adds no KL term.
    same = float(distillation_loss(np.array([1]), np.array([[0.3, 0.7]], np.float32), np.array([[0.3, 0.7]], np.float32),
                                   temperature=3.0, student_loss_weight=0.5))
    assert same == pytest.approx(0.5 * -math.log(0.7), rel=1e-5)


def test_distiller_trains_student_and_leaves_teacher_alone() -> None:
    from edgeship.compress import distiller
    from edgeship.core.tf import tf_modules
    from edgeship.train import accuracy, set_seed

    tf, keras = tf_modules()
    set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")

    def mlp() -> Any:
        return keras.Sequential([keras.layers.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(2, activation="softmax")])

    teacher, student = mlp(), mlp()
    teacher.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    teacher.fit(x, y, epochs=30, verbose=0)
    before = [w.copy() for w in teacher.get_weights()]
    start = accuracy(student, x, y)
    d = distiller(teacher, student, temperature=3.0, student_loss_weight=0.2)
    d.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    history = d.fit(x, y, validation_data=(x, y), epochs=20, batch_size=32, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights()))
    assert accuracy(student, x, y) > max(0.9, start)
    agree = np.mean(np.argmax(student(x).numpy(), -1) == np.argmax(teacher(x).numpy(), -1))
    assert agree > 0.9
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    with pytest.raises(ValueError, match="student_loss_weight"):
        distiller(teacher, student, student_loss_weight=1.5)


def test_prune_with_distillation_reaches_sparsity_and_keeps_the_teacher() -> None:
    from edgeship import compress, train

    ds = train.load_dataset("digits")
    model = train.create_model("small_cnn", ds.input_shape, ds.num_classes, width=8)
    train.fit(model, ds.training_data, epochs=3, learning_rate=3e-3, verbose=0, seed=0)
    weights = [w.copy() for w in model.get_weights()]
    pruned = compress.prune(model, ds.x_train, ds.y_train, ds.x_val, ds.y_val, fine_tune_epochs=2, verbose=0,
                            target_sparsity=0.5, distill=compress.Distillation(temperature=3.0, student_loss_weight=0.5))
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert all(layer.trainable for layer in model.layers)
    for layer, frac in compress.sparsity_report(pruned).items():
        assert frac == pytest.approx(0.5, abs=0.02), layer
    assert train.accuracy(pruned, ds.x_val, ds.y_val) > 0.8
