"""What a member's calendar says, as plain values the slot finder can use.

The integrations turn .ics files, feeds, Google free/busy and CalDAV into these; the core
never reads a calendar itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache


@dataclass(frozen=True, slots=True)
class Busy:
    """An interval the member is taken (aware datetimes); `tentative` for maybe-busy. `label`
    says what it is when friendtor itself knows (another group's meeting), for explanations."""

    start: datetime
    end: datetime
    tentative: bool = False
    label: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Busy needs aware datetimes")  # a naive time here is a bug upstream


@dataclass(frozen=True)
class Availability:
    """A member's busy time, or why it could not be read (then the member is 'unknown').

    An unreadable calendar is never treated as free: that would invite people into
    meetings they cannot attend.
    """

    busy: tuple[Busy, ...] = ()
    unknown: str | None = None
    # True when reading failed for a reason that will not pass by itself (revoked sign-in,
    # no permission): the service then tells the operator and the coordinators, once.
    needs_fix: bool = False
    # Events left out because they could not be read; the rest of the calendar still counts.
    skipped: int = 0

    @cached_property
    def spans(self) -> tuple[tuple[int, int, bool], ...]:
        """Busy intervals as (start, end) UTC seconds, computed once: the slot finder's hot loop
        would otherwise convert every datetime on every search."""
        return tuple((int(b.start.timestamp()), int(b.end.timestamp()), b.tentative) for b in self.busy)

    @classmethod
    def unreadable(cls, reason: str, *, needs_fix: bool = False) -> Availability:
        return cls((), reason, needs_fix)


NO_CALENDAR = Availability()


@lru_cache(maxsize=256)
def _holiday_table(region: str, year: int):
    import holidays  # large: imported only when a member names a holiday region

    country, _, subdiv = region.partition("-")
    # For a year the package has no data for it warns (two lines on stderr, in front of a
    # coordinator) and knows no holidays: that year simply has none we can name.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return holidays.country_holidays(country, subdiv=subdiv or None, years=year)


def holiday_name(region: str | None, day) -> str | None:
    """The public holiday on a local date in a region ("US", "CA-NL"), or None."""
    if region is None:
        return None
    return _holiday_table(region, day.year).get(day)
