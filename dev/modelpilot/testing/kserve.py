"""KServe's Python client (the Open Inference Protocol tests use it unmodified), in its own venv.

KServe pins `pandas<3` (every release up to 0.21.0), and it is only a test client: kept in the
product's development environment it held that environment, and so the tests, on pandas 2 while
the images install pandas 3 (issue 14, item 5). `ensure_venv()` makes a virtualenv for it under the
cache directory (keyed by the pinned version and this interpreter), as `testing.evidently` does for
the drift benchmark's baseline; tests/services/modelserver/oip_kserve_calls.py runs there.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from modelpilot.testing import venvs

KSERVE = "0.21.0"


class KServeError(RuntimeError):
    """The venv could not be made."""


def requirements() -> list[str]:
    """KServe pinned; numpy as in this environment (the rows are sent as this numpy makes them)."""
    return [f"kserve=={KSERVE}", f"numpy=={importlib.metadata.version('numpy')}"]


def ensure_venv() -> Path:
    """The venv's directory, made (once per requirements and Python) with `venv` and pip."""
    return venvs.ensure("KServe", requirements(), KServeError)


def python() -> Path:
    """The venv's interpreter (made on first use)."""
    return ensure_venv() / "bin" / "python"
