"""The `modelpilot` command line.

Each area of the product contributes one click group in its own module under `modelpilot.cli`
(`stats`, `drift`, `bandit`, `models`, ...). Groups are loaded lazily, so `modelpilot stats ...`
does not pay for importing MLflow or kopf. Errors are one line on stderr: exit 2 for bad input
(click usage errors and `InputError`), 75 (EX_TEMPFAIL, sysexits.h) for a dependency that did not
answer (`Unavailable`: try again), 1 for a check that failed, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from modelpilot import errors

# name -> (module, attribute); add one line per command group.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("modelpilot.cli.demo", "demo"),
    "operator": ("modelpilot.cli.operator", "operator"),
    "models": ("modelpilot.cli.models", "models"),
    "sweep": ("modelpilot.cli.sweep", "sweep"),
    "model-card": ("modelpilot.cli.modelcard", "model_card"),
    "validate": ("modelpilot.cli.validate", "validate"),
    "data": ("modelpilot.cli.data", "data"),
    "stats": ("modelpilot.cli.stats", "stats"),
    "drift": ("modelpilot.cli.drift", "drift"),
    "bandit": ("modelpilot.cli.bandit", "bandit"),
    "serve": ("modelpilot.modelserver.cli", "serve"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelpilot")
def cli() -> None:
    """modelpilot: serve MLflow models on Kubernetes, run Thompson-sampling experiments,
    watch drift."""


EXIT_TEMPFAIL = 75
"""sysexits.h EX_TEMPFAIL: a temporary failure; the caller is invited to retry."""


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
    except errors.InputError as exc:
        click.echo(f"modelpilot: error: {exc}", err=True)
        sys.exit(2)
    except errors.Unavailable as exc:
        click.echo(f"modelpilot: error: {exc} (temporary; try again)", err=True)
        sys.exit(EXIT_TEMPFAIL)
    except errors.CheckFailed as exc:
        click.echo(f"modelpilot: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
