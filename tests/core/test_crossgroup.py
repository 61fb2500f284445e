"""People in several groups, pure: another group's meeting is busy time for the members it
shares (only them), groups are planned in id order in one tick, a member gets one call for
items a week naming each group, and emails never name another group."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.app.templates import load_templates
from scheduler.compose.select import World, message_for
from scheduler.core import crossgroup
from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Config, Group, Service
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import Kind, OutboxRecord
from builders import PlannedState as State

MAYA = {"name": "Maya Chen", "email": "Maya.Chen@uni-a.example", "timezone": "America/New_York"}
ANA = {"name": "Ana Souza", "email": "ana@uni-c.example", "timezone": "Europe/London"}
RAVI = {"name": "Ravi Iyer", "email": "ravi@uni-b.example", "timezone": "Asia/Kolkata", "hours": "14:00-23:00"}
LENA = {"name": "Lena Berg", "email": "lena@uni-d.example", "timezone": "Europe/Berlin"}
JO = {"name": "Jo Park", "email": "jo@uni-e.example", "timezone": "America/Chicago"}
SAM = {"name": "Sam Lee", "email": "sam@uni-f.example", "timezone": "Australia/Sydney", "hours": "06:00-22:00"}
ANY_TIME = {"hours": "00:00-24:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


def grp(gid: str, name: str, members: list[dict], coordinator: dict = MAYA, **meetings) -> Group:
    return Group.model_validate({
        "id": gid, "name": name, "timezone": "America/New_York", "started": date(2026, 6, 2),
        "coordinators": [coordinator["email"]], "members": members,
        "meetings": {"weekdays": ["tue", "wed", "thu"], "weeks_of_month": [2, 3], **meetings},
    })


def cfg(*groups: Group) -> Config:
    return Config(folder=Path("/nonexistent"), service=Service(), groups={g.id: g for g in groups})


def free(group, window):
    return {}


def overlap(a: Meeting, b: Meeting) -> bool:
    return a.start < b.end and b.start < a.end


def test_sharing_is_by_email_ignoring_case_and_sets_are_transitive():
    """Maya (written in mixed case) links a and b, Ana links b and c: one set {a, b, c}; d alone."""
    a = grp("a", "A", [MAYA, RAVI])
    b = grp("b", "B", [{**MAYA, "email": "maya.chen@UNI-A.example"}, ANA])
    c = grp("c", "C", [ANA, LENA], coordinator=ANA)
    d = grp("d", "D", [JO], coordinator=JO)
    config = cfg(d, c, b, a)
    assert crossgroup.planning_order(config) == ("a", "b", "c", "d")
    shares = crossgroup.shared_with(config)
    assert shares["a"] == {"b": frozenset({"maya.chen@uni-a.example"})}
    assert shares["b"] == {"a": frozenset({"maya.chen@uni-a.example"}), "c": frozenset({"ana@uni-c.example"})}
    assert "d" not in shares
    assert crossgroup.sharing_sets(config) == (("a", "b", "c"), ("d",))


def _sets_by_pairs(config: Config) -> tuple[tuple[str, ...], ...]:
    """The sharing sets as first written: groups joined pair by pair, by `shared_with`."""
    sets = {g: {g} for g in config.groups}
    for a, others in crossgroup.shared_with(config).items():
        for b in others:
            if sets[a] is not sets[b]:
                merged = sets[a] | sets[b]
                for g in merged:
                    sets[g] = merged
    return tuple(sorted({tuple(sorted(s)) for s in sets.values()}))


@pytest.mark.parametrize("seed", range(12))
def test_sharing_sets_are_those_of_the_groups_joined_pair_by_pair(seed):
    """Joined member by member, the sets are the connected groups that joining every pair of groups
    that share someone gives, for random memberships (chains, stars, people in no other group)."""
    import random
    rnd = random.Random(seed)
    people = [{"name": f"P{i}", "email": f"p{i}@uni.example", "timezone": "Europe/London"} for i in range(30)]
    groups = []
    for n in range(rnd.randint(1, 25)):
        members = rnd.sample(people, rnd.randint(1, 4))
        groups.append(grp(f"g{n:02d}", f"G{n}", members, coordinator=members[0]))
    config = cfg(*reversed(groups))
    assert crossgroup.sharing_sets(config) == _sets_by_pairs(config)


def test_one_person_in_every_group_makes_one_set_without_pairing_the_groups():
    """A coordinator in each of 3,000 groups: one set of them all, found without joining the
    4.5 million pairs of groups (a generous bound: it took seconds, and grew with the square)."""
    import time
    base = grp("x", "X", [MAYA, ANA])
    config = cfg(*(base.model_copy(update={"id": f"g{n:04d}"}) for n in range(3000)), grp("solo", "S", [JO], coordinator=JO))
    started = time.monotonic()
    sets = crossgroup.sharing_sets(config)
    assert time.monotonic() - started < 30
    assert sets == (tuple(f"g{n:04d}" for n in range(3000)), ("solo",))


def test_busy_elsewhere_is_for_shared_members_only_and_named_only_when_asked():
    """Another group's meeting is busy for the member both share, not for the rest of the group;
    it says "another friendtor group's meeting" unless named (for `slots`)."""
    a, b = grp("a", "Second Circle", [MAYA, RAVI]), grp("b", "First Circle", [MAYA, ANA])
    config = cfg(a, b)
    start = datetime(2027, 3, 10, 15, tzinfo=UTC)
    theirs = Meeting("a", "2027-03", "u", 0, start, start + timedelta(hours=1), stamp=start)
    lo, hi = start - timedelta(days=1), start + timedelta(days=1)
    found = crossgroup.busy_elsewhere(config, b, [theirs], lo, hi)
    assert found == {"maya.chen@uni-a.example": (Busy(theirs.start, theirs.end, label=crossgroup.OTHER_GROUP),)}
    named = crossgroup.busy_elsewhere(config, b, [theirs], lo, hi, named=True)
    assert named["maya.chen@uni-a.example"][0].label == "Second Circle meeting"
    cancelled = Meeting("a", "2027-03", "u", 3, start, start + timedelta(hours=1), stamp=start, cancelled=True)
    assert crossgroup.busy_elsewhere(config, b, [cancelled], lo, hi) == {}
    assert crossgroup.busy_elsewhere(config, b, [theirs], hi, hi + timedelta(days=1)) == {}


TUE_THU, MON_FRI = ["tue", "wed", "thu"], ["mon", "tue", "wed", "thu", "fri"]
WINDOWS = [  # (weeks of the month, weekdays, the tick that opens the window, the cycle)
    ([2, 3], TUE_THU, datetime(2027, 2, 16, 12, tzinfo=UTC), "2027-03"),   # the US springs forward on 14 March
    ([4, 5], TUE_THU, datetime(2027, 3, 4, 12, tzinfo=UTC), "2027-03"),    # Europe on 28 March
    ([1], TUE_THU, datetime(2027, 10, 12, 12, tzinfo=UTC), "2027-11"),     # Europe is back, the US not yet
    ([1, 2], TUE_THU, datetime(2027, 10, 12, 12, tzinfo=UTC), "2027-11"),  # the US falls back on 7 November
    ([1], MON_FRI, datetime(2027, 9, 10, 12, tzinfo=UTC), "2027-10"),      # Sydney springs forward on 3 October
]


@pytest.mark.parametrize("weeks, weekdays, now, cycle", WINDOWS,
                         ids=["us-spring", "eu-spring", "eu-fall-gap", "us-fall", "au-spring"])
def test_two_groups_sharing_members_are_never_double_booked_across_clock_changes(weeks, weekdays, now, cycle):
    """Two groups sharing Maya (New York) and Ana (London), planned in one tick with every calendar
    free: alone they would pick the same instant; together the second avoids the first's hour."""
    a = grp("first-circle", "First Circle", [MAYA, ANA, {**RAVI, **ANY_TIME}], weeks_of_month=weeks, weekdays=weekdays)
    b = grp("second-circle", "Second Circle", [MAYA, ANA, {**SAM, **ANY_TIME}], weeks_of_month=weeks, weekdays=weekdays)
    alone_a = State().tick(cfg(a), now).meetings
    alone_b = State().tick(cfg(b), now).meetings
    assert [m.start for m in alone_a if m.cycle == cycle] == [m.start for m in alone_b if m.cycle == cycle]

    p = State().tick(cfg(b, a), now)
    [first] = [m for m in p.meetings if m.group == "first-circle" and m.cycle == cycle]
    [second] = [m for m in p.meetings if m.group == "second-circle" and m.cycle == cycle]
    assert first.start == next(m.start for m in alone_a if m.cycle == cycle)  # planned first (by id)
    assert not overlap(first, second)
    assert 9 <= second.start.astimezone(ZoneInfo("America/New_York")).hour < 17  # still in Maya's hours
    assert 9 <= second.start.astimezone(ZoneInfo("Europe/London")).hour < 17     # and in Ana's
    # Every meeting planned in that tick (a window still open for the month before, too) is apart.
    assert not any(overlap(x, y) for x in p.meetings for y in p.meetings if x.group < y.group)


