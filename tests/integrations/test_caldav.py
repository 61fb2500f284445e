"""CalDAV against a real Radicale server on loopback: publishing (PUT, update, DELETE), busy
time by free-busy REPORT and by the calendar-query fallback, credentials, and broken servers.

Radicale runs in a thread (wsgiref) with a temporary storage folder and htpasswd auth with
one test user. A thin WSGI layer in front of it records each request and, when a test asks,
answers free-busy REPORTs with an error, the way a server without free-busy support does;
everything else is Radicale's own answer.
"""

from __future__ import annotations

import base64
import http.client
import io
import itertools
import socket
import socketserver
import struct
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from zoneinfo import ZoneInfo

import icalendar
import pytest
import radicale
import radicale.config
import vobject

from integrations.caldav import Auth, CalDavPublisher, caldav_busy, resource_name, stored_calendar
from integrations.calendars import member_availability
from scheduler.core.errors import FriendtorError, SendError
from scheduler.app.loader import load_config
from scheduler.compose.build import shared_event
from scheduler.core.meetings import Meeting, meeting_uid

USER, PASSWORD = "friendtor", "correct horse battery staple"
ENV = {"TEST_CALDAV_PASSWORD": PASSWORD}
SENDER = "mentoring@example.org"
NEW_YORK = ZoneInfo("America/New_York")


# --- the server ------------------------------------------------------------------------------

class _Threads(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@dataclass
class Dav:
    """A running Radicale: `base` is its root URL; `requests` lists (method, path, report kind)."""

    base: str
    tls_base: str = ""
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    refuse_free_busy: int | None = None  # answer free-busy REPORTs with this status instead

    def url(self, path: str) -> str:
        return f"{self.base}/{path.strip('/')}/"

    def call(self, method: str, url: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
        """A request as the test user (to set up and inspect, independently of the code under test)."""
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        conn.request(method, parts.path, body=body, headers={"Authorization": f"Basic {token}", **headers})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, data

    def calendar(self, path: str) -> str:
        """A new calendar collection (MKCALENDAR); returns its URL."""
        url = self.url(path)
        status, _ = self.call("MKCALENDAR", url)
        assert status == 201, status
        return url

    def objects(self, url: str) -> list[str]:
        """The hrefs of the calendar objects in a collection (PROPFIND, Depth 1)."""
        body = b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'
        status, data = self.call("PROPFIND", url, body, Depth="1", **{"Content-Type": "application/xml"})
        assert status == 207
        hrefs = [h.text for h in ET.fromstring(data).iter("{DAV:}href")]
        return sorted(h for h in hrefs if h.endswith(".ics"))

    def reports(self) -> list[str]:
        return [kind for method, _, kind in self.requests if method == "REPORT"]


@pytest.fixture(scope="module")
def radicale_server(tmp_path_factory, server_tls):
    """Radicale 3 on 127.0.0.1 (free port), htpasswd auth with one user, storage in a temp folder;
    the same server also over https (`tls_base`), with a certificate from the test CA."""
    folder = tmp_path_factory.mktemp("radicale")
    (folder / "users").write_text(f"{USER}:{PASSWORD}\n")
    configuration = radicale.config.load()
    configuration.update({
        "auth": {"type": "htpasswd", "htpasswd_filename": str(folder / "users"),
                 "htpasswd_encryption": "plain", "delay": "0"},
        "rights": {"type": "authenticated"},  # the test user may read and write every collection
        "storage": {"filesystem_folder": str(folder / "collections")},
    }, "test", privileged=True)
    app = radicale.Application(configuration)
    dav = Dav(base="")

    def front(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        kind = ("free-busy" if b"free-busy-query" in body else "calendar-query" if b"calendar-query" in body
                else "")
        dav.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], kind))
        if kind == "free-busy" and dav.refuse_free_busy:
            status = dav.refuse_free_busy
            start_response(f"{status} {http.client.responses[status]}", [("Content-Type", "text/plain")])
            return [b"free-busy-query is not supported here"]
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, front, server_class=_Threads, handler_class=_Quiet)
    dav.base = f"http://127.0.0.1:{server.server_address[1]}"
    tls = make_server("127.0.0.1", 0, front, server_class=_Threads, handler_class=_Quiet)
    tls.socket = server_tls.wrap_socket(tls.socket, server_side=True)
    dav.tls_base = f"https://localhost:{tls.server_address[1]}"
    for s in (server, tls):
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield dav
    for s in (server, tls):
        s.shutdown()
        s.server_close()


