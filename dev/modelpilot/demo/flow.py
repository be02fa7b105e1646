"""The demo's flow: every step of the platform's main loop, run for real on the local machine.

MLflow (SQLite under `.demo/`), the local control plane with the CRDs and RBAC, the operator, two
registered models, a ModelDeployment and an Experiment applied with kubectl, local processes for
what the operator created, simulated users with delayed rewards, the Thompson split shifting until
the challenger is promoted, then drifted inputs and a drift run. The one design decision: each step
declares the steps it needs and the pieces of the platform it calls; a step whose piece is not in
the tree yet is recorded as **pending** with the issue that brings it (never faked), the steps after
it are pending too, and the run ends with a non-zero status saying so. Whatever happens (an error,
Ctrl-C, SIGTERM), the supervisor stops every process the demo started, then the report is written.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelpilot.api import constants
from modelpilot.demo import dataset, manifests, pieces, prometheus, view
from modelpilot.demo import kubectl as kubectl_mod
from modelpilot.demo import localplane as localplane_mod
from modelpilot.demo import report as report_mod
from modelpilot.demo import supervisor as sup_mod
from modelpilot.demo import timeline as tl
from modelpilot.demo import traffic as traffic_mod
from modelpilot.testing import mlflow_server, ports

STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # key, title, steps it needs
    ("mlflow", "MLflow server (SQLite store under the state folder)", ()),
    ("cluster", "Local control plane", ()),
    ("install", "CRDs and RBAC installed", ("cluster",)),
    ("operator", "Operator running (modelpilot operator run)", ("install", "mlflow")),
    ("models", "Champion and challenger trained and registered", ("mlflow",)),
    ("apply", "ModelDeployment and Experiment applied with kubectl", ("operator", "models")),
    ("serving", "Model servers and router started from the operator's objects", ("apply",)),
    ("experiment", "Simulated users; Thompson split shifts; challenger promoted", ("serving",)),
    # After the promotion: the stable variant, restarted on the new version, gets all the traffic
    # and a fresh drift window, so the drift run sees only the drifted stream.
    ("drift", "Drifted inputs; drift run flags them", ("experiment",)),
)


class PendingError(Exception):
    """A step cannot run because a piece of the platform is not in the tree yet."""


@dataclass
class Options:
    state_dir: Path
    repo: Path
    namespace: str = "default"
    deployment: str = "demo"
    experiment: str = "demo-ab"
    model_name: str = "demo-classifier"
    seed: int = 7
    rate: float = 40.0
    experiment_timeout: float = 240.0
    live: bool | None = None
    use_prometheus: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


class Demo:
    """One run of the demo; `run()` returns the timeline (also saved under the state folder)."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.state = options.state_dir
        self.timeline = tl.Timeline(steps=[tl.Step(key=k, title=t) for k, t, _ in STEPS])
        self.timeline.steps.append(tl.Step(key="report", title="HTML report"))
        self.needs = {k: deps for k, _, deps in STEPS}
        self.sup = sup_mod.Supervisor(self.state)
        self.view = view.View(live=options.live)
        self.tracking_uri = ""
        self.kubeconfig: Path | None = None
        self.operator_kubeconfig: Path | None = None
        self._plane_harness: Any = None
        self.kubectl: kubectl_mod.Kubectl | None = None
        self.plane: localplane_mod.LocalPlane | None = None
        self.prometheus_url: str | None = None
        self._prom_targets = self.state / "prometheus" / "targets.json"
        self.versions: dict[str, str] = {}
        # Chosen up front: the operator, started before the router exists, is told where the
        # router's /stats will be (pods on the local plane have no reachable IP).
        self.router_port = ports.free_port()
        self.router_admin_port = ports.free_port()  # /stats is on the admin port (issue 15)
        self.users: traffic_mod.Users | None = None
        self._t0: float | None = None

    # -- running ------------------------------------------------------------------------------
    def run(self) -> tl.Timeline:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "logs").mkdir(exist_ok=True)
        stale = sup_mod.sweep_stale(self.state)
        if stale:
            self.view.message(f"stopped what a killed previous run left: {', '.join(stale)}")
        try:
            with contextlib.ExitStack() as stack, sup_mod.signals_as_exceptions():
                stack.enter_context(self.sup)  # the last sweep, whatever else failed
                stack.enter_context(self.view)
                stack.callback(self._stop_users)
                actions: dict[str, Callable[[contextlib.ExitStack], str]] = {
                    "mlflow": self._mlflow,
                    "cluster": self._cluster,
                    "install": self._install,
                    "operator": self._operator,
                    "models": self._models,
                    "apply": self._apply,
                    "serving": self._serving,
                    "experiment": self._experiment,
                    "drift": self._drift,
                }
                for key, _, _ in STEPS:
                    self._run_step(key, actions[key], stack)
                # Stop our own children before the harnesses (control plane, MLflow) go down.
                self._stop_users()
                self.sup.stop_all()
        finally:
            self._write_report()
        return self.timeline

    def _run_step(
        self, key: str, action: Callable[[contextlib.ExitStack], str], stack: contextlib.ExitStack
    ) -> None:
        step = self.timeline.step(key)
        blocked = [self.timeline.step(k) for k in self.needs[key]]
        blocked = [s for s in blocked if s.status != "done"]
        if blocked:
            step.status = "pending"
            step.detail = "needs: " + ", ".join(f"{s.title} ({s.status})" for s in blocked)
            self._refresh()
            return
        step.status = "running"
        step.started = time.time()
        self._refresh()
        try:
            step.detail = action(stack)
            step.status = "done"
        except PendingError as exc:
            step.status = "pending"
            step.detail = str(exc)
        except KeyboardInterrupt:
            step.status = "failed"
            step.detail = "interrupted"
            raise
        except Exception as exc:
            step.status = "failed"
            step.detail = f"{type(exc).__name__}: {exc}"[:600]
            with (self.state / "logs" / "demo.log").open("a") as log:
                log.write(f"--- step {key} failed\n{traceback.format_exc()}\n")
        finally:
            step.finished = time.time()
            self._refresh()

    def _refresh(self) -> None:
        self.timeline.save(self.state / "timeline.json")
        self.view.update(self.timeline)

    def _write_report(self) -> None:
        step = self.timeline.step("report")
        step.started = time.time()
        path = self.state / "report.html"
        # Marked done before it is built so the report counts itself; undone if writing fails.
        step.status, step.detail, step.finished = "done", str(path), time.time()
        try:
            path.write_text(report_mod.build_html(self.timeline))
        except Exception as exc:  # the report must never hide the real outcome
            step.status, step.detail = "failed", f"{type(exc).__name__}: {exc}"
        step.finished = time.time()
        self.timeline.save(self.state / "timeline.json")
        self.view.message(f"report: {step.detail}")

    def _require(self, *keys: str) -> None:
        absent = pieces.missing(list(keys), self.o.repo)
        if absent:
            raise PendingError(pieces.pending_reason(absent))

    def _child_env(self) -> dict[str, str]:
        env = {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "PYTHONUNBUFFERED": "1",
            **self.o.extra_env,
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    # -- steps ----------------------------------------------------------------------------------
    def _mlflow(self, stack: contextlib.ExitStack) -> str:
        store = self.state / "mlflow"
        reused = (store / "mlflow.db").exists()
        server = stack.enter_context(mlflow_server.running(store))
        self.sup.adopt("mlflow", server.pid, log_path=server.log_path)
        self.tracking_uri = server.tracking_uri
        os.environ["MLFLOW_TRACKING_URI"] = server.tracking_uri
        return f"{server.tracking_uri} ({'reused' if reused else 'new'} store {store})"

    def _cluster(self, stack: contextlib.ExitStack) -> str:
        self._require("controlplane")
        harness: Any = importlib.import_module("modelpilot.testing.controlplane")
        folder = self.state / "cluster"
        plane = stack.enter_context(harness.running(folder))
        self._plane_harness = plane
        # The harness stops its own process groups (and has a watchdog); adopting them as well
        # means the supervisor's last sweep catches them if that teardown is cut short.
        for name, pgid in _cluster_groups(folder).items():
            self.sup.adopt(f"cluster-{name}", pgid)
        self.kubeconfig = Path(plane.kubeconfig)
        self.kubectl = kubectl_mod.Kubectl(
            str(Path(plane.binaries) / "kubectl"),
            kubeconfig=self.kubeconfig,
            namespace=self.o.namespace,
        )
        nodes = self.kubectl.get("nodes")
        return (
            f"ready in {plane.startup_seconds:.1f}s; kubeconfig {self.kubeconfig}; "
            f"{len(nodes)} node(s)"
        )

    def _install(self, stack: contextlib.ExitStack) -> str:
        self._require("crds", "rbac")
        kc = self._kc()
        kc.apply(self.o.repo / "manifests" / "crds", server_side=True)
        self._plane_harness.wait_established(
            "modeldeployments.modelpilot.io", "experiments.modelpilot.io", timeout=90
        )
        kc.apply(self.o.repo / "manifests" / "rbac" / "operator-clusterrole.yaml")
        identity = manifests.build_operator_identity()
        kc.run(["apply", "-f", "-"], stdin=yaml.safe_dump_all(identity), timeout=60)
        token = self._plane_harness.token_for(
            manifests.OPERATOR_ACCOUNT, manifests.OPERATOR_NAMESPACE
        )
        self.operator_kubeconfig = Path(self._plane_harness.kubeconfig_for_token(token))
        return (
            f"CRDs established; ClusterRole bound to "
            f"{manifests.OPERATOR_NAMESPACE}/{manifests.OPERATOR_ACCOUNT}"
        )

    def _operator(self, stack: contextlib.ExitStack) -> str:
        self._require("operator")
        if self.o.use_prometheus:
            self._start_prometheus()
        health = ports.free_port()
        env = {
            **self._child_env(),
            # Its own ServiceAccount's token, bound to the shipped ClusterRole (not the admin).
            "KUBECONFIG": str(self.operator_kubeconfig),
            "MODELPILOT_OPERATOR_NAMESPACES": self.o.namespace,
            "MODELPILOT_OPERATOR_MLFLOW_TRACKING_URI": self.tracking_uri,
            "MODELPILOT_OPERATOR_HEALTH_PORT": str(health),
            "MODELPILOT_OPERATOR_METRICS_PORT": str(ports.free_port()),
            "MODELPILOT_OPERATOR_RESYNC_SECONDS": "10",
        }
        if self.prometheus_url:
            env["MODELPILOT_OPERATOR_METRICS_SOURCE"] = self.prometheus_url
        else:
            env["MODELPILOT_OPERATOR_METRICS_SOURCE"] = "router"
            key = f"{self.o.namespace}/{self.o.deployment}"
            stats = [f"http://127.0.0.1:{self.router_admin_port}/stats"]
            env["MODELPILOT_OPERATOR_STATS_URLS"] = json.dumps({key: stats})
        child = self.sup.start(
            "operator", [sys.executable, "-m", "modelpilot.cli.main", "operator", "run"], env=env
        )
        self._wait(
            lambda: localplane_mod.probe(f"http://127.0.0.1:{health}/healthz"),
            what="the operator's /healthz",
            timeout=90,
        )
        source = self.prometheus_url or "router /stats"
        return f"pid {child.pid}; counts from {source}"

    def _models(self, stack: contextlib.ExitStack) -> str:
        self._require("register")
        from modelpilot.demo import models  # imports scikit-learn and MLflow: only when needed

        existing = models.find_existing(self.tracking_uri, self.o.model_name)
        if set(existing) == {"champion", "challenger"}:
            self.versions = {role: r.version for role, r in existing.items()}
            accs = {role: r.accuracy for role, r in existing.items()}
            how = "reused from a previous run"
        else:
            trained = models.train_and_log(tracking_uri=self.tracking_uri, seed=self.o.seed)
            self.versions = {
                role: models.register(
                    tracking_uri=self.tracking_uri,
                    model_name=self.o.model_name,
                    run_id=run_id,
                    role=role,
                )
                for role, (run_id, _) in trained.items()
            }
            accs = {role: acc for role, (_, acc) in trained.items()}
            how = "trained and registered"
        for role in ("champion", "challenger"):
            self.timeline.facts[f"{role} accuracy (held-out)"] = (
                f"{accs[role]:.3f} (version {self.versions[role]})"
            )
        return (
            f"{how}: champion v{self.versions['champion']} accuracy {accs['champion']:.3f}, "
            f"challenger v{self.versions['challenger']} accuracy {accs['challenger']:.3f}"
        )

    def _apply(self, stack: contextlib.ExitStack) -> str:
        self._require("experiment")
        kc = self._kc()
        # A fresh experiment each run: remove what a previous run left (the store is reused).
        for kind, name in (
            ("experiment", self.o.experiment),
            ("modeldeployment", self.o.deployment),
        ):
            kc.run(
                [
                    "delete",
                    kind,
                    name,
                    "-n",
                    self.o.namespace,
                    "--ignore-not-found",
                    "--wait=true",
                    "--timeout=60s",
                ],
                timeout=90,
            )
        md = manifests.build_model_deployment(
            name=self.o.deployment,
            namespace=self.o.namespace,
            model=self.o.model_name,
            version=self.versions["champion"],
            tracking_uri=self.tracking_uri,
        )
        exp = manifests.build_experiment(
            name=self.o.experiment,
            namespace=self.o.namespace,
            deployment=self.o.deployment,
            model=self.o.model_name,
            challenger_version=self.versions["challenger"],
        )
        folder = self.state / "manifests"
        folder.mkdir(exist_ok=True)
        for doc in (md, exp):
            path = folder / f"{doc['kind'].lower()}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            kc.apply(path)

        def ready() -> bool:
            obj = kc.get_or_none("modeldeployment", self.o.deployment)
            conditions = (obj or {}).get("status", {}).get("conditions", [])
            return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

        self._wait(ready, what=f"ModelDeployment {self.o.deployment} Ready", timeout=90)
        return f"modeldeployment/{self.o.deployment} Ready, experiment/{self.o.experiment} applied"

    def _serving(self, stack: contextlib.ExitStack) -> str:
        self._require("modelserver", "router")
        self.plane = localplane_mod.LocalPlane(
            supervisor=self.sup,
            kubectl=self._kc(),
            deployment=self.o.deployment,
            tracking_uri=self.tracking_uri,
            state_dir=self.state,
            router_port=self.router_port,
            router_admin_port=self.router_admin_port,
        )
        plane = self.plane

        def up() -> bool:
            self._tick()
            urls = plane.model_server_urls()
            return plane.router_url is not None and {constants.STABLE, "challenger"} <= set(urls)

        self._wait(up, what="model servers (stable, challenger) and router ready", timeout=180)
        return f"router {plane.router_url}; model servers {plane.model_server_urls()}"

    def _experiment(self, stack: contextlib.ExitStack) -> str:
        plane = self._plane()
        router = plane.router_url
        if router is None:
            raise RuntimeError("the router is not ready")
        self.users = traffic_mod.Users(router_url=router, seed=self.o.seed + 1, rate=self.o.rate)
        self._t0 = time.monotonic()
        self._snapshot()  # the split in force when the first request goes out
        self.users.start()
        phase = ""
        deadline = time.monotonic() + self.o.experiment_timeout
        while time.monotonic() < deadline:
            self._tick()
            phase = self._snapshot()
            if phase in tl.TERMINAL_PHASES:
                break
            # The demo's tick: poll the world, no synchronisation implied. Short, so that every
            # 2 s update of the split is seen (a tick's kubectl calls take a while of their own).
            time.sleep(0.25)
        self._record_outcome(phase)
        if phase != constants.PROMOTED:
            self._stop_users()
            raise RuntimeError(
                f"experiment ended in phase {phase or '(none)'} after "
                f"{time.monotonic() - self._t0:.0f}s; expected Promoted"
            )
        # The promotion must reach the ModelDeployment: its stable variant serves the challenger.
        kc = self._kc()
        want = self.versions["challenger"]

        def serves_challenger() -> bool:
            self._tick()
            md = kc.get_or_none("modeldeployment", self.o.deployment) or {}
            return str(md.get("status", {}).get("model", {}).get("version")) == want and (
                constants.STABLE in plane.model_server_urls()
            )

        self._wait(serves_challenger, what=f"ModelDeployment serving version {want}", timeout=120)
        # The users keep going through the swap: the promotion must not fail a single request.
        self._wait(self._plane_settled, what="the replaced model server drained", timeout=60)
        self._stop_users()
        self._record_outcome(constants.PROMOTED)
        self.timeline.facts["promoted version"] = want
        last = self.timeline.snapshots[-1] if self.timeline.snapshots else None
        seconds = last.t if last else 0.0
        return f"challenger v{want} promoted after {seconds:.0f}s of traffic; stable now serves it"

    def _drift(self, stack: contextlib.ExitStack) -> str:
        self._require("driftrun")
        plane = self._plane()
        self._tick()
        router = plane.router_url
        if router is None:
            raise RuntimeError("the router is not ready")
        rng = np.random.default_rng(self.o.seed + 2)
        x, _ = dataset.sample(rng, 3000)
        sent = traffic_mod.send_rows(router, dataset.instances(dataset.drift(x)))
        cmd = [
            sys.executable,
            "-m",
            "modelpilot.cli.main",
            "drift",
            "run",
            "--deployment",
            self.o.deployment,
            "--namespace",
            self.o.namespace,
            *(f"--window-url={url}" for url in self._stable_urls()),
        ]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, **self._child_env()},
        )
        (self.state / "logs" / "drift-run.log").write_text(done.stdout + "\n" + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(
                f"modelpilot drift run exited {done.returncode}: {done.stderr.strip()[-500:]}"
            )
        self.timeline.drift = parse_drift_output(done.stdout)
        flagged = sorted(d.feature for d in self.timeline.drift if d.drifted)
        md = self._kc().get_or_none("modeldeployment", self.o.deployment) or {}
        status_drift = md.get("status", {}).get("drift", {})
        self.timeline.facts["ModelDeployment status.drift"] = json.dumps(status_drift)
        expected = sorted(dataset.DRIFTED_FEATURES)
        verdict = "as expected" if flagged == expected else f"expected {expected}"
        return f"{sent} drifted rows sent; flagged {flagged} ({verdict})"

    # -- helpers ------------------------------------------------------------------------------
    def _kc(self) -> kubectl_mod.Kubectl:
        if self.kubectl is None:
            raise RuntimeError("no control plane")
        return self.kubectl

    def _plane(self) -> localplane_mod.LocalPlane:
        if self.plane is None:
            raise RuntimeError("the local processes were not started")
        return self.plane

    def _tick(self) -> None:
        """One reconcile of the local processes, and a check that none died."""
        self.sup.check()
        if self.plane is not None:
            self.plane.sync()
            for event in self.plane.events:
                self.view.message(event)
            self.plane.events.clear()
            self._write_prometheus_targets()
            if self.users is not None and self.plane.router_url:
                self.users.router_url = self.plane.router_url
        self.view.update(self.timeline)

    def _snapshot(self) -> str:
        exp = self._kc().get_or_none("experiment", self.o.experiment) or {}
        status = exp.get("status", {}) or {}
        phase = str(status.get("phase", ""))
        variants = [parse_variant(v) for v in status.get("variants", []) or []]
        if variants and self._t0 is not None:
            self.timeline.snapshots.append(
                tl.Snapshot(
                    t=time.monotonic() - self._t0, phase=phase or "Pending", variants=variants
                )
            )
            self.timeline.save(self.state / "timeline.json")
        return phase

    def _plane_settled(self) -> bool:
        self._tick()
        plane = self._plane()
        return not plane.surging and not plane.draining

    def _record_outcome(self, phase: str) -> None:
        """How it ended, from the Experiment's and the ModelDeployment's status."""
        kc = self._kc()
        exp = kc.get_or_none("experiment", self.o.experiment) or {}
        md = kc.get_or_none("modeldeployment", self.o.deployment) or {}
        decision = (exp.get("status") or {}).get("decision") or {}
        served = (md.get("status") or {}).get("model") or {}
        self.timeline.outcome = tl.Outcome(
            phase=phase or "(none)",
            winner=decision.get("winner"),
            reason=str(decision.get("reason", "")),
            model=self.o.model_name,
            serving_version=None if served.get("version") is None else str(served["version"]),
            previous_version=self.versions.get("champion"),
            challenger_version=self.versions.get("challenger"),
        )
        self.timeline.save(self.state / "timeline.json")
        self.view.update(self.timeline)

    def _stop_users(self) -> None:
        if self.users is not None:
            self.users.stop()
            counts = self.users.snapshot()
            self.timeline.clients = [
                tl.ClientTally(
                    variant=k,
                    requests=c.requests,
                    errors=c.errors,
                    rewards=c.rewards,
                    feedback_sent=c.feedback_sent,
                    feedback_failed=c.feedback_failed,
                )
                for k, c in sorted(counts.items())
            ]
            self.timeline.transport_errors = self.users.transport_errors
            if self.users.last_error:
                self.timeline.facts["last client error"] = self.users.last_error
            self.users = None

    def _wait(self, condition: Callable[[], bool], *, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sup.check()
            if condition():
                return
            time.sleep(0.5)  # polling with a deadline
        raise TimeoutError(f"{what}: not reached within {timeout:.0f}s")

    def _stable_urls(self) -> list[str]:
        """Where the drift job finds the stable model servers' windows on the local plane (their
        admin ports)."""
        if self.plane is None:
            return []
        return [
            r.admin_url
            for r in self.plane.by_component(localplane_mod.MODEL_SERVER)
            if r.ready and r.spec.variant == constants.STABLE
        ]

    def _start_prometheus(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            return  # the operator then reads the routers' /stats
        folder = self.state / "prometheus"
        folder.mkdir(exist_ok=True)
        self._prom_targets.write_text("[]")
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus.build_config(self._prom_targets)))
        port = ports.free_port()
        self.sup.start(
            "prometheus",
            prometheus.argv(binary, config=config, data=folder / "data", port=port),
        )
        url = f"http://127.0.0.1:{port}"
        self._wait(
            lambda: localplane_mod.probe(f"{url}/-/ready"), what="Prometheus ready", timeout=60
        )
        self.prometheus_url = url

    def _write_prometheus_targets(self) -> None:
        if self.prometheus_url is None or self.plane is None:
            return
        procs = [
            (r.spec.name, r.spec.component, r.spec.variant or "", r.admin_port)  # /metrics
            for r in self.plane.running.values()
        ]
        text = json.dumps(prometheus.build_targets(procs, namespace=self.o.namespace))
        if not self._prom_targets.exists() or self._prom_targets.read_text() != text:
            tmp = self._prom_targets.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self._prom_targets)


