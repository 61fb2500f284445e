"""One member's calendar costs only that member: recurrence bombs, huge files, paths outside
the config folder, trickling feeds, and readers that hang or eat memory end as "calendar
unknown: <reason in friendtor's words>" within [limits], logged once, while every other
member and group is evaluated and invited as usual (issue 11, the calendar rows)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations import calendars, feeds, workers
from scheduler.app.files import atomic_write
from scheduler.app.loader import load_config
from scheduler.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
GROUP = "groups/k-club.toml"
MAYA = "calendars/maya-chen.ics"  # the first member's calendar
NOW = "2026-11-20T12:00:00Z"      # invites for the example's December meeting are due
UTC = ZoneInfo("UTC")
LO, HI = datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 19, tzinfo=UTC)
SECRET = "FRIENDTOR_SMTP_PASSWORD=hunter2-secret"


def bomb(freq: str) -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\nBEGIN:VEVENT\r\nUID:bomb@x\r\n"
            "DTSTART:20261201T000000Z\r\nDTEND:20261201T000001Z\r\n"
            f"RRULE:FREQ={freq}\r\nSUMMARY:{SECRET}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


@pytest.fixture(autouse=True)
def fresh_workers():
    """Workers forked for this test only (they see its monkeypatches), none left after it."""
    workers.shutdown()
    calendars._TOLD.clear()
    yield
    workers.shutdown()
    assert multiprocessing.active_children() == []


def example(tmp_path: Path, service: str = "") -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    if service:
        with (folder / "service.toml").open("a") as f:
            f.write("\n" + service)
    return folder


def set_calendar(folder: Path, value: str) -> None:
    path = folder / GROUP
    path.write_text(path.read_text().replace(f'calendar = "{MAYA}"', f'calendar = "{value}"', 1))


def slots(capsys, folder: Path, *more: str) -> str:
    capsys.readouterr()
    code = main(["slots", "k-club", "--config", str(folder), "--from", "2026-12-07", "--to", "2026-12-18", *more])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in out + err, out + err
    return out


def one_problem(capsys, folder: Path) -> str:
    capsys.readouterr()
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err, out + err
    assert len(err.splitlines()) == 1, err
    return err


def maya(folder: Path):
    config = load_config(folder)
    return config, config.groups["k-club"], config.groups["k-club"].members[0]


# --- recurrence bombs ---------------------------------------------------------------------

@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY"])
def test_a_recurrence_bomb_costs_slots_only_that_member(tmp_path, capsys, freq) -> None:
    """`slots` with a SECONDLY/MINUTELY bomb finishes, that member is unknown with the limit, the rest are ranked."""
    folder = example(tmp_path)
    (folder / "calendars" / "bomb.ics").write_text(bomb(freq))
    set_calendar(folder, "calendars/bomb.ics")
    started = time.monotonic()
    out = slots(capsys, folder)
    assert time.monotonic() - started < 60
    assert "Maya Chen" in out and "calendar unknown: too many occurrences in the window (limit 10000)" in out
    assert "James Carter" in out and "expected attendance" in out
    assert SECRET not in out


def test_a_recurrence_bomb_in_one_group_does_not_stop_another_groups_invites(tmp_path, capsys) -> None:
    """A service tick with a bombed group and a healthy group: the healthy group's invites go out."""
    folder = example(tmp_path)
    healthy = (folder / GROUP).read_text()
    (folder / "groups" / "healthy.toml").write_text(healthy.replace('name = "K Club"', 'name = "Healthy Club"', 1))
    (folder / "calendars" / "bomb.ics").write_text(bomb("SECONDLY"))
    set_calendar(folder, "calendars/bomb.ics")
    capsys.readouterr()
    started = time.monotonic()
    code = main(["run", "--now", NOW, "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in out + err, out + err
    assert time.monotonic() - started < 120
    sent = [p.read_bytes() for p in (folder / "var" / "outbox" / "new").iterdir()]
    invites = [m for m in sent if b"Subject: Invitation: Healthy Club" in m]
    assert len(invites) == 12  # one per member of the healthy group
    assert not any(SECRET.encode() in m for m in sent)
    assert SECRET not in (folder / "var" / "state.json").read_text()


def test_the_occurrence_limit_is_the_setting(tmp_path) -> None:
    """[limits] calendar_occurrences is the budget busy_from_ics counts against."""
    folder = example(tmp_path, "[limits]\ncalendar_occurrences = 100\n")
    (folder / "calendars" / "bomb.ics").write_text(bomb("HOURLY"))
    set_calendar(folder, "calendars/bomb.ics")
    config, _, member = maya(folder)
    got = calendars.member_availability(config, member, LO, HI)
    assert got.unknown == "too many occurrences in the window (limit 100)"


def test_an_unknown_calendar_is_logged_once_while_it_persists(tmp_path, caplog) -> None:
    """Reading the same bombed calendar on three ticks logs "calendar unknown" once, with the reason."""
    folder = example(tmp_path)
    (folder / "calendars" / "bomb.ics").write_text(bomb("SECONDLY"))
    set_calendar(folder, "calendars/bomb.ics")
    config, group, _ = maya(folder)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        got = calendars.group_availability(config, group, LO, HI)
    assert got["maya.chen@northeast-childrens.example"].unknown.startswith("too many occurrences")
    told = [r for r in caplog.records if r.getMessage().startswith("calendar unknown")]
    assert len(told) == 1 and SECRET not in str(vars(told[0]))


# --- size ---------------------------------------------------------------------------------

def test_a_13_mb_local_file_is_not_parsed(tmp_path, capsys) -> None:
    """A local .ics over calendar_bytes is unknown with the limit; its bytes are never read."""
    folder = example(tmp_path)
    big = folder / "calendars" / "big.ics"
    with big.open("wb") as f:  # sparse: 13 MB on paper, nothing for the test to write
        f.truncate(13 * 1024 * 1024)
    set_calendar(folder, "calendars/big.ics")
    out = slots(capsys, folder)
    assert "calendar unknown: the file is larger than 10 MB (limit [limits] calendar_bytes)" in out


def test_the_byte_limit_is_the_setting(tmp_path) -> None:
    """[limits] calendar_bytes applies to local files: a normal calendar over a 1 KB limit is unknown."""
    folder = example(tmp_path, "[limits]\ncalendar_bytes = 1024\n")
    config, _, member = maya(folder)
    assert (folder / MAYA).stat().st_size > 1024
    got = calendars.member_availability(config, member, LO, HI)
    assert got.unknown == "the file is larger than 1 KB (limit [limits] calendar_bytes)"


# --- confinement --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["/proc/self/environ", "../../../../../../etc/passwd", "calendars/../../outside.ics"])
def test_validate_refuses_a_calendar_outside_the_config_folder(tmp_path, capsys, value) -> None:
    """An absolute path, or a `..` escape, is refused with one line naming the field."""
    folder = example(tmp_path)
    (tmp_path / "outside.ics").write_text(bomb("DAILY"))
    set_calendar(folder, value)
    line = one_problem(capsys, folder)
    assert line.startswith(f"{GROUP}: members[1] (Maya Chen).calendar: ") and "outside the config folder" in line
    assert "[limits] calendar_folders" in line and SECRET not in line


def test_validate_refuses_a_symlink_to_the_google_token(tmp_path, capsys) -> None:
    """A calendar that is a symlink leading outside (here to a token file) is refused; nothing of it is shown."""
    folder = example(tmp_path)
    token = tmp_path / "google-token.json"
    token.write_text('{"refresh_token": "%s"}' % SECRET)
    (folder / "calendars" / "sneaky.ics").symlink_to(token)
    set_calendar(folder, "calendars/sneaky.ics")
    line = one_problem(capsys, folder)
    assert "members[1] (Maya Chen).calendar" in line and "outside the config folder" in line and SECRET not in line


def test_a_listed_folder_is_allowed(tmp_path, capsys) -> None:
    """A calendar in a folder listed in [limits] calendar_folders passes validate and is read."""
    shared = tmp_path / "shared"
    shared.mkdir()
    folder = example(tmp_path, f'[limits]\ncalendar_folders = ["{shared}"]\n')
    shutil.copy(folder / MAYA, shared / "maya.ics")
    set_calendar(folder, str(shared / "maya.ics"))
    capsys.readouterr()
    assert main(["validate", "--config", str(folder)]) == 0, capsys.readouterr().err
    config, _, member = maya(folder)
    got = calendars.member_availability(config, member, LO, HI)
    assert got.unknown is None and got.busy


def test_a_symlink_changed_after_validate_is_refused_at_read_time(tmp_path, capsys) -> None:
    """The reader checks again: a calendar swapped for a symlink to /proc/self/environ is unknown, unread."""
    folder = example(tmp_path)
    config, group, member = maya(folder)
    (folder / MAYA).unlink()
    (folder / MAYA).symlink_to("/proc/self/environ")
    os.environ["FRIENDTOR_TEST_SECRET"] = SECRET
    try:
        got = calendars.member_availability(config, member, LO, HI)
    finally:
        del os.environ["FRIENDTOR_TEST_SECRET"]
    assert got.unknown == "the file is outside the config folder; move the file into it or list its folder " \
                          "in [limits] calendar_folders"
    # `slots` and the service load the config again first, and refuse it with one line.
    assert "outside the config folder" in one_problem(capsys, folder)


def test_a_fifo_put_in_place_of_a_calendar_does_not_hang_the_read(tmp_path) -> None:
    """A calendar replaced by a FIFO after validate is "not a regular file" at once, not a read that waits forever."""
    folder = example(tmp_path)
    config, _, member = maya(folder)
    (folder / MAYA).unlink()
    os.mkfifo(folder / MAYA)
    started = time.monotonic()
    got = calendars.member_availability(config, member, LO, HI)
    assert time.monotonic() - started < 10
    assert got.unknown == "it is not a regular file; point calendar at an .ics file"


def test_a_file_that_is_not_a_calendar_is_described_not_quoted(tmp_path, capsys) -> None:
    """A text file in the folder that is not iCalendar: the reason says so in friendtor's words."""
    folder = example(tmp_path)
    (folder / MAYA).write_text(SECRET + "\nHOME=/root\n")
    out = slots(capsys, folder)
    assert "calendar unknown: not an iCalendar file" in out and SECRET not in out and "hunter2" not in out


# --- skipped events -----------------------------------------------------------------------

def test_slots_says_how_many_events_could_not_be_read(tmp_path, capsys) -> None:
    """An event without DTSTART is left out, the rest counts, and `slots` says "1 event could not be read"."""
    folder = example(tmp_path)
    text = (folder / MAYA).read_text()
    broken = f"BEGIN:VEVENT\r\nUID:broken@x\r\nSUMMARY:{SECRET}\r\nDTEND:20261208T160000Z\r\nEND:VEVENT\r\n"
    (folder / MAYA).write_text(text.replace("END:VCALENDAR", broken + "END:VCALENDAR"))
    out = slots(capsys, folder)
    assert "Note: Maya Chen's calendar: 1 event could not be read" in out and SECRET not in out
    assert "Maya Chen" in out and "calendar unknown" not in out.split("Note:")[0].split("Maya Chen")[1][:80]
    doc = json.loads(slots(capsys, folder, "--json"))
    assert doc["skipped"] == {"maya.chen@northeast-childrens.example": 1} and SECRET not in json.dumps(doc)


def test_skipped_events_are_logged_once(tmp_path, caplog) -> None:
    """Two reads of a calendar with one broken event log "calendar events could not be read" once, with the count."""
    folder = example(tmp_path)
    text = (folder / MAYA).read_text()
    broken = f"BEGIN:VEVENT\r\nUID:broken@x\r\nSUMMARY:{SECRET}\r\nDTEND:20261208T160000Z\r\nEND:VEVENT\r\n"
    (folder / MAYA).write_text(text.replace("END:VCALENDAR", broken + "END:VCALENDAR"))
    config, group, member = maya(folder)
    caplog.set_level(logging.INFO)
    for _ in range(2):
        got = calendars.group_availability(config, group, LO, HI)
    assert got[member.email].skipped == 1 and got[member.email].busy
    told = [r for r in caplog.records if r.getMessage().startswith("calendar events could not be read")]
    assert len(told) == 1 and SECRET not in str(vars(told[0]))


# --- workers: a deadline and a memory limit that hold whatever the library does ------------

def sleep_forever(*args):
    time.sleep(3600)


def eat_memory(*args):
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))


