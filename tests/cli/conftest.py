"""What the CLI tests share: running `modelpilot` in this process as a user's shell would."""

from __future__ import annotations

import pytest

from modelpilot.cli import main as cli_main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`modelpilot ARGS` through the real entry point: (exit status, stdout, stderr)."""
    try:
        cli_main.main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
