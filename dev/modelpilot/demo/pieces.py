"""Which parts of the platform are in this checkout: the demo's honest "pending" list.

The demo strings together the work of several issues. When a part is missing, the step that needs
it is reported as pending with the issue that brings it, instead of being faked. The one design
decision: presence is checked by what the demo will actually call (a module that can be imported, a
command the CLI resolves, a manifest folder with files), never by a version number.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import click

from modelpilot.cli import main as cli_main


@dataclass(frozen=True)
class Piece:
    key: str
    what: str
    issue: int


PIECES: dict[str, Piece] = {
    "controlplane": Piece(
        "controlplane", "the local control plane harness (modelpilot.testing.controlplane)", 3
    ),
    "crds": Piece("crds", "the CRD manifests (manifests/crds/*.yaml)", 4),
    "rbac": Piece("rbac", "the operator's RBAC manifests (manifests/rbac/*.yaml)", 4),
    "operator": Piece("operator", "the operator command (`modelpilot operator run`)", 4),
    "register": Piece(
        "register", "registration with a reference profile (`modelpilot models register`)", 5
    ),
    "modelserver": Piece("modelserver", "the model server (modelpilot.modelserver)", 5),
    "router": Piece("router", "the router (modelpilot.router)", 5),
    "experiment": Piece(
        "experiment", "the Experiment controller (modelpilot.operator.experiment)", 6
    ),
    "driftrun": Piece("driftrun", "the drift job (`modelpilot drift run`)", 5),
}


def _module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _subcommand(group: str, name: str) -> bool:
    """Is `modelpilot GROUP NAME` registered? Asked of the CLI itself, so the commands other
    distributions add as entry points count (imports the group's module, not its work)."""
    try:
        command = cli_main.cli.get_command(click.Context(cli_main.cli), group)
    except (ImportError, AttributeError):
        return False
    return isinstance(command, click.Group) and name in command.commands


def _yaml_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.yaml"))


def present(key: str, repo: Path) -> bool:
    """Is the piece `key` in this checkout?"""
    if key == "controlplane":
        return _module("modelpilot.testing.controlplane")
    if key == "crds":
        return _yaml_files(repo / "manifests" / "crds")
    if key == "rbac":
        return _yaml_files(repo / "manifests" / "rbac")
    if key == "operator":
        return _subcommand("operator", "run")
    if key == "register":
        return _subcommand("models", "register")
    if key == "modelserver":
        return _module("modelpilot.modelserver.app")
    if key == "router":
        return _module("modelpilot.router.app")
    if key == "experiment":
        return _module("modelpilot.operator.experiment")
    if key == "driftrun":
        return _subcommand("drift", "run")
    raise KeyError(key)


def missing(keys: list[str], repo: Path) -> list[Piece]:
    return [PIECES[k] for k in keys if not present(k, repo)]


def pending_reason(pieces: list[Piece]) -> str:
    return "pending: " + "; ".join(f"{p.what} (issue {p.issue}) is not in the tree" for p in pieces)
