"""`modelpilot operator run`: start the kopf operator with its typed settings.

Design decision: every knob is a `MODELPILOT_OPERATOR_*` environment variable (the chart sets them);
the few flags here only override them for a person running the operator by hand. Invalid settings
are one line on stderr (exit 2), never a pydantic traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from modelpilot import config


@click.group(name="operator")
def operator() -> None:
    """The Kubernetes operator (ModelDeployment and Experiment controllers)."""


@operator.command(name="run")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch only these namespaces.")
@click.option("--resync-seconds", type=float, help="Re-resolve aliases and re-apply this often.")
@click.option("--tracking-uri", help="Default MLflow tracking URI.")
@click.option("--health-port", type=int, help="Port of /healthz (0 disables).")
@click.option("--metrics-port", type=int, help="Port of /metrics (0 disables).")
def run(**options: Any) -> None:
    """Run the operator in the foreground (uses $KUBECONFIG or the in-cluster account)."""
    settings_mod: Any = importlib.import_module("modelpilot.operator.settings")
    main_mod: Any = importlib.import_module("modelpilot.operator.main")
    overrides = {
        "namespaces": list(options["namespaces"]) or None,
        "resync_seconds": options["resync_seconds"],
        "mlflow_tracking_uri": options["tracking_uri"],
        "health_port": options["health_port"],
        "metrics_port": options["metrics_port"],
    }
    main_mod.run(config.load(settings_mod.OperatorSettings, overrides, flags=True))
