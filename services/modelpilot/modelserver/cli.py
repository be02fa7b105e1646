"""`modelpilot serve model|router`: run the model server or the router from the command line.

Flags override the `MODELPILOT_SERVER_*` / `MODELPILOT_ROUTER_*` environment (the container images
use the environment; people use flags). A bad setting is one line naming it, exit 2.
"""

from __future__ import annotations

from typing import Any

import click

from modelpilot import config


@click.group("serve")
def serve() -> None:
    """Run the data plane locally: a model server or a router."""


@serve.command("model")
@click.option(
    "--model-uri", default=None, help="models:/<name>/<version> or models:/<name>@<alias>."
)
@click.option("--tracking-uri", default=None, help="MLflow tracking server.")
@click.option("--deployment", default=None, help="ModelDeployment name (metric label).")
@click.option("--variant", default=None, help="Variant name (metric label).")
@click.option("--host", default=None, help="Address to listen on.")
@click.option("--port", type=int, default=None, help="Port to listen on.")
def model(**values: Any) -> None:
    """Serve one registered model: OIP v2, /predict, /drift/window, /metrics."""
    from modelpilot.modelserver import __main__ as entry
    from modelpilot.modelserver import settings

    entry.run(config.load(settings.ServerSettings, values, flags=True))


@serve.command("router")
@click.option("--routes-file", default=None, help="A routes.json file, re-read on change.")
@click.option("--namespace", default=None, help="Namespace of the routes ConfigMap.")
@click.option("--configmap", default=None, help="Routes ConfigMap name (watched).")
@click.option("--deployment", default=None, help="ModelDeployment name (metric label).")
@click.option("--host", default=None, help="Address to listen on.")
@click.option("--port", type=int, default=None, help="Port to listen on.")
def router(**values: Any) -> None:
    """Run the router in front of the variants named in the routes."""
    from modelpilot.router import __main__ as entry
    from modelpilot.router import settings

    entry.run(config.load(settings.RouterSettings, values, flags=True))
