"""The bundle's records: what ``manifest.json`` and ``baseline.json`` hold, as typed, frozen objects.

This module sits below the build side and the runtime: it imports the standard
library and :mod:`edgeship.core.errors` only (no numpy, no pydantic: the device
install has neither pydantic nor TensorFlow), so both sides read and write
bundles through the same records.

Every record has ``to_json()`` (a fresh JSON-ready dict) and
``from_json(data)`` (validates the shape and types, raises
:class:`~edgeship.core.errors.BundleError` naming the field). A key that a record
does not model is kept and written back (readers of one schema version ignore
fields added later), so ``Manifest.from_json(d).to_json() == d``.

Conventions, shared by the JSON Schema :func:`manifest_json_schema` prints:

* a field without a default is a required key; typed ``X | None`` it may be ``null``;
* a field defaulting to ``None`` is an optional key, left out when ``None``;
* SQNR values are JSON numbers in dB, at most ``SQNR_CAP_DB`` (120.0, an exact
  match), or ``null`` when undefined: never ``"inf"`` (see :mod:`edgeship.core.metrics`);
* other differences that can be non-finite (``max_abs_diff``, ``margin_threshold``)
  are numbers, or the strings ``"inf"``, ``"-inf"``, ``"nan"`` (JSON has no inf/nan).

Schema versions: ``schema_version`` 1 is the layout of edgeship 0.1. A
manifest written before ``schema_version`` existed (``"schema":
"edgeship.bundle/1"`` only) is version 1. Any other version raises
:class:`~edgeship.core.errors.SchemaVersionError`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from edgeship.core.errors import BundleError, SchemaVersionError

MANIFEST = "manifest.json"
SCHEMA = "edgeship.bundle/1"
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
BASELINE_SCHEMA = "edgeship.baseline/1"
SQNR_CAP_DB = 120.0  # the SQNR stored for an exact match, and the largest ever stored (edgeship.core.metrics.sqnr_db)
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

NonFinite = Literal["inf", "-inf", "nan"]
_SQNR_DOC = (
    "dB, 20*log10(||x|| / ||x - y||); an exact match is stored as 120.0 (the cap, never 'inf'); "
    "null when undefined (all-zero reference, or NaN/Inf outputs)"
)
R = TypeVar("R", bound="Record")
_FIX = (
    "The file was not written by this edgeship, or was edited: rebuild the bundle "
    "(a baseline.json: rewrite it with `edgeship check BUNDLE --update`)."
)


def _doc(text: str, **schema: Any) -> dict[str, Any]:
    """Field metadata: a description, and JSON Schema keywords merged into the field's schema."""
    return {"description": text, "schema": schema}


