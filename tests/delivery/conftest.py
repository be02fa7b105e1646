"""Fixtures of the delivery tests: paths, the helm binary, chart rendering, exported metric names.

Design decision: the chart is rendered by the real `helm` (built from Go modules with the control
plane, `modelpilot.testing.controlplane.ensure_binaries`), never by a Python imitation of Go
templates; tests that need it are marked `k8s`, like the rest of that tier.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.testing import controlplane as controlplane_harness

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

# The factories that build each component's Prometheus registry, called as the code calls them;
# the metric names they register are what dashboards and alerts may query.
# (module, factory, keyword arguments)
METRIC_FACTORIES: list[tuple[str, str, dict[str, Any]]] = [
    ("modelpilot.modelserver.metrics", "create_metrics", {"deployment": "d", "variant": "v"}),
    ("modelpilot.router.metrics", "create_metrics", {"deployment": "d"}),
]
# Series Prometheus makes itself for every target (not exported by any code).
PROMETHEUS_SYNTHETIC = frozenset({"up"})


@pytest.fixture(scope="session")
def exported_families() -> dict[str, str]:
    """Metric family name -> type ("counter", "gauge", "histogram", ...) of every metric the
    code's factories register."""
    families: dict[str, str] = {}
    for module_name, factory, kwargs in METRIC_FACTORIES:
        module = importlib.import_module(module_name)
        made = getattr(module, factory)(**kwargs)
        registry = getattr(made, "registry", made)
        for family in registry.collect():
            families[family.name] = family.type
    return families


@pytest.fixture(scope="session")
def exported_metrics(exported_families: dict[str, str]) -> frozenset[str]:
    """Every sample name those metrics can expose (counter `_total`, histogram `_bucket`, ...),
    plus the series Prometheus adds to every target (`up`)."""
    names = set(PROMETHEUS_SYNTHETIC)
    for name, kind in exported_families.items():
        names.update(_sample_names(name, kind))
    return frozenset(names)


def _sample_names(name: str, kind: str) -> set[str]:
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_sum", "_count", "_created"],
        "summary": ["", "_sum", "_count", "_created"],
        "gaugehistogram": ["_bucket", "_gsum", "_gcount"],
        "info": ["_info"],
    }.get(kind, [""])
    return {name + suffix for suffix in suffixes}


@pytest.fixture(scope="session")
def helm() -> Path:
    """The real helm binary (built from Go modules on first use)."""
    return controlplane_harness.ensure_binaries() / "helm"


RenderChart = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render_chart(helm: Path) -> RenderChart:
    """`render_chart(values_file=None, sets=(), namespace="modelpilot")` -> the objects `helm
    template` renders, as dicts (empty documents dropped)."""

    def render(
        values_file: Path | None = None,
        sets: tuple[str, ...] = (),
        namespace: str = "modelpilot",
    ) -> list[dict[str, Any]]:
        argv = [str(helm), "template", "modelpilot", str(CHART), "--namespace", namespace]
        if values_file is not None:
            argv += ["--values", str(values_file)]
        for item in sets:
            argv += ["--set", item]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, f"helm template failed: {proc.stderr}"
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    return render
