"""Hand-over intake (scheduler.app.handover): the `incoming/` protocol, both sides, and the
guests' answers read from a shared calendar. The commands and the RSVP inbox end to end are
in test_attendance.py and test_changes.py."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.app.handover import (Handover, decision_time, hand_over, incoming_folder, store_attendance,
                                    store_or_hand_over)
from scheduler.app.store import Store
from scheduler.app.watcher import ConfigWatcher
from scheduler.core.errors import SendError
from scheduler.core.meetings import Meeting

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MAYA, LI = "maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"
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
    """accepted/declined become RSVPs; a non-member's answer is ignored; each meeting is read once a day."""
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
