"""The operator's one settings class, read from `MODELPILOT_OPERATOR_*` environment variables.

pydantic-settings with a docstring per field (as MLServer does), so the chart, the CLI, the
builders and the experiment loop's counter sources agree on one list of knobs. Design decision:
everything downstream receives this object or values taken from it (nothing reads the environment
itself), which keeps the builders pure and makes every default visible in tests; build it after
the environment is set, or pass the values as arguments.

Renamed variables (issue 14): the experiment loop's settings were a class of their own under
`MODELPILOT_EXPERIMENT_*`. They are fields here now; the old names are still read, after the new
ones (`DEPRECATED`), and `modelpilot.config.load` logs a warning naming the replacement.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import pydantic
import pydantic_settings

PREFIX = "MODELPILOT_OPERATOR_"
"""The environment prefix of every operator setting."""

DEPRECATED = {
    "stats_urls": "MODELPILOT_EXPERIMENT_STATS_URLS",
    "metrics_timeout_seconds": "MODELPILOT_EXPERIMENT_TIMEOUT_SECONDS",
    "latency_window": "MODELPILOT_EXPERIMENT_LATENCY_WINDOW",
}
"""field -> its former environment variable, still read when the new one is unset."""


def _renamed(field: str) -> pydantic.AliasChoices:
    """The new variable first (it wins when both are set), then the former one; the field's own
    name for keyword arguments (`validate_by_name`)."""
    return pydantic.AliasChoices(f"{PREFIX}{field.upper()}", DEPRECATED[field])


class OperatorSettings(pydantic_settings.BaseSettings):
    """How the operator runs and what it deploys by default."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", frozen=True, validate_by_name=True
    )

    namespaces: Annotated[list[str], pydantic_settings.NoDecode] = pydantic.Field(
        default_factory=list,
        description="Namespaces to watch (comma-separated or a JSON list); empty = cluster-wide.",
    )
    """Namespaces to watch; empty means cluster-wide (needs the ClusterRole)."""

    model_server_image: str = pydantic.Field(
        default="ghcr.io/modelpilot/model-server:0.1.0",
        description="Default model-server image.",
    )
    """Model-server image used when a ModelDeployment does not name one."""

    router_image: str = pydantic.Field(
        default="ghcr.io/modelpilot/router:0.1.0", description="Default router image."
    )
    """Router image used when a ModelDeployment does not name one."""

    drift_image: str = pydantic.Field(
        default="ghcr.io/modelpilot/drift:0.1.0", description="Image of the drift CronJob."
    )
    """Image of the drift CronJob (runs `modelpilot drift run`)."""

    image_pull_policy: str = pydantic.Field(
        default="IfNotPresent", description="imagePullPolicy of the pods the operator creates."
    )
    """imagePullPolicy of every pod the operator creates (kind clusters load images locally)."""

    mlflow_tracking_uri: str = pydantic.Field(
        default="http://mlflow.mlops:5000",
        description="Default MLflow tracking URI (a ModelDeployment's spec.registry wins).",
    )
    """MLflow tracking URI used when a ModelDeployment has no `spec.registry.trackingUri`."""

    pushgateway_url: str | None = pydantic.Field(
        default=None,
        description="Pushgateway the drift CronJobs push their gauges to (unset: no push).",
    )
    """Pushgateway URL handed to every drift CronJob as MODELPILOT_DRIFT_PUSHGATEWAY; drift runs
    are short-lived Jobs, which Prometheus cannot scrape."""

    feedback_store_url: str | None = pydantic.Field(
        default=None,
        description="Redis/Valkey URL the routers share to count each reward once (unset: none).",
    )
    """Handed to every router as MODELPILOT_ROUTER_FEEDBACK_STORE_URL: the replicas of a router
    Deployment de-duplicate rewards there (and share their request-id key through it when no
    `router_key_secret` is set). Unset: each router de-duplicates in its own memory, which is
    exact only for one replica that never restarts (the chart's `feedbackStore`)."""

    router_key_secret: str | None = pydantic.Field(
        default=None,
        description="Secret (key `key`) in each namespace holding the routers' request-id key.",
    )
    """Name of a Secret, in each ModelDeployment's namespace, whose `key` entry signs the routers'
    request ids (MODELPILOT_ROUTER_FEEDBACK_KEY, optional: a missing Secret falls back to the key
    kept in the feedback store)."""

    metrics_source: str = pydantic.Field(
        default="router",
        description="Where experiment counts come from: `router` (/stats) or a Prometheus URL.",
    )
    """Where the experiment loop reads per-variant counts: `router` (the routers' /stats) or the
    base URL of a Prometheus server."""

    stats_urls: dict[str, list[str]] = pydantic.Field(
        default_factory=dict,
        validation_alias=_renamed("stats_urls"),
        description="Router /stats URLs by ModelDeployment (JSON), instead of finding router pods.",
    )
    """Router `/stats` URLs by ModelDeployment (`name` or `namespace/name`; `*` for any), as a JSON
    object. A deployment with URLs here is read from them instead of from its router pods: for an
    operator running outside the cluster, and for tests.
    Formerly MODELPILOT_EXPERIMENT_STATS_URLS."""

    metrics_timeout_seconds: float = pydantic.Field(
        default=5.0,
        gt=0,
        validation_alias=_renamed("metrics_timeout_seconds"),
        description="HTTP timeout of one read of the experiment counters.",
    )
    """HTTP timeout of one read of a router's `/stats` or of one Prometheus query. Formerly
    MODELPILOT_EXPERIMENT_TIMEOUT_SECONDS."""

    latency_window: str = pydantic.Field(
        default="5m",
        pattern=r"^[0-9]+[smh]$",
        validation_alias=_renamed("latency_window"),
        description="PromQL range of the p99 latency read from Prometheus (e.g. 5m).",
    )
    """PromQL range of the p99 latency guardrail when counts come from Prometheus
    (`histogram_quantile` over `rate(...[window])`).
    Formerly MODELPILOT_EXPERIMENT_LATENCY_WINDOW."""

    resync_seconds: float = pydantic.Field(
        default=60.0,
        gt=0,
        description="How often every ModelDeployment is re-resolved and re-applied.",
    )
    """Resync interval: aliases are re-resolved and desired objects re-applied this often."""

    resync_mode: Literal["cache", "relist"] = pydantic.Field(
        default="cache",
        description="`cache`: check against the watch cache; `relist`: the former timer.",
    )
    """How the periodic resync works. `cache` (the default) compares every ModelDeployment with
    the operator's watch cache and makes API requests only where something differs; `relist` is
    the former behaviour, a kopf timer per object that lists eight kinds and re-applies
    everything (kept as the baseline of bench/operator_idle.py)."""

    registry_retry_seconds: float = pydantic.Field(
        default=10.0, gt=0, description="First retry delay when MLflow is unreachable."
    )
    """Delay before the first retry when the registry is unreachable (doubled per attempt, capped
    at the resync interval)."""

    health_port: int = pydantic.Field(
        default=8081, ge=0, le=65535, description="Port of the /healthz liveness endpoint."
    )
    """Port of kopf's liveness endpoint (`/healthz`); 0 disables it."""

    metrics_port: int = pydantic.Field(
        default=9090, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint."
    )
    """Port of the operator's Prometheus metrics; 0 disables it."""

    peering_name: str | None = pydantic.Field(
        default=None,
        description="kopf peering name for more than one replica; unset = standalone.",
    )
    """kopf peering object name (needs the kopf.dev CRDs); unset runs standalone (one replica)."""

    peering_priority: int | None = pydantic.Field(
        default=None,
        description="kopf peering priority of this replica; unset = random (one active replica).",
    )
    """kopf peering priority. kopf pauses *every* replica when peers share a priority, so replicas
    of one Deployment must differ: unset draws a random one, electing the highest as the only
    active replica; the others pause and take over when its keep-alive lapses."""

    peering_lifetime_seconds: int = pydantic.Field(
        default=60, ge=5, le=3600, description="How long a silent peer counts as alive."
    )
    """Keep-alive lifetime of a peer: a replica that stops renewing is considered gone after this
    long, and a paused replica resumes."""

    workers: int = pydantic.Field(
        default=20, ge=1, le=256, description="Threads for the synchronous handlers."
    )
    """Size of the thread pool kopf runs the synchronous handlers in."""

    @pydantic.field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @pydantic.field_validator("metrics_source")
    @classmethod
    def _router_or_url(cls, value: str) -> str:
        if value != "router" and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected 'router' or a Prometheus http(s) URL, got {value!r}")
        return value

    @property
    def cluster_wide(self) -> bool:
        return not self.namespaces
