"""Answers kept in the state folder (integrations.calcache.DiskCache): the next command, or a
restarted service, gets the answer for unchanged bytes without a worker or a parse; the
files are 0600 in a 0700 folder made only inside an existing state folder; garbage in a file
is no answer (the calendar is read again and the file rewritten); a new reader misses;
answers that depend on the machine are not written; the folder stays within its bound."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime

import pytest

from builders import ics
from integrations import calcache, workers
from integrations.calendars import _window, disk_cache, member_availability
from scheduler.app.store import atomic_write
from scheduler.core.availability import Availability, Busy

LO, HI = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
TWO = ics("SUMMARY:Clinic\nDTSTART:20261208T150000Z\nDTEND:20261208T160000Z",
          "SUMMARY:Seminar\nDTSTART;TZID=America/St_Johns:20261209T090000\nDTEND;TZID=America/St_Johns:20261209T100000\n"
          "STATUS:TENTATIVE")


@pytest.fixture(autouse=True)
def _empty_cache(fresh_cache):
    """Each test starts with an empty process cache: answers come from disk or a parse."""


@pytest.fixture
def member(member_with_file):
    """(config, member) in Asia/Kolkata with calendars/m.ics holding TWO and an existing state folder (var/)."""
    def make(data: bytes = TWO, service: str = 'state = "var/state.json"\n', state_folder: bool = True):
        return member_with_file(data, zone="Asia/Kolkata", service=service, state_folder=state_folder)
    return make


class _NoWorkers:
    def map(self, tasks, **_):
        if tasks:
            raise AssertionError("a worker was asked to read a calendar whose answer is on disk")
        return []


def _file(config, member, data: bytes = TWO):
    path, _ = disk_cache(config, None)._name(calcache.digest(data), _window(config, member, LO, HI))
    return path


def read(config, member):
    return member_availability(config, member, LO, HI, write_file=atomic_write)


def test_the_next_command_reads_the_answer_from_disk(member, monkeypatch) -> None:
    """A fresh process (empty memory cache) gets the same answer, tentative and zones included, without a worker."""
    config, m = member()
    first = read(config, m)
    assert first.unknown is None and len(first.busy) == 2 and first.busy[1].tentative
    path = _file(config, m)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    calcache.CACHE.clear()
    monkeypatch.setattr(workers, "POOL", _NoWorkers())
    again = read(config, m)
    assert again == first
    assert [b.start.timestamp() for b in again.busy] == [b.start.timestamp() for b in first.busy]


def test_an_unreadable_calendar_is_kept_too(member, monkeypatch) -> None:
    """An answer the bytes alone decide ("not an iCalendar file") is written like any other."""
    config, m = member(b"PATH=/usr/bin\n")
    first = read(config, m)
    assert first.unknown.startswith("not an iCalendar file")
    calcache.CACHE.clear()
    monkeypatch.setattr(workers, "POOL", _NoWorkers())
    assert read(config, m) == first


GARBAGE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x00\xff" * 100, id="binary"),
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"[]", id="a-list"),
    pytest.param(json.dumps({"format": 1}).encode(), id="fields-missing"),
    pytest.param(b"BUSY", id="wrong-key"),  # filled in below: a well-formed record for another key
    pytest.param(b"NAIVE", id="naive-times"),
    pytest.param(b"BACKWARDS", id="end-before-start"),
    pytest.param(b"BADTYPES", id="wrong-types"),
    pytest.param(b" " * (calcache.DISK_FILE_BYTES + 1), id="too-big"),
]


def _record(key: str, busy, **over) -> bytes:
    return json.dumps({"format": 1, "key": key, "unknown": None, "needs_fix": False, "skipped": 0,
                       "busy": busy, **over}).encode()


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_in_the_file_is_no_answer(member, garbage: bytes) -> None:
    """Whatever a cache file holds, the member's calendar is read again (right answer, no
    error) and the file is rewritten with the real answer."""
    config, m = member()
    first = read(config, m)
    path = _file(config, m)
    key = json.loads(path.read_bytes())["key"]
    garbage = {b"BUSY": _record("0" * 64, []),
               b"NAIVE": _record(key, [["2026-12-08T15:00:00", "2026-12-08T16:00:00", False]]),
               b"BACKWARDS": _record(key, [["2026-12-08T16:00:00+00:00", "2026-12-08T15:00:00+00:00", False]]),
               b"BADTYPES": _record(key, [["2026-12-08T15:00:00+00:00", "2026-12-08T16:00:00+00:00", "no"]],
                                    skipped="1")}.get(garbage, garbage)
    path.write_bytes(garbage)
    calcache.CACHE.clear()
    assert read(config, m) == first
    assert calcache.CACHE.misses == 1
    assert json.loads(path.read_bytes())["key"] == key  # rewritten


def test_a_planted_link_or_folder_is_no_answer(member, tmp_path) -> None:
    """A symlink (even to a well-formed record) or a directory in a cache file's place is not read."""
    config, m = member()
    first = read(config, m)
    path = _file(config, m)
    good = tmp_path / "elsewhere.json"
    good.write_bytes(path.read_bytes().replace(b'"skipped":0', b'"skipped":5'))
    path.unlink()
    path.symlink_to(good)
    calcache.CACHE.clear()
    assert read(config, m) == first  # skipped 0: the link was not followed
    path.unlink()
    path.mkdir()
    calcache.CACHE.clear()
    assert read(config, m) == first


