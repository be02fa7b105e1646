"""A seeded simulation of the routers' traffic under a given split, for tests and the regret bench.

It produces exactly what the metrics sources read from real routers: cumulative requests, errors,
joined rewards, reward sums and sums of squared rewards per router pod and variant, plus a p99
latency. Rewards are Bernoulli (binary experiments) or, given `reward_sd`, Normal with those
standard deviations (continuous ones); `squares=False` plays routers of a version before sums of
squares (they report none). Rewards are *delayed*: the feedback for a request arrives zero, one
or two update intervals later (with `DELAY_PROBABILITIES`), as `POST /feedback` calls do in
production, so the decision sees posteriors that lag the traffic. Faults can be injected: a router
pod restart (its counters drop to zero) and an under-reported variant (a sample-ratio mismatch).
The design decision: the simulator knows nothing about the decision; it only turns weights into
counts, so the same traffic (same seed) can be replayed under different policies for a fair
regret comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from modelpilot.api import stats as stats_contract
from modelpilot.operator.experiment import counts as counts_mod

DELAY_PROBABILITIES = (0.5, 0.3, 0.2)
"""P(feedback arrives 0, 1, 2 intervals after its request)."""


@dataclass
class _Pod:
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rewards: dict[str, int] = field(default_factory=dict)
    reward_sum: dict[str, float] = field(default_factory=dict)
    reward_sum_squares: dict[str, float] = field(default_factory=dict)


class Traffic:
    """Requests split by weights over `pods` router pods, with delayed rewards.

    `reward_rates` are the variants' mean rewards: Bernoulli rates, or the means of Normal rewards
    when `reward_sd` gives their standard deviations.
    """

    def __init__(
        self,
        *,
        reward_rates: Mapping[str, float],
        requests_per_interval: int,
        seed: int,
        error_rates: Mapping[str, float] | None = None,
        latency_p99_ms: Mapping[str, float] | None = None,
        pods: int = 2,
        reward_sd: Mapping[str, float] | None = None,
        squares: bool = True,
    ) -> None:
        self.sd = dict(reward_sd) if reward_sd is not None else None
        self.squares = squares
        self.rates = dict(reward_rates)
        self.names = list(reward_rates)
        self.per_interval = requests_per_interval
        self.rng = np.random.default_rng(seed)
        self.error_rates = dict(error_rates or {})
        self.latency = dict(latency_p99_ms or {})
        self.pods = [_Pod() for _ in range(pods)]
        self.restarts = [0] * pods
        self.under_report: dict[str, float] = {}
        # pending[k][pod][variant] = (rewards, sum, sum of squares) arriving k intervals from now
        self.pending: list[list[dict[str, tuple[int, float, float]]]] = [
            [{} for _ in range(pods)] for _ in DELAY_PROBABILITIES
        ]
        self.served: dict[str, int] = dict.fromkeys(self.names, 0)
        self.expected_regret = 0.0

    def step(self, weights: Mapping[str, float]) -> None:
        """One interval of traffic split by `weights` (variant -> share, any scale)."""
        p = np.array([max(0, weights.get(n, 0)) for n in self.names], dtype=float)
        p = p / p.sum()
        per_pod = self.rng.multinomial(self.per_interval, [1 / len(self.pods)] * len(self.pods))
        best = max(self.rates.values())
        arrivals = self.pending.pop(0)
        self.pending.append([{} for _ in self.pods])
        for i, pod in enumerate(self.pods):
            split = self.rng.multinomial(int(per_pod[i]), p)
            for n, k in zip(self.names, split, strict=True):
                k = int(k)
                self.served[n] += k
                self.expected_regret += k * (best - self.rates[n])
                errs = int(self.rng.binomial(k, self.error_rates.get(n, 0.0)))
                ok = k - errs
                feedback = self._rewards(n, ok)
                reported = k
                if n in self.under_report:
                    reported = round(k * self.under_report[n])
                pod.requests[n] = pod.requests.get(n, 0) + reported
                pod.errors[n] = pod.errors.get(n, 0) + errs
                for d, (r, s, q) in enumerate(feedback):
                    slot = arrivals[i] if d == 0 else self.pending[d - 1][i]
                    r0, s0, q0 = slot.get(n, (0, 0, 0))
                    slot[n] = (r0 + r, s0 + s, q0 + q)
            for n, (r, s, q) in arrivals[i].items():
                pod.rewards[n] = pod.rewards.get(n, 0) + r
                pod.reward_sum[n] = pod.reward_sum.get(n, 0) + s
                pod.reward_sum_squares[n] = pod.reward_sum_squares.get(n, 0) + q

    def _rewards(self, name: str, answered: int) -> list[tuple[int, float, float]]:
        """The rewards of `answered` requests split by feedback delay (0..2 intervals), as
        (count, sum, sum of squares) per delay."""
        if self.sd is None:
            wins = int(self.rng.binomial(answered, self.rates[name]))
            by_delay = self.rng.multinomial(answered, DELAY_PROBABILITIES)
            wins_by_delay = self.rng.multivariate_hypergeometric([int(x) for x in by_delay], wins)
            # A 0/1 reward is its own square.
            return [(int(r), int(w), int(w)) for r, w in zip(by_delay, wins_by_delay, strict=True)]
        values = self.rng.normal(self.rates[name], self.sd[name], size=answered)
        by_delay = self.rng.multinomial(answered, DELAY_PROBABILITIES)
        parts = np.split(values, np.cumsum(by_delay)[:-1])
        return [(len(x), float(x.sum()), float((x * x).sum())) for x in parts]

    def restart_pod(self, index: int) -> None:
        """A router pod restarts: its cumulative counters start again from zero (same pod name)."""
        self.pods[index] = _Pod()
        self.restarts[index] += 1

    def counts(self) -> dict[str, dict[str, counts_mod.VariantCounts]]:
        """Cumulative counters per pod (source) and variant, as the metrics sources report them."""
        out: dict[str, dict[str, counts_mod.VariantCounts]] = {}
        for i, pod in enumerate(self.pods):
            out[f"router-{i}"] = {
                n: counts_mod.VariantCounts(
                    requests=pod.requests.get(n, 0),
                    errors=pod.errors.get(n, 0),
                    rewards=pod.rewards.get(n, 0),
                    reward_sum=float(pod.reward_sum.get(n, 0)),
                    latency_p99_ms=self.latency.get(n),
                    reward_sum_squares=float(pod.reward_sum_squares.get(n, 0))
                    if self.squares
                    else None,
                )
                for n in self.names
            }
        return out

    def stats_json(self, index: int) -> dict[str, object]:
        """Pod `index`'s counters in the shape of the router's `GET /stats`."""
        pod = self.pods[index]
        variants = {
            n: stats_contract.VariantStats(
                requests=pod.requests.get(n, 0),
                errors=pod.errors.get(n, 0),
                rewards=pod.rewards.get(n, 0),
                reward_sum=float(pod.reward_sum.get(n, 0)),
                latency_p99_ms=self.latency.get(n),
                reward_sum_squares=float(pod.reward_sum_squares.get(n, 0))
                if self.squares
                else None,
            )
            for n in self.names
        }
        return stats_contract.Stats(variants=variants).to_json()
