"""Consistency: among options equal on everything else, the group's usual weekday and time."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from builders import busy, group, member, utc

from scheduler.core.config import Config, Service
from scheduler.core.cycles import range_window
from scheduler.core.meetings import Meeting
from scheduler.core.planner import StateView, past_usual, plan
from scheduler.cli.slotreport import why_best
from scheduler.core.history import Usual, recent_burden, usual_time
from scheduler.core.slots import find_slots

HOUR = timedelta(hours=1)
NY = member("Ny", "America/New_York", hours="08:00-18:00")
LA = member("La", "America/Los_Angeles", hours="07:00-17:00")


def new_york_group(**meetings):
    return group(NY, LA, zone="America/New_York", grid_minutes=60, **meetings)


def local(g, dt: datetime) -> datetime:
    return dt.astimezone(g.tz)


def test_usual_time_is_the_most_common_local_weekday_and_start_across_dst():
    """Three Wednesdays at 11:00 New York time, one each side of the March change (15:00 and
    16:00 UTC) and a Tuesday at 14:00: the usual time is Wednesdays at 11:00, local."""
    g = new_york_group()
    starts = [utc(2027, 2, 10, 16), utc(2027, 3, 10, 16), utc(2027, 4, 14, 15), utc(2027, 5, 11, 18)]
    usual = usual_time(g, starts)
    assert usual == Usual(2, 11 * 60) and str(usual) == "Wednesdays at 11:00"
    assert usual_time(g, []) is None


def test_a_tie_between_usual_times_goes_to_the_most_recent():
    """One meeting each on Tuesday 10:00 and Thursday 15:00: the later one is the usual time."""
    g = new_york_group()
    assert usual_time(g, [utc(2027, 1, 12, 15), utc(2027, 2, 11, 20)]) == Usual(3, 15 * 60)


def test_only_the_last_meetings_count():
    """Four old meetings on Mondays, then the group moved to Thursdays: the last six decide."""
    g = new_york_group()
    mondays = [utc(2026, 1, 5, 15) + timedelta(weeks=k) for k in range(4)]
    thursdays = [utc(2026, 3, 5, 15) + timedelta(weeks=k) for k in range(4)]
    assert usual_time(g, mondays + thursdays).weekday == 3


def test_the_usual_time_wins_among_equal_options_and_only_then():
    """Everyone is free all week: without history the earliest start wins; with a usual
    Wednesday 11:00 (New York), that start wins; nothing outranks attendance for it."""
    g = new_york_group()
    window = range_window(g, date(2027, 6, 7), date(2027, 6, 11))   # Monday to Friday
    earliest = find_slots(g, window, {})[0]
    assert local(g, earliest.start).strftime("%a %H:%M") == "Mon 10:00"  # 07:00 in Los Angeles
    usual = Usual(2, 11 * 60)
    best, second = find_slots(g, window, {}, usual=usual, top=2, distinct=True)
    assert local(g, best.start).strftime("%a %H:%M") == "Wed 11:00" and best.off_usual == (0, 0)
    assert why_best([best, second], 2, g, usual=usual) == (
        "it ties with the next option on attendance, preferred hours and fairness, and is at the group's usual "
        "time (Wednesdays at 11:00, America/New_York).")
    # Los Angeles cannot come at 10:00 New York on Wednesday if its calendar is busy then: attendance first.
    busy_wed = {LA["email"]: busy(utc(2027, 6, 9, 14), utc(2027, 6, 9, 17))}
    moved = find_slots(g, window, busy_wed, usual=usual)[0]
    assert moved.expected == 2 and local(g, moved.start).strftime("%a %H:%M") != "Wed 11:00"
    assert local(g, moved.start).strftime("%a") == "Wed" and moved.off_usual[0] == 0  # still the usual day


def test_fairness_outranks_consistency():
    """The group usually meets Tuesdays at 11:00 UTC, 06:00 in New York: inconvenient there, and
    the New York member carried it the last four times. Fairness moves the meeting to 13:00 UTC
    (08:00 New York); without that burden, the usual 11:00 is kept."""
    lon = member("Lon", "Europe/London", hours="06:00-22:00")
    ny = member("Ny2", "America/New_York", hours="06:00-22:00")
    g = group(lon, ny, zone="UTC", grid_minutes=60, weekdays=["tue"])
    window = range_window(g, date(2027, 1, 12), date(2027, 1, 12))
    past = [utc(2026, 12, 8, 11) - timedelta(weeks=k) for k in range(4)]
    usual = usual_time(g, past)
    assert usual == Usual(1, 11 * 60)
    burden = recent_burden(g, [(s, s + HOUR) for s in past])
    assert burden.counts[ny["email"]] == (4, 4) and burden[lon["email"]] == 0
    fair = find_slots(g, window, {}, burden=burden, usual=usual)[0]
    assert fair.start == utc(2027, 1, 12, 13) and fair.fairness == 0
    assert find_slots(g, window, {}, usual=usual)[0].start == utc(2027, 1, 12, 11)


def test_the_planner_keeps_the_group_at_its_usual_time():
    """Monthly, second week, any weekday: after three meetings on Thursdays at 14:00 New York
    time the planner chooses Thursday 14:00 again, where without history it takes the earliest."""
    g = new_york_group(weekdays=["mon", "tue", "wed", "thu", "fri"], weeks_of_month=[2])
    config = Config(folder=Path("/nonexistent"), service=Service(), groups={g.id: g})
    past = {(g.id, c): Meeting(g.id, c, f"{c}@x", 0, s, s + HOUR, stamp=s)
            for c, s in (("2027-01", utc(2027, 1, 14, 19)), ("2027-02", utc(2027, 2, 11, 19)),
                         ("2027-03", utc(2027, 3, 11, 19)))}  # 14:00 EST, 14:00 EST, 14:00 EST
    state = StateView(past, frozenset(), {}, {})
    now = utc(2027, 3, 25, 12)  # April's window (5-9 April) opens for invites
    assert past_usual(g, state, now) == Usual(3, 14 * 60)
    [chosen] = plan(config, state, now, lambda group, window: {}).meetings
    assert local(g, chosen.start).strftime("%a %d %H:%M") == "Thu 08 14:00"  # 18:00 UTC after the DST change
    [fresh] = plan(config, StateView.empty(), now, lambda group, window: {}).meetings
    assert local(g, fresh.start).strftime("%a %d %H:%M") == "Thu 08 10:00"


def test_usual_time_is_local_in_europe_and_in_a_half_hour_zone_across_their_dst_changes():
    """London (BST from 28 March 2027) and St John's (UTC-3:30/-2:30, from 14 March): the same
    local start on both sides of the change is one usual time, though its UTC hour moved."""
    for zone, before, after, local in (
            ("Europe/London", utc(2027, 3, 23, 14), utc(2027, 3, 30, 13), (1, 14 * 60)),
            ("America/St_Johns", utc(2027, 3, 9, 13, 30), utc(2027, 3, 16, 12, 30), (1, 10 * 60))):
        g = group(member("A", zone), member("B", zone), zone=zone)
        assert usual_time(g, [before, after, utc(2027, 3, 4, 9)]) == Usual(*local), zone
