"""Shared fixtures: the real parts the tiers run against.

- `mlflow_server` (session): a real `mlflow server` with a SQLite store and served artifacts.
  Tests that use it are marked `mlflow`.
- `control_plane` (session): a real Kubernetes control plane (etcd, kube-apiserver with RBAC,
  controller-manager, scheduler, kwok with one fake Ready node); binaries built on first use.
  Tests that use it are marked `k8s`; a failing one gets the components' log tails in its report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from modelpilot.testing import controlplane as controlplane_harness
from modelpilot.testing import mlflow_server as mlflow_harness
from modelpilot.testing import node as node_harness


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[mlflow_harness.MlflowServer]:
    state = Path(tmp_path_factory.mktemp("mlflow"))
    with mlflow_harness.running(state) as server:
        yield server


@pytest.fixture
def tracking_uri(
    mlflow_server: mlflow_harness.MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The server's URI, also set as MLFLOW_TRACKING_URI for code that reads the environment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    return mlflow_server.tracking_uri


@pytest.fixture(scope="session")
def control_plane() -> Iterator[controlplane_harness.ControlPlane]:
    """One control plane for the session, in a temporary directory removed at teardown."""
    with controlplane_harness.running() as plane:
        yield plane


@pytest.fixture(scope="session")
def real_node_plane() -> Iterator[controlplane_harness.ControlPlane]:
    """A control plane with a real node (kubelet, containerd + runc, CNI bridge, kube-proxy,
    CoreDNS; root only), in a temporary directory; `plane.node.import_image(archive)` loads an
    image. Tests that use it are marked `k8s` and `realnode`. See modelpilot.testing.node.
    """
    with controlplane_harness.running(node="real", timeout=240.0) as plane:
        yield plane


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find) the control-plane binaries before any test runs, outside test timeouts.

    Only when a selected test uses `control_plane`; the build's progress is shown live.
    """
    if session.config.option.collectonly:
        return
    planes = ("control_plane", "real_node_plane")
    used = {f for item in session.items for f in getattr(item, "fixturenames", ()) if f in planes}
    if not used:
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")

    def live() -> contextlib.AbstractContextManager[None]:
        # A fresh one per use: a generator-based context manager cannot be entered twice.
        return capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()

    with live(), contextlib.suppress(controlplane_harness.ControlPlaneError):
        # On failure the tests that need the plane error with the message; the others still run.
        controlplane_harness.ensure_binaries()
    if "real_node_plane" in used:
        with live(), contextlib.suppress(node_harness.NodeError):
            node_harness.ensure_binaries()  # kubelet, kube-proxy, coredns; apt packages


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the control plane's component logs to a failing test that used it."""
    report = yield
    for name in ("control_plane", "real_node_plane"):
        plane = getattr(item, "funcargs", {}).get(name)
        if report.failed and isinstance(plane, controlplane_harness.ControlPlane):
            report.sections.append((f"{name} logs", plane.logs_tail()))
    return report
