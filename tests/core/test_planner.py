"""The planner's rules, pure: what is due when, misfires, member changes, and never twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from builders import outbox_record
from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Config, Group, Service
from scheduler.compose.select import Skip, World, message_for
from scheduler.core.planner import Plan, StateView, plan
from scheduler.app.templates import load_templates
from builders import PlannedState as State

MEMBERS = [
    {"name": "Maya Chen", "email": "maya@uni-a.example", "timezone": "America/New_York", "required": True},
    {"name": "Ravi Iyer", "email": "ravi@uni-b.example", "timezone": "Asia/Kolkata", "hours": "17:00-22:00"},
    {"name": "Ana Souza", "email": "ana@uni-c.example", "timezone": "Europe/London"},
]


def config(members=MEMBERS, **group) -> Config:
    g = Group.model_validate({
        "id": "g", "name": "G", "timezone": "America/New_York", "started": date(2026, 6, 2),
        "coordinators": ["maya@uni-a.example"], "members": members,
        "meetings": {"weekdays": ["tue", "wed", "thu"], "weeks_of_month": [2, 3]},
        "goals": [{"member": "ravi@uni-b.example", "text": "Submit abstract", "due": date(2027, 3, 20)}],
        **group,
    })
    return Config(folder=Path("/nonexistent"), service=Service(), groups={"g": g})


def free(group, window):
    return {}


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def kinds(p: Plan, cycle: str = "2027-03") -> list[tuple[str, str]]:
    """The (kind, recipient) pairs planned for one cycle's meeting."""
    return sorted((s.kind, s.recipient) for s in p.sends if cycle in s.key)


def test_invites_open_invite_days_before_the_window():
    """March 2027's window opens Tue 9 March; with 21 days' notice invites go out from 16 Feb, not before."""
    cfg, st = config(), State()
    assert not [m for m in st.tick(cfg, at(2027, 2, 16, 4)).meetings if m.cycle == "2027-03"]  # 23:00 on 15 Feb NY
    p = st.tick(cfg, at(2027, 2, 16, 5, 30))
    [meeting] = [m for m in p.meetings if m.cycle == "2027-03"]
    assert meeting.sequence == 0 and meeting.uid == "g-2027-03@localhost"
    assert {s.recipient for s in p.sends if s.key == "invite:g:2027-03"} == {m["email"] for m in MEMBERS}


def test_a_tick_run_twice_plans_nothing_the_second_time():
    """Idempotence: whatever was planned is in the outbox, and the same tick again plans nothing."""
    cfg, st = config(), State()
    assert st.tick(cfg, at(2027, 3, 1))
    assert not st.tick(cfg, at(2027, 3, 1))
    assert not st.tick(cfg, at(2027, 3, 1, 0, 5))


def test_down_for_weeks_sends_each_thing_at_most_once():
    """After a long outage a tick plans only what is still inside its window, once; later ticks repeat nothing."""
    cfg, st = config(), State()
    first = st.tick(cfg, at(2027, 1, 5))
    st.tick(cfg, at(2027, 2, 20))  # down for six weeks
    seen = {s.sid for s in first.sends}
    for day in range(40):
        p = st.tick(cfg, at(2027, 2, 20) + timedelta(hours=6 * day))
        assert not ({s.sid for s in p.sends} & seen)
        seen |= {s.sid for s in p.sends}


def test_agenda_never_after_the_meeting_began():
    """An agenda is due from agenda_days_before until the start; a tick after the start plans none."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    meeting = st.meetings[("g", "2027-03")]
    late = State()
    late.meetings = dict(st.meetings)
    p = late.tick(cfg, meeting.start + timedelta(minutes=1))
    assert not [s for s in p.sends if s.kind == "agenda"]
    p = st.tick(cfg, meeting.start - timedelta(days=1))
    assert len([s for s in p.sends if s.kind == "agenda"]) == 3


def test_follow_up_grace_period():
    """A follow-up is sent after the meeting, late by up to 7 days, never later."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    meeting = st.meetings[("g", "2027-03")]
    due = meeting.end + timedelta(days=1)
    assert not [s for s in State().apply(Plan()).sends]
    too_late = State()
    too_late.meetings = dict(st.meetings)
    assert not [s for s in too_late.tick(cfg, due + timedelta(days=8)).sends if s.kind == "follow-up"]
    late = State()
    late.meetings = dict(st.meetings)
    assert len([s for s in late.tick(cfg, due + timedelta(days=6)).sends if s.kind == "follow-up"]) == 3


