"""``edgeship build``: recipe -> data -> baselines -> train -> prune -> variants -> verified bundle.

:func:`build` is a plain loop over the stages (the call order is in the README):

1. the recipe's architecture and task, and the target folder, are checked before any work;
2. ``data``: the splits (:func:`load_data`);
3. ``baselines``: majority class and logistic regression on the same splits;
4. ``train``: the float32 model, then the chance gate on it;
5. the budget's decision set (validation, plus augmented views when it is small);
6. candidates: the trained model, or each pruning attempt within the budget
   (:class:`_Candidates`); the first whose variants all meet the budget is
   written (:func:`edgeship._write.write_bundle`), an int8 miss moves on to the next.

For ``model.task = "anomaly"`` steps 3-6 are :func:`edgeship._anomaly.build_anomaly`
(PCA baseline, an autoencoder trained on the normal samples, thresholds, the
budget on ROC AUC, no pruning).

Stages depend one way: ``edgeship.build`` and ``edgeship.variants`` (the
orchestrator) import train, compress, export and runtime; compress never
imports export, export never imports train or compress, and the runtime
imports none of them.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship._anomaly import build_anomaly, load_anomaly_data
from edgeship._gates import gate_chance
from edgeship._write import BuildInfo, ShipData, write_bundle
from edgeship.core.bundle import Baselines, DatasetInfo, ModelMetrics
from edgeship.core.metrics import top1_accuracy
from edgeship.core.progress import say, stage
from edgeship.core.task import AnomalyDetection, task_named
from edgeship.recipe import Recipe
from edgeship.variants import CompressData, calibration_sample

__all__ = ["BuildInfo", "ShipData", "build", "calibration_sample", "export_saved_model", "gate_chance", "load_data", "write_bundle"]


#: A streamed image folder's artifacts are verified on at most this many test images (a seeded sample).
STREAMED_EVAL_SAMPLES = 500


@dataclasses.dataclass
class _Run:
    """One build: the recipe, where it goes, its scratch folder and the stage timings."""

    recipe: Recipe
    out: Path
    work: Path
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def stage(self, name: str) -> Any:
        return stage(name, self.timings)


@dataclasses.dataclass(frozen=True)
class _Trained:
    model: Any
    epochs_run: int
    test_accuracy: float
    val_accuracy: float


@dataclasses.dataclass(frozen=True)
class _Decision:
    """The set the budget is judged on, the trained model's accuracy there, and the budget it can resolve."""

    x: np.ndarray
    y: np.ndarray
    copies: int
    reference: float
    budget: float | None
    concerns: tuple[str, ...]
    #: Whether the chain prunes (``prune.enabled``, or when unset whether the budget can see pruning's loss).
    prune: bool
    #: Why pruning is skipped although the recipe left ``prune.enabled`` unset.
    prune_skipped: str | None


