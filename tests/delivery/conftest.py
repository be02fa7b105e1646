"""Fixtures of the delivery tests: paths, the helm binary, chart rendering, exported metric names.

Design decision: the chart is rendered by the real `helm` (built from Go modules with the control
plane, `modelpilot.testing.controlplane.ensure_binaries`), never by a Python imitation of Go
templates; tests that need it are marked `k8s`, like the rest of that tier.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.testing import controlplane as controlplane_harness
from modelpilot.testing import prometheus as prometheus_harness

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

# Series Prometheus makes itself for every target (not exported by any code).
PROMETHEUS_SYNTHETIC = frozenset({"up"})


def _code_registries() -> list[Any]:
    """The Prometheus registries the code builds, made by its own factories as it makes them."""
    from modelpilot.modelserver import metrics as modelserver_metrics
    from modelpilot.operator import metrics as operator_metrics
    from modelpilot.operator.handlers import experiment as experiment_handlers
    from modelpilot.router import metrics as router_metrics

    operator = operator_metrics.make_metrics()
    experiment_handlers.Gauges(operator.registry)  # the Experiment gauges join that registry
    return [
        modelserver_metrics.create_metrics(deployment="d", variant="v").registry,
        router_metrics.create_metrics(deployment="d").registry,
        operator.registry,
    ]


def _drift_job_families(state_dir: Path) -> dict[str, str]:
    """What the drift job pushes, as a real Pushgateway keeps it: the job builds its gauges per run
    and pushes them (there is no registry factory to call), so we let it push a run's report.

    The report has a drifting feature: the Pushgateway, like Prometheus' text parser, drops a
    family pushed without samples, so a report without features would show nothing per feature.
    """
    import numpy as np

    from modelpilot.driftjob import job as drift_job
    from modelpilot.stats import drift as drift_stats

    rng = np.random.default_rng(0)
    report = drift_stats.compare_frames(
        {"x": rng.normal(size=500)}, {"x": rng.normal(1.0, size=500)}
    )
    with prometheus_harness.running_pushgateway(state_dir) as gateway:
        options = drift_job.Options(deployment="d", namespace="n", pushgateway=gateway.address)
        drift_job._push(options, report)
        groups = gateway.groups()
    families = {
        name: family["type"].lower()
        for group in groups
        for name, family in group.items()
        # The Pushgateway's own per-group series, not the job's.
        if isinstance(family, dict) and "metrics" in family and not name.startswith("push_")
    }
    assert families, "the drift job pushed nothing"
    return families


@pytest.fixture(scope="session")
def exported_families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Metric family name -> type ("counter", "gauge", "histogram", ...) of every metric the code
    exports: the model server, router and operator registries, and the drift job's pushes."""
    families: dict[str, str] = {}
    for registry in _code_registries():
        for family in registry.collect():
            families[family.name] = family.type
    families.update(_drift_job_families(tmp_path_factory.mktemp("pushgateway")))
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
