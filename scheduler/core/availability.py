"""What a member's calendar says, as plain values the slot finder can use.

The integrations turn .ics files, feeds, Google free/busy and CalDAV into these; the core
never reads a calendar itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property


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


# Public holidays by (region, year): a plain {date: name} per year. Computing one means
# importing `holidays` (every country's module: ~0.1 s) and building the year, so a short
# command on a kept table (app/holidaykeep.py loads them from the state folder) imports
# nothing. `_NEW` are the tables computed in this process, for the app to keep.
_TABLES: dict[tuple[str, int], Mapping[date, str]] = {}
_NEW: set[tuple[str, int]] = set()
TABLES = 256  # regions x years a process holds; past it, the oldest go first


def _holiday_table(region: str, year: int) -> Mapping[date, str]:
    key = (region, year)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = _compute_holidays(region, year)
        _NEW.add(key)
        while len(_TABLES) > TABLES:
            _NEW.discard(oldest := next(iter(_TABLES)))
            del _TABLES[oldest]
    return table


def _compute_holidays(region: str, year: int) -> Mapping[date, str]:
    import holidays  # large: imported only when a member names a holiday region not kept

    country, _, subdiv = region.partition("-")
    # For a year the package has no data for it warns (two lines on stderr, in front of a
    # coordinator) and knows no holidays: that year simply has none we can name.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return dict(holidays.country_holidays(country, subdiv=subdiv or None, years=year).items())


def keep_holiday_tables(tables: Mapping[tuple[str, int], Mapping[date, str]]) -> None:
    """Use tables computed before (by this friendtor and this `holidays`) instead of computing them."""
    for key, table in tables.items():
        _TABLES.setdefault(key, table)


def new_holiday_tables() -> dict[tuple[str, int], Mapping[date, str]]:
    """The tables computed since the last call (to keep them), and forget that they were new."""
    fresh = {key: _TABLES[key] for key in _NEW if key in _TABLES}
    _NEW.clear()
    return fresh


def holiday_name(region: str | None, day) -> str | None:
    """The public holiday on a local date in a region ("US", "CA-NL"), or None."""
    if region is None:
        return None
    return _holiday_table(region, day.year).get(day)
