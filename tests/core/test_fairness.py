"""Fairness across time zones: recent burden from past meetings, and sparing the burdened."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from builders import group, member, slots_on, utc
from scheduler.core.config import Config, Service
from scheduler.core.cycles import range_window
from scheduler.core.meetings import Meeting
from scheduler.core.planner import StateView, past_burden, plan
from scheduler.cli.slotreport import as_table, why_best
from scheduler.core.history import inconvenient_for, recent_burden
from scheduler.core.slots import find_slots

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import fairness as year  # noqa: E402  (benchmarks/ is not a package)

HOUR = timedelta(hours=1)


def meeting(start: datetime) -> tuple[datetime, datetime]:
    return start, start + HOUR


LON = member("Lon", "Europe/London", hours="07:00-22:00", preferred_hours="09:00-17:00")


def test_burden_is_judged_in_local_wall_clock_time_across_dst():
    """08:30 UTC is 08:30 in London in winter (before preferred 09:00) but 09:30 in summer (inside)."""
    g = group(LON)
    lon = g.members[0]
    winter, summer = meeting(utc(2027, 3, 23, 8, 30)), meeting(utc(2027, 3, 30, 8, 30))  # BST from 28 March
    assert inconvenient_for(lon, *winter) is True
    assert inconvenient_for(lon, *summer) is False
    b = recent_burden(g, [summer, winter])
    assert b.counts[lon.email] == (1, 2)
    assert b[lon.email] == 0.8  # the winter meeting is one meeting older than the latest


def test_burden_counts_only_meetings_the_member_could_attend_and_only_the_recent_ones():
    """A meeting outside a member's hours adds nothing; only the last six meetings count, the latest weighing most."""
    g = group(member("Ny", "America/New_York", hours="07:00-20:00", preferred_hours="09:00-17:00"))
    ny = g.members[0].email
    early = [meeting(utc(2027, 1, 5, 12) + timedelta(weeks=k)) for k in range(8)]  # 07:00 EST: inconvenient
    assert recent_burden(g, early).counts[ny] == (6, 6)
    assert abs(recent_burden(g, early)[ny] - sum(0.8 ** k for k in range(6))) < 1e-9
    night = [meeting(utc(2027, 1, 5, 3))]                               # 22:00 EST: cannot attend
    assert recent_burden(g, night)[ny] == 0
    assert recent_burden(g, [])[ny] == 0


def test_member_without_preferred_hours_uses_the_default_comfortable_band():
    """Without preferred_hours, 07:00 local is inconvenient (outside 08:00-18:00) and 10:00 is not."""
    g = group(member("Ny", "America/New_York", hours="06:00-21:00"))
    ny = g.members[0]
    assert inconvenient_for(ny, *meeting(utc(2027, 1, 5, 12))) is True    # 07:00 EST
    assert inconvenient_for(ny, *meeting(utc(2027, 1, 5, 15))) is False   # 10:00 EST


# On 12 January 2027 (London on UTC, Kolkata UTC+5:30), on an hourly grid, both can come
# 07:00-16:00 UTC; before 11:00 UTC it is early for London, from 12:00 UTC late for
# Kolkata: each option with both present has exactly one of them in preferred hours.
PAIR_MEMBERS = (member("Lon", "Europe/London", hours="07:00-22:00", preferred_hours="11:00-17:00"),
                member("Kol", "Asia/Kolkata", hours="07:00-23:00", preferred_hours="09:00-17:00"))
PAIR = group(*PAIR_MEMBERS, zone="UTC", grid_minutes=60)
DAY = date(2027, 1, 12)


def _ranked(burden=None):
    return [c for c in slots_on(PAIR, DAY, burden=burden) if c.expected == 2]


def test_with_equal_attendance_the_member_with_higher_burden_is_spared():
    """Among options with the same attendance and preferred count, the one inconvenient only for the less burdened wins."""
    lon, kol = (m.email for m in PAIR.members)
    plain = _ranked()
    best = plain[0]
    assert best.preferred == 1 and best.inconvenient == (lon,)  # earliest: 07:00 UTC is early for London
    spared = _ranked({lon: 2.0, kol: 0.5})[0]
    assert spared.preferred == 1 and spared.inconvenient == (kol,)
    assert spared.fairness == 0.5
    assert spared.start > best.start


