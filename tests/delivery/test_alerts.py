"""The Prometheus alert rules (alerts/modelpilot-rules.yaml), their promtool unit tests, and the
rules loaded into a real Prometheus fed by a real Pushgateway.

promtool and Prometheus are the real ones, from Debian's `prometheus` package, the Pushgateway from
`prometheus-pushgateway` (`make prometheus-binaries` installs them; `modelpilot.testing.prometheus`
does the same on first use when one is missing and we are root, as on the CI machine).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from modelpilot.testing import prometheus as prometheus_harness

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "alerts" / "modelpilot-rules.yaml"
RULE_TESTS = sorted((REPO / "alerts" / "tests").glob("*.yaml"))
REQUIRED_ALERTS = {
    "ModelpilotFeatureDrift",
    "ModelpilotChallengerErrorRateHigh",
    "ModelpilotChallengerLatencyHigh",
    "ModelpilotExperimentSampleRatioMismatch",
    "ModelpilotOperatorReconcileErrors",
    "ModelpilotModelServerDown",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return prometheus_harness.ensure_binary("promtool")


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _metric_names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.add(node.name)
            return
        for child in ("expr", "lhs", "rhs", "vector_selector", "param"):
            value = getattr(node, child, None)
            if value is not None and not isinstance(value, str | int | float):
                visit(value)
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(promql_parser.parse(expr))
    return found


def test_rule_file_passes_promtool_check_rules(promtool: str) -> None:
    proc = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    proc = subprocess.run(
        [promtool, "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO / "alerts" / "tests",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_promtool_unit_tests_fail_when_an_alert_would_not_fire(
    promtool: str, tmp_path: Path
) -> None:
    # The unit tests must be able to fail: raise the PSI threshold out of reach and rerun them.
    rules = RULES.read_text().replace(
        "(modelpilot_drift_psi) >= 0.2", "(modelpilot_drift_psi) >= 5"
    )
    assert rules != RULES.read_text()
    (tmp_path / "modelpilot-rules.yaml").write_text(rules)
    (tmp_path / "tests").mkdir()
    drift_tests = REPO / "alerts" / "tests" / "drift_test.yaml"
    shutil.copy(drift_tests, tmp_path / "tests" / drift_tests.name)
    proc = subprocess.run(
        [promtool, "test", "rules", drift_tests.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path / "tests",
    )
    assert proc.returncode != 0
    assert "ModelpilotFeatureDrift" in proc.stdout + proc.stderr


def test_the_issues_alerts_are_all_there() -> None:
    assert {rule["alert"] for rule in _rules()} >= REQUIRED_ALERTS


def test_every_alert_has_a_test_that_fires_it_and_one_where_it_stays_silent() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert sorted(alerts - fires) == []
    assert sorted(alerts - silent) == []


def test_every_rule_has_a_severity_a_summary_and_a_description() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_alerts_query_only_metrics_the_code_exports(exported_metrics: frozenset[str]) -> None:
    used = {name for rule in _rules() for name in _metric_names(rule["expr"])}
    assert sorted(used - exported_metrics) == []


@pytest.mark.slow
def test_a_real_prometheus_loads_every_rule_healthy_and_a_pushed_drift_raises_the_drift_alert(
    tmp_path: Path,
) -> None:
    import numpy as np

    from modelpilot.driftjob import job as drift_job
    from modelpilot.stats import drift as drift_stats

    rng = np.random.default_rng(0)
    report = drift_stats.compare_frames(
        {"moved": rng.normal(size=2000), "steady": rng.normal(size=2000)},
        {"moved": rng.normal(1.0, size=2000), "steady": rng.normal(size=2000)},
    )
    psi = {f.name: f.psi for f in report.features}
    assert psi["moved"] >= 0.2 > psi["steady"]
    with prometheus_harness.running_pushgateway(tmp_path / "pushgateway") as gateway:
        # Scraped as the chart's ServiceMonitor does: honorLabels keeps the pushed namespace and
        # deployment (and job) labels.
        job = prometheus_harness.ScrapeJob(
            "pushgateway", {"pushgateway": gateway.address}, honor_labels=True
        )
        with prometheus_harness.running(
            tmp_path / "prometheus", [job], rule_files=[RULES]
        ) as server:
            options = drift_job.Options(
                deployment="iris", namespace="ml", pushgateway=gateway.address
            )
            drift_job._push(options, report)
            server.wait_scrapes("pushgateway", 1)

            def drift_alerts() -> list[dict[str, Any]]:
                return [
                    a
                    for a in server.alerts()
                    if a["labels"]["alertname"] == "ModelpilotFeatureDrift"
                ]

            deadline = time.monotonic() + 30
            while not drift_alerts() and time.monotonic() < deadline:
                time.sleep(0.2)  # poll interval of a deadline loop (rules evaluate each second)
            rules = [rule for group in server.rule_groups() for rule in group["rules"]]
            alerts = drift_alerts()

    assert sorted(r["name"] for r in rules) == sorted(rule["alert"] for rule in _rules())
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    # Only the moved feature, pending for the rule's `for: 1m`, its summary rendered.
    assert [(a["labels"]["feature"], a["state"]) for a in alerts] == [("moved", "pending")]
    (alert,) = alerts
    assert alert["labels"]["namespace"] == "ml"
    assert alert["labels"]["deployment"] == "iris"
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) == pytest.approx(psi["moved"], rel=1e-9)
    assert alert["annotations"]["summary"] == (
        f"Feature moved of ml/iris drifted (PSI {psi['moved']:.2f})"
    )
