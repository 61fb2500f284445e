"""What the planner asks of the outbox, and which records it may still ask about. Pure.

The planner asks, for each send it could plan now, whether that send is on record (a sid in a
`Recorded`), and for a meeting not yet held, who got its invite. It never asks about a send its
rules can no longer plan: past a record's `expires` (core/outbox.expires, the instant prune
also goes by) no rule plans its key again. So a store need not hand the planner its history,
only the records `asked_at` the tick's `now`: a tick then costs what may be due, not what was
sent. The one exception is alerts: a calendar or a group problem is alerted once for as long
as it lasts, and its record says so until it is forgotten, expired or not.

tests/core/test_recorded.py ticks a year and checks the planner asks about nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from scheduler.core.outbox import Kind


class Recorded(Protocol):
    """The sids on record, as the planner asks: one at a time. A frozenset is one; a store hands
    one that answers at least for every record `asked_at` the tick's `now`."""

    def __contains__(self, sid: object, /) -> bool: ...


def asked_at(kind: Kind | str, expires: datetime, now: datetime) -> bool:
    """Whether the planner may ask about a record of `kind` that expires at `expires`, at `now`."""
    return kind == Kind.ALERT or expires >= now
