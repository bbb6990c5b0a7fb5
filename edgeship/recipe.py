"""The build recipe: a TOML file validated on load, unknown keys rejected.

Needs pydantic (part of ``edgeship[build]``); the runtime never imports this.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib

from edgeship.core.bundle import ONNX_PRECISIONS, TFLITE_PRECISIONS
from edgeship.core.errors import RecipeError
from edgeship.core.tf import require

require("pydantic", "Reading a build recipe")

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator  # noqa: E402


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentationConfig(_Section):
    """Training-time image augmentation (``images:`` datasets), ranges as in Keras ImageDataGenerator.

    ``rotation`` and ``shear`` in degrees (uniform in +-value), ``zoom`` a
    fraction (scale in [1-zoom, 1+zoom]), ``horizontal_flip`` with p=0.5.
    The defaults (flip, +-10 degrees, +-10% zoom) are the usual light
    augmentation for a small folder of photos (the Keras small-data guide's
    RandomFlip + RandomRotation): on 200 photos it is worth 10-20 points of
    test accuracy. Set them to false / 0 for images that must not be mirrored
    or turned (text, digits, gauges).
    """

    shear: float = Field(0.0, ge=0.0, le=90.0)
    zoom: float = Field(0.1, ge=0.0, lt=1.0)
    horizontal_flip: bool = True
    rotation: float = Field(10.0, ge=0.0, le=180.0)


class DataConfig(_Section):
    """Which dataset, and how it is split (stratified, fixed by ``seed``).

    ``dataset``: ``"digits"``, ``"images:PATH"`` (class sub-folders, or
    ``train/`` + ``test/`` folders of them) or ``"text:PATH"`` (CSV/TSV);
    for ``model.task = "anomaly"``: ``"digits"`` with ``normal_classes`` (the
    one-class protocol) or ``"anomaly:PATH"`` (CSV or NPZ with a
    normal/anomalous label, ``edgeship.train.load_anomaly_dataset``).
    ``image_size`` / ``color_mode`` / ``rescale`` / ``augmentation`` apply to
    images; ``text_column`` / ``label_column`` / ``sequence_length`` /
    ``vocab_size`` to text (``label_column`` also to an anomaly CSV).

    ``stream`` (images): ``"auto"`` keeps a folder in memory unless its decoded
    float32 images would take more than ``stream_above_mb`` MiB, then streams
    the train and test splits from disk with ``tf.data``; ``"always"`` /
    ``"never"`` force it. ``cache_dir``: a streamed training split caches its
    decoded images in a file there (one per folder listing, size and split).
    """

    dataset: str = "digits"
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    image_size: list[int] = Field(default_factory=lambda: [32, 32], min_length=2, max_length=2)
    color_mode: Literal["rgb", "grayscale"] = "rgb"
    rescale: float = Field(1.0 / 255.0, gt=0.0)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    stream: Literal["auto", "always", "never"] = "auto"
    stream_above_mb: float = Field(512.0, gt=0.0)
    cache_dir: str | None = Field(None, min_length=1)
    text_column: str = Field("text", min_length=1)
    label_column: str = Field("label", min_length=1)
    sequence_length: int = Field(64, ge=1, le=4096)
    vocab_size: int = Field(2000, ge=3, le=1_000_000)
    normal_classes: list[int] | None = Field(None, min_length=1)

    @field_validator("normal_classes")
    @classmethod
    def _distinct(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(set(v)) != len(v) or min(v) < 0):
            raise ValueError(f"list each normal class id once, ids >= 0; got {v}")
        return v


class ModelConfig(_Section):
    """Which architecture from the model zoo, and its options (used where the architecture takes them).

    ``weights``: pretrained weights for transfer learning. ``"imagenet"``
    (``mobilenet_v2`` only, RGB 96/128/160/192/224 inputs) uses
    ``keras.applications``' own download and needs internet; ``PATH`` is a
    file saved with tf_keras ``model.save_weights`` or ``model.save``, copied
    layer by layer where names and shapes match (any zoo entry). The loaded
    layers are the base that ``train.head_epochs`` keeps frozen at first.
    """

    arch: str = "small_cnn"
    task: Literal["classification", "anomaly"] = "classification"
    weights: str | None = Field(None, min_length=1)
    alpha: float = Field(0.35, gt=0.0, le=1.4)  # mobilenet_v2 width multiplier
    width: int | None = Field(None, ge=1, le=4096)  # small_cnn filters (None: the zoo's default)
    embedding_dim: int = Field(32, ge=1)  # text_cnn


class TrainConfig(_Section):
    """Adam training with early stopping on validation loss (best weights restored).

    ``epochs``, ``batch_size``, ``learning_rate``, ``early_stopping_patience``,
    ``min_epochs`` (early stopping cannot end the run before it) and
    ``head_epochs`` (with ``model.weights``: epochs with the loaded base
    frozen) default to a rule on the training-set size
    (``edgeship.train.plan_training``; the resolved values are in
    ``manifest["training"]``). After training, BatchNorm statistics are
    re-estimated on the training inputs (``edgeship.train.recalibrate_batchnorm``).

    ``lr_schedule``: ``constant``, ``exponential`` (x ``lr_decay_rate`` per
    epoch) or ``cosine`` (to 0 over ``epochs``). ``l2`` adds ``l2 * sum(w**2)``
    for every kernel; ``dropout`` overrides the architecture's dropout rate.
    ``strategy``: ``auto`` (all visible GPUs, else CPU), ``one_device``,
    ``mirrored``, ``multi_worker`` (reads ``TF_CONFIG``). ``mixed_precision``:
    ``auto`` = mixed_float16 when a GPU is visible. ``checkpoint`` /
    ``tensorboard`` write ``training/best.keras`` / ``training/logs`` into the
    output folder.
    """

    epochs: int | None = Field(None, ge=1, le=10_000)
    batch_size: int | None = Field(None, ge=1)
    learning_rate: float | None = Field(None, gt=0.0, lt=1.0)
    early_stopping_patience: int | None = Field(None, ge=1)
    min_epochs: int | None = Field(None, ge=0)
    head_epochs: int | None = Field(None, ge=0)
    lr_schedule: Literal["constant", "exponential", "cosine"] = "constant"
    lr_decay_rate: float = Field(0.9, gt=0.0, le=1.0)
    l2: float = Field(0.0, ge=0.0, lt=1.0)
    dropout: float | None = Field(None, ge=0.0, lt=1.0)
    strategy: Literal["auto", "one_device", "mirrored", "multi_worker"] = "auto"
    mixed_precision: Literal["auto", "off", "mixed_float16"] = "auto"
    checkpoint: bool = False
    tensorboard: bool = False


class PruneConfig(_Section):
    """Magnitude pruning (tfmot ``prune_low_magnitude``) while fine-tuning, then strip.

    ``schedule``: ``"polynomial"`` (default: PolynomialDecay from
    ``initial_sparsity``, gradual pruning after Zhu & Gupta 2017; on small
    photo sets it kept the trained model's test accuracy where one-shot
    pruning lost 1-2 of 40 samples) or ``"constant"`` (ConstantSparsity at
    ``target_sparsity`` from the first step). Steps count
    optimizer steps from the start of fine-tuning; unset ``end_step`` /
    ``frequency`` are derived from the epochs (see ``compress.PruneSchedule``).
    ``m_by_n = [2, 4]`` prunes 2:4 structured. ``exclude`` lists layer names or
    class names (``"Dense"``) left dense. ``fine_tune_epochs`` unset: at least
    4 epochs and about 300 optimizer steps (``compress.backoff``). Within
    ``budget.max_accuracy_drop`` pruning backs off (longer fine-tuning, then
    lower sparsity) until the budget is met.

    ``structure = "channels"`` first removes whole channels
    (``edgeship.compress.prune_channels``: filters / units and what depends on
    them) and fine-tunes the narrower model (distilled when ``[distill]`` is
    enabled), inside the budget: when it is missed, more channels are kept.
    ``channel_ratio`` is the fraction of prunable channels kept (default 0.5);
    or ``target_latency_ratio``: the largest ratio whose int8 TFLite file runs at
    most this fraction of the unpruned int8 file's latency on this machine
    (interleaved, one thread). ``channel_ranking``: ``"l1"`` (filter L1 norm) or
    ``"bn_gamma"``. Unstructured pruning (``target_sparsity``; 0 skips it) and
    int8 then apply to the narrower model as usual.

    ``enabled`` unset (the default) prunes when the budget can see what pruning
    costs: when there is no budget, or the validation split has at least
    ``1 / budget.max_accuracy_drop`` samples (100 for 1 point). On a smaller
    split one sample is more than the budget, and a pruning loss of a few test
    samples goes unseen (measured on real photo sets: 60/60 validation images
    right before and after pruning, 2 of 84 test images lost), so the trained
    model ships unpruned and ``manifest["compression"]["prune_skipped"]`` says
    why. ``true`` prunes anyway; ``false`` never prunes.
    """

    enabled: bool | None = None
    structure: Literal["unstructured", "channels"] = "unstructured"
    channel_ratio: float | None = Field(None, gt=0.0, le=1.0)
    target_latency_ratio: float | None = Field(None, gt=0.0, lt=1.0)
    channel_ranking: Literal["l1", "bn_gamma"] = "l1"
    target_sparsity: float = Field(0.5, ge=0.0, lt=1.0)
    fine_tune_epochs: int | None = Field(None, ge=1)
    schedule: Literal["constant", "polynomial"] = "polynomial"
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0)
    begin_step: int = Field(0, ge=0)
    end_step: int | None = Field(None, ge=1)
    frequency: int | None = Field(None, ge=1)
    m_by_n: tuple[int, int] | None = None
    exclude: list[str] = Field(default_factory=list)

    @field_validator("m_by_n")
    @classmethod
    def _m_below_n(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not (0 < v[0] < v[1]):
            raise ValueError("m_by_n must be [m, n] with 0 < m < n, e.g. [2, 4]")
        return v

    @model_validator(mode="after")
    def _channel_keys(self) -> PruneConfig:
        chosen = [k for k in ("channel_ratio", "target_latency_ratio") if getattr(self, k) is not None]
        if chosen and self.structure != "channels":
            raise ValueError(f"{chosen[0]} needs structure = \"channels\"; set it, or remove {chosen[0]}")
        if len(chosen) > 1:
            raise ValueError("set channel_ratio or target_latency_ratio, not both")
        return self

    @property
    def keep_ratio(self) -> float:
        """The channel ratio in force for ``structure = "channels"`` (0.5 when neither key is set)."""
        return self.channel_ratio if self.channel_ratio is not None else 0.5


TflitePrecision = Literal[TFLITE_PRECISIONS]  # type: ignore[valid-type]  # the names live in edgeship.core.bundle
OnnxPrecision = Literal[ONNX_PRECISIONS]  # type: ignore[valid-type]


class QuantizeConfig(_Section):
    """Which precision variants each format gets, how int8 is made, and the accuracy budget.

    ``tflite`` / ``onnx`` list the variants (file ``model.<precision>.<format>``).
    TFLite int8: per-channel (``per_channel``) W8A8 with ``io_type`` I/O; ONNX
    int8: static QDQ from ``onnx_preset`` (``x86``: u8 activations / s8
    weights; ``arm64``: s8 / s8) with ``calibration_method``, and
    ``activation_type`` / ``weight_type`` overriding the preset.
    ``accuracy_budget``: the 0.1 spelling of ``budget.max_accuracy_drop``
    (used when ``[budget]`` does not set it). Within the budget the fallback
    chain runs: more calibration (``more_calibration_samples``) / other calibration
    methods, QAT (``qat``: ``auto`` = PQAT for a pruned model; ``qat_epochs``,
    ``pqat_epochs``), then up to ``max_float_layers`` lowest-SQNR layers in float.
    """

    enabled: bool = True
    calibration_samples: int = Field(256, ge=1)
    tflite: list[TflitePrecision] = Field(default_factory=lambda: ["float32", "int8"], min_length=1)
    onnx: list[OnnxPrecision] = Field(default_factory=lambda: ["float32", "int8"], min_length=1)
    per_channel: bool = True
    io_type: Literal["int8", "uint8"] = "int8"
    onnx_preset: Literal["x86", "arm64"] = "x86"
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    activation_type: Literal["int8", "uint8"] | None = None
    weight_type: Literal["int8", "uint8"] | None = None
    accuracy_budget: float | None = Field(None, ge=0.0, le=1.0)
    more_calibration_samples: int = Field(1024, ge=1)
    qat: Literal["auto", "qat", "pqat"] = "auto"
    qat_epochs: int = Field(2, ge=0)
    pqat_epochs: int = Field(2, ge=0)
    max_float_layers: int = Field(3, ge=0)

    @field_validator("tflite", "onnx")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"list each variant once; got {v}")
        return v


class BudgetConfig(_Section):
    """One accuracy budget for the whole chain, and the sanity gates.

    ``max_accuracy_drop``: every shipped artifact's top-1 accuracy may be at
    most this much below the trained float32 model's (before pruning), judged
    on the validation split. Pruning that misses it backs off (longer
    fine-tuning, then lower sparsity); int8 goes through the quantization
    fallback chain; when nothing meets it the build raises
    ``AccuracyBudgetError`` and writes no bundle. ``enabled = false`` (or
    ``max_accuracy_drop = None`` from Python) turns the budget off: pruning and
    PTQ run once, as asked, as in release 0.1.

    ``allow_chance_level``: ship even when an artifact does not beat the
    majority-class baseline significantly (one-sided exact binomial test at
    ``chance_alpha`` on the test split). Off by default: such a model is
    indistinguishable from always answering the most frequent class.
    """

    enabled: bool = True
    max_accuracy_drop: float | None = Field(0.01, ge=0.0, le=1.0)
    allow_chance_level: bool = False
    chance_alpha: float = Field(0.01, gt=0.0, lt=0.5)

    @property
    def limit(self) -> float | None:
        """The budget in force: ``max_accuracy_drop``, or None when turned off."""
        return self.max_accuracy_drop if self.enabled else None


class DistillConfig(_Section):
    """Knowledge distillation in the pruning fine-tune (``edgeship.compress.distill``).

    The teacher is the trained float32 model before pruning (``teacher =
    "self"``); the pruned student learns ``alpha * CE(labels) + (1 - alpha) *
    T^2 * KL(teacher_T || student_T)`` at temperature ``temperature``. It keeps
    the pruned model's answers close to the trained model's, which is what the
    accuracy budget measures. ``enabled = false`` fine-tunes on the labels alone.
    """

    enabled: bool = False
    teacher: Literal["self"] = "self"
    temperature: float = Field(3.0, gt=0.0)
    alpha: float = Field(0.5, ge=0.0, le=1.0)

    def spec(self) -> Any:
        """``edgeship.compress.Distillation`` for the fine-tuning steps, or ``None`` when off."""
        if not self.enabled:
            return None
        from edgeship.compress.distill import Distillation

        return Distillation(self.temperature, self.alpha)


class ExportConfig(_Section):
    """Which formats the bundle holds, and the parity limits every artifact must meet.

    Float variants: max abs diff per output <= ``parity_atol[precision]``.
    Quantized variants and TFLite-int8 vs ONNX-int8: top-1 agreement >=
    ``parity_min_top1``; quantized variants also SQNR >= ``parity_min_sqnr_db``.
    A failure fails the build unless ``allow_parity_failure`` (then the
    manifest records it). ``measure_rss`` runs each file once in a child
    process to record its peak RSS increase. ``platforms`` (``["linux-aarch64"]``)
    also runs every artifact on those targets under emulation and holds them to
    the cross-platform limits (:mod:`edgeship.crossplatform`).
    """

    formats: list[Literal["tflite", "onnx"]] = Field(default_factory=lambda: ["tflite", "onnx"], min_length=1)
    onnx_opset: int = Field(17, ge=13, le=21)
    # Parity against the Keras model on the eval sample (edgeship.export._parity).
    parity_atol: dict[str, float] = Field(default_factory=lambda: {"float32": 1e-4, "float16": 1e-2})
    parity_min_top1: float = Field(0.8, ge=0.0, le=1.0)
    parity_min_sqnr_db: float = 10.0
    allow_parity_failure: bool = False
    measure_rss: bool = True
    # Target platforms whose parity the build also checks: every artifact run there (emulated: the arm64 root,
    # `make arm-root`; the x86 CPUs under qemu-user) against this machine (edgeship.crossplatform,
    # `edgeship check --platform`). The names are edgeship.platforms.EMULATED.
    platforms: list[Literal["linux-aarch64", "linux-x86_64-avx2", "linux-x86_64-sse4"]] = Field(default_factory=list)


class AnomalyConfig(_Section):
    """Anomaly detection (``model.task = "anomaly"``): the threshold on the anomaly score.

    The score is the reconstruction error, ``mean((x - model(x))**2)`` per
    sample. ``threshold_quantile``: the threshold is this quantile of the
    validation normal samples' scores (0.95: about 5% of normal samples are
    flagged). Each artifact gets its own threshold, from its own scores.
    """

    threshold_quantile: float = Field(0.95, gt=0.0, lt=1.0)


class SearchRange(_Section):
    """A numeric range for ``edgeship search``: uniform in [low, high], or log-uniform with ``log = true``."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"a range needs low < high; got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0; got low={self.low}")
        return self


