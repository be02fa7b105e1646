"""Where the experiment loop reads per-variant counters: the routers' `/stats`, or Prometheus.

The one I/O module of the experiment package. Both sources return the same thing: cumulative
counters *per source* (one router pod, one URL, one Prometheus series' `pod`/`instance`) and
variant, so that `counts.increments` can recognise a restarted router by its counter going down.

    StatsSource       GET <url>/stats of every router pod (found by label) or of the URLs given in
                      setting `stats_urls` (MODELPILOT_OPERATOR_STATS_URLS: local runs, tests).
    PrometheusSource  instant queries of the router counters of docs/architecture.md, one result
                      per series (not summed: a reset must stay visible per pod), plus the p99
                      latency from the histogram over `latency_window`.

Both take the operator's settings (`operator.settings.OperatorSettings`: `stats_urls`,
`metrics_timeout_seconds`, `latency_window`) as an argument and never read the environment.

The sum of squared rewards is read where the routers report it (`reward_sum_squares` in `/stats`,
`modelpilot_router_reward_sum_squares_total`); a router of an earlier version reports none, which
reads as None (unknown), never as 0. From Prometheus the sum of rewards is
`modelpilot_router_reward_sum_total - modelpilot_router_negative_reward_sum_total` (a counter cannot
go down, so the routers count negative rewards apart).

Errors: every failure to read (connection refused, HTTP error, malformed JSON) is a
`SourceError`; the handler turns it into a retry, never into a decision on partial data. The
design decision is that one router that cannot be read fails the whole read: deciding on the
counts of the others would see a sudden drop of that router's share and could raise a false SRM.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from modelpilot import errors
from modelpilot.api import constants
from modelpilot.api import stats as stats_contract
from modelpilot.kube import apply
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.experiment import counts as counts_mod

ROUTER_ADMIN_PORT = constants.ADMIN_PORT
"""The router container's admin port, where `/stats` is served (issue 15), when a pod does not
name it (`constants.ADMIN_PORT_NAME`)."""


def stats_url(pod: Mapping[str, Any]) -> str | None:
    """`/stats` of one router pod: its IP and the port it names `admin` (the one its NetworkPolicy
    opens to the operator; `ROUTER_ADMIN_PORT` when unnamed); None until it runs with an IP."""
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if not ip or status.get("phase") != "Running":
        return None
    port = ROUTER_ADMIN_PORT
    for container in (pod.get("spec") or {}).get("containers") or []:
        for named in container.get("ports") or []:
            if named.get("name") == constants.ADMIN_PORT_NAME and named.get("containerPort"):
                port = int(named["containerPort"])
    host = f"[{ip}]" if ":" in ip else ip  # an IPv6 pod address (RFC 3986)
    return f"http://{host}:{port}/stats"


class SourceError(errors.Unavailable):
    """The counters could not be read; retry later (transient: `errors.kind_of`)."""


class Source(Protocol):
    def read(self, *, namespace: str, deployment: str) -> counts_mod.Observed:
        """Cumulative counters per source and variant for one ModelDeployment."""
        ...  # a Protocol: implemented by StatsSource and PrometheusSource


def _number(value: object, *, where: str, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SourceError(f"{where}: expected a finite number, got {value!r}")
    if low is not None and value < low:
        raise SourceError(f"{where}: expected a number >= {low:g}, got {value!r}")
    return float(value)


def parse_stats(doc: object, *, where: str) -> dict[str, counts_mod.VariantCounts]:
    """One router's `GET /stats` body (contract: `modelpilot.api.stats`) -> variant -> counters."""
    try:
        parsed = stats_contract.parse(doc)
    except stats_contract.InvalidStats as exc:
        raise SourceError(f"{where}: {exc}") from exc
    return {
        name: counts_mod.VariantCounts(
            requests=v.requests,
            errors=v.errors,
            rewards=v.rewards,
            reward_sum=v.reward_sum,
            latency_p99_ms=v.latency_p99_ms,
            reward_sum_squares=v.reward_sum_squares,
        )
        for name, v in parsed.variants.items()
    }


