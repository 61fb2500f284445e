"""CalDAV (RFC 4791): members' busy time, and meetings published into a calendar collection.

Busy time: a CALDAV:free-busy-query REPORT (RFC 4791 7.10) on the member's calendar
collection; when the server does not support it (4xx other than 401/404, 501, or an
answer that is not a VFREEBUSY), a calendar-query REPORT with a time-range filter fetches
the events, which are expanded here by `ics.busy_from_ics` rather than by the server
(`expand`): that expansion is the one tested for all-day events in the member's own zone,
floating times and moved instances, and servers' `expand` support varies. Any failure
makes the member unknown with a short reason, never free.

Publishing: one resource per meeting, `<collection>/<quoted UID>.ics`, so its address is
known without a search. Create is `PUT` with `If-None-Match: *`; a 412 means it exists,
and it is updated with a plain `PUT` to the same address (after checking that the stored
copy is not a newer SEQUENCE). Cancel is `DELETE`; 404 means already gone, which is fine.
The stored object has no METHOD (RFC 4791 4.1), ORGANIZER is the service's sender, and
ATTENDEEs are listed only when the group shares member emails, marked
SCHEDULE-AGENT=CLIENT (RFC 6638 7.1) so a scheduling server does not email invitations
on top of friendtor's own.

HTTP is the standard library's `http.client`, one connection per request: a dozen
requests a tick need no session, and it keeps the time and size limits exact. (The
`caldav` package would add a dependency tree for three verbs and two REPORT bodies.)
Basic auth is sent only over https, or plain http to a loopback address.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from scheduler.core.availability import Availability, Busy
from scheduler.core.config import CalDav, Config, Group
from scheduler.core.errors import FriendtorError, SendError, SetupError
from scheduler.core.meetings import Meeting
from scheduler.compose.build import invite_calendar

from .ics import busy_from_ics
from .hosts import is_loopback
from .secrets import password_from_env

MAX_BYTES = 10 * 1024 * 1024
DAV, CALDAV = "DAV:", "urn:ietf:params:xml:ns:caldav"
# Answers to the free-busy REPORT that mean "not supported here", so events are read instead.
# 401 (login) and 404 (no such calendar) would fail the same way, so they are reported as is.
_NO_FREE_BUSY = {400, 403, 405, 406, 409, 412, 415, 422, 501}
_TRANSIENT = {408, 423, 425, 429}


@dataclass(frozen=True)
class Auth:
    """HTTP Basic credentials; the password never shows in a repr or log."""

    username: str
    password: str = field(repr=False)


def caldav_auth(settings: CalDav, environ: Mapping[str, str] = os.environ) -> Auth | None:
    """The [caldav] login, with the password read from the variable `password_env` names."""
    password = password_from_env("[caldav]", settings.password_env, settings.username, environ, "CalDAV")
    if password is not None:
        return Auth(settings.username, password)
    if settings.username:
        raise SetupError("[caldav] username is set but there is no password: set password_env to the "
                             "name of an environment variable that holds it")
    return None


# --- HTTP ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Unreachable(Exception):
    """No HTTP answer (time-out, refused, TLS, broken or oversized answer)."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


