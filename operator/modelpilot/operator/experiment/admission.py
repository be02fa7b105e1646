"""Whether an Experiment may run now: its ModelDeployment exists and serves a resolved model, and no
other Experiment holds that deployment's traffic split.

    admit(name, deploymentRef, deployment view, claims on the deployment) -> Admission
        DeploymentNotFound   no such ModelDeployment (or it is being deleted): wait, never Failed
        DeploymentNotReady   it exists but has not resolved its model yet: wait
        DeploymentBusy       another Experiment holds the split: wait until it ends
        Admitted             run

    challengers_ready(the challengers' Deployments as applied, the variant names) -> Admission
        ChallengersStarting  a challenger's Deployment is not available yet: no traffic for it

Design decision: one ModelDeployment, one running Experiment, chosen the same way by every reader
and every replica: among the claims that are still active (not finished, not being deleted), one
that already runs keeps the split; otherwise the oldest by `metadata.creationTimestamp`, then by
name (`holder`). Deciding by what is in the API server, not by who asked first, is what makes the
rule level-triggered: `kubectl apply -f dir/` in any order, an operator restart, or two replicas
all arrive at the same holder. A waiting Experiment never touches the split and starts on its own
when it is admitted.

Pure: the handler builds the views from kopf's in-memory indexes of both kinds, so checking costs
no API request however often it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelpilot.api import constants
from modelpilot.operator import mdstatus

ADMITTED = "Admitted"
DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
DEPLOYMENT_NOT_READY = "DeploymentNotReady"
DEPLOYMENT_BUSY = "DeploymentBusy"
CHALLENGERS_STARTING = "ChallengersStarting"
FINISHED = frozenset({constants.PROMOTED, constants.ROLLED_BACK, constants.CONCLUDED})
"""Phases after which an Experiment never runs again (Failed is not here: see `waiting`)."""


@dataclass(frozen=True)
class DeploymentView:
    """What admission needs of a ModelDeployment."""

    name: str
    version: str | None
    """`status.model.version`: None until the controller has resolved the model."""
    deleting: bool


@dataclass(frozen=True)
class Claim:
    """What admission needs of an Experiment that references a ModelDeployment."""

    name: str
    uid: str
    created: str
    """`metadata.creationTimestamp`, RFC 3339 in UTC, which sorts as text."""
    phase: str | None
    deleting: bool

    @property
    def started(self) -> bool:
        return self.phase == constants.RUNNING

    @property
    def active(self) -> bool:
        """Still wants the split: not finished, not failed on its spec, not being deleted."""
        return not self.deleting and self.phase not in FINISHED and self.phase != constants.FAILED


@dataclass(frozen=True)
class Admission:
    admitted: bool
    reason: str
    message: str


def deployment_view(body: Mapping[str, Any]) -> DeploymentView:
    """From a ModelDeployment object (or kopf's view of one)."""
    metadata = body.get("metadata") or {}
    model = (body.get("status") or {}).get("model") or {}
    version = model.get("version")
    return DeploymentView(
        name=str(metadata.get("name", "")),
        version=None if version in (None, "") else str(version),
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def claim(body: Mapping[str, Any]) -> Claim:
    """From an Experiment object; a legacy `Failed` for a missing deployment counts as waiting."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    phase = status.get("phase")
    if waiting(status):
        phase = constants.PENDING if phase is not None else None
    return Claim(
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        created=str(metadata.get("creationTimestamp", "")),
        phase=phase,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def waiting(status: Mapping[str, Any]) -> bool:
    """Not started yet: no phase, Pending, or the `Failed` that earlier versions of the operator
    wrote for a missing ModelDeployment (kept restartable, so an upgrade un-sticks them)."""
    phase = status.get("phase")
    if phase in (None, constants.PENDING):
        return True
    if phase != constants.FAILED:
        return False
    ready = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    return ready is not None and ready.get("reason") == DEPLOYMENT_NOT_FOUND


def holder(claims: Iterable[Claim]) -> Claim | None:
    """The Experiment that holds the split: a running one first, then the oldest, then by name."""
    return min(
        (c for c in claims if c.active),
        key=lambda c: (not c.started, c.created, c.name),
        default=None,
    )


def admit(
    *,
    me: Claim,
    deployment_ref: str,
    deployment: DeploymentView | None,
    claims: Sequence[Claim],
) -> Admission:
    """May `me` run on `deployment_ref` now? `claims` are the Experiments that reference it (with
    or without `me`: an index may not have seen a new object yet)."""
    if deployment is None or deployment.deleting:
        gone = "is being deleted" if deployment is not None else "does not exist"
        return Admission(
            admitted=False,
            reason=DEPLOYMENT_NOT_FOUND,
            message=f"spec.deploymentRef: ModelDeployment {deployment_ref} {gone}; "
            "the experiment starts when it exists",
        )
    if deployment.version is None:
        return Admission(
            admitted=False,
            reason=DEPLOYMENT_NOT_READY,
            message=f"ModelDeployment {deployment_ref} has not resolved its model yet; "
            "the experiment starts when it has",
        )
    everyone = [c for c in claims if c.uid != me.uid] + [me]
    first = holder(everyone)
    if first is not None and first.uid != me.uid:
        return Admission(
            admitted=False,
            reason=DEPLOYMENT_BUSY,
            message=f"ModelDeployment {deployment_ref} is in use by Experiment {first.name} "
            f"({'running' if first.started else 'created first'}); one experiment per "
            "deployment: this one starts when that one ends or is deleted",
        )
    return Admission(
        admitted=True,
        reason=ADMITTED,
        message=f"ModelDeployment {deployment_ref} serves version {deployment.version}",
    )


def stamp_generation(
    conditions: Sequence[Mapping[str, Any]], generation: int
) -> list[dict[str, Any]]:
    """Every condition with `observedGeneration` (the generation the whole status was computed
    from: the loop writes the status in one piece)."""
    return [{**c, "observedGeneration": generation} for c in conditions]


def challengers_ready(
    deployments: Sequence[Mapping[str, Any]], *, variants: Sequence[str]
) -> Admission:
    """Whether every challenger's Deployment is available, as `kubectl rollout status` judges it.

    An Experiment writes no routes until then: a challenger whose pods still load their model has
    no ready endpoint, and the requests the router sent it would fail and count against its error
    guardrail (found on real pods, where loading takes tens of seconds; kwok made pods Ready at
    once). `deployments` are the challengers' Deployments as the API server stored them, each
    labelled with its variant.
    """
    by_variant = {
        str(((d.get("metadata") or {}).get("labels") or {}).get(constants.LABEL_VARIANT)): d
        for d in deployments
    }
    waiting = []
    for name in variants:
        deployment = by_variant.get(name)
        if deployment is None:
            waiting.append(f"{name}: no Deployment yet")
            continue
        ready, why = mdstatus.deployment_readiness(deployment)
        if not ready:
            waiting.append(why)
    if waiting:
        return Admission(
            False,
            CHALLENGERS_STARTING,
            "waiting for the challengers to become available before they get traffic: "
            + "; ".join(waiting),
        )
    return Admission(True, ADMITTED, "every challenger is available")
