"""The slot finder's rules: local hours per date across DST, holidays, away, busy, ranking."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from builders import busy, group, member, slots_on, starts_where_all_free, utc
from scheduler.core.availability import Availability, Busy
from scheduler.core.cycles import range_window
from scheduler.core.slots import find_slots


def span(first, last, minutes=15):
    out, t = [], first
    while t <= last:
        out.append(t)
        t += timedelta(minutes=minutes)
    return out


NY_LONDON = group(member("Ny", "America/New_York"), member("Lon", "Europe/London"))


@pytest.mark.parametrize(("day", "first", "last"), [
    # Both on standard time: NY 09:00 is 14:00 UTC, London's day ends 17:00 UTC.
    (date(2027, 3, 9), utc(2027, 3, 9, 14), utc(2027, 3, 9, 16)),
    # US on daylight time since 14 March, Europe not until 28 March: the overlap is an hour longer.
    (date(2027, 3, 16), utc(2027, 3, 16, 13), utc(2027, 3, 16, 16)),
    # Both on summer time.
    (date(2027, 3, 30), utc(2027, 3, 30, 13), utc(2027, 3, 30, 15)),
    # Europe back on standard time on 31 October, the US not until 7 November.
    (date(2027, 11, 2), utc(2027, 11, 2, 13), utc(2027, 11, 2, 16)),
    (date(2027, 11, 9), utc(2027, 11, 9, 14), utc(2027, 11, 9, 16)),
], ids=["march-both-standard", "march-us-summer-eu-winter", "april-both-summer",
        "november-eu-winter-us-summer", "november-both-standard"])
def test_us_and_europe_change_clocks_on_different_sundays(day, first, last):
    """The shared window of a New York and a London member moves with each side's own DST date."""
    assert starts_where_all_free(NY_LONDON, day) == span(first, last)


@pytest.mark.parametrize(("day", "first"), [
    (date(2027, 4, 1), utc(2027, 3, 31, 22, 30)),   # ACDT, UTC+10:30
    (date(2027, 4, 6), utc(2027, 4, 5, 23, 30)),    # ACST, UTC+9:30, after the first Sunday of April
    (date(2026, 10, 6), utc(2026, 10, 5, 22, 30)),  # ACDT again from the first Sunday of October
])
def test_southern_hemisphere_dst_adelaide(day, first):
    """Adelaide's 09:00 follows its own DST calendar (ends in April, starts in October), half-hour offset included."""
    g = group(member("Ade", "Australia/Adelaide"), zone="Australia/Adelaide")
    free = starts_where_all_free(g, day)
    assert free[0] == first
    assert free[-1] == first + timedelta(hours=7)  # last 60-minute start inside 09:00-17:00


@pytest.mark.parametrize(("zone", "day", "first"), [
    ("Asia/Kolkata", date(2027, 1, 12), utc(2027, 1, 12, 3, 30)),      # UTC+5:30 all year
    ("Asia/Kolkata", date(2027, 7, 13), utc(2027, 7, 13, 3, 30)),
    ("America/St_Johns", date(2027, 1, 12), utc(2027, 1, 12, 12, 30)),  # NST, UTC-3:30
    ("America/St_Johns", date(2027, 7, 13), utc(2027, 7, 13, 11, 30)),  # NDT, UTC-2:30
])
def test_half_hour_zones(zone, day, first):
    """Half-hour zones get candidates on their own half hours, and St John's follows its DST."""
    g = group(member("Half", zone), zone=zone)
    free = starts_where_all_free(g, day)
    assert free[0] == first
    assert all(c.verdicts[0].local_start.strftime("%H:%M") >= "09:00" for c in slots_on(g, day) if c.attendance)


def test_local_times_are_reported_in_each_members_zone():
    """Each verdict carries the start in that member's zone, e.g. 20:30 in Kolkata for 10:00 in New York."""
    g = group(member("Ny", "America/New_York", hours="09:00-17:00"),
              member("Kol", "Asia/Kolkata", hours="14:00-21:30"))
    best = slots_on(g, date(2026, 12, 10), top=1)[0]
    assert best.start == utc(2026, 12, 10, 14)  # 09:00 NY = 19:30 IST: both free, earliest
    ny, kol = best.verdicts
    assert ny.local_start.isoformat() == "2026-12-10T09:00:00-05:00"
    assert kol.local_start.isoformat() == "2026-12-10T19:30:00+05:30"


def test_outside_hours_reason_names_the_hours_and_local_time():
    """A member outside their hours is told which hours and what the local time would be."""
    g = group(member("Ny", "America/New_York"), member("Kol", "Asia/Kolkata"))
    c = next(c for c in slots_on(g, date(2026, 12, 10)) if c.start == utc(2026, 12, 10, 14))
    assert c.verdicts[1].reason == "outside 09:00–17:00 local (19:30 in Asia/Kolkata)"


