"""Attendance: coordinators' records, RSVPs from iMIP replies, and the numbers in reviews."""

from __future__ import annotations

import logging
import mailbox
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest

from builders import example_after_first_run
import time_machine

from integrations.inbox import MaildirInbox
from integrations.mail import DryRunTransport
from scheduler.core.attendance import replies_in
from scheduler.cli.main import main
from scheduler.compose.context import for_review
from scheduler.compose.select import World, attendance_by_meeting
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.app.store import Store

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
AFTER = datetime(2026, 12, 11, 12, tzinfo=UTC)
MAYA, LI, JAMES = ("maya.chen@northeast-childrens.example", "li.wang@pacific-u.example",
                   "james.carter@northeast-childrens.example")


@pytest.fixture
def cfg(tmp_path, capsys):
    """The example config with December's meeting scheduled (Thu 10 Dec 2026) and an inbox set."""
    folder = example_after_first_run(tmp_path, NOW, inbox=True)
    capsys.readouterr()
    return folder


def attend(argv: list[str]) -> int:
    """The `attendance` command the day after December's meeting (it refuses one still to come)."""
    with time_machine.travel(AFTER, tick=False):
        return main(argv)


def runner(folder: Path, store: Store) -> Runner:
    return Runner(ConfigWatcher(folder), store, lambda c: DryRunTransport(), availability=lambda *a: {},
                  inbox=MaildirInbox())


def records(folder: Path) -> dict[str, tuple[bool, str]]:
    with Store(folder / "var" / "state.json", lock=False) as s:
        return {r["email"]: (r["present"], r["source"]) for r in s.attendance("k-club")}


def reply(attendee: str, partstat: str, uid: str = "k-club-2026-12@mentoring.example.org",
          sender: str | None = None) -> EmailMessage:
    cal = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar//EN\r\nMETHOD:REPLY\r\n"
           f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261121T000000Z\r\nDTSTART:20261210T150000Z\r\n"
           f"SEQUENCE:0\r\nATTENDEE;PARTSTAT={partstat};CN=Someone:mailto:{attendee}\r\n"
           f"ORGANIZER:mailto:k-club@mentoring.example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    msg = EmailMessage()
    local, _, domain = (sender or attendee).partition("@")
    msg["From"] = Address("Someone", local, domain)
    msg["To"] = "k-club@mentoring.example.org"
    msg["Subject"] = f"{partstat.title()}: K Club"
    msg.set_content("reply")
    msg.add_alternative(cal.encode(), maintype="text", subtype="calendar", params={"method": "REPLY"})
    return msg


def test_coordinator_records_attendance(cfg, capsys):
    """`attendance GROUP DATE --present/--absent` stores one record per member for that meeting."""
    code = attend(["attendance", "k-club", "2026-12-10", "--config", str(cfg), "--present", MAYA, LI.upper(),
                 "--absent", JAMES])
    assert code == 0 and "2 present, 1 absent" in capsys.readouterr().out
    assert records(cfg) == {MAYA: (True, "coordinator"), LI: (True, "coordinator"), JAMES: (False, "coordinator")}


def test_record_made_while_the_service_runs_is_picked_up_at_the_next_tick(cfg, capsys):
    """With the service holding the lock, the record waits in incoming/ and the next tick stores it."""
    with Store(cfg / "var" / "state.json") as store:
        assert attend(["attendance", "k-club", "2026-12-10", "--config", str(cfg), "--present", MAYA]) == 0
        assert "handed to the running service" in capsys.readouterr().out
        dropped = list((cfg / "var" / "incoming").glob("attendance-*.json"))
        assert len(dropped) == 1
        runner(cfg, store).tick(NOW)
    assert records(cfg) == {MAYA: (True, "coordinator")}
    assert not dropped[0].exists()


def test_rsvps_from_the_inbox(cfg, caplog):
    """Accept, Decline and Tentative replies become RSVPs; a non-member's reply is ignored and logged; replies are
    marked seen, and anything else (a note, a bounce) is left unread for a person."""
    box = mailbox.Maildir(cfg / "var" / "inbox", create=True)
    box.add(reply(LI, "ACCEPTED"))
    box.add(reply(JAMES, "DECLINED"))
    box.add(reply("stranger@elsewhere.example", "ACCEPTED"))
    box.add(reply(MAYA, "TENTATIVE"))
    plain = EmailMessage()
    plain["From"] = "someone@else.example"
    plain.set_content("Thanks for organising!")
    box.add(plain)
    caplog.set_level(logging.INFO)
    with Store(cfg / "var" / "state.json") as store:
        runner(cfg, store).tick(NOW)
    assert records(cfg) == {LI: (True, "rsvp"), JAMES: (False, "rsvp"), MAYA: (False, "rsvp")}  # Maya: tentative
    assert "reply from a non-member ignored" in caplog.text
    flags = {m["Subject"]: "S" in m.get_flags() for m in mailbox.Maildir(cfg / "var" / "inbox", create=False)}
    assert flags == {"Accepted: K Club": True, "Declined: K Club": True, "Tentative: K Club": True, None: False}