def test_no_quorum_alerts_coordinators_once_a_day_until_the_window_closes():
    """Nobody free: the coordinator is alerted with the options, at most daily, and it stops with the window."""
    cfg, st = config(), State()

    def everyone_busy(group, window):
        b = Busy(at(2027, 3, 1), at(2027, 4, 1))
        return {m.email: Availability((b,)) for m in group.members}

    p = st.tick(cfg, at(2027, 2, 20, 12), everyone_busy)
    assert kinds(p) == [("alert", "maya@uni-a.example")] and not p.meetings
    assert not st.tick(cfg, at(2027, 2, 20, 18), everyone_busy).sends      # same day: no new alert
    assert kinds(st.tick(cfg, at(2027, 2, 21, 12), everyone_busy)) == [("alert", "maya@uni-a.example")]
    # Once calendars clear up, the next day's search schedules the meeting.
    p = st.tick(cfg, at(2027, 2, 22, 12))
    assert [m.cycle for m in p.meetings] == ["2027-03"]
    assert not any(s.kind == "alert" for s in st.tick(cfg, at(2027, 3, 25), everyone_busy).sends
                   if "2027-03" in s.key)


def test_member_added_after_invites_gets_one():
    """A member who joins after the invites went out gets the invite; nobody else gets a second one."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    newcomer = {"name": "Li Wang", "email": "li@uni-d.example", "timezone": "America/Los_Angeles"}
    p = st.tick(config(MEMBERS + [newcomer]), at(2027, 2, 18))
    assert kinds(p) == [("invite", "li@uni-d.example")]


def test_removed_member_gets_a_cancellation():
    """A member removed after the invites went out gets a cancellation of their copy of the meeting."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    p = st.tick(config(MEMBERS[:2]), at(2027, 2, 18))
    [cancel] = [s for s in p.sends if "2027-03" in s.key]
    assert (cancel.kind, cancel.recipient, cancel.key) == ("cancel", "ana@uni-c.example", "uninvite:g:2027-03")
    assert cancel.name == "Ana Souza" and cancel.timezone == "Europe/London"


def test_goal_nudge_three_days_before_in_the_members_morning():
    """A goal due 20 March nudges its owner from 09:00 on 17 March in their zone (Kolkata), once."""
    cfg, st = config(), State()
    assert not [s for s in st.tick(cfg, at(2027, 3, 17, 3, 0)).sends if s.kind == "nudge"]  # 08:30 IST
    p = st.tick(cfg, at(2027, 3, 17, 3, 30))
    assert [(s.kind, s.recipient, s.key) for s in p.sends if s.kind == "nudge"] == [
        ("nudge", "ravi@uni-b.example", "nudge:g:2027-03-20")]
    assert not [s for s in st.tick(cfg, at(2027, 3, 21)).sends if s.kind == "nudge"]


def test_mission_review_every_six_months_from_started():
    """Started 2 June 2026: reviews on 2 December and 2 June, sent to every member."""
    cfg = config()
    keys = set()
    st = State()
    day = at(2026, 11, 1)
    while day < at(2027, 11, 1):
        keys |= {s.key for s in st.tick(cfg, day).sends if s.kind in ("review", "year-end")}
        day += timedelta(days=1)
    # 1 December 2026 is inside the group's first six months: no year-end prompt that year.
    assert keys == {"review:g:2026-12-02", "review:g:2027-06-02"}


def year_end_sends(cfg, start: datetime, end: datetime) -> dict[str, set]:
    """Every year-end key planned between two instants, ticking daily, with its periods."""
    st, found = State(), {}
    day = start
    while day < end:
        p = st.tick(cfg, day)
        for g, kind, lo, hi in p.reviews:
            if kind == "year-end":
                found.setdefault(f"{lo}..{hi}", set()).update(s.key for s in p.sends if s.kind == "year-end")
        day += timedelta(days=1)
    return found


def test_no_year_end_prompt_three_weeks_after_the_group_started():
    """A group started on 10 November gets no "continue, redefine or close?" on 1 December."""
    cfg = config(started=date(2026, 11, 10))
    assert year_end_sends(cfg, at(2026, 11, 28), at(2026, 12, 20)) == {}


def test_a_group_started_in_july_gets_its_first_year_end_the_next_december_covering_everything():
    """Started 1 July 2026: nothing in December 2026; December 2027's prompt covers July 2026 to
    November 2027; December 2028's covers the twelve months before it."""
    cfg = config(started=date(2026, 7, 1))
    assert year_end_sends(cfg, at(2026, 11, 28), at(2026, 12, 20)) == {}
    assert year_end_sends(cfg, at(2027, 11, 28), at(2027, 12, 20)) == {"2026-07-01..2027-11-30": {"year-end:g:2027"}}
    assert year_end_sends(cfg, at(2028, 11, 28), at(2028, 12, 20)) == {"2027-12-01..2028-11-30": {"year-end:g:2028"}}


def test_a_group_six_months_old_on_the_first_of_december_gets_the_prompt():
    """Started 1 June 2026: six months are up on 1 December 2026, and the prompt covers them."""
    cfg = config(started=date(2026, 6, 1))
    assert year_end_sends(cfg, at(2026, 11, 28), at(2026, 12, 20)) == {"2026-06-01..2026-11-30": {"year-end:g:2026"}}


def test_naive_now_is_refused():
    """The planner takes aware datetimes only."""
    with pytest.raises(ValueError):
        plan(config(), StateView.empty(), datetime(2027, 3, 1), free)


