"""Prometheus metrics, named after Triton's where they mean the same.

prometheus-client appends ``_total`` to counters, so Triton's ``nv_inference_count``
reads ``nv_inference_count_total`` here. Each server has its own registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True)
class ModelMetrics:
    """One model version's series (prometheus-client children, resolved once: ``labels()`` takes a lock)."""

    success: Counter
    count: Counter
    exec_count: Counter
    request_duration: Histogram
    compute_duration: Histogram

    def executed(self, seconds: float) -> None:
        """One call of the model's predict (a dynamic batch is one), ``seconds`` long."""
        self.exec_count.inc()
        self.compute_duration.observe(seconds)


class Metrics:
    """Per-model counters and histograms, plus the in-flight gauge and model-load info."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: Triton has none, and they double the page
        self.registry = r = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")
        self.success = Counter("nv_inference_request_success", "Successful inference requests", labels, registry=r)
        self.failure = Counter("nv_inference_request_failure", "Failed inference requests", (*labels, "reason"),
                               registry=r)
        self.count = Counter("nv_inference_count", "Inferences performed (samples; a batch of n counts n)",
                             labels, registry=r)
        self.exec_count = Counter("nv_inference_exec_count", "Model executions (a dynamic batch counts one)",
                                  labels, registry=r)
        self.request_duration = Histogram("nv_inference_request_duration_seconds",
                                          "Inference request time, body read to response ready", labels,
                                          buckets=_BUCKETS, registry=r)
        self.compute_duration = Histogram("nv_inference_compute_infer_duration_seconds",
                                          "Time in the model's predict", labels, buckets=_BUCKETS, registry=r)
        self.inflight = Gauge("nv_inference_pending_request_count", "HTTP requests in flight", registry=r)
        self.load_info = Gauge("edgeship_model_load_info", "1 per served model; labels say what is loaded",
                               ("model", "version", "format", "precision", "engine", "file"), registry=r)
        self.load_time = Gauge("edgeship_model_load_timestamp_seconds", "When the served model was (re)loaded",
                               labels, registry=r)
        self.reload_failure = Counter("edgeship_model_reload_failure", "Reloads refused (old model kept)",
                                      ("model",), registry=r)
        self._info: dict[str, tuple[str, ...]] = {}
        self._models: dict[tuple[str, str], ModelMetrics] = {}

    def model(self, name: str, version: str) -> ModelMetrics:
        """The series of ``name`` at ``version``, cached."""
        key = (name, version)
        found = self._models.get(key)
        if found is None:
            found = self._models[key] = ModelMetrics(
                success=self.success.labels(name, version), count=self.count.labels(name, version),
                exec_count=self.exec_count.labels(name, version),
                request_duration=self.request_duration.labels(name, version),
                compute_duration=self.compute_duration.labels(name, version),
            )
        return found

    def loaded(self, name: str, version: str, model: Any, when: float) -> None:
        old = self._info.pop(name, None)
        if old is not None:  # one info row per model name: drop the old file's
            self.load_info.remove(*old)
        labels = self._info[name] = (name, version, model.format, model.precision, model.engine, model.path.name)
        self.load_info.labels(*labels).set(1)
        self.load_time.labels(name, version).set(when)

    def render(self) -> bytes:
        return generate_latest(self.registry)
