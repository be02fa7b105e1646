"""The experiment loop's metrics sources over real HTTP sockets.

`/stats` is served here by a plain HTTP server in the router's response shape, so that the
StatsSource's handling of broken and garbled routers can be shown. The Prometheus source runs
against a real Prometheus (Debian's 2.x, `modelpilot.testing.prometheus`) scraping two real router
processes in front of a real model server, after real traffic and feedback: what it reads per
router (one series' `instance`) is compared with that router's own `/stats`, and a router restart
(a counter reset) is followed through Prometheus. One Prometheus, model server and pair of routers
serve the module (~10 s to start, besides the session's MLflow server); Prometheus starts first, so
its first target reload (a fixed 5 s tick in 2.42) overlaps the others' start-up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from modelpilot import config, errors
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.experiment import counts, sources
from modelpilot.router import metrics as router_metrics
from modelpilot.testing import mlflow_server as mlflow_harness
from modelpilot.testing import ports
from modelpilot.testing import prometheus as prom
from tests.services import conftest as svc

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
    """The shape of the router's GET /stats (services/router/modelpilot/router)."""
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
        settings = settings_mod.OperatorSettings(stats_urls={"default/iris": urls})
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
            settings = settings_mod.OperatorSettings(stats_urls={"*": urls})
            with pytest.raises(sources.SourceError, match=broken):
                sources.StatsSource(settings).read(namespace="default", deployment="iris")


def test_a_stats_document_with_a_bad_counter_is_refused_naming_it() -> None:
    doc = router_stats(100, 2, 50, 7.0)
    doc["variants"]["stable"]["requests"] = "many"
    with pytest.raises(sources.SourceError, match=r"stable\.requests"):
        sources.parse_stats(doc, where="GET x")


# ---- the Prometheus source over a real Prometheus ------------------------------------------------

NAMESPACE = "ml"
VARIANTS = ("stable", "challenger")
# Exact binary fractions: sums and squares add up exactly whatever the order, so Prometheus'
# float64 counters and the routers' /stats can be compared with ==. Negative rewards go through
# the routers' separate negative-sum counter.
REWARDS = (1.0, 0.0, 0.5, -0.25, 1.0)


@dataclass
class Routed:
    """Two real routers (instances `router-a`, `router-b`) of deployment `iris` in front of a real
    model server, scraped every second by a real Prometheus with `namespace="ml"`."""

    prometheus: prom.Prometheus
    routers: dict[str, svc.RouterProc]
    docs: dict[str, dict[str, object]]
    rows: list[dict[str, float]]
    tmp: Path
    stack: contextlib.ExitStack

    def source(self) -> sources.PrometheusSource:
        return sources.PrometheusSource(self.prometheus.url, settings_mod.OperatorSettings())

    def read(self) -> counts.Observed:
        return self.source().read(namespace=NAMESPACE, deployment="iris")

    def stats(self, instance: str) -> dict[str, Any]:
        doc: dict[str, Any] = httpx.get(self.routers[instance].admin + "/stats").json()
        return doc

    def drive(self, instance: str, *, requests: int, seed: int) -> None:
        """`requests` predictions through the router, and feedback for four in five of them."""
        rng = random.Random(seed)
        url = self.routers[instance].url
        with httpx.Client(timeout=10) as client:
            for i in range(requests):
                answer = client.post(url + "/predict", json={"instances": [rng.choice(self.rows)]})
                assert answer.status_code == 200, answer.text
                if i % 5:
                    body = {"request_id": answer.headers["X-Request-Id"], "reward": REWARDS[i % 5]}
                    assert client.post(url + "/feedback", json=body).status_code == 200

    def restart(self, instance: str) -> svc.RouterProc:
        """Stop the router and start a fresh one (counters at zero) on the same port."""
        old = self.routers[instance]
        old.proc.terminate()
        old.proc.wait(timeout=15)
        port = int(old.url.rsplit(":", 1)[1])
        admin_port = int(old.admin.rsplit(":", 1)[1])  # where Prometheus scrapes it
        tmp = self.tmp / f"{instance}-restarted"
        tmp.mkdir()
        new = self.stack.enter_context(
            svc.router_process(self.docs[instance], tmp, port=port, admin_port=admin_port)
        )
        self.routers[instance] = new
        return new


