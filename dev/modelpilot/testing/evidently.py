"""Evidently (the drift benchmark's baseline) in its own venv, never in the product's environment.

Evidently pins its own pandas (2.x) and pulls a large tree; keeping it out of the product's
dependencies is what lets the product drop that pin (issue 14, item 5). `ensure_venv()` makes a
virtualenv for it under the cache directory (keyed by the pinned versions and this interpreter),
with the same numpy as the product's environment, so the benchmark's seeded data are the same bytes
on both sides; bench/drift.py runs its Evidently sides with that venv's Python. As
`testing.mlserver` does for MLServer.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from modelpilot.testing import venvs

EVIDENTLY = "0.7.23"


class EvidentlyError(RuntimeError):
    """The venv could not be made."""


def requirements() -> list[str]:
    """Evidently pinned; numpy as in this environment; pandas below 3, which Evidently needs."""
    return [
        f"evidently=={EVIDENTLY}",
        f"numpy=={importlib.metadata.version('numpy')}",
        "pandas>=2.2,<3",
    ]


def ensure_venv() -> Path:
    """The venv's directory, made (once per requirements and Python) with `venv` and pip."""
    return venvs.ensure("Evidently", requirements(), EvidentlyError)


def python() -> Path:
    """The venv's interpreter (made on first use)."""
    return ensure_venv() / "bin" / "python"
