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
used going first. The cache lives as long as the process (one `run`, or one command);
`DiskCache` below keeps the same answers in the state folder across commands and restarts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from scheduler.core.availability import Availability, Busy
from scheduler.core.ports import WriteFile

ENTRIES = 512


@dataclass(frozen=True)
class CalendarBudget:
    """What one read of one calendar may cost (service.toml `[limits]`); part of every key.
    Defined here, not in integrations.ics (which re-exports it), so that a command whose
    answers are all kept builds its keys without importing icalendar."""

    occurrences: int = 10_000   # occurrences inside the window, all events together
    seconds: float = 10.0       # walking the rules and expanding them

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


# --- on disk: answers that outlive the process ---------------------------------------------------
#
# Each command (`slots`, `preview`) is a process of its own, and a restarted service starts
# empty, so the answers above are also kept in the state folder, one small JSON file each,
# named by the SHA-256 of (the reader's own stamp, the content digest, the window key): a
# second `slots` on unchanged calendars neither forks a worker nor parses anything. The
# stamp covers the reader's source and its libraries' versions, so a new friendtor or a new
# icalendar never serves an answer the old one gave. The folder is the cache's own, 0700,
# files 0600 (the app's atomic write, handed in); at most `DISK_ENTRIES` files, the least
# recently written going first; an answer with more than `DISK_INTERVALS` busy intervals is
# not written. A file that is missing, unreadable, too big, not JSON, of another shape or for
# another key is no answer (the calendar is read again) and is never an error.

DISK_FOLDER = "calendar-answers"
DISK_ENTRIES = 256
DISK_INTERVALS = 20_000
DISK_FILE_BYTES = 4 * 1024 * 1024
_FORMAT = 1


@functools.cache
def reader_stamp() -> str | None:
    """What an answer on disk was computed with: the reading modules' bytes, and where the
    parsing libraries are installed with their files' sizes and times (recurring-ical-events
    and x-wr-timezone carry no version attribute, asking the package metadata costs more than
    the rest of a cache hit, and importing them is what a hit avoids). None: not known, so
    nothing is kept on disk."""
    from importlib.util import find_spec  # finds a library's file without importing it

    h = hashlib.sha256(f"{_FORMAT}\n".encode())
    try:
        for name in ("ics.py", "icsskip.py", "icsplain.py"):
            h.update((Path(__file__).parent / name).read_bytes())
        for module in ("icalendar", "recurring_ical_events", "x_wr_timezone", "dateutil.rrule"):
            origin = find_spec(module).origin
            info = os.stat(origin)
            h.update(f"{origin} {info.st_size} {info.st_mtime_ns}\n".encode())
    except (OSError, TypeError, AttributeError, ImportError):  # not installed as files (frozen, missing)
        return None
    return h.hexdigest()


class DiskCache:
    """Answers by (digest, window key) in `folder` (created, 0700, only inside an existing
    state folder); written with `write_file`, without which it is only read."""

    def __init__(self, folder: Path, write_file: WriteFile | None,
                 entries: int = DISK_ENTRIES, intervals: int = DISK_INTERVALS):
        self.folder = folder
        self.write_file = write_file
        self.entries = entries
        self.intervals = intervals

    def _name(self, sha: str, window: tuple) -> tuple[Path, str] | None:
        stamp = reader_stamp()
        if stamp is None:
            return None
        key = hashlib.sha256(f"{stamp}\n{sha}\n{window!r}".encode()).hexdigest()
        return self.folder / f"{key}.json", key

    def get(self, sha: str, window: tuple) -> Availability | None:
        named = self._name(sha, window)
        if named is None:
            return None
        path, key = named
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return None
                raw = f.read(DISK_FILE_BYTES + 1)
            if len(raw) > DISK_FILE_BYTES:
                return None
            return _from_record(json.loads(raw), key)
        except (OSError, ValueError, TypeError, KeyError, OverflowError):
            return None  # garbage is no answer: the calendar is read again and the file rewritten

    def put(self, sha: str, window: tuple, avail: Availability) -> None:
        named = self._name(sha, window)
        if named is None or self.write_file is None or not keepable(avail) or len(avail.busy) > self.intervals:
            return
        path, key = named
        record = {"format": _FORMAT, "key": key, "unknown": avail.unknown, "needs_fix": avail.needs_fix,
                  "skipped": avail.skipped,
                  "busy": [[b.start.isoformat(), b.end.isoformat(), b.tentative] for b in avail.busy]}
        try:
            if not self.folder.is_dir():
                if not self.folder.parent.is_dir():
                    return  # no state folder yet (before `validate` or the first `run`): not made here
                self.folder.mkdir(mode=0o700)
                os.chmod(self.folder, 0o700)  # mkdir's mode is filtered by the umask
            self.write_file(path, json.dumps(record, separators=(",", ":")).encode(), 0o600)
            self._trim()
        except (OSError, ValueError):
            pass  # a cache that cannot be written costs the next command a read, nothing more

    def _trim(self) -> None:
        files = [p for p in self.folder.iterdir() if p.suffix == ".json"]
        if len(files) <= self.entries:
            return
        dated = []
        for p in files:
            with contextlib.suppress(OSError):
                dated.append((p.stat().st_mtime_ns, p))
        dated.sort()
        for _, p in dated[:len(dated) - self.entries]:
            with contextlib.suppress(OSError):
                p.unlink()


def _from_record(record: object, key: str) -> Availability | None:
    if not isinstance(record, dict) or record.get("format") != _FORMAT or record.get("key") != key:
        return None
    unknown, skipped, needs_fix, busy = record["unknown"], record["skipped"], record["needs_fix"], record["busy"]
    if not (unknown is None or isinstance(unknown, str)) or type(skipped) is not int or skipped < 0 \
            or type(needs_fix) is not bool or not isinstance(busy, list):
        return None
    spans = []
    for item in busy:
        if not isinstance(item, list) or len(item) != 3 or type(item[2]) is not bool:
            return None
        start, end = datetime.fromisoformat(item[0]), datetime.fromisoformat(item[1])
        if start.tzinfo is None or end.tzinfo is None or not start < end:
            return None
        spans.append(Busy(start, end, tentative=item[2]))
    return Availability(tuple(spans), unknown, needs_fix, skipped)
