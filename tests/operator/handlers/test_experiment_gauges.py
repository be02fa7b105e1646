"""The Experiment gauges the operator exports (names and labels of docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import prometheus_client

from modelpilot.operator.experiment import decision
from modelpilot.operator.experiment import spec as spec_mod
from modelpilot.operator.handlers import experiment as handlers

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_each_variant_gets_weight_posterior_mean_and_p_best_and_the_phase_is_one_hot() -> None:
    spec = spec_mod.parse_spec(
        {
            "deploymentRef": "iris",
            "variants": [{"name": "challenger", "model": {"name": "m", "version": "2"}}],
        }
    )
    status = decision.initial_status(spec, stable_model={"name": "m", "version": "1"}, now=T0)
    status = decision.decide(
        spec, status, counts={}, shares_in_force=None, now=T0, seed_key="ns/exp"
    ).status
    registry = prometheus_client.CollectorRegistry()
    handlers.Gauges(registry).observe(namespace="ns", name="exp", status=status)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"namespace": "ns", "experiment": "exp", **labels})

    for v in status["variants"]:
        name = v["name"]
        assert value("modelpilot_experiment_weight", variant=name) == v["weight"]
        assert value("modelpilot_experiment_posterior_mean", variant=name) == 0.5
        assert value("modelpilot_experiment_requests", variant=name) == 0
        p = value("modelpilot_experiment_probability_to_be_best", variant=name)
        assert p == v["probabilityToBeBest"]
        assert p is not None
        assert abs(p - 0.5) < 0.02
    weights = [value("modelpilot_experiment_weight", variant=n) for n in ("stable", "challenger")]
    assert sum(w or 0 for w in weights) == 100
    phases = {ph: value("modelpilot_experiment_phase", phase=ph) for ph in handlers.PHASES}
    assert phases == {ph: (1.0 if ph == "Running" else 0.0) for ph in handlers.PHASES}
