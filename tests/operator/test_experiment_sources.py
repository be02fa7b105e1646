"""The experiment loop's metrics sources over real HTTP sockets.

`/stats` is served by a real HTTP server in the router's response shape. Prometheus cannot run
here (no binary on this machine), so its HTTP API is a small stand-in server answering
`/api/v1/query` with canned vectors in Prometheus' documented response format: a fake, used only
for the Prometheus source's parsing and per-series bookkeeping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from modelpilot.operator.experiment import counts, sources

Responder = Callable[[str, dict[str, list[str]]], tuple[int, Any]]


@contextmanager
def serving(respond: Responder) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            status, doc = respond(url.path, parse_qs(url.query))
            body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def router_stats(requests: int, errors: int, rewards: int, reward_sum: float) -> dict[str, Any]:
    """The shape of the router's GET /stats (services/modelpilot/router)."""
    return {
        "deployment": "iris",
        "policy": "thompson",
        "routes_version": "abc",
        "variants": {
            "stable": {
                "weight": 80,
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests,
                "fallbacks": 0,
                "rewards": rewards,
                "reward_sum": reward_sum,
                "latency_p50_ms": 3.0,
                "latency_p95_ms": 9.0,
                "latency_p99_ms": 21.5,
                "latency_window": 100,
            },
            "challenger": {
                "weight": 20,
                "requests": 10,
                "errors": 0,
                "error_rate": 0.0,
                "fallbacks": 0,
                "rewards": 0,
                "reward_sum": 0.0,
                "latency_p50_ms": None,
                "latency_p95_ms": None,
                "latency_p99_ms": None,
                "latency_window": 0,
            },
        },
    }


def test_the_stats_source_reads_every_configured_router_as_its_own_source() -> None:
    pods = {"/a/stats": router_stats(100, 2, 50, 7.0), "/b/stats": router_stats(40, 0, 20, 3.0)}

    def respond(path: str, _: dict[str, list[str]]) -> tuple[int, Any]:
        return (200, pods[path]) if path in pods else (404, {"detail": "no"})

    with serving(respond) as base:
        urls = [f"{base}/a/stats", f"{base}/b/stats"]
        settings = sources.ExperimentSettings(stats_urls={"default/iris": urls})
        got = sources.StatsSource(settings).read(namespace="default", deployment="iris")
    assert set(got) == set(urls)
    assert got[urls[0]]["stable"] == counts.VariantCounts(100, 2, 50, 7.0, 21.5)
    assert got[urls[1]]["challenger"] == counts.VariantCounts(10, 0, 0, 0.0, None)


def test_a_router_that_cannot_be_read_fails_the_whole_read() -> None:
    def respond(path: str, _: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/ok/stats":
            return 200, router_stats(100, 2, 50, 7.0)
        if path == "/garbled/stats":
            return 200, b"not json"
        return 500, {"detail": "boom"}

    with serving(respond) as base:
        for broken in ("/down/stats", "/garbled/stats"):
            urls = [f"{base}/ok/stats", f"{base}{broken}"]
            settings = sources.ExperimentSettings(stats_urls={"*": urls})
            with pytest.raises(sources.SourceError, match=broken):
                sources.StatsSource(settings).read(namespace="default", deployment="iris")


def test_a_stats_document_with_a_bad_counter_is_refused_naming_it() -> None:
    doc = router_stats(100, 2, 50, 7.0)
    doc["variants"]["stable"]["requests"] = "many"
    with pytest.raises(sources.SourceError, match=r"stable\.requests"):
        sources.parse_stats(doc, where="GET x")


def _vector(samples: Sequence[tuple[dict[str, str], float]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1700000000.0, str(v)]} for m, v in samples],
        },
    }


def test_the_prometheus_source_keeps_one_source_per_router_pod() -> None:
    queries: list[str] = []
    series = {
        "modelpilot_router_requests_total": [
            ({"pod": "r-1", "variant": "stable"}, 100),
            ({"pod": "r-2", "variant": "stable"}, 30),
            ({"pod": "r-1", "variant": "challenger"}, 12),
        ],
        "modelpilot_router_errors_total": [({"pod": "r-1", "variant": "challenger"}, 1)],
        "modelpilot_router_rewards_total": [({"pod": "r-1", "variant": "stable"}, 80)],
        "modelpilot_router_reward_sum_total": [({"pod": "r-1", "variant": "stable"}, 9)],
    }

    def respond(path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        assert path == "/api/v1/query"
        promql = query["query"][0]
        queries.append(promql)
        if promql.startswith("1000 * histogram_quantile"):
            return 200, _vector([({"variant": "stable"}, 42.0), ({"variant": "challenger"}, 99.0)])
        name = promql.split("{", 1)[0]
        return 200, _vector(series.get(name, []))

    with serving(respond) as base:
        got = sources.PrometheusSource(base).read(namespace="ns", deployment="iris")
    assert got["r-1"]["stable"] == counts.VariantCounts(100, 0, 80, 9.0, 42.0)
    assert got["r-1"]["challenger"] == counts.VariantCounts(12, 1, 0, 0.0, 99.0)
    assert got["r-2"]["stable"] == counts.VariantCounts(30, 0, 0, 0.0, 42.0)
    assert all('namespace="ns",deployment="iris"' in q for q in queries)


def test_a_prometheus_error_is_a_source_error() -> None:
    def respond(path: str, _: dict[str, list[str]]) -> tuple[int, Any]:
        return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}

    with serving(respond) as base, pytest.raises(sources.SourceError):
        sources.PrometheusSource(base).read(namespace="ns", deployment="iris")


def test_the_metrics_source_setting_picks_the_source() -> None:
    assert isinstance(sources.make_source("router"), sources.StatsSource)
    assert isinstance(sources.make_source("http://prometheus:9090"), sources.PrometheusSource)
    with pytest.raises(ValueError, match="metrics source"):
        sources.make_source("statsd")
