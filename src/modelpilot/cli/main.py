"""The `modelpilot` command line.

Each area of the product contributes one click group in its own module under `modelpilot.cli`
(`stats`, `drift`, `bandit`, `models`, ...). Groups are loaded lazily, so `modelpilot stats ...`
does not pay for importing MLflow or kopf. Errors are one line on stderr: exit 2 for bad input
(click usage errors and `InputError`), 75 (EX_TEMPFAIL, sysexits.h) for a dependency that did not
answer (`Unavailable`: try again), 1 for a check that failed, never a traceback.

The other distributions add their commands through entry points (group `modelpilot.cli`, names
`<group>.<command>`), as pytest and MLServer find their plug-ins: modelpilot-operator adds
`operator run`, modelpilot-modelserver `serve model`, modelpilot-router `serve router` and
modelpilot-driftjob `drift run` (one distribution per service, so an image holds one of them).
So this package never imports the operator or a service (import-linter's independence
contract), and a command whose distribution is not installed says which one to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from typing import Any

import click

from modelpilot import errors

# name -> (module, attribute); add one line per command group.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("modelpilot.cli.demo", "demo"),
    "models": ("modelpilot.cli.models", "models"),
    "sweep": ("modelpilot.cli.sweep", "sweep"),
    "model-card": ("modelpilot.cli.modelcard", "model_card"),
    "validate": ("modelpilot.cli.validate", "validate"),
    "data": ("modelpilot.cli.data", "data"),
    "stats": ("modelpilot.cli.stats", "stats"),
    "drift": ("modelpilot.cli.drift", "drift"),
    "bandit": ("modelpilot.cli.bandit", "bandit"),
}

PLUGINS = "modelpilot.cli"
"""The entry-point group of the commands other distributions add (`<group>.<command>`)."""

PLUGIN_GROUPS: dict[str, str] = {
    "operator": "The Kubernetes operator (ModelDeployment and Experiment controllers).",
    "serve": "Run the data plane locally: a model server or a router.",
}
"""Groups made only of plug-in commands: name -> help."""

PLUGIN_COMMANDS: dict[str, str] = {
    "operator.run": "modelpilot-operator",
    "serve.model": "modelpilot-modelserver",
    "serve.router": "modelpilot-router",
    "drift.run": "modelpilot-driftjob",
}
"""The plug-in commands known to the core -> the distribution that provides each: where it is not
installed (the router's image has no `serve model`), the command says what to install."""


def _plugins(group: str) -> list[importlib.metadata.EntryPoint]:
    return sorted(
        (
            e
            for e in importlib.metadata.entry_points(group=PLUGINS)
            if e.name.split(".")[0] == group
        ),
        key=lambda e: e.name,
    )


def _not_installed(name: str, distribution: str) -> click.Command:
    """A stand-in for a command whose distribution is absent: any use says what to install."""

    def fail() -> None:
        raise errors.InputError(
            f"`modelpilot {name}` comes with the distribution {distribution}, which is not "
            f"installed here: pip install {distribution} (`make venv` installs it in a checkout)"
        )

    return click.Command(
        name.split()[-1],
        callback=fail,
        help=f"Not installed here: pip install {distribution}.",
        short_help=f"(not installed: {distribution})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


def _missing_dependency(group: str, package: str) -> click.Command:
    """A stand-in for a core command whose optional dependencies are absent (an image holds the
    core without its `cli` extra: `modelpilot drift` in the router's image has no pandas or
    scipy): one line naming the package and what to install, never a traceback."""
    plugins = [
        f"`modelpilot {name.replace('.', ' ')}`: pip install {distribution}"
        for name, distribution in PLUGIN_COMMANDS.items()
        if name.split(".")[0] == group
    ]

    def fail() -> None:
        also = f" (for {'; '.join(plugins)})" if plugins else ""
        raise errors.InputError(
            f"`modelpilot {group}` needs {package}, which is not installed here: "
            f"pip install 'modelpilot[cli]'{also}"
        )

    return click.Command(
        group,
        callback=fail,
        help=f"Not installed here: needs {package} (pip install 'modelpilot[cli]').",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *PLUGIN_GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        plugins = _plugins(cmd_name)
        command: click.Command
        if cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name]
            try:
                command = getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as exc:
                if (exc.name or "modelpilot").split(".")[0] == "modelpilot":
                    raise
                return _missing_dependency(cmd_name, exc.name or "")
        elif cmd_name in PLUGIN_GROUPS:
            command = click.Group(cmd_name, help=PLUGIN_GROUPS[cmd_name])
        else:
            return None
        if isinstance(command, click.Group):
            for entry in plugins:
                command.add_command(entry.load(), entry.name.split(".", 1)[1])
            for name, distribution in PLUGIN_COMMANDS.items():
                group, sub = name.split(".", 1)
                if group == cmd_name and sub not in command.commands:
                    command.add_command(_not_installed(f"{group} {sub}", distribution))
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelpilot")
def cli() -> None:
    """modelpilot: serve MLflow models on Kubernetes, run Thompson-sampling experiments,
    watch drift."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="modelpilot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("modelpilot: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # Usage errors: one line naming the option, exit 2 (the POSIX convention click follows).
        click.echo(f"modelpilot: error: {exc.format_message()}", err=True)
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except errors.ModelpilotError as exc:
        # One translation of the one classification (`errors.kind_of`): the line and the status.
        kind = errors.kind_of(exc)
        if kind == "check":
            click.echo(f"modelpilot: {exc}", err=True)
        elif kind == "transient":
            click.echo(f"modelpilot: error: {exc} (temporary; try again)", err=True)
        else:
            click.echo(f"modelpilot: error: {exc}", err=True)
        sys.exit(errors.exit_code(exc))


if __name__ == "__main__":
    main()