SearchChoice = list[float] | SearchRange


class SearchConfig(_Section):
    """The space ``edgeship search`` explores (Optuna); an unset key keeps the recipe's value.

    Each key is a choice list (``arch = ["small_cnn", "mlp"]``) or, for the
    numeric ones, a range table (``learning_rate = {low = 1e-4, high = 1e-2,
    log = true}``). ``width`` is small_cnn's filter count, ``alpha``
    mobilenet_v2's width multiplier, ``target_sparsity`` the pruning target,
    ``input_size`` the side of the square input images (``images:`` datasets
    only; it sets ``data.image_size = [s, s]``).
    ``build`` ignores this table.
    """

    arch: list[str] | None = Field(None, min_length=1)
    width: list[int] | None = Field(None, min_length=1)
    alpha: list[float] | None = Field(None, min_length=1)
    input_size: list[Annotated[int, Field(ge=8, le=1024)]] | None = Field(None, min_length=1)
    epochs: list[int] | None = Field(None, min_length=1)
    learning_rate: SearchChoice | None = None
    dropout: SearchChoice | None = None
    target_sparsity: SearchChoice | None = None

    def declared(self) -> dict[str, list[Any] | SearchRange]:
        """The keys that are set, in declaration order."""
        return {k: v for k in type(self).model_fields if (v := getattr(self, k)) is not None}


