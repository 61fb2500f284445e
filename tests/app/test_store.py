"""The state file: atomic writes, 0600, one owner, and a damaged file is never replaced."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from builders import group, member

from scheduler.app import statefile
from scheduler.cli.main import main
from scheduler.core.meetings import Meeting
from scheduler.app.records import from_doc, to_doc
from scheduler.app.store import StateError, Store, iso
from scheduler.core.outbox import Kind, MeetingPayload, OutboxRecord, Send, Status, sid

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def meeting(cycle="2027-03") -> Meeting:
    return Meeting("g", cycle, f"g-{cycle}@x.example", 0, NOW, NOW + timedelta(hours=1), NOW)


PAYLOADS = {"nudge": {"due": "2027-03-10"}, "report": {"month": "2027-03"}}


def send_doc(key: str, recipient: str = "a@x.example", status: str = "pending", **fields) -> dict:
    """An outbox record's document as the state file holds it (see scheduler.app.records)."""
    stamp = "2027-03-01T00:00:00Z"
    kind = key.split(":")[0] if key.split(":")[0] in set(Kind) else "agenda"
    return {"key": key, "kind": kind, "group": "g", "recipient": recipient, "name": "A",
            "timezone": "UTC", "payload": PAYLOADS.get(kind, {"cycle": "2027-03"}), "status": status, "attempts": 0,
            "last_error": None, "message_id": None, "created": stamp, "updated": stamp, "due": stamp,
            "next_attempt": None, "sent_at": None, "expires": "2027-06-01T00:00:00Z", **fields}


def send(key: str, recipient: str = "a@x.example", status: str = "pending", **fields) -> OutboxRecord:
    """An outbox record as the service plans and moves it on."""
    return from_doc(send_doc(key, recipient, status, **fields))


def update(store: Store, sid: str, status: str, **fields) -> None:
    """Record that the send `sid` moved on to `status` (delivery's way)."""
    [record] = [r for r in store.sends() if r.sid == sid]
    store.update_sends([record.moved_on(Status(status), **fields)])


# --- what every backend does (the `store` fixture runs each test once per backend) ------------


def test_what_is_committed_reads_back(store):
    """Meetings, outbox records, alerts and attendance committed and read again are what was stored."""
    with store() as s:
        s.save_meeting(meeting())
        s.add_sends([send("invite:g:2027-03"), send("agenda:g:2027-03", status="sent", sent_at=iso(NOW))])
        s.note_alert("g", "2027-04", NOW.date())
        s.record_attendance("g", "2027-03", "a@x.example", True, "coordinator", NOW)
        assert s.commit()
    with store(lock=False) as s:
        assert s.meetings() == {("g", "2027-03"): meeting()}
        assert sorted(r.sid for r in s.sends()) == ["agenda:g:2027-03|a@x.example", "invite:g:2027-03|a@x.example"]
        assert [r.sent_at for r in s.sends() if r.status == "sent"] == [NOW]
        assert s.alerts() == {("g", "2027-04"): NOW.date()}
        assert [(a["email"], a["present"]) for a in s.attendance("g")] == [("a@x.example", True)]


def test_a_send_already_in_the_outbox_is_never_added_again(store):
    """Same key and recipient, in any status: the record there stays as it is."""
    with store() as s:
        assert s.add_sends([send("invite:g:2027-03", status="sent"), send("invite:g:2027-03")]) == 1
        assert s.add_sends([send("invite:g:2027-03", "b@x.example"), send("invite:g:2027-03")]) == 1
        assert {(r.recipient, r.status) for r in s.sends()} == {("a@x.example", "sent"), ("b@x.example", "pending")}


