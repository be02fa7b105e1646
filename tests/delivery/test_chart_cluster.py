"""The chart on a real control plane (kube-apiserver 1.36 with RBAC, controller-manager, scheduler,
kwok): every rendering is accepted by the API server, `helm install --wait` brings the operator to
Ready, `helm test` passes, the chart's RBAC gives the operator what it needs and nothing it does not
(and losing one rule takes a permission away), and `helm uninstall` leaves only the kept CRDs.

What kwok means here: pods are scheduled on a fake node and kwok sets them Running and Ready, and
Job pods Succeeded, without running containers. So "the operator is Ready" proves the Deployment,
ServiceAccount, RBAC and scheduling are right, not that the image starts (that is the kind tier,
tests/kind); likewise the `helm test` Jobs complete without their HTTP check being run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.testing import controlplane as controlplane_harness

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "modelpilot"
NAMESPACE = "modelpilot"
OPERATOR_SA = "modelpilot-operator"
# Kinds of the Prometheus operator: their CRDs are not on this control plane (they come with
# kube-prometheus-stack), so the server cannot check them; tests/delivery/test_chart_render.py
# checks their content instead.
NOT_ON_THIS_CLUSTER = ("monitoring.coreos.com/",)
# The kopf peering object is a custom resource of a CRD this same rendering creates, so a dry run
# cannot resolve it (Helm creates it in a post-install hook); the upgrade test below creates it
# for real instead. (Applying the CRDs with kubectl here would take them from Helm's ownership.)
HOOK_RESOURCES = ("kopf.dev/",)

# What the operator does, as (verb, resource, namespace or None for cluster scope), each with the
# reason it needs it. Derived from the operator's behaviour, not from the rules, so the rules are
# tested against the need.
NEEDED_IN_NAMESPACE = [
    ("list", "modeldeployments.modelpilot.io"),  # kopf lists then watches the resources
    ("watch", "modeldeployments.modelpilot.io"),
    ("patch", "modeldeployments.modelpilot.io"),  # kopf's finalizer and progress annotations
    ("patch", "modeldeployments.modelpilot.io/status"),  # conditions, resolved model, history
    ("watch", "experiments.modelpilot.io"),
    ("patch", "experiments.modelpilot.io/status"),
    ("create", "deployments.apps"),  # model servers and routers (server-side apply)
    ("patch", "deployments.apps"),
    ("delete", "deployments.apps"),  # a rolled-back challenger's Deployment
    ("create", "services"),
    ("patch", "configmaps"),  # the routes ConfigMap
    ("create", "cronjobs.batch"),  # the drift job
    ("delete", "cronjobs.batch"),  # drift turned off
    ("create", "serviceaccounts"),  # the drift job's identity
    ("create", "roles.rbac.authorization.k8s.io"),  # the router's and the drift job's Roles
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("list", "pods"),  # held so that the drift job's Role may grant it (no escalation)
    ("create", "events"),  # a Kubernetes Event on each change
    ("patch", "kopfpeerings.kopf.dev"),  # peering of several replicas
]
NEVER = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "pods/exec"),
    ("delete", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
]


def _poll(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _render(plane: controlplane_harness.ControlPlane, *args: str) -> list[dict[str, Any]]:
    out = plane.helm("template", RELEASE, str(CHART), *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _ensure_namespace(plane: controlplane_harness.ControlPlane, name: str) -> None:
    manifest = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    plane.kubectl("apply", "-f", "-", input=manifest)


def test_the_api_server_checking_the_chart_is_kubernetes_1_36(
    control_plane: controlplane_harness.ControlPlane,
) -> None:
    status, version = control_plane.api_get("/version")
    assert status == 200
    assert (version["major"], version["minor"].rstrip("+")) == ("1", "36")


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_every_rendered_object_is_accepted_by_the_api_server(
    control_plane: controlplane_harness.ControlPlane, values_file: Path
) -> None:
    namespace = "dry-run"
    objects = _render(control_plane, "-n", namespace, "-f", str(values_file))
    checked = [
        o for o in objects if not o["apiVersion"].startswith(NOT_ON_THIS_CLUSTER + HOOK_RESOURCES)
    ]
    assert checked
    for needed in {namespace} | {o["metadata"].get("namespace", namespace) for o in checked}:
        _ensure_namespace(control_plane, needed)
    stream = "\n---\n".join(yaml.safe_dump(o) for o in checked)
    # Server-side dry run with strict field validation: the API server's own schemas (1.36) and
    # admission, so an unknown or misplaced field fails here rather than on a user's cluster.
    proc = control_plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=stream, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("(server dry run)") == len(checked)


def test_the_api_server_rejects_an_object_the_chart_must_not_produce(
    control_plane: controlplane_harness.ControlPlane,
) -> None:
    # The dry run above is only worth something if it can fail: a misplaced field is refused.
    _ensure_namespace(control_plane, "dry-run")
    objects = _render(control_plane, "-n", "dry-run")
    operator = next(o for o in objects if o["kind"] == "Deployment")
    operator["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    proc = control_plane.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        input=yaml.safe_dump(operator),
        check=False,
    )
    assert proc.returncode != 0
    assert "readinessprobe" in proc.stderr


@pytest.fixture(scope="module")
def installed(control_plane: controlplane_harness.ControlPlane) -> Iterator[str]:
    """The chart installed with `helm install --wait` (and MLflow, without a volume: this control
    plane has no storage provisioner), uninstalled at the end if a test has not done it."""
    control_plane.helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "mlflow.enabled=true",
        "--set",
        "mlflow.persistence.enabled=false",
        "--wait",
        "--timeout",
        "180s",
        timeout=240,
    )
    yield RELEASE
    if control_plane.helm("status", RELEASE, "-n", NAMESPACE, check=False).returncode == 0:
        control_plane.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def test_helm_install_wait_brings_the_operator_to_ready(
    control_plane: controlplane_harness.ControlPlane, installed: str
) -> None:
    deployment = json.loads(
        control_plane.kubectl(
            "get", "deployment", OPERATOR_SA, "-n", NAMESPACE, "-o", "json"
        ).stdout
    )
    assert deployment["status"]["readyReplicas"] == 1
    pods = json.loads(
        control_plane.kubectl(
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/component=operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert len(pods) == 1
    assert pods[0]["spec"]["serviceAccountName"] == OPERATOR_SA
    ready = {c["type"]: c["status"] for c in pods[0]["status"]["conditions"]}
    assert ready["Ready"] == "True"
    status = control_plane.helm("status", installed, "-n", NAMESPACE, "-o", "json").stdout
    assert json.loads(status)["info"]["status"] == "deployed"


def test_helm_test_passes(control_plane: controlplane_harness.ControlPlane, installed: str) -> None:
    proc = control_plane.helm("test", installed, "-n", NAMESPACE, "--timeout", "120s", timeout=180)
    # helm prints one block per test hook: "TEST SUITE:     <name>" ... "Phase:          <phase>".
    phases: dict[str, str] = {}
    suite = None
    for line in proc.stdout.splitlines():
        if line.startswith("TEST SUITE:") and "None" not in line:
            suite = line.split(":", 1)[1].strip()
        elif line.startswith("Phase:") and suite is not None:
            phases[suite] = line.split(":", 1)[1].strip()
    assert phases == {
        "modelpilot-test-operator": "Succeeded",
        "modelpilot-test-mlflow": "Succeeded",
    }


def _can_i(
    plane: controlplane_harness.ControlPlane,
    kubeconfig: Path,
    verb: str,
    resource: str,
    namespace: str | None,
) -> bool:
    scope = ["-n", namespace] if namespace else ["--all-namespaces"]
    proc = plane._run(  # the real kubectl, authenticated only by the ServiceAccount's token
        [
            str(plane.binaries / "kubectl"),
            f"--kubeconfig={kubeconfig}",
            "auth",
            "can-i",
            verb,
            resource,
            *scope,
        ],
        check=False,
        input=None,
        timeout=60,
    )
    answer = proc.stdout.strip()
    assert answer in {"yes", "no"}, proc.stderr
    return answer == "yes"


@pytest.fixture(scope="module")
def operator_kubeconfig(control_plane: controlplane_harness.ControlPlane, installed: str) -> Path:
    """A kubeconfig holding only a token of the chart's operator ServiceAccount."""
    return control_plane.kubeconfig_for_token(control_plane.token_for(OPERATOR_SA, NAMESPACE))


