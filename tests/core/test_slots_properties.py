"""Properties of the slot finder, checked against a direct, slow reading of the rules."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.core.availability import Availability, Busy, holiday_name
from scheduler.core.config import Group
from scheduler.core.cycles import range_window
from scheduler.core.slots import find_slots

ZONES = ["America/New_York", "Europe/London", "Asia/Kolkata", "America/St_Johns", "Australia/Adelaide",
         "America/Phoenix", "Pacific/Auckland", "Asia/Kathmandu", "UTC"]
# Windows that straddle DST changes: US spring, EU spring, EU/US autumn gap, southern autumn.
STARTS = [date(2027, 3, 12), date(2027, 3, 26), date(2027, 10, 30), date(2027, 4, 2), date(2027, 1, 12)]
UTC = ZoneInfo("UTC")


@st.composite
def hours(draw):
    start = draw(st.integers(0, 22 * 4)) * 15
    end = draw(st.integers(start // 15 + 1, 96)) * 15
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


@st.composite
def scenario(draw):
    first = draw(st.sampled_from(STARTS))
    days = draw(st.integers(1, 4))
    members, availability = [], {}
    for i in range(draw(st.integers(1, 5))):
        email = f"m{i}@uni.example"
        m = {"name": f"M{i}", "email": email, "timezone": draw(st.sampled_from(ZONES)),
             "hours": draw(hours()),
             "weekdays": draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                                       min_size=1, max_size=7)),
             "required": draw(st.booleans()) and i == 0}
        if draw(st.booleans()):
            m["holidays"] = draw(st.sampled_from(["US", "GB", "IN", "AU-SA", "CA-NL"]))
        if draw(st.booleans()):
            a = first + timedelta(days=draw(st.integers(-1, 4)))
            m["away"] = [{"from": a, "to": a + timedelta(days=draw(st.integers(0, 2)))}]
        members.append(m)
        if draw(st.integers(0, 5)) == 0:
            availability[email] = Availability.unreadable("feed timed out")
            continue
        base = datetime.combine(first, time(0), UTC)
        busy = []
        for _ in range(draw(st.integers(0, 12))):
            s = base + timedelta(minutes=draw(st.integers(-24 * 60, (days + 1) * 24 * 60)))
            busy.append(Busy(s, s + timedelta(minutes=draw(st.integers(1, 8 * 60))), draw(st.booleans())))
        availability[email] = Availability(tuple(busy))
    # Fairness: some members carry a recent burden (the rank key must stay a total order with it).
    burden = {m["email"]: draw(st.sampled_from([0.0, 0.8, 1.0, 1.8])) for m in members if draw(st.booleans())}
    g = Group.model_validate({
        "id": "g", "name": "G", "timezone": draw(st.sampled_from(ZONES)), "started": date(2026, 1, 1),
        "coordinators": [members[0]["email"]], "members": members,
        "meetings": {"weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                     "duration_minutes": draw(st.sampled_from([30, 45, 60, 90])),
                     "quorum": draw(st.sampled_from([0.25, 0.5, 1.0]))},
    })
    return g, range_window(g, first, first + timedelta(days=days - 1)), availability, burden


def _changes_clocks(day: date, zone: ZoneInfo) -> bool:
    """Whether the zone's offset changes during this local date."""
    first = datetime.combine(day, time(0), zone).utcoffset()
    return first != datetime.combine(day + timedelta(days=1), time(0), zone).utcoffset() or \
        first != datetime.combine(day, time(23, 59), zone).utcoffset()


def reference(member, avail: Availability, start: datetime, end: datetime) -> str:
    """The rules read literally, in local wall-clock terms: 'available', 'tentative' or 'unavailable'."""
    zone = ZoneInfo(member.timezone)
    ls, le = start.astimezone(zone), end.astimezone(zone)
    day = ls.date()
    h = member.hours
    ends_at_midnight = le.date() == day + timedelta(days=1) and le.time() == time(0)
    if le.date() != day and not ends_at_midnight:
        return "unavailable"
    end_minutes = 24 * 60 if ends_at_midnight else le.hour * 60 + le.minute
    if _changes_clocks(day, zone):
        # On a DST-change day wall-clock comparisons are ambiguous (an hour is skipped or
        # repeated). The documented rule: hours run from the instant the clock first shows
        # their start to the instant it first shows their end (zoneinfo fold=0).
        lo = datetime.combine(day, time(h.start // 60, h.start % 60), zone)
        hi = (datetime.combine(day + timedelta(days=1), time(0), zone) if h.end == 24 * 60
              else datetime.combine(day, time(h.end // 60, h.end % 60), zone))
        start_ok, end_ok = lo <= start, end <= hi
    else:
        start_ok, end_ok = h.start <= ls.hour * 60 + ls.minute, end_minutes <= h.end
    if not (start_ok and end_ok):
        return "unavailable"
    if day.weekday() not in member.weekdays or any(a.start <= day <= a.end for a in member.away):
        return "unavailable"
    if holiday_name(member.holidays, day):
        return "unavailable"
    if avail.unknown:
        return "tentative"
    overlapping = [b for b in avail.busy if b.start < end and start < b.end]
    if any(not b.tentative for b in overlapping):
        return "unavailable"
    return "tentative" if overlapping else "available"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_verdicts_match_the_rules_and_ranking_holds(case):
    """Nobody listed available is busy, away or outside their hours; every verdict matches the rules;
    each member appears once; attendance adds up; candidates come in ranking order."""
    g, window, availability, burden = case
    candidates = find_slots(g, window, availability, burden=burden)
    keys = [c.rank_key for c in candidates]
    assert keys == sorted(keys)
    group_dates = set(window.dates)
    for c in candidates:
        assert c.start.astimezone(g.tz).date() in group_dates
        assert len(c.verdicts) == len(g.members)
        weight = 0.0
        for m, v in zip(g.members, c.verdicts):
            avail = availability.get(m.email, Availability())
            assert v.status == reference(m, avail, c.start, c.end), (m, v, c.start)
            assert (v.reason == "") == (v.status == "available")
            weight += {"available": 1.0, "tentative": 0.5, "unavailable": 0.0}[v.status]
        assert abs(weight - c.expected) < 1e-9 and c.expected > 0
        required_ok = all(v.status != "unavailable" for m, v in zip(g.members, c.verdicts) if m.required)
        assert c.viable == (required_ok and c.expected >= g.meetings.quorum * len(g.members) - 1e-9)
        # The fairness cost is the burden of attendees for whom the slot is inconvenient.
        assert abs(c.fairness - sum(burden.get(e, 0.0) for e in c.inconvenient)) < 1e-6
        assert set(c.inconvenient) <= {v.email for v in c.verdicts if v.status != "unavailable"}


@settings(max_examples=60, deadline=None)
@given(scenario(), st.integers(1, 6))
def test_distinct_top_is_a_prefix_of_the_ranking_without_overlaps(case, top):
    """With distinct=True the options never overlap each other and keep the ranking order."""
    g, window, availability, burden = case
    picked = find_slots(g, window, availability, top=top, distinct=True, burden=burden)
    assert len(picked) <= top
    for a, b in zip(picked, picked[1:]):
        assert a.rank_key <= b.rank_key
    for i, a in enumerate(picked):
        for b in picked[i + 1:]:
            assert a.end <= b.start or b.end <= a.start