@dataclass(frozen=True, kw_only=True)
class Record:
    """Base of every record: JSON in and out, unknown keys kept in ``extra``."""

    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, metadata={"json": False})
    _where: ClassVar[str] = "record"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in _json_fields(type(self)):
            value = getattr(self, f.name)
            if value is None and _optional_key(f) and not self._written(f.name):
                continue
            out[f.name] = _dump(value)
        out.update(copy.deepcopy(dict(self.extra)))
        return out

    def _written(self, name: str) -> bool:
        """Whether an optional field is written when ``None`` (a record may override)."""
        return False

    @classmethod
    def from_json(cls: type[R], data: Any, where: str | None = None) -> R:
        where = where or cls._where
        if not isinstance(data, Mapping):
            raise _bad(where, "a JSON object", data)
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for f in _json_fields(cls):
            if f.name in data:
                values[f.name] = _parse(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif not _optional_key(f):
                raise BundleError(
                    f"Expected {where} to hold {f.name!r}. Received: keys {sorted(data)}. "
                    + _FIX
                )
        known = {f.name for f in _json_fields(cls)}
        extra = {k: copy.deepcopy(v) for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


# -- the records ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Variant(Record):
    """One exported variant: a file format and a numeric precision (``model.{precision}.{format}``)."""

    format: Literal["tflite", "onnx"]
    precision: str = field(metadata=_doc("float32, float16, int8, int16x8, ..."))

    @property
    def file(self) -> str:
        return f"model.{self.precision}.{self.format}"

    @property
    def is_float(self) -> bool:
        return is_float_precision(self.precision)


#: Every precision each format's writer makes (``edgeship.export.to_tflite`` / ``to_onnx`` + quantizers);
#: the recipe's ``quantize.tflite`` / ``quantize.onnx`` pick from these.
TFLITE_PRECISIONS = ("float32", "float16", "dynamic_int8", "int8", "int16x8")
ONNX_PRECISIONS = ("float32", "int8", "dynamic_int8")
#: Precisions whose artifacts compute in float: checked by max abs difference, the others as quantized.
FLOAT_PRECISIONS = frozenset({"float32", "float16"})


def is_float_precision(precision: str) -> bool:
    """Whether ``precision`` is one of :data:`FLOAT_PRECISIONS`."""
    return precision in FLOAT_PRECISIONS


@dataclass(frozen=True, kw_only=True)
class Quantization(Record):
    scale: float
    zero_point: int


@dataclass(frozen=True, kw_only=True)
class TensorRecord(Record):
    """A model input or output as the runtime sees it (-1: any size)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None


@dataclass(frozen=True, kw_only=True)
class ChanceCheck(Record):
    """The chance-level gate: is an accuracy significantly above always answering the majority class?"""

    rule: str
    accuracy: float
    majority: float
    samples: int
    alpha: float
    required_accuracy: float
    p_value: float
    passed: bool


@dataclass(frozen=True, kw_only=True)
class ArtifactMetrics(Record):
    accuracy: float = field(metadata=_doc(
        "top-1 accuracy on eval.npz, through the runtime (anomaly detection: accuracy of score > threshold)"))
    accuracy_drop: float = field(metadata=_doc("reference test accuracy minus accuracy"))
    macro_f1: float
    gzip_bytes: int
    chance_check: ChanceCheck | None = None
    roc_auc: float | None = field(default=None, metadata=_doc(
        "anomaly detection: ROC AUC of the anomaly score on eval.npz (anomalous = positive)"))
    roc_auc_drop: float | None = field(default=None, metadata=_doc(
        "anomaly detection: the trained float32 model's test ROC AUC minus roc_auc"))
    threshold: float | None = field(default=None, metadata=_doc(
        "anomaly detection: this file's threshold on the score (anomaly.threshold_quantile of its validation "
        "normal scores); also embedded in the file"))
    precision: float | None = field(default=None, metadata=_doc("anomaly detection: precision of score > threshold"))
    recall: float | None = field(default=None, metadata=_doc("anomaly detection: recall of score > threshold"))


@dataclass(frozen=True, kw_only=True)
class Top1Rule(Record):
    rule: str
    margin_threshold: float | NonFinite
    decisive_samples: int
    samples: int


@dataclass(frozen=True, kw_only=True)
class OutputParity(Record):
    """One output's comparison. A quantized (or cross-format) one writes SQNR and top-1 keys, null when not judged."""

    max_abs_diff: float | NonFinite
    mean_abs_diff: float | NonFinite | None = None
    atol: float | None = None
    sqnr_db: float | None = field(default=None, metadata=_doc(_SQNR_DOC, maximum=SQNR_CAP_DB))
    top1_agreement: float | None = None
    top1_rule: Top1Rule | None = None
    quantized: bool = field(default=False, metadata={"json": False})

    _QUANTIZED_KEYS: ClassVar[tuple[str, ...]] = ("sqnr_db", "top1_agreement", "top1_rule")

    def _written(self, name: str) -> bool:
        return self.quantized and name in self._QUANTIZED_KEYS

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> OutputParity:
        rec = super().from_json(data, where)
        if any(k in data for k in cls._QUANTIZED_KEYS):
            rec = dataclasses.replace(rec, quantized=True)
        return rec


@dataclass(frozen=True, kw_only=True)
class ParityResult(Record):
    """One artifact against the Keras model (``check``), or two artifacts against each other (``pair``)."""

    passed: bool
    check: Literal["float", "quantized"] | None = None
    pair: str | None = None
    limits: dict[str, float] | None = None
    outputs: dict[str, OutputParity]
    failures: tuple[str, ...]
    samples: int | None = None
    rule: str | None = field(default=None, metadata=_doc(
        "the task's parity rule when it is not the classifier's (e.g. a reconstruction output: no top-1)"))


@dataclass(frozen=True, kw_only=True)
class Estimates(Record):
    """Footprint of one artifact: file size, the engine's activation arena, weights, measured RSS."""

    flash_bytes: int
    ram_arena_bytes: int
    weights_bytes: int
    ram_arena_unknown_tensors: int | None = None
    rss_increase_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class ArtifactRecord(Record):
    """One model file of the bundle."""

    file: str = field(metadata=_doc("plain file name inside the bundle folder", pattern=r"^[^/\\]+$"))
    sha256: str = field(metadata=_doc("hex digest of the file", pattern="^[0-9a-f]{64}$"))
    bytes: int
    format: Literal["tflite", "onnx"]
    precision: str
    inputs: tuple[TensorRecord, ...] | None = None
    outputs: tuple[TensorRecord, ...] | None = None
    metrics: ArtifactMetrics | None = None
    parity: ParityResult | None = None
    estimates: Estimates | None = None

    @property
    def variant(self) -> Variant:
        return Variant(format=self.format, precision=self.precision)


@dataclass(frozen=True, kw_only=True)
class ClassScores(Record):
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, kw_only=True)
class Evaluation(Record):
    """Test-split evaluation of the model the artifacts come from."""

    accuracy: float
    artifact: str | None = None
    macro: dict[str, float]
    per_class: dict[str, ClassScores]
    confusion_matrix: tuple[tuple[int, ...], ...] = field(metadata=_doc("rows: true class, columns: predicted"))


@dataclass(frozen=True, kw_only=True)
class Baselines(Record):
    """What the network has to beat on the test split."""

    majority: float
    majority_class: int
    linear_model: str | None = None
    linear: float | None = field(default=None, metadata=_doc("test accuracy of a logistic regression on the inputs"))


@dataclass(frozen=True, kw_only=True)
class AnomalyInfo(Record):
    """Anomaly detection (``model.task = "anomaly"``): the score rule, the threshold rule and the float32 figures."""

    score: Literal["mse"] = field(metadata=_doc(
        "mse: mean over all features of (x - reconstruction(x))**2, per sample; higher is more anomalous"))
    threshold_quantile: float = field(metadata=_doc(
        "each artifact's threshold is this quantile of its scores on the validation normal samples"))
    threshold: float = field(metadata=_doc("the trained float32 Keras model's threshold"))
    roc_auc: float = field(metadata=_doc("the trained float32 Keras model's test ROC AUC"))
    precision: float
    recall: float
    validation_normals: int
    normal_classes: tuple[int, ...] | None = None
    baselines: dict[str, Any] | None = field(default=None, metadata=_doc(
        "what the network has to beat: PCA reconstruction error ROC AUC (pca_roc_auc), the rule"))
    roc_curve: dict[str, Any] | None = field(default=None, metadata=_doc(
        "float32 Keras model's test ROC curve: fpr, tpr (for the report)"))
    score_rule: str | None = field(default=None, metadata=_doc("the score rule in words"))
    accuracy: float | None = field(default=None, metadata=_doc(
        "the trained float32 Keras model's test accuracy of score > threshold"))
    validation_roc_auc: float | None = field(default=None, metadata=_doc(
        "the trained float32 Keras model's validation ROC AUC (normals and held-out anomalies)"))


@dataclass(frozen=True, kw_only=True)
class ModelMetrics(Record):
    """Accuracy of the Keras model(s) the artifacts come from (a build records all; an export the reference)."""

    keras_float32_accuracy: float | None = None
    keras_float32_val_accuracy: float | None = None
    keras_reference_accuracy: float | None = None
    sparsity: dict[str, float] | None = None
    evaluation: Evaluation | None = None
    baselines: Baselines | None = None


@dataclass(frozen=True, kw_only=True)
class DatasetInfo(Record):
    """Where the data came from and the split sizes."""

    name: str
    train: int | None = None
    val: int | None = None
    test: int
    calibration_pool: int | None = None
    val_anomalous: int | None = field(default=None, metadata=_doc("anomaly detection: anomalous validation samples"))
    test_anomalous: int | None = field(default=None, metadata=_doc("anomaly detection: anomalous test samples"))


@dataclass(frozen=True, kw_only=True)
class WorkloadRecord(Record):
    """The model's conv / depthwise / fully connected work at batch 1, from its float32 TFLite graph.

    What ``load(bundle)`` chooses a variant by on a device without a profile
    (:mod:`edgeship.runtime._choice`), recorded at build time so a load need not read the graph.
    """

    macs: int = field(metadata=_doc("multiply-accumulates per inference"))
    weights: int = field(metadata=_doc("weights of those operators"))
    reduction: float = field(metadata=_doc("MAC-weighted mean of the products summed per output value"))


@dataclass(frozen=True, kw_only=True)
class EvalFile(Record):
    """The held-out sample ``eval.npz``."""

    file: str
    sha256: str = field(metadata=_doc("hex digest of the file", pattern="^[0-9a-f]{64}$"))
    bytes: int
    samples: int


@dataclass(frozen=True, kw_only=True)
class BudgetRecord(Record):
    """How the accuracy budget was applied, on the task's metric (``metric``: accuracy, or roc_auc)."""

    max_accuracy_drop: float | None = field(metadata=_doc(
        "the recipe's budget.max_accuracy_drop: the largest drop of the task's metric allowed"))
    effective_max_drop: float | None
    decision_samples: int
    reference: str
    metric: str | None = field(default=None, metadata=_doc(
        "the task's metric the reference figures and drops are in: accuracy (top-1) or roc_auc. Absent in bundles "
        "before 0.2 (the task's metric), which wrote reference_val_accuracy / reference_test_accuracy: read as "
        "reference_val / reference_test"))
    reference_val: float | None
    reference_test: float
    judged_on: str

    _LEGACY: ClassVar[dict[str, str]] = {"reference_val_accuracy": "reference_val",
                                         "reference_test_accuracy": "reference_test"}

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> BudgetRecord:
        if isinstance(data, Mapping) and any(k in data for k in cls._LEGACY):
            data = {cls._LEGACY.get(k, k): v for k, v in data.items()}
        return super().from_json(data, where)


@dataclass(frozen=True, kw_only=True)
class PlatformArtifactParity(Record):
    """One artifact's outputs on eval.npz on a target platform against the same artifact on the build host."""

    check: Literal["float", "quantized"] = field(metadata=_doc(
        "float: judged by max_abs_diff; quantized: by sqnr_db and top1_agreement"))
    max_abs_diff: float | NonFinite
    sqnr_db: float | None = field(metadata=_doc(_SQNR_DOC, maximum=SQNR_CAP_DB))
    top1_agreement: float | None = field(metadata=_doc(
        "the lowest over the outputs holding class scores, on their decisive samples (edgeship.core.parity); "
        "null when none is judged (a reconstruction, or no decisive sample)"))
    passed: bool
    outputs: dict[str, OutputParity] | None = field(default=None, metadata=_doc(
        "per output, as build parity records it (edgeship.core.parity.compare)"))


@dataclass(frozen=True, kw_only=True)
class CrossPlatformParity(Record):
    """Every artifact run on eval.npz on a target platform (emulated: ``edgeship check --platform``) vs the host."""

    platform: str = field(metadata=_doc("the target, e.g. linux-aarch64"))
    host: str = field(metadata=_doc("the build host's platform, e.g. linux-x86_64"))
    emulated: bool = field(metadata=_doc("run under qemu user-mode emulation (outputs are the target's kernels')"))
    passed: bool
    samples: int
    limits: dict[str, float] = field(metadata=_doc(
        "float_max_abs_diff (float artifacts), min_sqnr_db and min_top1_agreement (quantized artifacts)"))
    artifacts: dict[str, PlatformArtifactParity] = field(metadata=_doc("per artifact file"))
    failures: tuple[str, ...]
    engines: dict[str, str] | None = field(default=None, metadata=_doc("package versions on the target"))
    cpu: str | None = field(default=None, metadata=_doc("the emulated CPU model (qemu -cpu), e.g. cortex-a76"))
    cpu_features: tuple[str, ...] | None = field(default=None, metadata=_doc(
        "the CPU features the engines dispatched on there (CPUID / HWCAP as numpy read them), e.g. AVX2"))


@dataclass(frozen=True, kw_only=True)
class ParitySummary(Record):
    passed: bool
    allowed_failure: bool
    failures: tuple[str, ...]
    cross_format: ParityResult | None
    cross_platform: dict[str, CrossPlatformParity] | None = field(default=None, metadata=_doc(
        "per target platform: the artifacts' outputs there against the build host's"))


@dataclass(frozen=True)
class QuantizationAttempt(Record):
    """One quantization attempt of the budget chain (``compression.quantization_attempts``); positional fields.

    ``accuracy`` and ``drop`` are the task's metric on the decision split (top-1; ROC AUC for anomaly detection).
    """

    artifact: str
    step: str
    method: str
    accuracy: float
    drop: float
    bytes: int
    met_budget: bool


@dataclass(frozen=True)
class PruneAttempt(Record):
    """One pruning attempt (``compression.prune_attempts``); positional fields."""

    step: str
    target_sparsity: float
    fine_tune_epochs: int
    fine_tune_steps: int
    accuracy: float
    drop: float
    met_budget: bool
    #: Why a later stage turned down an attempt that met the budget itself (e.g. the int8 files missed it).
    rejected_by: str = ""


@dataclass(frozen=True)
class ChannelAttempt(Record):
    """One channel-pruning attempt (``compression.channel_attempts``): the ratio kept, its size and cost, and its
    accuracy before and after fine-tuning; positional fields."""

    step: str
    channel_ratio: float
    fine_tune_epochs: int
    distilled: bool
    params: int
    macs: int
    accuracy_before_fine_tune: float
    accuracy: float
    drop: float
    met_budget: bool
    rejected_by: str = ""
    structure: Literal["channels"] = field(default="channels", kw_only=True)


@dataclass(frozen=True, kw_only=True)
class Compression(Record):
    """What pruning and quantization did (attempt tables as the compress stage writes them)."""

    sparsity: dict[str, float]
    schedule: dict[str, Any]
    prune_attempts: tuple[PruneAttempt, ...]
    quantization_attempts: tuple[QuantizationAttempt, ...]
    sqnr_db: dict[str, dict[str, float | None]] = field(metadata=_doc("per format, per layer: " + _SQNR_DOC))
    channels: dict[str, Any] | None = field(default=None, metadata=_doc(
        "structured channel pruning (prune.structure = \"channels\"): the kept model's channel report "
        "(per-layer channels before/after, parameters, MACs, int8 bytes, measured int8 latency ratio)"))
    channel_attempts: tuple[ChannelAttempt, ...] | None = field(default=None, metadata=_doc(
        "every channel-pruning attempt (ratio, fine-tune epochs, distilled, accuracy, met_budget)"))
    prune_skipped: str | None = field(default=None, metadata=_doc(
        "why the build did not prune although the recipe left prune.enabled unset (a validation split "
        "too small to resolve the budget)"))
    batchnorm_fold: dict[str, Any] | None = field(default=None, metadata=_doc(
        "BatchNorm folded into the layer before it before export: folded {bn: layer}, unfolded [bn]"))


@dataclass(frozen=True, kw_only=True)
class Manifest(Record):
    """``manifest.json``: everything a device needs to choose, verify and run an artifact.

    A device needs ``name`` and ``artifacts`` (file, sha256, bytes, format,
    precision); the build's sections (recipe, metrics, parity, ...) are
    optional, so any writer of model files can make a bundle the runtime loads
    (``BundleWriter.write_manifest``). ``edgeship build`` writes them all.
    """

    _where: ClassVar[str] = MANIFEST
    schema: Literal["edgeship.bundle/1"] = SCHEMA
    schema_version: int = field(default=SCHEMA_VERSION, metadata=_doc(
        "layout version; a reader refuses versions it does not know. Absent in bundles of edgeship "
        "before 0.1's records: read as 1", enum=list(SUPPORTED_SCHEMA_VERSIONS)))
    name: str
    edgeship_version: str | None = None
    toolchain: dict[str, str] | None = field(default=None, metadata=_doc(
        "versions of the converters and engines that made and checked the files (distribution: version)"))
    created: str | None = field(default=None, metadata=_doc("UTC time of the build, ISO 8601"))
    recipe: dict[str, Any] | None = field(default=None, metadata=_doc("the recipe as run (edgeship.recipe.Recipe)"))
    recipe_sha256: str | None = None
    task: str | None = field(default=None, metadata=_doc(
        "what the model does (edgeship.core.task): classification or anomaly. Absent in bundles before 0.2: "
        "anomaly when the manifest has an anomaly section, else classification"))
    labels: tuple[str, ...] | None = None
    preprocessing: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    dataset: DatasetInfo | None = None
    training: dict[str, Any] | None = None
    warnings: tuple[str, ...] | None = None
    metrics: ModelMetrics | None = None
    text: dict[str, Any] | None = None
    anomaly: AnomalyInfo | None = None
    artifacts: tuple[ArtifactRecord, ...] = field(metadata=_doc("one entry per model file", minItems=1))
    workload: WorkloadRecord | None = None
    compression: Compression | None = None
    budget: BudgetRecord | None = None
    parity: ParitySummary | None = None
    eval: EvalFile | None = None
    timings_s: dict[str, float] | None = None

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> Manifest:
        version = check_schema_version(data, where or MANIFEST)
        manifest = super().from_json({"schema_version": version, **data}, where)  # absent: version 1
        if not manifest.artifacts:
            raise BundleError(f"Expected {where or MANIFEST} to list at least one artifact. Received: none. Rebuild the bundle.")
        return manifest

    @classmethod
    def new(cls, fields: Mapping[str, Any]) -> Manifest:
        """A manifest in the current layout from its fields (``schema`` and ``schema_version`` added), validated."""
        return cls.from_json({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **fields})

    def label_list(self) -> list[str] | None:
        """The class names as a list (``None`` when the manifest records none)."""
        return None if self.labels is None else list(self.labels)

    def artifact(self, format: str | None = None, precision: str | None = None) -> list[ArtifactRecord]:
        """The artifacts matching ``format`` and ``precision`` (``None``: any), in manifest order."""
        return [a for a in self.artifacts
                if (format is None or a.format == format) and (precision is None or a.precision == precision)]

    def recipe_accuracy_budget(self) -> float | None:
        """The recipe's ``budget.max_accuracy_drop`` (bundles of 0.1 pre-releases: ``quantize.accuracy_budget``)."""
        for section, key in (("budget", "max_accuracy_drop"), ("quantize", "accuracy_budget")):
            part = (self.recipe or {}).get(section)
            value = part.get(key) if isinstance(part, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return None


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` as ``folder/manifest.json``, atomically (a temp file, then a rename): the one writer."""
    data = Manifest.from_json(manifest.to_json()).to_json()  # validated as any reader will
    path = Path(folder) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def check_schema_version(data: Any, where: str = MANIFEST) -> int:
    """The manifest's layout version (1 when absent); raises SchemaVersionError for one this edgeship cannot read."""
    if not isinstance(data, Mapping):
        raise _bad(where, "a JSON object", data)
    version = data.get("schema_version", 1 if data.get("schema") == SCHEMA else None)
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        got = f"schema_version {version!r}" if "schema_version" in data else f"schema {data.get('schema')!r}"
        raise SchemaVersionError(
            f"Expected a manifest schema_version this edgeship reads: {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))} "
            f"(schema {SCHEMA!r}). Received: {got} in {where}. Rebuild the bundle with this edgeship, "
            "or load it with the edgeship release that wrote it."
        )
    return int(version)


# -- baseline.json ------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BaselineArtifact(Record):
    """One artifact's recorded accuracy, size and latency ratio to the fixed reference model.

    Only ``format`` is required: the gate compares the metrics a (hand-trimmed) baseline holds.
    """

    format: Literal["tflite", "onnx"]
    precision: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    ram_bytes: int | None = None
    accuracy: float | None = None
    accuracy_error: str | None = None
    roc_auc: float | None = None
    latency_ratio: float | None = None
    latency_ratio_rounds: tuple[float, ...] | None = None
    latency_ms: dict[str, float] | None = None
    reference_ms: dict[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class Baseline(Record):
    """``baseline.json``: what ``edgeship check`` compares a bundle against."""

    _where: ClassVar[str] = "baseline.json"
    schema: Literal["edgeship.baseline/1"] = BASELINE_SCHEMA
    created: str
    bundle: str | None
    eval_samples: int
    machine: dict[str, Any]
    timing: dict[str, Any]
    reference: dict[str, dict[str, Any]]
    tolerances: dict[str, float]
    artifacts: dict[str, BaselineArtifact]


# -- JSON Schema --------------------------------------------------------------
def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``manifest.json``, derived from the records above."""
    defs: dict[str, Any] = {}
    root = _record_schema(Manifest, defs)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "edgeship bundle manifest",
        **root,
        "$defs": {k: v for k, v in sorted(defs.items()) if k != "Manifest"},
    }


def _record_schema(cls: type[Record], defs: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in _json_fields(cls):
        prop = _type_schema(hints[f.name], defs)
        meta = f.metadata or {}
        if "description" in meta:
            prop = {"description": meta["description"], **prop, **meta.get("schema", {})}
        if f.default is not dataclasses.MISSING and f.default is not None and not isinstance(f.default, tuple):
            prop["default"] = f.default
        props[f.name] = prop
        if not _optional_key(f):
            required.append(f.name)
    doc = "" if (cls.__doc__ or cls.__name__).startswith(cls.__name__ + "(") else cls.__doc__.strip().splitlines()[0]
    return {**({"description": doc} if doc else {}), "type": "object", "properties": props, "required": required,
            "additionalProperties": True}


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return {}
    if isinstance(tp, type) and issubclass(tp, Record):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # recursion guard
            defs[tp.__name__] = _record_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a, defs) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin in (dict, Mapping):
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs)}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
    return {"type": simple[tp]}


# -- machinery ----------------------------------------------------------------
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _json_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if (f.metadata or {}).get("json", True)]


def _optional_key(f: dataclasses.Field[Any]) -> bool:
    return f.default is None


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _bad(where: str, want: str, value: Any) -> BundleError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return BundleError(
        f"Expected {where} to be {want}. Received: {shown}. "
        + _FIX
    )


def _parse(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return copy.deepcopy(value)
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_json(value, where)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)] if value is not None else list(args)
        if len(arms) == 1:  # X | None holding a value: X's own error names the field inside it
            return _parse(arms[0], value, where)
        for arm in arms:
            try:
                return _parse(arm, value, where)
            except BundleError:
                continue
        raise _bad(where, " or ".join(_type_name(a) for a in args), value)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _bad(where, "one of " + ", ".join(map(repr, args)), value)
    if origin is tuple:
        if not isinstance(value, list):
            raise _bad(where, "a JSON array", value)
        return tuple(_parse(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _bad(where, "a JSON object", value)
        return {k: _parse(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _parse_simple(tp, value, where)


def _parse_simple(tp: Any, value: Any, where: str) -> Any:
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),  # JSON 1 is a number too
        type(None): value is None,
    }[tp]
    if not ok:
        raise _bad(where, _type_name(tp), value)
    return value


def _type_name(tp: Any) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number", type(None): "null"}
    if tp in names:
        return names[tp]
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    return getattr(tp, "__name__", None) or str(tp)
