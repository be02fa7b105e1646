"""`python -m modelpilot.api render --out manifests/crds [--rbac-out manifests/rbac]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelpilot.api import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelpilot.api")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("render", help="write the CRDs (and optionally the RBAC) as YAML")
    cmd.add_argument("--out", type=Path, required=True, help="directory for the CRDs")
    cmd.add_argument("--rbac-out", type=Path, help="directory for the operator's RBAC")
    args = parser.parse_args(argv)
    for path in render.write(render.crd_files(), args.out):
        print(path)
    if args.rbac_out is not None:
        for path in render.write(render.rbac_files(), args.rbac_out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
