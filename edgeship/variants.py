"""Every artifact variant a recipe selects, made by export's converters and held to the accuracy budget.

This is the orchestrator's side of accuracy-aware quantization: it owns the
converters and quantizers (``edgeship.export``), evaluates candidates through
the runtime, and drives :func:`edgeship.compress.budget.meet_budget`.

For each full-int8 artifact (``model.int8.tflite``, ``model.int8.onnx``) the
steps below run in order and stop at the first whose absolute top-1 drop
against the trained float32 model (before pruning: ``CompressData.reference_accuracy``)
is at most ``budget.max_accuracy_drop``, the one budget of the whole chain:

1. ``ptq_per_channel``: post-training quantization, per-channel weights.
2. ``more_calibration``: the same with ``quantize.more_calibration_samples``;
   ``other_calibration`` (ONNX): the other calibration methods
   (MinMax / Entropy / Percentile).
3. ``qat``: quantization-aware fine-tuning (PQAT for a pruned model, so its
   zeros survive).
4. ``float_fallback``: the 1..``max_float_layers`` layers with the lowest
   per-layer SQNR kept in float (TFLite: the quantization debugger's
   denylist; ONNX: ``nodes_to_exclude``).

Every other variant (float32, float16, dynamic_int8, int16x8) is one
``export`` attempt held to the same budget. Every attempt is recorded
(:class:`~edgeship.compress.Attempt`). When none meets the budget,
``AccuracyBudgetError`` carries the table. Without a budget only step 1 runs.
Accuracy is measured through the runtime on the budget's decision split
(validation, never the test split the bundle reports); without a
``reference_accuracy`` the reference is the Keras model the artifacts come from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress.budget import Attempt, Step, effective_budget, meet_budget
from edgeship.core.bundle import Compression, Variant
from edgeship.core.metrics import top1_accuracy
from edgeship.core.task import Classification, Task, task_named


@dataclass
class CompressData:
    """What the quantization steps need beyond the model: data and training settings."""

    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    pruned: bool = False
    sparsity: dict[str, float] = field(default_factory=dict)
    schedule: dict[str, Any] | None = None
    #: Validation top-1 of the trained float32 model before pruning; the budget's reference.
    reference_accuracy: float | None = None
    prune_attempts: list[Any] = field(default_factory=list)
    #: Structured channel pruning: ``{"report": ..., "attempts": [...]}`` when ``prune.structure = "channels"``.
    channels: dict[str, Any] | None = None
    #: Why pruning was skipped although the recipe left ``prune.enabled`` unset.
    prune_skipped: str | None = None
    #: The budget's decision set when it is not the validation split itself (``edgeship.train.decision_set``).
    x_decision: np.ndarray | None = None
    y_decision: np.ndarray | None = None


def artifact_accuracy(data: bytes, fmt: str, x: np.ndarray, y: np.ndarray, task: Task | None = None) -> float:
    """The task's metric (top-1 accuracy; anomaly detection: ROC AUC of the score) of the artifact ``data`` on ``(x, y)``."""
    from edgeship.core.tf import quiet_engine
    from edgeship.runtime import load_file

    task = task or Classification()
    with tempfile.TemporaryDirectory(prefix="edgeship-attempt-") as tmp:
        path = Path(tmp, f"attempt.{fmt}")
        path.write_bytes(data)
        with quiet_engine(), load_file(path, fmt) as model:  # LiteRT prints its XNNPACK line on first load
            return task.quality(model, x, y)


def calibration_sample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows of ``x`` (all when fewer), drawn without replacement with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.asarray(x[rng.choice(len(x), min(n, len(x)), replace=False)])  # decodes only these rows when streamed