_names = itertools.count(1)


@pytest.fixture
def dav(radicale_server):
    """The Radicale server, with its request log cleared and free-busy answered normally."""
    radicale_server.requests.clear()
    radicale_server.refuse_free_busy = None
    return radicale_server


@pytest.fixture
def collection(dav) -> str:
    """A fresh, empty calendar collection for this test."""
    return dav.calendar(f"{USER}/calendar-{next(_names)}")


# --- config and meetings ---------------------------------------------------------------------

def make_config(write_config_folder, caldav_url: str, *, share: bool = False, member_calendar: str | None = None,
                username: str | None = USER, password_env: str | None = "TEST_CALDAV_PASSWORD"):
    login = (f'username = "{username}"\n' if username else "") + \
            (f'password_env = "{password_env}"\n' if password_env else "")
    service = f"""
publish = ["email", "caldav"]
[mail]
sender = "{SENDER}"
sender_name = "Mentoring groups"
[caldav]
url = "{caldav_url}"
{login}timeout_seconds = 0.5
"""
    calendar = f'calendar = "{member_calendar}"\n' if member_calendar else ""
    group = f"""
name = "K Club"
timezone = "America/New_York"
coordinators = ["maya@uni-a.example"]
started = 2026-01-01
share_member_emails = {"true" if share else "false"}
video_link = "https://meet.example.org/k-club"
[[members]]
name = "Maya Chen"
email = "maya@uni-a.example"
timezone = "America/New_York"
{calendar}
[[members]]
name = "Li Wang"
email = "li@uni-c.example"
timezone = "Asia/Kolkata"
"""
    return load_config(write_config_folder({"k-club.toml": group}, service=service))


def meeting(start: datetime = datetime(2026, 12, 9, 17, tzinfo=UTC), sequence: int = 0) -> Meeting:
    return Meeting(group="k-club", cycle="2026-12", uid=meeting_uid("k-club", "2026-12", SENDER),
                   sequence=sequence, start=start, end=start + timedelta(hours=1),
                   stamp=datetime(2026, 11, 18, 9, tzinfo=UTC))


@pytest.fixture
def dav_config(write_config_folder, collection):
    """A config whose [caldav] url is `collection`."""
    return make_config(write_config_folder, collection)


@pytest.fixture
def publisher(dav_config):
    """A CalDavPublisher for `collection`, built from a config the way the service builds it."""
    return CalDavPublisher.from_config(dav_config, ENV)


def publish(publisher: CalDavPublisher, config, group, m: Meeting) -> None:
    """Publish `m` with the event friendtor composes for it, as the service does."""
    publisher.publish(group, m, shared_event(config, group, m))


# --- publishing ------------------------------------------------------------------------------

def test_publish_creates_the_event(dav, collection, publisher, dav_config):
    """publish() PUTs one event at <UID>.ics: UID, SEQUENCE, DTSTART in the group's zone, no METHOD, no attendees."""
    group = dav_config.groups["k-club"]
    m = meeting()
    publish(publisher, dav_config, group, m)
    assert dav.objects(collection) == [urllib.parse.urlsplit(collection).path + resource_name(m.uid)]
    status, body = dav.call("GET", publisher.href(m))
    assert status == 200

    cal = icalendar.Calendar.from_ical(body)
    assert "METHOD" not in cal
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == m.uid and int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert event["DTSTART"].dt == m.start and event["DTSTART"].dt.utcoffset() == timedelta(hours=-5)
    assert str(event["ORGANIZER"]) == f"mailto:{SENDER}" and "ATTENDEE" not in event
    assert str(event["SUMMARY"]) == "K Club" and str(event["LOCATION"]) == "https://meet.example.org/k-club"

    parsed = vobject.readOne(body.decode())
    assert parsed.vevent.uid.value == m.uid and int(parsed.vevent.sequence.value) == 0
    assert parsed.vevent.dtstart.value == m.start
    assert parsed.vevent.dtstart.value.astimezone(NEW_YORK).hour == 12


