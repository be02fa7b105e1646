"""`modelpilot drift run`: the drift CronJob's command (registered on the `drift` group).

Translates flags to `job.Options` and prints the summary; exit codes are `job`'s (0 done, drift or
not; 1 could not do the job; 2 bad input). Heavy imports happen inside the command, so `modelpilot
drift compute` does not pay for them.
"""

from __future__ import annotations

import json

import click

from modelpilot import errors


def _model(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, version = value.rpartition("/")
    if not sep or not name or not version.isdigit():
        raise errors.InputError(f"--model: {value!r} is not NAME/VERSION (e.g. iris/3)")
    return name, version


@click.command("run")
@click.option("--deployment", required=True, help="The ModelDeployment.")
@click.option("--namespace", default="default", show_default=True, help="Its namespace.")
@click.option(
    "--window-url",
    "window_urls",
    multiple=True,
    help="A model server's admin base URL (its admin port; repeat); default: the deployment's "
    "ready pods.",
)
@click.option("--model", "model", default=None, help="NAME/VERSION instead of status.model.")
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI", help="MLflow server.")
@click.option(
    "--pushgateway",
    default=None,
    envvar="MODELPILOT_DRIFT_PUSHGATEWAY",
    help="Prometheus Pushgateway address (host:port); gauges are pushed when set.",
)
@click.option("--no-status", is_flag=True, help="Do not write status, condition or Event.")
@click.option("--psi-threshold", type=float, default=None, help="Override spec.drift.psiThreshold.")
@click.option("--ks-pvalue", type=float, default=None, help="Override spec.drift.ksPValue.")
@click.option("--methods", default=None, help="Override spec.drift.methods (comma-separated).")
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds a model server has to answer with its whole window; slower ones are skipped.",
)
@click.option(
    "--persisted/--no-persisted",
    default=True,
    show_default=True,
    help="Also merge the windows the model servers flushed to MLflow (pods since gone).",
)
@click.option(
    "--max-window-bytes",
    type=click.IntRange(min=1024),
    default=64 * 1024 * 1024,
    show_default=True,
    help="Largest window body read from one model server; larger ones are skipped.",
)
def run(
    *,
    deployment: str,
    namespace: str,
    window_urls: tuple[str, ...],
    model: str | None,
    tracking_uri: str | None,
    pushgateway: str | None,
    no_status: bool,
    psi_threshold: float | None,
    ks_pvalue: float | None,
    methods: str | None,
    timeout_seconds: float,
    max_window_bytes: int,
    persisted: bool,
) -> None:
    """Compute drift of a deployment's traffic against its reference profile; write status."""
    from modelpilot.driftjob import job

    outcome = job.run(
        job.Options(
            deployment=deployment,
            namespace=namespace,
            window_urls=window_urls,
            model=_model(model),
            tracking_uri=tracking_uri,
            pushgateway=pushgateway,
            write_status=not no_status,
            psi_threshold=psi_threshold,
            ks_pvalue=ks_pvalue,
            methods=[m.strip() for m in methods.split(",")] if methods else None,
            timeout_seconds=timeout_seconds,
            max_window_bytes=max_window_bytes,
            persisted=persisted,
        )
    )
    click.echo(
        json.dumps(
            {
                **outcome.summary,
                "sources": outcome.sources,
                "skipped": outcome.skipped,
                "duplicates": outcome.duplicates,
                "persisted": outcome.persisted,
            },
            indent=2,
        )
    )