def test_a_later_tick_sees_the_stored_meetings_of_other_groups():
    """Group b joins after a's March meeting is stored: its search treats that hour as busy."""
    a = grp("a", "A", [MAYA, ANA])
    b = grp("b", "B", [MAYA, LENA])
    st = State()
    st.tick(cfg(a), datetime(2027, 2, 16, 12, tzinfo=UTC))
    st.tick(cfg(a, b), datetime(2027, 2, 16, 13, tzinfo=UTC))
    assert not overlap(st.meetings[("a", "2027-03")], st.meetings[("b", "2027-03")])


def test_a_coordinator_of_three_groups_gets_three_meetings_one_call_a_week_and_every_agenda():
    """Maya coordinates three groups meeting in the same weeks: no two of her meetings overlap, she
    gets each group's agenda, and one call for items per week naming the other groups; the
    members she does not share get their own group's call."""
    a = grp("alpha", "Alpha", [MAYA, RAVI], call_days_before=10)
    b = grp("beta", "Beta", [MAYA, ANA], call_days_before=10)
    c = grp("gamma", "Gamma", [MAYA, LENA, JO], call_days_before=10)
    config, st = cfg(a, b, c), State()
    t = datetime(2027, 2, 16, 12, tzinfo=UTC)
    while t < datetime(2027, 3, 25, tzinfo=UTC):  # a tick an hour through March's meetings
        st.tick(config, t)
        t += timedelta(hours=1)
    march = [st.meetings[(g, "2027-03")] for g in ("alpha", "beta", "gamma")]
    assert not any(overlap(x, y) for i, x in enumerate(march) for y in march[i + 1:])

    maya = "maya.chen@uni-a.example"
    calls = [s for s in st.sends if s.kind == Kind.CALL and s.recipient == maya]
    zone = ZoneInfo(MAYA["timezone"])
    weeks = [s.due.astimezone(zone).isocalendar()[:2] for s in calls]
    assert len(weeks) == len(set(weeks))  # at most one a week
    named = {(s.group, s.payload.cycle) for s in calls} | {x for s in calls for x in s.payload.also}
    assert {x for x in named if x[1] == "2027-03"} == {(g, "2027-03") for g in ("alpha", "beta", "gamma")}  # every group asked about
    assert sorted(s.group for s in st.sends if s.kind == Kind.AGENDA and s.recipient == maya
                  and s.payload.cycle == "2027-03") == [
        "alpha", "beta", "gamma"]
    for other, gid in ((RAVI, "alpha"), (ANA, "beta"), (LENA, "gamma")):
        [call] = [s for s in st.sends if s.kind == Kind.CALL and s.recipient == other["email"]
                  and s.payload.cycle == "2027-03"]
        assert call.group == gid and call.payload.also == ()


