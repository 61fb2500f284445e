"""Hand-over intake (scheduler.app.handover): the `incoming/` protocol, both sides, and the
guests' answers read from a shared calendar, and RSVPs as real clients send them (the fixtures
in tests/fixtures/rsvp/) taken from the reply inbox. The commands end to end are in
test_attendance.py and test_changes.py."""

from __future__ import annotations

import json
import logging
import mailbox
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrations.inbox import MaildirInbox
from scheduler.app.handover import (Handover, decision_time, hand_over, incoming_folder, store_attendance,
                                    store_or_hand_over)
from scheduler.app.store import Store
from scheduler.compose.select import World, attendance_by_meeting
from scheduler.app.watcher import ConfigWatcher
from scheduler.core.errors import SendError
from scheduler.core.meetings import Meeting

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MAYA, LI = "maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"
JAMES, DANIEL = "james.carter@northeast-childrens.example", "daniel.okafor@lakeshore-u.example"
RSVPS = ROOT / "tests" / "fixtures" / "rsvp"
START = datetime(2026, 12, 10, 15, tzinfo=UTC)
MEETING = Meeting("k-club", "2026-12", "k-club-2026-12@mentoring.example.org", 0, START, START + timedelta(hours=1),
                  NOW - timedelta(days=1))


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    return folder


def intake(folder: Path, store: Store, **extra) -> Handover:
    watcher = ConfigWatcher(folder)
    return Handover(store, lambda: watcher.config, store.commit, **extra)


def test_a_record_handed_over_is_stored_at_the_next_intake_and_its_file_removed(folder):
    """While the service holds the lock the writer leaves a JSON file in incoming/; intake stores it, then
    removes it."""
    state = folder / "var" / "state.json"
    with Store(state) as store:
        record = {"group": "k-club", "cycle": "2026-12", "present": [MAYA], "absent": [LI]}
        assert store_or_hand_over(state, "attendance", record, lambda s: None, NOW).startswith("handed to")
        [path] = incoming_folder(state).glob("attendance-*.json")
        assert json.loads(path.read_text()) == record
        intake(folder, store).ingest(NOW)
        assert {r["email"]: r["present"] for r in store.attendance("k-club")} == {MAYA: True, LI: False}
    assert not path.exists()


def test_without_a_running_service_the_record_is_stored_at_once(folder):
    """No one holds the lock: the command stores the record itself and nothing is handed over."""
    state = folder / "var" / "state.json"
    record = {"group": "k-club", "cycle": "2026-12", "present": [MAYA], "absent": []}
    assert store_or_hand_over(state, "attendance", record, lambda s: store_attendance(s, record, NOW), NOW) == "stored"
    assert not incoming_folder(state).exists()
    with Store(state, lock=False) as reader:
        assert [r["email"] for r in reader.attendance("k-club")] == [MAYA]


def test_an_unreadable_hand_over_file_is_set_aside_and_the_rest_stored(folder):
    """A file that is not a record is kept as .bad for a person, never read again; the good one is stored."""
    state = folder / "var" / "state.json"
    with Store(state) as store:
        hand_over(state, "attendance", {"group": "k-club", "cycle": "2026-12", "present": [MAYA], "absent": []}, NOW)
        bad = incoming_folder(state) / "attendance-0-garbage.json"
        bad.write_text("{not json")
        intake(folder, store).ingest(NOW)
        assert [r["email"] for r in store.attendance("k-club")] == [MAYA]
    assert bad.with_name(bad.name + ".bad").exists() and not bad.exists()
    assert not list(incoming_folder(state).glob("*.json"))


def test_a_change_is_decided_after_any_waiting_change_to_the_same_meeting(folder):
    """Two commands in one second: the second is decided a second after the first, still waiting in incoming/."""
    state = folder / "var" / "state.json"
    assert decision_time(NOW, MEETING, state) == NOW
    hand_over(state, "meeting", {"action": "cancel", "group": "k-club", "cycle": "2026-12",
                                 "decided": "2026-11-20T12:00:00Z"}, NOW)
    assert decision_time(NOW, MEETING, state) == NOW + timedelta(seconds=1)


class Guests:
    """A shared calendar that tells its guests' answers (a GuestAnswers port), counting its calls."""

    def __init__(self, answers: dict[str, str] | Exception):
        self.answers, self.calls = answers, 0

    def publish(self, group, meeting, event=None) -> None: ...

    def cancel(self, group, meeting) -> None: ...

    def responses(self, group, meeting) -> dict[str, str]:
        self.calls += 1
        if isinstance(self.answers, Exception):
            raise self.answers
        return self.answers


class NoGuests:
    def publish(self, group, meeting, event=None) -> None: ...

    def cancel(self, group, meeting) -> None: ...