def test_attendees_only_when_the_group_shares_emails(write_config_folder, collection):
    """With share_member_emails every member is an ATTENDEE, marked SCHEDULE-AGENT=CLIENT (no server invitations)."""
    config = make_config(write_config_folder, collection, share=True)
    group = config.groups["k-club"]
    cal = icalendar.Calendar.from_ical(stored_calendar(shared_event(config, group, meeting()), group))
    attendees = cal.walk("VEVENT")[0]["ATTENDEE"]
    assert sorted(str(a) for a in attendees) == ["mailto:li@uni-c.example", "mailto:maya@uni-a.example"]
    assert {a.params["SCHEDULE-AGENT"] for a in attendees} == {"CLIENT"}
    publish(CalDavPublisher.from_config(config, ENV), config, group, meeting())


def test_publish_after_a_move_updates_the_same_resource(dav, collection, publisher, dav_config):
    """A moved meeting (a higher SEQUENCE) replaces the event in place: still one object, new time and SEQUENCE."""
    group = dav_config.groups["k-club"]
    first = meeting()
    publish(publisher, dav_config, group, first)
    moved = first.moved(first.start + timedelta(days=1), first.end + timedelta(days=1), first.stamp)
    publish(publisher, dav_config, group, moved)
    assert len(dav.objects(collection)) == 1
    _, body = dav.call("GET", publisher.href(moved))
    parsed = vobject.readOne(body.decode())
    assert int(parsed.vevent.sequence.value) == moved.sequence > 0 and parsed.vevent.dtstart.value == moved.start


def test_publishing_again_is_harmless(dav, collection, publisher, dav_config):
    """A retry of the same version (a crash after the PUT) leaves one identical event."""
    group = dav_config.groups["k-club"]
    publish(publisher, dav_config, group, meeting())
    _, before = dav.call("GET", publisher.href(meeting()))
    publish(publisher, dav_config, group, meeting())
    _, after = dav.call("GET", publisher.href(meeting()))
    assert before == after and len(dav.objects(collection)) == 1


def test_a_late_retry_of_an_older_version_does_not_overwrite(dav, collection, publisher, dav_config):
    """Publishing SEQUENCE 0 after SEQUENCE 1 is there keeps SEQUENCE 1."""
    group = dav_config.groups["k-club"]
    newer = meeting(sequence=1, start=datetime(2026, 12, 10, 17, tzinfo=UTC))
    publish(publisher, dav_config, group, newer)
    publish(publisher, dav_config, group, meeting(sequence=0))
    _, body = dav.call("GET", publisher.href(newer))
    assert int(vobject.readOne(body.decode()).vevent.sequence.value) == 1


def test_cancel_deletes_and_cancelling_twice_is_fine(dav, collection, publisher, dav_config):
    """cancel() DELETEs the event; a second cancel (404) is not an error."""
    group = dav_config.groups["k-club"]
    m = meeting()
    publish(publisher, dav_config, group, m)
    publisher.cancel(group, m.cancel(m.stamp))
    assert dav.objects(collection) == []
    assert dav.call("GET", publisher.href(m))[0] == 404
    publisher.cancel(group, m.cancel(m.stamp))


def test_missing_collection_is_a_permanent_error_naming_the_url(dav, write_config_folder):
    """PUT into a collection that does not exist: permanent, names the URL without its credentials."""
    url = dav.url(f"{USER}/no-such-calendar").replace("http://", f"http://{USER}:{PASSWORD.replace(' ', '')}@")
    config = make_config(write_config_folder, url)
    publisher = CalDavPublisher.from_config(config, ENV)
    with pytest.raises(SendError) as info:
        publish(publisher, config, config.groups["k-club"], meeting())
    error = info.value
    assert not error.transient and error.code in (404, 409)
    assert f"there is no calendar collection at {dav.url(f'{USER}/no-such-calendar')}" in str(error)
    assert "check url in [caldav]" in str(error) and PASSWORD.replace(" ", "") not in str(error)


# --- credentials ------------------------------------------------------------------------------

