"""The state folder and files under hostile or unlucky conditions: an unwritable or full folder
is one line before any work (exit 2, never an internal error), a commit that fails makes
`run --once` exit non-zero and say what may be resent, links planted as the state, journal or
lock are refused and never written through, and a flipped byte in the state or the journal is
refused with one line that quotes nothing of the file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.app import files, journal, statefile
from scheduler.app.store import StateError, Store
from scheduler.cli.main import main
from scheduler.core.meetings import Meeting

MEMBER = "a@x.example"
START = datetime(2199, 3, 10, 15, tzinfo=UTC)  # a meeting still to come whenever the tests run
PAST = datetime(2026, 2, 10, 15, tzinfo=UTC)   # one that is over: attendance is recorded after a meeting


def config(folder: Path, state: str = "var/state.json") -> Path:
    """One group of one member in `folder`, its state where `state` says."""
    (folder / "groups").mkdir(parents=True)
    (folder / "service.toml").write_text(f'state = "{state}"\n')
    (folder / "groups" / "g.toml").write_text(
        'name = "G"\ntimezone = "UTC"\ncoordinators = ["a@x.example"]\nstarted = 2026-01-01\n'
        '[[members]]\nname = "A"\nemail = "a@x.example"\ntimezone = "UTC"\n')
    return folder


def with_meeting(path: Path) -> None:
    """A state holding a meeting still to come (cycle 2199-03) and one that is over (2026-02,
    for `attendance`), written by the Store."""
    with Store(path) as store:
        store.save_meeting(Meeting("g", "2199-03", "g-2199-03@x.example", 0, START, START + timedelta(hours=1),
                                   datetime(2026, 1, 1, tzinfo=UTC)))
        store.save_meeting(Meeting("g", "2026-02", "g-2026-02@x.example", 0, PAST, PAST + timedelta(hours=1),
                                   datetime(2026, 1, 1, tzinfo=UTC)))
        store.commit()


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 2) -> str:
    """Run the CLI; it must exit `code` with exactly one line on stderr and no traceback."""
    capsys.readouterr()
    got = main(argv)
    out, err = capsys.readouterr()
    assert got == code, out + err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only for everyone, root included: a read-only bind mount over itself, or,
    for a user who may not mount, the permission bits (which bind such a user)."""
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)],
                             capture_output=True).returncode == 0 if os.geteuid() == 0 else False
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("running as root without mount: no way to make a folder read-only for root")
        folder.chmod(0o500)
    try:
        yield
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o700)


