"""Calendars already read are kept in the service process by the SHA-256 of their bytes
(integrations.calcache): unchanged bytes are not read again, changed bytes are, and the
window, the zone and the limits are part of the key; feeds are told which bodies need no
parse; answers that depend on the machine are not kept; the cache stays within its bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from builders import ONE_MEMBER_GROUP as GROUP, ics
from integrations import calcache, workers
from integrations.calendars import member_availability
from scheduler.app.loader import load_config
from scheduler.app.store import atomic_write
from scheduler.core.availability import Availability, Busy

LO, HI = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
ONE = ics("SUMMARY:Clinic\nDTSTART:20261208T150000Z\nDTEND:20261208T160000Z")
TWO = ics("SUMMARY:Clinic\nDTSTART:20261208T150000Z\nDTEND:20261208T160000Z",
          "SUMMARY:Seminar\nDTSTART:20261209T150000Z\nDTEND:20261209T160000Z")


@pytest.fixture(autouse=True)
def _empty_cache(fresh_cache):
    """Each test starts with an empty cache (it is process-wide)."""


class _NoWorkers:
    """Stands in for the worker pool after the first read: a second read that would parse fails the test."""

    def map(self, tasks, **_):
        if tasks:
            raise AssertionError("a worker was asked to read a calendar whose answer is kept")
        return []


def test_unchanged_bytes_are_not_read_again(member_with_file, monkeypatch) -> None:
    """The second read of the same file gives the same answer without a worker (no parse)."""
    config, member = member_with_file(TWO)
    first = member_availability(config, member, LO, HI)
    assert first.unknown is None and len(first.busy) == 2
    assert (calcache.CACHE.hits, calcache.CACHE.misses) == (0, 1)
    monkeypatch.setattr(workers, "POOL", _NoWorkers())
    assert member_availability(config, member, LO, HI) == first
    assert calcache.CACHE.hits == 1


def test_a_changed_file_is_read_again(member_with_file) -> None:
    """New bytes in the same file: a miss, and the new events count."""
    config, member = member_with_file(ONE)
    assert len(member_availability(config, member, LO, HI).busy) == 1
    (config.folder / "calendars" / "m.ics").write_bytes(TWO)
    assert len(member_availability(config, member, LO, HI).busy) == 2
    assert (calcache.CACHE.hits, calcache.CACHE.misses) == (0, 2)


def test_the_window_zone_and_limits_are_part_of_the_key(member_with_file) -> None:
    """Another window, another member zone, another occurrence limit: each is read, not looked up."""
    config, member = member_with_file(TWO)
    member_availability(config, member, LO, HI)
    narrow = member_availability(config, member, LO, datetime(2026, 12, 9, tzinfo=UTC))
    assert len(narrow.busy) == 1
    other_zone, member2 = member_with_file(TWO, zone="Asia/Kolkata")
    member_availability(other_zone, member2, LO, HI)
    limited, member3 = member_with_file(TWO, service='state = "var/state.json"\n[limits]\ncalendar_occurrences = 100\n')
    member_availability(limited, member3, LO, HI)
    assert (calcache.CACHE.hits, calcache.CACHE.misses) == (0, 4)
    member_availability(config, member, LO, HI)
    assert calcache.CACHE.hits == 1


def test_an_answer_over_the_time_limit_is_not_kept(member_with_file) -> None:
    """A calendar whose read ran out of time is read again next time (the machine may have been busy)."""
    bomb = ics("SUMMARY:x\nDTSTART:20010101T000000Z\nDTEND:20010101T000001Z\nRRULE:FREQ=SECONDLY")
    config, member = member_with_file(bomb, service='state = "var/state.json"\n[limits]\ncalendar_seconds = 0.3\n')
    for _ in range(2):
        assert member_availability(config, member, LO, HI).unknown.startswith("reading it took")
    assert (calcache.CACHE.hits, calcache.CACHE.misses, len(calcache.CACHE)) == (0, 2, 0)


def test_a_calendar_that_is_not_icalendar_is_kept_as_such(member_with_file, monkeypatch) -> None:
    """An answer the bytes alone decide ("not an iCalendar file") is kept like any other."""
    config, member = member_with_file(b"PATH=/usr/bin\n")
    first = member_availability(config, member, LO, HI)
    assert first.unknown.startswith("not an iCalendar file")
    monkeypatch.setattr(workers, "POOL", _NoWorkers())
    assert member_availability(config, member, LO, HI) == first


def test_the_cache_stays_within_its_bounds() -> None:
    """At most `entries` answers and `intervals` busy intervals; the least recently used go first."""
    cache = calcache.CalendarCache(entries=3, intervals=10)
    window = calcache.window_key(ZoneInfo("UTC"), LO, HI, None)
    busy = Availability(tuple(Busy(LO, HI) for _ in range(4)))
    for name in "abc":
        cache.put(name, window, Availability())
    assert cache.get("a", window) is not None  # a is now the most recently used
    cache.put("d", window, Availability())
    assert cache.get("b", window) is None and len(cache) == 3
    cache.put("e", window, busy)
    cache.put("f", window, busy)  # 4+1 + 4+1 + the small ones: over 10 intervals
    assert cache.get("f", window) is not None and cache.get("a", window) is None
    assert cache._size <= 10
    cache.put("g", window, Availability(tuple(Busy(LO, HI) for _ in range(20))))  # alone over the bound
    assert cache.get("g", window) is None


def test_a_feed_whose_body_did_not_change_is_not_parsed_again(member_with_file, write_config_folder) -> None:
    """A feed is fetched by its worker every time (a conditional request), but a body whose
    digest the parent already holds an answer for comes back without a parse."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    bodies = [TWO]

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(bodies[0])))
            self.end_headers()
            self.wfile.write(bodies[0])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/feed.ics"
        folder = write_config_folder({"g.toml": GROUP.format(zone="Europe/London", calendar=url)},
                                     service='state = "var/state.json"\n')
        config = load_config(folder)
        member = config.groups["g"].members[0]
        first = member_availability(config, member, LO, HI, write_file=atomic_write)
        assert len(first.busy) == 2 and calcache.CACHE.hits == 0
        assert member_availability(config, member, LO, HI, write_file=atomic_write) == first
        assert calcache.CACHE.hits == 1
        bodies[0] = ONE
        assert len(member_availability(config, member, LO, HI, write_file=atomic_write).busy) == 1
        assert calcache.CACHE.hits == 1
    finally:
        server.shutdown()
        server.server_close()