def test_progress_moves_a_record_between_open_failed_and_invited(store):
    """update_sends stores how far a record got; the open, failed and invited views follow."""
    with store() as s:
        s.add_sends([send("invite:g:2027-03"), send("agenda:g:2027-03")])
        assert {r.sid for r in s.open_sends()} == set(s.planned)
        assert dict(s.invited) == {"invite:g:2027-03": {"a@x.example": ("A", "UTC", None)}}
        update(s, "invite:g:2027-03|a@x.example", "sent", attempts=1, sent_at=NOW, message_id="<m@x>")
        update(s, "agenda:g:2027-03|a@x.example", "failed", attempts=1, last_error="550 no such user")
        assert s.open_sends() == []
        [failed] = s.failed_sends()
        assert (failed.key, failed.last_error, failed.attempts) == ("agenda:g:2027-03", "550 no such user", 1)
        assert dict(s.invited) == {"invite:g:2027-03": {"a@x.example": ("A", "UTC", iso(NOW))}}
        [sent] = [r for r in s.sends() if r.status == "sent"]
        assert (sent.message_id, sent.sent_at) == ("<m@x>", NOW)


def test_an_rsvp_never_overwrites_the_coordinators_record_and_a_move_forgets_rsvps(store):
    """The coordinator's word on who came wins over an RSVP; forget_rsvps drops only RSVPs."""
    with store() as s:
        assert s.record_attendance("g", "2027-03", "a@x.example", True, "coordinator", NOW)
        assert not s.record_attendance("g", "2027-03", "a@x.example", False, "rsvp", NOW)
        assert s.record_attendance("g", "2027-03", "b@x.example", False, "rsvp", NOW)
        assert s.forget_rsvps("g", "2027-03") == 1
        assert [(a["email"], a["present"], a["source"]) for a in s.attendance("g")] == [
            ("a@x.example", True, "coordinator")]


