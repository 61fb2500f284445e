"""Gatherings at conferences, pure: when one is proposed, to whom, at what local time (in a
conference zone no member lives in, across a clock change), its iCalendar invite (the city as
LOCATION, no video link), moves, cancellations, the agenda and the review that mention it, and
that a gathering is busy time for those attending in their other groups."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import icalendar
import pytest
import vobject

from scheduler.app.templates import load_templates
from scheduler.compose.select import Skip, World, message_for
from scheduler.core import crossgroup, gatherings
from scheduler.core.config import Conference, Config, Group, Service
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import Kind, MeetingPayload, OutboxRecord, PeriodPayload, Send, expires
from scheduler.core.planner import Plan, StateView
from builders import PlannedState as State

# Members in New York, Kolkata and St John's; the conference in Lisbon, where nobody lives.
MAYA = {"name": "Maya Chen", "email": "maya@uni-a.example", "timezone": "America/New_York", "conferences": ["EAPS 2027"]}
RAVI = {"name": "Ravi Iyer", "email": "ravi@uni-b.example", "timezone": "Asia/Kolkata", "conferences": ["eaps 2027"]}
AOIFE = {"name": "Aoife Murphy", "email": "aoife@uni-c.example", "timezone": "America/St_Johns",
         "conferences": ["EAPS 2027"]}
JO = {"name": "Jo Park", "email": "jo@uni-d.example", "timezone": "America/Chicago"}
# Europe moves its clocks on Sunday 28 March 2027, the conference's first full day.
EAPS = Conference(name="EAPS 2027", city="Lisbon", timezone="Europe/Lisbon", start=date(2027, 3, 27),
                  end=date(2027, 3, 30))
CYCLE = "gathering-eaps-2027"
KEY = f"invite:g:{CYCLE}"


def grp(members=(MAYA, RAVI, AOIFE, JO), gid: str = "g", name: str = "K Club", **extra) -> Group:
    return Group.model_validate({
        "id": gid, "name": name, "timezone": "America/New_York", "started": date(2026, 6, 2),
        "coordinators": ["maya@uni-a.example"], "members": list(members), **extra,
    })


def cfg(*groups: Group, conferences=(EAPS,)) -> Config:
    return Config(folder=Path("/nonexistent"), service=Service(conferences=conferences),
                  groups={g.id: g for g in groups or (grp(),)})


def gathering_sends(p: Plan) -> list[Send]:
    return sorted((s for s in p.sends if CYCLE in s.key), key=lambda s: s.recipient)


@pytest.mark.parametrize("start, end, first_full", [
    (date(2027, 3, 27), date(2027, 3, 30), date(2027, 3, 28)),   # four days: the day after the opening
    (date(2027, 3, 27), date(2027, 3, 29), date(2027, 3, 28)),   # three days
    (date(2027, 3, 27), date(2027, 3, 28), date(2027, 3, 27)),   # two days: the last is for travel
    (date(2027, 3, 27), date(2027, 3, 27), date(2027, 3, 27)),   # one day
])
def test_the_first_full_day(start, end, first_full):
    """The day after the opening day, except for conferences of one or two days."""
    c = Conference(name="X", city="Y", timezone="UTC", start=start, end=end)
    assert gatherings.first_full_day(c) == first_full


def test_proposed_at_the_group_time_in_the_conference_zone_after_its_clock_change():
    """18:30 in Lisbon on 28 March 2027 (clocks went forward that night) is 17:30 UTC; a group's
    gathering_time is read in the conference's zone too."""
    assert gatherings.proposed_start(grp(), EAPS) == datetime(2027, 3, 28, 17, 30, tzinfo=UTC)
    later = grp(gathering_time="20:15")
    assert gatherings.proposed_start(later, EAPS) == datetime(2027, 3, 28, 19, 15, tzinfo=UTC)