def test_the_combined_call_names_each_group_and_the_others_never_learn_of_it():
    """Maya's one call lists Beta's meeting too; Ana's (Beta only) names nothing else."""
    a = grp("alpha", "Alpha Circle", [MAYA, RAVI], call_days_before=10)
    b = grp("beta", "Beta Circle", [MAYA, ANA], call_days_before=10)
    config, st = cfg(a, b), State()
    t = datetime(2027, 2, 16, 12, tzinfo=UTC)
    while t < datetime(2027, 3, 12, tzinfo=UTC):
        st.tick(config, t)
        t += timedelta(hours=1)
    world = World(st.meetings, {})
    templates = load_templates(None)
    combined = [s for s in st.sends if s.kind == Kind.CALL and s.payload.also]
    assert combined, "the two calls fall in one week here"
    for s in st.sends:
        if s.kind != Kind.CALL:
            continue
        record = OutboxRecord.planned(s, config.groups[s.group], s.due)
        msg = message_for(record, config, world, templates, s.due)
        text = msg.get_body(("plain",)).get_content()
        if s.payload.also:
            assert "Alpha Circle" in text and "Beta Circle" in text
        else:
            other = "Beta Circle" if s.group == "alpha" else "Alpha Circle"
            assert other not in text and other not in str(msg["Subject"])


