"""Names every component agrees on: ports, policy, reward and phase names, stable variant, labels.

Defined once here and imported by the CRDs, the operator's builders and handlers, the router, the
model server and the drift job; a literal restated elsewhere is a bug waiting for the day one side
changes. Pure: no imports beyond the standard library.
"""

from __future__ import annotations

from typing import Final, Literal

# ---- the API group ---------------------------------------------------------------------------
GROUP: Final = "modelpilot.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
MODEL_DEPLOYMENT_KIND: Final = "ModelDeployment"
EXPERIMENT_KIND: Final = "Experiment"

# ---- ports -------------------------------------------------------------------------------------
CONTAINER_PORT: Final = 8080
"""The port the model-server and router containers serve inference (and health) on; the readers of
`/stats`, `/drift/window` and `/metrics` use `ADMIN_PORT`."""
SERVICE_PORT: Final = 80
"""The port of every Service the operator creates (`http://<service>.<namespace>.svc:80`)."""
ADMIN_PORT: Final = 8082
"""The second listener of the model-server and router containers (named `admin`, never on a
Service): the router's `/stats`, `/routes` and `/metrics`, the model server's `/drift/window` and
`/metrics`. The operator, the drift job and Prometheus read it pod by pod; the inference port no
longer serves these paths, so a NetworkPolicy can open one port to clients and the other only to
those readers (issue 15). Health stays on the inference port (probes check the listener users
reach). Envoy's admin and Knative's queue-proxy metrics ports are the same split."""
ADMIN_PORT_NAME: Final = "admin"
"""The container port name of `ADMIN_PORT` (the PodMonitor, the NetworkPolicies and the readers
find the port by it)."""
DRAIN_SECONDS: Final = 5
"""How long a terminating model-server or router container keeps serving before it is sent SIGTERM
(a preStop sleep): a pod being deleted leaves its Service's EndpointSlice at once, but kube-proxy
(and any client's connection pool) learns it a moment later; a container that stopped at once
would refuse the connections still routed to it (a real-pod rollout counted 2 of 141 requests
failed with "could not connect"). Kubernetes' own guidance for zero-downtime rollouts; well inside
the default 30 s terminationGracePeriodSeconds."""
GRPC_PORT: Final = 8081
"""The model server's Open Inference Protocol over gRPC, in its container and on its Service
(`<service>.<namespace>.svc:8081`); the router stays HTTP-only (issue 16)."""

# ---- variants ----------------------------------------------------------------------------------
STABLE: Final = "stable"
"""The stable variant's name: the ModelDeployment's own model, the control of every experiment.
Reserved: no challenger may take it."""

# ---- experiment policies, rewards, outcomes ----------------------------------------------------
PolicyType = Literal["thompson", "epsilon-greedy", "fixed"]
THOMPSON: Final = "thompson"
EPSILON_GREEDY: Final = "epsilon-greedy"
FIXED: Final = "fixed"
POLICY_TYPES: Final[tuple[PolicyType, ...]] = ("thompson", "epsilon-greedy", "fixed")

RewardType = Literal["binary", "continuous"]
BINARY: Final = "binary"
CONTINUOUS: Final = "continuous"
REWARD_TYPES: Final[tuple[RewardType, ...]] = ("binary", "continuous")

OnSuccess = Literal["promote", "report"]
PROMOTE: Final = "promote"
REPORT: Final = "report"
ON_SUCCESS: Final[tuple[OnSuccess, ...]] = ("promote", "report")

# ---- experiment phases -------------------------------------------------------------------------
Phase = Literal["Pending", "Running", "Promoted", "RolledBack", "Concluded", "Failed"]
PENDING: Final = "Pending"
RUNNING: Final = "Running"
PROMOTED: Final = "Promoted"
ROLLED_BACK: Final = "RolledBack"
CONCLUDED: Final = "Concluded"
FAILED: Final = "Failed"
PHASES: Final[tuple[Phase, ...]] = (
    "Pending",
    "Running",
    "Promoted",
    "RolledBack",
    "Concluded",
    "Failed",
)
TERMINAL_PHASES: Final[frozenset[str]] = frozenset({PROMOTED, ROLLED_BACK, CONCLUDED, FAILED})
"""Phases an experiment never leaves."""

# ---- labels and annotations (the `app.kubernetes.io/*` keys plus one `modelpilot.io/*` domain) --
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
PART_OF: Final = "modelpilot"
LABEL_DEPLOYMENT: Final = "modelpilot.io/deployment"
LABEL_VARIANT: Final = "modelpilot.io/variant"
LABEL_EXPERIMENT: Final = "modelpilot.io/experiment"
ANNOTATION_MODEL_VERSION: Final = "modelpilot.io/model-version"
ANNOTATION_CHANGE_REASON: Final = "modelpilot.io/change-reason"
"""On a ModelDeployment: `{"version": v, "reason": why}`; its controller copies `why` into
`status.history` when it rolls out version `v` (how a promotion's reason reaches the history)."""

COMPONENT_MODEL_SERVER: Final = "model-server"
COMPONENT_ROUTER: Final = "router"
COMPONENT_DRIFT: Final = "drift"

# ---- the routes ConfigMap ----------------------------------------------------------------------
ROUTES_KEY: Final = "routes.json"
"""The key of the routes document in the `<deployment>-routes` ConfigMap."""
