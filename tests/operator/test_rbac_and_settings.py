"""The operator's RBAC covers what it manages and grants; settings parse the environment."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from modelpilot import config, errors
from modelpilot.api import rbac
from modelpilot.kube import apply
from modelpilot.operator import main as operator_main
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import desired, drift, routes, workloads

SETTINGS = settings_mod.OperatorSettings()
MD = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
    "spec": {"model": {"name": "m", "alias": "a"}, "drift": {}},
}


def allowed(rules: list[dict[str, Any]], *, group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


@pytest.mark.parametrize("cluster_wide", [True, False])
def test_operator_may_apply_list_and_prune_every_kind_it_builds(cluster_wide: bool) -> None:
    rules = rbac.operator_rules(cluster_wide=cluster_wide)
    variants, policy = routes.route_variants(stable_version="1", experiment=None)
    objects = desired.build_desired(
        MD, model={"name": "m", "version": "1"}, variants=variants, policy=policy, settings=SETTINGS
    )
    for obj in objects:
        plural, _ = apply.KINDS[obj["kind"]]
        for verb in ("get", "list", "create", "patch", "delete"):
            assert allowed(rules, group=group_of(obj["apiVersion"]), resource=plural, verb=verb), (
                obj["kind"],
                verb,
            )


def test_operator_holds_every_permission_it_grants_to_router_and_drift_job() -> None:
    # RBAC escalation prevention: a Role can only grant what its creator holds.
    rules = rbac.operator_rules(cluster_wide=False)
    granted = [
        *workloads.build_router_rbac(MD)[1]["rules"],
        *drift.build_drift_rbac(MD)[1]["rules"],
    ]
    for rule in granted:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert allowed(rules, group=group, resource=resource, verb=verb), (
                        resource,
                        verb,
                    )


def test_operator_never_holds_wildcards_escalate_or_bind() -> None:
    for cluster_wide in (True, False):
        for rule in rbac.operator_rules(cluster_wide=cluster_wide):
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_the_namespaced_role_has_no_cluster_scoped_resources() -> None:
    role = rbac.build_role(namespace="ml")
    assert role["kind"] == "Role"
    assert role["metadata"]["namespace"] == "ml"
    assert not any("clusterkopfpeerings" in r["resources"] for r in role["rules"])
    assert any("clusterkopfpeerings" in r["resources"] for r in rbac.build_cluster_role()["rules"])


def test_rest_paths_of_core_grouped_and_custom_kinds() -> None:
    assert apply.path("v1", "Service", namespace="ml", name="iris") == (
        "/api/v1/namespaces/ml/services/iris"
    )
    assert apply.path("apps/v1", "Deployment", namespace="ml") == (
        "/apis/apps/v1/namespaces/ml/deployments"
    )
    assert apply.path("modelpilot.io/v1alpha1", "ModelDeployment", namespace="ml", name="x") == (
        "/apis/modelpilot.io/v1alpha1/namespaces/ml/modeldeployments/x"
    )
    with pytest.raises(KeyError, match="Secret"):
        apply.path("v1", "Secret", namespace="ml")


def test_settings_read_namespaces_as_a_comma_list_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPILOT_OPERATOR_NAMESPACES", "a, b")
    monkeypatch.setenv("MODELPILOT_OPERATOR_RESYNC_SECONDS", "5")
    parsed = settings_mod.OperatorSettings()
    assert parsed.namespaces == ["a", "b"]
    assert not parsed.cluster_wide
    assert parsed.resync_seconds == 5.0
    monkeypatch.setenv("MODELPILOT_OPERATOR_NAMESPACES", '["x"]')
    assert settings_mod.OperatorSettings().namespaces == ["x"]
    monkeypatch.delenv("MODELPILOT_OPERATOR_NAMESPACES")
    assert settings_mod.OperatorSettings().cluster_wide


def test_the_experiment_loop_settings_are_operator_settings_under_the_operator_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_name = settings_mod.OperatorSettings(stats_urls={"*": ["u"]}, latency_window="2h")
    assert (by_name.stats_urls, by_name.latency_window) == ({"*": ["u"]}, "2h")
    monkeypatch.setenv("MODELPILOT_OPERATOR_STATS_URLS", '{"iris": ["http://r:8080/stats"]}')
    monkeypatch.setenv("MODELPILOT_OPERATOR_METRICS_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("MODELPILOT_OPERATOR_LATENCY_WINDOW", "1m")
    parsed = config.load(settings_mod.OperatorSettings)
    assert parsed.stats_urls == {"iris": ["http://r:8080/stats"]}
    assert parsed.metrics_timeout_seconds == 2.5
    assert parsed.latency_window == "1m"


def test_the_former_experiment_variables_still_work_with_a_warning_naming_the_new_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MODELPILOT_EXPERIMENT_STATS_URLS", '{"*": ["http://old/stats"]}')
    monkeypatch.setenv("MODELPILOT_EXPERIMENT_TIMEOUT_SECONDS", "3")
    with caplog.at_level(logging.WARNING, logger="modelpilot.config"):
        parsed = config.load(settings_mod.OperatorSettings)
    assert parsed.stats_urls == {"*": ["http://old/stats"]}
    assert parsed.metrics_timeout_seconds == 3.0
    assert (
        "MODELPILOT_EXPERIMENT_STATS_URLS is deprecated: set MODELPILOT_OPERATOR_STATS_URLS instead"
        in caplog.messages
    )
    assert any("MODELPILOT_OPERATOR_METRICS_TIMEOUT_SECONDS" in m for m in caplog.messages)
    # The new name wins when both are set, and the warning says the old one is ignored.
    monkeypatch.setenv("MODELPILOT_OPERATOR_STATS_URLS", '{"*": ["http://new/stats"]}')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelpilot.config"):
        assert config.load(settings_mod.OperatorSettings).stats_urls == {"*": ["http://new/stats"]}
    assert any("ignored" in m and "STATS_URLS" in m for m in caplog.messages)


def test_a_bad_former_variable_is_reported_under_the_name_the_user_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELPILOT_EXPERIMENT_LATENCY_WINDOW", "five minutes")
    with pytest.raises(errors.InputError, match=r"^MODELPILOT_EXPERIMENT_LATENCY_WINDOW: "):
        config.load(settings_mod.OperatorSettings)
    monkeypatch.delenv("MODELPILOT_EXPERIMENT_LATENCY_WINDOW")
    with pytest.raises(
        errors.InputError, match=r"^--latency-window \(MODELPILOT_OPERATOR_LATENCY_WINDOW\): "
    ):
        config.load(settings_mod.OperatorSettings, {"latency_window": "5"}, flags=True)


def test_the_docs_list_every_operator_setting_with_its_default() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    table = config.table(settings_mod.OperatorSettings)
    assert table in docs, "paste config.table(OperatorSettings) into docs/architecture.md"
    assert "`MODELPILOT_OPERATOR_STATS_URLS` (formerly `MODELPILOT_EXPERIMENT_STATS_URLS`)" in table
    assert all(f.description for f in settings_mod.OperatorSettings.model_fields.values())


def test_kopf_keeps_its_state_in_annotations_and_peers_only_when_named() -> None:
    standalone = operator_main.build_kopf_settings(settings_mod.OperatorSettings())
    assert standalone.peering.standalone
    assert not standalone.peering.mandatory
    assert standalone.persistence.finalizer == "operator.modelpilot.io/finalizer"
    assert standalone.scanning.disabled
    peered = operator_main.build_kopf_settings(
        settings_mod.OperatorSettings(peering_name="modelpilot", workers=7)
    )
    assert peered.peering.name == "modelpilot"
    assert peered.peering.mandatory
    assert not peered.peering.standalone
    assert peered.execution.max_workers == 7
    assert peered.peering.priority > 0  # drawn at random: equal priorities would pause everyone
    explicit = operator_main.build_kopf_settings(
        settings_mod.OperatorSettings(peering_name="p", peering_priority=42)
    )
    assert explicit.peering.priority == 42