class VariantMaker:
    """Makes every artifact variant a recipe selects, int8 through the budget chain.

    Args:
        model: the float32 tf_keras model (after pruning, if any).
        recipe: the build recipe (``quantize`` and ``export`` sections are read).
        calibration: calibration inputs (``quantize.calibration_samples`` rows).
        data: training / validation data for QAT and the budget decision; when
            it has no validation split, ``x_eval`` / ``y_eval`` decide instead.
    """

    def __init__(
        self,
        model: Any,
        recipe: Any,
        calibration: np.ndarray,
        data: CompressData | None,
        x_eval: np.ndarray,
        y_eval: np.ndarray,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        from edgeship.compress.fold import fold_batchnorm

        # BatchNorm folded into the Dense / Conv before it, on the final float model (after pruning;
        # per-channel scaling keeps its zeros): both converters see one layer instead of two.
        self.model, self.fold = fold_batchnorm(model)
        self.recipe = recipe
        self.task = task_named(recipe.model.task)  # the budget's metric: top-1, or ROC AUC for anomaly detection
        self.q = recipe.quantize
        self.calibration = calibration
        self.data = data or CompressData()
        self.say = say
        if self.data.x_decision is not None and self.data.y_decision is not None:
            self.x_dec, self.y_dec = self.data.x_decision, self.data.y_decision
        elif self.data.x_val is not None and self.data.y_val is not None:
            self.x_dec, self.y_dec = self.data.x_val, self.data.y_val
        else:
            self.x_dec, self.y_dec = x_eval, y_eval
        self.attempts: list[Attempt] = []
        self.sqnr_db: dict[str, dict[str, float]] = {}
        self._reference: float | None = None
        self._float_onnx: bytes | None = None
        self._qat_model: Any = None

    # -- what to make ----------------------------------------------------
    def plan(self) -> list[Variant]:
        """Every variant to make, in order: per ``export.formats``, the recipe's precisions (float32 alone
        when ``quantize.enabled`` is false)."""
        return [Variant(format=fmt, precision=p) for fmt in self.recipe.export.formats
                for p in (["float32"] if not self.q.enabled else self.q.tflite if fmt == "tflite" else self.q.onnx)]

    @property
    def budget(self) -> float | None:
        """``budget.max_accuracy_drop`` as the decision split can resolve it (:func:`effective_budget`)."""
        if not self.task.one_sample_floor:  # ROC AUC moves in steps of 1 / (normals x anomalies)
            return self.recipe.budget.limit
        views = self.data.y_decision is not None and self.data.y_val is not None
        # Augmented views of one image are not independent samples: the floor stays one validation image.
        return effective_budget(self.recipe.budget.limit, len(self.data.y_val) if views else len(self.y_dec))

    @property
    def reference(self) -> float:
        """Top-1 on the decision split of the trained float32 model before pruning (else the model given)."""
        if self._reference is None:
            if self.data.reference_accuracy is not None:
                self._reference = float(self.data.reference_accuracy)
            else:
                probs = self.model.predict(self.x_dec, verbose=0, batch_size=256)
                self._reference = top1_accuracy(probs, self.y_dec)
        return self._reference

    def float_onnx(self) -> bytes:
        from edgeship import export

        if self._float_onnx is None:
            self._float_onnx = export.to_onnx(self.model, self.recipe.export.onnx_opset)
        return self._float_onnx

    def onnx_config(self) -> Any:
        from edgeship.export.onnx import OnnxQuantConfig

        changes: dict[str, Any] = {"calibration": self.q.calibration_method, "per_channel": self.q.per_channel}
        if self.q.activation_type:
            changes["activation_type"] = self.q.activation_type
        if self.q.weight_type:
            changes["weight_type"] = self.q.weight_type
        return OnnxQuantConfig.preset(self.q.onnx_preset, **changes)

    def make(self, fmt: str, precision: str, artifact: str) -> bytes:
        """The bytes of one variant; ``int8`` goes through the budget chain."""
        # Through the package, so a build script (or a test) can swap a converter in one place.
        from edgeship import export

        if fmt == "tflite":
            if precision == "int8":
                return self._chain("tflite", artifact, self._tflite_steps())
            cal = self.calibration if precision == "int16x8" else None
            return self._single("tflite", artifact, precision, lambda: export.to_tflite(self.model, precision, cal))
        if precision == "float32":
            return self._single("onnx", artifact, precision, self.float_onnx)
        if precision == "dynamic_int8":
            return self._single("onnx", artifact, precision,
                                lambda: export.quantize_onnx_dynamic(self.float_onnx()))
        if precision == "int8":
            return self._chain("onnx", artifact, self._onnx_steps())
        raise ValueError(f"Unknown ONNX precision {precision!r}. Valid names: float32, int8, dynamic_int8.")

    def manifest(self) -> Compression:
        """``manifest.compression``: what pruning and quantization did, with every attempt."""
        channels = self.data.channels
        return Compression(
            sparsity=dict(self.data.sparsity), schedule=self.data.schedule or {},
            prune_attempts=tuple(self.data.prune_attempts), quantization_attempts=tuple(self.attempts),
            sqnr_db={k: dict(v) for k, v in self.sqnr_db.items()}, batchnorm_fold=self.fold.to_json(),
            channels=channels["report"] if channels else None,
            channel_attempts=tuple(channels["attempts"]) if channels else None,
            prune_skipped=self.data.prune_skipped or None,
        )

    # -- the chain -------------------------------------------------------
    def _chain(self, fmt: str, artifact: str, steps: Iterator[Step]) -> bytes:
        x, y, task = self.x_dec, self.y_dec, self.task
        return meet_budget(
            artifact, steps, lambda b: artifact_accuracy(b, fmt, x, y, task), self.reference, self.budget,
            self.attempts, self.say, task.metric_label,
        )

    def _single(self, fmt: str, artifact: str, precision: str, make: Callable[[], bytes]) -> bytes:
        """A variant with one way to make it, held to the same budget."""
        return self._chain(fmt, artifact, iter([("export", f"{precision} conversion", make)]))

    def _more_calibration(self) -> np.ndarray | None:
        x = self.data.x_train
        n = self.q.more_calibration_samples
        if x is None or n <= len(self.calibration):
            return None
        rng = np.random.default_rng(self.data.seed + 1)
        return np.asarray(x[rng.permutation(len(x))[: min(n, len(x))]]) if len(x) > len(self.calibration) else None

    def _qat_scheme(self) -> tuple[str, int]:
        scheme = self.q.qat
        if scheme == "auto":
            scheme = "pqat" if self.data.pruned else "qat"
        return scheme, self.q.pqat_epochs if scheme == "pqat" else self.q.qat_epochs

    def source_model(self, artifact: str) -> Any:
        """The Keras model an artifact was made from when it is not the float model (QAT), else None."""
        chosen = [a for a in self.attempts if a.artifact == artifact and a.met_budget]
        if chosen and chosen[-1].step == "qat":
            return self._qat()
        return None

    def _qat(self) -> Any:
        from edgeship.compress.qat import named_like, quantize_aware

        if self._qat_model is None:
            scheme, epochs = self._qat_scheme()
            d = self.data
            self._qat_model = quantize_aware(
                self.model, d.x_train, d.y_train, d.x_val, d.y_val,
                scheme=scheme, epochs=epochs, batch_size=d.batch_size,  # type: ignore[arg-type]
                learning_rate=d.learning_rate / 10, seed=d.seed,
            )
            self._qat_model = named_like(self._qat_model, self.model)
        return self._qat_model

    def _can_qat(self) -> bool:
        d = self.data
        return d.x_train is not None and d.x_val is not None and self._qat_scheme()[1] > 0

    def _tflite_steps(self) -> Iterator[Step]:
        from edgeship import export
        from edgeship.export import tflite_sqnr

        to_tflite = export.to_tflite

        m, q, cal = self.model, self.q, self.calibration
        pc = "per-channel" if q.per_channel else "per-tensor"
        if "tflite" not in self.sqnr_db:
            self.sqnr_db["tflite"] = tflite_sqnr(m, cal, per_channel=q.per_channel)
        yield ("ptq_per_channel", f"PTQ {pc}, {len(cal)} calibration samples, {q.io_type} I/O",
               lambda: to_tflite(m, "int8", cal, per_channel=q.per_channel, io_type=q.io_type))
        more = self._more_calibration()
        if more is not None:
            yield ("more_calibration", f"PTQ {pc}, {len(more)} calibration samples",
                   lambda: to_tflite(m, "int8", more, per_channel=q.per_channel, io_type=q.io_type))
        if self._can_qat():
            scheme, epochs = self._qat_scheme()
            yield ("qat", f"{scheme.upper()} {epochs} epoch(s), then int8 conversion",
                   lambda: to_tflite(self._qat(), "int8", cal, io_type=q.io_type))
        for k, names in _fallback_groups(self.sqnr_db["tflite"], q.max_float_layers):
            yield ("float_fallback", f"PTQ {pc} with {k} lowest-SQNR layer(s) in float: {', '.join(names)}",
                   lambda names=names: to_tflite(m, "int8", cal, per_channel=q.per_channel, float_layers=names))

    def _onnx_steps(self) -> Iterator[Step]:
        from edgeship import export
        from edgeship.export import onnx_sqnr
        from edgeship.export.onnx import preprocess_onnx

        quantize_onnx, to_onnx = export.quantize_onnx, export.to_onnx

        cfg, cal = self.onnx_config(), self.calibration
        first = quantize_onnx(self.float_onnx(), cal, cfg)
        if "onnx" not in self.sqnr_db:
            self.sqnr_db["onnx"] = onnx_sqnr(preprocess_onnx(self.float_onnx()), first, cal[:32])
        yield ("ptq_per_channel", f"{cfg.describe()}, {len(cal)} calibration samples", lambda: first)
        more = self._more_calibration()
        if more is not None:
            yield ("more_calibration", f"{cfg.describe()}, {len(more)} calibration samples",
                   lambda: quantize_onnx(self.float_onnx(), more, cfg))
        for method in ("minmax", "entropy", "percentile"):
            if method != cfg.calibration:
                other = replace(cfg, calibration=method)
                yield ("other_calibration", f"{other.describe()}, {len(cal)} calibration samples",
                       lambda other=other: quantize_onnx(self.float_onnx(), cal, other))
        if self._can_qat():
            from edgeship.compress.qat import qat_float_weights

            scheme, epochs = self._qat_scheme()
            yield ("qat", f"{scheme.upper()} {epochs} epoch(s) weights, then {cfg.describe()}",
                   lambda: quantize_onnx(to_onnx(qat_float_weights(self._qat(), self.model), self.recipe.export.onnx_opset), cal, cfg))
        for _, names in _fallback_groups(self.sqnr_db["onnx"], self.q.max_float_layers):
            excl = replace(cfg, nodes_to_exclude=tuple(names))
            yield ("float_fallback", f"{excl.describe()}: {', '.join(names)}",
                   lambda excl=excl: quantize_onnx(self.float_onnx(), cal, excl))


def _fallback_groups(sqnr_db: dict[str, float], max_layers: int) -> Iterator[tuple[int, list[str]]]:
    """``(k, names)`` for k = 1..max_layers: the k lowest-SQNR layers to keep in float.

    A tie in SQNR makes ``most_sensitive`` return more than k names; a group already
    yielded for a smaller k is not tried again.
    """
    from edgeship.export import most_sensitive

    done: tuple[str, ...] = ()
    for k in range(1, max_layers + 1):
        names = most_sensitive(sqnr_db, k)
        if len(names) < k:
            break
        if tuple(names) == done:
            continue
        done = tuple(names)
        yield k, names
