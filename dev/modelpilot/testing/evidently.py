"""Evidently (the drift benchmark's baseline) in its own venv, never in the product's environment.

Evidently pins its own pandas (2.x) and pulls a large tree; keeping it out of the product's
dependencies is what lets the product drop that pin (issue 14, item 5). `ensure_venv()` makes a
virtualenv for it under the cache directory (keyed by the pinned versions and this interpreter),
with the same numpy as the product's environment, so the benchmark's seeded data are the same bytes
on both sides; bench/drift.py runs its Evidently sides with that venv's Python. As
`testing.mlserver` does for MLServer.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

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


def cache_dir() -> Path:
    return Path(os.environ.get("MODELPILOT_CACHE", Path.home() / ".cache" / "modelpilot"))


def ensure_venv() -> Path:
    """The venv's directory, made (once per requirements and Python) with `venv` and pip."""
    reqs = requirements()
    key = hashlib.sha256(json.dumps([sys.version, *reqs]).encode()).hexdigest()[:12]
    venv = cache_dir() / "venvs" / f"evidently-{key}"
    marker = venv / ".installed"
    if marker.exists():
        return venv
    print(f"making Evidently's venv {venv} ({', '.join(reqs)}) ...", file=sys.stderr)
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *reqs], check=True)
    except subprocess.CalledProcessError as exc:
        raise EvidentlyError(f"Evidently venv: {exc}") from exc
    marker.write_text("\n".join(reqs) + "\n")
    return venv


def python() -> Path:
    """The venv's interpreter (made on first use)."""
    return ensure_venv() / "bin" / "python"
