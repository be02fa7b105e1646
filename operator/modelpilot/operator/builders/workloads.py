"""Model-server and router Deployments, Services and the router's RBAC.

Design decision: `build_model_server_deployment` takes the variant, the *resolved* model (never an
alias) and the owner explicitly, so the Experiment controller builds its challengers with the same
function (owner = the Experiment, `experiment=` adds the `modelpilot.io/experiment` label). The pod
template carries the model version as an annotation, so a new version is a new ReplicaSet (rollout).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelpilot.api import constants
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import meta

CONTAINER_PORT = constants.CONTAINER_PORT
SERVICE_PORT = constants.SERVICE_PORT
GRPC_PORT = constants.GRPC_PORT
ADMIN_PORT = constants.ADMIN_PORT
ANNOTATION_MODEL_VERSION = constants.ANNOTATION_MODEL_VERSION
WINDOW_FLUSH_SECONDS = 60

# sizeLimit of each pod's /tmp emptyDir (issue 15): without one, a pod can fill the node's disk
# and get every pod on it evicted. The model server downloads the model into /tmp (MLflow's
# default `dst_path`), so it gets room for a model; a container's `ephemeral-storage` limit, when
# set in its resources, is used instead (it is the user's statement of what the pod may write).
TMP_SIZE_LIMIT = {"model-server": "2Gi", "router": "64Mi", "drift": "256Mi"}

# The startupProbe (issue 13): Kubernetes runs neither liveness nor readiness probes until it has
# succeeded once. Without it, the liveness probe (every 10 s, 3 failures) restarts a container that
# has not answered within ~30 s of its start: a model server still importing its libraries or
# loading a large model (or on a CPU-throttled node) would be killed before it could serve, again
# and again. The model server's startup probe is its readiness path ("the model is loaded"), the
# router's its liveness path ("the process answers"); both may take STARTUP_SECONDS, then the
# liveness probe takes over with its short period. See
# https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/.
STARTUP_SECONDS = 600
STARTUP_PERIOD_SECONDS = 2


def startup_probe(path: str) -> dict[str, Any]:
    """A startupProbe of `path` on the http port that allows STARTUP_SECONDS to pass."""
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": STARTUP_PERIOD_SECONDS,
        "failureThreshold": STARTUP_SECONDS // STARTUP_PERIOD_SECONDS,
    }


def tmp_volume(component: str, resources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `/tmp` emptyDir of a workload's pod, bounded (see `TMP_SIZE_LIMIT`)."""
    limits = (resources or {}).get("limits") or {}
    size = limits.get("ephemeral-storage") or TMP_SIZE_LIMIT[component]
    return {"name": "tmp", "emptyDir": {"sizeLimit": str(size)}}


def _container(
    *,
    name: str,
    image: str,
    env: list[dict[str, Any]],
    resources: Mapping[str, Any] | None,
    settings: settings_mod.OperatorSettings,
    probes: tuple[str, str, str],
) -> dict[str, Any]:
    live, ready, startup = probes
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "env": env,
        # Inference (and health) on `http`; `/stats`, `/drift/window` and `/metrics` on `admin`, a
        # port of its own so a NetworkPolicy can open each to its readers only (issue 15). The
        # admin port is on no Service: its readers (operator, drift job, Prometheus) read each
        # pod's own counters and window, not one replica picked by the Service.
        "ports": [
            {"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"},
            {"name": constants.ADMIN_PORT_NAME, "containerPort": ADMIN_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": {"httpGet": {"path": live, "port": "http"}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": ready, "port": "http"}, "periodSeconds": 5},
        "startupProbe": startup_probe(startup),
        # Keep serving while the endpoint removal reaches kube-proxy, then SIGTERM (drains).
        "lifecycle": {"preStop": {"sleep": {"seconds": constants.DRAIN_SECONDS}}},
        "securityContext": meta.RESTRICTED_CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if resources:
        container["resources"] = dict(resources)
    return container