def test_a_reader_that_never_returns_costs_only_its_member(tmp_path, monkeypatch) -> None:
    """A parse that hangs in the worker is cut at calendar_seconds; the other members are read; nothing lingers."""
    folder = example(tmp_path, "[limits]\ncalendar_seconds = 1\n")
    (folder / MAYA).write_text((folder / MAYA).read_text() + "X-NOTE:maya\r\n")
    config, group, member = maya(folder)
    monkeypatch.setattr(calendars, "busy_from_ics", _hang_for_maya)
    started = time.monotonic()
    got = calendars.group_availability(config, group, LO, HI)
    assert time.monotonic() - started < 30
    assert got[member.email].unknown == "reading it took more than 1 s (limit [limits] calendar_seconds)"
    others = [a for email, a in got.items() if email != member.email]
    assert all(a.unknown is None for a in others) and any(a.busy for a in others)


def test_sigterm_cuts_a_calendar_read_in_flight(tmp_path, monkeypatch) -> None:
    """The stop hook (SIGTERM) ends a hanging read at once, not at its 60 s deadline; nothing lingers."""
    import threading

    from integrations import exchange

    folder = example(tmp_path, "[limits]\ncalendar_seconds = 60\n")
    (folder / MAYA).write_text((folder / MAYA).read_text() + "X-NOTE:maya\r\n")
    config, group, member = maya(folder)
    monkeypatch.setattr(calendars, "busy_from_ics", _hang_for_maya)
    timer = threading.Timer(1.0, exchange.abort_all)
    timer.start()
    try:
        started = time.monotonic()
        got = calendars.group_availability(config, group, LO, HI)
        assert time.monotonic() - started < 30  # far below the 60 s deadline
    finally:
        timer.cancel()
        exchange.resume()
    assert got[member.email].unknown == "not read: the service is stopping"