def test_proposed_gathering_days_before_to_those_attending_only():
    """Three attend (gathering_min 3): from 09:00 New York, 30 days before the opening, each of the
    three gets one gathering invite; Jo, who does not attend, gets nothing about it."""
    config, st = cfg(), State()
    due = datetime(2027, 2, 25, 9, tzinfo=gatherings.ZoneInfo("America/New_York"))
    assert not gathering_sends(st.tick(config, due - timedelta(minutes=1)))
    p = st.tick(config, due)
    sends = gathering_sends(p)
    assert [(s.kind, s.key, s.recipient) for s in sends] == [
        (Kind.GATHERING, KEY, e) for e in ("aoife@uni-c.example", "maya@uni-a.example", "ravi@uni-b.example")]
    [meeting] = [m for m in p.meetings if m.cycle == CYCLE]
    assert (meeting.start, meeting.end) == (datetime(2027, 3, 28, 17, 30, tzinfo=UTC),
                                            datetime(2027, 3, 28, 18, 30, tzinfo=UTC))
    assert not gathering_sends(st.tick(config, due + timedelta(hours=1)))  # once
    # No call, agenda or follow-up of its own, however the ticks go on.
    for hours in range(0, 24 * 40, 6):
        st.tick(config, due + timedelta(hours=hours))
    assert {s.kind for s in st.sends if CYCLE in s.key} == {Kind.GATHERING}


def test_too_few_attending_means_no_gathering():
    """Two attend and gathering_min is 3: nothing; with gathering_min 2, a gathering."""
    two = [MAYA, RAVI, {**AOIFE, "conferences": []}, JO]
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    assert not gathering_sends(State().tick(cfg(grp(two)), now))
    assert len(gathering_sends(State().tick(cfg(grp(two, gathering_min=2)), now))) == 2


def test_a_service_down_past_the_date_still_proposes_it_until_a_day_before():
    """A first tick on 27 March (a day and a half before) still proposes it; on 28 March, no longer."""
    assert gathering_sends(State().tick(cfg(), datetime(2027, 3, 27, 6, tzinfo=UTC)))
    assert not gathering_sends(State().tick(cfg(), datetime(2027, 3, 28, 6, tzinfo=UTC)))


def test_a_member_who_drops_the_conference_gets_it_cancelled_and_a_move_updates_the_others():
    """Aoife no longer lists EAPS: her copy is cancelled; a coordinator's move sends the others an update."""
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    without = cfg(grp([MAYA, RAVI, {**AOIFE, "conferences": []}, JO], gathering_min=2))
    p = st.tick(without, now + timedelta(hours=1))
    assert [(s.kind, s.recipient) for s in gathering_sends(p)] == [(Kind.CANCEL, "aoife@uni-c.example")]
    meeting = st.meetings[("g", CYCLE)]
    st.meetings[("g", CYCLE)] = meeting.moved(meeting.start + timedelta(days=1), meeting.end + timedelta(days=1),
                                              now + timedelta(hours=2))
    p = st.tick(without, now + timedelta(hours=3))
    assert [(s.kind, s.recipient) for s in gathering_sends(p)] == [
        (Kind.UPDATE, "maya@uni-a.example"), (Kind.UPDATE, "ravi@uni-b.example")]


def test_a_cancelled_gathering_is_withdrawn_from_each_attendee():
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    st.meetings[("g", CYCLE)] = st.meetings[("g", CYCLE)].cancel(now + timedelta(hours=1))
    p = st.tick(config, now + timedelta(hours=2))
    assert [(s.kind, s.recipient) for s in gathering_sends(p)] == [
        (Kind.CANCEL, e) for e in ("aoife@uni-c.example", "maya@uni-a.example", "ravi@uni-b.example")]


def render(config: Config, st: State, send: Send, now: datetime, kind: Kind | None = None):
    record = OutboxRecord.planned(send, config.groups[send.group], now)
    if kind is not None:
        record = OutboxRecord.planned(Send(send.key, kind, send.group, send.recipient, send.name, send.timezone,
                                           send.due, send.payload), config.groups[send.group], now)
    return message_for(record, config, World(st.meetings, {}), load_templates(None), now)