def test_public_holiday_of_the_members_region():
    """A US member on Thanksgiving is unavailable with the holiday's name; a UK member is not."""
    g = group(member("Us", "America/New_York", holidays="US"), member("Uk", "Europe/London", holidays="GB"))
    best = slots_on(g, date(2026, 11, 26), top=1)[0]
    assert best.verdicts[0].status == "unavailable"
    assert best.verdicts[0].reason == "holiday: Thanksgiving Day"
    assert best.verdicts[1].status == "available"


def test_subdivision_holiday():
    """A Scottish member (GB-SCT) is off on St Andrew's Day; an English one (GB-ENG) is not."""
    g = group(member("Sct", "Europe/London", holidays="GB-SCT"), member("Eng", "Europe/London", holidays="GB-ENG"),
              zone="Europe/London")
    best = slots_on(g, date(2027, 11, 30), top=1)[0]
    assert best.verdicts[0].reason == "holiday: Saint Andrew's Day"
    assert best.verdicts[1].status == "available"


def test_away_dates_are_inclusive():
    """`away` blocks both its first and last local date, and nothing outside them."""
    g = group(member("Ny", "America/New_York", away=[{"from": date(2026, 12, 14), "to": date(2026, 12, 15)}]))
    for day, blocked in ((date(2026, 12, 11), False), (date(2026, 12, 14), True),
                         (date(2026, 12, 15), True), (date(2026, 12, 16), False)):
        cands = slots_on(g, day)
        assert (not cands) == blocked, day  # nobody else in the group: blocked days have no candidates


def test_member_weekdays_in_their_own_zone():
    """A Monday-Friday member in Kolkata is off on Saturday morning there, even when it is Friday in New York."""
    g = group(member("Ny", "America/New_York", hours="00:00-24:00", weekdays=["fri"]),
              member("Kol", "Asia/Kolkata", hours="00:00-24:00"))
    cands = {c.start: c for c in slots_on(g, date(2026, 12, 11))}
    late_friday_ny = cands[utc(2026, 12, 11, 20)]  # Fri 15:00 NY = Sat 01:30 IST
    assert late_friday_ny.verdicts[1].reason == "not a working day (Saturday in Asia/Kolkata)"
    early_friday_ny = cands[utc(2026, 12, 11, 14)]  # Fri 09:00 NY = Fri 19:30 IST
    assert early_friday_ny.verdicts[1].status == "available"


def test_busy_tentative_and_unknown_weights():
    """Expected attendance counts free as 1, tentative and unknown as a half, busy as 0."""
    g = group(*(member(n, "Europe/London") for n in ("A", "B", "C", "D")), zone="Europe/London")
    at = utc(2027, 2, 2, 10)
    avail = {
        "b@uni.example": busy(at, at + timedelta(hours=1), tentative=True),
        "c@uni.example": Availability.unreadable("the calendar feed answered HTTP 404"),
        "d@uni.example": busy(at - timedelta(minutes=30), at + timedelta(minutes=15)),
    }
    c = next(c for c in slots_on(g, date(2027, 2, 2), avail) if c.start == at)
    assert c.expected == 2.0 and c.attendance == 0.5
    assert [v.status for v in c.verdicts] == ["available", "tentative", "tentative", "unavailable"]
    assert c.verdicts[2].reason == "calendar unknown: the calendar feed answered HTTP 404"
    assert c.verdicts[3].reason == "busy"


def test_meeting_may_touch_but_not_overlap_busy_time():
    """A meeting that ends as a busy event begins (or starts as it ends) is fine; a minute of overlap is not."""
    g = group(member("A", "Europe/London"), zone="Europe/London")
    avail = {"a@uni.example": busy(utc(2027, 2, 2, 12), utc(2027, 2, 2, 13))}
    free = starts_where_all_free(g, date(2027, 2, 2), avail)
    assert utc(2027, 2, 2, 11) in free and utc(2027, 2, 2, 13) in free
    assert utc(2027, 2, 2, 11, 15) not in free and utc(2027, 2, 2, 12, 45) not in free


def test_busy_overrides_tentative_in_either_order():
    """Overlapping tentative and opaque events leave the member busy, whichever comes first."""
    g = group(member("A", "Europe/London"), member("B", "Europe/London"), zone="Europe/London")
    at = utc(2027, 2, 2, 10)
    for order in (False, True), (True, False):
        avail = {"a@uni.example": Availability(tuple(Busy(at, at + timedelta(hours=1), t) for t in order))}
        c = next(c for c in slots_on(g, date(2027, 2, 2), avail) if c.start == at)
        assert c.verdicts[0].reason == "busy"


