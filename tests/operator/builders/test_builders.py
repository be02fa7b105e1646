"""Every `build_*` returns complete objects: names, labels, owners, selectors, the routes format."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelpilot import errors
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import desired, drift, meta, routes, workloads

SETTINGS = settings_mod.OperatorSettings(
    model_server_image="example/model-server:1",
    router_image="example/router:1",
    drift_image="example/drift:1",
    mlflow_tracking_uri="http://mlflow.mlops:5000",
)
MODEL = {"name": "iris-classifier", "version": "3", "runId": "abc", "source": "models:/m-1"}


def md_body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "uid-1", "generation": 1},
        "spec": {"model": {"name": "iris-classifier", "alias": "champion"}, **spec},
    }


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def assert_owned_by(obj: dict[str, Any], uid: str = "uid-1") -> None:
    (owner,) = obj["metadata"]["ownerReferences"]
    assert owner["uid"] == uid
    assert owner["controller"] is True
    assert owner["blockOwnerDeletion"] is True


def test_model_server_deployment_serves_the_resolved_version_with_the_default_image() -> None:
    dep = workloads.build_model_server_deployment(
        md_body(), variant="stable", model=MODEL, replicas=2, settings=SETTINGS
    )
    assert dep["metadata"]["name"] == "iris-stable"
    assert dep["metadata"]["namespace"] == "ml"
    assert dep["spec"]["replicas"] == 2
    env = env_of(dep)
    assert env["MODELPILOT_SERVER_MODEL_URI"] == "models:/iris-classifier/3"
    assert env["MODELPILOT_SERVER_TRACKING_URI"] == "http://mlflow.mlops:5000"
    assert env["MODELPILOT_SERVER_DEPLOYMENT"] == "iris"
    assert env["MODELPILOT_SERVER_VARIANT"] == "stable"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "example/model-server:1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert dep["spec"]["template"]["metadata"]["annotations"]["modelpilot.io/model-version"] == "3"
    assert_owned_by(dep)


def test_model_server_selector_is_a_subset_of_the_pod_labels_and_matches_its_service() -> None:
    dep = workloads.build_model_server_deployment(
        md_body(), variant="stable", model=MODEL, replicas=1, settings=SETTINGS
    )
    svc = workloads.build_model_server_service(md_body(), variant="stable")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["metadata"]["name"] == "iris-stable"
    assert svc["spec"]["ports"][0] == {
        "name": "http",
        "port": 80,
        "targetPort": "http",
        "protocol": "TCP",
    }
    assert pod_labels["app.kubernetes.io/managed-by"] == "modelpilot"
    assert pod_labels["modelpilot.io/variant"] == "stable"
    assert_owned_by(svc)


def test_spec_image_and_resources_override_the_defaults() -> None:
    resources = {"limits": {"cpu": "1"}}
    body = md_body(serving={"replicas": 3, "image": "mine:2", "resources": resources})
    dep = workloads.build_model_server_deployment(
        body, variant="stable", model=MODEL, replicas=3, settings=SETTINGS
    )
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mine:2"
    assert container["resources"] == resources


def test_a_challenger_built_for_an_experiment_is_owned_and_labelled_by_the_experiment() -> None:
    exp = {
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "exp1", "namespace": "ml", "uid": "uid-exp"},
    }
    dep = workloads.build_model_server_deployment(
        md_body(),
        variant="challenger",
        model={**MODEL, "version": "4"},
        replicas=1,
        settings=SETTINGS,
        owner=exp,
        experiment="exp1",
    )
    assert dep["metadata"]["name"] == "iris-challenger"
    assert dep["metadata"]["labels"]["modelpilot.io/experiment"] == "exp1"
    assert "modelpilot.io/experiment" not in dep["spec"]["selector"]["matchLabels"]
    assert env_of(dep)["MODELPILOT_SERVER_MODEL_URI"] == "models:/iris-classifier/4"
    assert_owned_by(dep, uid="uid-exp")


def test_registry_tracking_uri_in_the_spec_wins_over_the_operator_default() -> None:
    body = md_body(registry={"trackingUri": "http://other:5000"})
    dep = workloads.build_model_server_deployment(
        body, variant="stable", model=MODEL, replicas=1, settings=SETTINGS
    )
    assert env_of(dep)["MODELPILOT_SERVER_TRACKING_URI"] == "http://other:5000"


def test_every_router_replica_gets_the_shared_feedback_store_and_the_key_secret() -> None:
    alone = env_of(workloads.build_router_deployment(md_body(), settings=SETTINGS))
    assert "MODELPILOT_ROUTER_FEEDBACK_STORE_URL" not in alone
    shared = SETTINGS.model_copy(
        update={"feedback_store_url": "redis://valkey.mlops:6379/0", "router_key_secret": "rk"}
    )
    dep = workloads.build_router_deployment(md_body(router={"replicas": 3}), settings=shared)
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELPILOT_ROUTER_FEEDBACK_STORE_URL"]["value"] == "redis://valkey.mlops:6379/0"
    assert env["MODELPILOT_ROUTER_FEEDBACK_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "rk", "key": "key", "optional": True}
    }


def test_router_reads_its_routes_configmap_with_its_own_read_only_account() -> None:
    dep = workloads.build_router_deployment(md_body(router={"replicas": 2}), settings=SETTINGS)
    assert dep["metadata"]["name"] == "iris-router"
    assert dep["spec"]["replicas"] == 2
    env = env_of(dep)
    assert env["MODELPILOT_ROUTER_CONFIGMAP"] == "iris-routes"
    assert env["MODELPILOT_ROUTER_NAMESPACE"] == "ml"
    assert env["MODELPILOT_ROUTER_DEPLOYMENT"] == "iris"
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "iris-router"
    sa, role, binding = workloads.build_router_rbac(md_body())
    assert (sa["kind"], role["kind"], binding["kind"]) == ("ServiceAccount", "Role", "RoleBinding")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["iris-routes"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "iris-router", "namespace": "ml"}
    ]
    assert binding["roleRef"]["name"] == "iris-router"


def test_router_service_is_the_stable_endpoint_named_after_the_deployment() -> None:
    svc = workloads.build_router_service(md_body())
    assert svc["metadata"]["name"] == "iris"
    assert svc["spec"]["selector"]["app.kubernetes.io/name"] == "modelpilot-router"


def test_routes_configmap_without_an_experiment_sends_everything_to_stable() -> None:
    variants, policy = routes.route_variants(stable_version="3", experiment=None)
    cm = routes.build_routes_configmap(md_body(), variants=variants, policy=policy)
    assert cm["metadata"]["name"] == "iris-routes"
    data = json.loads(cm["data"]["routes.json"])
    assert data == {
        "deployment": "iris",
        "stable": "stable",
        "policy": {"type": "fixed", "epsilon": 0.1, "stickyHeader": None},
        "variants": [
            {
                "name": "stable",
                "url": "http://iris-stable.ml.svc:80",
                "weight": 100,
                "modelVersion": "3",
                "posterior": {"alpha": 1.0, "beta": 1.0},
            }
        ],
    }
    assert routes.traffic_summary(variants) == "stable=100"
    assert_owned_by(cm)


def running_experiment(phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": "exp1"},
        "spec": {"deploymentRef": "iris", "policy": {"type": "thompson", "epsilon": 0.2}},
        "status": {
            "phase": phase,
            "variants": [
                {
                    "name": "stable",
                    "model": {"version": "2"},
                    "weight": 80,
                    "posterior": {"alpha": 10.0, "beta": 5.0},
                },
                {
                    "name": "challenger",
                    "model": {"version": "4"},
                    "weight": 20,
                    "posterior": {"alpha": 3.0, "beta": 2.0},
                },
            ],
        },
    }


def test_routes_follow_the_weights_and_posteriors_of_a_running_experiment() -> None:
    variants, policy = routes.route_variants(stable_version="3", experiment=running_experiment())
    data = json.loads(
        routes.build_routes_configmap(md_body(), variants=variants, policy=policy)["data"][
            "routes.json"
        ]
    )
    assert data["policy"] == {
        "type": "thompson",
        "epsilon": 0.2,
        "stickyHeader": None,
        "reward": {"type": "binary"},  # the Experiment's spec.reward default
    }
    assert [(v["name"], v["weight"], v["modelVersion"]) for v in data["variants"]] == [
        ("stable", 80, "3"),  # the stable version is what the ModelDeployment serves
        ("challenger", 20, "4"),
    ]
    assert data["variants"][1]["url"] == "http://iris-challenger.ml.svc:80"
    assert data["variants"][1]["posterior"] == {"alpha": 3.0, "beta": 2.0}
    assert routes.traffic_summary(variants) == "stable=80,challenger=20"


@pytest.mark.parametrize("phase", ["Pending", "Promoted", "RolledBack", "Concluded", "Failed"])
def test_an_experiment_that_is_not_running_leaves_stable_at_100(phase: str) -> None:
    variants, _ = routes.route_variants(stable_version="3", experiment=running_experiment(phase))
    assert [(v["name"], v["weight"]) for v in variants] == [("stable", 100)]


def test_routes_without_a_stable_variant_or_with_duplicates_are_refused() -> None:
    with pytest.raises(errors.InputError, match="variants"):
        routes.build_routes_configmap(
            md_body(), variants=[{"name": "challenger", "weight": 100, "modelVersion": "4"}]
        )
    with pytest.raises(errors.InputError, match=r"policy\.type"):
        routes.build_routes_configmap(
            md_body(),
            variants=[{"name": "stable", "weight": 100, "modelVersion": "3"}],
            policy={"type": "random"},
        )


def test_drift_cronjob_runs_the_drift_command_on_the_schedule_with_its_account() -> None:
    body = md_body(drift={"schedule": "*/5 * * * *"})
    job = drift.build_drift_cronjob(body, settings=SETTINGS)
    assert job["metadata"]["name"] == "iris-drift"
    assert job["spec"]["schedule"] == "*/5 * * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == [
        "modelpilot",
        "drift",
        "run",
        "--deployment",
        "iris",
        "--namespace",
        "ml",
    ]
    assert pod["containers"][0]["image"] == "example/drift:1"
    assert pod["serviceAccountName"] == "iris-drift"
    assert pod["restartPolicy"] == "Never"
    assert "MODELPILOT_DRIFT_PUSHGATEWAY" not in {e["name"] for e in pod["containers"][0]["env"]}
    assert_owned_by(job)


def test_drift_cronjob_pushes_to_the_operators_pushgateway_when_one_is_set() -> None:
    settings = SETTINGS.model_copy(update={"pushgateway_url": "http://pgw.monitoring.svc:9091"})
    job = drift.build_drift_cronjob(md_body(drift={}), settings=settings)
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODELPILOT_DRIFT_PUSHGATEWAY"] == "http://pgw.monitoring.svc:9091"


def test_drift_role_reaches_only_its_own_modeldeployment() -> None:
    _, role, _ = drift.build_drift_rbac(md_body(drift={}))
    scoped = [r for r in role["rules"] if r["apiGroups"] == ["modelpilot.io"]]
    assert {tuple(r["resources"]) for r in scoped} == {
        ("modeldeployments",),
        ("modeldeployments/status",),
    }
    assert all(r["resourceNames"] == ["iris"] for r in scoped)
    assert {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]} in role[
        "rules"
    ]


def test_desired_set_has_the_drift_job_only_when_drift_is_set() -> None:
    variants, policy = routes.route_variants(stable_version="3", experiment=None)

    def kinds(body: dict[str, Any]) -> list[tuple[str, str]]:
        objs = desired.build_desired(
            body, model=MODEL, variants=variants, policy=policy, settings=SETTINGS
        )
        return sorted(desired.key(o) for o in objs)

    without = kinds(md_body())
    assert without == sorted(
        [
            ("ServiceAccount", "iris-router"),
            ("Role", "iris-router"),
            ("RoleBinding", "iris-router"),
            ("ConfigMap", "iris-routes"),
            ("Deployment", "iris-stable"),
            ("Service", "iris-stable"),
            ("Deployment", "iris-router"),
            ("Service", "iris"),
        ]
    )
    with_drift = kinds(md_body(drift={"schedule": "0 * * * *"}))
    assert set(with_drift) - set(without) == {
        ("CronJob", "iris-drift"),
        ("ServiceAccount", "iris-drift"),
        ("Role", "iris-drift"),
        ("RoleBinding", "iris-drift"),
    }


def test_every_desired_object_carries_the_contract_labels_and_one_owner() -> None:
    variants, policy = routes.route_variants(stable_version="3", experiment=None)
    objs = desired.build_desired(
        md_body(drift={}), model=MODEL, variants=variants, policy=policy, settings=SETTINGS
    )
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "iris", desired.key(obj)
        assert labels[meta.LABEL_DEPLOYMENT] == "iris"
        assert labels["app.kubernetes.io/part-of"] == "modelpilot"
        assert labels["app.kubernetes.io/component"] in ("model-server", "router", "drift")
        assert_owned_by(obj)
