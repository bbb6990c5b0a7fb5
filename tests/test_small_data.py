"""Accuracy on small real-photo data: BatchNorm statistics, the training plan, the split floor,
the whole-chain budget with pruning back-off, the baselines and the chance-level gate.

The photos are scikit-learn's two sample images (china.jpg, flower.jpg), which ship in
its wheel; patches cut from them in the test make a small two-class image set.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def photo_patches(n_per_class: int, size: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: ``n_per_class`` random grayscale square crops of each sample photo, in [0, 1]."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, img in enumerate(load_sample_images().images):
        pil = Image.fromarray(img).convert("L")
        w, h = pil.size
        for _ in range(n_per_class):
            s = int(rng.integers(40, 120))
            x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            patch = pil.crop((x0, y0, x0 + s, y0 + s)).resize((size, size), Image.BILINEAR)
            xs.append(np.asarray(patch, dtype=np.float32)[..., None] / 255.0)
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def write_folder(root: Path, x: np.ndarray, y: np.ndarray, names: tuple[str, ...] = ("china", "flower")) -> Path:
    from PIL import Image

    for i, (img, label) in enumerate(zip(x, y)):
        d = root / names[int(label)]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img[..., 0] * 255).astype(np.uint8)).save(d / f"{i:04d}.png")
    return root


def _mode_accuracies(model: object, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(training-mode, inference-mode) top-1 on ``x``; training mode runs BatchNorm on batch statistics.

    Dropout is switched off first, so the two modes differ in BatchNorm alone.
    """
    for layer in model.layers:
        if type(layer).__name__ == "Dropout":
            layer.rate = 0.0
    train_mode = np.concatenate([np.asarray(model(x[i : i + 16], training=True)) for i in range(0, len(x), 16)])
    infer = model.predict(x, verbose=0)
    return float(np.mean(train_mode.argmax(1) == y)), float(np.mean(infer.argmax(1) == y))


def test_inference_mode_matches_training_mode_after_training_on_150_photos() -> None:
    """Keras' BatchNorm averages (momentum 0.99) lag far behind after ~50 steps; the model at inference was at chance."""
    from edgeship import train

    modes = []
    for seed in (0, 1, 2):
        x, y = photo_patches(75, seed=seed)
        order = np.random.default_rng(seed).permutation(len(x))
        x, y = x[order], y[order]
        plan = train.plan_training(130, epochs=12, batch_size=16, learning_rate=1e-3, early_stopping_patience=100,
                                   min_epochs=0)
        model, _ = train.train_model(
            lambda shape=x.shape[1:]: train.create_model("small_cnn", shape, 2),
            train.TrainingData(x[:130], y[:130], x[130:], y[130:]), plan, train.TrainOptions(seed=seed, verbose=0),
        )
        modes.append(_mode_accuracies(model, x[:130], y[:130]))
    train_mode, inference = np.mean(modes, axis=0)
    # Not worse at inference than in training, over three seeds (batch statistics of 16 are noisier
    # than the population statistics, so inference may be a little better, never 2 points worse).
    # One seed is not enough since small_cnn became conv -> BN -> ReLU (issue 16): after 12 epochs
    # seed 0 alone gave training mode 0.962, inference 0.869; seeds 1 and 2 inference >= training mode.
    assert inference >= train_mode - 0.02, modes
    assert min(m[0] for m in modes) > 0.85, modes  # the network did learn the training photos


def test_recalibration_sets_batchnorm_statistics_to_the_data() -> None:
    from edgeship import train
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(300, 4)).astype(np.float32)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.BatchNormalization(name="bn"),
                              keras.layers.Dense(2, activation="softmax", name="probs")])
    assert train.recalibrate_batchnorm(model, x, batch_size=64) == 1
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(0), rtol=1e-4)


def test_batchnorm_momentum_follows_steps_per_epoch() -> None:
    from edgeship import train

    model = train.create_model("small_cnn", (8, 8, 1), 3)
    m = train.set_batchnorm_momentum(model, 9)
    assert m == pytest.approx(0.1 ** (1 / 9)) and m < 0.99
    assert all(layer.momentum == pytest.approx(m) for layer in model.layers if "bn" in layer.name)
    assert train.set_batchnorm_momentum(train.create_model("small_cnn", (8, 8, 1), 3), 10_000) == 0.99