def test_chart_rbac_grants_the_operator_everything_it_needs_in_any_namespace(
    control_plane: controlplane_harness.ControlPlane, operator_kubeconfig: Path
) -> None:
    _ensure_namespace(control_plane, "team-a")
    missing = [
        (verb, resource, ns)
        for ns in ("team-a", "default")
        for verb, resource in NEEDED_IN_NAMESPACE
        if not _can_i(control_plane, operator_kubeconfig, verb, resource, ns)
    ]
    assert missing == []
    # Cluster-wide: watch across namespaces, and the cluster-scoped kopf peering.
    assert _can_i(
        control_plane, operator_kubeconfig, "watch", "modeldeployments.modelpilot.io", None
    )
    assert _can_i(control_plane, operator_kubeconfig, "patch", "clusterkopfpeerings.kopf.dev", None)


def test_chart_rbac_grants_nothing_the_operator_does_not_need(
    control_plane: controlplane_harness.ControlPlane, operator_kubeconfig: Path
) -> None:
    granted = [
        (verb, resource)
        for verb, resource in NEVER
        if _can_i(control_plane, operator_kubeconfig, verb, resource, "team-a")
    ]
    assert granted == []


def test_removing_one_rule_takes_the_permission_away(
    control_plane: controlplane_harness.ControlPlane, operator_kubeconfig: Path
) -> None:
    role = json.loads(control_plane.kubectl("get", "clusterrole", OPERATOR_SA, "-o", "json").stdout)
    index = next(i for i, r in enumerate(role["rules"]) if r["resources"] == ["deployments"])
    assert _can_i(control_plane, operator_kubeconfig, "create", "deployments.apps", "team-a")
    patch = json.dumps([{"op": "remove", "path": f"/rules/{index}"}])
    control_plane.kubectl("patch", "clusterrole", OPERATOR_SA, "--type=json", "-p", patch)
    try:
        _poll(
            "the API server to apply the reduced ClusterRole",
            lambda: (
                not _can_i(
                    control_plane, operator_kubeconfig, "create", "deployments.apps", "team-a"
                )
            ),
        )
        # Only that permission went: the next rule still holds.
        assert _can_i(control_plane, operator_kubeconfig, "create", "services", "team-a")
    finally:
        restore = json.dumps(
            [{"op": "add", "path": f"/rules/{index}", "value": role["rules"][index]}]
        )
        control_plane.kubectl("patch", "clusterrole", OPERATOR_SA, "--type=json", "-p", restore)
    _poll(
        "the restored ClusterRole",
        lambda: _can_i(control_plane, operator_kubeconfig, "create", "deployments.apps", "team-a"),
    )


