"""ICS feed URLs: time and size limits, the ETag / If-Modified-Since cache, stale copies,
zones named the Windows way or in X-WR-TIMEZONE, and the URL kept secret.

A real HTTP server on loopback serves every kind of feed; timeouts are 0.5 s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import stat
import struct
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from builders import ONE_MEMBER_GROUP, ics
from integrations import feeds
from integrations.calendars import feed_cache, member_availability
from integrations.feeds import FeedCache
from scheduler.core.errors import CalendarError
from scheduler.app.loader import load_config
from scheduler.app.store import atomic_write

SECRET = "private-7f3a9c1e0b5d4e2fa8c6d9b1e3f5a7c9"  # the part of a feed URL that must never leak
TIMEOUT = 0.5
LIMIT = 64 * 1024
LO, HI = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
GOOD = ics("SUMMARY:Clinic\nDTSTART:20261208T150000Z\nDTEND:20261208T160000Z")
ETAG = '"v1"'
MODIFIED = "Tue, 01 Dec 2026 08:00:00 GMT"

OUTLOOK_VTIMEZONE = """BEGIN:VTIMEZONE\r
TZID:Eastern Standard Time\r
BEGIN:STANDARD\r
DTSTART:16010101T020000\r
TZOFFSETFROM:-0400\r
TZOFFSETTO:-0500\r
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:16010101T020000\r
TZOFFSETFROM:-0500\r
TZOFFSETTO:-0400\r
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3\r
END:DAYLIGHT\r
END:VTIMEZONE\r
"""
WINDOWS_EVENT = "DTSTART;TZID=Eastern Standard Time:20261208T100000\nDTEND;TZID=Eastern Standard Time:20261208T110000"
FLOATING_EVENT = "DTSTART:20261208T100000\nDTEND:20261208T110000"


class _Feeds(BaseHTTPRequestHandler):
    """Serves /<SECRET>/<kind>.ics; the server's `seen` list records each request's path and headers."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.seen.append((self.path, dict(self.headers)))
        kind = self.path.rsplit("/", 1)[-1].removesuffix(".ics")
        kind = self.server.override.get(kind, kind)
        getattr(self, f"_{kind.replace('-', '_')}", self._missing)()

    def _send(self, body: bytes, status: int = 200, content_type: str = "text/calendar", **headers: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _good(self):
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
            return
        self._send(GOOD, ETag=ETAG, Last_Modified=MODIFIED)

    def _slow(self):
        time.sleep(TIMEOUT * 3)
        self._send(GOOD)

    def _trickle(self):
        # Each byte arrives well within the timeout, but the whole body would take 6 s.
        self.send_response(200)
        self.send_header("Content-Length", str(len(GOOD)))
        self.end_headers()
        for i in range(30):
            self.wfile.write(GOOD[i:i + 1])
            self.wfile.flush()
            time.sleep(0.2)

    def _huge(self):
        self._send(GOOD + b" " * (LIMIT * 3))

    def _error(self):
        self._send(b"oops", status=500, content_type="text/plain")

    def _garbage(self):
        self._send(b"<html><body>Sign in to see this calendar</body></html>", content_type="text/html")

    def _reset(self):
        self._abort()

    def _truncated(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(GOOD) * 10))
        self.end_headers()
        self.wfile.write(GOOD[:50])
        self.wfile.flush()
        self._abort()

    def _cut(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(GOOD) * 10))
        self.end_headers()
        self.wfile.write(GOOD[:50])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_WR)  # a polite FIN, long before the promised length
        self.close_connection = True

    def _abort(self):
        # SO_LINGER 0: close() sends a TCP RST, not a polite FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _windows_vtimezone(self):
        self._send(ics(WINDOWS_EVENT, extra=OUTLOOK_VTIMEZONE))

    def _windows_bare(self):
        self._send(ics(WINDOWS_EVENT))

    def _windows_x_wr(self):
        self._send(ics(FLOATING_EVENT, extra="X-WR-TIMEZONE:Eastern Standard Time\r\n"))

    def _x_wr_timezone(self):
        self._send(ics(FLOATING_EVENT, extra="X-WR-TIMEZONE:America/New_York\r\n"))

    def _floating(self):
        self._send(ics(FLOATING_EVENT))

    def _missing(self):
        self._send(b"not found", status=404, content_type="text/plain")

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # the connection was reset on purpose

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # resets and timeouts are what these tests are about


