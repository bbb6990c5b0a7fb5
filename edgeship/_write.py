"""Write a verified bundle from a Keras model: every variant exported, evaluated, parity-checked, measured.

Used by ``edgeship build`` (after training and pruning) and ``edgeship export``
(a saved model). One loop over the recipe's variants; each variant is made by
:class:`edgeship.variants.VariantMaker` (int8 through the accuracy budget),
embedded with its metadata, written, evaluated through the runtime, checked
for parity against the Keras model and measured. Then the cross-format check,
the manifest, the device baseline and the reports.
"""

from __future__ import annotations

import datetime as _dt
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import edgeship
from edgeship.core.bundle import Manifest, Variant
from edgeship.core.metrics import SCORE_RULE, top1_accuracy
from edgeship.core.progress import say, stage
from edgeship.export import write_reports
from edgeship.recipe import Recipe
from edgeship.variants import CompressData, VariantMaker

#: The parity rule of a reconstruction output (manifest ``parity.rule``): no class scores, so no top-1.
RECONSTRUCTION_PARITY_RULE = (
    "reconstruction output (an anomaly detector): float variants by max abs diff (atol), quantized variants by "
    "output SQNR (min_sqnr_db); top-1 agreement does not apply (the output is not class scores)"
)


#: The distributions whose versions make a bundle's files (``manifest["toolchain"]``).
TOOLCHAIN = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")


def toolchain() -> dict[str, str]:
    """The installed version of each :data:`TOOLCHAIN` distribution (the ones present).

    The converter's own provenance entry is left out of the TFLite files
    (``edgeship.export.tflite``), so this is where a file's converter version is kept.
    """
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in TOOLCHAIN:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class ShipData:
    """What a bundle is verified with, besides the model and the recipe.

    ``reference_acc`` is the test accuracy each artifact's ``accuracy_drop`` is
    measured from: the trained float32 model before pruning, for a build.
    """

    calibration: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    labels: list[str]
    preprocessing: dict[str, Any]
    reference_acc: float
    #: Anomaly detection (``model.task = "anomaly"``): thresholds and the float32 reference AUC.
    anomaly: AnomalyShip | None = None


@dataclass(frozen=True)
class AnomalyShip:
    """What an anomaly detector's artifacts are thresholded and judged with.

    ``x_normal_val``: the validation normal samples; each artifact's threshold is
    the ``quantile`` of its own scores on them. ``reference_auc``: the trained
    float32 model's test ROC AUC (each artifact's ``roc_auc_drop`` is from it).
    """

    x_normal_val: np.ndarray
    quantile: float
    reference_auc: float
    baselines: dict[str, Any] | None = None


@dataclass
class _Verified:
    """The artifacts written so far, with their parity results and int8 outputs for the cross-format check."""

    artifacts: list[dict[str, Any]] = field(default_factory=list)
    parity: list[dict[str, Any]] = field(default_factory=list)
    int8_outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _workload(bundle: Any, artifacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The float32 TFLite graph's :class:`~edgeship.runtime._choice.Workload` (``None`` without one)."""
    from edgeship.runtime import workload

    f32 = next((a["file"] for a in artifacts if (a["format"], a["precision"]) == ("tflite", "float32")), None)
    work = workload(bundle.path(f32)) if f32 is not None else None
    return None if work is None else {"macs": work.macs, "weights": work.weights, "reduction": work.reduction}


def evaluate_artifact(path: Path, fmt: str, precision: str, x: np.ndarray,
                      y: np.ndarray) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]], float]:
    """Accuracy of one artifact through the runtime, its I/O description, and its macro F1."""
    from edgeship.runtime import load_file
    from edgeship.train import macro_f1

    with load_file(path, fmt, precision=precision) as model:
        probs = model.predict(x)
        acc = top1_accuracy(probs, y)
        f1 = macro_f1(y, np.argmax(probs, axis=-1), probs.shape[-1])
        return acc, [t.to_json() for t in model.inputs], [t.to_json() for t in model.outputs], f1


