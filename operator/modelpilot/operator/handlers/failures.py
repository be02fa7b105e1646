"""The one translation of modelpilot's errors into kopf's, for every handler.

`errors.kind_of` decides, by the error's class, never by the order of `except` clauses:

    input       kopf.PermanentError   the spec (or the registry's answer about it) must change;
                                      kopf stops retrying this change (the handler has already
                                      written a condition saying why)
    transient   kopf.TemporaryError   a dependency did not answer; kopf retries after `delay`
    check       kopf.PermanentError   a check ran and said no; retrying would say no again

A Kubernetes API error (`modelpilot.kube.apply.KubeError`: a conflict, a busy or restarting API
server, a webhook) is transient to a handler: the next attempt re-reads the world.
"""

from __future__ import annotations

import kopf

from modelpilot import errors
from modelpilot.kube import apply


def for_kopf(
    exc: errors.ModelpilotError | apply.KubeError, *, delay: float = 60.0, what: str = ""
) -> kopf.TemporaryError | kopf.PermanentError:
    """The kopf exception to raise (`from exc`) for `exc`: a retry after `delay` seconds (kopf's
    default 60), or none; `what` prefixes the message."""
    message = f"{what}: {exc}" if what else str(exc)
    if isinstance(exc, apply.KubeError) or errors.kind_of(exc) == "transient":
        return kopf.TemporaryError(message, delay=delay)
    return kopf.PermanentError(message)
