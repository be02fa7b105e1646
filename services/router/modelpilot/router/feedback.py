"""Which rewards `/feedback` takes: a JSON number of the declared kind, finite and bounded.

Pure. The reward is checked against what the Experiment declared (`routes.policy.reward`): a
binary reward is exactly 0 or 1; a continuous one a finite number within [minimum, maximum]. When
nothing is declared (no Experiment runs, or a range without bounds) the router's own bound
(`MODELPILOT_ROUTER_REWARD_LIMIT`) applies, so that the sums and sums of squares the operator reads
from `/stats` stay finite however many rewards arrive (six rewards of 1.7e308 once made the sum
infinite and `/stats` answer null). JSON strings and booleans are refused, not coerced: `"1"` and
`true` are a client's bug, and counting them would hide it.
"""

from __future__ import annotations

import math
from typing import Any

from modelpilot.api import constants
from modelpilot.api import routes as routes_contract


class RewardError(Exception):
    """The reward is not one the experiment can count; the message names the field."""


def check_reward(value: Any, declared: routes_contract.Reward | None, *, limit: float) -> float:
    """The reward as a float, or `RewardError` saying what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RewardError(f"reward: expected a JSON number, got {_show(value)}")
    try:
        reward = float(value)
    except OverflowError as exc:  # an integer beyond a double's range
        raise RewardError("reward: expected a finite number, got a huge integer") from exc
    if not math.isfinite(reward):
        raise RewardError(f"reward: expected a finite number, got {reward!r}")
    if declared is not None and declared.type == constants.BINARY:
        if reward not in (0.0, 1.0):
            raise RewardError(f"reward: the experiment's reward is binary: 0 or 1, got {value!r}")
        return reward
    low = -limit if declared is None or declared.minimum is None else declared.minimum
    high = limit if declared is None or declared.maximum is None else declared.maximum
    if not low <= reward <= high:
        source = (
            "MODELPILOT_ROUTER_REWARD_LIMIT"
            if declared is None or declared.minimum is None or declared.maximum is None
            else "the experiment's reward range"
        )
        raise RewardError(f"reward: {reward!r} is outside [{low:g}, {high:g}] ({source})")
    return reward


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