def test_wrong_password_is_permanent_for_publishing_and_unknown_for_busy_time(dav, collection, write_config_folder):
    """A wrong password: publish fails permanently saying what to check; busy time is unknown with the reason."""
    config = make_config(write_config_folder, collection, member_calendar=f"caldav:{collection}")
    wrong = {"TEST_CALDAV_PASSWORD": "not the password"}
    with pytest.raises(SendError) as info:
        publish(CalDavPublisher.from_config(config, wrong), config, config.groups["k-club"], meeting())
    assert not info.value.transient and info.value.code == 401
    assert str(info.value) == (f"the CalDAV server 127.0.0.1:{collection.split(':')[2].split('/')[0]} rejected the "
                               f"login for '{USER}' (HTTP 401); check username in [caldav] of service.toml and the "
                               "password in the environment variable TEST_CALDAV_PASSWORD")
    member = config.groups["k-club"].members[0]
    avail = member_availability(config, member, *MARCH, environ=wrong)
    assert avail.busy == () and "rejected the login for 'friendtor' (HTTP 401)" in avail.unknown
    assert "not the password" not in avail.unknown


def test_missing_password_variable_is_one_line_naming_it(write_config_folder, collection):
    """from_config without the password variable: one FriendtorError line naming the variable; busy time unknown."""
    config = make_config(write_config_folder, collection, member_calendar=f"caldav:{collection}")
    with pytest.raises(FriendtorError) as info:
        CalDavPublisher.from_config(config, {})
    assert "TEST_CALDAV_PASSWORD" in str(info.value) and "\n" not in str(info.value)
    avail = member_availability(config, config.groups["k-club"].members[0], *MARCH, environ={})
    assert "TEST_CALDAV_PASSWORD" in avail.unknown


@pytest.mark.parametrize(("username", "password_env", "expected"), [
    ("friendtor", None, "username is set but there is no password"),
    (None, "TEST_CALDAV_PASSWORD", "password_env is set but username is not"),
], ids=["no-password", "no-username"])
def test_half_a_login_is_refused(write_config_folder, username, password_env, expected):
    """A username without password_env, or the reverse, is a one-line error saying what to add."""
    config = make_config(write_config_folder, "https://dav.example.org/cal/", username=username,
                         password_env=password_env)
    with pytest.raises(FriendtorError, match=expected):
        CalDavPublisher.from_config(config, ENV)


def test_password_is_never_sent_in_clear_text(write_config_folder):
    """A password over plain http to a non-loopback host is refused, for publishing and for busy time."""
    config = make_config(write_config_folder, "http://dav.example.org/friendtor/meetings/",
                         member_calendar="caldav:http://dav.example.org/maya/work/")
    with pytest.raises(FriendtorError, match="in clear text to dav.example.org .*use https://"):
        CalDavPublisher.from_config(config, ENV)
    avail = member_availability(config, config.groups["k-club"].members[0], *MARCH, environ=ENV)
    assert "refusing to send the CalDAV password" in avail.unknown


def test_login_goes_only_to_the_caldav_host(dav, write_config_folder):
    """A member calendar on another host than [caldav] url is read anonymously (here: refused, 401)."""
    member_url = dav.calendar(f"{USER}/elsewhere-{next(_names)}")
    # Same server, other host name: the [caldav] login must not be sent to "localhost".
    other_host = member_url.replace("127.0.0.1", "localhost")
    config = make_config(write_config_folder, dav.url(f"{USER}/meetings"), member_calendar=f"caldav:{other_host}")
    avail = member_availability(config, config.groups["k-club"].members[0], *MARCH, environ=ENV)
    assert avail.unknown.startswith("the CalDAV server localhost:") and "wants a login (HTTP 401)" in avail.unknown
    config = make_config(write_config_folder, dav.url(f"{USER}/meetings"), member_calendar=f"caldav:{member_url}")
    assert member_availability(config, config.groups["k-club"].members[0], *MARCH, environ=ENV).unknown is None