def test_guests_answers_are_rsvps_read_once_a_day(folder):
    """accepted/declined become RSVPs, tentative a tentative one; a non-member's answer is ignored; each
    meeting is read once a day."""
    with Store(folder / "var" / "state.json") as store:
        store.save_meeting(MEETING)
        guests = Guests({MAYA: "accepted", LI: "declined", "stranger@x.example": "accepted"})
        handover = intake(folder, store)
        handover.guest_answers(NOW, {"google": guests})
        handover.guest_answers(NOW + timedelta(hours=1), {"google": guests})
        assert guests.calls == 1
        assert {r["email"]: r["present"] for r in store.attendance("k-club")} == {MAYA: True, LI: False}
        handover.guest_answers(NOW + timedelta(days=1), {"google": guests})
        assert guests.calls == 2
        guests.answers = {MAYA: "tentative"}
        handover.guest_answers(NOW + timedelta(days=2), {"google": guests})
        assert [r.get("tentative") for r in store.attendance("k-club") if r["email"] == MAYA] == [True]


def test_a_calendar_without_guests_answers_or_failing_is_no_stop(folder):
    """A publisher that cannot tell answers is not asked; one that fails is logged and asked again the next day."""
    with Store(folder / "var" / "state.json") as store:
        store.save_meeting(MEETING)
        handover = intake(folder, store)
        handover.guest_answers(NOW, {"google": NoGuests()})
        failing = Guests(SendError("Google said 500", transient=True))
        handover.guest_answers(NOW, {"google": failing})
        handover.guest_answers(NOW, {"google": failing})
        assert failing.calls == 1 and store.attendance("k-club") == []


@pytest.fixture
def inbox_folder(folder) -> Path:
    """The example config with `[mail] inbox` set, and December's meeting stored."""
    service = (folder / "service.toml").read_text().replace("sender_name = ", 'inbox = "var/inbox"\nsender_name = ')
    (folder / "service.toml").write_text(service)
    with Store(folder / "var" / "state.json") as store:
        store.save_meeting(MEETING)
        store.commit()
    return folder


def deliver(folder: Path, *names: str) -> None:
    box = mailbox.Maildir(folder / "var" / "inbox", create=True)
    for name in names:
        box.add((RSVPS / name).read_bytes())


def answers(store: Store) -> dict[str, str]:
    return {r["email"]: "tentative" if r.get("tentative") else ("yes" if r["present"] else "no")
            for r in store.attendance("k-club")}


def test_every_clients_tentative_reply_is_recorded_as_tentative(inbox_folder, caplog):
    """Google, Outlook for Mac, iPhone and Android Exchange Tentative replies: each stored as tentative, once."""
    deliver(inbox_folder, "google_tentative.eml", "outlook_mac_tentative.eml", "iphone_tentative.eml",
            "android_exchange_tentative.eml")
    caplog.set_level(logging.INFO)
    with Store(inbox_folder / "var" / "state.json") as store:
        intake(inbox_folder, store, inbox=MaildirInbox()).ingest(NOW)
        assert answers(store) == {LI: "tentative", MAYA: "tentative", JAMES: "tentative", DANIEL: "tentative"}
    assert caplog.text.count("rsvp recorded") == 4   # Google's second copy (invite.ics) is not logged again
    assert all("S" in m.get_flags() for m in mailbox.Maildir(inbox_folder / "var" / "inbox", create=False))


def test_accept_and_decline_from_every_client(inbox_folder):
    """Each client's Accept and Decline are present and absent; a later answer replaces an earlier one."""
    deliver(inbox_folder, "google_accepted.eml", "outlook_mac_declined.eml", "iphone_accepted.eml",
            "android_exchange_declined.eml")
    with Store(inbox_folder / "var" / "state.json") as store:
        handover = intake(inbox_folder, store, inbox=MaildirInbox())
        handover.ingest(NOW)
        assert answers(store) == {LI: "yes", MAYA: "no", JAMES: "yes", DANIEL: "no"}
        deliver(inbox_folder, "google_declined.eml", "outlook_mac_accepted.eml", "iphone_declined.eml",
                "android_exchange_accepted.eml")
        handover.ingest(NOW + timedelta(minutes=5))
        assert answers(store) == {LI: "no", MAYA: "yes", JAMES: "no", DANIEL: "yes"}


def test_an_answer_about_the_time_before_a_move_is_not_recorded(inbox_folder, caplog):
    """After a move, a Decline with the old SEQUENCE (Outlook) or the old start and no SEQUENCE (Exchange)
    is stale: logged, the message marked seen, nothing stored against the new time."""
    moved = MEETING.moved(START + timedelta(days=1), START + timedelta(days=1, hours=1), NOW)
    deliver(inbox_folder, "outlook_mac_declined.eml", "android_exchange_declined.eml")
    caplog.set_level(logging.INFO)
    with Store(inbox_folder / "var" / "state.json") as store:
        store.save_meeting(moved)
        intake(inbox_folder, store, inbox=MaildirInbox()).ingest(NOW)
        assert store.attendance("k-club") == []
    assert caplog.text.count("stale rsvp ignored") == 2 and "rsvp recorded" not in caplog.text
    assert all("S" in m.get_flags() for m in mailbox.Maildir(inbox_folder / "var" / "inbox", create=False))


