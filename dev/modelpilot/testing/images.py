"""The project's container images for the tests: built (or found in the cache) by hack/images.sh,
run with the same podman configuration, imported into a node's containerd.

Design decision: the shell script is the one place that knows how to build, cache and import the
images (`make images`, the kind targets and the real node all call it), so this module only asks
it (`hack/images.sh env`) and reads its answer; it never builds by itself.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "hack" / "images.sh"
PODMAN_CONF = REPO / "hack" / "images" / "containers.conf"
TARGETS = ("modelpilot", "operator", "model-server", "router", "drift")
BUILD_TIMEOUT = 3600.0
"""Seconds a cold build may take (a fresh Debian base and every dependency from PyPI: ~10 min
on 2 cores; the bound is for a slow mirror, not a target)."""


class ImagesError(RuntimeError):
    """The images could not be built, found or imported (the message says which and why)."""


@dataclass(frozen=True)
class Images:
    archive: Path
    """One multi-image docker-archive holding the five images (`ctr images import` reads it)."""
    key: str
    registry: str
    tag: str

    def ref(self, target: str) -> str:
        """The image reference of one Dockerfile target, e.g. ghcr.io/modelpilot/router:0.1.0."""
        if target not in TARGETS:
            raise ValueError(f"unknown image target {target!r} (one of {', '.join(TARGETS)})")
        return f"{self.registry}/{target}:{self.tag}"


def _parse_env(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier():
            parts = shlex.split(value)
            out[name] = parts[0] if len(parts) == 1 else " ".join(parts)
    return out


def ensure(*, timeout: float = BUILD_TIMEOUT) -> Images:
    """Build the images or find them in the cache (`hack/images.sh env`); a warm call takes ~1 s."""
    proc = subprocess.run(
        ["bash", str(SCRIPT), "env", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise ImagesError(f"hack/images.sh env failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    env = _parse_env(proc.stdout)
    try:
        return Images(
            archive=Path(env["IMAGES_ARCHIVE"]),
            key=env["IMAGES_KEY"],
            registry=env["IMAGE_REGISTRY"],
            tag=env["IMAGE_TAG"],
        )
    except KeyError as exc:
        raise ImagesError(f"hack/images.sh env printed no {exc}: {proc.stdout!r}") from exc


def podman_available() -> str | None:
    """None when podman can run containers here, else why not (for a skip or error message)."""
    if shutil.which("podman") is None:
        return "podman is not installed (make images installs it, as root, with apt)"
    if shutil.which("runc") is None:
        return "runc is not installed (make images installs it with podman)"
    return None


def podman(
    *args: str, timeout: float = 300.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`podman ARGS` with the project's containers.conf (runc, cgroupfs, rlimits: images.sh)."""
    proc = subprocess.run(
        ["podman", *args],
        env={**os.environ, "CONTAINERS_CONF": str(PODMAN_CONF)},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise ImagesError(f"podman {shlex.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def import_into_containerd(images: Images, *, address: str, namespace: str = "k8s.io") -> None:
    """`ctr -n NAMESPACE images import` of the archive into the containerd at socket `address`."""
    proc = subprocess.run(
        ["ctr", "--address", address, "-n", namespace, "images", "import", str(images.archive)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if proc.returncode != 0:
        raise ImagesError(f"ctr images import failed ({proc.returncode}):\n{proc.stderr}")