def anomaly_metrics(path: Path, fmt: str, precision: str, x: np.ndarray, y: np.ndarray, threshold: float,
                    ) -> tuple[dict[str, float], list[dict[str, Any]], list[dict[str, Any]]]:
    """An anomaly detector's ROC AUC and threshold figures through the runtime, and its I/O description."""
    from edgeship.core.metrics import detection_metrics
    from edgeship.runtime import load_file

    with load_file(path, fmt, precision=precision) as model:
        figures = detection_metrics(model.score(x), y, threshold)
        return figures, [t.to_json() for t in model.inputs], [t.to_json() for t in model.outputs]


def artifact_threshold(content: bytes, fmt: str, x_normal: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of an artifact's scores on ``x_normal`` (validation normals), from its bytes."""
    import tempfile

    from edgeship.core.metrics import threshold_at_quantile
    from edgeship.runtime import load_file

    with tempfile.TemporaryDirectory(prefix="edgeship-threshold-") as tmp:
        path = Path(tmp, f"artifact.{fmt}")
        path.write_bytes(content)
        with load_file(path, fmt, probe=False) as model:
            return threshold_at_quantile(model.score(x_normal), quantile)


def write_bundle(model: Any, recipe: Recipe, out: str | Path, data: ShipData, *, info: dict[str, Any],
                 timings: dict[str, float] | None = None, compress_data: CompressData | None = None) -> Path:
    """Export ``model`` to every format/precision of ``recipe`` and write the bundle atomically.

    Variants come from ``recipe.quantize.tflite`` / ``.onnx``; every one goes
    through the accuracy budget (:mod:`edgeship.variants`), with
    ``compress_data`` (train/val splits, sparsity, the decision split) when given.
    Each file gets the labels, preprocessing and recipe sha256 embedded before
    its sha256 is taken; then it is evaluated, checked for parity against the
    Keras model on ``data.x_eval`` and measured (flash, arena, RSS). With
    ``info["metrics"]["baselines"]`` every artifact also passes the chance gate
    (:func:`edgeship.build.gate_chance`), and one warning names those below the
    linear baseline.

    Raises:
        ParityError: an artifact misses its parity limits and
            ``recipe.export.allow_parity_failure`` is false; no bundle is left.
        ChanceLevelError: an artifact is not significantly above the majority
            baseline and ``recipe.budget.allow_chance_level`` is false.
        AccuracyBudgetError: a variant misses the budget; no bundle is left.
    """
    from edgeship import export

    timings = {} if timings is None else timings
    out = Path(out)
    maker = VariantMaker(model, recipe, data.calibration, compress_data, data.x_eval, data.y_eval, say)
    verified = _Verified()
    with export.BundleWriter(out) as bundle:
        checker = _Checker(model, recipe, data, (info.get("metrics") or {}).get("baselines"))
        for variant in maker.plan():
            _write_variant(bundle, maker, checker, variant, verified, timings)
        cross, failures = checker.cross_format(verified)
        warnings = list(info.get("warnings", [])) + checker.warnings(verified.artifacts, len(maker.y_dec))
        eval_path = bundle.path("eval.npz")
        x_saved = data.x_eval if data.x_eval.dtype.kind in "iu" else data.x_eval.astype(np.float32)  # token ids stay ints
        np.savez_compressed(eval_path, x=x_saved, y=data.y_eval.astype(np.int64))
        manifest = {
            "name": recipe.name,
            "edgeship_version": edgeship.__version__,
            "toolchain": toolchain(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "recipe": recipe.to_dict(),
            "recipe_sha256": recipe.sha256(),
            "labels": data.labels,
            "preprocessing": data.preprocessing,
            **info,
            "artifacts": verified.artifacts,
            "workload": _workload(bundle, verified.artifacts),
            "compression": maker.manifest(),
            "budget": _budget_entry(recipe, maker, data.reference_acc, compress_data, data.anomaly),
            "warnings": warnings,
            "parity": {"passed": not failures, "allowed_failure": bool(failures) and recipe.export.allow_parity_failure,
                       "failures": failures, "cross_format": cross},
            "eval": {**export.file_entry(eval_path), "samples": len(data.x_eval)},
            "timings_s": timings,
        }
        _finish(bundle, manifest, timings)
        _cross_platform(bundle, recipe, timings)
        if failures:
            say(f"  PARITY FAILED but allowed by export.allow_parity_failure: {'; '.join(failures)}")
    return out


def _write_variant(bundle: Any, maker: VariantMaker, checker: _Checker, variant: Variant,
                   verified: _Verified, timings: dict[str, float]) -> None:
    """Make, embed, write, evaluate, parity-check and measure one variant."""
    from edgeship import export
    from edgeship.export import embed_metadata
    from edgeship.runtime import estimates

    fmt, precision, name = variant.format, variant.precision, variant.file
    anomaly = checker.data.anomaly
    with stage(f"export {name}", timings):
        made, meta = maker.make(fmt, precision, name), checker.meta
        if anomaly is not None:  # this file's own threshold travels inside it
            threshold = artifact_threshold(made, fmt, anomaly.x_normal_val, anomaly.quantile)
            meta = {**meta, "anomaly": {"score": SCORE_RULE, "threshold": threshold,
                                        "threshold_quantile": anomaly.quantile}}
        data = embed_metadata(made, fmt, meta)  # before the sha256 is taken
        path = bundle.write_bytes(name, data)
    with stage(f"evaluate {name}", timings):
        extra: dict[str, Any] = {}
        if anomaly is not None:
            figures, inputs, outputs = anomaly_metrics(path, fmt, precision, checker.data.x_eval,
                                                       checker.data.y_eval, threshold)
            acc, f1 = figures["accuracy"], figures["f1"]
            extra = {"roc_auc": figures["roc_auc"], "roc_auc_drop": anomaly.reference_auc - figures["roc_auc"],
                     "threshold": threshold, "precision": figures["precision"], "recall": figures["recall"]}
        else:
            acc, inputs, outputs, f1 = evaluate_artifact(path, fmt, precision, checker.data.x_eval,
                                                         checker.data.y_eval)
        parity, outs = checker.parity(path, fmt, precision, maker.source_model(name))
        verified.parity.append(parity)
        if precision == "int8":
            verified.int8_outputs[fmt] = outs
        chance = checker.chance(name, acc)
        est = estimates(path, measure=checker.recipe.export.measure_rss)
        quality = (f"ROC AUC {extra['roc_auc']:.4f} ({-extra['roc_auc_drop']:+.4f} vs keras), threshold "
                   f"{threshold:.4g}" if extra else f"accuracy {acc:.4f} ({acc - checker.data.reference_acc:+.4f} vs keras)")
        say(f"  {name}: {quality}, {len(data):,} bytes, "
            f"parity {'ok' if parity['passed'] else 'FAILED'}, arena {est['ram_arena_bytes']:,} B")
    verified.artifacts.append({
        **export.file_entry(path),
        "format": fmt,
        "precision": precision,
        "inputs": inputs,
        "outputs": outputs,
        "metrics": {
            "accuracy": acc, "accuracy_drop": checker.data.reference_acc - acc, "macro_f1": f1,
            "gzip_bytes": len(gzip.compress(data, compresslevel=9)),
            **({"chance_check": chance} if chance is not None else {}),
            **extra,
        },
        "parity": parity,
        "estimates": est,
    })


class _Checker:
    """Parity against the Keras model's outputs, the chance gate, and the bundle's warnings."""

    def __init__(self, model: Any, recipe: Recipe, data: ShipData, base: dict[str, Any] | None) -> None:
        from edgeship.export import Tolerance, classifier_outputs, keras_outputs, metadata_dict

        cfg = recipe.export
        self.recipe, self.data, self.base = recipe, data, base
        self.tolerance = Tolerance(atol=dict(cfg.parity_atol), min_top1=cfg.parity_min_top1,
                                   min_sqnr_db=cfg.parity_min_sqnr_db)
        self.meta = metadata_dict(data.labels, data.preprocessing, recipe.sha256())
        self.reference = keras_outputs(model, data.x_eval)
        self.classifier = classifier_outputs(self.reference, data.labels)  # top-1 only where outputs are class scores

    def parity(self, path: Path, fmt: str, precision: str, source: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``source``: the Keras model the artifact was made from when not the float one (QAT)."""
        from edgeship.export import check_artifact, keras_outputs

        expected = self.reference if source is None else keras_outputs(source, self.data.x_eval)
        result, outs = check_artifact(path, fmt, precision, expected, self.data.x_eval, self.tolerance,
                                      self.classifier)
        if self.data.anomaly is not None:
            result["rule"] = RECONSTRUCTION_PARITY_RULE
        return result, outs

    def chance(self, name: str, accuracy: float) -> dict[str, Any] | None:
        from edgeship._gates import gate_chance

        if self.base is None:
            return None
        return gate_chance(name, accuracy, len(self.data.y_eval), self.base, self.recipe)

    def cross_format(self, verified: _Verified) -> tuple[dict[str, Any] | None, list[str]]:
        """The int8 TFLite vs int8 ONNX check; raises ``ParityError`` on any failure unless allowed."""
        from edgeship.export import check_cross, raise_for

        cross = None
        if {"tflite", "onnx"} <= verified.int8_outputs.keys():
            cross = check_cross(verified.int8_outputs["tflite"], verified.int8_outputs["onnx"],
                                label="model.int8.tflite vs model.int8.onnx",
                                min_top1=self.recipe.export.parity_min_top1, classifier=self.classifier)
            verified.parity.append(cross)
        failures = [f for r in verified.parity for f in r["failures"]]
        if failures and not self.recipe.export.allow_parity_failure:
            raise_for(verified.parity)  # the writer removes the temp folder: no bundle
        return cross, failures

    def warnings(self, artifacts: list[dict[str, Any]], decision_samples: int) -> list[str]:
        from edgeship._gates import bundle_warnings

        anomaly = self.data.anomaly
        lines = bundle_warnings(artifacts, self.base, self.recipe.budget.limit, len(self.data.y_eval),
                                f"decision split ({decision_samples} samples)",
                                anomaly_baselines=anomaly.baselines if anomaly is not None else None)
        for line in lines:
            say(f"WARNING: {line}")
        return lines


def _budget_entry(recipe: Recipe, maker: VariantMaker, reference_acc: float, data: CompressData | None,
                  anomaly: AnomalyShip | None = None) -> dict[str, Any]:
    return {
        "max_accuracy_drop": recipe.budget.limit,
        "effective_max_drop": maker.budget,
        "decision_samples": len(maker.y_dec),
        "reference": "validation ROC AUC (normal samples and held-out anomalies) of the trained float32 model"
        if anomaly is not None else "validation top-1 of the trained float32 model before pruning",
        "reference_val_accuracy": maker.reference,
        "reference_test_accuracy": anomaly.reference_auc if anomaly is not None else reference_acc,
        "judged_on": _judged_on(data),
    }


def _judged_on(data: CompressData | None) -> str:
    if data is None or data.x_val is None:
        return "eval sample"
    if data.y_decision is None or data.y_val is None:
        return "validation split"
    views = len(data.y_decision) // max(1, len(data.y_val)) - 1
    return f"validation split ({len(data.y_val)} samples) and {views} augmented views of each (edgeship.train.decision_set)"


def _cross_platform(bundle: Any, recipe: Recipe, timings: dict[str, float]) -> None:
    """``export.platforms``: every artifact on each target (emulated) against this machine, recorded in the manifest.

    A miss raises ParityError (no bundle is left) unless ``export.allow_parity_failure``.
    """
    from edgeship.core.errors import ParityError
    from edgeship.crossplatform import check_platform

    for name in recipe.export.platforms:
        with stage(f"cross-platform parity on {name} (emulated)", timings):
            try:
                check_platform(bundle.path(""), name)
            except ParityError as exc:
                if not recipe.export.allow_parity_failure:
                    raise
                say(f"  CROSS-PLATFORM PARITY FAILED but allowed by export.allow_parity_failure: {exc}")


def _finish(bundle: Any, manifest: dict[str, Any], timings: dict[str, float]) -> None:
    """Write the manifest, measure the device baseline, write the reports."""
    from edgeship.runtime import BASELINE_FILE, measure_bundle, write_baseline

    bundle.write_manifest(Manifest.new(manifest))  # typed and validated: BundleError names a bad field
    with stage("baseline: accuracy, size, latency ratio to the reference", timings):
        baseline = measure_bundle(bundle.path(""))
        write_baseline(bundle.path(BASELINE_FILE), baseline)
    write_reports(bundle.path(""), Manifest.new(manifest), baseline)  # timings now include the baseline stage
