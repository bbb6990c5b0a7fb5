"""``edgeship build``: recipe -> train -> prune -> int8 -> export -> verified bundle."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gzip
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import edgeship
from edgeship._progress import say, stage
from edgeship.bundle import Manifest
from edgeship.export._report import write_reports
from edgeship.recipe import Recipe


def _evaluate(path: Path, fmt: str, precision: str, x: np.ndarray, y: np.ndarray) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]], float]:
    """Accuracy of one artifact through the runtime, its I/O description, and its macro F1."""
    from sklearn.metrics import accuracy_score

    from edgeship.runtime._load import load_file
    from edgeship.train._evaluate import macro_f1

    with load_file(path, fmt, precision=precision) as model:
        probs = model.predict(x)
        acc = float(accuracy_score(y, np.argmax(probs, axis=-1)))
        f1 = macro_f1(y, np.argmax(probs, axis=-1), probs.shape[-1])
        return acc, [t.to_json() for t in model.inputs], [t.to_json() for t in model.outputs], f1


def build(recipe: Recipe, out: str | Path) -> Path:
    """Run the whole pipeline and write the bundle to ``out`` atomically.

    Returns the bundle folder. Raises ``EdgeshipError`` subclasses on bad input;
    on any failure no bundle (and no partial file) is left at ``out``.
    """
    from edgeship import train
    from edgeship.export._bundle import check_target

    out = Path(out)
    check_target(out.absolute())  # fail before training, not after
    timings: dict[str, float] = {}
    say(f"recipe {recipe.name} (sha256 {recipe.sha256()[:12]}), bundle -> {out}")

    info = train.model_info(recipe.model.arch)  # unknown arch: RecipeError listing the zoo, before any work
    _check_task(info, recipe.data.dataset)
    work = Path(tempfile.mkdtemp(prefix="edgeship-train-"))  # checkpoint + logs; copied into out at the end
    try:
        return _build(recipe, out, timings, info, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_task(info: Any, dataset: str) -> None:
    """Fail before any work when the architecture cannot learn from the dataset."""
    from edgeship.errors import RecipeError

    if info.task != "classification":
        raise RecipeError(
            f"edgeship build trains classifiers. Received: model.arch = {info.name!r}, a {info.task} model "
            "(anomaly detection: train it on normal samples with MSE and score by reconstruction error). "
            f"Build it with edgeship.train.create_model({info.name!r}, (640,), 0) and export it with "
            "edgeship.export, or pick a classifier."
        )
    is_text = dataset.partition(":")[0] == "text"
    if is_text != (info.input_kind == "tokens"):
        want = "text_cnn" if is_text else "an image architecture such as small_cnn"
        raise RecipeError(
            f"model.arch {info.name!r} takes {info.input_kind} input, which data.dataset {dataset!r} does not give. "
            f"Received: a {'text' if is_text else 'numeric'} dataset. Use {want}."
        )


def gate_chance(what: str, accuracy: float, samples: int, base: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The chance-level gate (``edgeship.train.chance_check``) on one accuracy; raises unless allowed.

    Raises:
        ChanceLevelError: ``accuracy`` is not significantly above the majority
            baseline and ``budget.allow_chance_level`` is false.
    """
    from edgeship.errors import ChanceLevelError
    from edgeship.train._baselines import chance_check

    check = chance_check(accuracy, samples, base["majority"], recipe.budget.chance_alpha)
    if not check.passed and not recipe.budget.allow_chance_level:
        if check.required_accuracy >= 1.0 and accuracy >= 1.0:
            need = check.samples_needed()
            raise ChanceLevelError(
                f"Expected a test split large enough to show that {what} beats always answering the most frequent "
                f"class ({base['majority']:.4f}). Received: {samples} test samples, where even a perfect score is "
                f"not significant (one-sided binomial test, p = {check.p_value:.3f}, needs p < {check.alpha}). "
                f"Add data (at least {need} test samples), or set budget.allow_chance_level = true to ship anyway."
            )
        raise ChanceLevelError(
            f"Expected {what} to beat always answering the most frequent class ({base['majority']:.4f}) "
            f"significantly: at least {check.required_accuracy:.4f} on {samples} test samples "
            f"(one-sided binomial test, p < {check.alpha}). Received: accuracy {accuracy:.4f} (p = {check.p_value:.3f}); "
            f"a logistic regression on the same inputs scores {base['linear']:.4f}. Check that the labels match "
            "the data, add data, or set budget.allow_chance_level = true to ship anyway."
        )
    return check.to_json()


