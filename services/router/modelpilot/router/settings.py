"""Settings of the router, read from `MODELPILOT_ROUTER_*` environment variables.

The routes come from exactly one source: the ConfigMap (`NAMESPACE` + `CONFIGMAP`, watched through
the Kubernetes API) or a file (`ROUTES_FILE`, for local runs). Names are pinned in
docs/architecture.md.
"""

from __future__ import annotations

import pydantic
import pydantic_settings

from modelpilot.api import constants


class RouterSettings(pydantic_settings.BaseSettings):
    """How one router process runs."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="MODELPILOT_ROUTER_", extra="ignore"
    )

    deployment: str = pydantic.Field(default="default", description="ModelDeployment name.")
    """The ModelDeployment this router fronts (a metric label)."""

    namespace: str | None = pydantic.Field(default=None, description="Namespace of the ConfigMap.")
    """Namespace of the routes ConfigMap (with `configmap`)."""

    configmap: str | None = pydantic.Field(default=None, description="Routes ConfigMap name.")
    """Name of the routes ConfigMap (`<deployment>-routes`), watched through the Kubernetes API."""

    configmap_key: str = pydantic.Field(default="routes.json", description="Key in the ConfigMap.")
    """Key of the routes document in the ConfigMap."""

    routes_file: str | None = pydantic.Field(default=None, description="Routes file (local runs).")
    """A routes.json file, re-read when it changes (instead of the ConfigMap)."""

    host: str = pydantic.Field(default="0.0.0.0", description="Address to listen on.")
    """Address to listen on."""

    port: int = pydantic.Field(
        default=constants.CONTAINER_PORT, ge=0, le=65535, description="Port to listen on."
    )
    """Port to listen on."""

    admin_port: int = pydantic.Field(
        default=constants.ADMIN_PORT,
        ge=0,
        le=65535,
        description="Port of /stats, /routes and /metrics (not the inference port).",
    )
    """The admin port: `/stats` (the operator's reads), `/routes` and `/metrics` (Prometheus), kept
    off the inference port so a NetworkPolicy can tell their readers from clients (issue 15). 0
    picks a free one (tests)."""

    @pydantic.field_validator("admin_port")
    @classmethod
    def _admin_port_is_its_own(cls, value: int, info: pydantic.ValidationInfo) -> int:
        if value != 0 and value == info.data.get("port"):
            raise ValueError(f"{value} is also the inference port; give it a port of its own")
        return value

    timeout_seconds: float = pydantic.Field(default=10.0, gt=0, description="Backend timeout.")
    """Total time allowed for a backend to answer before the request counts as failed."""

    connect_timeout_seconds: float = pydantic.Field(
        default=1.0, gt=0, description="Connect timeout."
    )
    """Time allowed to open a connection to a backend."""

    max_connections: int = pydantic.Field(default=200, gt=0, description="Pooled connections.")
    """Size of the pooled client's connection pool (all backends)."""

    max_body_bytes: int = pydantic.Field(default=1_048_576, gt=0, description="Largest body (413).")
    """Largest request body forwarded; larger ones get 413."""

    feedback_ttl_seconds: float = pydantic.Field(
        default=3600.0, gt=0, le=30 * 86400, description="Feedback TTL."
    )
    """How long a request id can still receive its reward (checked against the time signed into
    the id, so it holds across replicas and restarts)."""

    feedback_max_entries: int = pydantic.Field(
        default=200_000, gt=0, description="In-process de-duplication bound."
    )
    """Without a store: most joined request ids remembered to refuse their duplicates (the oldest
    are forgotten first; should exceed the rewards of one TTL)."""

    feedback_key: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="Key that signs request ids (shared by the replicas)."
    )
    """HMAC-SHA256 key of the request ids (at least 16 bytes; from a Secret). Every replica of a
    router Deployment needs the same key to join the others' rewards. Unset: the key kept in the
    feedback store (the first replica writes a random one), else a random key of this process
    (rewards then join only here and only until it restarts)."""

    feedback_store_url: str | None = pydantic.Field(
        default=None, description="Redis/Valkey URL for exactly-once rewards across replicas."
    )
    """`redis://[:password@]host:port/db` of the Redis or Valkey server the replicas share to count
    each reward once. Unset: an in-process set (one replica)."""

    feedback_store_timeout_seconds: float = pydantic.Field(
        default=0.5, gt=0, description="Timeout of one call to the feedback store."
    )
    """A `/feedback` whose store call takes longer answers 503 (not counted: retry it)."""

    reward_limit: float = pydantic.Field(
        default=1e6, gt=0, le=1e12, description="Largest |reward| when none is declared."
    )
    """Bound on the magnitude of a reward when the routes declare no range (no Experiment, or a
    continuous reward without minimum/maximum): sums and sums of squares stay finite."""

    poll_seconds: float = pydantic.Field(default=0.1, gt=0, description="Routes file poll period.")
    """How often the routes file is checked for a change."""

    routes_invalid_unready_seconds: float = pydantic.Field(
        default=120.0,
        ge=0,
        description="Unready after the routes stay invalid this long (0: never).",
    )
    """When the latest routes document stays invalid (or unreadable) this long, `/readyz` answers
    503 with the reason, while the last good routes keep serving. Longer than the operator's resync
    (60 s), which rewrites a ConfigMap edited by hand, so only a lasting fault shows."""

    max_header_bytes: int = pydantic.Field(
        default=32_768, ge=1024, description="Largest request line + headers (431 above)."
    )
    """Largest request head (request line and headers) read; a larger one gets 431 and the
    connection is closed, before the head is held in memory (nginx allows 4 x 8 KiB)."""

    seed: int | None = pydantic.Field(default=None, description="Seed of the variant draws.")
    """Seed of the per-request draws (tests); random when unset."""

    keep_alive_seconds: float = pydantic.Field(
        default=75.0, gt=0, description="Idle keep-alive connections are closed after this."
    )
    """Idle keep-alive timeout. Longer than the clients' own (httpx expires pooled connections
    after 5 s, uvicorn's default is also 5 s: equal timeouts race, and a request sent on a
    connection the server is closing fails with a read error). 75 s is nginx's default."""

    log_level: str = pydantic.Field(default="info", description="uvicorn log level.")
    """uvicorn log level."""