class DavClient:
    """Requests to one CalDAV server; every URL it is given must be on that server."""

    def __init__(self, url: str, auth: Auth | None, timeout: float, *, max_bytes: int = MAX_BYTES,
                 ssl_context: ssl.SSLContext | None = None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise SetupError(f"{display(url)} is not an http(s) URL")
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.where = f"the CalDAV server {self.host}" + (f":{parts.port}" if parts.port else "")
        if auth is not None and self.scheme == "http" and not is_loopback(self.host):
            raise SetupError(f"refusing to send the CalDAV password for {auth.username!r} in clear text "
                                 f"to {self.host} (an http:// URL); use https://")
        self.auth = auth
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._context = ssl_context

    def __repr__(self) -> str:
        return f"DavClient({self.scheme}://{self.host}:{self.port})"

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        parts = urllib.parse.urlsplit(url)
        # Quoted so a config URL with spaces or accents still makes an ASCII request line;
        # existing %-escapes and the characters RFC 3986 allows in a path are kept.
        path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        target = path + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": "friendtor", **(headers or {})}
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth.username}:{self.auth.password}".encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        deadline = time.monotonic() + 2 * self.timeout  # each wait `timeout`, the whole answer twice that
        if self.scheme == "https":
            context = self._context or ssl.create_default_context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, target, body=body, headers=sent)
            response = conn.getresponse()
            chunks, size = [], 0
            while size <= self.max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                if conn.sock is not None:
                    conn.sock.settimeout(min(self.timeout, remaining))
                chunk = response.read1(min(64 * 1024, self.max_bytes + 1 - size))  # what has arrived
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > self.max_bytes:
                raise Unreachable(f"{self.where} sent an answer larger than {self.max_bytes // (1024 * 1024)} MB",
                                  transient=False)
            if response.length:  # read1 returns b"" when the server hangs up early
                raise Unreachable(f"{self.where} hung up after {size} bytes of its answer", transient=True)
            return Response(response.status, response.reason,
                            {k.lower(): v for k, v in response.getheaders()}, b"".join(chunks))
        except (TimeoutError, socket.timeout):
            raise Unreachable(f"{self.where} did not answer within {self.timeout:g} s", transient=True) from None
        except ssl.SSLCertVerificationError as exc:
            raise Unreachable(f"the certificate of {self.where} could not be verified "
                              f"({exc.verify_message or exc.reason}); if it uses a private certificate "
                              "authority, install its CA certificate in the system trust store",
                              transient=False) from None
        except ConnectionRefusedError:
            raise Unreachable(f"could not connect to {self.where}: connection refused", transient=True) from None
        except OSError as exc:
            raise Unreachable(f"could not talk to {self.where}: {_one_line(exc.strerror or str(exc))}",
                              transient=True) from None
        except (http.client.InvalidURL, ValueError) as exc:  # a control or non-ASCII character in the URL
            raise Unreachable(f"the URL for {self.where} cannot be used ({_one_line(str(exc))})",
                              transient=False) from None
        except http.client.HTTPException as exc:
            raise Unreachable(f"{self.where} sent a broken answer ({_one_line(str(exc)) or type(exc).__name__})",
                              transient=True) from None
        finally:
            conn.close()


def display(url: str) -> str:
    """A URL as it may be shown: without user:password@ and without a query string."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def collection_url(url: str) -> str:
    """A collection's URL ends in '/': relative hrefs resolve under it."""
    return url if url.endswith("/") else url + "/"


def same_host(a: str, b: str) -> bool:
    ha, hb = urllib.parse.urlsplit(a).hostname, urllib.parse.urlsplit(b).hostname
    return ha is not None and ha == hb


def _one_line(text: str, limit: int = 160) -> str:
    return " ".join(text.split())[:limit]


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- busy time -------------------------------------------------------------------------------