def test_ranking_attendance_then_preferred_hours_then_earliest():
    """More attendance wins; among equals a slot inside preferred hours beats an earlier one."""
    g = group(member("A", "Europe/London", preferred_hours="14:00-16:00"),
              member("B", "Europe/London"), zone="Europe/London")
    avail = {"b@uni.example": busy(utc(2027, 2, 2, 9), utc(2027, 2, 2, 10))}
    ranked = slots_on(g, date(2027, 2, 2), avail)
    assert ranked[0].start == utc(2027, 2, 2, 14)  # 2 attend + preferred
    assert ranked[0].preferred == 1
    full = [c for c in ranked if c.attendance == 1.0]
    assert [c.start for c in full if not c.preferred] == sorted(c.start for c in full if not c.preferred)
    assert ranked[-1].attendance == 0.5  # B busy at 09:00 ranks last


def test_required_member_and_quorum():
    """A slot without a required member, or below quorum, ranks after every slot that can go ahead."""
    g = group(member("Coord", "Europe/London", required=True), member("B", "Europe/London"),
              member("C", "Europe/London"), zone="Europe/London", quorum=0.6)
    day = date(2027, 2, 2)
    avail = {"coord@uni.example": busy(utc(2027, 2, 2, 9), utc(2027, 2, 2, 12)),
             "c@uni.example": busy(utc(2027, 2, 2, 12), utc(2027, 2, 2, 17))}
    ranked = slots_on(g, day, avail)
    # 09:00-12:00: B and C free (2 of 3 = 0.67 >= 0.6) but the coordinator is busy.
    # 12:00-17:00: coordinator and B free (0.67): viable.
    assert ranked[0].viable and ranked[0].start == utc(2027, 2, 2, 12)
    first_nonviable = next(i for i, c in enumerate(ranked) if not c.viable)
    assert all(not c.viable for c in ranked[first_nonviable:])
    assert any(c.start == utc(2027, 2, 2, 9) and not c.viable for c in ranked)


def test_not_before_and_grid():
    """No candidate starts before `not_before`; starts sit on the 15-minute grid from local midnight."""
    g = group(member("Kol", "Asia/Kolkata", hours="00:00-24:00"), zone="Asia/Kolkata")
    ranked = slots_on(g, date(2027, 2, 2), not_before=utc(2027, 2, 2, 3, 7))
    assert min(c.start for c in ranked) == utc(2027, 2, 2, 3, 15)
    assert {c.verdicts[0].local_start.minute for c in ranked} <= {0, 15, 30, 45}


def test_distinct_and_top():
    """`distinct` skips options overlapping a better one; `top` limits how many are returned."""
    g = group(member("A", "Europe/London"), zone="Europe/London")
    ranked = slots_on(g, date(2027, 2, 2), top=3, distinct=True)
    assert [c.start for c in ranked] == [utc(2027, 2, 2, 9), utc(2027, 2, 2, 10), utc(2027, 2, 2, 11)]


def test_group_weekdays_apply_in_the_groups_zone():
    """A range window keeps only the group's meeting weekdays, counted in the group's zone."""
    g = group(member("A", "Europe/London"), zone="Australia/Adelaide", weekdays=["tue"])
    w = range_window(g, date(2027, 2, 1), date(2027, 2, 14))
    assert w.dates == (date(2027, 2, 2), date(2027, 2, 9))
    starts = [c.start for c in find_slots(g, w, {}) if c.start < utc(2027, 2, 5)]
    # Tuesday in Adelaide (UTC+10:30) runs from Monday 13:30 to Tuesday 13:30 UTC: London's
    # Monday afternoon and Tuesday morning both fall inside it.
    assert min(starts) == utc(2027, 2, 1, 13, 30)
    assert max(starts) == utc(2027, 2, 2, 13, 15)  # starts on Tuesday 23:45 in Adelaide
    assert utc(2027, 2, 1, 16, 15) not in starts and utc(2027, 2, 2, 9) in starts


def test_nobody_can_come_gives_no_candidates():
    """A window where no member can attend yields an empty list, not a slot with zero attendance."""
    g = group(member("A", "Europe/London", weekdays=["mon"]), zone="Europe/London")
    assert slots_on(g, date(2027, 2, 2)) == []


def test_naive_not_before_is_refused():
    """A naive datetime is a bug in the caller and fails loudly."""
    from datetime import datetime
    g = group(member("A", "Europe/London"))
    with pytest.raises(ValueError):
        slots_on(g, date(2027, 2, 2), not_before=datetime(2027, 2, 2, 9))
