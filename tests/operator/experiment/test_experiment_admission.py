"""Admission of an Experiment (`experiment.admission`): wait for the ModelDeployment, one holder of
the split per deployment chosen the same way by everyone, conditions stamped with the generation."""

from __future__ import annotations

import itertools
from typing import Any

from modelpilot.operator.experiment import admission

RESOLVED = admission.DeploymentView(name="iris", version="3", deleting=False)


def claim(name: str, created: str, phase: str | None = "Pending", **kw: Any) -> admission.Claim:
    return admission.Claim(
        name=name,
        uid=f"uid-{name}",
        created=created,
        phase=phase,
        deleting=kw.get("deleting", False),
    )


def admit(me: admission.Claim, *others: admission.Claim, deployment: Any = RESOLVED) -> Any:
    return admission.admit(
        me=me, deployment_ref="iris", deployment=deployment, claims=[me, *others]
    )


def test_an_experiment_on_a_missing_deployment_waits_with_deployment_not_found() -> None:
    verdict = admit(claim("a", "2026-01-01T00:00:00Z"), deployment=None)
    assert (verdict.admitted, verdict.reason) == (False, "DeploymentNotFound")
    assert "iris" in verdict.message
    assert "starts when it exists" in verdict.message


def test_a_deployment_being_deleted_counts_as_missing() -> None:
    deleting = admission.DeploymentView(name="iris", version="3", deleting=True)
    verdict = admit(claim("a", "2026-01-01T00:00:00Z"), deployment=deleting)
    assert (verdict.admitted, verdict.reason) == (False, "DeploymentNotFound")
    assert "being deleted" in verdict.message


def test_an_unresolved_deployment_makes_the_experiment_wait_as_not_ready() -> None:
    unresolved = admission.DeploymentView(name="iris", version=None, deleting=False)
    verdict = admit(claim("a", "2026-01-01T00:00:00Z"), deployment=unresolved)
    assert (verdict.admitted, verdict.reason) == (False, "DeploymentNotReady")


def test_the_oldest_experiment_wins_and_the_second_is_refused_naming_the_first() -> None:
    old, new = claim("zeta", "2026-01-01T00:00:00Z"), claim("alpha", "2026-01-01T00:00:05Z")
    assert admit(old, new).admitted
    refused = admit(new, old)
    assert (refused.admitted, refused.reason) == (False, "DeploymentBusy")
    assert "Experiment zeta" in refused.message


def test_same_second_ties_are_broken_by_name_in_every_order() -> None:
    claims = [claim(n, "2026-01-01T00:00:00Z") for n in ("c", "a", "b")]
    for order in itertools.permutations(claims):
        assert admission.holder(order) == claims[1]
    assert [admit(c, *claims).admitted for c in claims] == [False, True, False]


def test_a_running_experiment_keeps_the_split_against_an_older_waiting_one() -> None:
    running = claim("b", "2026-01-01T00:00:09Z", phase="Running")
    older = claim("a", "2026-01-01T00:00:00Z")
    assert admit(running, older).admitted
    assert admit(older, running).reason == "DeploymentBusy"


def test_two_running_experiments_resolve_to_the_oldest() -> None:
    first = claim("b", "2026-01-01T00:00:00Z", phase="Running")
    second = claim("a", "2026-01-01T00:00:01Z", phase="Running")
    assert admit(first, second).admitted
    assert not admit(second, first).admitted


def test_finished_failed_and_deleting_experiments_release_the_deployment() -> None:
    me = claim("me", "2026-01-01T00:00:09Z")
    for other in (
        claim("p", "2026-01-01T00:00:00Z", phase="Promoted"),
        claim("r", "2026-01-01T00:00:00Z", phase="RolledBack"),
        claim("c", "2026-01-01T00:00:00Z", phase="Concluded"),
        claim("f", "2026-01-01T00:00:00Z", phase="Failed"),
        claim("d", "2026-01-01T00:00:00Z", phase="Running", deleting=True),
    ):
        assert admit(me, other).admitted, other


def test_the_deciding_experiment_counts_even_before_the_index_has_seen_it() -> None:
    me = claim("a", "2026-01-01T00:00:00Z")
    other = claim("b", "2026-01-01T00:00:00Z")
    verdict = admission.admit(me=me, deployment_ref="iris", deployment=RESOLVED, claims=[other])
    assert verdict.admitted


def test_views_are_read_from_the_objects() -> None:
    md = {
        "metadata": {"name": "iris", "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"model": {"version": 4}},
    }
    assert admission.deployment_view(md) == admission.DeploymentView("iris", "4", True)
    assert admission.deployment_view({"metadata": {"name": "x"}}).version is None
    exp = {
        "metadata": {"name": "e", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": "Running"},
    }
    assert admission.claim(exp) == admission.Claim(
        "e", "u", "2026-01-01T00:00:00Z", "Running", False
    )


def test_a_failed_for_a_missing_deployment_of_an_earlier_version_waits_instead() -> None:
    legacy = {
        "phase": "Failed",
        "conditions": [{"type": "Ready", "status": "False", "reason": "DeploymentNotFound"}],
    }
    invalid = {
        "phase": "Failed",
        "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec"}],
    }
    assert admission.waiting(legacy)
    assert admission.waiting({})
    assert admission.waiting({"phase": "Pending"})
    assert not admission.waiting(invalid)
    assert not admission.waiting({"phase": "Running"})
    body = {"metadata": {"name": "e", "uid": "u", "creationTimestamp": "t"}, "status": legacy}
    assert admission.claim(body).active


def test_every_condition_carries_the_generation() -> None:
    conds = [{"type": "Ready", "status": "True"}, {"type": "Completed", "status": "False"}]
    stamped = admission.stamp_generation(conds, 7)
    assert [c["observedGeneration"] for c in stamped] == [7, 7]
    assert "observedGeneration" not in conds[0]


def _challenger_deployment(variant: str, *, available: int, replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"iris-{variant}",
            "generation": 1,
            "labels": {"modelpilot.io/variant": variant},
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": available,
        },
    }


def test_a_challenger_whose_pods_are_not_available_gets_no_traffic_yet() -> None:
    verdict = admission.challengers_ready(
        [_challenger_deployment("challenger", available=0)], variants=["challenger"]
    )
    assert not verdict.admitted
    assert verdict.reason == "ChallengersStarting"
    assert "iris-challenger: 0 of 1 updated replicas available" in verdict.message


def test_a_challenger_without_its_deployment_is_waited_for() -> None:
    verdict = admission.challengers_ready([], variants=["challenger"])
    assert (verdict.admitted, verdict.reason) == (False, "ChallengersStarting")
    assert "challenger: no Deployment yet" in verdict.message


def test_every_available_challenger_lets_the_experiment_start() -> None:
    verdict = admission.challengers_ready(
        [
            _challenger_deployment("a", available=1),
            _challenger_deployment("b", available=2, replicas=2),
        ],
        variants=["a", "b"],
    )
    assert verdict.admitted
