"""Start a data-plane server process: settings from the environment, the app, then uvicorn.

Shared by `python -m modelpilot.modelserver` and `python -m modelpilot.router` (and so by
`modelpilot serve`, which calls their `run`). A bad setting or input ends the process with one
line naming it and exit code 2, as the CLI does. Kept free of the data plane (and so of MLflow),
as `asgi` is, so the router can import it.

Each server listens twice (issue 15): the inference port, whose app runs the lifespan, and the
admin port (`/stats`, `/drift/window`, `/metrics`), a second uvicorn server on the same event loop
over the same state. Both sockets are bound before either serves, so a taken port fails the start
and the admin port answers as soon as the inference port does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from typing import Literal, NoReturn, Protocol, TypeVar

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
    def admin_port(self) -> int: ...

    @property
    def log_level(self) -> str: ...

    @property
    def keep_alive_seconds(self) -> float: ...


@dataclass(frozen=True)
class Apps:
    """What one server process serves: the inference port's app (which runs the lifespan) and
    the admin port's (which shares its state and has no lifespan of its own)."""

    serving: ASGIApp
    admin: ASGIApp
    # Given the inference port's requests in flight (uvicorn's `server_state.tasks`, one task
    # per request read and not yet answered) before it serves: the model server's batcher.
    track: Callable[[Sized], None] | None = None


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
    create_apps: Callable[[ConfigT], Apps],
    config: ConfigT,
    *,
    prog: str,
    http: type[asyncio.Protocol] | str = "auto",
) -> None:
    """Build the apps from `config` and serve them under uvicorn, the inference port and the admin
    port, until the process is stopped; `http` is uvicorn's HTTP protocol (a class, e.g. the
    router's bounded-head one) on both ports."""
    try:
        apps = create_apps(config)
    except errors.InputError as exc:
        fail(prog, str(exc))

    def server_config(app: ASGIApp, port: int, lifespan: Literal["auto", "off"]) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=config.host,
            port=port,
            lifespan=lifespan,
            log_level=config.log_level,
            access_log=False,
            timeout_keep_alive=int(config.keep_alive_seconds),
            http=http,  # a name, or a protocol class (uvicorn takes both)
        )

    serving_config = server_config(apps.serving, config.port, "auto")
    admin_config = server_config(apps.admin, config.admin_port, "off")
    try:
        serving_socket = serving_config.bind_socket()
        admin_socket = admin_config.bind_socket()
    except SystemExit:  # uvicorn logs the address in use and exits 1; say which setting
        fail(prog, f"cannot listen on port {config.port} and admin port {config.admin_port}")
    serving = uvicorn.Server(serving_config)
    if apps.track is not None:
        apps.track(serving.server_state.tasks)
    admin = _AdminServer(admin_config)
    # uvicorn's own loop choice (uvloop when installed), as `uvicorn.run` makes it; older uvicorn
    # (< 0.36) sets the loop policy instead of returning a factory.
    loop_factory = getattr(serving_config, "get_loop_factory", None)
    if loop_factory is None:
        serving_config.setup_event_loop()
    with asyncio.Runner(loop_factory=loop_factory() if loop_factory else None) as runner:
        runner.run(_serve_both(serving, serving_socket, admin, admin_socket))
    if not serving.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as `uvicorn.run` ends


class _AdminServer(uvicorn.Server):
    """The admin port's server: the inference port's server owns the signals and stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_both(
    serving: uvicorn.Server,
    serving_socket: socket.socket,
    admin: uvicorn.Server,
    admin_socket: socket.socket,
) -> None:
    admin_task = asyncio.create_task(admin.serve(sockets=[admin_socket]))
    # An admin listener that ends on its own ends the process too (not a half-served pod).
    admin_task.add_done_callback(lambda _: setattr(serving, "should_exit", True))
    try:
        await serving.serve(sockets=[serving_socket])
    finally:
        admin.should_exit = True
        await admin_task
