"""Meeting cycles and their candidate windows, in the group's time zone.

A cycle is one meeting's period: a month ("2026-12") for monthly groups, an ISO week
("2026-W50") for weekly ones, and a fortnight named by its first ISO week for biweekly
ones (fortnights are counted from the week the group `started`). A cycle's window is the
list of local dates on which the meeting may fall.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from scheduler.core.config import Group


@dataclass(frozen=True)
class Window:
    key: str                 # the cycle key, or "custom" for an explicit --from/--to range
    dates: tuple[date, ...]  # eligible dates in the group's zone, ascending

    @property
    def first(self) -> date:
        return self.dates[0]

    @property
    def last(self) -> date:
        return self.dates[-1]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week_key(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def cycle_of(group: Group, day: date) -> str:
    """The key of the cycle that contains a local date."""
    cadence = group.meetings.cadence
    if cadence == "monthly":
        return f"{day.year}-{day.month:02d}"
    monday = _monday(day)
    if cadence == "biweekly":
        origin = _monday(group.started)
        monday -= timedelta(weeks=((monday - origin).days // 7) % 2)
    return _week_key(monday)


def window(group: Group, key: str) -> Window:
    """The eligible dates of one cycle (possibly none, e.g. no fifth Tuesday that month)."""
    m = group.meetings
    return _window(m.cadence, tuple(m.weekdays), tuple(m.weeks_of_month), key)


@functools.lru_cache(maxsize=4096)  # every tick asks again for the same few cycles of every group
def _window(cadence: str, weekdays: tuple[int, ...], weeks_of_month: tuple[int, ...], key: str) -> Window:
    if cadence == "monthly":
        year, month = (int(x) for x in key.split("-"))
        days = (date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1))
        dates = [d for d in days if d.weekday() in weekdays and (d.day - 1) // 7 + 1 in weeks_of_month]
    else:
        monday = date.fromisocalendar(int(key[:4]), int(key[6:]), 1)
        weeks = 2 if cadence == "biweekly" else 1
        dates = [monday + timedelta(days=i) for i in range(7 * weeks)]
        dates = [d for d in dates if d.weekday() in weekdays]
    return Window(key, tuple(dates))


def next_key(group: Group, key: str) -> str:
    """The cycle after `key`."""
    first = first_day(group, key)
    if group.meetings.cadence == "monthly":
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        following = first + timedelta(weeks=2 if group.meetings.cadence == "biweekly" else 1)
    return cycle_of(group, following)


def first_day(group: Group, key: str) -> date:
    """The first calendar day of a cycle's period (the 1st of the month, or a Monday)."""
    if group.meetings.cadence == "monthly":
        year, month = (int(x) for x in key.split("-"))
        return date(year, month, 1)
    return date.fromisocalendar(int(key[:4]), int(key[6:]), 1)


def next_window(group: Group, now: datetime, *, horizon: int = 24) -> Window | None:
    """The first cycle window with an eligible date from today (group zone) on.

    Returns None when no cycle in the next `horizon` cycles has an eligible date (a config
    such as weeks_of_month = [5] with a weekday that rarely has a fifth week).
    """
    today = now.astimezone(group.tz).date()
    key = cycle_of(group, today)
    for _ in range(horizon):
        w = window(group, key)
        upcoming = tuple(d for d in w.dates if d >= today)
        if upcoming:
            return Window(w.key, upcoming)
        key = next_key(group, key)
    return None


def range_window(group: Group, start: date, end: date) -> Window:
    """An explicit range (both ends inclusive) on the group's meeting weekdays.

    Weeks of the month do not apply: whoever names dates has already chosen the weeks.
    """
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return Window("custom", tuple(d for d in days if d.weekday() in group.meetings.weekdays))
