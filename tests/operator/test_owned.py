"""The watch-cache comparison: what counts as in sync, what is applied, what is pruned."""

from __future__ import annotations

import copy
import json
from typing import Any

from modelpilot.operator import owned, settings
from modelpilot.operator.builders import desired, routes

MD: dict[str, Any] = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": "ns", "uid": "u-1", "generation": 1},
    "spec": {"model": {"name": "iris", "alias": "champion"}},
}
MODEL = {"name": "iris", "version": "3", "runId": "r", "source": "s"}


def _desired() -> list[dict[str, Any]]:
    variants, policy = routes.route_variants(stable_version="3", experiment=None)
    return desired.build_desired(
        MD, model=MODEL, variants=variants, policy=policy, settings=settings.OperatorSettings()
    )


def _as_stored(obj: dict[str, Any], rv: str = "7") -> dict[str, Any]:
    """What the API server returns: our fields plus defaults, status and bookkeeping."""
    stored = json.loads(json.dumps(obj))  # no shared sub-objects, as from the wire
    stored["metadata"].update(
        resourceVersion=rv,
        uid="x",
        managedFields=[{"manager": "modelpilot-operator"}],
        annotations={
            **stored["metadata"].get("annotations", {}),
            "deployment.kubernetes.io/revision": "1",
        },
    )
    if obj["kind"] == "Deployment":
        stored["spec"]["progressDeadlineSeconds"] = 600
        container = stored["spec"]["template"]["spec"]["containers"][0]
        container["terminationMessagePath"] = "/dev/termination-log"
        container["readinessProbe"]["timeoutSeconds"] = 1
        stored["status"] = {"replicas": 1}
    if obj["kind"] == "Service":
        stored["spec"]["clusterIP"] = "10.0.0.7"
    return stored


def test_every_desired_object_is_in_sync_with_its_stored_form_with_server_defaults() -> None:
    for obj in _desired():
        assert owned.differences(obj, _as_stored(obj)) == [], obj["kind"]
        assert owned.in_sync(obj, _as_stored(obj), None)


def test_a_hand_edited_field_a_removed_label_and_an_added_env_var_are_differences() -> None:
    deployment = next(o for o in _desired() if o["kind"] == "Deployment")
    edited = _as_stored(deployment)
    edited["spec"]["replicas"] = 5
    assert owned.differences(deployment, edited) == [".spec.replicas"]
    unlabelled = _as_stored(deployment)
    del unlabelled["metadata"]["labels"]["modelpilot.io/deployment"]
    assert owned.differences(deployment, unlabelled) == [
        ".metadata.labels.modelpilot.io/deployment"
    ]
    extra_env = _as_stored(deployment)
    extra_env["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "X", "value": "1"}
    )
    assert owned.differences(deployment, extra_env) == [".spec.template.spec.containers[0].env"]
    assert not owned.in_sync(deployment, None, None)


def test_an_applied_object_at_its_resource_version_is_in_sync_though_the_server_normalised_it() -> (
    None
):
    configmap = next(o for o in _desired() if o["kind"] == "ConfigMap")
    normalised = _as_stored(configmap, rv="42")
    normalised["data"] = {"routes.json": "(re-encoded by the server)"}
    assert not owned.in_sync(configmap, normalised, None)
    applied = owned.Applied(digest=owned.digest(configmap), resource_version="42")
    assert owned.in_sync(configmap, normalised, applied)
    # A later change by someone else (a new resourceVersion) is compared again.
    assert not owned.in_sync(configmap, _as_stored(normalised, rv="43"), applied)
    # So is a new desired object (another digest) at the same resourceVersion.
    other = copy.deepcopy(configmap)
    other["data"] = {"routes.json": "{}"}
    assert not owned.in_sync(other, normalised, applied)


def test_numbers_and_their_text_compare_equal_but_booleans_do_not() -> None:
    assert owned.differences({"port": 80}, {"port": "80"}) == []
    assert owned.differences({"flag": True}, {"flag": "True"}) == [".flag"]
    assert owned.differences({"empty": {}}, {}) == []


def test_only_objects_controlled_by_a_modeldeployment_are_attributed_to_it() -> None:
    ref = {"apiVersion": "modelpilot.io/v1alpha1", "kind": "ModelDeployment", "name": "iris"}
    assert (
        owned.controller_owner({"metadata": {"ownerReferences": [{**ref, "controller": True}]}})
        == "iris"
    )
    assert owned.controller_owner({"metadata": {"ownerReferences": [ref]}}) is None
    experiment = {**ref, "kind": "Experiment", "controller": True}
    assert owned.controller_owner({"metadata": {"ownerReferences": [experiment]}}) is None
    foreign = {**ref, "apiVersion": "example.com/v1", "controller": True}
    assert owned.controller_owner({"metadata": {"ownerReferences": [foreign]}}) is None


def test_extras_are_owned_objects_no_longer_desired() -> None:
    objects = _desired()
    cronjob = {"kind": "CronJob", "metadata": {"name": "iris-drift"}}
    cached = [_as_stored(o) for o in objects] + [cronjob]
    assert owned.extras(desired=objects, owned=cached) == [cronjob]


def test_trim_drops_managed_fields_and_leaves_the_original_alone() -> None:
    stored = _as_stored(_desired()[0])
    trimmed = owned.trim(stored)
    assert "managedFields" not in trimmed["metadata"]
    assert "managedFields" in stored["metadata"]
