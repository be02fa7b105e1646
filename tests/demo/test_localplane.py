"""The demo's local plane replaces a model server the way a Deployment rolls: no request fails.

Real processes (a small HTTP server per "pod", started by the demo's real supervisor) and a real
routes file that a client re-reads on every request, as the router does. The API server's answers
are a stand-in here (`Listing`): what is under test is the process swap, and the whole demo test
(tests/demo/test_demo_end_to_end.py) runs the same code against the real control plane.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelpilot.demo import localplane
from modelpilot.demo import supervisor as sup_mod

# A "model server": loads for a moment (as a real one loads its model), then answers its
# readiness probe and every request with the version it was started with.
SERVER = """
import http.server, os, sys, time
time.sleep(float(os.environ["LOAD_SECONDS"]))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["VERSION"].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def _deployment(version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "demo-stable",
            "namespace": "default",
            "labels": {
                "app.kubernetes.io/component": "model-server",
                "modelpilot.io/variant": "stable",
            },
        },
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "command": ["python", "-c", SERVER],
                            "args": ["--port", "8080", "--host", "0.0.0.0"],
                            "env": [
                                {"name": "VERSION", "value": version},
                                {"name": "LOAD_SECONDS", "value": "1.5"},
                            ],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                        }
                    ]
                }
            },
        },
    }


class Listing:
    """Stand-in for `kubectl get`: the Deployments and the routes ConfigMap of one deployment."""

    def __init__(self, version: str) -> None:
        self.deployments = [_deployment(version)]
        routes = {"stable": "stable", "variants": [{"name": "stable", "url": "x", "weight": 100}]}
        self.configmap = {
            "metadata": {"name": "demo-routes"},
            "data": {"routes.json": json.dumps(routes)},
        }

    def get(self, kind: str, name: str | None = None, *, selector: str | None = None) -> Any:
        assert kind == "deployments"
        return self.deployments

    def get_or_none(self, kind: str, name: str) -> Any:
        return self.configmap if kind == "configmap" else None


def _stable_url(routes_file: Path) -> str:
    doc = json.loads(routes_file.read_text())
    return str(next(v["url"] for v in doc["variants"] if v["name"] == "stable"))


def _sync_until(plane: localplane.LocalPlane, condition: Any, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        plane.sync()
        if condition():
            return
        time.sleep(0.1)  # the demo's tick, shortened
    raise AssertionError(f"not within {timeout}s; events: {plane.events}")


@pytest.mark.slow
def test_a_changed_model_server_is_replaced_without_failing_a_single_request(
    tmp_path: Path,
) -> None:
    listing = Listing("1")
    with sup_mod.Supervisor(tmp_path) as sup:
        plane = localplane.LocalPlane(
            supervisor=sup,
            kubectl=listing,  # type: ignore[arg-type]
            deployment="demo",
            tracking_uri="http://unused",
            state_dir=tmp_path,
            drain_seconds=1.0,
        )
        _sync_until(plane, lambda: plane.routes_file.exists(), timeout=30)
        answers: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

        def client() -> None:  # re-reads the routes on every request, as the router does
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(_stable_url(plane.routes_file), timeout=5) as r:
                        answers.append(r.read().decode())
                except (urllib.error.URLError, OSError) as exc:
                    failures.append(repr(exc))
                time.sleep(0.01)  # a steady request rate, not synchronisation

        thread = threading.Thread(target=client)
        thread.start()
        try:
            listing.deployments = [_deployment("2")]  # the promotion changes the pod template
            _sync_until(
                plane,
                lambda: answers[-1:] == ["2"] and not plane.surging and not plane.draining,
                timeout=30,
            )
        finally:
            stop.set()
            thread.join()
        assert failures == []
        assert answers[0] == "1"
        assert answers[-1] == "2"
        # The old process served while the new one loaded; it is stopped only after the drain.
        first_two = answers.index("2")
        assert set(answers[:first_two]) == {"1"}
        assert set(answers[first_two:]) == {"2"}
        assert any(e.startswith("draining demo-stable") for e in plane.events)
        assert [c.name for c in sup.children if not c.stopped] == ["demo-stable.2"]
        plane.stop_all()
