"""The operator's and each service's commands reach the `modelpilot` CLI as entry points of their
own distributions (issue 14, item 5): the core imports none of them, and a command whose
distribution is absent says which one to install."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

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
        "serve.model": ("modelpilot-modelserver", "modelpilot.modelserver.cli"),
        "serve.router": ("modelpilot-router", "modelpilot.router.cli"),
        "drift.run": ("modelpilot-driftjob", "modelpilot.driftjob.cli"),
    }
    # The core's map of what to install for a missing command names the same distributions.
    assert {name: dist for name, (dist, _) in owners.items()} == cli_main.PLUGIN_COMMANDS


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


def test_in_an_image_with_one_service_the_other_services_command_names_its_distribution(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in the router's image: modelpilot-router installed, modelpilot-modelserver not.
    installed = cli_main._plugins
    monkeypatch.setattr(
        cli_main, "_plugins", lambda group: [e for e in installed(group) if e.name != "serve.model"]
    )

    code, out, _ = run(["serve", "--help"], capsys)
    assert code == 0
    assert "(not installed: modelpilot-modelserver)" in out

    code, _, err = run(["serve", "model", "--model-uri", "models:/iris/1"], capsys)
    assert code == 2
    assert "pip install modelpilot-modelserver" in err

    code, out, _ = run(["serve", "router", "--help"], capsys)
    assert code == 0
    assert "--routes-file" in out


def test_a_core_command_whose_dependency_is_absent_names_it_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real import failure, as `modelpilot drift` meets in the router's image (no pandas, no
    # scipy: tests/delivery/test_image.py shows it there): a command module importing a package
    # that is not installed.
    (tmp_path / "mp_absent_dependency_cmd.py").write_text(
        "import click\nimport mp_package_not_installed_anywhere\ndrift = click.Group('drift')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli_main.COMMANDS, "drift", ("mp_absent_dependency_cmd", "drift"))

    code, _, err = run(["drift", "run", "--deployment", "iris"], capsys)

    assert code == 2
    assert "needs mp_package_not_installed_anywhere" in err
    assert "pip install 'modelpilot[cli]'" in err
    assert "pip install modelpilot-driftjob" in err  # `drift run` is the drift job's
    assert "Traceback" not in err
