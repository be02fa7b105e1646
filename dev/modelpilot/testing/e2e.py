"""The end-to-end flows on real pods, shared by the real-node tier (tests/e2e, the local control
plane with a real kubelet) and the kind tier (tests/kind): one body of steps, two clusters.

Design decision: a cluster is anything with `kubectl(*args)` and `helm(*args)` that return a
CompletedProcess (the control plane's `ControlPlane`, or `KindCluster` for a kube context), and
everything the flows do goes through those real binaries: `helm install` of the chart, Jobs and
ModelDeployments applied with kubectl, the traffic sent from a pod inside the cluster to the
router's Service by its DNS name (tests/e2e/pods/traffic.py, mounted from a ConfigMap, so that
changing it rebuilds no image). Nothing here asserts; the tests do.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "modelpilot"
PODS_DIR = REPO / "tests" / "e2e" / "pods"
RELEASE = "modelpilot"
MODEL_NAME = "iris-classifier"
SCRIPTS_CONFIGMAP = "e2e-scripts"
T = TypeVar("T")


class E2EError(AssertionError):
    """A step of the flow did not happen in time; the message carries what the cluster showed."""


class Runner(Protocol):
    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]: ...

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class KindCluster:
    """A cluster reached through a kube context (kind): kubectl and helm from PATH or given."""

    context: str
    kubectl_bin: str = "kubectl"
    helm_bin: str = "helm"

    def _run(
        self, argv: list[str], *, check: bool, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise E2EError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.kubectl_bin, "--context", self.context, *args]
        return self._run(argv, check=check, input=input, timeout=timeout)

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.helm_bin, "--kube-context", self.context, *args]
        return self._run(argv, check=check, input=input, timeout=timeout)


def poll(
    what: str,
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 1.0,
    explain: Callable[[], str] | None = None,
) -> T:
    """`check()` until it returns something truthy; E2EError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = explain() if explain is not None else ""
            raise E2EError(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")
        time.sleep(interval)  # poll interval of a deadline loop


@dataclass
class Cluster:
    """One namespace of a cluster, with the steps of the flows."""

    runner: Runner
    namespace: str
    image_tag: str
    image_registry: str = "ghcr.io/modelpilot"
    timings: dict[str, float] = field(default_factory=dict)
    # What the registration Job printed, kept when it finished: the node removes a finished Job's
    # container (and so its log) whenever it likes, so a later `kubectl logs` can find nothing.
    registered: dict[str, Any] = field(default_factory=dict)

    def image(self, target: str) -> str:
        return f"{self.image_registry}/{target}:{self.image_tag}"

    def k(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.runner.kubectl("-n", self.namespace, *args, **kwargs)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        proc = self.k("get", kind, name, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        obj: dict[str, Any] = json.loads(proc.stdout)
        return obj

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = json.loads(self.k(*args).stdout)["items"]
        return items

    def apply(self, *objects: Mapping[str, Any]) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.k("apply", "-f", "-", input=json.dumps(doc))

    def events(self, name: str) -> list[dict[str, Any]]:
        """The Events about the object called `name` (any kind) in the namespace."""
        return [e for e in self.items("events") if e.get("involvedObject", {}).get("name") == name]

    def describe(self, *what: str) -> str:
        """What a person would look at when a step times out: objects, pods, recent events."""
        parts = [self.k("get", ",".join(what) or "all", "-o", "wide", check=False).stdout]
        parts.append(self.k("get", "pods", "-o", "wide", check=False).stdout)
        events = self.k("get", "events", "--sort-by=.lastTimestamp", check=False).stdout
        parts.append("\n".join(events.splitlines()[-25:]))
        return "\n".join(parts)

    # ---- install -------------------------------------------------------------------------

    def install_chart(self, *, values: Sequence[Path], sets: Mapping[str, str] = {}) -> float:
        """`helm upgrade --install` with the built images, waiting for every pod; seconds taken."""
        start = time.monotonic()
        args = [
            "upgrade",
            "--install",
            RELEASE,
            str(CHART),
            "-n",
            self.namespace,
            "--create-namespace",
            "--wait",
            "--timeout",
            "10m",
            "--set",
            f"operator.image.tag={self.image_tag}",
            "--set",
            f"mlflow.image.tag={self.image_tag}",
        ]
        for path in values:
            args += ["-f", str(path)]
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        self.runner.helm(*args, timeout=900)
        seconds = time.monotonic() - start
        self.timings["helm_install_s"] = seconds
        return seconds

    def ensure_scripts(self) -> None:
        """The pod scripts (tests/e2e/pods) as one ConfigMap the Jobs mount."""
        data = {p.name: p.read_text() for p in sorted(PODS_DIR.glob("*.py"))}
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": SCRIPTS_CONFIGMAP},
                "data": data,
            }
        )

    # ---- Jobs running the pod scripts ----------------------------------------------------

    def script_job(self, name: str, script: str, *args: str, env: Mapping[str, str] = {}) -> None:
        """Start Job `name`: `python /scripts/SCRIPT ARGS` in the modelpilot image, as the chart
        runs its own pods (uid 10001, read-only root, /tmp an emptyDir)."""
        self.k("delete", "job", name, "--ignore-not-found", "--wait=true")
        container = {
            "name": "main",
            "image": self.image("modelpilot"),
            "imagePullPolicy": "IfNotPresent",
            "command": ["python", f"/scripts/{script}", *args],
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [
                {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
        self.apply(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "e2e"}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/part-of": "e2e"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                            "containers": [container],
                            "volumes": [
                                {"name": "scripts", "configMap": {"name": SCRIPTS_CONFIGMAP}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                            ],
                        },
                    },
                },
            }
        )

    def job_logs(self, name: str) -> str:
        return self.k("logs", f"job/{name}", "--tail=-1", check=False).stdout

    def wait_job(self, name: str, *, timeout: float) -> str:
        """Until Job `name` succeeds; its log. E2EError with the log if it fails or times out."""

        def finished() -> str | None:
            job = self.get("job", name) or {}
            conds = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions", [])}
            if conds.get("Failed") == "True":
                raise E2EError(f"job {name} failed:\n{self.job_logs(name)}\n{self.describe()}")
            return "done" if conds.get("Complete") == "True" else None

        poll(f"job {name}", finished, timeout=timeout, explain=lambda: self.job_logs(name))
        return self.job_logs(name)

    @staticmethod
    def summary(log: str) -> dict[str, Any]:
        """The last JSON line a pod script printed."""
        for line in reversed(log.strip().splitlines()):
            if line.startswith("{"):
                out: dict[str, Any] = json.loads(line)
                return out
        raise E2EError(f"no JSON summary in the log:\n{log[-3000:]}")

    # ---- the model and the ModelDeployment ------------------------------------------------

    def register_models(self, count: int, *, timeout: float = 600) -> list[str]:
        """Versions 1..count of MODEL_NAME registered by a Job in the chart's MLflow."""
        self.ensure_scripts()
        tracking = f"http://{RELEASE}-mlflow:5000"
        self.script_job(
            "register-models",
            "register.py",
            MODEL_NAME,
            str(count),
            env={"MLFLOW_TRACKING_URI": tracking},
        )
        self.registered = self.summary(self.wait_job("register-models", timeout=timeout))
        versions: list[str] = self.registered["versions"]
        return versions

    def model_deployment(
        self,
        name: str,
        *,
        model: Mapping[str, str],
        replicas: int = 1,
        serving: Mapping[str, Any] | None = None,
        drift_schedule: str | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "model": {"name": MODEL_NAME, **model},
            "serving": {
                "replicas": replicas,
                "resources": {"requests": {"cpu": "50m", "memory": "200Mi"}},
                **(serving or {}),
            },
        }
        if drift_schedule is not None:
            spec["drift"] = {"schedule": drift_schedule}
        return {
            "apiVersion": "modelpilot.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": spec,
        }

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get(kind, name) or {}
        for cond in obj.get("status", {}).get("conditions", []):
            if cond.get("type") == type_:
                found: dict[str, Any] = cond
                return found
        return None

    def wait_ready(self, name: str, *, version: str | None = None, timeout: float) -> float:
        """Until ModelDeployment `name` is Ready (serving `version` if given); seconds taken."""
        start = time.monotonic()

        def ready() -> bool:
            md = self.get("modeldeployment", name) or {}
            cond = self.condition("modeldeployment", name, "Ready") or {}
            served = str(md.get("status", {}).get("model", {}).get("version", ""))
            return cond.get("status") == "True" and (version is None or served == version)

        poll(
            f"ModelDeployment {name} Ready" + (f" on version {version}" if version else ""),
            ready,
            timeout=timeout,
            interval=0.5,
            explain=lambda: self.describe("modeldeployments,deployments"),
        )
        return time.monotonic() - start

    def router_url(self, md: str) -> str:
        """The router's Service by its cluster DNS name (CoreDNS + kube-proxy resolve and route)."""
        return f"http://{md}.{self.namespace}.svc.cluster.local"


