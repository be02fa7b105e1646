"""Errors shared across modelpilot's boundaries.

    ModelpilotError
    ├── InputError        bad input from a user: a file, a flag, a spec. Exit code 2 on the CLI,
    │                     HTTP 4xx in the services. The message names the field and what is allowed.
    └── CheckFailed       a gate that ran correctly and said no (below a threshold). Exit 1.

Kept free of third-party imports so every layer, pure or not, can raise them.
"""

from __future__ import annotations


class ModelpilotError(Exception):
    """Base of every error modelpilot raises on purpose."""


class InputError(ModelpilotError, ValueError):
    """The input is wrong; the message says which field and what is allowed."""


class CheckFailed(ModelpilotError):  # noqa: N818 (an outcome, not a fault: "the check failed")
    """A check ran and failed (for example the CI validation gate)."""