def test_a_group_left_without_a_time_hears_only_that_another_group_meets_then():
    """Beta's only possible hour is Alpha's meeting (same single date and hour, quorum 1): Beta's
    coordinators get the no-quorum alert, whose reasons say "another friendtor group's meeting"
    and never Alpha's name."""
    one = {"weekdays": ["tue"], "weeks_of_month": [2], "quorum": 1.0}
    narrow = {"hours": "10:00-11:00"}
    a = grp("alpha", "Alpha Circle", [{**MAYA, **narrow}, {**JO, "hours": "09:00-10:00"}], **one)
    b = grp("beta", "Beta Circle", [{**MAYA, **narrow}, {**ANA, "hours": "15:00-16:00"}], **one)
    config, st = cfg(a, b), State()
    now = datetime(2027, 2, 16, 12, tzinfo=UTC)
    p = st.tick(config, now)
    assert ("alpha", "2027-03") in st.meetings and ("beta", "2027-03") not in st.meetings
    [alert] = [s for s in p.sends if s.kind == Kind.ALERT and s.group == "beta"]
    reasons = [v["reason"] for o in alert.payload.options for v in o["verdicts"]]
    assert "busy: another friendtor group's meeting" in reasons
    msg = message_for(OutboxRecord.planned(alert, b, now), config, World(st.meetings, {}), load_templates(None), now)
    assert "Alpha" not in msg.as_string()
    assert "another friendtor group" in msg.get_body(("plain",)).get_content()


def test_a_calendar_that_cannot_be_read_keeps_its_reason_with_the_other_groups_busy_time():
    """with_busy adds to what the calendar said (busy, unknown) and makes one for a member without."""
    start = datetime(2027, 3, 10, 15, tzinfo=UTC)
    extra = {"a@x.example": (Busy(start, start + timedelta(hours=1), label="x"),),
             "b@x.example": (Busy(start, start + timedelta(hours=1), label="x"),)}
    merged = crossgroup.with_busy({"a@x.example": Availability.unreadable("timeout")}, extra)
    assert merged["a@x.example"].unknown == "timeout" and len(merged["a@x.example"].busy) == 1
    assert merged["b@x.example"].busy[0].label == "x"