FREE_BUSY_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <C:time-range start="{start}" end="{end}"/>
</C:free-busy-query>
"""

CALENDAR_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:time-range start="{start}" end="{end}"/>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

_XML = {"Content-Type": "application/xml; charset=utf-8", "Depth": "1"}


def caldav_busy(url: str, start: datetime, end: datetime, *, auth: Auth | None, timeout: float,
                zone: ZoneInfo | None = None) -> Availability:
    """Busy time in a CalDAV calendar collection between `start` and `end` (aware).

    `zone` is the member's: all-day events and floating times in events read by the
    fallback are their local days and wall clock. Never raises: a failure is `unknown`.
    """
    url = collection_url(url)
    try:
        client = DavClient(url, auth, timeout)
        answer = client.request("REPORT", url, FREE_BUSY_QUERY.format(start=_stamp(start), end=_stamp(end)).encode(),
                                _XML)
        if answer.status == 200:
            busy = _free_busy(answer.body, start, end)
            if busy is not None:
                return Availability(busy)
        elif answer.status not in _NO_FREE_BUSY:
            return Availability.unreadable(_busy_reason(client, answer))
        return _events(client, url, start, end, zone or ZoneInfo("UTC"))
    except (FriendtorError, Unreachable) as exc:
        return Availability.unreadable(str(exc))


def _free_busy(body: bytes, start: datetime, end: datetime) -> tuple[Busy, ...] | None:
    """The busy periods of a VFREEBUSY answer, or None when the answer is not one."""
    try:
        cal = icalendar.Calendar.from_ical(body)
        parts = list(cal.walk("VFREEBUSY"))
    except Exception:  # icalendar raises ValueError, KeyError, ... on garbage
        return None
    if not parts:
        return None
    busy = []
    for part in parts:
        values = part.get("FREEBUSY", [])
        for value in values if isinstance(values, list) else [values]:
            fbtype = str(value.params.get("FBTYPE", "BUSY")).upper()
            if fbtype == "FREE":
                continue
            try:
                b0, b1 = value.dt
                if isinstance(b1, timedelta):
                    b1 = b0 + b1
                b0, b1 = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (b0, b1))  # FREEBUSY is UTC
            except (TypeError, ValueError, AttributeError):
                return None
            b0, b1 = max(b0, start), min(b1, end)
            if b1 > b0:
                busy.append(Busy(b0, b1, tentative=(fbtype == "BUSY-TENTATIVE")))
    busy.sort(key=lambda b: (b.start, b.end))
    return tuple(busy)


def _events(client: DavClient, url: str, start: datetime, end: datetime, zone: ZoneInfo) -> Availability:
    # A day wider on each side: the server reads all-day events and floating times in its
    # own zone (often UTC), and the member's may be up to 14 hours away.
    query = CALENDAR_QUERY.format(start=_stamp(start - timedelta(days=1)), end=_stamp(end + timedelta(days=1)))
    answer = client.request("REPORT", url, query.encode(), _XML)
    if 200 <= answer.status < 300 and answer.status != 207:
        return Availability.unreadable(f"{client.where} sent an answer that is not a CalDAV answer "
                                       f"(HTTP {answer.status} to a calendar-query REPORT)")
    if answer.status != 207:
        return Availability.unreadable(_busy_reason(client, answer))
    try:
        root = ET.fromstring(answer.body)  # expat refuses entity-expansion bombs; size is capped above
    except ET.ParseError as exc:
        return Availability.unreadable(f"{client.where} sent a broken answer ({_one_line(str(exc))})")
    busy: list[Busy] = []
    for data in root.iter(f"{{{CALDAV}}}calendar-data"):
        if not (data.text or "").strip():
            continue
        found = busy_from_ics(data.text.encode(), zone, start, end)
        if found.unknown:
            return Availability.unreadable(f"an event on {client.where} could not be read: {found.unknown}")
        busy.extend(found.busy)
    busy.sort(key=lambda b: (b.start, b.end))
    return Availability(tuple(busy))


def _busy_reason(client: DavClient, answer: Response) -> str:
    where, status = client.where, answer.status
    if status == 401:
        if client.auth is None:
            return (f"{where} wants a login (HTTP 401); friendtor logs in only to the host of [caldav] url "
                    "in service.toml, so host the calendar there or share it without a login")
        return (f"{where} rejected the login for {client.auth.username!r} (HTTP 401); check username "
                "and the password in [caldav] of service.toml")
    if status == 403:
        return f"{where} refused to show this calendar (HTTP 403); the login needs read or free-busy access to it"
    if status in (404, 410):
        return f"{where} has no calendar at this address (HTTP {status}); check the member's calendar URL"
    if 300 <= status < 400:
        return f"{where} redirects this calendar (HTTP {status}); use the calendar's current URL"
    return f"{where} answered HTTP {status} {_one_line(answer.reason, 60)}".rstrip()


# --- publishing ------------------------------------------------------------------------------

def event_calendar(config: Config, group: Group, meeting: Meeting) -> bytes:
    """The VCALENDAR stored for a meeting: the invite's content, without METHOD, and with
    ATTENDEEs only when the group shares member emails (each SCHEDULE-AGENT=CLIENT)."""
    # The invite for any one member carries exactly the summary, description, location,
    # times and ORGANIZER everyone gets; only its ATTENDEE list is per recipient.
    cal = icalendar.Calendar.from_ical(invite_calendar(config, group, group.members[0], meeting))
    cal.pop("METHOD", None)
    for event in cal.walk("VEVENT"):
        if not group.share_member_emails:
            event.pop("ATTENDEE", None)
            continue
        attendees = event.get("ATTENDEE", [])
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            attendee.params["SCHEDULE-AGENT"] = "CLIENT"
    return cal.to_ical()


def resource_name(uid: str) -> str:
    """The meeting's resource in the collection: its UID, URL-quoted, plus '.ics'."""
    return urllib.parse.quote(uid, safe="") + ".ics"


