"""Who writes a ModelDeployment's Ready condition: the reconcile or the workload watch.

Two paths set Ready: the full reconcile (which resolves the model in the registry) and the watch on
the owned Deployments (which sees rollouts finish). Precedence: while the deployment is degraded
(Degraded=True, or Ready=False for a registry reason), only the reconcile knows why and when that
ends, so the watch must leave Ready alone; otherwise the watch may flip Ready as the workloads come
and go. One rule, used by both watch paths. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.api import conditions

READY = "Ready"
DEGRADED = "Degraded"
REGISTRY_REASONS = frozenset({"RegistryUnavailable", "ModelNotFound"})
"""Reasons of a Ready=False that only the reconcile can lift (it asks the registry)."""


def reconcile_owns_ready(existing: Sequence[Mapping[str, Any]]) -> bool:
    """True when the workload watch must not change Ready (see the module docstring)."""
    if conditions.is_true(existing, DEGRADED):
        return True
    ready = conditions.find(existing, READY)
    return ready is not None and ready.get("reason") in REGISTRY_REASONS