def _build(recipe: Recipe, out: Path, timings: dict[str, float], info: Any, work: Path) -> Path:
    from edgeship import compress, train
    from edgeship.errors import AccuracyBudgetError

    d, t = recipe.data, recipe.train
    with stage("data", timings):
        train.set_seed(recipe.seed)
        ds = train.load_dataset(
            d.dataset,
            seed=recipe.seed,
            test_fraction=d.test_fraction,
            val_fraction=d.val_fraction,
            image_size=tuple(d.image_size), color_mode=d.color_mode, rescale=d.rescale,
            text_column=d.text_column, label_column=d.label_column,
            sequence_length=d.sequence_length, vocab_size=d.vocab_size,
        )
        say(f"  {ds.name}: {len(ds.x_train)} train / {len(ds.x_val)} val / {len(ds.x_test)} test, "
            f"input {ds.input_shape}, {ds.num_classes} classes")

    options: dict[str, Any] = {"dropout": t.dropout}
    if recipe.model.arch == "mobilenet_v2":
        options["alpha"] = recipe.model.alpha
    if ds.text is not None:
        options.update(vocab_size=len(ds.text["vocabulary"]), embedding_dim=recipe.model.embedding_dim)
    augment = None
    if d.dataset.startswith("images:"):
        augment = train.make_augmenter(**d.augmentation.model_dump())
    plan = train.plan_training(
        len(ds.x_train), epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
        early_stopping_patience=t.early_stopping_patience, min_epochs=t.min_epochs, head_epochs=t.head_epochs,
        pretrained=recipe.model.weights is not None,
    )
    pretrained = None
    if recipe.model.weights is not None:
        spec, arch, alpha = recipe.model.weights, recipe.model.arch, recipe.model.alpha

        def pretrained(model: Any) -> list[str]:
            loaded = train.load_pretrained(model, spec, arch=arch, alpha=alpha)
            say(f"  pretrained weights {spec}: {len(loaded)} layer(s) loaded, {plan.head_epochs} head epoch(s) first")
            return loaded

    with stage("baselines: majority class, logistic regression", timings):
        base = train.baselines(ds, seed=recipe.seed)
        say(f"  majority {base['majority']:.4f}, linear {base['linear']:.4f} (test split)")

    with stage("train", timings):
        say(f"  {plan.epochs} epochs at most (not before {plan.min_epochs}), batch {plan.batch_size}, "
            f"lr {plan.learning_rate:.2g}, patience {plan.early_stopping_patience}"
            + (f"; from the dataset size: {', '.join(plan.auto)}" if plan.auto else ""))
        model, history = train.train_model(
            lambda: train.create_model(recipe.model.arch, ds.input_shape, ds.num_classes, **options),
            ds.x_train, ds.y_train, ds.x_val, ds.y_val,
            epochs=plan.epochs,
            batch_size=plan.batch_size,
            learning_rate=plan.learning_rate,
            lr_schedule=t.lr_schedule,
            lr_decay_rate=t.lr_decay_rate,
            l2=t.l2,
            patience=plan.early_stopping_patience,
            min_epochs=plan.min_epochs,
            seed=recipe.seed,
            strategy=t.strategy,
            mixed_precision=t.mixed_precision,
            augment=augment,
            checkpoint_path=work / "training" / "best.keras" if t.checkpoint else None,
            log_dir=work / "training" / "logs" if t.tensorboard else None,
            pretrained=pretrained,
            head_epochs=plan.head_epochs,
        )
        keras_acc = train.accuracy(model, ds.x_test, ds.y_test)
        float_val_acc = train.accuracy(model, ds.x_val, ds.y_val)
        say(f"  keras float32 test accuracy {keras_acc:.4f} (validation {float_val_acc:.4f}) "
            f"after {len(history.get('loss', []))} epoch(s)")
    gate_chance("the trained float32 Keras model", keras_acc, len(ds.y_test), base, recipe)

    budget = compress.effective_budget(recipe.budget.limit, len(ds.y_val))
    concerns: list[str] = []
    if budget is not None and recipe.budget.limit is not None and budget > recipe.budget.limit:
        concerns.append(
            f"the validation split ({len(ds.y_val)} samples) cannot resolve budget.max_accuracy_drop = "
            f"{recipe.budget.limit}; it is judged as at most one sample ({budget:.4f}). "
            "More data gives a tighter check."
        )
        say(f"WARNING: {concerns[-1]}")
    rng = np.random.default_rng(recipe.seed)
    n_cal = min(recipe.quantize.calibration_samples, len(ds.x_train))
    calibration = ds.x_train[rng.choice(len(ds.x_train), n_cal, replace=False)]

    def ship(model: Any, prune_attempts: list[Any], schedule_info: dict[str, Any] | None) -> None:
        """Evaluate the model the artifacts come from, then export, check and write the bundle."""
        sparsity = compress.sparsity_report(model) if prune_attempts else {}
        evaluation = train.evaluate(model, ds.x_test, ds.y_test, ds.labels)
        reference_acc = evaluation["accuracy"]
        say(f"  keras reference accuracy {reference_acc:.4f}, macro F1 {evaluation['macro']['f1']:.4f}"
            + ("; kernel sparsity " + ", ".join(f"{k} {v:.0%}" for k, v in sparsity.items()) if sparsity else ""))
        write_bundle(
            model, recipe, out,
            calibration=calibration, x_eval=ds.x_test, y_eval=ds.y_test,
            labels=ds.labels, preprocessing=ds.preprocessing, reference_acc=keras_acc, timings=timings,
            compress_data=compress.CompressData(
                ds.x_train, ds.y_train, ds.x_val, ds.y_val, batch_size=plan.batch_size,
                learning_rate=plan.learning_rate, seed=recipe.seed, pruned=bool(sparsity), sparsity=sparsity,
                schedule=schedule_info, reference_accuracy=float_val_acc, prune_attempts=list(prune_attempts),
            ),
            info={
                "dataset": {
                    "name": ds.name,
                    "train": len(ds.x_train), "val": len(ds.x_val), "test": len(ds.x_test),
                },
                "training": {**plan.to_json(), "epochs_run": len(history.get("loss", []))},
                "warnings": concerns,
                "metrics": {
                    "keras_float32_accuracy": keras_acc,
                    "keras_float32_val_accuracy": float_val_acc,
                    "keras_reference_accuracy": reference_acc,
                    "sparsity": sparsity,
                    "evaluation": evaluation,
                    "baselines": base,
                },
                **({"text": ds.text} if ds.text is not None else {}),
            },
        )

    pc = recipe.prune
    if not (pc.enabled and pc.target_sparsity > 0):
        ship(model, [], None)
    else:
        schedule = compress.PruneSchedule(
            kind=pc.schedule, target_sparsity=pc.target_sparsity, initial_sparsity=pc.initial_sparsity,
            begin_step=pc.begin_step, end_step=pc.end_step, frequency=pc.frequency, m_by_n=pc.m_by_n,
        )
        attempts: list[Any] = []
        missed: Exception | None = None
        shipped = False
        # One budget for the chain: a pruning is kept only when the int8 files made from it meet the
        # budget too; when they miss it, pruning backs off further.
        tries = compress.iter_prune_attempts(
            model, ds.x_train, ds.y_train, ds.x_val, ds.y_val,
            schedule=schedule,
            fine_tune_epochs=pc.fine_tune_epochs or compress.default_fine_tune_epochs(plan.steps_per_epoch),
            reference_accuracy=float_val_acc, budget=budget,
            batch_size=plan.batch_size, learning_rate=plan.learning_rate / 4, seed=recipe.seed,
            exclude=pc.exclude, augment=augment, say=say,
        )
        while not shipped:
            with stage(f"prune, attempt {len(attempts) + 1}", timings):
                tried = next(tries, None)
            if tried is None:
                downstream = f"After every pruning the budget accepted, int8 missed it; the last: {missed}" if missed else ""
                raise compress.prune_budget_error(attempts, budget, float_val_acc, downstream)
            attempt, pruned, used, epochs = tried
            attempts.append(attempt)
            if not attempt.met_budget:
                continue
            schedule_info = {
                **used.resolved(plan.steps_per_epoch, epochs).to_json(),
                "fine_tune_epochs": epochs, "exclude": list(pc.exclude),
            }
            try:
                ship(pruned, attempts, schedule_info)
                shipped = True
            except AccuracyBudgetError as exc:
                missed = exc
                attempts[-1] = dataclasses.replace(attempt, met_budget=False, rejected_by="int8 missed the budget")
                say("  the quantized files miss the budget after this pruning: pruning backs off further")
    if (work / "training").is_dir():  # checkpoint / TensorBoard logs, not part of the verified artifacts
        shutil.copytree(work / "training", out / "training", dirs_exist_ok=True)
    say(f"bundle written: {out}")
    return out


