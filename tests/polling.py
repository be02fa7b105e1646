"""Waiting in tests: poll with a deadline, never sleep as synchronisation.

One `wait_for` for the tiers that wait on something outside the test (the API server, a process,
a node): the operator's handler tests, the control plane's and the real node's harness tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something other than None or False and return that; fail
    after `timeout` seconds naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(interval)  # the poll interval of a deadline loop
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