COMMANDS = {
    "validate": ["validate"],
    "run --dry-run": ["run", "--dry-run", "--now", "2199-03-01T00:00:00Z"],
    "run --once": ["run", "--once", "--now", "2199-03-01T00:00:00Z"],
    "attendance": ["attendance", "g", "2026-02-10", "--present", MEMBER],
    "reschedule": ["reschedule", "g", "--to", "2199-03-11 15:00"],
    "cancel": ["cancel", "g"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_state_folder_is_one_line_before_any_work(tmp_path, capsys, command):
    """A read-only state folder (even for root) is one line, exit 2, from every command that
    saves the state and from validate and run --dry-run; the state is left as it was."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with_meeting(state)
    before = state.read_bytes()
    with read_only(state.parent):
        line = one_line(capsys, [*COMMANDS[command], "--config", str(folder)])
    assert line.startswith(f"{state}: the state cannot be saved: cannot write in {state.parent}"), line
    assert "writable" in line
    assert state.read_bytes() == before


@pytest.mark.parametrize("command", ["validate", "run --dry-run", "run --once"])
def test_a_file_where_the_state_folder_should_be_is_one_line(tmp_path, capsys, command):
    """A state path through a file (a folder that cannot exist) is one line, exit 2, not an OSError."""
    folder = config(tmp_path / "cfg", state="blocked/state.json")
    (folder / "blocked").write_text("a file, not a folder\n")
    line = one_line(capsys, [*COMMANDS[command], "--config", str(folder)])
    assert f"{folder / 'blocked'} is not a folder" in line and "a file, not" not in line


class FullDisk:
    """What os.statvfs says of a nearly full file system: 1 MB free of many, inodes left."""

    f_bavail, f_frsize, f_files, f_favail = 256, 4096, 1000, 500


@pytest.mark.parametrize("command", ["validate", "run --dry-run", "run --once", "attendance", "cancel"])
def test_a_full_state_disk_is_one_line_before_any_work(tmp_path, capsys, monkeypatch, command):
    """Free space below the floor is one line, exit 2, naming the folder and how much is free."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with_meeting(state)
    monkeypatch.setattr(os, "statvfs", lambda path: FullDisk())
    line = one_line(capsys, [*COMMANDS[command], "--config", str(folder)])
    assert f"the disk holding {state.parent} is full (1 MB free" in line and "free some space" in line


def test_a_disk_out_of_inodes_is_one_line(tmp_path, capsys, monkeypatch):
    """No free inode (no new file can be made, whatever the bytes free) is said as such."""
    folder = config(tmp_path / "cfg")

    class NoInodes(FullDisk):
        f_bavail, f_favail = 10**9, 0

    monkeypatch.setattr(os, "statvfs", lambda path: NoInodes())
    assert "no free inodes" in one_line(capsys, ["validate", "--config", str(folder)])


def test_a_writable_folder_with_room_passes_and_leaves_no_probe(tmp_path, capsys):
    """validate says ok for a usable folder, even one still to be created, and leaves no probe
    behind; the folder is created as `run` would (0700), holding only the kept template check."""
    folder = config(tmp_path / "cfg", state="not/yet/state.json")
    capsys.readouterr()
    assert main(["validate", "--config", str(folder)]) == 0
    assert not [p for p in folder.rglob("*") if "probe" in p.name]
    assert [p.name for p in (folder / "not" / "yet").iterdir()] == [".templates-checked.json"]
    assert (folder / "not" / "yet").stat().st_mode & 0o777 == 0o700


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_when_the_commit_fails_run_once_says_messages_may_be_resent(tmp_path, capsys, monkeypatch):
    """Disk full at the commit: run --once prints what it sent, then one line that the state was
    not saved and those messages may be sent again with the same Message-IDs; exit 2, not 0."""
    folder = config(tmp_path / "cfg")
    monkeypatch.setattr(statefile, "atomic_write", enospc)           # full writes
    monkeypatch.setattr(journal.JournalWriter, "append", enospc)     # and journal lines
    capsys.readouterr()
    code = main(["run", "--once", "--now", "2026-03-01T00:00:00Z", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert "sent " in out  # the messages did go out
    *logged, line = err.strip().splitlines()
    assert any("state not saved" in entry for entry in logged)  # the service's log lines, as ever
    assert "the state was not saved (cannot write the state (No space left on device))" in line
    assert "same Message-IDs" in line


def test_the_service_logs_a_failed_commit_and_keeps_going(tmp_path, monkeypatch, caplog):
    """The long-running service's tick logs "state not saved" and returns; the next commit retries."""
    from scheduler.app.tick import Runner
    from scheduler.app.watcher import ConfigWatcher
    from scheduler.cli import wiring

    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with Store(state) as store:
        runner = Runner(ConfigWatcher(folder), store, wiring.transport_factory(False),
                        availability=wiring.group_availability)
        monkeypatch.setattr(statefile, "atomic_write", enospc)
        runner.tick(datetime(2026, 3, 1, tzinfo=UTC))  # no exception: logged
        assert store.unsaved and "state not saved" in caplog.text
        monkeypatch.undo()
        runner.tick(datetime(2026, 3, 1, 1, tzinfo=UTC))
        assert store.unsaved is None
    with Store(state, lock=False) as reader:
        assert reader.sends()


# --- links --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["state.json.journal", "state.json.lock", "state.json"])
def test_a_planted_link_is_refused_and_its_target_never_written(tmp_path, capsys, name):
    """A symbolic link planted as the state, its journal or its lock: run --once and status say
    so in one line naming the file (exit 2), and the file it points to is never truncated or written."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with_meeting(state)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (state.parent / name).unlink(missing_ok=True)
    (state.parent / name).symlink_to(victim)
    for argv in (["run", "--once", "--now", "2026-03-01T00:00:00Z"], ["status"]):
        if argv == ["status"] and name.endswith(".lock"):
            continue  # status takes no lock
        line = one_line(capsys, [*argv, "--config", str(folder)])
        assert str(state.parent / name) in line and ("symbolic link" in line), line
        assert "precious" not in line
    assert victim.read_text() == "precious\n"


def test_a_fifo_planted_as_the_journal_does_not_hang(tmp_path, capsys):
    """A FIFO as the journal is refused at once (opened non-blocking), one line."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with_meeting(state)
    (state.parent / "state.json.journal").unlink(missing_ok=True)
    os.mkfifo(state.parent / "state.json.journal")
    assert "not a regular file" in one_line(capsys, ["status", "--config", str(folder)])


def test_an_atomic_write_never_writes_through_a_planted_temp_file(tmp_path, monkeypatch):
    """The temp file is created new (O_EXCL|O_NOFOLLOW): a link planted at its name is not followed."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "guessed")
    target = tmp_path / "state.json"
    (tmp_path / f".state.json.{os.getpid()}.guessed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        files.atomic_write(target, b"new")
    assert victim.read_text() == "precious\n" and not target.exists()


# --- checksums ----------------------------------------------------------------------------


def flip(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def test_the_state_file_carries_a_checksum_and_is_still_json_tables(tmp_path):
    """A schema 3 file starts with its checksum, shaped as a table so an older friendtor reads on
    to the schema; reading it back gives the same state."""
    path = tmp_path / "state.json"
    with_meeting(path)
    data = json.loads(path.read_bytes())
    assert path.read_bytes().startswith(b'{"checksum":{"1":{"sha256":"')
    assert all(isinstance(t, dict) and all(isinstance(d, dict) for d in t.values()) for t in data.values())
    assert data["meta"]["1"]["schema"] == 3
    with Store(path, lock=False) as reader:
        assert ("g", "2199-03") in reader.meetings()


def test_a_flipped_byte_that_still_parses_is_refused_without_quoting(tmp_path, capsys):
    """One changed letter (still valid JSON) is refused: one line, exit 2, the file left as it
    was, and nothing of its content (an email address) in the message."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with_meeting(state)
    damaged = flip(state.read_bytes(), b"g-2199-03@x.example", b"g-2199-03@y.example")
    json.loads(damaged)
    state.write_bytes(damaged)
    line = one_line(capsys, ["run", "--once", "--config", str(folder)])
    assert f"{state}: the state file is damaged (its checksum does not match" in line
    assert "x.example" not in line and "y.example" not in line
    assert state.read_bytes() == damaged


def test_a_schema_3_file_without_its_checksum_is_refused(tmp_path):
    """Removing the checksum does not make a schema 3 file readable as an old one."""
    path = tmp_path / "state.json"
    with_meeting(path)
    data = json.loads(path.read_bytes())
    del data["checksum"]
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="checksum is missing"):
        Store(path, lock=False)


def test_a_schema_2_file_is_read_and_written_back_with_a_checksum(tmp_path):
    """An older file (schema 2, no checksum) reads as it is; the next full write is schema 3."""
    path = tmp_path / "state.json"
    with_meeting(path)
    data = json.loads(path.read_bytes())
    del data["checksum"]
    data["meta"]["1"]["schema"] = 2
    path.write_text(json.dumps(data, indent=2))
    with Store(path) as store:
        assert ("g", "2199-03") in store.meetings()
        store.storage.changed("meetings", set(), everything=True)
        store.commit()
    assert json.loads(path.read_bytes())["meta"]["1"]["schema"] == 3
    with Store(path, lock=False) as reader:
        assert ("g", "2199-03") in reader.meetings()


def test_an_older_friendtor_refuses_schema_3_with_its_newer_friendtor_line(tmp_path, monkeypatch):
    """A friendtor of schema 2 reads a schema 3 file as tables and stops at the schema."""
    path = tmp_path / "state.json"
    with_meeting(path)
    monkeypatch.setattr(statefile, "SCHEMA", 2)
    with pytest.raises(StateError, match=r"written by a newer friendtor \(schema 3\)"):
        Store(path, lock=False)


def test_a_flipped_byte_in_the_last_journal_line_is_refused(tmp_path, capsys):
    """A whole last journal line (newline, no NUL) whose CRC fails was changed, not torn by a
    crash: one line naming the journal, exit 2; a NUL-filled tail (a crash) is still ignored."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    with_meeting(state)
    with Store(state) as store:
        store.record_attendance("g", "2199-03", MEMBER, True, "coordinator", datetime(2026, 1, 2, tzinfo=UTC))
        store.commit()
    path = journal.journal_path(state)
    good = path.read_bytes()
    assert good.count(b"\n") == 1
    path.write_bytes(flip(good, b'"present":true', b'"present":fals'))
    line = one_line(capsys, ["status", "--config", str(folder)])
    assert f"{path}: line 1 of the state journal is damaged" in line and MEMBER not in line
    path.write_bytes(good[:-40] + b"\0" * 39 + b"\n")  # unwritten blocks of a crash read as zeros
    capsys.readouterr()
    assert main(["status", "--config", str(folder)]) == 0


@pytest.mark.parametrize("field, value", [("present", "SECRET-present"), ("email", ["SECRET-list"]),
                                          ("cycle", {"SECRET": 1})])
def test_a_mistyped_record_is_named_without_quoting_its_value(tmp_path, capsys, field, value):
    """A record of a schema 2 file with a wrong value names the record and the field, never the value."""
    folder = config(tmp_path / "cfg")
    state = folder / "var" / "state.json"
    state.parent.mkdir()
    doc = {"group": "g", "cycle": "2199-03", "email": MEMBER, "present": True, "source": "rsvp", field: value}
    state.write_text(json.dumps({"meta": {"1": {"schema": 2}}, "attendance": {"1": doc}}))
    line = one_line(capsys, ["status", "--config", str(folder)])
    assert f"attendance record 1 has {field!r}" in line and "SECRET" not in line
