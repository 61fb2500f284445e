"""The state file: atomic writes, 0600, one owner, and a damaged file is never replaced."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.cli import main
from scheduler.meetings import Meeting
from scheduler.store import StateError, Store

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def meeting(cycle="2027-03") -> Meeting:
    return Meeting("g", cycle, f"g-{cycle}@x.example", 0, NOW, NOW + timedelta(hours=1), NOW)


def test_state_is_private_and_round_trips(tmp_path):
    """The state file is created 0600 and reads back what was written."""
    path = tmp_path / "var" / "state.json"
    with Store(path) as store:
        store.save_meeting(meeting())
        store.add_sends([{"key": "invite:g:2027-03", "recipient": "a@x.example", "status": "pending"}])
        assert store.commit()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Store(path) as store:
        assert store.meetings()[("g", "2027-03")] == meeting()
        assert [d["sid"] for d in store.sends()] == ["invite:g:2027-03|a@x.example"]


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


def test_crash_during_write_leaves_the_old_state(tmp_path, monkeypatch):
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


def test_disk_full_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    """A failed write (disk full) says so in one line and leaves the previous state in place."""
    path = tmp_path / "state.json"
    with Store(path) as store:
        store.save_meeting(meeting())
        store.commit()
    old = path.read_bytes()
    real_write = os.write

    def full(fd, data):
        raise OSError(28, "No space left on device")

    with Store(path) as store:
        store.save_meeting(meeting("2027-04"))
        monkeypatch.setattr("os.fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        with pytest.raises(StateError, match="No space left on device"):
            store.commit()
    monkeypatch.setattr(os, "write", real_write)
    assert path.read_bytes() == old


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
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "g.toml").write_text(
        'name = "G"\ntimezone = "UTC"\ncoordinators = ["a@x.example"]\nstarted = 2026-01-01\n'
        '[[members]]\nname = "A"\nemail = "a@x.example"\ntimezone = "UTC"\n')
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


def test_prune_forgets_only_finished_sends_past_their_expiry(tmp_path):
    """Sent records whose key can no longer be planned are dropped after keep_days; pending ones never."""
    with Store(tmp_path / "state.json") as store:
        old = (NOW - timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
        store.add_sends([
            {"key": "a", "recipient": "x", "status": "sent", "expires": old},
            {"key": "b", "recipient": "x", "status": "pending", "expires": old},
            {"key": "c", "recipient": "x", "status": "sent", "expires": "2099-01-01T00:00:00Z"},
        ])
        assert store.prune(NOW, timedelta(days=60)) == 1
        assert sorted(d["key"] for d in store.sends()) == ["b", "c"]