def test_the_invite_is_in_person_in_the_city_at_local_time_and_names_who_is_coming():
    """The gathering email to Ravi (Kolkata): a REQUEST with LOCATION Lisbon and no URL, DTSTART
    18:30 Europe/Lisbon, only his own ATTENDEE; the text names the three coming and gives his
    own time; Jo (not attending) is not named."""
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    [send] = [s for s in st.sends if s.recipient == "ravi@uni-b.example" and s.kind == Kind.GATHERING]
    msg = render(config, st, send, now)
    assert msg["X-Friendtor-Kind"] == "gathering"
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "REQUEST"
    raw = part.get_payload(decode=True)
    event = vobject.readOne(raw.decode()).vevent
    assert event.location.value == "Lisbon" and not hasattr(event, "url")
    assert event.dtstart.value.replace(tzinfo=None) == datetime(2027, 3, 28, 18, 30)
    assert b"DTSTART;TZID=Europe/Lisbon:20270328T183000" in raw and b"TZID:Europe/Lisbon" in raw
    assert [a.value.lower() for a in event.attendee_list] == ["mailto:ravi@uni-b.example"]
    parsed = icalendar.Calendar.from_ical(raw)
    [vevent] = parsed.walk("VEVENT")
    assert vevent.decoded("dtstart").astimezone(UTC) == datetime(2027, 3, 28, 17, 30, tzinfo=UTC)
    assert "meet.example" not in raw.decode()
    text = msg.get_body(("plain",)).get_content()
    assert "Maya Chen, Ravi Iyer, Aoife Murphy" in text and "Jo Park" not in text
    assert "Sunday 28 March 2027, 18:30–19:30, local time in Lisbon (Europe/Lisbon)" in text.replace("\n    ", " ")
    assert "23:00 in Asia/Kolkata" in text  # 17:30 UTC is 23:00 in Kolkata