class CalDavPublisher:
    """Keeps each meeting as one event in a CalDAV calendar collection (see the module doc)."""

    def __init__(self, url: str, auth: Auth | None, timeout: float, *, config: Config,
                 password_env: str | None = None, ssl_context: ssl.SSLContext | None = None):
        self.url = collection_url(url)
        self.client = DavClient(self.url, auth, timeout, ssl_context=ssl_context)  # refuses clear-text passwords
        self.config = config
        self.password_env = password_env

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] = os.environ) -> CalDavPublisher:
        settings = config.service.caldav
        if settings is None:
            raise SetupError("publish has \"caldav\" but there is no [caldav] table in service.toml")
        try:
            return cls(settings.url, caldav_auth(settings, environ), settings.timeout_seconds, config=config,
                       password_env=settings.password_env)
        except FriendtorError as exc:
            text = str(exc)
            raise SetupError(text if "[caldav]" in text else f"[caldav] url: {text}") from None

    def __repr__(self) -> str:
        return f"CalDavPublisher({display(self.url)})"

    def href(self, meeting: Meeting) -> str:
        return self.url + resource_name(meeting.uid)

    def publish(self, group: Group, meeting: Meeting) -> None:
        """Create the event, or update it in place when it exists (412 on create)."""
        if meeting.cancelled:
            self.cancel(group, meeting)
            return
        body = event_calendar(self.config, group, meeting)
        href = self.href(meeting)
        answer = self._send("PUT", href, body, {"If-None-Match": "*"})
        if answer.status == 412:
            self._update(href, body, meeting)
        elif not 200 <= answer.status < 300:
            raise self._error(answer, "create")

    def _update(self, href: str, body: bytes, meeting: Meeting) -> None:
        current = self._send("GET", href)
        headers: dict[str, str] = {}
        if current.status == 200:
            if _sequence(current.body) > meeting.sequence:
                return  # a newer version of the meeting is already there (a late retry of an old one)
            if current.headers.get("etag"):
                headers["If-Match"] = current.headers["etag"]
        elif current.status not in (404, 410):
            raise self._error(current, "read")
        answer = self._send("PUT", href, body, headers)
        if answer.status == 412:
            raise SendError(f"{self.client.where}: the event for {meeting.uid} changed while it was being "
                            "updated; it will be tried again", transient=True, code=412)
        if not 200 <= answer.status < 300:
            raise self._error(answer, "update")

    def cancel(self, group: Group, meeting: Meeting) -> None:
        """Delete the event; one that is already gone (404, 410) is fine."""
        answer = self._send("DELETE", self.href(meeting))
        if not (200 <= answer.status < 300 or answer.status in (404, 410)):
            raise self._error(answer, "delete")

    def _send(self, method: str, url: str, body: bytes | None = None,
              headers: Mapping[str, str] | None = None) -> Response:
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "text/calendar; charset=utf-8"
        try:
            return self.client.request(method, url, body, sent)
        except Unreachable as exc:
            raise SendError(self._clean(str(exc)), transient=exc.transient) from None

    def _error(self, answer: Response, doing: str) -> SendError:
        where, status, auth = self.client.where, answer.status, self.client.auth
        collection = display(self.url)
        transient = status >= 500 or status in _TRANSIENT
        if transient:
            text = f"{where} answered HTTP {status} {_one_line(answer.reason, 60)}".rstrip() + "; will retry"
        elif status == 401:
            if auth is None:
                text = (f"{where} wants a login (HTTP 401); set username and password_env in [caldav] "
                        "of service.toml")
            else:
                env = (f"the environment variable {self.password_env}" if self.password_env
                       else "the variable password_env names")
                text = (f"{where} rejected the login for {auth.username!r} (HTTP 401); check username in "
                        f"[caldav] of service.toml and the password in {env}")
        elif status == 403:
            who = f"{auth.username!r}" if auth else "an anonymous user"
            text = (f"{where} does not let {who} {doing} events in {collection} (HTTP 403); give that "
                    "login write access to the calendar, or set url in [caldav] to a calendar it owns")
        elif status in (404, 409, 410) and doing in ("create", "update"):
            # WebDAV answers 409 to a PUT whose parent collection does not exist (RFC 4918 9.7.1).
            text = (f"there is no calendar collection at {collection} (HTTP {status}); check url in [caldav] "
                    "of service.toml: the calendar's own URL, ending in /")
        elif 300 <= status < 400:
            location = answer.headers.get("location")
            to = f" to {display(urllib.parse.urljoin(self.url, location))}" if location else ""
            text = (f"{where} redirects {collection} (HTTP {status}){to}; set url in [caldav] to the "
                    "calendar's current URL")
        else:
            detail = _one_line(answer.body.decode("utf-8", "replace")) or answer.reason
            text = f"{where} refused to {doing} the event (HTTP {status}: {detail})"
        return SendError(self._clean(text), transient=transient, code=status)

    def _clean(self, text: str) -> str:
        # Server text is untrusted: make sure none of it echoes the password.
        auth = self.client.auth
        return text.replace(auth.password, "***") if auth and auth.password else text


def _sequence(body: bytes) -> int:
    try:
        cal = icalendar.Calendar.from_ical(body)
        return max((int(e.get("SEQUENCE", 0)) for e in cal.walk("VEVENT")), default=0)
    except Exception:  # a stored copy we cannot read is simply overwritten
        return -1
