"""`python -m modelpilot.router`: run the router under uvicorn, settings from the environment."""

from __future__ import annotations

from modelpilot.httpserver import launch
from modelpilot.router import app, headlimit, settings

PROG = "modelpilot-router"


def main() -> None:
    run(launch.settings_from_env(settings.RouterSettings, prog=PROG))


def run(config: settings.RouterSettings) -> None:
    launch.serve(
        app.create_asgi,
        config,
        prog=PROG,
        http=headlimit.protocol(
            config.max_header_bytes, setting="MODELPILOT_ROUTER_MAX_HEADER_BYTES"
        ),
    )


if __name__ == "__main__":
    main()
