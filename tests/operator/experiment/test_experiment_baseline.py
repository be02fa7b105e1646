"""Traffic the routers counted before an Experiment started is its baseline, not its data.

While the challengers start, all traffic goes to the stable variant; counting it in the first
interval read as a sample-ratio mismatch on real pods (p = 2e-40) and paused the experiment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelpilot.operator.experiment import counts as counts_mod
from modelpilot.operator.experiment import decision
from modelpilot.operator.experiment import spec as spec_mod

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = spec_mod.parse_spec(
    {
        "deploymentRef": "iris",
        "variants": [{"name": "challenger", "model": {"name": "iris", "version": "2"}}],
        "policy": {"type": "thompson", "updateInterval": "5s"},
        "stopping": {"minSamplesPerVariant": 1000},
    }
)


def _observed(stable: int, challenger: int) -> counts_mod.Observed:
    def c(n: int) -> counts_mod.VariantCounts:
        return counts_mod.VariantCounts(
            requests=n, rewards=n, reward_sum=0.8 * n, reward_sum_squares=0.8 * n
        )

    return {"router-0": {"stable": c(stable), "challenger": c(challenger)}}


def _first_update(baseline: counts_mod.Observed | None) -> dict[str, object]:
    status = decision.initial_status(
        SPEC, stable_model={"name": "iris", "version": "1"}, now=T0, baseline=baseline
    )
    status = decision.decide(
        SPEC, status, counts={}, shares_in_force=None, now=T0, seed_key="ns/exp"
    ).status
    # Before the start: 3,000 requests to stable alone; then 100 and 100 under the 50/50 split.
    return decision.decide(
        SPEC,
        status,
        counts=_observed(3100, 100),
        shares_in_force={"stable": 50.0, "challenger": 50.0},
        now=T0 + timedelta(seconds=5),
        seed_key="ns/exp",
    ).status


def test_the_first_interval_counts_only_what_came_after_the_start() -> None:
    status = _first_update(_observed(3000, 0))
    by_name = {v["name"]: v for v in status["variants"]}  # type: ignore[attr-defined]
    assert (by_name["stable"]["requests"], by_name["challenger"]["requests"]) == (100, 100)
    assert status["srm"]["mismatch"] is False  # type: ignore[index]


def test_without_the_baseline_the_stable_variants_earlier_traffic_reads_as_a_mismatch() -> None:
    status = _first_update(None)
    assert status["srm"]["mismatch"] is True  # type: ignore[index]