class Recipe(_Section):
    """A whole build. Round-trips through TOML/JSON; ``sha256`` identifies it."""

    name: str = Field("digits-small-cnn", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)

    @model_validator(mode="after")
    def _input_size_needs_images(self) -> Recipe:
        if self.search.input_size is not None and not self.data.dataset.startswith("images:"):
            raise ValueError(f"search.input_size sets data.image_size, which only images:PATH datasets have; "
                             f"received data.dataset = {self.data.dataset!r}. Remove search.input_size, or search "
                             "an images:PATH dataset")
        return self

    @model_validator(mode="after")
    def _budget_alias(self) -> Recipe:
        # quantize.accuracy_budget (release 0.1) is the whole-chain budget when [budget] does not set one.
        q = self.quantize.accuracy_budget
        if q is not None and "max_accuracy_drop" not in self.budget.model_fields_set:
            self.budget = self.budget.model_copy(update={"max_accuracy_drop": q})
        return self

    @model_validator(mode="after")
    def _anomaly_keys(self) -> Recipe:
        anomaly = self.model.task == "anomaly"
        if self.data.normal_classes is not None and not anomaly:
            raise ValueError('data.normal_classes needs model.task = "anomaly"; set it, or remove normal_classes')
        if not anomaly:
            return self
        kind = self.data.dataset.partition(":")[0]
        if kind not in ("digits", "anomaly"):
            raise ValueError(f'model.task = "anomaly" reads data.dataset "digits" (with data.normal_classes) or '
                             f'"anomaly:PATH"; got {self.data.dataset!r}')
        if kind == "digits" and self.data.normal_classes is None:
            raise ValueError('model.task = "anomaly" on "digits" needs data.normal_classes, e.g. [1]: the classes '
                             "that are normal (the others are the anomalies)")
        if kind == "anomaly" and self.data.normal_classes is not None:
            raise ValueError("data.normal_classes applies to \"digits\"; an anomaly:PATH file labels each row "
                             "normal or anomalous itself. Remove normal_classes")
        if self.prune.enabled and (self.prune.target_sparsity > 0 or self.prune.structure == "channels"):
            raise ValueError('pruning is not supported yet for model.task = "anomaly" (its fine-tuning trains '
                             "classifiers); set [prune] enabled = false")
        return self

    # -- constructors ----------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> Recipe:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecipeError(_explain(exc, source)) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Recipe:
        p = Path(path)
        if not p.is_file():
            raise RecipeError(
                f"Expected a recipe TOML file. Received: {p}, which "
                f"{'is a folder' if p.is_dir() else 'does not exist'}. "
                "Pass a path to a .toml file, or omit it for the built-in default recipe."
            )
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RecipeError(f"Expected a recipe in TOML. Received: {p}, which is not valid TOML: {exc}. "
                              "Fix the syntax.") from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def default(cls) -> Recipe:
        text = resources.files("edgeship.recipes").joinpath("default.toml").read_text(encoding="utf-8")
        return cls.from_dict(tomllib.loads(text), source="default recipe")

    # -- views -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_toml(self) -> str:
        """The recipe as TOML text that ``from_toml`` reads back equal (unset ``None`` keys are left out)."""
        return _toml_table(self.to_dict(), ())

    def sha256(self) -> str:
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