class StatsSource:
    """The routers' `/stats` JSON, one source per router pod (or per configured URL)."""

    def __init__(self, settings: settings_mod.OperatorSettings) -> None:
        self.settings = settings

    def urls(self, *, namespace: str, deployment: str) -> dict[str, str]:
        """source name -> /stats URL."""
        configured = self.settings.stats_urls
        for key in (f"{namespace}/{deployment}", deployment, "*"):
            if key in configured:
                return {url: url for url in configured[key]}
        pods = apply.list_objects(
            "v1",
            "Pod",
            namespace=namespace,
            selector=f"{constants.LABEL_DEPLOYMENT}={deployment},"
            f"{constants.LABEL_COMPONENT}={constants.COMPONENT_ROUTER}",
        )
        out = {}
        for pod in pods:
            url = stats_url(pod)
            if url is not None:
                out[pod["metadata"]["name"]] = url
        return out

    def read(self, *, namespace: str, deployment: str) -> counts_mod.Observed:
        urls = self.urls(namespace=namespace, deployment=deployment)
        if not urls:
            raise SourceError(f"no router of {namespace}/{deployment} to read /stats from")
        out: dict[str, dict[str, counts_mod.VariantCounts]] = {}
        with httpx.Client(timeout=self.settings.metrics_timeout_seconds) as client:
            for source, url in sorted(urls.items()):
                try:
                    response = client.get(url)
                    response.raise_for_status()
                    doc = response.json()
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    raise SourceError(f"GET {url}: {exc}") from exc
                out[source] = parse_stats(doc, where=f"GET {url}")
        return out


_COUNTERS = {
    "requests": "modelpilot_router_requests_total",
    "errors": "modelpilot_router_errors_total",
    "rewards": "modelpilot_router_rewards_total",
    "rewardSum": "modelpilot_router_reward_sum_total",
    "negativeRewardSum": "modelpilot_router_negative_reward_sum_total",
    "rewardSumSquares": "modelpilot_router_reward_sum_squares_total",
}


def _series_source(metric: Mapping[str, str]) -> str:
    return metric.get("pod") or metric.get("instance") or "prometheus"


class PrometheusSource:
    """Instant queries of the router counters on the Prometheus HTTP API (`/api/v1/query`)."""

    def __init__(self, base_url: str, settings: settings_mod.OperatorSettings) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings

    def _query(self, client: httpx.Client, promql: str) -> Sequence[Mapping[str, Any]]:
        url = f"{self.base_url}/api/v1/query"
        try:
            response = client.get(url, params={"query": promql})
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise SourceError(f"GET {url} ({promql}): {exc}") from exc
        if doc.get("status") != "success" or doc.get("data", {}).get("resultType") != "vector":
            raise SourceError(f"{url} ({promql}): not a successful vector result: {doc!r:.200}")
        result: Sequence[Mapping[str, Any]] = doc["data"]["result"]
        return result

    def read(self, *, namespace: str, deployment: str) -> counts_mod.Observed:
        selector = f'namespace="{namespace}",deployment="{deployment}"'
        raw: dict[str, dict[str, dict[str, float]]] = {}
        p99: dict[str, float] = {}
        with httpx.Client(timeout=self.settings.metrics_timeout_seconds) as client:
            for key, metric in _COUNTERS.items():
                for sample in self._query(client, f"{metric}{{{selector}}}"):
                    labels = sample.get("metric") or {}
                    variant = labels.get("variant")
                    if variant is None:
                        continue
                    value = _number(float(sample["value"][1]), where=f"{metric}{labels}")
                    per = raw.setdefault(_series_source(labels), {}).setdefault(variant, {})
                    per[key] = per.get(key, 0.0) + value
            window = self.settings.latency_window
            quantile = (
                "1000 * histogram_quantile(0.99, sum by (le, variant) "
                f"(rate(modelpilot_router_latency_seconds_bucket{{{selector}}}[{window}])))"
            )
            for sample in self._query(client, quantile):
                variant = (sample.get("metric") or {}).get("variant")
                value = float(sample["value"][1])
                if variant is not None and math.isfinite(value):
                    p99[variant] = value
        return {
            source: {
                variant: counts_mod.VariantCounts(
                    requests=int(c.get("requests", 0)),
                    errors=int(c.get("errors", 0)),
                    rewards=int(c.get("rewards", 0)),
                    reward_sum=c.get("rewardSum", 0.0) - c.get("negativeRewardSum", 0.0),
                    latency_p99_ms=p99.get(variant),
                    reward_sum_squares=c.get("rewardSumSquares"),
                )
                for variant, c in per.items()
            }
            for source, per in raw.items()
        }


def make_source(settings: settings_mod.OperatorSettings) -> Source:
    """`metrics_source` `router` -> StatsSource, else (a Prometheus http(s) URL: the settings
    refuse anything else) -> PrometheusSource on that server."""
    if settings.metrics_source == "router":
        return StatsSource(settings)
    return PrometheusSource(settings.metrics_source, settings)
