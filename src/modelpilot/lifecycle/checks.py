"""Check results shared by data validation and the CI gate: a table for people, JUnit XML for CI.

Design decision: a check is a plain record (name, passed, observed, expected, message) and both
renderings are pure functions of a list of them, so the data validator and the model gate report the
same way and the JUnit file can be tested by parsing it back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    observed: str
    expected: str
    message: str = ""
    skipped: bool = False

    @property
    def status(self) -> str:
        return "SKIP" if self.skipped else ("PASS" if self.passed else "FAIL")


def failed(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if not c.passed and not c.skipped]


def render_table(checks: Sequence[Check]) -> str:
    """A fixed-width table: one row per check, then a summary line."""
    header = ("check", "status", "observed", "expected")
    rows = [(c.name, c.status, c.observed, c.expected) for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, tuple("-" * w for w in widths), *rows]
    ]
    bad = failed(checks)
    skipped = sum(c.skipped for c in checks)
    lines.append(f"{len(checks) - len(bad) - skipped} passed, {len(bad)} failed, {skipped} skipped")
    return "\n".join(lines)


def build_junit(checks: Sequence[Check], *, suite: str) -> str:
    """JUnit XML (the schema Jenkins, GitHub and GitLab read): one testcase per check."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root,
        "testsuite",
        {
            "name": suite,
            "tests": str(len(checks)),
            "failures": str(len(failed(checks))),
            "errors": "0",
            "skipped": str(sum(c.skipped for c in checks)),
        },
    )
    for c in checks:
        case = ET.SubElement(ts, "testcase", {"classname": suite, "name": c.name})
        detail = f"observed {c.observed}, expected {c.expected}" + (
            f": {c.message}" if c.message else ""
        )
        if c.skipped:
            ET.SubElement(case, "skipped", {"message": c.message or "skipped"})
        elif not c.passed:
            failure = ET.SubElement(case, "failure", {"message": detail, "type": "threshold"})
            failure.text = detail
        else:
            out = ET.SubElement(case, "system-out")
            out.text = detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def summary(checks: Sequence[Check]) -> str:
    """One line naming every failed check, for the CheckFailed message."""
    bad = failed(checks)
    return "; ".join(f"{c.name} (observed {c.observed}, expected {c.expected})" for c in bad)