def load_recipe(path: str | Path | None) -> Recipe:
    """The recipe at ``path``, or the built-in default when ``path`` is None."""
    return Recipe.default() if path is None else Recipe.from_toml(path)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"Expected a TOML value. Received: {type(v).__name__}. Fix: recipes hold scalars, lists and tables.")


def _toml_table(data: dict[str, Any], path: tuple[str, ...]) -> str:
    """Scalars first, then one [section] per nested table (pydantic sections only; plain dicts inline)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()
             if v is not None and not (isinstance(v, dict) and _is_section(path + (k,)))]
    text = (f"[{'.'.join(path)}]\n" if path else "") + "".join(line + "\n" for line in lines)
    for k, v in data.items():
        if isinstance(v, dict) and _is_section(path + (k,)):
            text += "\n" + _toml_table(v, path + (k,))
    return text


def _is_section(path: tuple[str, ...]) -> bool:
    current: Any = Recipe
    for part in path:
        field = current.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return False
        current = field.annotation
    return True


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        current = field.annotation
    return list(current.model_fields)


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            section = ".".join(str(p) for p in loc[:-1])
            where = f"[{section}]" if section else "the top level"
            valid = ", ".join(_valid_keys(Recipe, loc))
            lines.append(f"unknown key '{key}' in {where}; valid keys there: {valid}")
        elif not loc:  # a check across sections: the message names the keys
            lines.append(str(err["msg"]).removeprefix("Value error, "))
        else:
            got = err.get("input")
            got_s = "nothing" if err["type"] == "missing" else repr(got)
            lines.append(f"'{key}': {err['msg']}; received {got_s}")
    return f"Invalid recipe ({source}): " + "; ".join(lines) + ". Fix the recipe file."
