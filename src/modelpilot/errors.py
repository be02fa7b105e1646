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

The one classification: `kind_of` says which of the three an error is (by its class, never by
the order of `except` clauses), and `exit_code` what a command exits with. The CLI (`cli.main`) and
the operator's handlers (`operator.handlers.failures.for_kopf`) translate the kind and nothing
else; the services' HTTP errors carry their own status (`modelserver.errors`, `router.proxy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

Kind = Literal["input", "transient", "check"]
"""What the caller should do: fix the input, retry later, or accept a check that said no."""

EXIT_CODES: Final[Mapping[Kind, int]] = {"input": 2, "transient": 75, "check": 1}
"""Exit status per kind: 2 (usage, as click), 75 (sysexits.h EX_TEMPFAIL), 1 (a failed check)."""


class ModelpilotError(Exception):
    """Base of every error modelpilot raises on purpose."""


class InputError(ModelpilotError, ValueError):
    """The input is wrong; the message says which field and what is allowed."""


class Unavailable(ModelpilotError):  # noqa: N818 (a state: "the dependency is unavailable")
    """A dependency did not answer; the call may succeed later (the message names it)."""


class CheckFailed(ModelpilotError):  # noqa: N818 (an outcome, not a fault: "the check failed")
    """A check ran and failed (for example the CI validation gate)."""


def kind_of(exc: BaseException) -> Kind | None:
    """The kind of `exc`; None for an exception modelpilot did not raise on purpose (a bug, to
    surface with its traceback, never to dress up as bad input or a retry)."""
    if isinstance(exc, InputError):
        return "input"
    if isinstance(exc, Unavailable):
        return "transient"
    if isinstance(exc, CheckFailed):
        return "check"
    return None


def exit_code(exc: ModelpilotError) -> int:
    """The exit status of a command that ends with `exc` (1 for a ModelpilotError of no kind)."""
    kind = kind_of(exc)
    return EXIT_CODES[kind] if kind is not None else 1
