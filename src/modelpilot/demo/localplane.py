"""Keep local processes in step with the Deployments and routes ConfigMap the operator created.

Called once per tick of the demo's loop (`LocalPlane.sync`): list the ModelDeployment's
Deployments, start a process for each new one (model servers and the router), restart one whose pod
template changed (a promotion changes the stable variant's model version), stop one whose Deployment
is gone (the challenger after the experiment ends), and rewrite the router's routes file from the
ConfigMap with local URLs. The one design decision: the demo reconciles like a kubelet would,
level-based, from what the API server holds now, so it converges whatever order the operator
creates things in and whatever the operator decides.
"""

from __future__ import annotations

import json
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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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
    ) -> None:
        self.sup = supervisor
        self.kubectl = kubectl
        self.deployment = deployment
        self.tracking_uri = tracking_uri
        self.routes_file = state_dir / "routes.json"
        self.running: dict[str, Running] = {}
        self.events: list[str] = []
        self._routes_text = ""
        self.router_port = router_port

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
                self._stop(name, why="its Deployment is gone")
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
        self._write_routes()

    def _ensure(self, dep: dict[str, Any]) -> None:
        name = dep["metadata"]["name"]
        component = dep["metadata"].get("labels", {}).get(wiring.COMPONENT_LABEL)
        if component not in (MODEL_SERVER, ROUTER):
            return
        if (dep.get("spec", {}).get("replicas", 1) or 0) == 0:
            if name in self.running:
                self._stop(name, why="scaled to zero")
            return
        current = self.running.get(name)
        if current is not None and current.spec.fingerprint == wiring.fingerprint(dep):
            return
        if component == ROUTER and not self._routes_text:
            return  # no ready backend yet
        if current is not None:
            self._stop(name, why="its pod template changed")
        port = self.router_port if component == ROUTER and self.router_port else ports.free_port()
        if component == MODEL_SERVER:
            overrides = {
                "MODELPILOT_SERVER_HOST": "127.0.0.1",
                "MODELPILOT_SERVER_PORT": str(port),
                "MODELPILOT_SERVER_TRACKING_URI": self.tracking_uri,
                "MLFLOW_TRACKING_URI": self.tracking_uri,
            }
        else:
            overrides = {
                "MODELPILOT_ROUTER_HOST": "127.0.0.1",
                "MODELPILOT_ROUTER_PORT": str(port),
                "MODELPILOT_ROUTER_ROUTES_FILE": str(self.routes_file),
            }
        spec = wiring.build_local_process(
            dep, overrides=overrides, drop=("MODELPILOT_ROUTER_CONFIGMAP",)
        )
        argv = wiring.override_flags(spec.argv, {"--port": str(port), "--host": "127.0.0.1"})
        child = self.sup.start(name, argv, env=spec.env)
        self.running[name] = Running(spec=spec, child=child, port=port, ready_path=_ready_path(dep))
        self.events.append(f"started {name} ({component}) on port {port}")

    def _stop(self, name: str, *, why: str) -> None:
        run = self.running.pop(name)
        self.sup.stop(run.child)
        self.events.append(f"stopped {name}: {why}")

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
