"""The per-request choice of a variant: Thompson draw, epsilon-greedy, or fixed weights (sticky).

Pure and cheap: a `Chooser` is built once per routes document (arrays precomputed) and asked per
request. Design decision on stickiness: a request carrying the sticky header is assigned by a hash
of its key into the cumulative `weight` split (the operator's current shares), whatever the policy,
because a per-request posterior draw cannot be sticky; the same key then lands on the same variant
for as long as the weights stay put (consistent with Flagger's and nginx `split_clients` hashing).
"""

from __future__ import annotations

import bisect
import hashlib

import numpy as np

from modelpilot.router import routes as routes_mod
from modelpilot.stats import bandits


class Chooser:
    def __init__(self, routes: routes_mod.Routes, *, rng: np.random.Generator) -> None:
        self.routes = routes
        self.rng = rng
        self.names = tuple(v.name for v in routes.variants)
        weights = np.array([v.weight for v in routes.variants], dtype=np.float64)
        total = weights.sum()
        shares = weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))
        self.cumulative = np.cumsum(shares).tolist()
        self.cumulative[-1] = 1.0
        posteriors = [v.posterior for v in routes.variants]
        self.beta = all(isinstance(p, routes_mod.Beta) for p in posteriors)
        if self.beta:
            self.a = np.array([p.alpha for p in posteriors if isinstance(p, routes_mod.Beta)])
            self.b = np.array([p.beta for p in posteriors if isinstance(p, routes_mod.Beta)])
            self.means = self.a / (self.a + self.b)
        else:
            self.m = np.array([p.mean for p in posteriors])
            self.v = np.array(
                [p.variance if isinstance(p, routes_mod.Gaussian) else 0.0 for p in posteriors]
            )
            self.means = self.m
        self.kind = routes.policy.type
        self.epsilon = routes.policy.epsilon
        sticky = routes.policy.sticky_header
        self.sticky_header = sticky.lower() if sticky is not None else None

    def _by_weight(self, u: float) -> int:
        return min(bisect.bisect_right(self.cumulative, u), len(self.names) - 1)

    def choose(self, user_key: str | None = None) -> int:
        """Index of the variant that answers this request."""
        if user_key is not None and self.sticky_header is not None:
            return self._by_weight(sticky_unit(user_key))
        if self.kind == "fixed":
            return self._by_weight(float(self.rng.random()))
        if self.kind == "thompson":
            if self.beta:
                return int(bandits.choose_thompson(self.a, self.b, rng=self.rng))
            return int(bandits.choose_thompson_gaussian(self.m, self.v, rng=self.rng))
        # epsilon-greedy over the posterior means
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(0, len(self.names)))
        return int(bandits.argmax_random_ties(self.means, rng=self.rng))


def sticky_unit(key: str) -> float:
    """A stable number in [0, 1) for a user key (first 8 bytes of BLAKE2b)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64
