"""A scheduled meeting, as the calendar and the emails see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

# A member's own copy of a meeting can run up to two SEQUENCEs ahead of the meeting (cancelled
# for them when they left the group: +1; invited again: +2). A change for everyone (a move, a
# cancellation) goes above any such copy, or those members' calendars would ignore it.
EVERYONE_STEP = 3


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
    moved_from: datetime | None = None   # the start before the last move ("Was:" in the update)

    def moved(self, start: datetime, end: datetime, now: datetime) -> Meeting:
        """The same meeting at a new time: same UID, a higher SEQUENCE, so clients update it in place."""
        return replace(self, start=start, end=end, sequence=self.sequence + EVERYONE_STEP, stamp=now,
                       moved_from=self.start)

    def cancel(self, now: datetime) -> Meeting:
        return replace(self, sequence=self.sequence + EVERYONE_STEP, stamp=now, cancelled=True)

    def previous(self) -> Meeting | None:
        """The meeting as it was before the last move, for "Was:" lines; None if never moved."""
        if self.moved_from is None:
            return None
        return replace(self, start=self.moved_from, end=self.moved_from + (self.end - self.start), moved_from=None)


def by_group(meetings: Mapping[tuple[str, str], Meeting]) -> dict[str, list[Meeting]]:
    """Meetings keyed (group, cycle), as lists per group: the planner and the renderer look at one
    group's meetings among every group's, and a scan per group would make a tick quadratic."""
    grouped: dict[str, list[Meeting]] = {}
    for (gid, _), m in meetings.items():
        grouped.setdefault(gid, []).append(m)
    return grouped


def meeting_uid(group: str, cycle: str, sender: str) -> str:
    """A UID stable for the group's meeting in one cycle, under the sender's domain (RFC 5545 3.8.4.7)."""
    return f"{group}-{cycle}@{sender.rpartition('@')[2]}"