def _hang_for_maya(data, *args):
    """Hangs for Maya's calendar (marked X-NOTE:maya), reads the others as usual."""
    from integrations.ics import busy_from_ics
    if b"X-NOTE:maya" in data:
        sleep_forever()
    return busy_from_ics(data, *args)


def _eat_for_maya(data, *args):
    from integrations.ics import busy_from_ics
    if b"X-NOTE:maya" in data:
        eat_memory()
    return busy_from_ics(data, *args)


def test_a_reader_that_eats_memory_costs_only_its_member(tmp_path, monkeypatch) -> None:
    """A parse that allocates without end hits calendar_memory_mb in its worker; the others are read."""
    folder = example(tmp_path, "[limits]\ncalendar_memory_mb = 64\n")
    (folder / MAYA).write_text((folder / MAYA).read_text() + "X-NOTE:maya\r\n")
    config, group, member = maya(folder)
    monkeypatch.setattr(calendars, "busy_from_ics", _eat_for_maya)
    got = calendars.group_availability(config, group, LO, HI)
    assert got[member.email].unknown == "reading it took more memory than 64 MB (limit [limits] calendar_memory_mb)"
    assert all(a.unknown is None for email, a in got.items() if email != member.email)


# --- feeds --------------------------------------------------------------------------------