def test_without_burden_the_order_is_unchanged():
    """An empty or zero burden gives exactly the ranking of a call without one."""
    lon, kol = (m.email for m in PAIR.members)
    plain = [c.start for c in slots_on(PAIR, DAY)]
    assert [c.start for c in slots_on(PAIR, DAY, burden={})] == plain
    assert [c.start for c in slots_on(PAIR, DAY, burden={lon: 0.0, kol: 0.0})] == plain
    assert all(c.fairness == 0 for c in slots_on(PAIR, DAY))


def test_why_best_names_the_member_spared_and_their_recent_meetings():
    """The slots explanation says fairness decided, naming whom it spared and how many recent meetings were awkward."""
    lon, kol = PAIR.members
    # Three early mornings for London; the fourth (a Saturday) neither could attend.
    history = [meeting(utc(2026, 12, 8 + 7 * k, 8)) for k in range(3)] + [meeting(utc(2027, 1, 2, 13))]
    burden = recent_burden(PAIR, history)
    assert burden.counts[lon.email] == (3, 4) and burden[kol.email] == 0
    options = find_slots(PAIR, range_window(PAIR, DAY, DAY), {}, burden=burden, top=2, distinct=True)
    assert options[0].spared == (lon.email,)
    text = why_best(options, 2, PAIR, burden)
    assert text == ("it ties with the next option on attendance and preferred hours; it was chosen over an "
                    "earlier time as these because it spares Lon, who had 3 of the last 4 meetings "
                    "outside their preferred hours.")
    assert text in as_table(PAIR, range_window(PAIR, DAY, DAY), options, burden)
    # When the runner-up is the one that would burden Lon, the sentence compares the two directly.
    two = [options[0], *[c for c in find_slots(PAIR, range_window(PAIR, DAY, DAY), {}, burden=burden)
                         if lon.email in c.inconvenient][:1]]
    assert why_best(two, 2, PAIR, burden) == (
        "it ties with the next option on attendance and preferred hours, and spares Lon, "
        "who had 3 of the last 4 meetings outside their preferred hours.")


def test_planner_passes_burden_from_past_meetings():
    """The planner spares the member who had the last meetings at inconvenient hours."""
    lon, kol = (m.email for m in PAIR.members)
    g = group(*PAIR_MEMBERS, zone="UTC", grid_minutes=60, weekdays=["tue"], weeks_of_month=[2])
    config = Config(folder=Path("/nonexistent"), service=Service(), groups={g.id: g})
    past = {(g.id, f"2026-{m:02d}"): Meeting(g.id, f"2026-{m:02d}", f"u{m}@x", 0, s, s + HOUR, stamp=s)
            for m, s in ((10, utc(2026, 10, 13, 8)), (11, utc(2026, 11, 10, 8)), (12, utc(2026, 12, 8, 8)))}
    state = StateView(past, frozenset(), {}, {})
    now = utc(2026, 12, 22, 12)
    assert past_burden(g, state, now).counts[lon] == (3, 3)
    chosen = plan(config, state, now, lambda group, window: {}).meetings
    assert len(chosen) == 1
    assert chosen[0].start.astimezone(PAIR.members[0].tz).hour >= 11  # inside London's preferred hours
    fresh = plan(config, StateView.empty(), now, lambda group, window: {}).meetings
    assert fresh[0].start < chosen[0].start  # without history: the earliest, early for London


def test_a_simulated_year_spreads_inconvenience_no_worse_than_earliest():
    """Over 2027 for a five-zone group, the fair policy's max-min spread of inconvenient meetings is at most the earliest policy's."""
    g = year.year_group()
    earliest, fair = year.simulate(g, fair=False), year.simulate(g, fair=True)
    assert len(earliest.meetings) == len(fair.meetings) == 12
    assert fair.spread <= earliest.spread
    assert max(fair.inconvenient.values()) < max(earliest.inconvenient.values())
    assert sum(fair.inconvenient.values()) == sum(earliest.inconvenient.values())
