"""The operator's and the services' commands reach the `modelpilot` CLI as entry points of their own
distributions (issue 14, item 5): the core imports neither, and a command whose distribution is
absent says which one to install."""

from __future__ import annotations

import importlib.metadata

import pytest

from modelpilot.cli import main as cli_main
from tests.cli.conftest import run


def test_each_plugin_command_is_an_entry_point_of_the_distribution_that_owns_its_code() -> None:
    owners = {
        e.name: (e.dist.name if e.dist else None, e.module)
        for e in importlib.metadata.entry_points(group=cli_main.PLUGINS)
    }

    assert owners == {
        "operator.run": ("modelpilot-operator", "modelpilot.operator.cli"),
        "serve.model": ("modelpilot-services", "modelpilot.modelserver.cli"),
        "serve.router": ("modelpilot-services", "modelpilot.router.cli"),
        "drift.run": ("modelpilot-services", "modelpilot.driftjob.cli"),
    }


@pytest.mark.parametrize(
    ("group", "commands"),
    [("operator", ["run"]), ("serve", ["model", "router"]), ("drift", ["compute", "run"])],
)
def test_the_groups_list_the_commands_of_the_installed_distributions(
    group: str, commands: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([group, "--help"], capsys)

    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == commands


def test_a_group_whose_distribution_is_absent_names_the_distribution_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No entry points, as where modelpilot-operator is not installed (the router's image shows it
    # for real: tests/delivery/test_image.py).
    monkeypatch.setattr(cli_main, "_plugins", lambda group: [])

    code, _, err = run(["operator", "run", "--namespace", "x"], capsys)

    assert code == 2
    assert "modelpilot-operator" in err
    assert "pip install modelpilot-operator" in err
