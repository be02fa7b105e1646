"""The Dockerfile, checked without Docker (there is no engine on the machines this is developed on;
`make images` and the kind tier build and run it where there is): every target's entrypoint is a
command or module the package really has, the runtime runs as a numeric non-root user, the image
names match the operator's default images and the chart's values, and .dockerignore keeps the build
context to what the Dockerfile copies.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from modelpilot.cli import main as cli_main
from modelpilot.operator import settings as operator_settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
TARGETS = ("modelpilot", "operator", "model-server", "router", "drift")


def _stages() -> dict[str, list[str]]:
    """Stage name -> its instruction lines (continuations joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    logical = DOCKERFILE.replace("\\\n", " ").splitlines()
    for line in logical:
        stripped = line.strip()
        if stripped.upper().startswith("FROM "):
            parts = stripped.split()
            name = parts[3] if len(parts) >= 4 and parts[2].upper() == "AS" else parts[1]
            current = stages.setdefault(name, [])
        elif stripped and not stripped.startswith("#"):
            current.append(stripped)
    return stages


def _entrypoint(stage: str) -> list[str]:
    lines = [line for line in _stages()[stage] if line.upper().startswith("ENTRYPOINT ")]
    assert len(lines) == 1, f"stage {stage} should set one ENTRYPOINT"
    argv: list[str] = json.loads(lines[0].split(" ", 1)[1])
    return argv


def test_dockerfile_has_every_target_and_the_general_image_is_the_default() -> None:
    stages = list(_stages())
    assert set(TARGETS) <= set(stages)
    assert stages[-1] == "modelpilot", "the last stage is what `docker build .` builds"


def test_every_entrypoint_runs_from_the_installed_package() -> None:
    for target in TARGETS:
        argv = _entrypoint(target)
        if argv[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(f"{argv[2]}.__main__") is not None, target
            continue
        assert argv[0] == "modelpilot", target
        if len(argv) > 1:
            assert argv[1] in cli_main.COMMANDS, target
        # The console script itself answers --help for that command (exit 0, no traceback).
        proc = subprocess.run(
            [sys.executable, "-m", "modelpilot.cli.main", *argv[1:], "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, f"{target}: {shlex.join(argv)} --help: {proc.stderr}"


def test_runtime_runs_as_a_numeric_non_root_user_with_a_writable_tmp_only() -> None:
    runtime = _stages()["runtime"]
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users == ["10001:10001"]
    env = " ".join(line for line in runtime if line.upper().startswith("ENV "))
    assert "HOME=/tmp" in env  # the chart mounts /tmp as an emptyDir under a read-only root
    assert not any(line.upper().startswith(("RUN ", "COPY ")) for line in _stages()["operator"])


def test_image_names_match_the_operator_defaults_and_the_chart_values() -> None:
    defaults = operator_settings.OperatorSettings()
    values = yaml.safe_load((REPO / "charts" / "modelpilot" / "values.yaml").read_text())
    chart_version = yaml.safe_load((REPO / "charts" / "modelpilot" / "Chart.yaml").read_text())
    tag = chart_version["appVersion"]
    expected = {
        "modelServer": f"ghcr.io/modelpilot/model-server:{tag}",
        "router": f"ghcr.io/modelpilot/router:{tag}",
        "drift": f"ghcr.io/modelpilot/drift:{tag}",
    }
    assert defaults.model_server_image == expected["modelServer"]
    assert defaults.router_image == expected["router"]
    assert defaults.drift_image == expected["drift"]
    images = values["operator"]["workloadImages"]
    assert {k: images[k] for k in expected} == expected
    assert values["operator"]["image"]["repository"] == "ghcr.io/modelpilot/operator"
    assert values["mlflow"]["image"]["repository"] == "ghcr.io/modelpilot/modelpilot"


def test_dockerignore_keeps_the_context_to_what_the_dockerfile_copies() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = {
        part.rstrip("/").removeprefix("./")
        for line in DOCKERFILE.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    }
    assert copied == {"pyproject.toml", "README.md", "src", "operator", "services"}
    assert not copied & ignored
    assert {".git", ".venv", "tests", "charts"} <= ignored


def test_the_wheel_the_image_installs_carries_every_entrypoint(tmp_path: Path) -> None:
    # The build stage runs `pip install --no-deps .`: build that same wheel and look inside it.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("modelpilot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "modelpilot = modelpilot.cli.main:main" in archive.read(entry_points).decode()
    for target in TARGETS:
        argv = _entrypoint(target)
        if argv[:2] == ["python", "-m"]:
            assert argv[2].replace(".", "/") + "/__main__.py" in names, target
        elif len(argv) > 1:
            module = cli_main.COMMANDS[argv[1]][0]
            assert module.replace(".", "/") + ".py" in names, target
    # One namespace package, no top-level `operator` to shadow the standard library's.
    assert {n.split("/")[0] for n in names if not n.startswith("modelpilot-")} == {"modelpilot"}
    assert "modelpilot/__init__.py" not in names
