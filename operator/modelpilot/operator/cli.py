"""`modelpilot operator run`: start the kopf operator with its typed settings.

Registered on the core CLI's `operator` group through the entry point `operator.run` of this
distribution (modelpilot-operator), so the core never imports the operator.

Design decision: every knob is a `MODELPILOT_OPERATOR_*` environment variable (the chart sets them);
the few flags here only override them for a person running the operator by hand. Invalid settings
are one line on stderr (exit 2), never a pydantic traceback.
"""

from __future__ import annotations

from typing import Any

import click

from modelpilot import config


@click.command(name="run")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch only these namespaces.")
@click.option("--resync-seconds", type=float, help="Re-resolve aliases and re-apply this often.")
@click.option("--tracking-uri", help="Default MLflow tracking URI.")
@click.option("--health-port", type=int, help="Port of /healthz (0 disables).")
@click.option("--metrics-port", type=int, help="Port of /metrics (0 disables).")
def run(**options: Any) -> None:
    """Run the operator in the foreground (uses $KUBECONFIG or the in-cluster account)."""
    # Here, not at the top: `modelpilot --help` lists this command without importing kopf.
    from modelpilot.operator import main as main_mod
    from modelpilot.operator import settings as settings_mod

    overrides = {
        "namespaces": list(options["namespaces"]) or None,
        "resync_seconds": options["resync_seconds"],
        "mlflow_tracking_uri": options["tracking_uri"],
        "health_port": options["health_port"],
        "metrics_port": options["metrics_port"],
    }
    main_mod.run(config.load(settings_mod.OperatorSettings, overrides, flags=True))
