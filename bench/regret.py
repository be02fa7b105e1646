"""Cumulative regret of the Experiment controller's policies on the same simulated traffic.

Runs the operator's own loop (`decision.decide`, every update interval, with delayed binary rewards
from `simulate.Traffic`) under three policies: Thompson sampling (weights = probability to be best,
bounded to [minWeight, maxWeight]), epsilon-greedy, and a fixed 50/50 split (the A/B test baseline).
Each seed replays identical traffic parameters (arm rates, requests per interval, reward delays)
and the same random stream for every policy. Regret is the pseudo-regret sum over requests of
(best rate - rate of the variant served): the expected reward lost against always serving the
better model. The stopping rule is switched off so every policy runs the whole horizon.

    python bench/regret.py --out bench/out/regret.json   (make bench-regret)

Writes the benchmark JSON of docs/architecture.md and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.operator.experiment import decision, simulate
from modelpilot.operator.experiment import spec as spec_mod

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_spec(policy: dict[str, Any]) -> spec_mod.ExperimentSpec:
    return spec_mod.parse_spec(
        {
            "deploymentRef": "bench",
            "variants": [
                {"name": "challenger", "model": {"name": "m", "version": "2"}, "weight": 50}
            ],
            "policy": {"minWeight": 5, "maxWeight": 95, "updateInterval": "30s", **policy},
            "reward": {"type": "binary"},
            "stopping": {"minSamplesPerVariant": 10**9, "maxDuration": "1000d"},
            "guardrails": {"maxErrorRate": 1.0},
        }
    )


POLICIES: dict[str, dict[str, Any]] = {
    "thompson": {"type": "thompson"},
    "epsilon-greedy": {"type": "epsilon-greedy", "epsilon": 0.1},
    "fixed 50/50": {"type": "fixed", "stableWeight": 50},
}


def run(
    policy: dict[str, Any], *, seed: int, rates: dict[str, float], per_interval: int, intervals: int
) -> tuple[float, int]:
    """(pseudo-regret, challenger requests) of one experiment."""
    spec = make_spec(policy)
    traffic = simulate.Traffic(
        reward_rates=rates, requests_per_interval=per_interval, seed=seed, pods=1
    )
    status = decision.initial_status(spec, stable_model={"name": "m", "version": "1"}, now=T0)
    outcome = decision.decide(
        spec, status, counts={}, shares_in_force=None, now=T0, seed_key=f"bench/{seed}"
    )
    status = outcome.status
    for i in range(1, intervals + 1):
        weights = {v["name"]: float(v["weight"]) for v in status["variants"]}
        traffic.step(weights)
        outcome = decision.decide(
            spec,
            status,
            counts=traffic.counts(),
            shares_in_force=weights,
            now=T0 + i * timedelta(seconds=30),
            seed_key=f"bench/{seed}",
            draws=5000,
        )
        status = outcome.status
    return traffic.expected_regret, traffic.served["challenger"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/regret.json"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--intervals", type=int, default=150)
    parser.add_argument("--per-interval", type=int, default=200)
    args = parser.parse_args(argv)
    rates = {"stable": 0.10, "challenger": 0.15}
    results: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for name, policy in POLICIES.items():
        regrets, shares = [], []
        for seed in range(args.seeds):
            regret, challenger = run(
                policy,
                seed=1000 + seed,
                rates=rates,
                per_interval=args.per_interval,
                intervals=args.intervals,
            )
            regrets.append(regret)
            shares.append(challenger / (args.per_interval * args.intervals))
        results[name] = {
            "mean": float(np.mean(regrets)),
            "sd": float(np.std(regrets, ddof=1)),
            "challenger_share": float(np.mean(shares)),
        }
    elapsed = time.perf_counter() - started
    total = args.per_interval * args.intervals
    fixed = results["fixed 50/50"]["mean"]
    print(
        f"Cumulative pseudo-regret, {total:,} requests ({args.intervals} updates x "
        f"{args.per_interval}), rates stable {rates['stable']} vs challenger "
        f"{rates['challenger']}, delayed rewards, {args.seeds} seeds\n"
    )
    print("| policy | regret (mean +- sd) | challenger share | vs fixed 50/50 |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['mean']:.1f} +- {r['sd']:.1f} | {r['challenger_share']:.1%} | "
            f"{fixed / r['mean']:.2f}x |"
        )
    figures = []
    for name, r in results.items():
        key = name.replace(" 50/50", "_50_50").replace("-", "_")
        baseline = name != "fixed 50/50"
        figures.append(
            {
                "metric": f"regret_{key}",
                "value": round(r["mean"], 2),
                "unit": "lost rewards",
                "baseline": "fixed 50/50 split" if baseline else None,
                "baseline_value": round(fixed, 2) if baseline else None,
                "ratio": round(fixed / r["mean"], 3) if baseline else None,
                "better": "lower",
            }
        )
    doc = {
        "name": "regret",
        "description": (
            f"cumulative regret of the experiment loop over {total:,} requests, 0.10 vs 0.15, "
            "delayed rewards"
        ),
        "figures": figures,
        "params": {
            "seeds": args.seeds,
            "intervals": args.intervals,
            "requests_per_interval": args.per_interval,
            "rates": rates,
            "min_weight": 5,
            "max_weight": 95,
            "epsilon": 0.1,
            "seconds": round(elapsed, 1),
        },
        "notes": "sd over seeds: " + ", ".join(f"{k} {v['sd']:.1f}" for k, v in results.items()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
