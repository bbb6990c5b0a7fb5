"""``edgeship build`` for ``model.task = "anomaly"``: an autoencoder on normal samples, scored by reconstruction error.

The orchestrator's anomaly path (:func:`edgeship.build.build` calls it after
loading the one-class splits, :func:`edgeship.train.load_anomaly_dataset`):

1. the architecture must reconstruct its input (output shape = input shape);
2. ``baselines``: ROC AUC of PCA reconstruction error with as many components
   as the model's narrowest layer (the linear autoencoder of the same width);
3. ``train``: MSE on the training normals, early stopping on the validation
   normals' reconstruction loss, BatchNorm re-estimated on the training normals;
4. the float32 figures: score = ``mean((x - model(x))**2)`` per sample; the
   threshold is ``anomaly.threshold_quantile`` of the validation normals'
   scores; ROC AUC (scikit-learn) and precision / recall at the threshold on
   the test split;
5. :func:`edgeship._write.write_bundle` with the budget on ROC AUC: every
   artifact's validation ROC AUC (normals and held-out anomalies) may be at
   most ``budget.max_accuracy_drop`` below the float32 model's; each artifact
   gets its own threshold from its own validation-normal scores, embedded in
   the file, so ``predict_anomaly`` works from a bare ``.tflite`` / ``.onnx``.

Pruning is not supported for this task yet (the recipe says so); the int8
chain runs PTQ, then the float fallback (QAT needs class labels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeship.core.bundle import AnomalyInfo, DatasetInfo
from edgeship.core.metrics import SCORE_RULE, SCORE_RULE_TEXT, detection_metrics, reconstruction_error, roc_auc
from edgeship.core.progress import say

#: At most this many points of the float32 ROC curve go into the manifest (for the report's plot).
ROC_POINTS = 200


def check_reconstruction(model: Any, input_shape: tuple[int, ...], arch: str) -> None:
    """``RecipeError`` unless ``model``'s output has the input's shape (an autoencoder)."""
    from edgeship.core.errors import RecipeError

    out = tuple(int(d) for d in model.output_shape[1:]) if not isinstance(model.output_shape, list) else None
    if out != tuple(input_shape):
        raise RecipeError(
            f'model.task = "anomaly" needs a model whose output has its input\'s shape (it reconstructs the input). '
            f"Received: model.arch = {arch!r}, output {model.output_shape} for input (None, "
            f"{', '.join(map(str, input_shape))}). Use fc_autoencoder, or register an autoencoder in the zoo."
        )


def bottleneck_width(model: Any) -> int:
    """The narrowest feature width among the model's layers after the input (the autoencoder's code size)."""
    widths = []
    for layer in model.layers[1:]:
        shape = layer.output_shape
        if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
            widths.append(int(np.prod([d for d in shape[1:] if d])))
    return min(widths) if widths else 1


def keras_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """Reconstruction error of a Keras model, per sample."""
    return reconstruction_error(x, model.predict(x, batch_size=256, verbose=0))


def build_anomaly(run: Any, ds: Any, plan: Any, factory: Callable[[], Any]) -> None:
    """Train, evaluate and ship an anomaly detector into ``run.out`` (see the module docstring)."""
    from edgeship import train
    from edgeship._write import AnomalyShip, BuildInfo, ShipData, write_bundle
    from edgeship.variants import CompressData, calibration_sample

    recipe = run.recipe
    probe = factory()
    check_reconstruction(probe, ds.input_shape, recipe.model.arch)
    x_normal_val = ds.x_val[ds.y_val == 0]
    with run.stage("baselines: PCA reconstruction error"):
        base = train.pca_baseline(ds.x_train, ds.x_test, ds.y_test, bottleneck_width(probe), seed=recipe.seed)
        say(f"  PCA ({base['pca_components']} components) test ROC AUC {base['pca_roc_auc']:.4f}")
    del probe
    t = recipe.train
    with run.stage("train"):
        say(f"  autoencoder on {len(ds.x_train)} normal samples (MSE): {plan.epochs} epochs at most "
            f"(not before {plan.min_epochs}), batch {plan.batch_size}, lr {plan.learning_rate:.2g}, "
            f"patience {plan.early_stopping_patience}")
        model, history = train.train_model(
            factory, train.TrainingData(ds.x_train, ds.x_train, x_normal_val, x_normal_val), plan, train.TrainOptions(
                loss="mse", lr_schedule=t.lr_schedule, lr_decay_rate=t.lr_decay_rate, l2=t.l2, seed=recipe.seed,
                strategy=t.strategy, mixed_precision=t.mixed_precision,
                checkpoint_path=run.work / "training" / "best.keras" if t.checkpoint else None,
                log_dir=run.work / "training" / "logs" if t.tensorboard else None,
            ),
        )
        anomaly_info = float_figures(model, ds, recipe, base, len(history.get("loss", [])))
    data = ShipData(
        calibration_sample(ds.x_train, recipe.quantize.calibration_samples, recipe.seed), ds.x_test, ds.y_test,
        ds.labels, ds.preprocessing, anomaly_info.accuracy,
        anomaly=AnomalyShip(x_normal_val, anomaly_info.threshold_quantile, anomaly_info.roc_auc, base),
    )
    compress_data = CompressData(x_val=ds.x_val, y_val=ds.y_val, batch_size=plan.batch_size, learning_rate=plan.learning_rate,
                                 seed=recipe.seed, reference_accuracy=anomaly_info.validation_roc_auc)
    info = BuildInfo(
        dataset=DatasetInfo(name=ds.name, train=len(ds.x_train), val=len(ds.x_val), test=len(ds.x_test),
                            val_anomalous=int(ds.y_val.sum()), test_anomalous=int(ds.y_test.sum())),
        training={**plan.to_json(), "epochs_run": len(history.get("loss", [])), "loss": "mse",
                  "trained_on": "normal samples only"},
        anomaly=anomaly_info,
    )
    write_bundle(model, recipe, run.out, data, info=info, timings=run.timings, compress_data=compress_data)


def float_figures(model: Any, ds: Any, recipe: Any, base: dict[str, Any], epochs_run: int) -> AnomalyInfo:
    """The trained float32 model's threshold (the quantile of the validation normals' scores), test ROC AUC,
    precision / recall there, and its ROC curve (at most :data:`ROC_POINTS` points)."""
    from sklearn.metrics import roc_curve

    q = recipe.anomaly.threshold_quantile
    val_scores = keras_scores(model, ds.x_val)  # normals and held-out anomalies; the threshold reads the normals
    normals = int((ds.y_val == 0).sum())
    threshold = float(np.quantile(val_scores[ds.y_val == 0], q))
    test_scores = keras_scores(model, ds.x_test)
    figures = detection_metrics(test_scores, ds.y_test, threshold)
    auc, val_auc = figures["roc_auc"], roc_auc(val_scores, ds.y_val)
    say(f"  keras float32 test ROC AUC {auc:.4f} (validation {val_auc:.4f}), threshold {threshold:.4g} "
        f"(quantile {q} of {normals} validation normals): precision {figures['precision']:.4f}, "
        f"recall {figures['recall']:.4f}, after {epochs_run} epoch(s)")
    fpr, tpr, _ = roc_curve(ds.y_test, test_scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    return AnomalyInfo(
        score=SCORE_RULE, score_rule=SCORE_RULE_TEXT, threshold_quantile=q, threshold=threshold,
        roc_auc=auc, precision=figures["precision"], recall=figures["recall"], accuracy=figures["accuracy"],
        validation_normals=normals, validation_roc_auc=val_auc,
        normal_classes=tuple(recipe.data.normal_classes) if recipe.data.normal_classes else None, baselines=base,
        roc_curve={"fpr": [round(float(v), 5) for v in fpr[keep]], "tpr": [round(float(v), 5) for v in tpr[keep]]},
    )


def load_anomaly_data(recipe: Any) -> Any:
    """The recipe's one-class splits (:func:`edgeship.train.load_anomaly_dataset`): normal training samples,
    validation and test with held-out anomalies."""
    from edgeship import train

    d = recipe.data
    ds = train.load_anomaly_dataset(
        d.dataset, normal_classes=d.normal_classes, seed=recipe.seed, test_fraction=d.test_fraction,
        val_fraction=d.val_fraction, label_column=d.label_column,
        flatten=train.model_info(recipe.model.arch).input_kind == "vector",
    )
    say(f"  {ds.name}: {len(ds.x_train)} train (normal) / {len(ds.x_val)} val ({int(ds.y_val.sum())} anomalous) / "
        f"{len(ds.x_test)} test ({int(ds.y_test.sum())} anomalous), input {ds.input_shape}")
    return ds