def _deployment(
    *,
    metadata: dict[str, Any],
    selector: dict[str, str],
    replicas: int,
    container: dict[str, Any],
    service_account: str | None,
    annotations: dict[str, str],
    component: str,
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "securityContext": meta.POD_SECURITY,
        "containers": [container],
        "volumes": [tmp_volume(component, container.get("resources"))],
    }
    if service_account is None:
        pod_spec["automountServiceAccountToken"] = False
    else:
        pod_spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": metadata["labels"], "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def _with_grpc_port(container: dict[str, Any]) -> dict[str, Any]:
    """The model server's container also listens for the OIP over gRPC (issue 16)."""
    container["ports"].append({"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"})
    return container


def _service(
    *, metadata: dict[str, Any], selector: dict[str, str], grpc: bool = False
) -> dict[str, Any]:
    ports = [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]
    if grpc:  # cleartext HTTP/2, so meshes and gateways route it as gRPC (KEP-3726 h2c)
        ports.append(
            {
                "name": "grpc",
                "port": GRPC_PORT,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "kubernetes.io/h2c",
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"type": "ClusterIP", "selector": selector, "ports": ports},
    }


def build_model_server_deployment(
    md: meta.Body,
    *,
    variant: str,
    model: Mapping[str, Any],
    replicas: int,
    settings: settings_mod.OperatorSettings,
    owner: meta.Body | None = None,
    experiment: str | None = None,
    image: str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The model-server Deployment of one variant, serving `model` ({name, version, ...})."""
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    serving = md.get("spec", {}).get("serving") or {}
    env = [
        {
            "name": "MODELPILOT_SERVER_MODEL_URI",
            "value": f"models:/{model['name']}/{model['version']}",
        },
        {
            "name": "MODELPILOT_SERVER_TRACKING_URI",
            "value": meta.tracking_uri(md, settings.mlflow_tracking_uri),
        },
        {"name": "MODELPILOT_SERVER_DEPLOYMENT", "value": md_name},
        {"name": "MODELPILOT_SERVER_VARIANT", "value": variant},
        {"name": "MODELPILOT_SERVER_PORT", "value": str(CONTAINER_PORT)},
        {"name": "MODELPILOT_SERVER_ADMIN_PORT", "value": str(ADMIN_PORT)},
        {"name": "MODELPILOT_SERVER_GRPC_PORT", "value": str(GRPC_PORT)},
        # The drift window survives restarts and rollouts: flushed to MLflow (issue 15), keyed by
        # namespace and deployment; a SIGKILL loses at most one interval of drift samples.
        {"name": "MODELPILOT_SERVER_NAMESPACE", "value": namespace},
        {"name": "MODELPILOT_SERVER_WINDOW_FLUSH_SECONDS", "value": str(WINDOW_FLUSH_SECONDS)},
    ]
    labels = meta.labels(md_name, component="model-server", variant=variant, experiment=experiment)
    return _deployment(
        metadata=meta.metadata(
            name=meta.model_server_name(md_name, variant),
            namespace=namespace,
            labels=labels,
            owner=owner or md,
            annotations={ANNOTATION_MODEL_VERSION: str(model["version"])},
        ),
        selector=meta.selector_labels(md_name, component="model-server", variant=variant),
        replicas=replicas,
        container=_with_grpc_port(
            _container(
                name="model-server",
                image=image or serving.get("image") or settings.model_server_image,
                env=env,
                resources=resources if resources is not None else serving.get("resources"),
                settings=settings,
                probes=("/v2/health/live", "/v2/health/ready", "/v2/health/ready"),
            )
        ),
        service_account=None,
        annotations={
            ANNOTATION_MODEL_VERSION: str(model["version"]),
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(ADMIN_PORT),  # /metrics is on the admin port
        },
        component="model-server",
    )


def build_model_server_service(
    md: meta.Body,
    *,
    variant: str,
    owner: meta.Body | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """The ClusterIP Service `<md>-<variant>` the router forwards to."""
    md_name = meta.name_of(md)
    return _service(
        metadata=meta.metadata(
            name=meta.model_server_name(md_name, variant),
            namespace=meta.namespace_of(md),
            labels=meta.labels(
                md_name, component="model-server", variant=variant, experiment=experiment
            ),
            owner=owner or md,
        ),
        selector=meta.selector_labels(md_name, component="model-server", variant=variant),
        grpc=True,
    )


def build_router_deployment(
    md: meta.Body, *, settings: settings_mod.OperatorSettings
) -> dict[str, Any]:
    """The router: reads `<md>-routes` through the API (its own ServiceAccount, read-only)."""
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    router = md.get("spec", {}).get("router") or {}
    env = [
        {"name": "MODELPILOT_ROUTER_DEPLOYMENT", "value": md_name},
        {"name": "MODELPILOT_ROUTER_NAMESPACE", "value": namespace},
        {"name": "MODELPILOT_ROUTER_CONFIGMAP", "value": meta.routes_configmap_name(md_name)},
        {"name": "MODELPILOT_ROUTER_PORT", "value": str(CONTAINER_PORT)},
        {"name": "MODELPILOT_ROUTER_ADMIN_PORT", "value": str(ADMIN_PORT)},
        *_router_feedback_env(settings),
    ]
    return _deployment(
        metadata=meta.metadata(
            name=meta.router_name(md_name),
            namespace=namespace,
            labels=meta.labels(md_name, component="router"),
            owner=md,
        ),
        selector=meta.selector_labels(md_name, component="router"),
        replicas=int(router.get("replicas", 1)),
        container=_container(
            name="router",
            image=router.get("image") or settings.router_image,
            env=env,
            resources=router.get("resources"),
            settings=settings,
            probes=("/healthz", "/readyz", "/healthz"),
        ),
        service_account=meta.router_name(md_name),
        annotations={"prometheus.io/scrape": "true", "prometheus.io/port": str(ADMIN_PORT)},
        component="router",
    )


def _router_feedback_env(settings: settings_mod.OperatorSettings) -> list[dict[str, Any]]:
    """Where the replicas of a router count each reward once, and the key of their request ids
    (issue 15): without both shared, a reward posted to another replica could not be joined."""
    env: list[dict[str, Any]] = []
    if settings.feedback_store_url:
        env.append(
            {"name": "MODELPILOT_ROUTER_FEEDBACK_STORE_URL", "value": settings.feedback_store_url}
        )
    if settings.router_key_secret:
        env.append(
            {
                "name": "MODELPILOT_ROUTER_FEEDBACK_KEY",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": settings.router_key_secret,
                        "key": "key",
                        "optional": True,
                    }
                },
            }
        )
    return env


def build_router_service(md: meta.Body) -> dict[str, Any]:
    """The stable endpoint: Service `<md>` in front of the router pods."""
    md_name = meta.name_of(md)
    return _service(
        metadata=meta.metadata(
            name=meta.router_service_name(md_name),
            namespace=meta.namespace_of(md),
            labels=meta.labels(md_name, component="router"),
            owner=md,
        ),
        selector=meta.selector_labels(md_name, component="router"),
    )


def build_router_rbac(md: meta.Body) -> list[dict[str, Any]]:
    """ServiceAccount, Role (read its own routes ConfigMap) and RoleBinding of the router."""
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    name = meta.router_name(md_name)
    rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [meta.routes_configmap_name(md_name)],
            "verbs": ["get", "list", "watch"],
        }
    ]
    return build_workload_rbac(md, name=name, namespace=namespace, component="router", rules=rules)


def build_workload_rbac(
    md: meta.Body,
    *,
    name: str,
    namespace: str,
    component: str,
    rules: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    labels = meta.labels(meta.name_of(md), component=component)

    def md_meta() -> dict[str, Any]:
        return meta.metadata(name=name, namespace=namespace, labels=labels, owner=md)

    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": md_meta()},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": md_meta(),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": md_meta(),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
