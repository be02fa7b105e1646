"""The demo's list of pieces finds every part of this checkout, including the commands other
distributions add to the CLI as entry points (`operator run`, `drift run`), so no step of
`make demo` is reported as pending while its part is installed."""

from __future__ import annotations

from pathlib import Path

from modelpilot.demo import pieces

REPO = Path(__file__).resolve().parents[2]


def test_every_piece_of_the_platform_is_present_in_this_checkout() -> None:
    assert pieces.missing(list(pieces.PIECES), REPO) == []
