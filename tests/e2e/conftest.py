"""Fixtures of the end-to-end tier: the chart installed once per session on the local control
plane's real node (`real_node_plane`, tests/conftest.py), with the images `make images` built.

Design decision: one install serves every test of the tier (a cold install with MLflow and the
first model-server pods takes minutes on 2 cores); each test leaves the `iris` deployment serving,
and the failure cases use ModelDeployments of their own. The timings the issue asks for (import,
helm install, helm install to Ready) are printed at the end of the run.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from modelpilot.testing import e2e
from modelpilot.testing import images as images_mod

NAMESPACE = "modelpilot"
VALUES = e2e.CHART / "ci" / "realnode-values.yaml"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def built_images() -> images_mod.Images:
    start = time.monotonic()
    built = images_mod.ensure()
    TIMINGS["images_ensure_s"] = time.monotonic() - start
    return built


@pytest.fixture(scope="session")
def cluster(real_node_plane: Any, built_images: images_mod.Images) -> e2e.Cluster:
    """The chart on the real node, three model versions registered, `iris` Ready on v1."""
    node = real_node_plane.node
    assert node is not None, "real_node_plane has no real node"
    start = time.monotonic()
    node.import_image(built_images.archive)
    TIMINGS["image_import_s"] = time.monotonic() - start
    cluster = e2e.Cluster(
        runner=real_node_plane,
        namespace=NAMESPACE,
        image_tag=built_images.tag,
        image_registry=built_images.registry,
    )
    e2e.bring_up(cluster, values=[VALUES], timings=TIMINGS)
    return cluster


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("end-to-end timings (real node)")
        for key, value in TIMINGS.items():
            terminalreporter.write_line(f"{key}: {value:.1f}")