def bring_up(cluster: Cluster, *, values: Sequence[Path], timings: dict[str, float]) -> None:
    """The state every end-to-end test starts from, on either cluster: the chart installed with
    its MLflow, three versions of MODEL_NAME registered by a Job (alias champion -> 1), and
    ModelDeployment `iris` (alias champion, drift every minute) Ready on real pods."""
    start = time.monotonic()
    timings["helm_install_s"] = cluster.install_chart(values=values)
    cluster.register_models(3)
    timings["register_models_s"] = time.monotonic() - start - timings["helm_install_s"]
    cluster.apply(
        cluster.model_deployment("iris", model={"alias": "champion"}, drift_schedule="* * * * *")
    )
    timings["md_ready_after_apply_s"] = cluster.wait_ready("iris", version="1", timeout=600)
    timings["helm_install_to_md_ready_s"] = time.monotonic() - start


def load_test_bodies(path: Path) -> dict[str, Any]:
    """The `test_*` functions of another test file and the fixtures it defines itself, to run
    them against another `cluster` fixture (tests/kind runs tests/e2e's bodies). The module's own
    pytestmark stays behind; each function keeps its own marks (e2e_long, parametrize)."""
    spec = importlib.util.spec_from_file_location(f"_e2e_bodies_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise E2EError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {
        name: value
        for name, value in vars(module).items()
        if name.startswith("test_") or _is_fixture(value)
    }


def _is_fixture(value: Any) -> bool:
    """A `@pytest.fixture` function (pytest >= 8.4 wraps it in FixtureFunctionDefinition)."""
    from _pytest import fixtures  # only the test tiers load test bodies

    return isinstance(value, fixtures.FixtureFunctionDefinition)