# --- busy time ---------------------------------------------------------------------------------

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC))
VTIMEZONE_NY = """BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
"""
EVENTS = {
    # Mondays 10:00 New York, across the US change to summer time on 8 March 2026.
    "weekly": VTIMEZONE_NY + """BEGIN:VEVENT
UID:weekly@tests
DTSTAMP:20260101T000000Z
DTSTART;TZID=America/New_York:20260302T100000
DTEND;TZID=America/New_York:20260302T110000
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:Clinic
END:VEVENT
""",
    "all-day": """BEGIN:VEVENT
UID:all-day@tests
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20260304
DTEND;VALUE=DATE:20260305
SUMMARY:Study section
END:VEVENT
""",
    "transparent": """BEGIN:VEVENT
UID:free@tests
DTSTAMP:20260101T000000Z
DTSTART:20260305T150000Z
DTEND:20260305T160000Z
TRANSP:TRANSPARENT
SUMMARY:Reminder
END:VEVENT
""",
    "tentative": """BEGIN:VEVENT
UID:maybe@tests
DTSTAMP:20260101T000000Z
DTSTART:20260306T150000Z
DTEND:20260306T160000Z
STATUS:TENTATIVE
SUMMARY:Maybe
END:VEVENT
""",
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def member_calendar(dav) -> str:
    """A member's calendar collection holding EVENTS, PUT one object each."""
    url = dav.calendar(f"{USER}/member-{next(_names)}")
    for name, text in EVENTS.items():
        body = ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\n" + text + "END:VCALENDAR\n").replace("\n", "\r\n")
        status, _ = dav.call("PUT", f"{url}{name}.ics", body.encode(), **{"Content-Type": "text/calendar"})
        assert status == 201
    dav.requests.clear()
    return url


def blocks(avail) -> list[tuple[datetime, datetime, bool]]:
    return [(b.start.astimezone(UTC), b.end.astimezone(UTC), b.tentative) for b in avail.busy]


WEEKLY = [(utc(2026, 3, 2, 15), utc(2026, 3, 2, 16), False),   # 10:00 EST
          (utc(2026, 3, 9, 14), utc(2026, 3, 9, 15), False),   # 10:00 EDT
          (utc(2026, 3, 16, 14), utc(2026, 3, 16, 15), False)]
TENTATIVE = (utc(2026, 3, 6, 15), utc(2026, 3, 6, 16), True)


def test_busy_time_by_free_busy_report(dav, member_calendar):
    """Free-busy REPORT: weekly instances across DST, the all-day and tentative events; the transparent one is free."""
    avail = caldav_busy(member_calendar, *MARCH, auth=Auth(USER, PASSWORD), timeout=2, zone=NEW_YORK)
    assert avail.unknown is None
    assert dav.reports() == ["free-busy"]
    got = blocks(avail)
    assert [b for b in got if b in WEEKLY] == WEEKLY and TENTATIVE in got
    # The server reads the all-day date itself (Radicale: a UTC day); it must cover that date's noon.
    [all_day] = [b for b in got if b not in WEEKLY and b != TENTATIVE]
    assert all_day[0] <= utc(2026, 3, 4, 12) < all_day[1] and all_day[1] - all_day[0] == timedelta(days=1)
    assert not any(b[0] < utc(2026, 3, 5, 16) and b[1] > utc(2026, 3, 5, 15) for b in got)  # transparent


@pytest.mark.parametrize("status", [501, 403, 405, 400], ids=lambda s: f"free-busy-{s}")
def test_busy_time_falls_back_to_reading_events(dav, member_calendar, status):
    """Free-busy refused: events come by calendar-query, same blocks, the all-day event on the member's local day."""
    dav.refuse_free_busy = status
    avail = caldav_busy(member_calendar, *MARCH, auth=Auth(USER, PASSWORD), timeout=2, zone=NEW_YORK)
    assert avail.unknown is None
    assert dav.reports() == ["free-busy", "calendar-query"]
    all_day = (utc(2026, 3, 4, 5), utc(2026, 3, 5, 5), False)  # midnight to midnight in New York (EST)
    assert blocks(avail) == sorted([*WEEKLY, all_day, TENTATIVE])


def test_busy_time_through_member_availability(dav, member_calendar, write_config_folder):
    """A member's `caldav:` calendar on the [caldav] host is read with the [caldav] login."""
    config = make_config(write_config_folder, dav.url(f"{USER}/meetings"), member_calendar=f"caldav:{member_calendar}")
    avail = member_availability(config, config.groups["k-club"].members[0], *MARCH, environ=ENV)
    assert avail.unknown is None and [b for b in blocks(avail) if b in WEEKLY] == WEEKLY


def test_missing_member_calendar_is_unknown(dav):
    """A caldav: URL with no calendar behind it gives unknown, saying so."""
    avail = caldav_busy(dav.url(f"{USER}/nothing-here"), *MARCH, auth=Auth(USER, PASSWORD), timeout=2)
    assert avail.busy == () and "has no calendar at this address (HTTP 404)" in avail.unknown


# --- broken servers ---------------------------------------------------------------------------------

class _Broken(BaseHTTPRequestHandler):
    """Answers every request the way the server's `mode` says: a status, a pause, a cut-off answer or a reset."""

    protocol_version = "HTTP/1.1"

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        mode = self.server.mode
        if mode == "slow":
            time.sleep(1.5)
            mode = 200
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if mode == "cut":  # promises 1000 bytes, sends 10, hangs up politely
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"BEGIN:VCAL")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.close_connection = True
            return
        body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" if mode == 200 else b"server trouble"
        self.send_response(mode)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = do_REPORT = _any  # noqa: N815 (http.server's naming)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, *args):
        pass