@pytest.fixture
def trickling_server():
    """An HTTP server that sends its status line and headers one byte every 2 s, for a minute."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn):
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n":
                if stop.wait(2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/secret-path/basic.ics"
    stop.set()
    thread.join(5)
    listener.close()


def test_a_feed_that_trickles_its_headers_is_cut_at_its_deadline(tmp_path, monkeypatch, trickling_server) -> None:
    """Headers one byte every 2 s: the member is unknown after the feed's deadline, not the server's lifetime."""
    monkeypatch.setattr(feeds, "TIMEOUT_SECONDS", 1)
    folder = example(tmp_path, "[limits]\ncalendar_seconds = 1\n")
    set_calendar(folder, trickling_server)
    config, group, member = maya(folder)
    started = time.monotonic()
    got = calendars.member_availability(config, member, LO, HI, write_file=atomic_write)
    assert time.monotonic() - started < 20
    assert got.unknown is not None and got.busy == ()
    assert "secret-path" not in got.unknown


def _crash_for_maya(data, *args):
    from integrations.ics import busy_from_ics
    if b"X-NOTE:maya" in data:
        os._exit(3)  # what a crash in C code looks like from outside: the worker is gone
    return busy_from_ics(data, *args)


def test_a_reader_that_crashes_costs_only_its_member(tmp_path, monkeypatch) -> None:
    """A worker that dies mid-read makes its member unknown in friendtor's words; the others are read."""
    folder = example(tmp_path)
    (folder / MAYA).write_text((folder / MAYA).read_text() + "X-NOTE:maya\r\n")
    config, group, member = maya(folder)
    monkeypatch.setattr(calendars, "busy_from_ics", _crash_for_maya)
    got = calendars.group_availability(config, group, LO, HI)
    assert got[member.email].unknown == "reading it failed unexpectedly (the reader stopped)"
    assert all(a.unknown is None for email, a in got.items() if email != member.email)


def test_no_calendar_worker_outlives_run_once(tmp_path) -> None:
    """After `run --once` exits, no forked calendar worker (same command line) is left running."""
    import subprocess
    import sys

    folder = example(tmp_path)
    done = subprocess.run([sys.executable, "-m", "scheduler.cli", "run", "--once", "--config", str(folder)],
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    left = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, check=False)
    assert left.stdout.strip() == b""
