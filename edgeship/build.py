"""``edgeship build``: recipe -> train -> prune -> int8 -> export -> verified bundle."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

import edgeship
from edgeship._progress import say, stage
from edgeship.export._report import render_markdown
from edgeship.recipe import Recipe


def _evaluate(path: Path, fmt: str, precision: str, x: np.ndarray, y: np.ndarray) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]]]:
    """Accuracy of one artifact through the runtime, and its I/O description."""
    from sklearn.metrics import accuracy_score

    from edgeship.runtime._load import load_file

    with load_file(path, fmt, precision=precision) as model:
        probs = model.predict(x)
        acc = float(accuracy_score(y, np.argmax(probs, axis=-1)))
        return acc, [t.to_json() for t in model.inputs], [t.to_json() for t in model.outputs]


def build(recipe: Recipe, out: str | Path) -> Path:
    """Run the whole pipeline and write the bundle to ``out`` atomically.

    Returns the bundle folder. Raises ``EdgeshipError`` subclasses on bad input;
    on any failure no bundle (and no partial file) is left at ``out``.
    """
    from edgeship import compress, export, train
    from edgeship.export._bundle import check_target

    out = Path(out)
    check_target(out.absolute())  # fail before training, not after
    timings: dict[str, float] = {}
    say(f"recipe {recipe.name} (sha256 {recipe.sha256()[:12]}), bundle -> {out}")

    with stage("data", timings):
        train.set_seed(recipe.seed)
        ds = train.load_dataset(
            recipe.data.dataset,
            seed=recipe.seed,
            test_fraction=recipe.data.test_fraction,
            val_fraction=recipe.data.val_fraction,
        )
        say(f"  {ds.name}: {len(ds.x_train)} train / {len(ds.x_val)} val / {len(ds.x_test)} test, "
            f"input {ds.input_shape}, {ds.num_classes} classes")

    with stage("train", timings):
        model = train.create_model(recipe.model.arch, ds.input_shape, ds.num_classes)
        train.fit(
            model, ds.x_train, ds.y_train, ds.x_val, ds.y_val,
            epochs=recipe.train.epochs,
            batch_size=recipe.train.batch_size,
            learning_rate=recipe.train.learning_rate,
            patience=recipe.train.early_stopping_patience,
            seed=recipe.seed,
        )
        keras_acc = train.accuracy(model, ds.x_test, ds.y_test)
        say(f"  keras float32 test accuracy {keras_acc:.4f}")

    sparsity: dict[str, float] = {}
    if recipe.prune.enabled and recipe.prune.target_sparsity > 0:
        with stage(f"prune to {recipe.prune.target_sparsity:.0%}", timings):
            model = compress.prune(
                model, ds.x_train, ds.y_train, ds.x_val, ds.y_val,
                target_sparsity=recipe.prune.target_sparsity,
                fine_tune_epochs=recipe.prune.fine_tune_epochs,
                batch_size=recipe.train.batch_size,
                learning_rate=recipe.train.learning_rate / 4,
                seed=recipe.seed,
            )
            sparsity = compress.sparsity_report(model)
            pruned_acc = train.accuracy(model, ds.x_test, ds.y_test)
            say(f"  pruned keras accuracy {pruned_acc:.4f}; kernel sparsity "
                + ", ".join(f"{k} {v:.0%}" for k, v in sparsity.items()))
    reference_acc = train.accuracy(model, ds.x_test, ds.y_test)

    rng = np.random.default_rng(recipe.seed)
    n_cal = min(recipe.quantize.calibration_samples, len(ds.x_train))
    calibration = ds.x_train[rng.choice(len(ds.x_train), n_cal, replace=False)]

    precisions = ["float32"] + (["int8"] if recipe.quantize.enabled else [])
    artifacts: list[dict[str, Any]] = []
    with export.BundleWriter(out) as bundle:
        float_onnx: bytes | None = None
        for fmt in recipe.export.formats:
            for precision in precisions:
                name = f"model.{precision}.{fmt}"
                with stage(f"export {name}", timings):
                    if fmt == "tflite":
                        data = export.to_tflite(model, precision, calibration if precision == "int8" else None)
                    elif precision == "float32":
                        data = float_onnx = export.to_onnx(model, recipe.export.onnx_opset)
                    else:
                        data = export.quantize_onnx(float_onnx or export.to_onnx(model, recipe.export.onnx_opset), calibration)
                    path = bundle.write_bytes(name, data)
                with stage(f"evaluate {name}", timings):
                    acc, inputs, outputs = _evaluate(path, fmt, precision, ds.x_test, ds.y_test)
                    say(f"  {name}: accuracy {acc:.4f} ({acc - reference_acc:+.4f} vs keras), {len(data):,} bytes")
                artifacts.append({
                    **export.file_entry(path),
                    "format": fmt,
                    "precision": precision,
                    "inputs": inputs,
                    "outputs": outputs,
                    "metrics": {"accuracy": acc, "accuracy_drop": reference_acc - acc},
                })
        eval_path = bundle.path("eval.npz")
        np.savez_compressed(eval_path, x=ds.x_test.astype(np.float32), y=ds.y_test.astype(np.int64))
        manifest = {
            "name": recipe.name,
            "edgeship_version": edgeship.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "recipe": recipe.to_dict(),
            "recipe_sha256": recipe.sha256(),
            "labels": ds.labels,
            "preprocessing": ds.preprocessing,
            "dataset": {
                "name": ds.name,
                "train": len(ds.x_train), "val": len(ds.x_val), "test": len(ds.x_test),
            },
            "metrics": {
                "keras_float32_accuracy": keras_acc,
                "keras_reference_accuracy": reference_acc,
                "sparsity": sparsity,
            },
            "artifacts": artifacts,
            "eval": {**export.file_entry(eval_path), "samples": len(ds.x_test)},
            "timings_s": timings,
        }
        bundle.write_manifest(manifest)
        bundle.path("report.md").write_text(render_markdown(manifest))
    say(f"bundle written: {out}")
    return out
