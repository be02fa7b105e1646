"""The Prometheus alert rules (alerts/modelpilot-rules.yaml) and their promtool unit tests.

promtool is the real one, from Debian's `prometheus` package (`make promtool` installs it; this
module installs it the same way when it is missing and we are root, as on the CI machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

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
    found = shutil.which("promtool")
    if found is None and os.geteuid() == 0:
        subprocess.run(
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus",
            shell=True,
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            timeout=600,
        )
        found = shutil.which("promtool")
    assert found, "promtool is missing: run `make promtool` (Debian package prometheus)"
    return found


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