@pytest.fixture
def feed_server():
    """A loopback HTTP server for feeds; yields it, with `base` = its URL up to the secret folder."""
    server = _Server(("127.0.0.1", 0), _Feeds)
    server.seen = []
    server.override = {}  # kind -> the kind to serve instead (a feed that breaks later)
    server.base = f"http://127.0.0.1:{server.server_address[1]}/{SECRET}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def limits(monkeypatch):
    """Short limits for the whole module (what FeedCache reads when built)."""
    monkeypatch.setattr(feeds, "TIMEOUT_SECONDS", TIMEOUT)
    monkeypatch.setattr(feeds, "MAX_BYTES", LIMIT)


@pytest.fixture
def member_config(write_config_folder, limits):
    """Factory: a config with one member (Europe/London) whose calendar is `url`."""
    def make(url: str):
        folder = write_config_folder({"g.toml": ONE_MEMBER_GROUP.format(zone="Europe/London", calendar=url)}, service=f'state = "var/state.json"\n[limits]\ncalendar_bytes = {LIMIT}\n')
        config = load_config(folder)
        return config, config.groups["g"].members[0]
    return make


def leaked(records: list[logging.LogRecord]) -> list[str]:
    """Log records (message or fields) that contain the secret part of the URL."""
    return [r.getMessage() for r in records if SECRET in r.getMessage() or SECRET in str(vars(r))]


def test_good_feed_is_read_and_cached_privately(feed_server, member_config):
    """A good feed gives its busy time; the cache is two 0600 files named by SHA-256, in a 0700 folder."""
    url = f"{feed_server.base}/good.ics"
    config, member = member_config(url)
    avail = member_availability(config, member, LO, HI, write_file=atomic_write)
    assert avail.unknown is None
    assert [(b.start, b.end) for b in avail.busy] == [(datetime(2026, 12, 8, 15, tzinfo=UTC),
                                                       datetime(2026, 12, 8, 16, tzinfo=UTC))]
    folder = config.folder / "var" / "feeds"
    assert feed_cache(config, atomic_write).folder == folder
    digest = hashlib.sha256(url.encode()).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == [f"{digest}.ics", f"{digest}.json"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert SECRET not in path.name and SECRET.encode() not in path.read_bytes()
    assert (folder / f"{digest}.ics").read_bytes() == GOOD


def test_second_fetch_is_conditional_and_304_reuses_the_copy(feed_server, tmp_path):
    """The second fetch sends If-None-Match and If-Modified-Since; the 304 answer reuses the cached body."""
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT)
    url = f"{feed_server.base}/good.ics"
    assert cache.get(url).body == GOOD
    second = cache.get(url)
    assert second.body == GOOD and second.note is None
    (_, first_headers), (_, second_headers) = feed_server.seen
    assert "If-None-Match" not in first_headers
    assert second_headers["If-None-Match"] == ETAG
    assert second_headers["If-Modified-Since"] == MODIFIED


BAD_FEEDS = [
    ("slow", "the calendar feed did not answer within 0.5 s"),
    ("trickle", "the calendar feed took longer than 0.5 s to send its answer"),
    ("huge", "the calendar feed sent an answer larger than 64 KB"),
    ("error", "the calendar feed answered HTTP 500"),
    ("missing", "the calendar feed answered HTTP 404"),
    ("garbage", "the calendar feed did not return an iCalendar file (got text/html)"),
    ("reset", "could not talk to the calendar feed: "),
    ("truncated", "could not talk to the calendar feed: "),
    ("cut", "the calendar feed hung up after 50 bytes of its answer"),
]