def test_training_plan_from_dataset_size() -> None:
    from edgeship.train import plan_training

    small, digits = plan_training(144), plan_training(1257)
    assert (small.batch_size, small.steps_per_epoch, small.epochs, small.min_epochs) == (8, 18, 167, 17)
    assert small.early_stopping_patience == 34 and small.learning_rate == pytest.approx(1e-3 * 0.5)
    assert (digits.batch_size, digits.epochs, digits.early_stopping_patience, digits.min_epochs) == (32, 75, 15, 8)
    assert small.head_epochs == 0 and plan_training(144, pretrained=True).head_epochs == 9
    given = plan_training(144, epochs=5, batch_size=64)
    assert (given.epochs, given.batch_size) == (5, 64) and "epochs" not in given.auto and given.min_epochs <= 5


def test_validation_split_has_a_floor_per_class() -> None:
    from edgeship.train._datasets import VAL_FLOOR_PER_CLASS, split

    y = np.repeat([0, 1, 2], [100, 60, 40])
    x = np.arange(len(y))
    x_tr, y_tr, x_val, y_val, x_te, y_te = split(x, y, seed=0, test_fraction=0.2, val_fraction=0.05)
    # 5% alone would give 5 / 3 / 2; the floor is 10 per class, at most a quarter of the class (32 // 4 = 8).
    assert np.bincount(y_val).tolist() == [VAL_FLOOR_PER_CLASS, VAL_FLOOR_PER_CLASS, 8]
    assert sorted(np.concatenate([x_tr, x_val, x_te]).tolist()) == x.tolist()
    again = split(x, y, seed=0, test_fraction=0.2, val_fraction=0.05)
    assert np.array_equal(again[2], x_val)


def test_baselines_and_chance_gate() -> None:
    from edgeship import train
    from edgeship.core.bundle import Baselines
    from edgeship.train._baselines import chance_check

    ds = train.load_dataset("digits")
    base = train.baselines(ds)
    assert isinstance(base, Baselines)
    assert base.majority == pytest.approx(np.mean(ds.y_test == np.bincount(ds.y_train).argmax()))
    assert base.majority_class == np.bincount(ds.y_train).argmax()
    assert 0.9 < base.linear < 1.0
    assert base.linear_model == "standardised flattened inputs + logistic regression (C by 3-fold CV)"
    assert list(base.to_json()) == ["majority", "majority_class", "linear_model", "linear"]  # the manifest's keys
    # 40 balanced 2-class test samples: 28 right (0.70) is significant at 1%, 27 is not.
    assert chance_check(0.70, 40, 0.5).passed and not chance_check(0.675, 40, 0.5).passed
    assert chance_check(0.5, 40, 0.5).required_accuracy == pytest.approx(0.70)
    tiny = chance_check(1.0, 6, 0.5)  # even a perfect score on 6 samples has p = 1/64 > 0.01
    assert not tiny.passed and tiny.samples_needed() == 7
    assert chance_check(0.55, 1000, 0.5).passed  # 550/1000 is far beyond chance