class _BrokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def broken_server():
    """A loopback HTTP server whose `mode` is set by the test."""
    server = _BrokenServer(("127.0.0.1", 0), _Broken)
    server.mode = 503
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/cal/"
    yield server
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BROKEN = [
    (503, True, "answered HTTP 503"),
    (500, True, "answered HTTP 500"),
    (429, True, "answered HTTP 429"),
    ("slow", True, "did not answer within 0.5 s"),
    ("reset", True, "could not talk to the CalDAV server"),
    ("refused", True, "connection refused"),
    ("cut", True, "hung up after 10 bytes"),
    (403, False, "does not let 'friendtor' create events"),
    (400, False, "refused to create the event (HTTP 400: server trouble)"),
    (301, False, "redirects"),
]


@pytest.mark.parametrize(("mode", "transient", "text"), BROKEN, ids=[str(m) for m, _, _ in BROKEN])
def test_broken_server_errors_are_classified(broken_server, write_config_folder, mode, transient, text):
    """5xx, 429, time-outs, resets and refused connections are transient; 403, 400 and redirects are permanent."""
    url = broken_server.url if mode != "refused" else f"http://127.0.0.1:{_closed_port()}/cal/"
    broken_server.mode = mode
    config = make_config(write_config_folder, url)
    publisher = CalDavPublisher.from_config(config, ENV)
    with pytest.raises(SendError) as info:
        publish(publisher, config, config.groups["k-club"], meeting())
    assert info.value.transient is transient and text in str(info.value), str(info.value)
    assert PASSWORD not in str(info.value)


BROKEN_BUSY = [(503, "answered HTTP 503"), (500, "answered HTTP 500"), ("slow", "did not answer within 0.5 s"),
               ("reset", "could not talk to"), ("refused", "connection refused"), (401, "rejected the login"),
               ("cut", "hung up after 10 bytes"),
               (200, "is not a CalDAV answer")]


@pytest.mark.parametrize(("mode", "text"), BROKEN_BUSY, ids=[str(m) for m, _ in BROKEN_BUSY])
def test_broken_server_makes_busy_time_unknown(broken_server, mode, text):
    """A server that fails, stalls, resets, refuses or answers nonsense makes the member unknown, never free."""
    url = broken_server.url if mode != "refused" else f"http://127.0.0.1:{_closed_port()}/cal/"
    broken_server.mode = mode
    avail = caldav_busy(url, *MARCH, auth=Auth(USER, PASSWORD), timeout=0.5)
    assert avail.busy == () and avail.unknown is not None and text in avail.unknown, avail.unknown


def test_resource_names_are_quoted():
    """The resource name is the UID, URL-quoted, so '@' and '/' cannot leave the collection."""
    assert resource_name("k-club-2026-12@example.org") == "k-club-2026-12%40example.org.ics"
    assert resource_name("../x/y") == "..%2Fx%2Fy.ics"


def test_auth_repr_hides_the_password():
    """Auth's repr (in a traceback or debugger) never shows the password."""
    assert PASSWORD not in repr(Auth(USER, PASSWORD))