@pytest.mark.parametrize(("kind", "reason"), BAD_FEEDS, ids=[k for k, _ in BAD_FEEDS])
def test_bad_feed_makes_the_member_unknown(feed_server, member_config, caplog, kind, reason):
    """A slow, huge, failing, garbled or reset feed makes the member unknown, with a reason and without the URL."""
    caplog.set_level(logging.DEBUG)
    config, member = member_config(f"{feed_server.base}/{kind}.ics")
    started = time.monotonic()
    avail = member_availability(config, member, LO, HI, write_file=atomic_write)
    assert time.monotonic() - started < 2.5
    assert avail.busy == () and avail.unknown is not None
    assert avail.unknown.startswith(reason), avail.unknown
    assert SECRET not in avail.unknown and "127.0.0.1" not in avail.unknown
    assert not leaked(caplog.records)


OUTAGES = ["slow", "error", "garbage", "reset", "huge", "cut"]


@pytest.mark.parametrize("outage", OUTAGES)
def test_outage_uses_a_recent_copy_with_a_note(feed_server, member_config, caplog, outage):
    """When a feed read before stops answering, its copy stands in; the log says so, naming only the host."""
    caplog.set_level(logging.DEBUG)
    config, member = member_config(f"{feed_server.base}/good.ics")
    assert member_availability(config, member, LO, HI, write_file=atomic_write).unknown is None
    feed_server.override["good"] = outage
    avail = member_availability(config, member, LO, HI, write_file=atomic_write)
    assert avail.unknown is None and len(avail.busy) == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "calendar feed unavailable, cached copy used"
    assert warning.fields["feed"] == f"http://127.0.0.1:{feed_server.server_address[1]}/…"
    assert "using the copy from 0 min ago" in warning.fields["note"]
    assert not leaked(caplog.records)


def test_copy_older_than_a_day_is_not_used(feed_server, tmp_path):
    """A copy last confirmed more than 24 h ago does not stand in: the member is unknown, with its age."""
    clock = [datetime(2026, 11, 1, 9, tzinfo=UTC)]
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT, clock=lambda: clock[0])
    url = f"{feed_server.base}/good.ics"
    cache.get(url)
    feed_server.override["good"] = "error"
    clock[0] += timedelta(hours=23)
    assert cache.get(url).note == "the calendar feed answered HTTP 500; using the copy from 23 h ago"
    clock[0] += timedelta(hours=2)
    with pytest.raises(CalendarError, match=r"HTTP 500; the last good copy is 25 h old, too old to use"):
        cache.get(url)


def test_304_renews_the_copy(feed_server, tmp_path):
    """A 304 counts as confirmation: the 24 hours start again from it."""
    clock = [datetime(2026, 11, 1, 9, tzinfo=UTC)]
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT, clock=lambda: clock[0])
    url = f"{feed_server.base}/good.ics"
    cache.get(url)
    clock[0] += timedelta(hours=20)
    cache.get(url)  # 304
    feed_server.override["good"] = "error"
    clock[0] += timedelta(hours=20)
    assert cache.get(url).note.endswith("using the copy from 20 h ago")


def test_revoked_feed_does_not_use_the_copy(feed_server, tmp_path):
    """A 404 (the secret address was reset) is not an outage: the cached copy is not used."""
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT)
    url = f"{feed_server.base}/good.ics"
    cache.get(url)
    feed_server.override["good"] = "missing"
    with pytest.raises(CalendarError, match="^the calendar feed answered HTTP 404$"):
        cache.get(url)


def test_garbage_does_not_replace_a_good_copy(feed_server, tmp_path):
    """A 200 answer that is not iCalendar (a login page) leaves the cached copy as it was."""
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT)
    url = f"{feed_server.base}/good.ics"
    cache.get(url)
    feed_server.override["good"] = "garbage"
    cache.get(url)
    body_path, _ = cache.paths(url)
    assert body_path.read_bytes() == GOOD