@pytest.fixture(scope="module")
def routed(
    mlflow_server: mlflow_harness.MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Routed]:
    os.environ.setdefault("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    tmp = tmp_path_factory.mktemp("routed")
    # (inference port, admin port): Prometheus scrapes /metrics on the admin port (issue 15).
    router_ports = {
        name: (ports.free_port(), ports.free_port()) for name in ("router-a", "router-b")
    }
    job = prom.ScrapeJob(
        "modelpilot-router",
        {name: f"127.0.0.1:{admin}" for name, (_, admin) in router_ports.items()},
        labels={"namespace": NAMESPACE},
    )
    with contextlib.ExitStack() as stack:
        # Prometheus first: its first target reload (5 s) overlaps the servers' start-up.
        server = stack.enter_context(prom.running(tmp / "prometheus", [job]))
        model = svc.register_iris(mlflow_server.tracking_uri, with_profile=False)
        # One model server behind both variants: the counters under test are the routers', and
        # a second server would only add its ~5 s start-up.
        backend = stack.enter_context(svc.model_server(model, tmp))
        dead = f"http://127.0.0.1:{ports.free_port()}"  # nothing listens there
        docs: dict[str, dict[str, object]] = {
            "router-a": svc.routes_doc(backend.url, backend.url, weights=(70, 30)),
            # Router b's challenger is down: its requests fail over to stable, so the error
            # counters are not all zero.
            "router-b": svc.routes_doc(backend.url, dead, weights=(80, 20)),
        }
        routers = {}
        for name, (port, admin) in router_ports.items():
            (tmp / name).mkdir()
            routers[name] = stack.enter_context(
                svc.router_process(
                    docs[name], tmp / name, port=port, admin_port=admin, seed=len(routers)
                )
            )
        rows = model.features.head(30).to_dict(orient="records")
        yield Routed(server, routers, docs, rows, tmp, stack)


def _without_latency(per_variant: Mapping[str, counts.VariantCounts]) -> dict[str, Any]:
    return {v: dataclasses.replace(c, latency_p99_ms=None) for v, c in per_variant.items()}


def _routed_variants(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The router's /stats, parsed as the StatsSource parses it, for the variants it has routed
    to (a router creates a variant's series at its first request)."""
    parsed = sources.parse_stats(stats, where="/stats")
    return _without_latency({v: c for v, c in parsed.items() if c.requests})


def _buckets_around(low_ms: float, high_ms: float) -> tuple[float, float]:
    """From the router histogram's bucket below the one holding `low_ms` to the bucket above the
    one holding `high_ms`, in ms: the resolution of a `histogram_quantile` estimate."""
    bounds = [0.0, *(b * 1e3 for b in router_metrics.LATENCY_BUCKETS), math.inf]
    low = next(i for i, b in enumerate(bounds) if b >= low_ms)
    high = next(i for i, b in enumerate(bounds) if b >= high_ms)
    return bounds[max(low - 2, 0)], bounds[min(high + 1, len(bounds) - 1)]


@pytest.mark.mlflow
def test_prometheus_counts_per_router_equal_each_routers_own_stats(routed: Routed) -> None:
    instances = tuple(routed.routers)
    # A series is born at the first scrape after the router's first request to a variant; the
    # latency quantile (a rate) counts only what comes after that sample, so warm up first.
    for seed, instance in enumerate(instances):
        routed.drive(instance, requests=10, seed=seed)
    routed.prometheus.wait_fresh(*instances)
    for seed, instance in enumerate(instances, start=10):
        routed.drive(instance, requests=150, seed=seed)
    routed.prometheus.wait_fresh(*instances)

    got = routed.read()
    stats = {instance: routed.stats(instance) for instance in instances}

    assert set(got) == set(instances)
    for instance in instances:
        assert _without_latency(got[instance]) == _routed_variants(stats[instance]), instance
    # The figures behind that equality, spelled out.
    a, b = got["router-a"], got["router-b"]
    assert a["stable"].requests + a["challenger"].requests == 160
    assert a["challenger"].errors == 0
    assert b["challenger"].errors == b["challenger"].requests > 0
    assert sum(c.rewards for c in a.values()) == 128  # feedback for 4 in 5 requests
    assert b["stable"].reward_sum == stats["router-b"]["variants"]["stable"]["reward_sum"]

    # One p99 per variant, from the histogram of both routers together (the source's query), and
    # the same for every router. A quantile of the merged traffic lies between the routers' own
    # (/stats: exact, over a ring that also holds the warm-up), up to the histogram's resolution:
    # a bucket either way, as `rate()` extrapolates each bucket's series on its own. The routers'
    # p50 stands for the lower end.
    for variant in VARIANTS:
        p99s = {got[i][variant].latency_p99_ms for i in instances}
        assert len(p99s) == 1, p99s
        (p99,) = p99s
        assert p99 is not None
        low = min(stats[i]["variants"][variant]["latency_p50_ms"] for i in instances)
        high = max(stats[i]["variants"][variant]["latency_p99_ms"] for i in instances)
        floor, ceiling = _buckets_around(low, high)
        assert floor <= p99 <= ceiling, (variant, low, p99, high)
        assert 0 < p99 < 1000


@pytest.mark.mlflow
def test_a_router_restart_is_a_counter_reset_seen_through_prometheus(routed: Routed) -> None:
    routed.drive("router-a", requests=40, seed=20)
    routed.prometheus.wait_fresh("router-a")
    before = routed.read()
    assert before["router-a"]["stable"].requests >= 20

    restarted = routed.restart("router-a")
    routed.drive("router-a", requests=15, seed=21)
    routed.prometheus.wait_fresh("router-a", "router-b")
    after = routed.read()

    fresh = _routed_variants(routed.stats("router-a"))
    assert _without_latency(after["router-a"]) == fresh
    assert after["router-a"]["stable"].requests < before["router-a"]["stable"].requests
    # Prometheus saw the counter go down once (the restart) ...
    reset = 'resets(modelpilot_router_requests_total{instance="router-a",variant="stable"}[5m])'
    assert routed.prometheus.scalar(reset) == 1
    # ... and the experiment loop counts the restarted router's whole new value, router b nothing.
    increments = counts.increments(before, after, variants=VARIANTS)
    for variant in VARIANTS:
        expected = fresh.get(variant)
        got = increments[variant]
        assert got.requests == (expected.requests if expected else 0), variant
        assert got.rewards == (expected.rewards if expected else 0), variant
        assert got.reward_sum == (expected.reward_sum if expected else 0.0), variant
    assert restarted.proc.poll() is None


def test_a_query_prometheus_refuses_is_a_source_error(tmp_path: Path) -> None:
    # A real Prometheus answering 400 bad_data: the selector cannot be parsed.
    with prom.running(tmp_path, []) as server:
        source = sources.PrometheusSource(server.url, settings_mod.OperatorSettings())
        assert source.read(namespace=NAMESPACE, deployment="iris") == {}
        with pytest.raises(sources.SourceError, match="400"):
            source.read(namespace='ml"', deployment="iris")


def test_a_prometheus_that_does_not_answer_is_a_source_error() -> None:
    dead = f"http://127.0.0.1:{ports.free_port()}"
    with pytest.raises(sources.SourceError, match="api/v1/query"):
        sources.PrometheusSource(dead, settings_mod.OperatorSettings()).read(
            namespace=NAMESPACE, deployment="iris"
        )


def test_the_metrics_source_setting_picks_the_source_and_refuses_anything_else_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = sources.make_source(settings_mod.OperatorSettings(metrics_source="router"))
    assert isinstance(router, sources.StatsSource)
    url = "http://prometheus:9090"
    prometheus = sources.make_source(settings_mod.OperatorSettings(metrics_source=url))
    assert isinstance(prometheus, sources.PrometheusSource)
    assert prometheus.base_url == url
    monkeypatch.setenv("MODELPILOT_OPERATOR_METRICS_SOURCE", "statsd")
    with pytest.raises(errors.InputError, match=r"^MODELPILOT_OPERATOR_METRICS_SOURCE: .*statsd"):
        config.load(settings_mod.OperatorSettings)