def test_prune_backoff_records_every_attempt_until_the_budget_is_met() -> None:
    from edgeship import compress, train

    ds = train.load_dataset("digits")
    model = train.create_model("small_cnn", ds.input_shape, 10, width=8)
    train.fit(model, ds.training_data, epochs=8, learning_rate=3e-3, seed=0, verbose=0)
    reference = train.accuracy(model, ds.x_val, ds.y_val)
    before = [w.copy() for w in model.get_weights()]
    # 97% sparsity with one epoch breaks the model; longer fine-tuning and lower sparsity recover it.
    schedule = compress.PruneSchedule(target_sparsity=0.97)
    pruned, used, epochs, attempts = compress.prune_to_budget(
        model, ds.x_train, ds.y_train, ds.x_val, ds.y_val, schedule=schedule, fine_tune_epochs=1,
        reference_accuracy=reference, budget=0.02, batch_size=32, learning_rate=1e-3, seed=0,
    )
    steps = [a.step for a in attempts]
    assert steps[0] == "as_recipe" and not attempts[0].met_budget and attempts[0].drop > 0.02
    assert attempts[-1].met_budget and all(not a.met_budget for a in attempts[:-1]) and len(attempts) >= 2
    assert steps == ["as_recipe", "longer_fine_tune", "half_sparsity", "quarter_sparsity"][: len(steps)]
    assert attempts[1].fine_tune_epochs > 1 and used.target_sparsity == attempts[-1].target_sparsity
    assert train.accuracy(pruned, ds.x_val, ds.y_val) == pytest.approx(attempts[-1].accuracy)
    kernel = pruned.get_layer("conv2").get_weights()[0]
    assert np.mean(kernel == 0) == pytest.approx(used.target_sparsity, abs=0.02)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # every attempt starts afresh
    # Nothing meets an impossible reference: a typed error with the table of attempts.
    from edgeship.core.errors import AccuracyBudgetError

    with pytest.raises(AccuracyBudgetError) as info:
        compress.prune_to_budget(
            model, ds.x_train, ds.y_train, ds.x_val, ds.y_val, schedule=schedule, fine_tune_epochs=1,
            reference_accuracy=1.5, budget=0.0, batch_size=64, learning_rate=1e-3, seed=0,
        )
    msg = str(info.value)
    assert "quarter_sparsity" in msg and "budget.max_accuracy_drop=0 " in msg and "Fix:" in msg


def test_effective_budget_resolves_one_sample() -> None:
    from edgeship.compress import effective_budget

    assert effective_budget(0.01, 20) == pytest.approx(0.05)
    assert effective_budget(0.01, 360) == pytest.approx(0.01)
    assert effective_budget(None, 20) is None


def test_decision_set_adds_augmented_views_only_when_the_split_cannot_resolve_the_budget() -> None:
    from edgeship.train import decision_set, make_augmenter

    x, y = photo_patches(30, seed=3)
    x = x.astype(np.float32)
    augment = make_augmenter(rotation=10, zoom=0.1, horizontal_flip=True)
    xd, yd, copies = decision_set(x, y, augment, 0.01, seed=0)
    assert copies == 16 and len(xd) == len(yd) == 17 * len(x)  # ceil(10 / (0.01 * 60)) - 1 = 16
    assert np.array_equal(xd[: len(x)], x) and np.array_equal(yd, np.tile(y, 17))
    assert not np.allclose(xd[len(x) : 2 * len(x)], x)  # the views are transformed
    again, _, _ = decision_set(x, y, augment, 0.01, seed=0)
    assert np.array_equal(again, xd)  # seeded
    assert decision_set(x, y, augment, 0.2, seed=0)[2] == 0  # 60 samples resolve a 20-point budget
    assert decision_set(x, y, None, 0.01)[2] == 0 and decision_set(x, y, augment, None)[2] == 0


