"""Virtualenvs of the benchmarks' baselines (MLServer, Evidently), apart from the product's.

A baseline's own dependencies (MLServer's pins, Evidently's pandas<3) never constrain the
product's environment: each gets a venv under the cache directory, keyed by its requirements and
the Python that makes it, made once with `venv` and pip (PyPI is reachable here) and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("MODELPILOT_CACHE", Path.home() / ".cache" / "modelpilot"))


def ensure(name: str, requirements: list[str], error: type[Exception]) -> Path:
    """The venv's directory for `requirements` (made on first use); a failed install raises
    `error` naming the baseline."""
    key = hashlib.sha256(json.dumps([sys.version, *requirements]).encode()).hexdigest()[:12]
    venv = cache_dir() / "venvs" / f"{name.lower()}-{key}"
    marker = venv / ".installed"
    if marker.exists():
        return venv
    print(f"making {name}'s venv {venv} ({', '.join(requirements)}) ...", file=sys.stderr)
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *requirements], check=True)
    except subprocess.CalledProcessError as exc:
        raise error(f"{name} venv: {exc}") from exc
    marker.write_text("\n".join(requirements) + "\n")
    return venv