def test_prune_forgets_only_finished_sends_past_their_expiry(store):
    """Sent records whose key can no longer be planned are dropped after keep_days; pending ones never."""
    with store() as s:
        old = (NOW - timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
        s.add_sends([send("a", status="sent", expires=old), send("b", expires=old),
                     send("c", status="sent", expires="2099-01-01T00:00:00Z")])
        assert s.prune(NOW, timedelta(days=60)) == 1
        assert sorted(d.key for d in s.sends()) == ["b", "c"]


def test_a_record_round_trips_through_its_document():
    """A record moved on (retry, with an error and a next attempt) survives the store's document."""
    send = Send("update:g:2027-03:3", Kind.UPDATE, "g", "ana.souza@uni.example", "Ana Souza", "Europe/London", NOW,
                MeetingPayload("2027-03", sequence=3))
    g = group(member("Ana Souza", "Europe/London"), member("Ravi Iyer", "Asia/Kolkata"))
    record = OutboxRecord.planned(send, g, NOW).moved_on(Status.RETRY, attempts=1, last_error="451 later",
                                                         next_attempt=NOW + timedelta(minutes=5))
    doc = to_doc(record)
    assert doc["sid"] == sid(send.key, send.recipient) == record.sid == send.sid
    assert (doc["status"], doc["next_attempt"], doc["kind"]) == ("retry", "2027-03-01T00:05:00Z", "update")
    assert from_doc(json.loads(json.dumps(doc))) == record


# --- the TinyDB backend's own file: mode, journal, lock, damage -------------------------------


def test_state_is_private_and_round_trips(tmp_path):
    """The state file is created 0600 and reads back what was written."""
    path = tmp_path / "var" / "state.json"
    with Store(path) as store:
        store.save_meeting(meeting())
        store.add_sends([send("invite:g:2027-03")])
        assert store.commit()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Store(path) as store:
        assert store.meetings()[("g", "2027-03")] == meeting()
        assert [d.sid for d in store.sends()] == ["invite:g:2027-03|a@x.example"]


def test_nothing_changed_means_nothing_written(tmp_path):
    """A commit with no change does not touch the file."""
    path = tmp_path / "state.json"
    with Store(path) as store:
        store.save_meeting(meeting())
        store.commit()
    before = path.stat().st_mtime_ns
    with Store(path) as store:
        store.meetings()
        store.prune(NOW, timedelta(days=60))
        assert not store.commit()
    assert path.stat().st_mtime_ns == before


def one_group_config(folder) -> None:
    """The smallest valid config: one group of one member, in `folder`."""
    (folder / "groups").mkdir(parents=True)
    (folder / "groups" / "g.toml").write_text(
        'name = "G"\ntimezone = "UTC"\ncoordinators = ["a@x.example"]\nstarted = 2026-01-01\n'
        '[[members]]\nname = "A"\nemail = "a@x.example"\ntimezone = "UTC"\n')


@pytest.fixture
def full_writes(monkeypatch):
    """Every commit rewrites the whole file (as when the journal has grown large)."""
    monkeypatch.setattr(statefile, "COMPACT_MIN", 0)
    monkeypatch.setattr(statefile, "COMPACT_SHARE", 10**9)


def test_crash_during_a_full_write_leaves_the_old_state(tmp_path, monkeypatch, full_writes):
    """If the process dies between writing the temp file and renaming it, the old state is intact."""
    path = tmp_path / "state.json"
    with Store(path) as store:
        store.save_meeting(meeting("2027-03"))
        store.commit()
    old = path.read_bytes()

    def die(*args):
        raise KeyboardInterrupt  # what a signal at that instant looks like

    with Store(path) as store:
        store.save_meeting(meeting("2027-04"))
        monkeypatch.setattr(os, "replace", die)
        with pytest.raises(KeyboardInterrupt):
            store.commit()
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("mode", ["full write", "journal"])
def test_disk_full_is_a_clear_error_and_nothing_is_lost(tmp_path, monkeypatch, mode):
    """A failed write (disk full) says so in one line; the state on disk stays readable, and the
    next commit, once there is room, writes everything that was held in memory."""
    if mode == "full write":
        monkeypatch.setattr(statefile, "COMPACT_MIN", 0)
        monkeypatch.setattr(statefile, "COMPACT_SHARE", 10**9)
    path = tmp_path / "state.json"
    with Store(path) as store:
        store.save_meeting(meeting("2027-03"))
        store.commit()
    old = path.read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    with Store(path) as store:
        if mode == "journal":  # the journal is open already: the line reaches the file, its fsync fails
            store.save_meeting(meeting("2027-02"))
            store.commit()
            assert (tmp_path / "state.json.journal").stat().st_size > 0
        journal_before = (tmp_path / "state.json.journal").stat().st_size if mode == "journal" else 0
        store.save_meeting(meeting("2027-04"))
        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(StateError, match=f"{path}: cannot write the state \\(No space left on device\\)"):
            store.commit()
        if mode == "journal":
            assert (tmp_path / "state.json.journal").stat().st_size > journal_before
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert path.read_bytes() == old
        with Store(path, lock=False) as reader:  # still readable, whatever the failed write left
            assert ("g", "2027-03") in reader.meetings()
        store.save_meeting(meeting("2027-05"))
        assert store.commit()
    with Store(path) as store:
        expected = ["2027-02"] * (mode == "journal") + ["2027-03", "2027-04", "2027-05"]
        assert sorted(c for _, c in store.meetings()) == expected
        assert not (tmp_path / "state.json.journal").exists() or (
            tmp_path / "state.json.journal").stat().st_size == 0  # the full write emptied it


# --- the journal ------------------------------------------------------------------------------


def big_state(path, n=400):
    """A state whose full file is large next to one change (a few hundred sent records)."""
    with Store(path) as store:
        store.add_sends([send(f"agenda:g:{i}", status="sent") for i in range(n)])
        store.commit()


def test_a_small_change_goes_to_the_journal_not_the_whole_file(tmp_path):
    """Recording a batch appends one line to `<state>.journal`; the big file is not rewritten,
    and reading the state gives the file plus the journal."""
    path = tmp_path / "state.json"
    big_state(path)
    before = path.stat()
    with Store(path) as store:
        store.add_sends([send("invite:g:2027-03")])
        assert store.commit()
        update(store, "invite:g:2027-03|a@x.example", "sent", attempts=1)
        assert store.commit()
        assert not store.commit()  # nothing new
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    journal = tmp_path / "state.json.journal"
    assert len(journal.read_bytes().splitlines()) == 2
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    with Store(path, lock=False) as reader:
        [doc] = [d for d in reader.sends() if d.key == "invite:g:2027-03"]
        assert (doc.status, doc.attempts) == ("sent", 1)


def test_the_journal_is_folded_into_the_file_when_it_grows(tmp_path, monkeypatch):
    """Once the journal would pass a quarter of the file, the file is rewritten whole and the
    journal emptied; nothing is lost on the way."""
    monkeypatch.setattr(statefile, "COMPACT_MIN", 0)
    path = tmp_path / "state.json"
    big_state(path, n=40)
    journal = tmp_path / "state.json.journal"
    generations = set()
    with Store(path) as store:
        for i in range(30):
            store.add_sends([send(f"invite:g:{i}")])
            store.commit()
            generations.add(store.storage.generation)
            assert journal.stat().st_size <= path.stat().st_size // 4
    assert len(generations) > 2  # it compacted more than once
    with Store(path) as store:
        assert len(store.sends()) == 70


def test_a_torn_last_journal_line_is_ignored(tmp_path):
    """A crash in the middle of appending leaves part of a line: that change was never
    acknowledged (nothing was sent on its strength), so it is dropped, and the service goes on
    appending after the last intact line."""
    path = tmp_path / "state.json"
    big_state(path)
    with Store(path) as store:
        store.add_sends([send("invite:g:1")])
        store.commit()
        store.add_sends([send("invite:g:2")])
        store.commit()
    journal = tmp_path / "state.json.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])
    with Store(path) as store:
        assert "invite:g:1|a@x.example" in store.planned
        assert "invite:g:2|a@x.example" not in store.planned
        store.add_sends([send("invite:g:3")])
        store.commit()
    with Store(path, lock=False) as reader:
        assert {"invite:g:1|a@x.example", "invite:g:3|a@x.example"} <= set(reader.planned)


def test_journal_lines_older_than_the_file_are_not_replayed(tmp_path, monkeypatch):
    """A crash between rewriting the file and emptying the journal leaves lines the file
    already holds: they are of an older generation and ignored (replaying them would undo
    later changes)."""
    path = tmp_path / "state.json"
    big_state(path)
    with Store(path) as store:
        store.add_sends([send("invite:g:1")])
        store.commit()
        stale = (tmp_path / "state.json.journal").read_bytes()
        update(store, "invite:g:1|a@x.example", "sent")
        monkeypatch.setattr(statefile, "COMPACT_MIN", 0)
        monkeypatch.setattr(statefile, "COMPACT_SHARE", 10**9)
        store.commit()  # a full write
    (tmp_path / "state.json.journal").write_bytes(stale)
    with Store(path) as store:
        [doc] = [d for d in store.sends() if d.key == "invite:g:1"]
        assert doc.status == "sent"


def test_a_restored_backup_never_replays_journal_lines_of_another_timeline(tmp_path, monkeypatch):
    """A backup whose file is older than its journal (a full write between the two copies)
    restores to the file. The service then writes the file whole at once, under a generation
    above every one in the journal, so the other timeline's lines can never be replayed, not
    even after a crash that leaves them in the journal."""
    path = tmp_path / "state.json"
    journal = tmp_path / "state.json.journal"
    big_state(path)
    backup_file = path.read_bytes()
    with Store(path) as store:  # the service goes on: a full write, then journal lines after it
        store.add_sends([send("agenda:g:OLD-TIMELINE")])
        monkeypatch.setattr(statefile, "COMPACT_MIN", 0)
        monkeypatch.setattr(statefile, "COMPACT_SHARE", 10**9)
        store.commit()
        monkeypatch.undo()
        store.add_sends([send("agenda:g:OLD-TIMELINE-2")])
        store.commit()
    other_timeline = journal.read_bytes()
    assert other_timeline
    path.write_bytes(backup_file)  # the restored pair: the older file, the newer journal
    with Store(path) as store:
        assert not any("OLD-TIMELINE" in s for s in store.planned)
        store.add_sends([send("nudge:g:new")])
        store.commit()  # a full write, above the journal's generation
    journal.write_bytes(other_timeline)  # as if a crash had come before the journal was emptied
    with Store(path, lock=False) as reader:
        assert "nudge:g:new|a@x.example" in reader.planned
        assert not any("OLD-TIMELINE" in s for s in reader.planned)


@pytest.mark.parametrize("damage", ["bad checksum", "not json"])
def test_a_damaged_journal_line_before_good_ones_stops_with_one_line(tmp_path, capsys, damage):
    """Damage that is not a torn last line is not a crash's doing: `run` stops with one line
    naming the journal, exit 2, and neither file is touched."""
    folder = tmp_path
    one_group_config(folder)
    path = folder / "var" / "state.json"
    big_state(path)
    with Store(path) as store:
        for i in range(3):
            store.add_sends([send(f"invite:g:{i}")])
            store.commit()
    journal = folder / "var" / "state.json.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = (b"00000000" + lines[1][8:]) if damage == "bad checksum" else b"12345678 {oops\n"
    journal.write_bytes(b"".join(lines))
    before = (path.read_bytes(), journal.read_bytes())
    code = main(["run", "--once", "--config", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"{journal}: line 2 of the state journal is damaged" in err[0]
    assert (path.read_bytes(), journal.read_bytes()) == before


@pytest.mark.parametrize("content", [
    b"garbage, not json",
    b'{"meetings": {"1": {"group": "g"',
    b"[1, 2, 3]",
    b'{"meetings": [1, 2]}',
    b"\xff\xfe\x00binary",
    b"",
    json.dumps({"meta": {"1": {"schema": 99}}}).encode(),
], ids=["text", "truncated", "list", "table-not-object", "binary", "empty", "newer-schema"])
def test_unreadable_state_stops_with_a_clear_message_and_is_left_alone(tmp_path, capsys, content):
    """A damaged state file stops `run` with one line (exit 2), and the file is not replaced or emptied."""
    one_group_config(tmp_path)
    state = tmp_path / "var" / "state.json"
    state.parent.mkdir()
    state.write_bytes(content)
    code = main(["run", "--once", "--config", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    problem = [line for line in err if "state" in line]
    assert len(problem) == 1 and str(state) in problem[0] and "Traceback" not in "\n".join(err)
    assert state.read_bytes() == content


def test_second_instance_is_refused(tmp_path):
    """Two stores on one state file: the second is refused, naming the running process."""
    path = tmp_path / "state.json"
    with Store(path):
        with pytest.raises(StateError, match=f"another friendtor \\(pid {os.getpid()}\\) is already running"):
            Store(path)
    with Store(path):  # released on close
        pass


def test_read_only_store_does_not_lock(tmp_path):
    """`status` and `--dry-run` read the state while the service holds the lock."""
    path = tmp_path / "state.json"
    with Store(path) as owner:
        owner.save_meeting(meeting())
        owner.commit()
        with Store(path, lock=False) as reader:
            assert reader.meetings()




GOOD_SEND = send_doc("invite:g:2027-03", sid="invite:g:2027-03|a@x.example")


def test_two_records_for_one_send_stop_with_one_line(tmp_path, capsys):
    """Two outbox records with one key and recipient (another program's doing): the indexes would
    see one, the other would stay pending and be sent forever. One line, exit 2."""
    one_group_config(tmp_path)
    state = tmp_path / "var" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"meta": {"1": {"schema": 2}},
                                 "outbox": {"1": {**GOOD_SEND, "status": "sent"}, "2": GOOD_SEND}}))
    assert main(["run", "--once", "--config", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{state}: outbox record 2 repeats record 1 (the same sid)")


@pytest.mark.parametrize("table, doc, says", [
    ("outbox", {k: v for k, v in GOOD_SEND.items() if k != "status"}, "outbox record 1 has no 'status'"),
    ("outbox", {**GOOD_SEND, "attempts": "2"}, "outbox record 1 has 'attempts' as text, not a number"),
    ("outbox", {**GOOD_SEND, "attempts": True}, "outbox record 1 has 'attempts' as true or false, not a number"),
    ("outbox", {**GOOD_SEND, "status": "lost"}, "outbox record 1 has a status that is not one of"),
    ("outbox", {**GOOD_SEND, "status": "retry"}, "outbox record 1 has 'next_attempt' that is not a date and time"),
    ("outbox", {**GOOD_SEND, "created": "yesterday"}, "outbox record 1 has 'created' that is not a date"),
    ("outbox", {**GOOD_SEND, "sid": "other|b@x.example"}, "outbox record 1 has a sid that is not its key|"),
    ("outbox", {**GOOD_SEND, "payload": []}, "outbox record 1 has 'payload' as a list, not an object"),
    ("outbox", {**GOOD_SEND, "kind": "fax"}, "outbox record 1 has a kind that is not one of invite, update"),
    ("outbox", {**GOOD_SEND, "payload": {"sequence": 2}}, "outbox record 1 has a payload that does not fit its "
                                                          "kind 'invite' (no 'cycle')"),
    ("meetings", {"group": "g", "cycle": "2027-03", "uid": "u", "sequence": 0, "start": "2027-03-01T10:00:00Z",
                  "end": "2027-03-01T11:00:00Z"}, "meetings record 1 has no 'stamp'"),
    ("meetings", {"group": "g", "cycle": "2027-03", "uid": "u", "sequence": 3, "start": "2027-03-01T10:00:00Z",
                  "end": "2027-03-01T11:00:00Z", "stamp": "2027-02-01T10:00:00Z", "moved_from": "last week"},
     "meetings record 1 has 'moved_from' that is not a date and time"),
    ("alerts", {"group": "g", "cycle": "2027-03", "day": "2027-02-30"}, "alerts record 1 has 'day' that is not a date"),
    ("attendance", {"group": "g", "cycle": "2027-03", "email": "a@x.example", "present": "yes", "source": "rsvp"},
     "attendance record 1 has 'present' as text, not true or false"),
], ids=["missing", "text-number", "bool-number", "unknown-status", "retry-without-time", "bad-instant",
        "wrong-sid", "payload-list", "unknown-kind", "payload-of-another-kind", "meeting-missing", "moved-from", "impossible-day", "text-bool"])
def test_a_record_missing_or_mistyped_fields_stops_with_one_line(tmp_path, capsys, table, doc, says):
    """A state file of the right shape whose records are not what friendtor writes (edited by
    hand, or another program's) stops `run` at once with one line naming the record, exit 2."""
    one_group_config(tmp_path)
    state = tmp_path / "var" / "state.json"
    state.parent.mkdir()
    content = json.dumps({"meta": {"1": {"schema": 2}}, table: {"1": doc}}).encode()
    state.write_bytes(content)
    code = main(["run", "--once", "--config", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"{state}: {says}"), err
    assert state.read_bytes() == content


def many_sends(n: int, **last) -> dict:
    """n outbox documents sharing their time texts, as the twelve recipients of a message do;
    `last` changes the last one."""
    docs = {str(i): send_doc("invite:g:2027-03", f"m{i}@x.example", sid=f"invite:g:2027-03|m{i}@x.example")
            for i in range(1, n + 1)}
    docs[str(n)].update(last)
    return docs


def many_sent(n: int, **last) -> dict:
    """n documents of the `sent` table sharing their time text; `last` changes the last one."""
    docs = {str(i): {"message_id": f"<{i}@x.example>", "group": "g", "recipient": f"m{i}@x.example",
                     "kind": "invite", "key": "invite:g:2027-03", "sent_at": "2027-03-01T00:00:00Z"}
            for i in range(1, n + 1)}
    docs[str(n)].update(last)
    return docs


@pytest.mark.parametrize("tables, says", [
    ({"outbox": many_sends(300, due="2027-02-30T00:00:00Z")}, "outbox record 300 has 'due' that is not a date"),
    ({"sent": many_sent(300, sent_at="2027-03-01T25:00:00Z")}, "sent record 300 has 'sent_at' that is not a date"),
    ({"sent": many_sent(300, message_id="<1@x.example>")}, "sent record 300 repeats record 1 (the same message_id)"),
    ({"outbox": many_sends(300, status="retry")}, "outbox record 300 has 'next_attempt' that is not a date"),
    ({"outbox": many_sends(300, attempts=False)}, "outbox record 300 has 'attempts' as true or false, not a number"),
    ({"outbox": many_sends(3), "alerts": {"1": {"group": "g", "cycle": "2027-03", "day": "2027-03-01T00:00:00Z"}}},
     "alerts record 1 has 'day' that is not a date"),
], ids=["bad-time-after-many-good", "bad-sent-time-after-many-good", "repeated-message-id", "retry-without-time",
        "bool-after-many-good", "instant-as-day"])
def test_time_texts_read_once_are_still_judged_by_each_field(tmp_path, capsys, tables, says):
    """Each distinct time text is read once per kind of field (issue 13: the check of a large
    state): a bad text after hundreds of good ones is still named, and a text that is a fine
    instant elsewhere is still no date."""
    one_group_config(tmp_path)
    state = tmp_path / "var" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"meta": {"1": {"schema": 2}}, **tables}))
    assert main(["run", "--once", "--config", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{state}: {says}"), line


# --- the journal and the indexes agree with the state, whatever happens -------------------------

KEYS = st.sampled_from(["invite:g:2027-03", "invite:g:2027-04", "agenda:g:2027-03", "nudge:g:2027-03-10",
                        "follow-up:g:2027-03"])
PEOPLE = st.sampled_from(["a@x.example", "b@x.example", "c@x.example"])
STATUS = st.sampled_from(["pending", "sending", "retry", "sent", "failed", "skipped"])
DAYS = st.integers(min_value=0, max_value=200)


class StoreMachine(RuleBasedStateMachine):
    """Random changes, commits, crashes (reopening from disk) and prunes: after each step the
    Store's indexes match its documents, and a reopened state is exactly what was last committed."""

    def __init__(self):
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.path = self.folder / "state.json"
        self.saved_compact = statefile.COMPACT_MIN
        statefile.COMPACT_MIN = 3000  # small: both journal lines and full writes happen
        self.store = Store(self.path)
        self.committed = copy.deepcopy(self.store.storage.read())

    def teardown(self):
        self.store.close()
        statefile.COMPACT_MIN = self.saved_compact
        shutil.rmtree(self.folder)

    @rule(keys=st.lists(st.tuples(KEYS, PEOPLE, STATUS, DAYS), max_size=4))
    def add(self, keys):
        self.store.add_sends([send(k, r, status, next_attempt=iso(NOW) if status == "retry" else None,
                                   expires=iso(NOW + timedelta(days=d))) for k, r, status, d in keys])

    @rule(data=st.data())
    def update(self, data):
        sids = sorted(self.store.planned)
        if sids:
            chosen = data.draw(st.lists(st.sampled_from(sids), max_size=3, unique=True))
            status = data.draw(STATUS)
            records = {r.sid: r for r in self.store.sends()}
            self.store.update_sends(records[s].moved_on(Status(status), next_attempt=NOW) for s in chosen)

    @rule(cycle=st.sampled_from(["2027-01", "2027-03", "2027-05"]), sequence=st.integers(0, 3),
          cancelled=st.booleans())
    def save_meeting(self, cycle, sequence, cancelled):
        start = datetime(2027, int(cycle[5:]), 3, 15, tzinfo=UTC)
        self.store.save_meeting(Meeting("g", cycle, f"g-{cycle}@x.example", sequence, start,
                                        start + timedelta(hours=1), NOW, cancelled))

    @rule(cycle=st.sampled_from(["2027-03", "2027-04"]), day=DAYS)
    def alert(self, cycle, day):
        self.store.note_alert("g", cycle, NOW.date() + timedelta(days=day))

    @rule(who=PEOPLE, present=st.booleans(), source=st.sampled_from(["rsvp", "coordinator"]))
    def attendance(self, who, present, source):
        self.store.record_attendance("g", "2027-03", who, present, source, NOW)

    @rule()
    def forget_rsvps(self):
        self.store.forget_rsvps("g", "2027-03")

    @rule(days=st.integers(0, 900))
    def prune(self, days):
        self.store.prune(NOW + timedelta(days=days), timedelta(days=60))

    @rule()
    def commit(self):
        self.store.commit()
        self.committed = copy.deepcopy(self.store.storage.read())

    @rule()
    def crash(self):
        """Drop everything not committed, as a killed process would, and read the state again."""
        self.store.close()
        self.store = Store(self.path)
        assert self.store.storage.read() == self.committed

    @invariant()
    def indexes_match_the_documents(self):
        docs = self.store.sends()
        assert set(self.store.planned) == {d.sid for d in docs}
        assert len(self.store.planned) == len(docs)
        assert sorted(d.sid for d in self.store.open_sends()) == sorted(
            d.sid for d in docs if d.status in ("pending", "sending", "retry"))
        assert sorted(d.sid for d in self.store.failed_sends()) == sorted(
            d.sid for d in docs if d.status == "failed")
        invited: dict = {}
        for d in docs:
            if d.key.startswith("invite:"):
                invited.setdefault(d.key, {})[d.recipient] = (
                    d.name, d.timezone, iso(d.sent_at) if d.status == "sent" and d.sent_at else None)
        assert dict(self.store.invited) == invited
        rebuilt = Store(self.path, lock=False)  # built from documents alone (the committed ones)
        rebuilt.storage._data = copy.deepcopy(self.store.storage.read())
        rebuilt._index()
        assert dict(rebuilt.meetings()) == dict(self.store.meetings())
        assert dict(rebuilt.alerts()) == dict(self.store.alerts())
        assert rebuilt.attendance("g") == self.store.attendance("g")
        rebuilt.close()


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine = pytest.mark.slow(TestStoreMachine)  # many hypothesis steps, each reopening the state
TestStoreMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_a_backup_copied_while_the_service_writes_is_a_state_it_committed(tmp_path, monkeypatch):
    """docs/operations.md says to copy the state file and its journal, in either order, even
    while the service runs: whatever commit (journal line or full write) happens between the
    two copies, the backup reads back as exactly one of the states the service committed."""
    monkeypatch.setattr(statefile, "COMPACT_MIN", 0)  # full writes every few commits
    path = tmp_path / "state.json"
    big_state(path, n=30)
    journal = tmp_path / "state.json.journal"
    committed = []
    with Store(path) as store:
        committed.append(copy.deepcopy(store.storage.read()))
        for i in range(25):
            first, second = (path, journal) if i % 2 else (journal, path)
            backup = tmp_path / f"backup-{i}"
            backup.mkdir()
            if first.exists():
                shutil.copyfile(first, backup / first.name)
            store.add_sends([send(f"invite:g:{i}")])
            store.commit()  # between the two copies
            committed.append(copy.deepcopy(store.storage.read()))
            if second.exists():
                shutil.copyfile(second, backup / second.name)
            with Store(backup / "state.json", lock=False) as restored:
                assert restored.storage.read() in committed