def write_bundle(
    model: Any,
    recipe: Recipe,
    out: str | Path,
    *,
    calibration: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    labels: list[str],
    preprocessing: dict[str, Any],
    reference_acc: float,
    timings: dict[str, float],
    info: dict[str, Any],
    compress_data: Any = None,
) -> Path:
    """Export ``model`` to every format/precision of ``recipe`` and write the bundle atomically.

    Variants come from ``recipe.quantize.tflite`` / ``.onnx``; full-int8 ones go
    through the accuracy-budget chain (``edgeship.compress.budget``), using
    ``compress_data`` (train/val splits, sparsity) when given.

    Each file gets the labels, preprocessing and recipe sha256 embedded before
    its sha256 is taken; then it is evaluated, checked for parity against the
    Keras model on ``x_eval`` and measured (flash, arena, RSS). Used by
    ``edgeship build`` and ``edgeship export``.

    ``reference_acc`` is the test accuracy each artifact's ``accuracy_drop`` is
    measured from: the trained float32 model before pruning, for a build. With
    ``info["metrics"]["baselines"]`` every artifact also passes the chance gate
    (:func:`gate_chance`), and one warning names those below the linear baseline.

    Raises:
        ParityError: an artifact misses its parity limits and
            ``recipe.export.allow_parity_failure`` is false; no bundle is left.
        ChanceLevelError: an artifact is not significantly above the majority
            baseline and ``recipe.budget.allow_chance_level`` is false.
    """
    from edgeship import export
    from edgeship.export._metadata import embed_metadata, metadata_dict
    from edgeship.export._parity import (
        Tolerance,
        check_artifact,
        check_cross,
        classifier_outputs,
        keras_outputs,
        raise_for,
    )
    from edgeship.runtime._ram import estimates

    out = Path(out)
    cfg = recipe.export
    tolerance = Tolerance(atol=dict(cfg.parity_atol), min_top1=cfg.parity_min_top1, min_sqnr_db=cfg.parity_min_sqnr_db)
    meta = metadata_dict(labels, preprocessing, recipe.sha256())
    reference = keras_outputs(model, x_eval)
    classifier = classifier_outputs(reference, labels)  # top-1 agreement only where outputs are class scores
    from edgeship.compress.budget import VariantMaker

    maker = VariantMaker(model, recipe, calibration, compress_data, x_eval, y_eval, say)
    base = (info.get("metrics") or {}).get("baselines")
    artifacts: list[dict[str, Any]] = []
    parity_results: list[dict[str, Any]] = []
    quantized_outputs: dict[str, dict[str, np.ndarray]] = {}
    with export.BundleWriter(out) as bundle:
        for fmt in cfg.formats:
            for precision in maker.variants(fmt):
                name = f"model.{precision}.{fmt}"
                with stage(f"export {name}", timings):
                    data = maker.make(fmt, precision, name)
                    data = embed_metadata(data, fmt, meta)  # before the sha256 is taken
                    path = bundle.write_bytes(name, data)
                with stage(f"evaluate {name}", timings):
                    acc, inputs, outputs, f1 = _evaluate(path, fmt, precision, x_eval, y_eval)
                    source = maker.source_model(name)  # a QAT artifact is checked against the QAT model
                    expected = reference if source is None else keras_outputs(source, x_eval)
                    parity, outs = check_artifact(path, fmt, precision, expected, x_eval, tolerance, classifier)
                    parity_results.append(parity)
                    if precision == "int8":
                        quantized_outputs[fmt] = outs
                    chance = None if base is None else gate_chance(name, acc, len(y_eval), base, recipe)
                    est = estimates(path, measure=cfg.measure_rss)
                    say(f"  {name}: accuracy {acc:.4f} ({acc - reference_acc:+.4f} vs keras), {len(data):,} bytes, "
                        f"parity {'ok' if parity['passed'] else 'FAILED'}, arena {est['ram_arena_bytes']:,} B")
                artifacts.append({
                    **export.file_entry(path),
                    "format": fmt,
                    "precision": precision,
                    "inputs": inputs,
                    "outputs": outputs,
                    "metrics": {
                        "accuracy": acc, "accuracy_drop": reference_acc - acc, "macro_f1": f1,
                        "gzip_bytes": len(gzip.compress(data, compresslevel=9)),
                        **({"chance_check": chance} if chance is not None else {}),
                    },
                    "parity": parity,
                    "estimates": est,
                })
        cross = None
        if {"tflite", "onnx"} <= quantized_outputs.keys():
            cross = check_cross(quantized_outputs["tflite"], quantized_outputs["onnx"],
                                label="model.int8.tflite vs model.int8.onnx", min_top1=cfg.parity_min_top1,
                                classifier=classifier)
            parity_results.append(cross)
        failures = [f for r in parity_results for f in r["failures"]]
        if failures and not cfg.allow_parity_failure:
            raise_for(parity_results)  # the writer removes the temp folder: no bundle
        new_warnings = _warnings(artifacts, base, recipe.budget.limit, len(y_eval),
                                 f"decision split ({len(maker.y_dec)} samples)")
        for line in new_warnings:
            say(f"WARNING: {line}")
        warnings = list(info.get("warnings", [])) + new_warnings
        eval_path = bundle.path("eval.npz")
        x_saved = x_eval if x_eval.dtype.kind in "iu" else x_eval.astype(np.float32)  # token ids stay integers
        np.savez_compressed(eval_path, x=x_saved, y=y_eval.astype(np.int64))
        manifest = {
            "name": recipe.name,
            "edgeship_version": edgeship.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "recipe": recipe.to_dict(),
            "recipe_sha256": recipe.sha256(),
            "labels": labels,
            "preprocessing": preprocessing,
            **info,
            "artifacts": artifacts,
            "compression": maker.manifest(),
            "budget": {
                "max_accuracy_drop": recipe.budget.limit,
                "effective_max_drop": maker.budget,
                "decision_samples": len(maker.y_dec),
                "reference": "validation top-1 of the trained float32 model before pruning",
                "reference_val_accuracy": maker.reference,
                "reference_test_accuracy": reference_acc,
                "judged_on": "validation split" if compress_data is not None and compress_data.x_val is not None
                else "eval sample",
            },
            "warnings": warnings,
            "parity": {
                "passed": not failures,
                "allowed_failure": bool(failures) and cfg.allow_parity_failure,
                "failures": failures,
                "cross_format": cross,
            },
            "eval": {**export.file_entry(eval_path), "samples": len(x_eval)},
            "timings_s": timings,
        }
        bundle.write_manifest(Manifest.new(manifest))  # typed and validated: BundleError names a bad field
        from edgeship.runtime._check import BASELINE_FILE, measure_bundle, write_baseline

        with stage("baseline: accuracy, size, latency ratio to the reference", timings):
            baseline = measure_bundle(bundle.path(""))
            write_baseline(bundle.path(BASELINE_FILE), baseline)
        write_reports(bundle.path(""), Manifest.new(manifest), baseline)  # timings now include the baseline stage
        if failures:
            say(f"  PARITY FAILED but allowed by export.allow_parity_failure: {'; '.join(failures)}")
    return out


