"""`modelpilot operator run` refuses bad settings with one line naming the setting (exit 2)."""

from __future__ import annotations

import pytest

from modelpilot.cli import main as cli_main


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--resync-seconds", "-1"], "resync_seconds"),
        (["--health-port", "70000"], "health_port"),
    ],
)
def test_bad_operator_settings_exit_2_with_one_line_naming_the_setting(
    args: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["operator", "run", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    # Named as the user can set it: the flag and its environment variable.
    flag, variable = f"--{field.replace('_', '-')}", f"MODELPILOT_OPERATOR_{field.upper()}"
    assert err.startswith(f"modelpilot: error: {flag} ({variable}):")
    assert "Traceback" not in err


def test_the_operator_group_lists_run(capsys: pytest.CaptureFixture[str]) -> None:
    cli_main.main(["operator", "--help"])  # click prints the help and returns (no exit code)
    out = capsys.readouterr().out
    assert "run  Run the operator in the foreground" in out
