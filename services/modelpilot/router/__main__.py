"""`python -m modelpilot.router`: run the router under uvicorn, settings from the environment."""

from __future__ import annotations

import sys

import pydantic
import uvicorn

from modelpilot import errors
from modelpilot.router import app, settings


def main() -> None:
    try:
        config = settings.RouterSettings()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        print(
            f"modelpilot-router: error: MODELPILOT_ROUTER_{field.upper()}: {first['msg']}",
            file=sys.stderr,
        )
        sys.exit(2)
    run(config)


def run(config: settings.RouterSettings) -> None:
    try:
        application = app.create_asgi(config)
    except errors.InputError as exc:
        print(f"modelpilot-router: error: {exc}", file=sys.stderr)
        sys.exit(2)
    uvicorn.run(
        application,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        timeout_keep_alive=int(config.keep_alive_seconds),
    )


if __name__ == "__main__":
    main()
