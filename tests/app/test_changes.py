"""A coordinator moves or cancels a meeting: `friendtor reschedule` and `friendtor cancel`.

The example group's December meeting is scheduled and its invites sent (a `run` at NOW);
the commands run with the clock pinned (time_machine), the service's ticks with --now, and
what members receive is read back from the Maildir with an independent iCalendar parser.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
import vobject

from builders import example_after_first_run, outbox_record
from scheduler.cli.main import main
from scheduler.app.store import Store

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
UID = "k-club-2026-12@mentoring.example.org"


@pytest.fixture
def cfg(tmp_path, capsys):
    """The example config with December's meeting scheduled and its 12 invites in the Maildir."""
    folder = example_after_first_run(tmp_path, NOW)
    capsys.readouterr()
    return folder


def december(folder: Path):
    with Store(folder / "var" / "state.json", lock=False) as store:
        return store.meetings()[("k-club", "2026-12")]


def command(folder: Path, *args: str, at: datetime = LATER) -> int:
    with time_machine.travel(at, tick=False):
        return main([*args, "--config", str(folder)])


def tick(folder: Path, at: datetime) -> None:
    assert main(["run", "--config", str(folder), "--now", at.isoformat()]) == 0


def received(folder: Path, kind: str) -> list[email.message.EmailMessage]:
    out = []
    for path in sorted((folder / "var" / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["X-Friendtor-Kind"] == kind:
            out.append(message)
    return out


def calendar(message: email.message.EmailMessage):
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return vobject.readOne(part.get_payload(decode=True).decode())


def test_reschedule_updates_every_invited_member_and_the_agenda_follows(cfg, capsys):
    """Moving December's meeting: each of the 12 members gets one update (same UID, SEQUENCE 3,
    METHOD:REQUEST, the new time, the old one in the text); the agenda goes out two days before
    the new date, not the old one."""
    before = december(cfg)
    assert command(cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00") == 0
    out = capsys.readouterr().out
    assert "moved from Thu 10 Dec 2026" in out and "to Tue 15 Dec 2026 11:00–12:00 (America/New_York); stored" in out
    tick(cfg, LATER + timedelta(minutes=5))
    updates = received(cfg, "update")
    assert len(updates) == 12 and len({str(m["To"]) for m in updates}) == 12
    event = calendar(updates[0])
    assert event.method.value == "REQUEST"
    assert (event.vevent.uid.value, event.vevent.sequence.value) == (UID, "3")
    assert event.vevent.dtstart.value.astimezone(UTC) == datetime(2026, 12, 15, 16, tzinfo=UTC)
    for message in updates:
        text = message.get_body(("plain",)).get_content()
        [was] = [line for line in text.splitlines() if line.strip().startswith("Was:")]
        assert "15 December 2026" in text and "10 December 2026" in was

    tick(cfg, LATER + timedelta(hours=1))
    assert len(received(cfg, "update")) == 12                     # once
    capsys.readouterr()
    with time_machine.travel(LATER, tick=False):
        assert main(["status", "k-club", "--config", str(cfg)]) == 0
    assert "meeting 2026-12: Tue 15 Dec 2026 11:00–12:00 (sequence 3, moved from Thu 10 Dec" in capsys.readouterr().out
    tick(cfg, before.start - timedelta(days=1))                   # the old agenda day: nothing
    assert received(cfg, "agenda") == []
    tick(cfg, datetime(2026, 12, 13, 17, tzinfo=UTC))             # two days before the new time
    assert len(received(cfg, "agenda")) == 12


def test_cancel_tells_every_invited_member_and_nothing_follows(cfg, capsys):
    """Cancelling: 12 cancellations (METHOD:CANCEL, STATUS:CANCELLED, same UID, SEQUENCE 3), then
    no agenda and no follow-up for that meeting."""
    meeting = december(cfg)
    assert command(cfg, "cancel", "k-club") == 0
    assert "meeting of 2026-12 (Thu 10 Dec 2026" in capsys.readouterr().out
    tick(cfg, LATER + timedelta(minutes=5))
    cancels = received(cfg, "cancel")
    assert len(cancels) == 12
    event = calendar(cancels[0])
    assert (event.method.value, event.vevent.status.value) == ("CANCEL", "CANCELLED")
    assert (event.vevent.uid.value, event.vevent.sequence.value) == (UID, "3")
    assert "is cancelled." in cancels[0].get_body(("plain",)).get_content()
    for at in (meeting.start - timedelta(days=1), meeting.end + timedelta(days=1, hours=2)):
        tick(cfg, at)
    assert received(cfg, "agenda") == [] and received(cfg, "follow-up") == []
    assert len(received(cfg, "cancel")) == 12


def test_a_change_while_the_service_runs_is_handed_over_and_applied_once(cfg, capsys):
    """With the state locked by the service, the command leaves the change in incoming/; the next
    tick applies it and removes the file. The same file again (a crash before its removal) and
    an older change arriving late are ignored: the last word stands."""
    state = cfg / "var" / "state.json"
    with Store(state):  # the running service holds the lock
        assert command(cfg, "reschedule", "k-club", "--to", "2026-12-16 12:00", "--force") == 0  # Maya is busy then
        assert "handed to the running service" in capsys.readouterr().out
    [handed] = list((cfg / "var" / "incoming").glob("meeting-*.json"))
    kept = handed.read_bytes()
    tick(cfg, LATER + timedelta(minutes=5))
    assert not handed.exists() and len(received(cfg, "update")) == 12
    moved = december(cfg)
    handed.write_bytes(kept)  # applied again after a crash: ignored
    tick(cfg, LATER + timedelta(minutes=10))
    assert december(cfg) == moved and len(received(cfg, "update")) == 12


@pytest.mark.parametrize("args, says", [
    (["reschedule", "nope", "--to", "2026-12-15 11:00"], "no group 'nope'"),
    (["reschedule", "k-club", "--to", "tomorrow"], "--to: 'tomorrow' is not a local date and time"),
    (["reschedule", "k-club", "--to", "2026-12-15T11:00Z"], "is not a local date and time"),
    (["reschedule", "k-club", "--to", "2026-12-15"], "is not a local date and time"),
    (["reschedule", "k-club", "--to", "2026-11-01 10:00"], "is in the past"),
    (["reschedule", "k-club", "--to", "2027-03-14 02:30"], "does not exist (the clocks go forward then)"),
    (["reschedule", "k-club", "--to", "2027-11-07 01:30"], "happens twice (the clocks go back then)"),
    (["reschedule", "k-club", "--to", "2026-12-15 11:00", "--cycle", "2027-05"], "--cycle 2027-05: k-club has no "
                                                                                 "meeting in that cycle"),
    (["cancel", "k-club", "--cycle", "Dec"], "--cycle Dec: k-club has no meeting in that cycle; upcoming: 2026-12"),
    (["reschedule", "k-club", "--to", "2027-02-25 10:00"], "--to: 2027-02-25 is outside cycle 2026-12 "
                                                           "(2026-12-01 to 2026-12-31, America/New_York)"),
], ids=["group", "words", "zone", "date-only", "past", "dst-gap", "dst-overlap", "cycle", "cycle-garbage", "other-cycle"])
def test_bad_changes_are_one_line_and_change_nothing(cfg, capsys, args, says):
    """Each mistake is one line on stderr with exit 2, and the state is left as it was."""
    before = (cfg / "var" / "state.json").read_bytes()
    assert command(cfg, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert (cfg / "var" / "state.json").read_bytes() == before
    assert not (cfg / "var" / "incoming").exists()


def test_a_cancelled_or_past_meeting_cannot_be_changed(cfg, capsys):
    """After a cancel there is no upcoming meeting to change; and a started meeting is refused."""
    assert command(cfg, "cancel", "k-club") == 0
    assert command(cfg, "cancel", "k-club") == 2
    assert "k-club has no upcoming meeting to change" in capsys.readouterr().err
    assert command(cfg, "reschedule", "k-club", "--cycle", "2026-12", "--to", "2026-12-15 11:00") == 2
    assert "--cycle 2026-12: that meeting is already cancelled" in capsys.readouterr().err


def test_no_state_yet_is_one_line(tmp_path, capsys):
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert command(folder, "cancel", "k-club") == 2
    assert "no state yet, so no meeting to change" in capsys.readouterr().err


def test_a_cancelled_meeting_leaves_the_shared_calendars_it_was_published_in():
    """The planner publishes a cancelled meeting again (SEQUENCE 3) to each calendar that had it,
    and to no other; its cancellations go to the members invited, not to one who never was."""
    from builders import group, member, utc

    from scheduler.core.config import Config, Service
    from scheduler.core.meetings import Meeting
    from scheduler.core.planner import StateView, plan

    g = group(member("Ann", "UTC"), member("Bo", "UTC"), zone="UTC")
    service = Service.model_construct(publish=("email", "caldav", "google"))  # the calendars are not contacted
    config = Config.model_construct(folder=Path("/nonexistent"), service=service, groups={g.id: g})
    start = utc(2027, 3, 10, 15)
    meeting = Meeting(g.id, "2027-03", "u@x", 0, start, start + timedelta(hours=1), utc(2027, 2, 1)).cancel(
        utc(2027, 3, 1))
    ann = g.members[0]
    state = StateView({(g.id, "2027-03"): meeting}, {"publish:g:2027-03:0|caldav", f"invite:g:2027-03|{ann.email}"},
                      {"invite:g:2027-03": {ann.email: (ann.name, "UTC", "2027-02-01T00:00:00Z")}}, {})
    sends = [s for s in plan(config, state, utc(2027, 3, 2), lambda *a: {}).sends if s.kind != "report"]
    assert sorted((s.kind, s.key, s.recipient) for s in sends) == [
        ("cancel", "cancel:g:2027-03", ann.email), ("publish", "publish:g:2027-03:3", "caldav")]
    assert not [s for s in plan(config, state, start + timedelta(minutes=1), lambda *a: {}).sends
                if s.kind in ("cancel", "publish")]


def test_a_member_added_after_a_move_gets_the_invite_at_the_new_time_and_no_update(cfg):
    """Someone joining after the move is invited at the new time (SEQUENCE 3) and is not told
    the meeting "moved": they never had the old time."""
    assert command(cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00") == 0
    tick(cfg, LATER + timedelta(minutes=5))
    newcomer = "noor.haddad@cedar-childrens.example"
    group_file = cfg / "groups" / "k-club.toml"
    group_file.write_text(group_file.read_text() + f'\n[[members]]\nname = "Noor Haddad"\nemail = "{newcomer}"\n'
                                                   'timezone = "America/Chicago"\n')
    tick(cfg, LATER + timedelta(minutes=10))
    [invite] = [m for m in received(cfg, "invite") if newcomer in str(m["To"])]
    event = calendar(invite).vevent
    assert event.sequence.value == "3" and event.dtstart.value.astimezone(UTC) == datetime(2026, 12, 15, 16, tzinfo=UTC)
    assert not [m for m in received(cfg, "update") if newcomer in str(m["To"])]


def test_preview_shows_the_meeting_the_service_scheduled_and_its_move(cfg, capsys):
    """Once the service has scheduled (and a coordinator moved) the meeting, `preview` shows
    that meeting: the agenda at the new time, the update with its "Was:" line."""
    assert command(cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00") == 0
    capsys.readouterr()
    for kind in ("agenda", "update"):
        assert main(["preview", "k-club", kind, "--config", str(cfg), "--now", LATER.isoformat(),
                     "--to", "maya.chen@northeast-childrens.example"]) == 0
        out = capsys.readouterr().out
        assert "Tuesday 15 December 2026" in out, out
    assert "Was:       Thursday 10 December 2026" in out


@pytest.mark.parametrize("zone, text, says", [
    ("Europe/London", "2027-03-28 01:30", "does not exist"),
    ("Europe/London", "2027-10-31 01:30", "happens twice"),
    ("America/St_Johns", "2027-03-14 02:30", "does not exist"),
    ("Asia/Kolkata", "2027-03-14 02:30", None),
])
def test_reschedule_reads_local_times_across_dst_in_europe_and_half_hour_zones(zone, text, says):
    """--to is wall-clock time in the group's zone: refused where London's or St John's clocks
    skip or repeat it, and read exactly in Kolkata (UTC+5:30, no DST)."""
    from builders import group, member
    from scheduler.app.changes import local_start
    from scheduler.core.errors import UsageError

    g = group(member("A", zone), zone=zone)
    if says:
        with pytest.raises(UsageError, match=says):
            local_start(g, text, NOW)
    else:
        assert local_start(g, text, NOW) == datetime(2027, 3, 13, 21, 0, tzinfo=UTC)


def test_a_garbage_hand_over_file_is_logged_and_skipped(cfg, capsys):
    """A meeting change file that is not one (truncated, or missing fields) is logged and left
    out; the tick goes on, and the change stored beside it still reaches the members."""
    assert command(cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00") == 0  # stored directly
    incoming = cfg / "var" / "incoming"
    incoming.mkdir(exist_ok=True)
    (incoming / "meeting-0-garbage.json").write_text('{"action": "cancel", "group"')
    (incoming / "meeting-1-unknown.json").write_text('{"action": "cancel", "group": "k-club", "cycle": "2026-12"}')
    capsys.readouterr()
    tick(cfg, LATER + timedelta(minutes=5))
    err = capsys.readouterr().err
    assert err.count("meeting change file ignored") == 2 and "Traceback" not in err
    assert len(received(cfg, "update")) == 12 and not december(cfg).cancelled
    assert sorted(p.name for p in incoming.iterdir()) == ["meeting-0-garbage.json.bad", "meeting-1-unknown.json.bad"]
    capsys.readouterr()
    tick(cfg, LATER + timedelta(minutes=10))  # set aside: not read again
    assert "ignored" not in capsys.readouterr().err


def test_a_handed_over_move_whose_time_passed_while_the_service_was_down_is_ignored(cfg, capsys):
    """A move handed to a service that then stopped until after the new time: applying it would
    put the meeting in the past (no update, follow-ups for a meeting that never was). It is
    ignored, and said so in the log."""
    state = cfg / "var" / "state.json"
    with Store(state):
        assert command(cfg, "reschedule", "k-club", "--to", "2026-12-02 11:00", "--force") == 0  # Maya is busy then
    before = december(cfg)
    capsys.readouterr()
    tick(cfg, datetime(2026, 12, 3, 12, tzinfo=UTC))
    assert "meeting change ignored" in capsys.readouterr().err
    assert december(cfg) == before and received(cfg, "update") == []


# --- who hears of a change ------------------------------------------------------------------

def change_plan(invited: dict, planned: set = frozenset(), *, cancel: bool = False):
    """The sends planned for a two-member group whose March meeting was moved (or cancelled) on
    1 March, given who had which invite (`invited`: email -> sent time or None)."""
    from builders import group, member, utc
    from scheduler.core.config import Config, Service
    from scheduler.core.meetings import Meeting
    from scheduler.core.planner import StateView, plan

    g = group(member("Ann", "UTC"), member("Bo", "UTC"), zone="UTC")
    config = Config(folder=Path("/nonexistent"), service=Service(), groups={g.id: g})
    start = utc(2027, 3, 10, 15)
    m = Meeting(g.id, "2027-03", "u@x", 0, start, start + timedelta(hours=1), utc(2027, 2, 1))
    m = m.cancel(utc(2027, 3, 1)) if cancel else m.moved(start + timedelta(days=1), start + timedelta(days=1, hours=1),
                                                           utc(2027, 3, 1))
    entries = {email: (email.split("@")[0], "UTC", sent) for email, sent in invited.items()}
    sids = {f"invite:g:2027-03|{e}" for e in invited} | set(planned)
    state = StateView({(g.id, "2027-03"): m}, sids, {"invite:g:2027-03": entries}, {})
    return sorted((s.kind, s.recipient) for s in plan(config, state, utc(2027, 3, 2), lambda *a: {}).sends
                  if s.kind in ("update", "cancel"))


ANN, BO, GONE = "ann@uni.example", "bo@uni.example", "gone@uni.example"


def test_updates_go_only_to_who_had_the_invite_before_the_move():
    """An invite sent before the move: an update. One still waiting, or sent after the move:
    none (it carries the new time). A member re-invited after leaving: the re-invite instead."""
    assert change_plan({ANN: "2027-02-01T10:00:00Z", BO: None}) == [("update", ANN)]
    assert change_plan({ANN: "2027-03-01T10:00:00Z", BO: "2027-02-01T10:00:00Z"}) == [("update", BO)]
    assert change_plan({ANN: "2027-02-01T10:00:00Z"}, {f"uninvite:g:2027-03|{ANN}"}) == []


def test_a_cancellation_goes_to_every_calendar_that_has_the_meeting():
    """Members who got the invite, and someone who left without their own cancellation yet;
    not a member whose invite never went out, nor one whose copy was cancelled already."""
    sent = "2027-02-01T10:00:00Z"
    assert change_plan({ANN: sent, BO: None, GONE: sent}, cancel=True) == [("cancel", ANN), ("cancel", GONE)]
    assert change_plan({ANN: sent, GONE: sent}, {f"uninvite:g:2027-03|{GONE}"}, cancel=True) == [("cancel", ANN)]
    # Ann left and came back (her copy was cancelled, then re-invited): the re-invite is in her
    # calendar, so she is told of the cancellation too.
    assert change_plan({ANN: sent}, {f"uninvite:g:2027-03|{ANN}"}, cancel=True) == [("cancel", ANN)]


def test_an_update_superseded_by_a_later_move_is_not_sent():
    """Two moves before the first update went out: the first update is skipped, the second
    carries the latest time, so nobody gets two."""
    from scheduler.compose.select import Skip, World, message_for
    from scheduler.app.loader import load_config
    from scheduler.core.meetings import Meeting
    from scheduler.app.templates import load_templates

    config = load_config(ROOT / "config" / "example")
    start = datetime(2026, 12, 10, 15, tzinfo=UTC)
    m = Meeting("k-club", "2026-12", UID, 0, start, start + timedelta(hours=1), NOW)
    twice = m.moved(start + timedelta(days=1), start + timedelta(days=1, hours=1), NOW).moved(
        start + timedelta(days=2), start + timedelta(days=2, hours=1), NOW)
    doc = {"key": "update:k-club:2026-12:3", "kind": "update", "group": "k-club",
           "recipient": "maya.chen@northeast-childrens.example", "name": "Maya Chen", "timezone": "America/New_York",
           "payload": {"cycle": "2026-12", "sequence": 3}, "created": "2026-11-20T12:00:00Z"}
    world = World({("k-club", "2026-12"): twice}, {})
    assert isinstance(message_for(outbox_record(**doc), config, world, load_templates(None), NOW), Skip)
    doc = {**doc, "key": "update:k-club:2026-12:6", "payload": {"cycle": "2026-12", "sequence": 6}}
    assert not isinstance(message_for(outbox_record(**doc), config, world, load_templates(None), NOW), Skip)


def test_a_move_forgets_the_answers_given_for_the_old_time(cfg):
    """Accepts and declines were for the old time: after a move they are dropped (the update
    asks again); a coordinator's record of who came is kept."""
    state = cfg / "var" / "state.json"
    with Store(state) as store:
        store.record_attendance("k-club", "2026-12", "maya.chen@northeast-childrens.example", True, "rsvp", NOW)
        store.record_attendance("k-club", "2026-12", "li.wang@pacific-u.example", False, "coordinator", NOW)
        store.record_attendance("k-club", "2026-11", "li.wang@pacific-u.example", True, "rsvp", NOW)
        store.commit()
    assert command(cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00") == 0
    with Store(state, lock=False) as store:
        left = sorted((r["cycle"], r["email"], r["source"]) for r in store.attendance("k-club"))
    assert left == [("2026-11", "li.wang@pacific-u.example", "rsvp"),
                    ("2026-12", "li.wang@pacific-u.example", "coordinator")]


def test_two_changes_within_one_second_are_both_applied_in_order(cfg, capsys):
    """A move and then a cancel in the same second, handed over to the running service: both
    count, in the order given (the state keeps times to the second)."""
    with Store(cfg / "var" / "state.json"):
        assert command(cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00") == 0
        assert command(cfg, "cancel", "k-club", "--cycle", "2026-12") == 0
    tick(cfg, LATER + timedelta(minutes=5))
    assert december(cfg).cancelled and december(cfg).moved_from is not None
    assert len(received(cfg, "cancel")) == 12 and received(cfg, "update") == []
