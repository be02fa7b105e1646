"""The Experiment controller on a real control plane, a real MLflow server and real HTTP counters.

The routers' `/stats` are served over real sockets by `StatsServer`, whose numbers come from the
seeded traffic simulator: a driver thread plays one interval of traffic at a time, split the way
the routes ConfigMap in the API server says (the weights the operator last wrote), exactly what
real routers would do. The operator runs under kopf's test runner with its ServiceAccount's token,
or as a real `modelpilot operator run` process where a test must SIGKILL it. Waits poll the API
with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelpilot.operator.experiment import inforce, simulate
from modelpilot.testing import controlplane
from tests.operator import conftest as op

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]

INTERVAL = "1s"
TICK_SECONDS = 0.5


class StatsServer:
    """`GET /stats/<pod>` of each simulated router pod, over a real loopback socket."""

    def __init__(self, traffic: simulate.Traffic) -> None:
        self.traffic = traffic
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    index = int(self.path.rsplit("/", 1)[-1])
                    with outer.lock:
                        body = json.dumps(outer.traffic.stats_json(index)).encode()
                    status = 200
                except (ValueError, IndexError):
                    body, status = b'{"detail": "no such pod"}', 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def urls(self) -> list[str]:
        port = self.server.server_address[1]
        return [f"http://127.0.0.1:{port}/stats/{i}" for i in range(len(self.traffic.pods))]

    def __enter__(self) -> StatsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Driver:
    """Plays traffic every TICK_SECONDS, split as the routes ConfigMap currently says."""

    def __init__(
        self, plane: controlplane.ControlPlane, namespace: str, stats: StatsServer
    ) -> None:
        self.plane, self.namespace, self.stats = plane, namespace, stats
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _shares(self) -> dict[str, float] | None:
        cm = op.get(self.plane, f"/api/v1/namespaces/{self.namespace}/configmaps/iris-routes")
        if cm is None:
            return None
        routes = json.loads(cm["data"]["routes.json"])
        if len(routes["variants"]) < 2:
            return None  # the experiment has not started or is over: no experiment traffic
        # The routers draw from the weights in force (P(best), bounded, under thompson).
        return inforce.expected_shares(routes)

    def _run(self) -> None:
        while not self.stopped.wait(TICK_SECONDS):
            if not self.running.is_set():
                continue
            shares = self._shares()
            with self.stats.lock:
                # Checked again under the lock: after `pause()` returns no step can start.
                if shares is not None and self.running.is_set():
                    self.stats.traffic.step(shares)

    def pause(self) -> None:
        self.running.clear()
        with self.stats.lock:
            pass  # a step in progress has finished

    def __enter__(self) -> Driver:
        self.running.set()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def experiment(version: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deploymentRef": "iris",
        "variants": [{"name": "challenger", "model": {"version": version}}],
        "policy": {"type": "thompson", "minWeight": 5, "maxWeight": 90, "updateInterval": INTERVAL},
        "reward": {"type": "binary"},
        "stopping": {"minSamplesPerVariant": 300, "probabilityToBeBest": 0.95},
        "guardrails": {"maxErrorRate": 0.02, "maxLatencyP99Ms": 250},
        "onSuccess": "promote",
    }
    for key, value in spec.items():
        base[key] = {**base[key], **value} if isinstance(base.get(key), dict) else value
    return {
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "exp"},
        "spec": base,
    }


def exp_path(namespace: str) -> str:
    return f"/apis/modelpilot.io/v1alpha1/namespaces/{namespace}/experiments/exp"


def phase_is(plane: controlplane.ControlPlane, namespace: str, *phases: str) -> Any:
    exp = op.get(plane, exp_path(namespace))
    return exp if exp and (exp.get("status") or {}).get("phase") in phases else None


def events_of(plane: controlplane.ControlPlane, namespace: str, name: str) -> set[str]:
    return {e["reason"] for e in op.events(plane, namespace, name)}


def routes_of(plane: controlplane.ControlPlane, namespace: str) -> list[tuple[str, Any, str]]:
    cm = op.get(plane, f"/api/v1/namespaces/{namespace}/configmaps/iris-routes")
    doc = json.loads(cm["data"]["routes.json"])
    return [(v["name"], v["weight"], v["modelVersion"]) for v in doc["variants"]]


def _variant(status: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in status["variants"] if v["name"] == name)
    return found


@contextlib.contextmanager
def operator_reading(
    traffic: simulate.Traffic, tracking_uri: str, namespace: str, kubeconfig: Path
) -> Iterator[StatsServer]:
    """The operator in this process, its Experiment loop reading deployment iris's counters from
    the simulated routers of `traffic` (its `stats_urls` setting, known once the server runs)."""
    with (
        StatsServer(traffic) as stats,
        op.kopf_operator(
            op.operator_settings(tracking_uri, namespace, stats_urls={"iris": stats.urls}),
            kubeconfig,
        ),
    ):
        yield stats


def start_deployment(
    plane: controlplane.ControlPlane, namespace: str, model: op.RegisteredModel
) -> None:
    op.apply_yaml(plane, op.modeldeployment("iris", model.name), "-n", namespace)

    def resolved() -> Any:
        md = op.get(plane, op.md_path(namespace, "iris"))
        return md if ((md or {}).get("status") or {}).get("model") else None

    op.wait_for("the ModelDeployment to resolve its model", resolved, timeout=30)


def apply_experiment(
    plane: controlplane.ControlPlane, namespace: str, model: op.RegisteredModel, **spec: Any
) -> None:
    body = experiment("2", **spec)
    body["spec"]["variants"][0]["model"]["name"] = model.name
    op.apply_yaml(plane, body, "-n", namespace)


def test_a_better_challenger_is_promoted_and_the_deployment_then_serves_it_with_the_reason(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.15},
        requests_per_interval=400,
        seed=17,
        latency_p99_ms={"stable": 40.0, "challenger": 45.0},
    )
    with operator_reading(traffic, tracking_uri, namespace, operator_kubeconfig) as stats:
        start_deployment(control_plane, namespace, registered_model)
        apply_experiment(control_plane, namespace, registered_model)
        running = op.wait_for(
            "Running", lambda: phase_is(control_plane, namespace, "Running"), timeout=30
        )
        # The challenger's model server exists, owned by the Experiment.
        dep = op.get(
            control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-challenger"
        )
        assert dep["metadata"]["ownerReferences"][0]["kind"] == "Experiment"
        assert dep["metadata"]["ownerReferences"][0]["uid"] == running["metadata"]["uid"]
        weights: list[int] = []
        with Driver(control_plane, namespace, stats):

            def watch() -> Any:
                exp = op.get(control_plane, exp_path(namespace))
                status = (exp or {}).get("status") or {}
                if status.get("phase") == "Running":
                    w = _variant(status, "challenger")["weight"]
                    if not weights or weights[-1] != w:
                        weights.append(w)
                return exp if status.get("phase") == "Promoted" else None

            done = op.wait_for("Promoted", watch, timeout=180)

        md = op.wait_for(
            "the ModelDeployment serving version 2",
            lambda: (
                m
                if (m := op.get(control_plane, op.md_path(namespace, "iris")))
                and m["status"]["model"]["version"] == "2"
                else None
            ),
            timeout=30,
        )
        op.wait_for(
            "the challenger removed",
            lambda: (
                op.get(
                    control_plane,
                    f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-challenger",
                )
                is None
            ),
            timeout=30,
        )
        final_routes = op.wait_for(
            "routes back to the stable variant alone, now version 2",
            lambda: (
                r if (r := routes_of(control_plane, namespace)) == [("stable", 100, "2")] else None
            ),
            timeout=30,
        )
        exp_events = events_of(control_plane, namespace, "exp")
    status = done["status"]
    assert status["decision"]["winner"] == "challenger"
    ch, st = _variant(status, "challenger"), _variant(status, "stable")
    assert ch["probabilityToBeBest"] >= 0.95
    assert min(ch["rewards"], st["rewards"]) >= 300
    # The weight moved up from the even split, towards the ceiling, before the promotion. The
    # split at Running comes from equal priors before any traffic (P(best) of two Beta(1, 1) by
    # seeded draws, so 50 up to the operator's whole-percent rounding of the draw noise).
    initial = _variant(running["status"], "challenger")["weight"]
    assert abs(initial - 50) <= 1
    assert max(weights) > initial + 10
    assert md["spec"]["model"] == {"name": registered_model.name, "version": "2"}
    last = md["status"]["history"][-1]
    assert last["version"] == "2"
    assert last["reason"].startswith("promoted: challenger (model version 2) has P(best)")
    assert final_routes == [("stable", 100, "2")]
    assert {"Started", "Promoted"} <= exp_events


def test_a_challenger_breaching_the_error_guardrail_is_rolled_back_within_one_interval(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.15},
        requests_per_interval=400,
        seed=5,
        error_rates={"stable": 0.001, "challenger": 0.30},
    )
    with operator_reading(traffic, tracking_uri, namespace, operator_kubeconfig) as stats:
        start_deployment(control_plane, namespace, registered_model)
        apply_experiment(control_plane, namespace, registered_model)
        op.wait_for("Running", lambda: phase_is(control_plane, namespace, "Running"), timeout=30)
        with Driver(control_plane, namespace, stats):
            # Traffic ticks every 0.5 s and the loop runs every 1 s: one interval is 1 s, and
            # the rollback must come with the first update that sees the errors.
            done = op.wait_for(
                "RolledBack",
                lambda: phase_is(control_plane, namespace, "RolledBack", "Promoted"),
                timeout=20,
            )
        op.wait_for(
            "routes back to stable",
            lambda: routes_of(control_plane, namespace) == [("stable", 100, "1")],
            timeout=15,
        )
        exp_events = events_of(control_plane, namespace, "exp")
        md = op.get(control_plane, op.md_path(namespace, "iris"))
    status = done["status"]
    assert status["phase"] == "RolledBack"
    ch = _variant(status, "challenger")
    assert ch["weight"] == 0
    assert ch["rolledBack"] is True
    # Caught early: within a few hundred challenger requests, not after thousands.
    assert ch["requests"] < 2000
    assert "RolledBack" in exp_events
    assert md["spec"]["model"] == {"name": registered_model.name, "alias": "champion"}
    cond = next(c for c in status["conditions"] if c["type"] == "GuardrailBreached")
    assert (cond["status"], cond["reason"]) == ("True", "ErrorRate")


def test_under_reported_requests_raise_a_sample_ratio_alarm_that_pauses_the_experiment(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.11},
        requests_per_interval=600,
        seed=23,
    )
    with operator_reading(traffic, tracking_uri, namespace, operator_kubeconfig) as stats:
        start_deployment(control_plane, namespace, registered_model)
        apply_experiment(
            control_plane,
            namespace,
            registered_model,
            stopping={"minSamplesPerVariant": 10**8},
            policy={"type": "fixed", "stableWeight": 50},
            variants=[
                {
                    "name": "challenger",
                    "model": {"name": registered_model.name, "version": "2"},
                    "weight": 50,
                }
            ],
        )
        op.wait_for("Running", lambda: phase_is(control_plane, namespace, "Running"), timeout=30)
        with Driver(control_plane, namespace, stats):

            def tested() -> Any:
                exp = phase_is(control_plane, namespace, "Running")
                return exp if exp and exp["status"].get("srm", {}).get("pValue") else None

            honest = op.wait_for("an SRM test on honest traffic", tested, timeout=30)
            assert honest["status"]["srm"]["mismatch"] is False
            with stats.lock:
                traffic.under_report["challenger"] = 0.5

            def paused() -> Any:
                exp = op.get(control_plane, exp_path(namespace))
                return exp if exp["status"].get("srm", {}).get("paused") else None

            exp = op.wait_for("the SRM pause", paused, timeout=30)
            frozen = routes_of(control_plane, namespace)
            # The reporting is fixed and the user edits the spec: that acknowledges the alarm.
            with stats.lock:
                traffic.under_report.clear()
            control_plane.kubectl(
                "patch",
                "experiment",
                "exp",
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"spec": {"stopping": {"minSamplesPerVariant": 100000001}}}',
            )

            def resumed() -> Any:
                exp = op.get(control_plane, exp_path(namespace))
                cond = next(
                    c for c in exp["status"]["conditions"] if c["type"] == "SampleRatioMismatch"
                )
                return exp if cond["reason"] == "Acknowledged" else None

            acknowledged = op.wait_for("the pause lifted by the spec change", resumed, timeout=30)
        exp_events = events_of(control_plane, namespace, "exp")
    assert acknowledged["status"]["srm"]["paused"] is False
    status = exp["status"]
    assert status["phase"] == "Running"
    assert status["srm"]["mismatch"] is True
    assert status["srm"]["pValue"] < 0.001
    cond = next(c for c in status["conditions"] if c["type"] == "SampleRatioMismatch")
    assert cond["status"] == "True"
    done = next(c for c in status["conditions"] if c["type"] == "Completed")
    assert done["reason"] == "Paused"
    assert "SampleRatioMismatch" in exp_events
    assert frozen == [("stable", 50, "1"), ("challenger", 50, "2")]


def test_killing_the_operator_between_updates_loses_and_doubles_no_count_and_still_promotes(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
    tmp_path: Path,
) -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.15}, requests_per_interval=400, seed=31
    )
    with StatsServer(traffic) as stats:
        env = op.operator_env(
            operator_kubeconfig,
            tracking_uri,
            namespace,
            MODELPILOT_OPERATOR_STATS_URLS=json.dumps({"iris": stats.urls}),
        )
        command = list(op.OPERATOR_COMMAND)
        log = (tmp_path / "operator.log").open("wb")
        first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            start_deployment(control_plane, namespace, registered_model)
            apply_experiment(control_plane, namespace, registered_model)
            op.wait_for(
                "Running", lambda: phase_is(control_plane, namespace, "Running"), timeout=30
            )
            with Driver(control_plane, namespace, stats) as driver:

                def some_progress() -> Any:
                    exp = phase_is(control_plane, namespace, "Running")
                    return (
                        exp if exp and _variant(exp["status"], "stable")["requests"] > 0 else None
                    )

                op.wait_for("a few updates", some_progress, timeout=30)
                driver.pause()  # no more traffic while the operator is down
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                with stats.lock:
                    served = dict(traffic.served)
                second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    # The first update after the restart has read every count exactly once.
                    def caught_up() -> Any:
                        exp = op.get(control_plane, exp_path(namespace))
                        got = {n: _variant(exp["status"], n)["requests"] for n in served}
                        return exp if got == served else None

                    op.wait_for("the counts to catch up exactly", caught_up, timeout=30)
                    driver.running.set()
                    try:
                        done = op.wait_for(
                            "Promoted after the restart",
                            lambda: phase_is(control_plane, namespace, "Promoted", "RolledBack"),
                            timeout=180,
                        )
                    except AssertionError as exc:
                        exp = op.get(control_plane, exp_path(namespace))
                        log.flush()
                        tail = (tmp_path / "operator.log").read_text()[-3000:]
                        raise AssertionError(
                            f"{exc}; status: {exp.get('status')}; log: {tail}"
                        ) from exc
                    md = op.wait_for(
                        "version 2 served",
                        lambda: (
                            m
                            if (m := op.get(control_plane, op.md_path(namespace, "iris")))
                            and m["status"]["model"]["version"] == "2"
                            else None
                        ),
                        timeout=30,
                    )
                finally:
                    second.send_signal(signal.SIGTERM)
                    try:
                        second.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        second.kill()
                        second.wait()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert done["status"]["phase"] == "Promoted"
    assert done["status"]["decision"]["winner"] == "challenger"
    assert md["status"]["history"][-1]["reason"].startswith("promoted: challenger")
    with stats.lock:
        total = dict(traffic.served)
    final = {n: _variant(done["status"], n)["requests"] for n in total}
    assert all(final[n] <= total[n] for n in total)
