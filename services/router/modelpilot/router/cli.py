"""`modelpilot serve router`: run the router from the command line.

Flags override the `MODELPILOT_ROUTER_*` environment (the container images use the environment;
people use flags). A bad setting is one line naming it, exit 2. Registered on the core CLI's
`serve` group through the entry point `serve.router` of modelpilot-router.
"""

from __future__ import annotations

from typing import Any

import click

from modelpilot import config
from modelpilot.httpserver import options


@click.command("router")
@click.option("--routes-file", default=None, help="A routes.json file, re-read on change.")
@click.option("--namespace", default=None, help="Namespace of the routes ConfigMap.")
@click.option("--configmap", default=None, help="Routes ConfigMap name (watched).")
@click.option("--deployment", default=None, help="ModelDeployment name (metric label).")
@options.listen(admin_paths="/stats, /routes and /metrics")
def router(**values: Any) -> None:
    """Run the router in front of the variants named in the routes."""
    from modelpilot.router import __main__ as entry
    from modelpilot.router import settings

    entry.run(config.load(settings.RouterSettings, values, flags=True))
