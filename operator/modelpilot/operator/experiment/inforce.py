"""The traffic split the routers were following: expected shares from the routes document in force.

The sample-ratio-mismatch test needs the split the routers were *meant* to produce over the last
interval. That is not always the `weight` field: per docs/architecture.md the router honours
`weight` under the `fixed` policy, but under `thompson` it draws a variant from the posteriors per
request, so each request goes to variant i with probability P(i is best) under the posteriors in
the ConfigMap; under `epsilon-greedy` it picks uniformly with probability epsilon and otherwise the
highest posterior mean. This module turns a routes document into those expected shares, so the SRM
test compares like with like whichever policy the router applies. Pure; the draws are seeded from
the document itself so the result is reproducible.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelpilot.stats import bandits


def expected_shares(routes: Mapping[str, Any], *, draws: int = 20_000) -> dict[str, float]:
    """Variant -> expected share of requests (summing to 1) under the routes document `routes`."""
    variants = list(routes.get("variants") or [])
    if not variants:
        return {}
    names = [str(v["name"]) for v in variants]
    kind = (routes.get("policy") or {}).get("type", "fixed")
    weights = np.array([float(v.get("weight", 0)) for v in variants])
    if kind == "fixed":
        total = weights.sum()
        shares = weights / total if total > 0 else np.full(len(names), 1 / len(names))
        return dict(zip(names, (float(x) for x in shares), strict=True))
    posts = [v.get("posterior") or {"alpha": 1.0, "beta": 1.0} for v in variants]
    beta = all("alpha" in p for p in posts)
    if beta:
        means = np.array([p["alpha"] / (p["alpha"] + p["beta"]) for p in posts])
    else:
        means = np.array([float(p.get("mean", 0.0)) for p in posts])
    if kind == "epsilon-greedy":
        epsilon = float((routes.get("policy") or {}).get("epsilon", 0.1))
        shares = bandits.epsilon_greedy_weights(means, epsilon=epsilon)
        return dict(zip(names, (float(x) for x in shares), strict=True))
    seed = int.from_bytes(
        hashlib.sha256(json.dumps(posts, sort_keys=True).encode()).digest()[:8], "big"
    )
    rng = np.random.default_rng(seed)
    if beta:
        p_best = bandits.probability_to_be_best(
            [p["alpha"] for p in posts], [p["beta"] for p in posts], draws=draws, rng=rng
        )
    else:
        p_best = bandits.probability_to_be_best_gaussian(
            means, [float(p.get("variance", 0.0)) for p in posts], draws=draws, rng=rng
        )
    return dict(zip(names, (float(x) for x in p_best), strict=True))
