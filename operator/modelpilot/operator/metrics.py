"""The operator's Prometheus metrics, made by a factory (never at import time).

Design decision: one `CollectorRegistry` per operator instance, created in `make_metrics()` and
handed to every handler module's `register()`, so tests can run several operators in one process
and the Experiment controller adds its gauges to the same registry (names in docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import prometheus_client


@dataclass(frozen=True)
class Metrics:
    registry: prometheus_client.CollectorRegistry
    reconcile_total: prometheus_client.Counter
    reconcile_errors_total: prometheus_client.Counter
    applies_total: prometheus_client.Counter
    check_seconds: prometheus_client.Histogram


def make_metrics() -> Metrics:
    registry = prometheus_client.CollectorRegistry()
    return Metrics(
        registry=registry,
        reconcile_total=prometheus_client.Counter(
            "modelpilot_operator_reconcile",
            "Reconciles run, by resource kind.",
            ["kind"],
            registry=registry,
        ),
        reconcile_errors_total=prometheus_client.Counter(
            "modelpilot_operator_reconcile_errors",
            "Reconciles that failed (retried or permanent), by resource kind.",
            ["kind"],
            registry=registry,
        ),
        applies_total=prometheus_client.Counter(
            "modelpilot_operator_applies",
            "Server-side applies of owned objects that differed from the watch cache, by kind.",
            ["kind"],
            registry=registry,
        ),
        check_seconds=prometheus_client.Histogram(
            "modelpilot_operator_check_seconds",
            "Duration of one pass of the ModelDeployment check over the watch cache.",
            registry=registry,
        ),
    )