def test_unwritable_cache_still_reads_the_feed(feed_server, tmp_path):
    """A cache folder that cannot be created (a file is in the way) costs the cache, not the calendar."""
    (tmp_path / "feeds").write_text("in the way")
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT)
    assert cache.get(f"{feed_server.base}/good.ics").body == GOOD


def test_mismatched_copy_is_ignored(feed_server, tmp_path):
    """A cached body that does not match its metadata (two writers at once) is not trusted: a full fetch follows."""
    cache = FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT)
    url = f"{feed_server.base}/good.ics"
    cache.get(url)
    body_path, _ = cache.paths(url)
    body_path.write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    assert cache.get(url).body == GOOD
    assert "If-None-Match" not in feed_server.seen[-1][1]


EASTERN = [("windows-vtimezone", "TZID 'Eastern Standard Time' with Outlook's VTIMEZONE"),
           ("windows-bare", "TZID 'Eastern Standard Time' without a VTIMEZONE"),
           ("windows-x-wr", "floating times, X-WR-TIMEZONE 'Eastern Standard Time'"),
           ("x-wr-timezone", "floating times, X-WR-TIMEZONE 'America/New_York'")]


@pytest.mark.parametrize("kind", [k for k, _ in EASTERN], ids=[k for k, _ in EASTERN])
def test_zone_names_from_outlook_and_google(feed_server, member_config, kind):
    """10:00 Eastern, however the feed names the zone, is 15:00 UTC (not the London member's 10:00)."""
    config, member = member_config(f"{feed_server.base}/{kind}.ics")
    avail = member_availability(config, member, LO, HI, write_file=atomic_write)
    assert avail.unknown is None
    [busy] = avail.busy
    assert (busy.start, busy.end) == (datetime(2026, 12, 8, 15, tzinfo=UTC), datetime(2026, 12, 8, 16, tzinfo=UTC))
    assert busy.start.astimezone(ZoneInfo("America/New_York")).hour == 10


def test_floating_times_without_x_wr_timezone_are_the_members_own(feed_server, member_config):
    """Without X-WR-TIMEZONE a floating 10:00 is the member's own 10:00 (London: 10:00 UTC in December)."""
    config, member = member_config(f"{feed_server.base}/floating.ics")
    [busy] = member_availability(config, member, LO, HI, write_file=atomic_write).busy
    assert busy.start == datetime(2026, 12, 8, 10, tzinfo=UTC)


def test_unknown_x_wr_timezone_is_ignored():
    """An X-WR-TIMEZONE no one knows is dropped: floating times stay the member's, not an error."""
    from integrations.ics import busy_from_ics

    data = ics(FLOATING_EVENT, extra="X-WR-TIMEZONE:Middle Earth Standard Time\r\n")
    avail = busy_from_ics(data, ZoneInfo("Europe/London"), LO, HI)
    assert avail.unknown is None and avail.busy[0].start == datetime(2026, 12, 8, 10, tzinfo=UTC)


def test_uncached_fetch_keeps_its_contract(feed_server):
    """feeds.fetch (no cache) returns the body or a CalendarError without the URL."""
    assert feeds.fetch(f"{feed_server.base}/good.ics", timeout=TIMEOUT) == GOOD
    with pytest.raises(CalendarError) as info:
        feeds.fetch(f"{feed_server.base}/error.ics", timeout=TIMEOUT)
    assert str(info.value) == "the calendar feed answered HTTP 500"


@pytest.mark.parametrize("url", [
    f"https://calendar.google.com/calendar/ical/x%40y/{SECRET}/basic.ics",
    f"https://user:{SECRET}@outlook.office365.com:8443/owa/calendar/{SECRET}/calendar.ics?k={SECRET}",
], ids=["google", "outlook-with-credentials"])
def test_redact_keeps_only_scheme_and_host(url):
    """redact() shows where a feed lives, never its path, query or credentials."""
    shown = feeds.redact(url)
    assert SECRET not in shown and shown.endswith("/…")
    assert shown.split("/")[2] in ("calendar.google.com", "outlook.office365.com:8443")