def parse_variant(raw: dict[str, Any]) -> tl.VariantSample:
    """One entry of an Experiment's `status.variants`."""
    posterior = raw.get("posterior") or {}
    model = raw.get("model")
    version = model.get("version") if isinstance(model, dict) else model
    p_best = raw.get("probabilityToBeBest")
    return tl.VariantSample(
        name=str(raw.get("name", "?")),
        weight=float(raw.get("weight", 0) or 0),
        requests=int(raw.get("requests", 0) or 0),
        # rewardSum is the sum of the rewards (successes, for binary ones); rewards counts them.
        rewards=float(raw.get("rewardSum", raw.get("rewards", 0)) or 0),
        probability_to_be_best=None if p_best is None else float(p_best),
        alpha=_float_or_none(posterior.get("alpha")),
        beta=_float_or_none(posterior.get("beta")),
        model_version=None if version is None else str(version),
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_drift_output(text: str) -> list[tl.DriftFeature]:
    """Per-feature results from `modelpilot drift run --json` (a `features` list or mapping)."""
    doc = json.loads(text)
    features = doc.get("features", doc.get("columns", []))
    if isinstance(features, dict):
        features = [{"feature": k, **v} for k, v in features.items()]
    out = []
    for f in features:
        name = f.get("feature", f.get("name", f.get("column")))
        out.append(
            tl.DriftFeature(
                feature=str(name),
                psi=float(f["psi"]),
                drifted=bool(f.get("drifted", False)),
                ks_pvalue=_float_or_none(f.get("ks_pvalue", f.get("ksPValue"))),
            )
        )
    return out


def _cluster_groups(folder: Path) -> dict[str, int]:
    """The control plane's process groups, from the `pids.json` its harness keeps."""
    try:
        raw = json.loads((folder / "pids.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {str(k): int(v) for k, v in (raw.get("groups") or {}).items()}
