"""`modelpilot serve model`: run the model server from the command line.

Flags override the `MODELPILOT_SERVER_*` environment (the container images use the environment;
people use flags). A bad setting is one line naming it, exit 2. Registered on the core CLI's
`serve` group through the entry point `serve.model` of modelpilot-modelserver (`serve router` is
`modelpilot.router.cli`'s).
"""

from __future__ import annotations

from typing import Any

import click

from modelpilot import config
from modelpilot.httpserver import options


@click.command("model")
@click.option(
    "--model-uri", default=None, help="models:/<name>/<version> or models:/<name>@<alias>."
)
@click.option("--tracking-uri", default=None, help="MLflow tracking server.")
@click.option("--deployment", default=None, help="ModelDeployment name (metric label).")
@click.option("--variant", default=None, help="Variant name (metric label).")
@options.listen(admin_paths="/drift/window and /metrics")
def model(**values: Any) -> None:
    """Serve one registered model: OIP v2, /predict, /drift/window, /metrics."""
    from modelpilot.modelserver import __main__ as entry
    from modelpilot.modelserver import settings

    entry.run(config.load(settings.ServerSettings, values, flags=True))