def test_cache_files_are_private_under_a_loose_umask(feed_server, tmp_path):
    """Even with umask 000 the cache folder is 0700 and its files 0600."""
    old = os.umask(0)
    try:
        cache = FeedCache(tmp_path / "var" / "feeds", atomic_write, timeout=TIMEOUT)
        cache.get(f"{feed_server.base}/good.ics")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "var" / "feeds").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in Path(tmp_path / "var" / "feeds").iterdir()} == {0o600}


# --- https ------------------------------------------------------------------------------------

@pytest.fixture
def https_feed_server(server_tls):
    """The same feeds over https, with a certificate from the throwaway test CA (trustme)."""
    server = _Server(("127.0.0.1", 0), _Feeds)
    server.socket = server_tls.wrap_socket(server.socket, server_side=True)
    server.seen, server.override = [], {}
    server.base = f"https://localhost:{server.server_address[1]}/{SECRET}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_https_feed_with_an_untrusted_certificate_is_refused_not_bypassed(https_feed_server, monkeypatch,
                                                                            tmp_path):
    """A certificate the system does not trust fails the fetch with the TLS reason in words
    (the member's calendar then counts as unknown); verification is never turned off."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))  # trust nothing extra
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with pytest.raises(CalendarError, match="the certificate of the calendar feed could not be verified") as caught:
        feeds.fetch(f"{https_feed_server.base}/good.ics", timeout=TIMEOUT)
    assert SECRET not in str(caught.value)


def test_an_https_feed_signed_by_a_ca_the_system_trusts_is_read(https_feed_server, monkeypatch, tmp_path, test_ca):
    """With the CA in the system's trust store (here: SSL_CERT_FILE, which OpenSSL reads as an
    operator's CA bundle), the feed is fetched over verified TLS."""
    bundle = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert feeds.fetch(f"{https_feed_server.base}/good.ics", timeout=TIMEOUT) == GOOD


def test_without_a_writer_the_cache_is_read_but_never_written(feed_server, tmp_path):
    """FeedCache(folder, None) (a caller that must leave the service's files alone) uses a cached
    copy when the feed is down, and writes nothing: no folder, no file, no refreshed copy."""
    url = f"{feed_server.base}/good.ics"
    FeedCache(tmp_path / "feeds", atomic_write, timeout=TIMEOUT).get(url)
    before = {p.name: p.read_bytes() for p in (tmp_path / "feeds").iterdir()}
    reader = FeedCache(tmp_path / "feeds", None, timeout=TIMEOUT)
    assert reader.get(url).body == GOOD  # a 304 against the copy
    feed_server.override["good"] = "error"
    assert reader.get(url).note.startswith("the calendar feed answered HTTP 500; using the copy")
    assert {p.name: p.read_bytes() for p in (tmp_path / "feeds").iterdir()} == before
    assert FeedCache(tmp_path / "elsewhere", None, timeout=TIMEOUT).get(f"{feed_server.base}/floating.ics").body
    assert not (tmp_path / "elsewhere").exists()


def test_the_cli_wiring_keeps_the_feed_cache(feed_server, member_config):
    """The reader the CLI hands the service (scheduler.cli.wiring) writes the feed cache with
    the app's atomic write: a feed read once stands in when it is down."""
    from scheduler.cli import wiring

    config, member = member_config(f"{feed_server.base}/good.ics")
    group = config.groups["g"]
    assert wiring.group_availability(config, group, LO, HI)[member.email].unknown is None
    assert len(list((config.folder / "var" / "feeds").iterdir())) == 2
    feed_server.override["good"] = "error"
    assert len(wiring.group_availability(config, group, LO, HI)[member.email].busy) == 1