def build_cli(folder: Path, tmp_path: Path, name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``edgeship build`` in a fresh process on a recipe naming only the folder; returns (process, --out)."""
    recipe = tmp_path / f"{name}.toml"
    recipe.write_text(f'name = "{name}"\n[data]\ndataset = "images:{folder}"\n')
    out = tmp_path / f"{name}-bundle"
    proc = subprocess.run([sys.executable, "-m", "edgeship", "build", str(recipe), "--out", str(out)],
                          capture_output=True, text=True, timeout=1200)
    return proc, out


@pytest.mark.slow
def test_shuffled_labels_fail_the_build_with_one_typed_line_and_no_bundle(tmp_path: Path) -> None:
    x, _ = photo_patches(100, seed=1)
    y = np.random.default_rng(1).permutation(np.repeat([0, 1], 100))  # labels that carry no signal
    proc, out = build_cli(write_folder(tmp_path / "shuffled", x, y), tmp_path, "shuffled")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgeship: error:")]
    assert len(errors) == 1 and "ChanceLevelError" in errors[0] and "allow_chance_level" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_small_photo_build_meets_the_budget_and_beats_the_baselines(tmp_path: Path) -> None:
    """A recipe naming only a folder of 200 real photos: a useful model, the budget recorded, few warning lines."""
    x, y = photo_patches(100, seed=2)
    proc, out = build_cli(write_folder(tmp_path / "photos", x, y), tmp_path, "photos")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warn" in line.lower()]
    # One line per concern at most: the small validation split, the linear baseline, the test-split drop.
    assert len(warnings) <= 3 and len({w.split(":")[1] for w in warnings}) == len(warnings), warnings
    manifest = json.loads((out / "manifest.json").read_text())
    base, metrics = manifest["metrics"]["baselines"], manifest["metrics"]
    assert set(base) >= {"majority", "linear"} and base["majority"] == pytest.approx(0.5)
    assert metrics["keras_float32_accuracy"] > base["majority"] + 0.2
    budget = manifest["budget"]
    assert budget["max_accuracy_drop"] == 0.01 and budget["effective_max_drop"] >= 0.01
    assert "augmented views" in budget["judged_on"] and budget["decision_samples"] > manifest["dataset"]["val"]
    # 40 validation photos cannot show a 1-point pruning loss: left unset, prune.enabled ships the trained model.
    comp = manifest["compression"]
    assert not comp["prune_attempts"] and not comp["sparsity"] and "cannot show a pruning loss" in comp["prune_skipped"]
    assert any("pruning is skipped" in w for w in warnings)
    for art in manifest["artifacts"]:
        assert art["metrics"]["chance_check"]["passed"], art["file"]
    assert manifest["training"]["batch_size"] == 8 and "epochs" in manifest["training"]["auto"]
    assert "Baselines" in (out / "report.md").read_text()


def test_budget_recipe_keys() -> None:
    from edgeship.recipe import Recipe

    assert Recipe.default().budget.limit == 0.01
    assert Recipe.from_dict({"budget": {"enabled": False}}).budget.limit is None
    # release 0.1's quantize.accuracy_budget is the whole-chain budget unless [budget] sets one
    assert Recipe.from_dict({"quantize": {"accuracy_budget": 0.05}}).budget.limit == 0.05
    both = Recipe.from_dict({"quantize": {"accuracy_budget": 0.05}, "budget": {"max_accuracy_drop": 0.02}})
    assert both.budget.limit == 0.02


@pytest.mark.slow
def test_transfer_learning_from_a_saved_weights_file(tmp_path: Path) -> None:
    """A base trained on digits 0-4, saved with save_weights, starts a model for digits 5-9 in a real build."""
    from sklearn.datasets import load_digits

    from edgeship import train
    from edgeship.build import build
    from edgeship.recipe import Recipe

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    low = digits.target < 5
    base = train.create_model("small_cnn", (8, 8, 1), 5)
    train.fit(base, train.TrainingData(x[low], digits.target[low], x[low][:100], digits.target[low][:100]), epochs=3,
              seed=0, verbose=0)
    weights = tmp_path / "base.h5"
    base.save_weights(weights)
    folder = tmp_path / "high"
    for img, label in zip(x[~low], digits.target[~low]):
        d = folder / str(label)
        d.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        Image.fromarray((img[..., 0] * 255).astype(np.uint8)).save(d / f"{len(list(d.iterdir())):04d}.png")
    recipe = Recipe.from_dict({
        "name": "transfer",
        "data": {"dataset": f"images:{folder}", "image_size": [8, 8], "color_mode": "grayscale",
                 "augmentation": {"horizontal_flip": False, "rotation": 0.0, "zoom": 0.0}},
        "model": {"weights": str(weights)},
        "train": {"epochs": 6, "head_epochs": 2},
        "prune": {"enabled": False},
        "quantize": {"tflite": ["int8"], "onnx": ["float32"]},
        "export": {"measure_rss": False},
    })
    out = build(recipe, tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["model"]["weights"] == str(weights)
    assert manifest["training"]["head_epochs"] == 2 and "head_epochs" not in manifest["training"]["auto"]
    assert manifest["metrics"]["keras_float32_accuracy"] > 0.9
    assert all(a["metrics"]["accuracy"] > 0.9 for a in manifest["artifacts"])
