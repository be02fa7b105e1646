"""`python -m modelpilot.modelserver`: run the model server under uvicorn, settings from the env."""

from __future__ import annotations

from modelpilot.httpserver import launch
from modelpilot.modelserver import app, settings

PROG = "modelpilot-model-server"


def main() -> None:
    run(launch.settings_from_env(settings.ServerSettings, prog=PROG))


def run(config: settings.ServerSettings) -> None:
    launch.serve(app.create_asgi, config, prog=PROG)


if __name__ == "__main__":
    main()
