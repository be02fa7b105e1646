"""From the operator's objects to local processes: argv, env and routes, on the real builders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from modelpilot.demo import manifests, wiring
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import workloads

REPO = Path(__file__).resolve().parents[2]


def _md() -> dict[str, object]:
    md = manifests.build_model_deployment(
        name="demo",
        namespace="default",
        model="clf",
        version="3",
        tracking_uri="http://mlflow.example:5000",
    )
    md["metadata"]["uid"] = "1234"  # type: ignore[index]
    return md


def test_the_operator_s_model_server_deployment_becomes_the_model_server_module_with_its_env() -> (
    None
):
    dep = workloads.build_model_server_deployment(
        _md(),
        variant="stable",
        model={"name": "clf", "version": "3"},
        replicas=1,
        settings=settings_mod.OperatorSettings(),
    )
    proc = wiring.build_local_process(
        dep, overrides={"MODELPILOT_SERVER_PORT": "4321"}, python="/py"
    )
    assert proc.argv == ("/py", "-m", "modelpilot.modelserver")
    assert proc.component == "model-server"
    assert proc.variant == "stable"
    assert proc.env["MODELPILOT_SERVER_MODEL_URI"] == "models:/clf/3"
    assert proc.env["MODELPILOT_SERVER_PORT"] == "4321"


def test_the_router_reads_a_routes_file_instead_of_the_configmap() -> None:
    dep = workloads.build_router_deployment(_md(), settings=settings_mod.OperatorSettings())
    proc = wiring.build_local_process(
        dep,
        overrides={"MODELPILOT_ROUTER_ROUTES_FILE": "/tmp/r.json"},
        drop=("MODELPILOT_ROUTER_CONFIGMAP",),
        python="/py",
    )
    assert proc.argv == ("/py", "-m", "modelpilot.router")
    assert "MODELPILOT_ROUTER_CONFIGMAP" not in proc.env
    assert proc.env["MODELPILOT_ROUTER_ROUTES_FILE"] == "/tmp/r.json"


def test_a_new_model_version_in_the_template_changes_the_fingerprint() -> None:
    settings = settings_mod.OperatorSettings()
    v3, v4 = (
        workloads.build_model_server_deployment(
            _md(),
            variant="stable",
            model={"name": "clf", "version": v},
            replicas=1,
            settings=settings,
        )
        for v in ("3", "4")
    )
    assert wiring.fingerprint(v3) != wiring.fingerprint(v4)
    assert wiring.fingerprint(v3) == wiring.fingerprint(json.loads(json.dumps(v3)))


def test_the_image_entrypoints_the_demo_assumes_are_the_dockerfile_s() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for target, entrypoint in wiring.IMAGE_ENTRYPOINTS.items():
        block = re.search(rf"AS {re.escape(target)}\n(?:.*\n)*?ENTRYPOINT (\[.*\])", dockerfile)
        assert block is not None, f"no {target} stage in the Dockerfile"
        assert tuple(json.loads(block.group(1))) == entrypoint


def test_a_command_in_the_container_wins_over_the_entrypoint_and_maps_modelpilot() -> None:
    container = {
        "name": "x",
        "command": ["modelpilot", "drift", "run"],
        "args": ["--deployment", "d"],
    }
    argv = wiring.build_argv(container, entrypoint=("python", "-m", "other"), python="/py")
    assert argv == ("/py", "-m", "modelpilot.cli.main", "drift", "run", "--deployment", "d")


def test_a_container_with_no_command_and_no_known_entrypoint_is_an_error_naming_it() -> None:
    with pytest.raises(wiring.WiringError, match="container x: no command"):
        wiring.build_argv({"name": "x"})


def test_downward_api_fields_are_filled_and_unknown_sources_skipped() -> None:
    container = {
        "env": [
            {"name": "A", "value": "1"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ]
    }
    env = wiring.build_env(container, pod_name="p-local", namespace="ns")
    assert env == {"A": "1", "POD": "p-local", "NS": "ns"}


def test_routes_keep_everything_but_the_urls_and_drop_variants_not_running_yet() -> None:
    routes = {
        "deployment": "demo",
        "stable": "stable",
        "policy": {"type": "thompson", "epsilon": 0.1, "stickyHeader": None},
        "variants": [
            {
                "name": "stable",
                "url": "http://demo-stable.default.svc:80",
                "weight": 80,
                "modelVersion": "3",
                "posterior": {"alpha": 3.0, "beta": 2.0},
            },
            {
                "name": "challenger",
                "url": "http://demo-challenger.default.svc:80",
                "weight": 20,
                "modelVersion": "4",
                "posterior": {"alpha": 1.0, "beta": 1.0},
            },
        ],
    }
    cm = {"metadata": {"name": "demo-routes"}, "data": {"routes.json": json.dumps(routes)}}
    local = wiring.build_local_routes(wiring.parse_routes(cm), {"stable": "http://127.0.0.1:5"})
    assert local["policy"] == routes["policy"]
    assert local["variants"] == [{**routes["variants"][0], "url": "http://127.0.0.1:5"}]


def test_a_configmap_without_routes_json_is_an_error_naming_the_key() -> None:
    with pytest.raises(wiring.WiringError, match=r"configmap r: data.routes.json is missing"):
        wiring.parse_routes({"metadata": {"name": "r"}, "data": {}})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("srv", "--port", "80", "--x"), ("srv", "--port", "9", "--x")),
        (("srv", "--port=80"), ("srv", "--port=9")),
        (("srv", "--other", "80"), ("srv", "--other", "80")),
    ],
)
def test_listening_flags_are_moved_to_the_local_port(
    argv: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert wiring.override_flags(argv, {"--port": "9"}) == expected


@pytest.mark.parametrize("kind", ["ModelDeployment", "Experiment"])
def test_the_demo_s_resources_validate_against_the_crd_schemas(kind: str) -> None:
    crd_file = REPO / "manifests" / "crds" / f"{kind.lower()}s.modelpilot.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    doc = (
        _md()
        if kind == "ModelDeployment"
        else manifests.build_experiment(
            name="e", namespace="default", deployment="demo", model="clf", challenger_version="4"
        )
    )
    # OpenAPI v3.0 schemas use draft-4 keywords (boolean exclusiveMaximum).
    jsonschema.Draft4Validator(schema).validate({k: v for k, v in doc.items() if k != "metadata"})
