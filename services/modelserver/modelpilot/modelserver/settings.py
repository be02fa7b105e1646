"""Settings of the model server, read from `MODELPILOT_SERVER_*` environment variables.

pydantic-settings with one docstring per field (as MLServer does), so `--help`, the chart and the
operator's pod builder can all agree on one list of knobs.
"""

from __future__ import annotations

import pydantic
import pydantic_settings

from modelpilot.api import constants


class ServerSettings(pydantic_settings.BaseSettings):
    """How one model-server process runs."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="MODELPILOT_SERVER_", extra="ignore", protected_namespaces=()
    )

    model_uri: str = pydantic.Field(
        description="The model to serve: `models:/<name>/<version>` or `models:/<name>@<alias>`."
    )
    """The model to serve, resolved against the tracking server."""

    tracking_uri: str | None = pydantic.Field(
        default=None, description="MLflow tracking URI; MLFLOW_TRACKING_URI when unset."
    )
    """MLflow tracking URI; the MLFLOW_TRACKING_URI environment variable when unset."""

    deployment: str = pydantic.Field(
        default="default", description="ModelDeployment name (metric label)."
    )
    """The ModelDeployment this server belongs to (a metric label)."""

    variant: str = pydantic.Field(
        default=constants.STABLE, description="Variant name (metric label)."
    )
    """The variant this server serves (a metric label; `stable` for the champion)."""

    host: str = pydantic.Field(default="0.0.0.0", description="Address to listen on.")
    """Address to listen on."""

    port: int = pydantic.Field(
        default=constants.CONTAINER_PORT, ge=0, le=65535, description="Port to listen on."
    )
    """Port to listen on (0 picks a free one; only useful in tests)."""

    admin_port: int = pydantic.Field(
        default=constants.ADMIN_PORT,
        ge=0,
        le=65535,
        description="Port of /drift/window and /metrics (not the inference port).",
    )
    """The admin port: `/drift/window` (the drift job's reads) and `/metrics` (Prometheus), kept
    off the inference port so a NetworkPolicy can let only the routers reach inference (issue 15).
    0 picks a free one (tests)."""

    @pydantic.field_validator("admin_port")
    @classmethod
    def _admin_port_is_its_own(cls, value: int, info: pydantic.ValidationInfo) -> int:
        if value != 0 and value == info.data.get("port"):
            raise ValueError(f"{value} is also the inference port; give it a port of its own")
        return value

    grpc_port: int | None = pydantic.Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the Open Inference Protocol over gRPC (unset: no gRPC).",
    )
    """Port of `inference.GRPCInferenceService` (the operator's pods use 8081); unset, the
    server speaks HTTP only. The gRPC server listens on `host` too."""

    max_body_bytes: int = pydantic.Field(
        default=1_048_576, gt=0, description="Largest request body accepted (413 above it)."
    )
    """Largest request body accepted; larger bodies get 413 before they are parsed."""

    max_batch_rows: int = pydantic.Field(
        default=10_000, gt=0, description="Largest number of rows in one request (413 above it)."
    )
    """Largest number of rows in one request."""

    batching: bool = pydantic.Field(
        default=True, description="Share one model call between concurrent requests."
    )
    """Adaptive batching: requests that arrive while the model runs share its next call. Turn off
    for models whose output for a row depends on the rest of the batch."""

    max_batch_size: int = pydantic.Field(
        default=32, gt=0, description="Most requests one batched model call takes."
    )
    """With batching on, the most requests one model call takes (MLServer's `max_batch_size`);
    a batch also stops at `max_batch_rows` rows. A request that finds no queue runs at once."""

    drift_window: bool = pydantic.Field(
        default=True, description="Keep a drift window over the reference profile."
    )
    """Keep a mergeable drift window of recent inputs (needs the version's reference profile)."""

    window_seconds: float = pydantic.Field(
        default=3600.0, gt=0, description="Period after which the drift window rotates."
    )
    """The drift window covers the last one to two of these periods of traffic."""

    load_retry_seconds: float = pydantic.Field(
        default=5.0, gt=0, description="Pause between attempts when loading the model fails."
    )
    """Pause between attempts when loading the model fails (the pod stays unready meanwhile)."""

    keep_alive_seconds: float = pydantic.Field(
        default=75.0, gt=0, description="Idle keep-alive connections are closed after this."
    )
    """Idle keep-alive timeout. Longer than the clients' own (httpx expires pooled connections
    after 5 s, uvicorn's default is also 5 s: equal timeouts race, and a request sent on a
    connection the server is closing fails with a read error). 75 s is nginx's default."""

    log_level: str = pydantic.Field(default="info", description="uvicorn log level.")
    """uvicorn log level."""

    window_flush_seconds: float = pydantic.Field(
        default=0.0, ge=0, description="Seconds between flushes of the drift window; 0: never."
    )
    """Persist the drift window to MLflow this often (and at shutdown); 0 turns persistence off.
    The operator's pods set 60: a SIGKILL loses at most this much traffic."""

    namespace: str = pydantic.Field(
        default="default", description="Namespace of the pod (keys the persisted windows)."
    )
    """The pod's namespace, part of the persisted windows' key (with the deployment)."""
