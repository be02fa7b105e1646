"""MLflow clients with short timeouts, and the mapping of MLflow's errors to modelpilot's.

    modelpilot.errors.InputError (permanent: fix the input)
    ├── RunNotFound          the run id does not exist on the server
    └── ModelNotFound        no such registered model, version or alias
    modelpilot.errors.Unavailable (transient: retry)
    └── RegistryUnavailable  the tracking server did not answer (server down, or a wrong URI)

Design decision: MLflow's defaults (120 s timeout, 7 retries with exponential backoff) make a typo
in `--tracking-uri` hang for minutes; we lower them (overridable through MLflow's own environment
variables) and translate every MLflow failure inside `mapped_errors()`, so no caller above this
layer ever sees an `MlflowException` or a traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import mlflow.exceptions
import mlflow.tracking

from modelpilot import errors

# Short, but not so short that a cold SQLite server answering its first request fails.
_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    # Progress bars on stderr would bury the one-line messages the CLI promises.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # "View run at ..." lines on stdout (two per run, forty for a sweep) would break --json output.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class RunNotFound(errors.InputError):
    """No run with this id."""


class ModelNotFound(errors.InputError):
    """No registered model, version or alias with this name."""


class RegistryUnavailable(errors.Unavailable):
    """The tracking server could not be reached; the message names the URI. Transient: the
    operator retries; a person checks the URI if it persists."""


def configure(tracking_uri: str | None) -> str:
    """Point the MLflow client at `tracking_uri` (or the environment) with short timeouts."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise errors.InputError(
            "--tracking-uri: not set; pass the MLflow server URL or set MLFLOW_TRACKING_URI"
        )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def make_client(tracking_uri: str | None) -> mlflow.tracking.MlflowClient:
    uri = configure(tracking_uri)
    return mlflow.tracking.MlflowClient(tracking_uri=uri, registry_uri=uri)


@functools.lru_cache(maxsize=64)
def client_for(tracking_uri: str) -> mlflow.tracking.MlflowClient:
    """A client bound to `tracking_uri` alone, cached per URI, touching no process-wide state.

    For code where threads use different servers at once (the operator): `make_client` sets
    MLflow's process-wide tracking URI, so one thread's URI would leak into another's calls and
    error messages. Also applies the short timeouts of `_DEFAULTS` (read at call time by MLflow).
    """
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    return mlflow.tracking.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 300 else line[:297] + "..."


@contextmanager
def mapped_errors(what: str, *, tracking_uri: str | None = None) -> Iterator[None]:
    """Translate MLflow failures while doing `what` (e.g. "run 1234", "model iris@champion").

    `tracking_uri` names the server in the messages; without it, MLflow's process-wide URI (right
    only for a process that talks to one server, as the CLI does).
    """
    server = tracking_uri or mlflow.get_tracking_uri()
    try:
        yield
    except mlflow.exceptions.MlflowException as exc:
        code = getattr(exc, "error_code", "")
        message = str(exc.message) if hasattr(exc, "message") else str(exc)
        if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in message.lower():
            if what.startswith("run "):
                raise RunNotFound(f"{what}: not found on {server}") from exc
            raise ModelNotFound(f"{what}: not found in the registry") from exc
        if "API request to" in message or "Max retries" in message or "timed out" in message:
            raise RegistryUnavailable(
                f"registry unavailable at {server} while reading {what}: "
                "check --tracking-uri / MLFLOW_TRACKING_URI"
            ) from exc
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_ALREADY_EXISTS"):
            raise errors.InputError(f"{what}: {_first_line(message)}") from exc
        raise
    except OSError as exc:
        raise RegistryUnavailable(
            f"registry unavailable at {server} while reading {what}: {exc}"
        ) from exc
