"""The traffic split the routers were following: expected shares from the routes document in force.

The sample-ratio-mismatch test needs the split the routers were *meant* to produce over the last
interval. Under every policy the router draws each request from the routes' `weight` split (see
`modelpilot.router.policy`: the operator's weights already are the policy's randomisation, P(best)
under `thompson`, bounded to [minWeight, maxWeight]), so the expected shares are the normalised
weights. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def expected_shares(routes: Mapping[str, Any]) -> dict[str, float]:
    """Variant -> expected share of requests (summing to 1) under the routes document `routes`."""
    variants = list(routes.get("variants") or [])
    if not variants:
        return {}
    names = [str(v["name"]) for v in variants]
    weights = [max(0.0, float(v.get("weight", 0))) for v in variants]
    total = sum(weights)
    if total <= 0:
        return {n: 1 / len(names) for n in names}
    return {n: w / total for n, w in zip(names, weights, strict=True)}