def test_a_move_and_a_cancellation_render_with_the_same_uid_and_higher_sequence():
    """An update says the old time and REQUESTs the new; a cancellation CANCELs; one UID throughout."""
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    [send] = [s for s in st.sends if s.recipient == "maya@uni-a.example" and s.kind == Kind.GATHERING]
    first = st.meetings[("g", CYCLE)]
    moved = first.moved(first.start + timedelta(days=1), first.end + timedelta(days=1), now)
    st.meetings[("g", CYCLE)] = moved
    update = render(config, st, Send(send.key, Kind.UPDATE, "g", send.recipient, send.name, send.timezone, now,
                                     MeetingPayload(CYCLE, sequence=moved.sequence)), now)
    event = vobject.readOne(next(p for p in update.walk() if p.get_content_type() == "text/calendar")
                            .get_payload(decode=True).decode()).vevent
    assert (event.uid.value, int(event.sequence.value)) == (first.uid, moved.sequence)
    assert "it was Sunday 28 March 2027, 18:30" in update.get_body(("plain",)).get_content().replace("\n", " ")
    st.meetings[("g", CYCLE)] = moved.cancel(now)
    cancel = render(config, st, Send(send.key, Kind.CANCEL, "g", send.recipient, send.name, send.timezone, now,
                                     MeetingPayload(CYCLE)), now)
    part = next(p for p in cancel.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "CANCEL"
    assert cancel["Subject"].startswith("Cancelled: K Club at EAPS 2027")


def test_a_conference_taken_out_of_service_toml_skips_its_emails():
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    [send] = [s for s in st.sends if s.recipient == "maya@uni-a.example" and s.kind == Kind.GATHERING]
    assert isinstance(render(cfg(conferences=()), st, send, now), Skip)


def test_the_next_agenda_mentions_it_and_the_review_counts_it():
    """March's agenda (before the conference) says who meets where and when; the review covering
    March counts one get-together; the gathering is not a meeting in the attendance rates."""
    config, st = cfg(), State()
    t = datetime(2027, 2, 16, 12, tzinfo=UTC)
    while t < datetime(2027, 3, 12, tzinfo=UTC):
        st.tick(config, t)
        t += timedelta(hours=6)
    [agenda] = [s for s in st.sends if s.kind == Kind.AGENDA and s.recipient == "jo@uni-d.example"
                and s.payload.cycle == "2027-03"]
    text = render(config, st, agenda, agenda.due).get_body(("plain",)).get_content()
    assert "In person: Maya Chen, Ravi Iyer, Aoife Murphy will be at EAPS 2027 in Lisbon" in text
    review = Send("review:g:2027-06-02", Kind.REVIEW, "g", "jo@uni-d.example", "Jo Park", "America/Chicago",
                  datetime(2027, 6, 2, 13, tzinfo=UTC), PeriodPayload(date(2026, 12, 2), date(2027, 6, 2)))
    text = render(config, st, review, review.due).get_body(("plain",)).get_content()
    assert "In person: 1 get-together at conferences" in text and "EAPS 2027, Lisbon" in text


def test_a_gathering_is_busy_time_for_those_attending_in_their_other_groups_only():
    """Maya attends EAPS with group g; in her other group the gathering's hour is busy for her; Jo,
    in both groups but not attending, is free then."""
    g = grp()
    other = grp([MAYA, JO, {"name": "Lena Berg", "email": "lena@uni-e.example", "timezone": "Europe/Berlin"}],
                gid="h", name="Second Circle")
    config = cfg(g, other)
    start = gatherings.proposed_start(g, EAPS)
    meeting = Meeting("g", CYCLE, "u", 0, start, start + timedelta(hours=1), stamp=start)
    found = crossgroup.busy_elsewhere(config, other, [meeting], start - timedelta(days=1), start + timedelta(days=1),
                                      named=True)
    assert list(found) == ["maya@uni-a.example"]
    assert found["maya@uni-a.example"][0].label == "K Club gathering"


def test_a_gathering_record_expires_without_a_cycle_period():
    """Its cycle is no month or week: its outbox record still gets an expiry."""
    send = Send(KEY, Kind.GATHERING, "g", "maya@uni-a.example", "Maya", "America/New_York",
                datetime(2027, 2, 25, 14, tzinfo=UTC), MeetingPayload(CYCLE))
    assert expires(send, grp()) > datetime(2027, 4, 1, tzinfo=UTC)


def test_a_gathering_is_not_part_of_the_groups_usual_time_or_burden():
    """An evening at a conference says nothing about when the group meets by video."""
    from scheduler.core.planner import past_usual

    g = grp()
    start = datetime(2027, 3, 28, 17, 30, tzinfo=UTC)
    meetings = {("g", CYCLE): Meeting("g", CYCLE, "u", 0, start, start + timedelta(hours=1), stamp=start)}
    assert past_usual(g, StateView(meetings, frozenset(), {}, {}), start + timedelta(days=2)) is None
    assert time(18, 30) == g.gathering_time


def test_a_gathering_scheduled_stays_for_those_still_going_when_others_drop_out():
    """Below gathering_min after it was proposed: the one still going keeps it; those who
    dropped out get their copy withdrawn."""
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    fewer = cfg(grp([MAYA, {**RAVI, "conferences": []}, {**AOIFE, "conferences": []}, JO]))
    p = st.tick(fewer, now + timedelta(hours=1))
    assert [(s.kind, s.recipient) for s in gathering_sends(p)] == [
        (Kind.CANCEL, "aoife@uni-c.example"), (Kind.CANCEL, "ravi@uni-b.example")]


def test_a_proposal_still_waiting_for_someone_who_dropped_out_is_not_sent():
    """Planned for Ravi, who then took EAPS out of his conferences: skipped at send time."""
    config, st = cfg(), State()
    now = datetime(2027, 3, 1, 15, tzinfo=UTC)
    st.tick(config, now)
    [send] = [s for s in st.sends if s.recipient == "ravi@uni-b.example" and s.kind == Kind.GATHERING]
    fewer = cfg(grp([MAYA, {**RAVI, "conferences": []}, AOIFE, JO], gathering_min=2))
    assert render(fewer, st, send, now) == Skip("no longer attends the conference")
