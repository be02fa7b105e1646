"""The command-line options both servers take: where they listen.

`modelpilot serve router` and `modelpilot serve model` (each service's `cli.py`) listen on an
address, an inference port and an admin port, as the `launch.ListenSettings` of their settings
say; a flag left out falls back to the environment (`config.load(..., flags=True)`). Design
decision: only click here, no uvicorn or FastAPI, since the CLI imports the commands (and so this
module) to list them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

CommandT = TypeVar("CommandT", bound=Callable[..., Any])


def listen(*, admin_paths: str) -> Callable[[CommandT], CommandT]:
    """`--host`, `--port` and `--admin-port` (the port of `admin_paths`), in that order."""
    options = (
        click.option("--host", default=None, help="Address to listen on."),
        click.option("--port", type=int, default=None, help="Port to listen on."),
        click.option(
            "--admin-port",
            type=int,
            default=None,
            help=f"Port of {admin_paths} (not the inference port).",
        ),
    )

    def decorate(command: CommandT) -> CommandT:
        # Applied bottom-up, as stacked decorators are, so the help lists them top-down.
        for option in reversed(options):
            command = option(command)
        return command

    return decorate
