"""Meeting cycles: which local dates a meeting may fall on, for each cadence."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from builders import group, member
from scheduler.core.cycles import cycle_of, next_key, next_window, window

A = member("A", "Europe/London")


def test_monthly_weeks_of_month():
    """Weeks 2 and 3 are days 8-21: the second or third Tuesday, Wednesday and Thursday."""
    g = group(A, weekdays=["tue", "wed", "thu"], weeks_of_month=[2, 3])
    assert window(g, "2026-12").dates == (date(2026, 12, 8), date(2026, 12, 9), date(2026, 12, 10),
                                          date(2026, 12, 15), date(2026, 12, 16), date(2026, 12, 17))


def test_fifth_week_may_be_empty():
    """A month without a fifth Tuesday has no dates in week 5; the next window skips it."""
    g = group(A, weekdays=["tue"], weeks_of_month=[5])
    assert window(g, "2027-02").dates == ()
    w = next_window(g, datetime(2027, 2, 1, tzinfo=ZoneInfo("UTC")))
    assert w.key == "2027-03" and w.dates == (date(2027, 3, 30),)


def test_next_window_is_in_the_groups_zone():
    """At 23:30 UTC on Monday 7 Dec it is already Tuesday in Kolkata: that Monday is gone there, not in New York."""
    now = datetime(2026, 12, 7, 23, 30, tzinfo=ZoneInfo("UTC"))
    kol = group(A, zone="Asia/Kolkata", weekdays=["mon"], weeks_of_month=[1, 2])
    ny = group(A, zone="America/New_York", weekdays=["mon"], weeks_of_month=[1, 2])
    assert next_window(kol, now).dates == (date(2026, 12, 14),)
    assert next_window(ny, now).dates == (date(2026, 12, 7), date(2026, 12, 14))


def test_past_window_moves_to_next_month():
    """Once this month's eligible dates are past, the next window is next month's."""
    g = group(A, weekdays=["tue"], weeks_of_month=[1])
    w = next_window(g, datetime(2026, 12, 20, tzinfo=ZoneInfo("UTC")))
    assert w.key == "2027-01" and w.dates == (date(2027, 1, 5),)


def test_weekly_and_biweekly_keys():
    """Weekly cycles are ISO weeks; biweekly ones are fortnights counted from the week the group started."""
    weekly = group(A, cadence="weekly", weekdays=["wed"])
    assert cycle_of(weekly, date(2026, 12, 31)) == "2026-W53"
    assert next_key(weekly, "2026-W53") == "2027-W01"
    assert window(weekly, "2027-W01").dates == (date(2027, 1, 6),)
    biweekly = group(A, cadence="biweekly", weekdays=["mon", "fri"])  # started Thu 2026-01-01, ISO week 1
    assert cycle_of(biweekly, date(2026, 1, 9)) == "2026-W01"
    assert cycle_of(biweekly, date(2026, 1, 12)) == "2026-W03"
    assert window(biweekly, "2026-W03").dates == (date(2026, 1, 12), date(2026, 1, 16),
                                                  date(2026, 1, 19), date(2026, 1, 23))
    assert next_key(biweekly, "2026-W03") == "2026-W05"


def test_monthly_next_key_wraps_the_year():
    """December's next cycle is January of the next year."""
    g = group(A)
    assert next_key(g, "2026-12") == "2027-01"
