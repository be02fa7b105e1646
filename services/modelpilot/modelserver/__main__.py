"""`python -m modelpilot.modelserver`: run the model server under uvicorn, settings from the env."""

from __future__ import annotations

import sys

import pydantic
import uvicorn

from modelpilot.modelserver import app, settings


def main() -> None:
    try:
        config = settings.ServerSettings()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        print(
            f"modelpilot-model-server: error: MODELPILOT_SERVER_{field.upper()}: {first['msg']}",
            file=sys.stderr,
        )
        sys.exit(2)
    run(config)


def run(config: settings.ServerSettings) -> None:
    from modelpilot import errors

    try:
        application = app.create_app(config)
    except errors.InputError as exc:
        print(f"modelpilot-model-server: error: {exc}", file=sys.stderr)
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