def test_tentative_counts_neither_as_present_nor_as_absent(inbox_folder):
    """The review's numbers (50% target) leave a Tentative out: one accepted of one answered, not one of two."""
    deliver(inbox_folder, "google_accepted.eml", "iphone_tentative.eml")
    with Store(inbox_folder / "var" / "state.json") as store:
        intake(inbox_folder, store, inbox=MaildirInbox()).ingest(NOW)
        world = World(store.meetings(), {"k-club": store.attendance("k-club")})
    assert attendance_by_meeting(world, "k-club", START.date(), START.date()) == [
        {"date": START.date(), "present": [LI], "absent": []}]


def test_a_state_written_before_tentative_answers_reads_as_before(folder):
    """Records without a "tentative" field (every state written so far) are plain present/absent answers."""
    state = folder / "var" / "state.json"
    with Store(state) as store:
        store.record_attendance("k-club", "2026-12", MAYA, False, "rsvp", NOW)
        store.commit()
    with Store(state, lock=False) as reader:
        [record] = reader.attendance("k-club")
    assert "tentative" not in record and record["present"] is False


def test_the_coordinators_report_shows_a_tentative_answer_as_maybe(inbox_folder):
    """The next meeting in the report: Li accepted, James said maybe (not declined, not 'not answered')."""
    from builders import outbox_record
    from scheduler.app.templates import load_templates
    from scheduler.compose.select import message_for

    deliver(inbox_folder, "google_accepted.eml", "iphone_tentative.eml")
    watcher = ConfigWatcher(inbox_folder)
    with Store(inbox_folder / "var" / "state.json") as store:
        Handover(store, lambda: watcher.config, store.commit, inbox=MaildirInbox()).ingest(NOW)
        world = World(store.meetings(), {"k-club": store.attendance("k-club")})
    record = outbox_record(key="report:k-club:2026-12", kind="report", group="k-club", recipient=MAYA,
                           name="Maya Chen", timezone="America/New_York", payload={"month": "2026-12"},
                           created="2026-12-01T14:00:00Z")
    msg = message_for(record, watcher.config, world, load_templates(None), datetime(2026, 12, 1, 14, tzinfo=UTC))
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert "Accepted: Li Wang\n" in text and "Maybe: James Carter\n" in text and "Declined: nobody\n" in text
    assert "James Carter" not in text.split("Not answered:")[1].splitlines()[0]
    assert ">Maybe</td><td>James Carter<" in html


def test_a_mistyped_tentative_field_stops_the_state_with_one_line(folder):
    """A hand-edited "tentative": "yes" is named when the state is read, like any other mistyped field."""
    from scheduler.core.errors import StateError

    state = folder / "var" / "state.json"
    with Store(state) as store:
        store.record_attendance("k-club", "2026-12", MAYA, None, "rsvp", NOW)
        store.commit()
    # Hand-edited as a schema 2 file (no checksum), which friendtor still reads: in a schema 3
    # file any edit is refused by the checksum before a field is looked at.
    doc = json.loads(state.read_text())
    doc.pop("checksum")
    doc["meta"]["1"]["schema"] = 2
    doc["attendance"]["1"]["tentative"] = "yes"
    state.write_text(json.dumps(doc))
    with pytest.raises(StateError, match="attendance record 1 has a 'tentative' that is not true or false"):
        Store(state, lock=False)


def test_two_nodes_on_one_database_take_turns_at_a_shared_inbox(inbox_folder, pg_url):
    """Nodes whose configs name one Maildir: while one node reads it (its turn lasts until the
    replies are committed and marked seen), another node's intake reads nothing; after, it may."""
    from scheduler.app.pgstore import PgStore
    from scheduler.core.config import Service

    deliver(inbox_folder, "google_accepted.eml", "outlook_mac_declined.eml")
    with PgStore(pg_url, Service()) as one, PgStore(pg_url, Service()) as two:
        one.save_meeting(MEETING)
        one.commit()
        with one.inbox_turn() as mine:
            assert mine
            intake(inbox_folder, two, inbox=MaildirInbox()).ingest(NOW)   # not its turn: nothing read
            assert answers(two) == {}
            assert not any("S" in m.get_flags() for m in mailbox.Maildir(inbox_folder / "var" / "inbox", create=False))
        intake(inbox_folder, two, inbox=MaildirInbox()).ingest(NOW)      # its turn now
        assert answers(two) == {LI: "yes", MAYA: "no"}
        with two.inbox_turn() as mine:   # the turn was given back after the intake
            assert mine


def test_a_tinydb_state_is_always_its_own_inbox_turn(tmp_path):
    """One process owns a TinyDB state (its lock file): the inbox is always its to read."""
    with Store(tmp_path / "state.json") as store, store.inbox_turn() as mine:
        assert mine
