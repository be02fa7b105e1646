"""Prometheus metrics of the model server (names and labels pinned in docs/architecture.md).

The registry is made by `create_metrics`, never at import time, so two servers in one process (the
tests) do not share counters. Label children are resolved once per model version and cached, which
keeps a request's metric cost to a few microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import prometheus_client

# Latency buckets from 0.5 ms to 10 s: a pyfunc call on a small batch is sub-millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
# Above this many distinct predicted values the output is not a class label; stop counting classes
# rather than let label cardinality grow without bound.
MAX_CLASSES = 100


@dataclass
class ModelMetrics:
    registry: prometheus_client.CollectorRegistry
    deployment: str
    variant: str
    requests: Any
    errors: Any
    latency: Any
    batch_size: Any
    predictions: Any
    loaded: Any
    version: str = ""
    _classes: dict[str, Any] = field(default_factory=dict)
    _children: dict[str, Any] = field(default_factory=dict)

    def set_version(self, version: str) -> None:
        self.version = version
        labels = (self.deployment, self.variant, version)
        self._children = {
            "v2": self.requests.labels(*labels, "v2"),
            "predict": self.requests.labels(*labels, "predict"),
            "grpc": self.requests.labels(*labels, "grpc"),
            "latency": self.latency.labels(*labels),
            "batch": self.batch_size.labels(*labels),
        }
        self._classes = {}
        self.loaded.labels(*labels).set(1)

    def observe(self, *, protocol: str, seconds: float, rows: int) -> None:
        self._children[protocol].inc()
        self._children["latency"].observe(seconds)
        self._children["batch"].observe(rows)

    def error(self, code: int) -> None:
        self.errors.labels(self.deployment, self.variant, self.version, str(code)).inc()

    def count_classes(self, predictions: list[Any]) -> None:
        for value in predictions:
            if isinstance(value, float) and not value.is_integer():
                return  # a regressor: no class distribution
            key = str(int(value)) if isinstance(value, float) else str(value)
            child = self._classes.get(key)
            if child is None:
                if len(self._classes) >= MAX_CLASSES:
                    continue
                child = self.predictions.labels(self.deployment, self.variant, self.version, key)
                self._classes[key] = child
            child.inc()

    def exposition(self) -> bytes:
        out: bytes = prometheus_client.generate_latest(self.registry)
        return out


def create_metrics(*, deployment: str, variant: str) -> ModelMetrics:
    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    base = ["deployment", "variant", "model_version"]

    # Every metric goes to this server's registry (never the global one) and carries `base`.
    def counter(name: str, documentation: str, label: str) -> prometheus_client.Counter:
        return prometheus_client.Counter(name, documentation, [*base, label], registry=registry)

    def histogram(
        name: str, documentation: str, buckets: tuple[float, ...]
    ) -> prometheus_client.Histogram:
        return prometheus_client.Histogram(
            name, documentation, base, buckets=buckets, registry=registry
        )

    return ModelMetrics(
        registry=registry,
        deployment=deployment,
        variant=variant,
        requests=counter("modelpilot_model_requests", "Inference requests answered.", "protocol"),
        errors=counter(
            "modelpilot_model_errors", "Inference requests that failed, by HTTP status.", "code"
        ),
        latency=histogram(
            "modelpilot_model_latency_seconds",
            "Time to decode, predict and encode a request.",
            LATENCY_BUCKETS,
        ),
        batch_size=histogram(
            "modelpilot_model_batch_size", "Rows per inference request.", BATCH_BUCKETS
        ),
        predictions=counter(
            "modelpilot_model_predictions", "Predicted labels (classifiers).", "class"
        ),
        loaded=prometheus_client.Gauge(
            "modelpilot_model_loaded", "1 once the model has loaded.", base, registry=registry
        ),
    )
