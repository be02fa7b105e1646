"""Join delayed rewards to the variant that answered, by request id: bounded memory, a TTL.

Pure (the caller passes the clock). Design decision: entries live in one `OrderedDict` (a linked
list, unlike a plain dict, whose iteration from the front slows down as deleted slots pile up
there), so the oldest entry is always first; expiry and the size bound both evict from the front in
O(1), and an entry stays after its reward has been joined (marked) until it expires, which is what
lets a duplicate be recognised and ignored instead of counted twice.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Literal


@dataclass
class _Entry:
    variant: str
    at: float
    joined: bool = False


Outcome = Literal["joined", "duplicate", "unknown"]


class FeedbackLedger:
    def __init__(self, *, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.ttl_seconds
        while entries:
            oldest = next(iter(entries.values()))
            if oldest.at >= horizon and len(entries) <= self.max_entries:
                break
            entries.popitem(last=False)
            self.evicted += 1

    def record(self, request_id: str, variant: str, *, now: float) -> None:
        """Remember which variant answered `request_id`."""
        old = self._entries.pop(request_id, None)
        # A client that reuses a request id must not get a second reward in: keep `joined`.
        self._entries[request_id] = _Entry(variant=variant, at=now, joined=bool(old and old.joined))
        self._expire(now)

    def join(self, request_id: str, *, now: float) -> tuple[Outcome, str | None]:
        """Join a reward: ("joined", variant) once, then ("duplicate", variant); else unknown."""
        self._expire(now)
        entry = self._entries.get(request_id)
        if entry is None:
            return "unknown", None
        if entry.joined:
            return "duplicate", entry.variant
        entry.joined = True
        return "joined", entry.variant