def _warnings(artifacts: list[dict[str, Any]], base: dict[str, Any] | None, budget: float | None,
              test_samples: int, decision: str) -> list[str]:
    """One line per real concern: artifacts below the linear baseline; artifacts whose test-split drop
    exceeds the budget although the decision split (validation) met it."""
    from edgeship.compress import effective_budget

    out: list[str] = []
    if base and np.isfinite(base.get("linear", float("nan"))):
        below = [a for a in artifacts if a["metrics"]["accuracy"] < base["linear"]]
        if below:
            names = ", ".join(f"{a['file']} {a['metrics']['accuracy']:.4f}" for a in below)
            out.append(
                f"below the linear baseline ({base['linear']:.4f}, {base['linear_model']}): {names}. "
                "The network does no better than a linear model on these inputs; try more data, data.augmentation, "
                "model.weights (transfer learning) or another model.arch."
            )
    limit = effective_budget(budget, test_samples)
    if limit is not None:
        over = [a for a in artifacts if a["metrics"]["accuracy_drop"] > limit + 1e-9]
        if over:
            names = ", ".join(f"{a['file']} {a['metrics']['accuracy_drop']:+.4f}" for a in over)
            out.append(
                f"on the test split ({test_samples} samples) these artifacts lose more than the budget "
                f"({limit:.4f}) against the trained float32 model, although the {decision} met it: {names}. "
                "The decision split is too small or too easy to see the loss; more data gives a truer check."
            )
    return out


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
    import json

    from edgeship.export._bundle import check_target
    from edgeship.recipe import load_recipe
    from edgeship.runtime._errors import InputError

    out, data, model_path = Path(out), Path(data), Path(model_path)
    check_target(out.absolute())
    timings: dict[str, float] = {}
    suffix = data.suffix.lower()
    if suffix == ".toml":
        from edgeship import train

        recipe = load_recipe(data)
        d = recipe.data
        ds = train.load_dataset(  # the same splits as `edgeship build` makes from this recipe
            d.dataset, seed=recipe.seed, test_fraction=d.test_fraction, val_fraction=d.val_fraction,
            image_size=tuple(d.image_size), color_mode=d.color_mode, rescale=d.rescale,
            text_column=d.text_column, label_column=d.label_column,
            sequence_length=d.sequence_length, vocab_size=d.vocab_size,
        )
        rng = np.random.default_rng(recipe.seed)
        n_cal = min(recipe.quantize.calibration_samples, len(ds.x_train))
        calibration = ds.x_train[rng.choice(len(ds.x_train), n_cal, replace=False)]
        x_eval, y_eval, labels, preprocessing = ds.x_test, ds.y_test, list(ds.labels), dict(ds.preprocessing)
        dataset = {"name": ds.name, "train": len(ds.x_train), "val": len(ds.x_val), "test": len(ds.x_test)}
    elif suffix == ".npz":
        recipe = load_recipe(recipe_path)
        try:
            with np.load(data, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"Expected --data to be a readable .npz (np.savez). Received: {data} ({exc}).") from None
        if "x" not in arrays:
            raise InputError(f"Expected --data .npz to hold an array 'x' (eval inputs). Received keys: {sorted(arrays)}. "
                             "Save it with np.savez(path, x=..., y=...).")
        x_eval = arrays["x"].astype(np.float32) if arrays["x"].dtype.kind == "f" else arrays["x"]
        y_eval = arrays.get("y", np.zeros(len(x_eval), dtype=np.int64)).astype(np.int64)
        if "y" not in arrays and recipe.budget.limit is not None:
            say("  no labels ('y') in --data: accuracy cannot be judged, so the accuracy budget is off for this export")
            recipe = recipe.model_copy(update={"budget": recipe.budget.model_copy(update={"enabled": False})})
        rng = np.random.default_rng(recipe.seed)
        pool = arrays.get("x_calibration", x_eval)
        n_cal = min(recipe.quantize.calibration_samples, len(pool))
        calibration = pool[rng.choice(len(pool), n_cal, replace=False)]
        labels = [str(v) for v in arrays["labels"]] if "labels" in arrays else None
        preprocessing = json.loads(str(arrays["preprocessing"])) if "preprocessing" in arrays else {}
        dataset = {"name": data.name, "test": len(x_eval), "calibration_pool": len(pool)}
    else:
        raise InputError(f"Expected --data to be a recipe .toml or an .npz file. Received: {data}. Pass one of those.")

    with stage("load keras model", timings):
        model = _load_keras_model(model_path)
        want = tuple(model.input_shape[1:])
        if tuple(x_eval.shape[1:]) != want:
            raise InputError(
                f"The model expects inputs (N, {', '.join(map(str, want))}). Received: eval data shaped "
                f"{tuple(x_eval.shape)} from {data}. Pass data prepared for this model."
            )
        probs = model.predict(x_eval, batch_size=64, verbose=0)
        probs = probs[0] if isinstance(probs, list) else probs
        reference_acc = float(np.mean(np.argmax(probs.reshape(len(probs), -1), axis=1) == y_eval))
    if labels is None:
        labels = [str(i) for i in range(int(np.prod(model.output_shape[1:])))]
    say(f"exporting {model_path} (keras accuracy {reference_acc:.4f} on {len(x_eval)} eval samples) -> {out}")
    digest = hashlib.sha256()
    for f in sorted([model_path] if model_path.is_file() else [p for p in model_path.rglob("*") if p.is_file()]):
        digest.update(f.read_bytes())
    write_bundle(
        model, recipe, out,
        calibration=calibration, x_eval=x_eval, y_eval=y_eval,
        labels=labels, preprocessing=preprocessing, reference_acc=reference_acc, timings=timings,
        info={
            "source": {"keras_model": model_path.name, "keras_model_sha256": digest.hexdigest(), "data": data.name},
            "dataset": dataset,
            "metrics": {"keras_reference_accuracy": reference_acc},
        },
    )
    say(f"bundle written: {out}")
    return out


def _load_keras_model(path: Path) -> Any:
    from edgeship._tf import check_keras2_model, tf_modules
    from edgeship.runtime._errors import InputError

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