def test_without_a_state_folder_nothing_is_written(member) -> None:
    """Before `validate` or the first `run` there is no state folder: the cache does not make one."""
    config, m = member(state_folder=False)
    assert read(config, m).unknown is None
    assert not (config.folder / "var").exists()


def test_without_a_writer_the_disk_is_only_read(member) -> None:
    config, m = member()
    assert member_availability(config, m, LO, HI).unknown is None
    assert not (config.folder / "var" / calcache.DISK_FOLDER).exists()


def test_a_new_reader_does_not_use_old_answers(member, monkeypatch) -> None:
    """The key holds the reader's stamp (its source, its libraries): another stamp misses."""
    config, m = member()
    read(config, m)
    calcache.CACHE.clear()
    monkeypatch.setattr(calcache, "reader_stamp", lambda: "another reader")
    monkeypatch.setattr(workers, "POOL", _NoWorkers())
    with pytest.raises(AssertionError, match="on disk"):
        read(config, m)


def test_an_answer_over_the_time_limit_is_not_written(member) -> None:
    bomb = ics("SUMMARY:x\nDTSTART:20010101T000000Z\nDTEND:20010101T000001Z\nRRULE:FREQ=SECONDLY")
    config, m = member(bomb, service='state = "var/state.json"\n[limits]\ncalendar_seconds = 0.3\n')
    assert read(config, m).unknown.startswith("reading it took")
    folder = config.folder / "var" / calcache.DISK_FOLDER
    assert not folder.exists() or not any(folder.iterdir())


def test_the_folder_stays_within_its_bound(tmp_path) -> None:
    """At most `entries` files, the least recently written going first; a big answer is not written."""
    (tmp_path / "var").mkdir()
    cache = calcache.DiskCache(tmp_path / "var" / "answers", atomic_write, entries=3, intervals=2)
    one = Availability((Busy(LO, HI),))
    for n in range(5):
        cache.put(f"sha{n}", ("w",), one)
        os.utime(cache._name(f"sha{n}", ("w",))[0], ns=(n * 10**9, n * 10**9))
    assert len(list((tmp_path / "var" / "answers").iterdir())) == 3
    assert cache.get("sha0", ("w",)) is None and cache.get("sha4", ("w",)) == one
    cache.put("big", ("w",), Availability((Busy(LO, HI),) * 3))
    assert cache.get("big", ("w",)) is None
