"""Errors shared across modelpilot's boundaries, each saying what the caller should do.

    ModelpilotError
    ├── InputError        permanent: the input is wrong (a file, a flag, a spec); fix it, do not
    │                     retry. Exit code 2 on the CLI, HTTP 4xx in the services, a condition
    │                     and `kopf.PermanentError` in the operator. The message names the field
    │                     and what is allowed.
    ├── Unavailable       transient: a dependency did not answer (a server down, a timeout); the
    │                     same call may succeed later, so retry. Exit code 75 (EX_TEMPFAIL) on the
    │                     CLI, HTTP 503, `kopf.TemporaryError` in the operator.
    └── CheckFailed       a gate that ran correctly and said no (below a threshold). Exit 1.

Kept free of third-party imports so every layer, pure or not, can raise them.
"""

from __future__ import annotations


class ModelpilotError(Exception):
    """Base of every error modelpilot raises on purpose."""


class InputError(ModelpilotError, ValueError):
    """The input is wrong; the message says which field and what is allowed."""


class Unavailable(ModelpilotError):  # noqa: N818 (a state: "the dependency is unavailable")
    """A dependency did not answer; the call may succeed later (the message names it)."""


class CheckFailed(ModelpilotError):  # noqa: N818 (an outcome, not a fault: "the check failed")
    """A check ran and failed (for example the CI validation gate)."""
