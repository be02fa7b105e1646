"""Keep local processes in step with the Deployments and routes ConfigMap the operator created.

Called once per tick of the demo's loop (`LocalPlane.sync`): list the ModelDeployment's
Deployments, start a process for each new one (model servers and the router), replace one whose pod
template changed (a promotion changes the stable variant's model version), stop one whose Deployment
is gone (the challenger after the experiment ends), and rewrite the router's routes file from the
ConfigMap with local URLs. The one design decision: the demo reconciles like a kubelet would,
level-based, from what the API server holds now, so it converges whatever order the operator
creates things in and whatever the operator decides.

A model server is replaced the way a Deployment rolls with `maxUnavailable: 0`: the new process
starts beside the old one (a surge), the routes move to it only once it answers its readiness
probe, and the old one keeps serving for `drain_seconds` more (the router polls its routes file
every 0.1 s, and requests already sent finish) before it gets SIGTERM, as a pod's preStop delay
lets endpoints catch up. A server whose Deployment is gone leaves the routes first and is stopped
after the same drain. So no user request meets a stopped server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelpilot.demo import kubectl as kubectl_mod
from modelpilot.demo import supervisor as sup_mod
from modelpilot.demo import wiring
from modelpilot.testing import ports

MODEL_SERVER = "model-server"
ROUTER = "router"


@dataclass
class Running:
    spec: wiring.LocalProcess
    child: sup_mod.Child
    port: int
    ready_path: str
    ready: bool = False
    admin_port: int = 0  # /stats, /drift/window, /metrics (issue 15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


def _ready_path(deployment: dict[str, Any]) -> str:
    try:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return str(container["readinessProbe"]["httpGet"]["path"])
    except (KeyError, IndexError, TypeError):
        return "/"


def probe(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalPlane:
    """The local stand-in for kubelet + cluster DNS for one ModelDeployment."""

    def __init__(
        self,
        *,
        supervisor: sup_mod.Supervisor,
        kubectl: kubectl_mod.Kubectl,
        deployment: str,
        tracking_uri: str,
        state_dir: Path,
        router_port: int | None = None,
        router_admin_port: int | None = None,
        drain_seconds: float = 2.0,
    ) -> None:
        self.sup = supervisor
        self.kubectl = kubectl
        self.deployment = deployment
        self.tracking_uri = tracking_uri
        self.routes_file = state_dir / "routes.json"
        self.running: dict[str, Running] = {}
        # Deployment name -> its replacement, started but not yet ready (the surge).
        self.surging: dict[str, Running] = {}
        # Out of the routes, still serving what the router already sent: (stop after, process).
        self.draining: list[tuple[float, Running]] = []
        self.drain_seconds = drain_seconds
        self._generation = 0
        self.events: list[str] = []
        self._routes_text = ""
        self.router_port = router_port
        self.router_admin_port = router_admin_port

    # -- queries --------------------------------------------------------------------------
    def by_component(self, component: str) -> list[Running]:
        return [r for r in self.running.values() if r.spec.component == component]

    @property
    def router_url(self) -> str | None:
        routers = [r for r in self.by_component(ROUTER) if r.ready]
        return routers[0].url if routers else None

    def model_server_urls(self) -> dict[str, str]:
        """variant -> URL of its ready local model server."""
        return {
            r.spec.variant: r.url
            for r in self.by_component(MODEL_SERVER)
            if r.ready and r.spec.variant
        }

    # -- the tick -------------------------------------------------------------------------
    def sync(self) -> None:
        deployments = self.kubectl.get(
            "deployments", selector=f"modelpilot.io/deployment={self.deployment}"
        )
        wanted = {d["metadata"]["name"]: d for d in deployments}
        for name in list(self.running):
            if name not in wanted:
                self._retire(self.running.pop(name), why="its Deployment is gone")
        for name in list(self.surging):
            if name not in wanted:
                self._stop_now(self.surging.pop(name), why="its Deployment is gone")
        # Model servers first: the router is started only once it has somewhere to send traffic.
        ordered = sorted(
            wanted.values(),
            key=lambda d: (
                0
                if d["metadata"].get("labels", {}).get(wiring.COMPONENT_LABEL) == MODEL_SERVER
                else 1
            ),
        )
        for dep in ordered:
            self._ensure(dep)
        for run in self.running.values():
            if not run.ready:
                run.ready = probe(run.url + run.ready_path)
                if run.ready:
                    self.events.append(f"{run.spec.name} ready on {run.url}")
        for name, new in list(self.surging.items()):
            if probe(new.url + new.ready_path):
                new.ready = True
                del self.surging[name]
                old = self.running.pop(name, None)
                self.running[name] = new
                self.events.append(f"{name} ready on {new.url} (new pod template)")
                if old is not None:
                    self._retire(old, why="replaced by its new pod template")
        self._write_routes()
        now = time.monotonic()
        for stop_at, run in list(self.draining):
            if now >= stop_at:
                self.draining.remove((stop_at, run))
                self._stop_now(run, why="drained")

    def _ensure(self, dep: dict[str, Any]) -> None:
        name = dep["metadata"]["name"]
        component = dep["metadata"].get("labels", {}).get(wiring.COMPONENT_LABEL)
        if component not in (MODEL_SERVER, ROUTER):
            return
        if (dep.get("spec", {}).get("replicas", 1) or 0) == 0:
            if name in self.running:
                self._retire(self.running.pop(name), why="scaled to zero")
            return
        current = self.running.get(name)
        fingerprint = wiring.fingerprint(dep)
        if current is not None and current.spec.fingerprint == fingerprint:
            surge = self.surging.pop(name, None)
            if surge is not None:  # the template went back before the surge was ready
                self._stop_now(surge, why="its pod template changed back")
            return
        surge = self.surging.get(name)
        if surge is not None:
            if surge.spec.fingerprint == fingerprint:
                return  # still starting
            self._stop_now(self.surging.pop(name), why="its pod template changed again")
        if component == ROUTER and not self._routes_text:
            return  # no ready backend yet
        if current is not None and component == ROUTER:
            # The router keeps its one published port, so it cannot surge: replaced in place.
            self._stop_now(self.running.pop(name), why="its pod template changed")
            current = None
        port = self.router_port if component == ROUTER and self.router_port else ports.free_port()
        admin_port = (
            self.router_admin_port
            if component == ROUTER and self.router_admin_port
            else ports.free_port()
        )
        if component == MODEL_SERVER:
            overrides = {
                "MODELPILOT_SERVER_HOST": "127.0.0.1",
                "MODELPILOT_SERVER_PORT": str(port),
                "MODELPILOT_SERVER_ADMIN_PORT": str(admin_port),
                "MODELPILOT_SERVER_TRACKING_URI": self.tracking_uri,
                "MLFLOW_TRACKING_URI": self.tracking_uri,
            }
        else:
            overrides = {
                "MODELPILOT_ROUTER_HOST": "127.0.0.1",
                "MODELPILOT_ROUTER_PORT": str(port),
                "MODELPILOT_ROUTER_ADMIN_PORT": str(admin_port),
                "MODELPILOT_ROUTER_ROUTES_FILE": str(self.routes_file),
            }
        spec = wiring.build_local_process(
            dep, overrides=overrides, drop=("MODELPILOT_ROUTER_CONFIGMAP",)
        )
        argv = wiring.override_flags(spec.argv, {"--port": str(port), "--host": "127.0.0.1"})
        self._generation += 1
        # A replacement's log and supervisor entry get a suffix; the first process is `name`.
        child_name = name if current is None else f"{name}.{self._generation}"
        child = self.sup.start(child_name, argv, env=spec.env)
        run = Running(
            spec=spec, child=child, port=port, ready_path=_ready_path(dep), admin_port=admin_port
        )
        if current is not None:
            self.surging[name] = run  # the old one serves until this one is ready
            self.events.append(f"started {name} ({component}) on port {port} beside the old one")
        else:
            self.running[name] = run
            self.events.append(f"started {name} ({component}) on port {port}")

    def _retire(self, run: Running, *, why: str) -> None:
        """Out of the routes now (the caller rewrites them); stopped after the drain delay."""
        self.draining.append((time.monotonic() + self.drain_seconds, run))
        self.events.append(f"draining {run.spec.name} on {run.url}: {why}")

    def _stop_now(self, run: Running, *, why: str) -> None:
        self.sup.stop(run.child)
        self.events.append(f"stopped {run.spec.name} on {run.url}: {why}")

    def stop_all(self) -> None:
        """Stop every process of this plane (surges and draining ones included)."""
        for _, run in self.draining:
            self._stop_now(run, why="the demo is stopping")
        self.draining.clear()
        for run in [*self.surging.values(), *self.running.values()]:
            self._stop_now(run, why="the demo is stopping")
        self.surging.clear()
        self.running.clear()

    def _write_routes(self) -> None:
        cm = self.kubectl.get_or_none("configmap", f"{self.deployment}-routes")
        if cm is None:
            return
        local = wiring.build_local_routes(wiring.parse_routes(cm), self.model_server_urls())
        if not local["variants"]:
            return
        text = json.dumps(local, indent=1, sort_keys=True)
        if text != self._routes_text:
            tmp = self.routes_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.routes_file)  # atomic: the router never reads half a file
            self._routes_text = text