def test_edited_goal_shows_in_the_next_agenda():
    """Agendas render at send time: a goal edited after the agenda was planned shows as edited."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    meeting = st.meetings[("g", "2027-03")]
    doc = outbox_record(key="agenda:g:2027-03", kind="agenda", group="g", recipient="ana@uni-c.example",
                        name="Ana Souza", timezone="Europe/London", payload={"cycle": "2027-03"},
                        created="2027-03-07T00:00:00Z")
    edited = config(goals=[{"member": "ravi@uni-b.example", "text": "Submit the revised abstract",
                            "due": date(2027, 3, 20)}])
    msg = message_for(doc, edited, World(st.meetings, {}), load_templates(None), meeting.start - timedelta(days=1))
    text = msg.get_body(("plain",)).get_content()
    assert "Submit the revised abstract" in text and "Submit abstract (" not in text
    late = message_for(doc, edited, World(st.meetings, {}), load_templates(None), meeting.start)
    assert isinstance(late, Skip) and "started" in late.reason


def test_member_removed_then_added_back_is_invited_again():
    """Removed (their copy cancelled) and added back: a re-invite goes out, with a SEQUENCE above the cancel's."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    st.tick(config(MEMBERS[:2]), at(2027, 2, 18))
    p = st.tick(cfg, at(2027, 2, 19))
    [again] = [s for s in p.sends if "2027-03" in s.key]
    assert (again.kind, again.key, again.recipient) == ("invite", "reinvite:g:2027-03", "ana@uni-c.example")
    assert again.payload.bump == 2
    assert not [s for s in st.tick(cfg, at(2027, 2, 20)).sends if "2027-03" in s.key]


def test_no_meeting_before_the_group_started():
    """A group that starts in June 2027 gets no meeting for earlier cycles."""
    cfg, st = config(started=date(2027, 6, 1)), State()
    for day in range(0, 120, 3):
        st.tick(cfg, at(2027, 2, 1) + timedelta(days=day))
    assert sorted(c for _, c in st.meetings) == ["2027-06"]


def test_call_for_items_goes_out_call_days_before_and_never_once_the_agenda_is_due():
    """The call goes to every member from call_days_before the meeting; a tick once the agenda is due plans none."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    meeting = st.meetings[("g", "2027-03")]
    before = st.tick(cfg, meeting.start - timedelta(days=7, minutes=1))
    assert not [s for s in before.sends if s.kind == "call"]
    p = st.tick(cfg, meeting.start - timedelta(days=7))
    calls = [s for s in p.sends if s.kind == "call"]
    assert {s.recipient for s in calls} == {m["email"] for m in MEMBERS}
    assert {s.key for s in calls} == {"call:g:2027-03"} and all(s.due == meeting.start - timedelta(days=7) for s in calls)
    assert not [s for s in st.tick(cfg, meeting.start - timedelta(days=3)).sends if s.kind == "call"]  # once
    late = State()
    late.meetings = dict(st.meetings)
    p = late.tick(cfg, meeting.start - timedelta(days=2))  # the agenda is due: too late to ask for items
    assert not [s for s in p.sends if s.kind == "call"] and [s for s in p.sends if s.kind == "agenda"]
    down = State()
    down.meetings = dict(st.meetings)
    assert [s for s in down.tick(cfg, meeting.start - timedelta(days=2, minutes=1)).sends if s.kind == "call"]


def test_call_for_items_off_for_a_group_with_call_days_before_zero():
    """`call_days_before = 0` turns the call off for that group; everything else is planned as before."""
    cfg, st = config(meetings={"weekdays": ["tue", "wed", "thu"], "weeks_of_month": [2, 3], "call_days_before": 0}), State()
    st.tick(cfg, at(2027, 2, 17))
    meeting = st.meetings[("g", "2027-03")]
    sends = [s for day in range(8, -1, -1) for s in st.tick(cfg, meeting.start - timedelta(days=day, hours=-1)).sends]
    assert not [s for s in sends if s.kind == "call"] and [s for s in sends if s.kind == "agenda"]


def test_call_for_items_rendered_late_is_skipped_once_the_agenda_is_due():
    """A call retried after the agenda became due is not sent: its answers could no longer reach the agenda."""
    cfg, st = config(), State()
    st.tick(cfg, at(2027, 2, 17))
    meeting = st.meetings[("g", "2027-03")]
    doc = outbox_record(key="call:g:2027-03", kind="call", group="g", recipient="ravi@uni-b.example",
                        name="Ravi Iyer", timezone="Asia/Kolkata", payload={"cycle": "2027-03"},
                        created="2027-03-01T00:00:00Z")
    world, templates = World(st.meetings, {}), load_templates(None)
    msg = message_for(doc, cfg, world, templates, meeting.start - timedelta(days=6))
    text = msg.get_body(("plain",)).get_content()
    assert msg["X-Friendtor-Kind"] == "call" and "1. Submit abstract (due Sat 20 Mar 2027)" in text
    assert "commit:" in text and "agenda:" in text and "celebrate:" in text and "done: 1" in text
    late = message_for(doc, cfg, world, templates, meeting.start - timedelta(days=2))
    assert isinstance(late, Skip) and "agenda" in late.reason
