"""The demo's only door to the Kubernetes API: the real `kubectl`, run as a subprocess.

The demo is what a person would do at a terminal (`kubectl apply`, `kubectl get -o json`), so it
uses the same binary rather than a client library. The one design decision: every call has a
timeout and a failure raises `KubectlError` with kubectl's own stderr, so a step fails with the
message the user would have seen.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its command line and stderr."""


class Kubectl:
    """kubectl bound to one kubeconfig and namespace."""

    def __init__(self, binary: str, *, kubeconfig: Path, namespace: str = "default") -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def run(self, args: Sequence[str], *, timeout: float = 60.0, stdin: str | None = None) -> str:
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig), *args]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, input=stdin, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise KubectlError(f"{' '.join(args)}: no answer within {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def apply(self, path: Path, *, server_side: bool = False) -> str:
        args = ["apply", "-f", str(path)]
        if server_side:
            args.append("--server-side")
        return self.run(args, timeout=120.0)

    def get(self, kind: str, name: str | None = None, *, selector: str | None = None) -> Any:
        """`kubectl get -o json` in the namespace: one object, or the list's `items`."""
        args = ["get", kind, "-n", self.namespace, "-o", "json"]
        if name:
            args.insert(2, name)
        if selector:
            args += ["-l", selector]
        doc = json.loads(self.run(args))
        return doc if name else doc.get("items", [])

    def get_or_none(self, kind: str, name: str) -> Any:
        try:
            return self.get(kind, name)
        except KubectlError as exc:
            if "NotFound" in str(exc) or "not found" in str(exc):
                return None
            raise
