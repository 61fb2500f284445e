"""Calendars already read, kept in the service process by the SHA-256 of their bytes.

The service reads every member's calendar on every tick, and a member's export changes far
less often than that; `slots` and the reports read the same files again. Reading means a
worker process, a parse and an expansion; hashing the bytes the parent already holds costs
a few milliseconds for a 10 MB file. So the parent keeps each answer (the busy intervals,
the count of events left out, or the reason the calendar could not be read) under

    (SHA-256 of the bytes, the member's zone, the window, the budget that shaped the answer)

and a read whose key is known skips the worker. The zone is in the key because floating
times and all-day events are read in it; the budget because an answer "too many
occurrences" holds only for the limit that said so. Answers that depend on the machine
rather than the bytes (a worker out of time or memory, a read cut by SIGTERM) are not kept.

Bounded: at most `entries` answers and `intervals` busy intervals in all, the least recently
used going first. The cache lives as long as the process (one `run`, or one command); the
feed cache on disk (integrations.feeds) is what survives a restart.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler.core.availability import Availability

ENTRIES = 512
INTERVALS = 1_000_000


def digest(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes | bytearray) else data.encode()).hexdigest()


def window_key(zone: ZoneInfo, start: datetime, end: datetime, budget: Hashable) -> tuple:
    """Everything but the content that decides an answer."""
    return (zone.key, start, end, budget)


class CalendarCache:
    """Answers by (digest, window_key), least recently used first out. `hits` and `misses`
    count lookups: tests read them to tell a parse from a cached answer."""

    def __init__(self, entries: int = ENTRIES, intervals: int = INTERVALS):
        self.entries = entries
        self.intervals = intervals
        self.hits = 0
        self.misses = 0
        self._answers: OrderedDict[tuple[str, tuple], Availability] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # the service's tick and a report may read at once

    def get(self, sha: str, window: tuple) -> Availability | None:
        with self._lock:
            got = self._answers.get((sha, window))
            if got is None:
                self.misses += 1
                return None
            self._answers.move_to_end((sha, window))
            self.hits += 1
            return got

    def known(self, window: tuple) -> dict[str, Availability]:
        """The answers kept for this window, by digest (a feed's worker is told which bodies
        need no parse; the caller holds the answers, so an eviction meanwhile costs nothing)."""
        with self._lock:
            return {sha: avail for (sha, w), avail in self._answers.items() if w == window}

    def hit(self) -> None:
        with self._lock:
            self.hits += 1

    def put(self, sha: str, window: tuple, avail: Availability) -> None:
        if not keepable(avail):
            return
        size = len(avail.busy) + 1
        if size > self.intervals:
            return
        with self._lock:
            old = self._answers.pop((sha, window), None)
            if old is not None:
                self._size -= len(old.busy) + 1
            self._answers[(sha, window)] = avail
            self._size += size
            while len(self._answers) > self.entries or self._size > self.intervals:
                _, dropped = self._answers.popitem(last=False)
                self._size -= len(dropped.busy) + 1

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._size = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._answers)


# Reasons that come from the machine, not from the calendar's bytes (integrations.ics and
# integrations.calendars word them): such an answer may change on the next read.
_PASSING = ("reading it took", "not read: the service is stopping", "reading it failed unexpectedly")


def keepable(avail: Availability) -> bool:
    return avail.unknown is None or not avail.unknown.startswith(_PASSING)


CACHE = CalendarCache()
