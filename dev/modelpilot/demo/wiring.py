"""From what the operator created to local processes: pure builders of argv, env and routes.

Pods on the local control plane are not real containers (kwok marks them Ready), so the demo reads
the Deployments and the routes ConfigMap the operator wrote and starts, for each, the process its
pod template describes: the same command, the same environment, with the listening address moved
to a free loopback port and cluster DNS names replaced by those ports. The one design decision:
the operator's objects stay the single source of truth. Nothing here decides what runs; it only
translates (a model version change in a Deployment's template gives a new `fingerprint`, and the
demo restarts that process), and the router reads a routes file that is the ConfigMap's
`routes.json` with only the variant URLs rewritten.

Pure: standard library only; the inputs are the JSON objects `kubectl get -o json` returns.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VARIANT_LABEL = "modelpilot.io/variant"
COMPONENT_LABEL = "app.kubernetes.io/component"

# The images' ENTRYPOINTs (the Dockerfile's `model-server` and `router` targets), used when a pod
# template gives no command of its own, as a container runtime would. A test checks the Dockerfile.
IMAGE_ENTRYPOINTS: dict[str, tuple[str, ...]] = {
    "model-server": ("python", "-m", "modelpilot.modelserver"),
    "router": ("python", "-m", "modelpilot.router"),
}


class WiringError(ValueError):
    """An object the operator created does not have the shape the demo needs (names the field)."""


@dataclass(frozen=True)
class LocalProcess:
    """What to start for one Deployment."""

    name: str  # the Deployment's name
    component: str  # model-server | router
    variant: str | None
    argv: tuple[str, ...]
    env: dict[str, str]
    fingerprint: str  # changes when the pod template changes


def _container(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    name = deployment.get("metadata", {}).get("name", "?")
    try:
        containers = deployment["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError) as exc:
        raise WiringError(f"deployment {name}: spec.template.spec.containers is missing") from exc
    if not containers:
        raise WiringError(f"deployment {name}: spec.template.spec.containers is empty")
    first: Mapping[str, Any] = containers[0]
    return first


def build_argv(
    container: Mapping[str, Any],
    *,
    entrypoint: tuple[str, ...] = (),
    python: str = sys.executable,
) -> tuple[str, ...]:
    """The process a container runs, with `modelpilot` and `python` mapped to this interpreter.

    As a container runtime does: `command` replaces the image's `entrypoint`, `args` follow. The
    image's entrypoints are the console script and modules this checkout installs, so
    `modelpilot X` runs as `<python> -m modelpilot.cli.main X` and `python -m M` as `<python> -m M`.
    """
    command = [str(w) for w in container.get("command", [])] or list(entrypoint)
    words = [*command, *(str(w) for w in container.get("args", []))]
    if not words:
        raise WiringError(
            f"container {container.get('name', '?')}: no command, and the image's entrypoint is "
            "not known locally"
        )
    program = os.path.basename(words[0])
    if program == "modelpilot":
        return (python, "-m", "modelpilot.cli.main", *words[1:])
    if program.startswith("python"):
        return (python, *words[1:])
    return tuple(words)


def build_env(container: Mapping[str, Any], *, pod_name: str, namespace: str) -> dict[str, str]:
    """The container's literal env, plus the downward-API fields a fake pod can answer."""
    field_values = {
        "metadata.name": pod_name,
        "metadata.namespace": namespace,
        "status.podIP": "127.0.0.1",
        "spec.nodeName": "local",
    }
    env: dict[str, str] = {}
    for item in container.get("env", []):
        name = item.get("name")
        if not name:
            continue
        if "value" in item:
            env[name] = str(item["value"])
            continue
        field_path = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field_path in field_values:
            env[name] = field_values[field_path]
    return env


def fingerprint(deployment: Mapping[str, Any]) -> str:
    """A short hash of the pod template: equal templates, equal processes."""
    template = deployment.get("spec", {}).get("template", {})
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_local_process(
    deployment: Mapping[str, Any],
    *,
    overrides: Mapping[str, str],
    drop: tuple[str, ...] = (),
    python: str = sys.executable,
) -> LocalProcess:
    """The process for one Deployment: its argv, its env with `overrides` applied on top and the
    variables in `drop` removed (e.g. the router's ConfigMap name, so that it reads the file)."""
    meta = deployment.get("metadata", {})
    labels = meta.get("labels", {}) or {}
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", "default"))
    container = _container(deployment)
    component = str(labels.get(COMPONENT_LABEL, ""))
    env = build_env(container, pod_name=f"{name}-local", namespace=namespace)
    env.update(overrides)
    for key in drop:
        env.pop(key, None)
    return LocalProcess(
        name=name,
        component=component,
        variant=labels.get(VARIANT_LABEL),
        argv=build_argv(container, entrypoint=IMAGE_ENTRYPOINTS.get(component, ()), python=python),
        env=env,
        fingerprint=fingerprint(deployment),
    )


def parse_routes(configmap: Mapping[str, Any]) -> dict[str, Any]:
    """The `routes.json` document of the routes ConfigMap."""
    name = configmap.get("metadata", {}).get("name", "?")
    try:
        text = configmap["data"]["routes.json"]
    except (KeyError, TypeError) as exc:
        raise WiringError(f"configmap {name}: data.routes.json is missing") from exc
    try:
        routes: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WiringError(f"configmap {name}: data.routes.json is not JSON ({exc.msg})") from exc
    if not isinstance(routes.get("variants"), list):
        raise WiringError(f"configmap {name}: routes.json has no variants list")
    return routes


def build_local_routes(routes: Mapping[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    """`routes` with each variant's URL replaced by its local process's URL.

    Variants with no local process yet are left out, so the router never forwards to a cluster DNS
    name that does not resolve here; the demo rewrites the file as soon as their process is up.
    """
    variants = [
        {**v, "url": urls[v["name"]]} for v in routes.get("variants", []) if v.get("name") in urls
    ]
    return {**routes, "variants": variants}


def override_flags(argv: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    """Replace the value of each `--flag value` or `--flag=value` in `argv` named in `values`."""
    out: list[str] = []
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        flag, eq, _ = word.partition("=")
        if flag in values and eq:
            out.append(f"{flag}={values[flag]}")
        elif word in values and i + 1 < len(argv):
            out += [word, values[word]]
            skip = True
        else:
            out.append(word)
    return tuple(out)