def test_rsvp_never_overrides_the_coordinator(cfg):
    """A late Decline does not undo a coordinator's record that the member came."""
    attend(["attendance", "k-club", "2026-12-10", "--config", str(cfg), "--present", LI])
    mailbox.Maildir(cfg / "var" / "inbox", create=True).add(reply(LI, "DECLINED"))
    with Store(cfg / "var" / "state.json") as store:
        runner(cfg, store).tick(NOW)
    assert records(cfg)[LI] == (True, "coordinator")


@pytest.mark.parametrize("payload", [b"not a calendar", b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\n", b""])
def test_broken_reply_attachments_are_ignored(payload):
    """A reply whose calendar cannot be read yields no RSVP, and no error."""
    msg = EmailMessage()
    msg["From"] = "a@b.example"
    msg.set_content("x")
    msg.add_attachment(payload, maintype="text", subtype="calendar")
    assert replies_in(msg) == []


@pytest.mark.parametrize(("argv", "expected"), [
    (["2026-12-10"], "name who came with --present"),
    (["10/12/2026", "--present", MAYA], "DATE: '10/12/2026' is not a date"),
    (["2026-12-11", "--present", MAYA], "k-club had no meeting on 2026-12-11"),
    (["2026-12-10", "--present", "nobody@x.example"], "nobody@x.example: not a member of k-club"),
    (["2026-12-10", "--present", MAYA, "--absent", MAYA], "listed both --present and --absent"),
], ids=["nobody-named", "bad-date", "no-meeting", "stranger", "both"])
def test_bad_attendance_input(cfg, capsys, argv, expected):
    """Bad attendance commands exit 2 with one line and store nothing."""
    code = attend(["attendance", "k-club", argv[0], "--config", str(cfg), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err
    assert records(cfg) == {}


def test_review_numbers_come_from_recorded_attendance(cfg):
    """The mission review counts present and absent per meeting and compares with the 50% target."""
    attend(["attendance", "k-club", "2026-12-10", "--config", str(cfg), "--present", MAYA, LI, "--absent", JAMES])
    with Store(cfg / "var" / "state.json", lock=False) as s:
        world = World(s.meetings(), {"k-club": s.attendance("k-club")})
    meetings = attendance_by_meeting(world, "k-club", date(2026, 7, 13), date(2027, 1, 13))
    assert meetings == [{"date": date(2026, 12, 10), "present": [MAYA, LI], "absent": [JAMES]}]
    group = ConfigWatcher(cfg).config.groups["k-club"]
    review = for_review({}, group, date(2026, 7, 13), date(2027, 1, 13), meetings)
    assert review["attendance"]["meetings"][0] == {"date": "Thu 10 Dec 2026", "present": 2, "of": 3, "percent": 67}
    assert review["attendance"]["met"] is True


def test_a_broken_inbox_does_not_stop_sending(cfg, caplog):
    """An inbox that cannot be read is logged; the tick still plans and sends."""
    (cfg / "var" / "inbox").mkdir(parents=True)
    (cfg / "var" / "inbox" / "new").mkdir()
    (cfg / "var" / "inbox" / "cur").write_text("not a folder")
    caplog.set_level(logging.INFO)
    with Store(cfg / "var" / "state.json") as store:
        report = runner(cfg, store).tick(datetime(2026, 12, 8, 16, tzinfo=UTC))  # agenda time
    assert sum(d.kind == "agenda" for d in report.sent) == 12  # plus the year-end prompt, due too
    assert "attendance intake failed" in caplog.text


def test_simulation_leaves_the_real_inbox_alone(cfg, tmp_path):
    """`simulate` never reads or marks the operator's reply inbox."""
    mailbox.Maildir(cfg / "var" / "inbox", create=True).add(reply(LI, "ACCEPTED"))
    assert main(["simulate", "--config", str(cfg), "--from", "2026-12-01", "--to", "2026-12-02",
                 "--step", "1d", "--out", str(tmp_path / "sim")]) == 0
    assert [m.get_subdir() for m in mailbox.Maildir(cfg / "var" / "inbox", create=False)] == ["new"]


def test_review_shows_attendance_per_member(cfg):
    """Each member's attended/recorded count appears in the review, in text and HTML."""
    from scheduler.compose.build import build
    from scheduler.app.templates import load_templates

    attend(["attendance", "k-club", "2026-12-10", "--config", str(cfg), "--present", MAYA, LI, "--absent", JAMES])
    config = ConfigWatcher(cfg).config
    group = config.groups["k-club"]
    with Store(cfg / "var" / "state.json", lock=False) as s:
        world = World(s.meetings(), {"k-club": s.attendance("k-club")})
    records = attendance_by_meeting(world, "k-club", date(2026, 7, 13), date(2027, 1, 13), group.tz)
    from scheduler.compose.build import base_context
    context = for_review(base_context(config, group, group.members[0]), group, date(2026, 7, 13),
                         date(2027, 1, 13), records)
    assert context["attendance"]["by_member"] == [
        {"name": "Maya Chen", "present": 1, "of": 1, "percent": 100},
        {"name": "James Carter", "present": 0, "of": 1, "percent": 0},
        {"name": "Li Wang", "present": 1, "of": 1, "percent": 100}]
    msg = build("review", config=config, templates=load_templates(None), group=group, recipient=group.members[0],
                context=context, key="review:k-club:2027-01-13", now=NOW)
    assert "James Carter: 0 of 1 (0%)" in msg.get_body(("plain",)).get_content()
    assert "James Carter" in msg.get_body(("html",)).get_content()
