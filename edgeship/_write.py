"""Write a verified bundle from a Keras model: every variant exported, evaluated, parity-checked, measured.

Used by ``edgeship build`` (after training and pruning) and ``edgeship export``
(a saved model). One loop over the recipe's variants; each variant is made by
:class:`edgeship.variants.VariantMaker` (int8 through the accuracy budget),
embedded with its metadata, written, evaluated through the runtime, checked
for parity against the Keras model and measured: one :class:`ArtifactRecord`
each. Then the cross-format check, the device baseline, the emulated targets,
and the manifest, built once from those records, and the reports from it.

What differs between tasks (the metric, the file's threshold, the warnings)
is a :class:`_Judge` chosen once from the task (:mod:`edgeship.core.task`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import edgeship
from edgeship.core.bundle import (
    AnomalyInfo,
    ArtifactMetrics,
    ArtifactRecord,
    Baselines,
    BudgetRecord,
    ChanceCheck,
    CrossPlatformParity,
    DatasetInfo,
    Estimates,
    EvalFile,
    Manifest,
    ModelMetrics,
    ParityResult,
    ParitySummary,
    TensorRecord,
    Variant,
    WorkloadRecord,
)
from edgeship.core.metrics import SCORE_RULE, detection_metrics, threshold_at_quantile, top1_accuracy
from edgeship.core.progress import say, stage
from edgeship.core.task import AnomalyDetection, Classification, Task, task_named
from edgeship.recipe import Recipe
from edgeship.variants import CompressData, VariantMaker

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


@dataclass(frozen=True)
class ShipData:
    """What a bundle is verified with, besides the model and the recipe.

    ``reference_acc`` is the test accuracy each artifact's ``accuracy_drop`` is
    measured from: the trained float32 model before pruning, for a build.
    ``anomaly`` (anomaly detection only): thresholds and the float32 reference AUC.
    """

    calibration: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    labels: list[str]
    preprocessing: dict[str, Any]
    reference_acc: float
    anomaly: AnomalyShip | None = None


@dataclass(frozen=True)
class BuildInfo:
    """The manifest sections the caller knows (data, training, the Keras model's figures); the writer adds the rest."""

    dataset: DatasetInfo | None = None
    training: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    metrics: ModelMetrics | None = None
    text: dict[str, Any] | None = None
    anomaly: AnomalyInfo | None = None
    source: dict[str, Any] | None = None


@dataclass
class _Verified:
    """The artifacts written so far, with their parity results and int8 outputs for the cross-format check."""

    artifacts: list[ArtifactRecord] = field(default_factory=list)
    parity: list[ParityResult] = field(default_factory=list)
    int8_outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def write_bundle(model: Any, recipe: Recipe, out: str | Path, data: ShipData, *, info: BuildInfo | None = None,
                 timings: dict[str, float] | None = None, compress_data: CompressData | None = None) -> Path:
    """Export ``model`` to every format/precision of ``recipe`` and write the bundle atomically.

    Variants come from ``recipe.quantize.tflite`` / ``.onnx``; every one goes
    through the accuracy budget (:mod:`edgeship.variants`), with
    ``compress_data`` (train/val splits, sparsity, the decision split) when given.
    Each file gets the labels, preprocessing and recipe sha256 embedded before
    its sha256 is taken; then it is evaluated, checked for parity against the
    Keras model on ``data.x_eval`` and measured (flash, arena, RSS). With
    ``info.metrics.baselines`` every artifact also passes the chance gate
    (:func:`edgeship._gates.gate_chance`), and one warning names those below the
    linear baseline. ``timings`` (stage: seconds) is filled here and written
    once, complete, into the manifest.

    Raises:
        ParityError: an artifact misses its parity limits and
            ``recipe.export.allow_parity_failure`` is false; no bundle is left.
        ChanceLevelError: an artifact is not significantly above the majority
            baseline and ``recipe.budget.allow_chance_level`` is false.
        AccuracyBudgetError: a variant misses the budget; no bundle is left.
    """
    from edgeship import export

    info = info or BuildInfo()
    timings = {} if timings is None else timings
    out = Path(out)
    maker = VariantMaker(model, recipe, data.calibration, compress_data, data.x_eval, data.y_eval, say)
    verified = _Verified()
    with export.BundleWriter(out) as bundle:
        checker = _Checker(model, recipe, data, info.metrics.baselines if info.metrics else None)
        for variant in maker.plan():
            verified.artifacts.append(_write_variant(bundle, maker, checker, variant, verified, timings))
        cross, failures = checker.cross_format(verified)
        parity = ParitySummary(passed=not failures, failures=tuple(failures), cross_format=cross,
                               allowed_failure=bool(failures) and recipe.export.allow_parity_failure)
        manifest = _manifest(bundle, recipe, data, info, maker, verified, checker, compress_data, parity)
        _finish(bundle, manifest, recipe, timings)
        if failures:
            say(f"  PARITY FAILED but allowed by export.allow_parity_failure: {'; '.join(failures)}")
    return out


def _manifest(bundle: Any, recipe: Recipe, data: ShipData, info: BuildInfo, maker: VariantMaker, verified: _Verified,
              checker: _Checker, compress_data: CompressData | None, parity: ParitySummary) -> Manifest:
    """The manifest, from the records (the timings and the emulated targets are added once they have run)."""
    warnings = tuple(info.warnings) + tuple(checker.warnings(verified.artifacts, len(maker.y_dec)))
    return Manifest(
        name=recipe.name, edgeship_version=edgeship.__version__, toolchain=toolchain(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        recipe=recipe.to_dict(), recipe_sha256=recipe.sha256(), task=checker.task.name,
        labels=tuple(data.labels), preprocessing=data.preprocessing, source=info.source, dataset=info.dataset,
        training=info.training, warnings=warnings, metrics=info.metrics, text=info.text, anomaly=info.anomaly,
        artifacts=tuple(verified.artifacts), workload=_workload(bundle, verified.artifacts),
        compression=maker.manifest(),
        budget=_budget_entry(recipe, maker, checker.judge, compress_data), parity=parity,
        eval=_write_eval(bundle, data),
    )


def _write_eval(bundle: Any, data: ShipData) -> EvalFile:
    """``eval.npz``: the held-out sample the device checks and benchmarks with."""
    from edgeship import export

    path = bundle.path("eval.npz")
    x_saved = data.x_eval if data.x_eval.dtype.kind in "iu" else data.x_eval.astype(np.float32)  # token ids stay ints
    np.savez_compressed(path, x=x_saved, y=data.y_eval.astype(np.int64))
    return EvalFile(**export.file_entry(path), samples=len(data.x_eval))


def _workload(bundle: Any, artifacts: list[ArtifactRecord]) -> WorkloadRecord | None:
    """The float32 TFLite graph's workload (``None`` without one)."""
    from edgeship.runtime import workload

    f32 = next((a.file for a in artifacts if (a.format, a.precision) == ("tflite", "float32")), None)
    work = workload(bundle.path(f32)) if f32 is not None else None
    return None if work is None else WorkloadRecord(macs=work.macs, weights=work.weights, reduction=work.reduction)


def _write_variant(bundle: Any, maker: VariantMaker, checker: _Checker, variant: Variant,
                   verified: _Verified, timings: dict[str, float]) -> ArtifactRecord:
    """Make, embed, write, evaluate, parity-check and measure one variant."""
    from edgeship import export
    from edgeship.export import embed_metadata
    from edgeship.runtime import estimates

    fmt, precision, name = variant.format, variant.precision, variant.file
    judge = checker.judge
    with stage(f"export {name}", timings):
        made = maker.make(fmt, precision, name)
        content = embed_metadata(made, fmt, judge.metadata(checker.meta, made, fmt))  # before the sha256 is taken
        path = bundle.write_bytes(name, content)
    with stage(f"evaluate {name}", timings):
        figures, inputs, outputs = judge.evaluate(path, fmt, precision)
        parity, outs = checker.parity(path, fmt, precision, maker.source_model(name))
        verified.parity.append(parity)
        if precision == "int8":
            verified.int8_outputs[fmt] = outs
        metrics = ArtifactMetrics(**figures, gzip_bytes=len(gzip.compress(content, compresslevel=9)),
                                  chance_check=checker.chance(name, figures["accuracy"]))
        est = Estimates.from_json(estimates(path, measure=checker.recipe.export.measure_rss))
        say(f"  {name}: {judge.quality_line(metrics)}, {len(content):,} bytes, "
            f"parity {'ok' if parity.passed else 'FAILED'}, arena {est.ram_arena_bytes:,} B")
    return ArtifactRecord(**export.file_entry(path), format=fmt, precision=precision, inputs=inputs,
                          outputs=outputs, metrics=metrics, parity=parity, estimates=est)


def _tensors(tensors: Any) -> tuple[TensorRecord, ...]:
    return tuple(TensorRecord.from_json(t.to_json()) for t in tensors)


class _Judge:
    """How one task's artifacts are evaluated and described (the task's part of the writer)."""

    task: ClassVar[Task]

    def __init__(self, data: ShipData) -> None:
        self.data = data

    def metadata(self, meta: dict[str, Any], content: bytes, fmt: str) -> dict[str, Any]:
        """The metadata embedded in the file."""
        return meta

    def evaluate(self, path: Path, fmt: str, precision: str
                 ) -> tuple[dict[str, Any], tuple[TensorRecord, ...], tuple[TensorRecord, ...]]:
        """The artifact's figures (``ArtifactMetrics`` keywords) through the runtime, and its inputs/outputs."""
        raise NotImplementedError

    def quality_line(self, metrics: ArtifactMetrics) -> str:
        raise NotImplementedError

    def reference_test(self) -> float:
        """The test figure of the trained float32 model the budget's drops are from."""
        return self.data.reference_acc

    def warnings(self, artifacts: list[ArtifactRecord], base: Baselines | None, budget: float | None,
                 decision: str) -> list[str]:
        from edgeship._gates import classifier_warnings

        return classifier_warnings(artifacts, base, budget, len(self.data.y_eval), decision)


class _ClassifierJudge(_Judge):
    task = Classification()

    def evaluate(self, path: Path, fmt: str, precision: str
                 ) -> tuple[dict[str, Any], tuple[TensorRecord, ...], tuple[TensorRecord, ...]]:
        from edgeship.runtime import load_file
        from edgeship.train import macro_f1

        with load_file(path, fmt, precision=precision) as model:
            probs = model.predict(self.data.x_eval)
            acc = top1_accuracy(probs, self.data.y_eval)
            f1 = macro_f1(self.data.y_eval, np.argmax(probs, axis=-1), probs.shape[-1])
            figures = {"accuracy": acc, "accuracy_drop": self.data.reference_acc - acc, "macro_f1": f1}
            return figures, _tensors(model.inputs), _tensors(model.outputs)

    def quality_line(self, metrics: ArtifactMetrics) -> str:
        return f"accuracy {metrics.accuracy:.4f} ({metrics.accuracy - self.data.reference_acc:+.4f} vs keras)"


class _AnomalyJudge(_Judge):
    """Each file carries its own threshold: the quantile of its scores on the validation normals."""

    task = AnomalyDetection()

    def __init__(self, data: ShipData) -> None:
        super().__init__(data)
        assert data.anomaly is not None
        self.anomaly = data.anomaly
        self.threshold = float("nan")  # the file being written's (metadata() comes before evaluate())

    def metadata(self, meta: dict[str, Any], content: bytes, fmt: str) -> dict[str, Any]:
        self.threshold = artifact_threshold(content, fmt, self.anomaly.x_normal_val, self.anomaly.quantile)
        return {**meta, "anomaly": {"score": SCORE_RULE, "threshold": self.threshold,
                                    "threshold_quantile": self.anomaly.quantile}}

    def evaluate(self, path: Path, fmt: str, precision: str
                 ) -> tuple[dict[str, Any], tuple[TensorRecord, ...], tuple[TensorRecord, ...]]:
        from edgeship.runtime import load_file

        with load_file(path, fmt, precision=precision) as model:
            f = detection_metrics(model.score(self.data.x_eval), self.data.y_eval, self.threshold)
            figures = {"accuracy": f["accuracy"], "accuracy_drop": self.data.reference_acc - f["accuracy"],
                       "macro_f1": f["f1"], "roc_auc": f["roc_auc"],
                       "roc_auc_drop": self.anomaly.reference_auc - f["roc_auc"], "threshold": self.threshold,
                       "precision": f["precision"], "recall": f["recall"]}
            return figures, _tensors(model.inputs), _tensors(model.outputs)

    def quality_line(self, metrics: ArtifactMetrics) -> str:
        return (f"ROC AUC {metrics.roc_auc:.4f} ({(metrics.roc_auc or 0.0) - self.anomaly.reference_auc:+.4f} vs keras), threshold "
                f"{metrics.threshold:.4g}")

    def reference_test(self) -> float:
        return self.anomaly.reference_auc

    def warnings(self, artifacts: list[ArtifactRecord], base: Baselines | None, budget: float | None,
                 decision: str) -> list[str]:
        from edgeship._gates import anomaly_warnings

        return anomaly_warnings(artifacts, self.anomaly.baselines, budget, decision)


#: The writer's part of each task, by task.
JUDGES: dict[str, type[_Judge]] = {j.task.name: j for j in (_ClassifierJudge, _AnomalyJudge)}


def artifact_threshold(content: bytes, fmt: str, x_normal: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of an artifact's scores on ``x_normal`` (validation normals), from its bytes."""
    import tempfile

    from edgeship.runtime import load_file

    with tempfile.TemporaryDirectory(prefix="edgeship-threshold-") as tmp:
        path = Path(tmp, f"artifact.{fmt}")
        path.write_bytes(content)
        with load_file(path, fmt, probe=False) as model:
            return threshold_at_quantile(model.score(x_normal), quantile)


class _Checker:
    """Parity against the Keras model's outputs, the chance gate, and the bundle's warnings."""

    def __init__(self, model: Any, recipe: Recipe, data: ShipData, base: Baselines | None) -> None:
        from edgeship.core.parity import Tolerance
        from edgeship.export import keras_outputs, metadata_dict

        cfg = recipe.export
        self.recipe, self.data, self.base = recipe, data, base
        self.task = task_named(recipe.model.task)  # chosen once, from the recipe
        self.judge = JUDGES[self.task.name](data)
        self.tolerance = Tolerance(atol=dict(cfg.parity_atol), min_top1=cfg.parity_min_top1,
                                   min_sqnr_db=cfg.parity_min_sqnr_db)
        self.meta = metadata_dict(data.labels, data.preprocessing, recipe.sha256())
        self.reference = keras_outputs(model, data.x_eval)
        self.classifier = self.task.classifier_outputs(self.reference, data.labels)  # top-1 only on class scores

    def parity(self, path: Path, fmt: str, precision: str, source: Any) -> tuple[ParityResult, dict[str, np.ndarray]]:
        """``source``: the Keras model the artifact was made from when not the float one (QAT)."""
        from edgeship.export import check_artifact, keras_outputs

        expected = self.reference if source is None else keras_outputs(source, self.data.x_eval)
        return check_artifact(path, fmt, precision, expected, self.data.x_eval, self.tolerance, self.classifier,
                              rule=self.task.parity_rule)

    def chance(self, name: str, accuracy: float) -> ChanceCheck | None:
        from edgeship._gates import gate_chance

        if self.base is None:
            return None
        return gate_chance(name, accuracy, len(self.data.y_eval), self.base, self.recipe)

    def cross_format(self, verified: _Verified) -> tuple[ParityResult | None, list[str]]:
        """The int8 TFLite vs int8 ONNX check; raises ``ParityError`` on any failure unless allowed."""
        from edgeship.core.parity import compare_pair, raise_for

        cross = None
        if {"tflite", "onnx"} <= verified.int8_outputs.keys():
            cross = compare_pair(verified.int8_outputs["tflite"], verified.int8_outputs["onnx"],
                                 label="model.int8.tflite vs model.int8.onnx",
                                 min_top1=self.recipe.export.parity_min_top1, classifier=self.classifier)
            verified.parity.append(cross)
        failures = [f for r in verified.parity for f in r.failures]
        if failures and not self.recipe.export.allow_parity_failure:
            raise_for(verified.parity)  # the writer removes the temp folder: no bundle
        return cross, failures

    def warnings(self, artifacts: list[ArtifactRecord], decision_samples: int) -> list[str]:
        lines = self.judge.warnings(artifacts, self.base, self.recipe.budget.limit,
                                    f"decision split ({decision_samples} samples)")
        for line in lines:
            say(f"WARNING: {line}")
        return lines


def _budget_entry(recipe: Recipe, maker: VariantMaker, judge: _Judge, data: CompressData | None) -> BudgetRecord:
    return BudgetRecord(
        max_accuracy_drop=recipe.budget.limit, effective_max_drop=maker.budget, decision_samples=len(maker.y_dec),
        reference=judge.task.budget_reference, metric=judge.task.metric, reference_val=maker.reference,
        reference_test=judge.reference_test(), judged_on=_judged_on(data),
    )


def _judged_on(data: CompressData | None) -> str:
    if data is None or data.x_val is None:
        return "eval sample"
    if data.y_decision is None or data.y_val is None:
        return "validation split"
    views = len(data.y_decision) // max(1, len(data.y_val)) - 1
    return f"validation split ({len(data.y_val)} samples) and {views} augmented views of each (edgeship.train.decision_set)"


def _finish(bundle: Any, manifest: Manifest, recipe: Recipe, timings: dict[str, float]) -> None:
    """Measure the device baseline and the emulated targets, then write the manifest (once complete) and the reports.

    A provisional manifest (no timings yet) goes first: the baseline and the
    targets load the bundle as a device does.
    """
    from edgeship.export import write_reports
    from edgeship.runtime import BASELINE_FILE, measure_bundle, write_baseline

    bundle.write_manifest(manifest)  # typed: the records were checked when made
    with stage("baseline: accuracy, size, latency ratio to the reference", timings):
        baseline = measure_bundle(bundle.path(""))
        write_baseline(bundle.path(BASELINE_FILE), baseline)
    targets = _cross_platform(bundle, recipe, timings)
    if targets and manifest.parity is not None:
        manifest = dataclasses.replace(manifest, parity=dataclasses.replace(manifest.parity, cross_platform=targets))
    manifest = dataclasses.replace(manifest, timings_s=dict(timings))
    bundle.write_manifest(manifest)
    write_reports(bundle.path(""), manifest, baseline)


def _cross_platform(bundle: Any, recipe: Recipe, timings: dict[str, float]) -> dict[str, CrossPlatformParity]:
    """``export.platforms``: every artifact on each target (emulated) against this machine.

    A miss raises ParityError (no bundle is left) unless ``export.allow_parity_failure``.
    """
    from edgeship.crossplatform import measure_platform, parity_error

    results: dict[str, CrossPlatformParity] = {}
    for name in recipe.export.platforms:
        with stage(f"cross-platform parity on {name} (emulated)", timings):
            result = results[name] = measure_platform(bundle.path(""), name)
        if not result.passed:
            if not recipe.export.allow_parity_failure:
                raise parity_error(bundle.path(""), result)
            say(f"  CROSS-PLATFORM PARITY FAILED but allowed by export.allow_parity_failure: {'; '.join(result.failures)}")
    return results
