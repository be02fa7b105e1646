"""`modelpilot demo` without the development distribution: one clear line, exit 2, no traceback.

The demo ships in `modelpilot-dev` (dev/), not in the product. To run the CLI as on a machine
without it, the test blocks the import the way Python documents (`sys.modules[name] = None` makes
`import name` raise ModuleNotFoundError); nothing else is replaced.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cli.conftest import run


@pytest.mark.parametrize(
    "args",
    [["demo", "--state-dir", "{tmp}"], ["demo", "report", "--timeline", "{tmp}/timeline.json"]],
    ids=["demo", "demo-report"],
)
def test_demo_without_the_dev_distribution_says_how_to_install_it(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [
        m for m in sys.modules if m == "modelpilot.demo" or m.startswith("modelpilot.demo.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "modelpilot.demo", None)  # type: ignore[arg-type]

    code, _, err = run([a.replace("{tmp}", str(tmp_path)) for a in args], capsys)

    assert code == 2
    assert "modelpilot-dev" in err
    assert "make venv" in err
    assert "Traceback" not in err


def test_the_demo_lives_in_the_dev_distribution_not_the_product() -> None:
    import modelpilot.demo.flow
    import modelpilot.testing.controlplane

    repo = Path(__file__).resolve().parents[2]
    for module in (modelpilot.demo.flow, modelpilot.testing.controlplane):
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().is_relative_to(repo / "dev" / "modelpilot")
