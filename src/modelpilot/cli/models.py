"""`modelpilot models`: register, alias, promote, rollback, list and history on the MLflow registry.

Design decision: the commands only translate arguments; every change goes through
`modelpilot.registry.models`, which records who, when and why as a version tag, so `history` shows
changes made from this CLI, from CI, or from the operator alike. Who is MODELPILOT_ACTOR, else
GITHUB_ACTOR, else the login name.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click
import mlflow.exceptions

from modelpilot.lifecycle import registration
from modelpilot.registry import client as registry_client
from modelpilot.registry import models as registry_models

P = ParamSpec("P")
R = TypeVar("R")


def registry_failures_are_one_line(fn: Callable[P, R]) -> Callable[P, R]:
    """An MLflow failure that `registry.client.mapped_errors` did not classify (a server error, an
    MLflow-side check) still ends as one line and exit 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except mlflow.exceptions.MlflowException as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(f"registry error: {text[:300]}") from exc

    return wrapper


tracking_uri_option = click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking server (default: $MLFLOW_TRACKING_URI).",
)
reason_option = click.option(
    "--reason", "-m", required=True, help="Why: recorded with who and when in the history."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _echo_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(event, sort_keys=True))
        return
    alias = f" @{event['alias']}" if event.get("alias") else ""
    previous = event.get("previous")
    was = f" (was {previous})" if previous else ""
    click.echo(f"{event['action']}{alias} -> version {event['version']}{was}: {event['why']}")


@click.group("models")
def models() -> None:
    """The model registry: versions, aliases (champion, challenger), promotion and rollback."""


@models.command("register")
@click.option("--run", "run_id", required=True, help="Id of the run that logged the model.")
@click.option("--name", required=True, help="Registered model name.")
@click.option("--artifact-path", default="model", show_default=True, help="Model name in the run.")
@click.option("--alias", default=None, help="Give the new version this alias (e.g. challenger).")
@click.option("--description", default="", help="Version description.")
@click.option("--reason", "-m", default="", help="Why (default: 'registered from run ...').")
@tracking_uri_option
@json_option
@registry_failures_are_one_line
def register(
    run_id: str,
    name: str,
    artifact_path: str,
    alias: str | None,
    description: str,
    reason: str,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Register the model of a run, with the reference profile of its training data."""
    done = registration.register(
        tracking_uri=tracking_uri,
        name=name,
        run_id=run_id,
        alias=alias,
        reason=reason,
        description=description,
        artifact_path=artifact_path,
    )
    v = done.version
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": v.name,
                    "version": v.version,
                    "run_id": v.run_id,
                    "aliases": list(v.aliases),
                    "profile": done.profile_uri,
                }
            )
        )
        return
    click.echo(
        f"registered {v.name} version {v.version} from run {v.run_id}"
        + (f" as @{alias}" if alias else "")
    )
    if done.profile_uri:
        click.echo(f"reference profile ({len(done.profile_columns)} columns): {done.profile_uri}")
    else:
        click.echo("no reference profile: the run logged no data/train.csv", err=True)


@models.command("alias")
@click.option("--name", required=True)
@click.option("--alias", required=True, help="Alias to set (or remove with --delete).")
@click.option("--version", default=None, help="Version the alias should point at.")
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@reason_option
@tracking_uri_option
@json_option
@registry_failures_are_one_line
def alias_cmd(
    name: str,
    alias: str,
    version: str | None,
    delete: bool,
    reason: str,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Point an alias at a version (champion changes should use promote/rollback)."""
    c = registry_client.make_client(tracking_uri)
    if delete:
        event = registry_models.remove_alias(c, name=name, alias=alias, reason=reason)
    else:
        if version is None:
            raise click.UsageError("--version is required unless --delete is given")
        event = registry_models.set_alias(c, name=name, alias=alias, version=version, reason=reason)
    _echo_event(event, as_json)


@models.command("promote")
@click.option("--name", required=True)
@click.option("--version", default=None, help="Version to promote (default: the challenger).")
@reason_option
@tracking_uri_option
@json_option
@registry_failures_are_one_line
def promote(
    name: str, version: str | None, reason: str, tracking_uri: str | None, as_json: bool
) -> None:
    """Make a version (default: the challenger) the champion; the old champion can be restored."""
    c = registry_client.make_client(tracking_uri)
    _echo_event(registry_models.promote(c, name=name, version=version, reason=reason), as_json)


@models.command("rollback")
@click.option("--name", required=True)
@reason_option
@tracking_uri_option
@json_option
@registry_failures_are_one_line
def rollback(name: str, reason: str, tracking_uri: str | None, as_json: bool) -> None:
    """Restore the champion that the current champion replaced."""
    c = registry_client.make_client(tracking_uri)
    _echo_event(registry_models.rollback(c, name=name, reason=reason), as_json)


@models.command("list")
@click.option("--name", default=None, help="List the versions of this model (default: all models).")
@tracking_uri_option
@json_option
@registry_failures_are_one_line
def list_cmd(name: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """Registered models with their aliases, or the versions of one model."""
    c = registry_client.make_client(tracking_uri)
    if name is None:
        found = registry_models.list_models(c)
        if as_json:
            click.echo(json.dumps(found))
            return
        for m in found:
            aliases = ", ".join(f"@{a}={v}" for a, v in sorted(m["aliases"].items()))
            click.echo(f"{m['name']}  latest={m['latest']}  {aliases}".rstrip())
        return
    versions = registry_models.list_versions(c, name=name)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "version": v.version,
                        "aliases": list(v.aliases),
                        "run_id": v.run_id,
                        "description": v.description,
                    }
                    for v in versions
                ]
            )
        )
        return
    for v in versions:
        aliases = " ".join(f"@{a}" for a in v.aliases)
        click.echo(f"{v.version:>4}  {v.run_id}  {aliases}  {v.description}".rstrip())


@models.command("history")
@click.option("--name", required=True)
@tracking_uri_option
@json_option
@registry_failures_are_one_line
def history(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Every recorded change to a model, oldest first: when, who, what, why."""
    c = registry_client.make_client(tracking_uri)
    events = registry_models.history(c, name=name)
    if as_json:
        click.echo(json.dumps(events, sort_keys=True))
        return
    for e in events:
        alias = f" @{e['alias']}" if e.get("alias") else ""
        was = f" (was {e['previous']})" if e.get("previous") else ""
        click.echo(
            f"{e['when']}  {e['who']}  {e['action']}{alias} v{e['version']}{was}: "
            f"{e.get('why', '')}"
        )