def build(recipe: Recipe, out: str | Path, *,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Run the whole pipeline and write the bundle to ``out`` atomically.

    ``on_epoch(epoch, logs)`` is called after each training epoch with Keras'
    logs (``val_accuracy``, ...); an exception it raises ends the build
    (``edgeship search`` prunes hopeless trials this way). Returns the bundle folder.

    With ``train.strategy = "multi_worker"`` every worker of ``TF_CONFIG`` runs
    this: they train together, then the chief goes on and writes the bundle
    (its trained weights in ``training/trained.weights.h5``), and every other
    worker returns ``OUT.worker-N`` holding only its ``trained.weights.h5``. Raises ``EdgeshipError`` subclasses on bad input;
    on any failure no bundle (and no partial file) is left at ``out``.
    """
    from edgeship import train
    from edgeship.export import check_target

    out = Path(out)
    check_target(out.absolute())  # fail before training, not after
    say(f"recipe {recipe.name} (sha256 {recipe.sha256()[:12]}), bundle -> {out}")
    task_named(recipe.model.task).check_arch(train.model_info(recipe.model.arch), recipe.data.dataset)  # before any work
    run = _Run(recipe, out, Path(tempfile.mkdtemp(prefix="edgeship-train-")))  # checkpoint + logs, copied at the end
    try:
        with run.stage("data"):
            train.set_seed(recipe.seed)
            ds = load_data(recipe)
        plan = _plan(recipe, len(ds.x_train))
        if recipe.model.task == AnomalyDetection.name:  # its own pipeline: no pruning, no class baselines
            build_anomaly(run, ds, plan, _model_factory(recipe, ds))
            return _finish_build(run, out)
        worker = _build_classifier(run, ds, plan, on_epoch)
        return worker if worker is not None else _finish_build(run, out)
    finally:
        shutil.rmtree(run.work, ignore_errors=True)


def _build_classifier(run: _Run, ds: Any, plan: Any, on_epoch: Any) -> Path | None:
    """Baselines, training, the chance gate, then the first candidate whose variants meet the budget.

    Returns this worker's weights folder when it is not the chief of a multi-worker run, else ``None``.
    """
    from edgeship import train
    from edgeship.core.errors import AccuracyBudgetError

    recipe = run.recipe
    with run.stage("baselines: majority class, logistic regression"):
        base = train.baselines(ds, seed=recipe.seed)
        say(f"  majority {base.majority:.4f}, linear {base.linear:.4f} (test split)")
    augment = train.make_augmenter(**recipe.data.augmentation.model_dump()) if _is_images(recipe) else None
    trained = _train(run, ds, plan, augment, on_epoch)
    if recipe.train.strategy == "multi_worker":
        role = train.worker_role()
        if not role.is_chief:  # the chief alone compresses and writes the bundle
            return _worker_weights(trained.model, role.weights_folder(run.out))
        _worker_weights(trained.model, run.work / "training")  # copied into the bundle's training/
    gate_chance("the trained float32 Keras model", trained.test_accuracy, len(ds.y_test), base, recipe)
    decision = _decision(recipe, ds, augment, trained)
    candidates = _Candidates(run, ds, plan, augment, trained, decision)
    for candidate in candidates:
        try:
            _ship(run, ds, plan, trained, decision, base, candidate)
            return None
        except AccuracyBudgetError as exc:
            if not candidates.tried:
                raise
            candidates.reject(exc)
    raise candidates.error()


def _finish_build(run: _Run, out: Path) -> Path:
    if (run.work / "training").is_dir():  # checkpoint / TensorBoard logs, not part of the verified artifacts
        shutil.copytree(run.work / "training", out / "training", dirs_exist_ok=True)
    say(f"bundle written: {out}")
    return out


def _worker_weights(model: Any, folder: Path) -> Path:
    """Multi-worker training: this worker's trained weights, ``folder/trained.weights.h5`` (all workers agree)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(folder / "trained.weights.h5"))
    say(f"  multi-worker: trained weights -> {folder / 'trained.weights.h5'}")
    return folder


def load_data(recipe: Recipe) -> Any:
    """The recipe's dataset, split as every command that reads this recipe splits it."""
    from edgeship import train

    if recipe.model.task == AnomalyDetection.name:
        return load_anomaly_data(recipe)
    d = recipe.data
    ds = train.load_dataset(
        d.dataset, seed=recipe.seed, test_fraction=d.test_fraction, val_fraction=d.val_fraction,
        image_size=tuple(d.image_size), color_mode=d.color_mode, rescale=d.rescale,
        stream=d.stream, stream_above_mb=d.stream_above_mb, cache_dir=d.cache_dir,
        text_column=d.text_column, label_column=d.label_column,
        sequence_length=d.sequence_length, vocab_size=d.vocab_size,
    )
    say(f"  {ds.name}: {len(ds.x_train)} train / {len(ds.x_val)} val / {len(ds.x_test)} test, "
        f"input {ds.input_shape}, {ds.num_classes} classes"
        + ("; train and test streamed from disk (tf.data)" if ds.extras.get("streamed") else ""))
    return ds


def _is_images(recipe: Recipe) -> bool:
    return recipe.data.dataset.startswith("images:")


def _plan(recipe: Recipe, n_train: int) -> Any:
    from edgeship import train

    t = recipe.train
    return train.plan_training(
        n_train, epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
        early_stopping_patience=t.early_stopping_patience, min_epochs=t.min_epochs, head_epochs=t.head_epochs,
        pretrained=recipe.model.weights is not None,
    )


def _model_factory(recipe: Recipe, ds: Any) -> Callable[[], Any]:
    """A fresh untrained model of the recipe's architecture, with the options it takes."""
    from edgeship import train

    info = train.model_info(recipe.model.arch)
    options: dict[str, Any] = {"dropout": recipe.train.dropout}
    if "alpha" in info.options:
        options["alpha"] = recipe.model.alpha
    if "width" in info.options and recipe.model.width is not None:
        options["width"] = recipe.model.width
    if ds.text is not None:
        options.update(vocab_size=len(ds.text["vocabulary"]), embedding_dim=recipe.model.embedding_dim)
    return lambda: train.create_model(recipe.model.arch, ds.input_shape, ds.num_classes, **options)


def _pretrained(recipe: Recipe, plan: Any) -> Callable[[Any], list[str]] | None:
    from edgeship import train

    spec, arch, alpha = recipe.model.weights, recipe.model.arch, recipe.model.alpha
    if spec is None:
        return None

    def load(model: Any) -> list[str]:
        loaded = train.load_pretrained(model, spec, arch=arch, alpha=alpha)
        say(f"  pretrained weights {spec}: {len(loaded)} layer(s) loaded, {plan.head_epochs} head epoch(s) first")
        return loaded

    return load


def _train(run: _Run, ds: Any, plan: Any, augment: Any, on_epoch: Any = None) -> _Trained:
    from edgeship import train

    t = run.recipe.train
    with run.stage("train"):
        say(f"  {plan.epochs} epochs at most (not before {plan.min_epochs}), batch {plan.batch_size}, "
            f"lr {plan.learning_rate:.2g}, patience {plan.early_stopping_patience}"
            + (f"; from the dataset size: {', '.join(plan.auto)}" if plan.auto else ""))
        model, history = train.train_model(_model_factory(run.recipe, ds), ds.training_data, plan, train.TrainOptions(
            lr_schedule=t.lr_schedule, lr_decay_rate=t.lr_decay_rate, l2=t.l2, seed=run.recipe.seed,
            strategy=t.strategy, mixed_precision=t.mixed_precision, augment=augment,
            checkpoint_path=run.work / "training" / "best.keras" if t.checkpoint else None,
            log_dir=run.work / "training" / "logs" if t.tensorboard else None,
            pretrained=_pretrained(run.recipe, plan), on_epoch=on_epoch,
        ))
        trained = _Trained(model, len(history.get("loss", [])), train.accuracy(model, ds.x_test, ds.y_test),
                           train.accuracy(model, ds.x_val, ds.y_val))
        say(f"  keras float32 test accuracy {trained.test_accuracy:.4f} (validation {trained.val_accuracy:.4f}) "
            f"after {trained.epochs_run} epoch(s)")
    return trained


def _decision(recipe: Recipe, ds: Any, augment: Any, trained: _Trained) -> _Decision:
    from edgeship import compress, train

    x, y, copies = train.decision_set(ds.x_val, ds.y_val, augment, recipe.budget.limit, seed=recipe.seed)
    reference = train.accuracy(trained.model, x, y) if copies else trained.val_accuracy
    if copies:
        say(f"  budget decided on the {len(ds.y_val)} validation samples and {copies} augmented views of each "
            f"({len(y)} inputs): trained float32 accuracy {reference:.4f}")
    # The views measure each image's answers more finely, but they are not independent samples:
    # the budget's floor stays one validation image.
    budget = compress.effective_budget(recipe.budget.limit, len(ds.y_val))
    concerns: list[str] = []
    unresolved = budget is not None and recipe.budget.limit is not None and budget > recipe.budget.limit
    prune, skipped = recipe.prune.enabled, None
    if prune is None:
        prune = not unresolved
        if unresolved:
            skipped = (f"the validation split ({len(ds.y_val)} samples) cannot show a pruning loss within "
                       f"budget.max_accuracy_drop = {recipe.budget.limit}; prune.enabled = true prunes anyway")
    if unresolved:
        concerns.append(
            f"the validation split ({len(ds.y_val)} samples) cannot resolve budget.max_accuracy_drop = "
            f"{recipe.budget.limit}; it is judged as at most one sample ({budget:.4f})"
            + ("; pruning is skipped (prune.enabled = true prunes anyway)" if skipped else "")
            + ". More data gives a tighter check."
        )
        say(f"WARNING: {concerns[-1]}")
    return _Decision(x, y, copies, reference, budget, tuple(concerns), prune, skipped)


@dataclasses.dataclass
class _Candidate:
    """A model the bundle may be made from: the trained one, or a pruning attempt within the budget."""

    model: Any
    schedule: dict[str, Any] | None
    attempts: list[Any]
    #: ``{"report": channel report, "attempts": channel attempts}`` after structured channel pruning.
    channels: dict[str, Any] | None = None


class _Candidates:
    """The trained model when pruning is off; else every pruning attempt that meets the budget, in back-off order.

    ``attempts`` records every pruning attempt; :meth:`reject` marks the last one
    turned down because the int8 files made from it missed the budget, so
    pruning backs off further (one budget for the whole chain).
    """

    def __init__(self, run: _Run, ds: Any, plan: Any, augment: Any, trained: _Trained, decision: _Decision) -> None:
        self.run, self.ds, self.plan, self.augment = run, ds, plan, augment
        self.trained, self.decision = trained, decision
        self.attempts: list[Any] = []
        self.channel_attempts: list[Any] = []
        self.missed: Exception | None = None
        self._from_channels = False  # whether the candidate last yielded is a channel attempt itself

    def __iter__(self) -> Iterator[_Candidate]:
        pc = self.run.recipe.prune
        if not (self.decision.prune and pc.structure == "channels"):
            yield from self._unstructured(self.trained.model, None)
            return
        from edgeship._channels import channel_candidates

        calibration = calibration_sample(self.ds.x_train, self.run.recipe.quantize.calibration_samples,
                                         self.run.recipe.seed)
        for narrow, info in channel_candidates(self.run.recipe, self.ds, self.plan, self.augment, self.trained.model,
                                               self.decision, calibration, self.channel_attempts, self.run.stage):
            yield from self._unstructured(narrow, {"report": info, "attempts": self.channel_attempts})

    def _unstructured(self, base: Any, channels: dict[str, Any] | None) -> Iterator[_Candidate]:
        """``base`` itself when unstructured pruning is off; else each of its pruning attempts within the budget."""
        from edgeship import compress

        recipe, pc = self.run.recipe, self.run.recipe.prune
        if not (self.decision.prune and pc.target_sparsity > 0):
            self._from_channels = channels is not None
            yield _Candidate(base, None, [], channels)
            return
        schedule = compress.PruneSchedule(
            kind=pc.schedule, target_sparsity=pc.target_sparsity, initial_sparsity=pc.initial_sparsity,
            begin_step=pc.begin_step, end_step=pc.end_step, frequency=pc.frequency, m_by_n=pc.m_by_n,
        )
        distill = recipe.distill
        tries = compress.iter_prune_attempts(
            base, self.ds.x_train, self.ds.y_train, self.ds.x_val, self.ds.y_val,
            schedule=schedule,
            fine_tune_epochs=pc.fine_tune_epochs or compress.default_fine_tune_epochs(self.plan.steps_per_epoch),
            reference_accuracy=self.decision.reference, budget=self.decision.budget,
            decision=(self.decision.x, self.decision.y), batch_size=self.plan.batch_size,
            learning_rate=self.plan.learning_rate / 4, seed=recipe.seed, exclude=pc.exclude, augment=self.augment,
            distill=distill.spec(), say=say,
        )
        while True:
            with self.run.stage(f"prune, attempt {len(self.attempts) + 1}"):
                tried = next(tries, None)
            if tried is None:
                return
            attempt, pruned, used, epochs = tried
            self.attempts.append(attempt)
            if attempt.met_budget:
                self._from_channels = False
                yield _Candidate(pruned, {
                    **used.resolved(self.plan.steps_per_epoch, epochs).to_json(),
                    "fine_tune_epochs": epochs, "exclude": list(pc.exclude),
                    "distillation": distill.model_dump() if distill.enabled else None,
                }, self.attempts, channels)

    @property
    def tried(self) -> bool:
        """Whether any pruning ran, so an int8 miss can back off instead of failing the build."""
        return bool(self.attempts or self.channel_attempts)

    def reject(self, exc: Exception) -> None:
        self.missed = exc
        done = self.channel_attempts if self._from_channels else self.attempts
        done[-1] = dataclasses.replace(done[-1], met_budget=False, rejected_by="int8 missed the budget")
        say("  the quantized files miss the budget after this pruning: pruning backs off further")

    def error(self) -> Exception:
        from edgeship import compress

        last = f"After every pruning the budget accepted, int8 missed it; the last: {self.missed}" if self.missed else ""
        if self.channel_attempts and not self.attempts:
            return compress.channel_budget_error(self.channel_attempts, self.decision.budget,
                                                 self.decision.reference, last)
        return compress.prune_budget_error(self.attempts, self.decision.budget, self.decision.reference, last)


def _ship(run: _Run, ds: Any, plan: Any, trained: _Trained, decision: _Decision, base: Baselines,
          candidate: _Candidate) -> None:
    """Evaluate the candidate the artifacts come from, then export, check and write the bundle."""
    from edgeship import compress, train

    recipe, pruned = run.recipe, candidate.schedule is not None
    sparsity = compress.sparsity_report(candidate.model) if pruned else {}
    evaluation = train.evaluate(candidate.model, ds.x_test, ds.y_test, ds.labels)
    say(f"  keras reference accuracy {evaluation.accuracy:.4f}, macro F1 {evaluation.macro['f1']:.4f}"
        + ("; kernel sparsity " + ", ".join(f"{k} {v:.0%}" for k, v in sparsity.items()) if sparsity else ""))
    x_eval, y_eval, reference = ds.x_test, ds.y_test, trained.test_accuracy
    if ds.extras.get("streamed") and len(ds.y_test) > STREAMED_EVAL_SAMPLES:
        # Artifacts are verified on a seeded sample of the streamed test split (eval.npz holds it); the Keras
        # model's test accuracy and evaluation above cover the whole split.
        pick = np.sort(np.random.default_rng(recipe.seed).choice(len(ds.y_test), STREAMED_EVAL_SAMPLES, replace=False))
        x_eval, y_eval = np.asarray(ds.x_test[pick]), ds.y_test[pick]
        reference = train.accuracy(trained.model, x_eval, y_eval)
        say(f"  artifacts verified on {STREAMED_EVAL_SAMPLES} of the {len(ds.y_test)} streamed test images")
    data = ShipData(calibration_sample(ds.x_train, recipe.quantize.calibration_samples, recipe.seed),
                    np.asarray(x_eval), y_eval, ds.labels, ds.preprocessing, reference)
    compress_data = CompressData(
        ds.x_train, ds.y_train, ds.x_val, ds.y_val, batch_size=plan.batch_size, learning_rate=plan.learning_rate,
        seed=recipe.seed, pruned=bool(sparsity), sparsity=sparsity, schedule=candidate.schedule,
        reference_accuracy=decision.reference, prune_attempts=list(candidate.attempts), channels=candidate.channels,
        x_decision=decision.x if decision.copies else None, y_decision=decision.y if decision.copies else None,
        prune_skipped=decision.prune_skipped,
    )
    info = BuildInfo(
        dataset=DatasetInfo(name=ds.name, train=len(ds.x_train), val=len(ds.x_val), test=len(ds.x_test)),
        training={**plan.to_json(), "epochs_run": trained.epochs_run},
        warnings=tuple(decision.concerns),
        metrics=ModelMetrics(
            keras_float32_accuracy=trained.test_accuracy, keras_float32_val_accuracy=trained.val_accuracy,
            keras_reference_accuracy=evaluation.accuracy, sparsity=sparsity, evaluation=evaluation, baselines=base),
        text=ds.text,
    )
    write_bundle(candidate.model, recipe, run.out, data, info=info, timings=run.timings, compress_data=compress_data)


def export_saved_model(
    model_path: str | Path, data: str | Path, out: str | Path, *, recipe_path: str | Path | None = None
) -> Path:
    """``edgeship export``: a saved tf_keras model to a verified bundle, without retraining.

    Args:
        model_path: ``.keras`` / ``.h5`` file or SavedModel folder saved with tf_keras.
        data: a recipe TOML (its dataset and seed give the calibration sample from
            the train split and the eval sample from the test split, exactly as
            ``edgeship build`` does, and its [quantize]/[export] settings apply), or an
            ``.npz`` with ``x`` (eval inputs), optional ``y`` (int labels),
            ``x_calibration`` (default: ``x``), ``labels`` (class names) and
            ``preprocessing`` (a JSON string).
        out: bundle folder to write (atomically).
        recipe_path: recipe for the settings when ``data`` is an ``.npz``
            (default: the built-in recipe).
    """
    import hashlib

    from edgeship.export import check_target
    from edgeship.runtime import InputError

    out, data, model_path = Path(out), Path(data), Path(model_path)
    check_target(out.absolute())
    suffix = data.suffix.lower()
    if suffix == ".toml":
        recipe, source, dataset = _export_data_from_recipe(data)
    elif suffix == ".npz":
        recipe, source, dataset = _export_data_from_npz(data, recipe_path)
    else:
        raise InputError(f"Expected --data to be a recipe .toml or an .npz file. Received: {data}. Pass one of those.")
    timings: dict[str, float] = {}
    with stage("load keras model", timings):
        model = _load_keras_model(model_path)
        reference_acc = _keras_accuracy(model, source["x_eval"], source["y_eval"], data)
    labels = _export_labels(source, int(np.prod(model.output_shape[1:])), data)
    say(f"exporting {model_path} (keras accuracy {reference_acc:.4f} on {len(source['x_eval'])} eval samples) -> {out}")
    digest = hashlib.sha256()
    for f in sorted([model_path] if model_path.is_file() else [p for p in model_path.rglob("*") if p.is_file()]):
        digest.update(f.read_bytes())
    ship = ShipData(source["calibration"], source["x_eval"], source["y_eval"], labels, source["preprocessing"],
                    reference_acc)
    write_bundle(model, recipe, out, ship, timings=timings, info=BuildInfo(
        source={"keras_model": model_path.name, "keras_model_sha256": digest.hexdigest(), "data": data.name},
        dataset=DatasetInfo.from_json(dataset), metrics=ModelMetrics(keras_reference_accuracy=reference_acc),
    ))
    say(f"bundle written: {out}")
    return out


def _export_data_from_recipe(path: Path) -> tuple[Recipe, dict[str, Any], dict[str, Any]]:
    """The recipe's test split to verify on and its calibration sample, as ``edgeship build`` draws them."""
    from edgeship.recipe import load_recipe

    recipe = load_recipe(path)
    ds = load_data(recipe)
    source = {"calibration": calibration_sample(ds.x_train, recipe.quantize.calibration_samples, recipe.seed),
              "x_eval": ds.x_test, "y_eval": ds.y_test, "labels": list(ds.labels),
              "preprocessing": dict(ds.preprocessing)}
    return recipe, source, {"name": ds.name, "train": len(ds.x_train), "val": len(ds.x_val), "test": len(ds.x_test)}


def _export_data_from_npz(path: Path, recipe_path: str | Path | None) -> tuple[Recipe, dict[str, Any], dict[str, Any]]:
    """Eval inputs, labels and calibration pool from an ``.npz`` (see :func:`export_saved_model`)."""
    import json

    from edgeship.recipe import load_recipe
    from edgeship.runtime import InputError

    recipe = load_recipe(recipe_path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"Expected --data to be a readable .npz (np.savez). Received: {path} ({exc}).") from None
    if "x" not in arrays:
        raise InputError(f"Expected --data .npz to hold an array 'x' (eval inputs). Received keys: {sorted(arrays)}. "
                         "Save it with np.savez(path, x=..., y=...).")
    x_eval = arrays["x"].astype(np.float32) if arrays["x"].dtype.kind == "f" else arrays["x"]
    y_eval = arrays.get("y", np.zeros(len(x_eval), dtype=np.int64)).astype(np.int64)
    if "y" not in arrays and recipe.budget.limit is not None:
        say("  no labels ('y') in --data: accuracy cannot be judged, so the accuracy budget is off for this export")
        recipe = recipe.model_copy(update={"budget": recipe.budget.model_copy(update={"enabled": False})})
    pool = arrays.get("x_calibration", x_eval)
    source = {
        "calibration": calibration_sample(pool, recipe.quantize.calibration_samples, recipe.seed),
        "x_eval": x_eval, "y_eval": y_eval,
        "labels": [str(v) for v in arrays["labels"]] if "labels" in arrays else None,
        "preprocessing": json.loads(str(arrays["preprocessing"])) if "preprocessing" in arrays else {},
    }
    return recipe, source, {"name": path.name, "test": len(x_eval), "calibration_pool": len(pool)}


def _export_labels(source: dict[str, Any], n_outputs: int, data: Path) -> list[str]:
    """The class names for a model with ``n_outputs`` scores; labels in ``y`` must name one of them."""
    from edgeship.runtime import InputError

    labels = source["labels"] or [str(i) for i in range(n_outputs)]
    if len(labels) != n_outputs:
        raise InputError(f"Expected {n_outputs} class names in --data 'labels' (one per model output). "
                         f"Received: {len(labels)} from {data}. Save one name per class.")
    y = source["y_eval"]
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_outputs):
        raise InputError(f"Expected labels 'y' in 0..{n_outputs - 1} (the model has {n_outputs} outputs). "
                         f"Received: values from {int(y.min())} to {int(y.max())} in {data}. Pass class indices.")
    return labels


def _keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray, data: Path) -> float:
    from edgeship.runtime import InputError

    want = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != want:
        raise InputError(
            f"The model expects inputs (N, {', '.join(map(str, want))}). Received: eval data shaped "
            f"{tuple(x.shape)} from {data}. Pass data prepared for this model."
        )
    probs = model.predict(x, batch_size=64, verbose=0)
    probs = probs[0] if isinstance(probs, list) else probs
    return top1_accuracy(probs, y)


def _load_keras_model(path: Path) -> Any:
    from edgeship.core.tf import check_keras2_model, tf_modules
    from edgeship.runtime import InputError

    if not path.exists():
        raise InputError(f"Expected --model to be a saved tf_keras model. Received: {path}, which does not exist.")
    _, keras = tf_modules()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"Expected --model to be a tf_keras model (.keras, .h5 or SavedModel). Received: {path}, which "
            f"tf_keras cannot load ({first}). Save it with tf_keras `model.save(...)` after stripping pruning wrappers."
        ) from None
    check_keras2_model(model)
    return model