def test_helm_uninstall_removes_everything_but_the_kept_crds(
    control_plane: controlplane_harness.ControlPlane, installed: str
) -> None:
    control_plane.helm("uninstall", installed, "-n", NAMESPACE, "--wait", "--timeout", "120s")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = "deployments,services,serviceaccounts,configmaps,jobs,roles,rolebindings"
    left = control_plane.kubectl("get", kinds, "-n", NAMESPACE, "-l", selector, "-o", "name").stdout
    assert left.strip() == ""
    cluster_left = control_plane.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"
    ).stdout
    assert cluster_left.strip() == ""
    crds = control_plane.kubectl("get", "crd", "-l", selector, "-o", "name").stdout.split()
    assert sorted(crds) == sorted(
        f"customresourcedefinition.apiextensions.k8s.io/{name}"
        for name in (
            "clusterkopfpeerings.kopf.dev",
            "experiments.modelpilot.io",
            "kopfpeerings.kopf.dev",
            "modeldeployments.modelpilot.io",
        )
    )


def test_reinstalling_after_uninstall_adopts_the_kept_crds_and_upgrades_in_place(
    control_plane: controlplane_harness.ControlPlane,
) -> None:
    # The kept CRDs still carry the release's ownership annotations, so installing the same release
    # again takes them over (cert-manager's documented path), and `helm upgrade` then rolls out.
    control_plane.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "--wait", "--timeout", "180s", timeout=240
    )
    try:
        control_plane.helm(
            "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
            "--set", "operator.replicas=2", "--wait", "--timeout", "180s",
            timeout=240,
        )  # fmt: skip
        deployment = json.loads(
            control_plane.kubectl(
                "get", "deployment", OPERATOR_SA, "-n", NAMESPACE, "-o", "json"
            ).stdout
        )
        assert deployment["status"]["readyReplicas"] == 2
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "MODELPILOT_OPERATOR_PEERING_NAME", "value": "modelpilot"} in env
        # The replicas have their peering object to meet in.
        control_plane.kubectl("get", "clusterkopfpeering", "modelpilot")
        history = json.loads(
            control_plane.helm("history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
        )
        assert [h["status"] for h in history] == ["superseded", "deployed"]
    finally:
        control_plane.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def test_namespace_scope_confines_the_operator_to_its_namespace(
    control_plane: controlplane_harness.ControlPlane,
) -> None:
    release, watched = "scoped", "ml-team"
    _ensure_namespace(control_plane, watched)
    _ensure_namespace(control_plane, "elsewhere")
    control_plane.helm(
        "install",
        release,
        str(CHART),
        "-n",
        "scoped-system",
        "--create-namespace",
        "-f",
        str(CHART / "ci" / "namespace-scope-values.yaml"),
        # The CRDs are cluster objects another release may own (the test above keeps them).
        "--set",
        "crds.enabled=false",
        "--wait",
        "--timeout",
        "180s",
        timeout=240,
    )
    try:
        token = control_plane.token_for("scoped-modelpilot-operator", "scoped-system")
        kubeconfig = control_plane.kubeconfig_for_token(token)
        assert all(
            _can_i(control_plane, kubeconfig, verb, resource, watched)
            for verb, resource in NEEDED_IN_NAMESPACE
        )
        assert not any(
            _can_i(control_plane, kubeconfig, verb, resource, "elsewhere")
            for verb, resource in NEEDED_IN_NAMESPACE
        )
        assert not _can_i(
            control_plane, kubeconfig, "watch", "modeldeployments.modelpilot.io", None
        )
    finally:
        control_plane.helm("uninstall", release, "-n", "scoped-system", "--wait", check=False)