# --- wiring -----------------------------------------------------------------------------------

def test_publishers_for_builds_the_caldav_publisher(write_config_folder, collection):
    """publish = [..., "caldav"] gives a CalDavPublisher for [caldav] url, password from the environment."""
    from integrations.publish import publishers_for

    config = make_config(write_config_folder, collection)
    publishers = publishers_for(config, ENV)
    assert isinstance(publishers["caldav"], CalDavPublisher) and publishers["caldav"].url == collection


def test_a_service_tick_publishes_the_meeting(dav, collection, tmp_path, monkeypatch, capsys):
    """`friendtor run --once` on the example with publish = ["email", "caldav"] puts the meeting into the calendar."""
    import shutil

    from scheduler.cli.main import main

    example = Path(__file__).resolve().parents[2] / "config" / "example"
    cfg = tmp_path / "cfg"
    shutil.copytree(example, cfg, ignore=shutil.ignore_patterns("var"))
    service = (cfg / "service.toml").read_text().replace('publish = ["email"]', 'publish = ["email", "caldav"]')
    (cfg / "service.toml").write_text(service + f"""
[caldav]
url = "{collection}"
username = "{USER}"
password_env = "TEST_CALDAV_PASSWORD"
timeout_seconds = 2
""")
    monkeypatch.setenv("TEST_CALDAV_PASSWORD", PASSWORD)
    assert main(["run", "--once", "--config", str(cfg), "--now", "2026-11-21T12:00:00Z"]) == 0
    capsys.readouterr()
    [href] = dav.objects(collection)
    _, body = dav.call("GET", dav.base + href)
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert str(event["UID"]).startswith("k-club-2026-12@") and "ATTENDEE" not in event


# --- TLS -------------------------------------------------------------------------------------

def test_publishing_over_https_verifies_the_certificate(dav, collection, write_config_folder, monkeypatch,
                                                        tmp_path, test_ca):
    """Over https the server's certificate is verified: one from a CA the system does not trust
    is refused with a clear reason (nothing published); once the CA is in the trust store
    (SSL_CERT_FILE, as an operator's CA bundle), the event is published."""
    url = collection.replace(dav.base, dav.tls_base)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    config = make_config(write_config_folder, url)
    untrusting = CalDavPublisher.from_config(config, ENV)
    group = config.groups["k-club"]
    with pytest.raises(SendError, match="could not be verified") as caught:
        publish(untrusting, config, group, meeting())
    assert not caught.value.transient and dav.objects(collection) == []

    bundle = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    publish(CalDavPublisher.from_config(config, ENV), config, group, meeting())
    assert len(dav.objects(collection)) == 1


def test_a_refused_login_holds_publishing_back_and_a_fixed_one_publishes(dav, collection, write_config_folder):
    """Through the service: with a wrong CalDAV password every meeting's publish waits (pending,
    the server's answer on it), none fails and no coordinator is sent a failure report; the
    service started again with the right password publishes it."""
    from integrations.mail import DryRunTransport
    from scheduler.app.service import ConfigWatcher, Runner
    from scheduler.app.store import Store

    folder = make_config(write_config_folder, collection).folder
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)

    def service(store, environ):
        return Runner(ConfigWatcher(folder), store, lambda c: DryRunTransport(), availability=lambda *a: {},
                      publishers_factory=lambda c: {"caldav": CalDavPublisher.from_config(c, environ)})

    with Store(folder / "var" / "state.json") as store:
        report = service(store, {"TEST_CALDAV_PASSWORD": "wrong"}).tick(now)
        publishes = [d for d in store.sends() if d.kind == "publish"]
        assert publishes and all(d.status == "pending" for d in publishes)
        assert "rejected the login for 'friendtor' (HTTP 401)" in publishes[0].last_error
        assert {d.kind for d in report.held} == {"publish"} and not report.failed
        assert not [d for d in store.sends() if d.kind == "alert"]
    assert dav.objects(collection) == []
    with Store(folder / "var" / "state.json") as store:
        service(store, ENV).tick(now + timedelta(minutes=5))
        assert all(d.status == "sent" for d in store.sends() if d.kind == "publish")
    assert len(dav.objects(collection)) == len(publishes)
