"""Print the third-party requirements of some of modelpilot's distributions, extras included, read
from their pyproject.toml files: what one image installs before the product's own wheels.

The Dockerfile's `requirements` stage runs it once per image, so each image's dependency layer is
keyed by exactly its own list: an edit of the code, or of another image's dependencies, reuses it.
References between the project's own distributions (`modelpilot[kube]`, `modelpilot-httpserver`
in the router's dependencies) are followed, not printed; the wheels of the distributions
themselves are installed afterwards with --no-deps.

Usage: requirements.py ROOT SPEC...   e.g. requirements.py . modelpilot-router 'modelpilot[cli]'
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PROJECTS = {
    "modelpilot": ".",
    "modelpilot-operator": "operator",
    "modelpilot-httpserver": "services/httpserver",
    "modelpilot-router": "services/router",
    "modelpilot-modelserver": "services/modelserver",
    "modelpilot-driftjob": "services/driftjob",
}
"""The project's product distributions and their directories under ROOT (modelpilot-dev, dev/,
never goes into an image)."""

_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def expand(root: Path, spec: str, seen: set[tuple[str, str]], out: list[str]) -> None:
    """Append the third-party requirements of `spec` (a requirement string) to `out`."""
    match = _SPEC.match(spec)
    if match is None:
        raise SystemExit(f"requirements.py: cannot read the requirement {spec!r}")
    name = _canonical(match.group(1))
    if name not in PROJECTS:
        if spec not in out:
            out.append(spec)
        return
    project = tomllib.loads((root / PROJECTS[name] / "pyproject.toml").read_text())["project"]
    extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
    for extra in ["", *extras]:
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        if extra:
            available = project.get("optional-dependencies", {})
            if extra not in available:
                raise SystemExit(f"requirements.py: {name} has no extra {extra!r}")
            requirements = available[extra]
        else:
            requirements = project.get("dependencies", [])
        for requirement in requirements:
            expand(root, requirement, seen, out)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    root, specs = Path(argv[0]), argv[1:]
    seen: set[tuple[str, str]] = set()
    out: list[str] = []
    for spec in specs:
        expand(root, spec, seen, out)
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
