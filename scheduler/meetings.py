"""A scheduled meeting, as the calendar and the emails see it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class Meeting:
    group: str
    cycle: str
    uid: str
    sequence: int
    start: datetime   # aware, UTC
    end: datetime
    # When this version (this SEQUENCE) was decided: the invite's DTSTAMP. Stored, so a
    # resent invite is byte-for-byte the one sent before.
    stamp: datetime
    cancelled: bool = False

    def moved(self, start: datetime, end: datetime, now: datetime) -> Meeting:
        """The same meeting at a new time: same UID, SEQUENCE + 1, so clients update it in place."""
        return replace(self, start=start, end=end, sequence=self.sequence + 1, stamp=now)

    def cancel(self, now: datetime) -> Meeting:
        return replace(self, sequence=self.sequence + 1, stamp=now, cancelled=True)


def meeting_uid(group: str, cycle: str, sender: str) -> str:
    """A UID stable for the group's meeting in one cycle, under the sender's domain (RFC 5545 3.8.4.7)."""
    return f"{group}-{cycle}@{sender.rpartition('@')[2]}"
