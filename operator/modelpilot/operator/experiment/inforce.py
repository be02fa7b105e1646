"""The traffic split the routers were following: expected shares from the routes document in force.

The sample-ratio-mismatch test needs the split the routers were *meant* to produce over the last
interval. Under every policy the router draws each request from the routes' `weight` split (see
`modelpilot.router.policy`: the operator's weights already are the policy's randomisation, P(best)
under `thompson`, bounded to [minWeight, maxWeight]), so the expected shares are the normalised
weights (`modelpilot.api.routes.expected_shares`, on the document the router itself parses). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelpilot.api import routes as contract


def expected_shares(routes: contract.Routes | Mapping[str, Any]) -> dict[str, float]:
    """Variant -> expected share of requests (summing to 1) under the routes document `routes`.

    Pass the `Routes` read with `modelpilot.api.routes.loads`; a decoded document is validated by
    the same contract first (`InvalidRoutes`, an `InputError`, when the routers would refuse it).
    """
    parsed = routes if isinstance(routes, contract.Routes) else contract.parse(routes)
    return contract.expected_shares(parsed)
