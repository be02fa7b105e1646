"""Start a data-plane server process: settings from the environment, the app, then uvicorn.

Shared by `python -m modelpilot.modelserver` and `python -m modelpilot.router` (and so by
`modelpilot serve`, which calls their `run`). A bad setting or input ends the process with one
line naming it and exit code 2, as the CLI does. Kept free of the data plane (and so of MLflow),
as `asgi` is, so the router can import it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import NoReturn, Protocol, TypeVar

import pydantic_settings
import uvicorn
from starlette.types import ASGIApp

from modelpilot import config, errors


class ListenSettings(Protocol):
    """What uvicorn is given from a server's settings."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def log_level(self) -> str: ...

    @property
    def keep_alive_seconds(self) -> float: ...


SettingsT = TypeVar("SettingsT", bound=pydantic_settings.BaseSettings)
ConfigT = TypeVar("ConfigT", bound=ListenSettings)


def fail(prog: str, message: str) -> NoReturn:
    """`prog: error: message` on stderr, exit 2 (bad input)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def settings_from_env(cls: type[SettingsT], *, prog: str) -> SettingsT:
    """`cls()` read from the environment; an invalid value names its variable (`PREFIX_FIELD`)."""
    try:
        return config.load(cls)
    except errors.InputError as exc:
        fail(prog, str(exc))


def serve(
    create_app: Callable[[ConfigT], ASGIApp],
    config: ConfigT,
    *,
    prog: str,
    http: type[asyncio.Protocol] | str = "auto",
) -> None:
    """Build the ASGI app from `config` and run it under uvicorn until the process is stopped;
    `http` is uvicorn's HTTP protocol (a class, e.g. the router's bounded-head one)."""
    try:
        application = create_app(config)
    except errors.InputError as exc:
        fail(prog, str(exc))
    uvicorn.run(
        application,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        timeout_keep_alive=int(config.keep_alive_seconds),
        http=http,  # a name, or a protocol class (uvicorn takes both)
    )
