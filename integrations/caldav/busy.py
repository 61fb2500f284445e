"""Members' busy time from a CalDAV calendar collection (RFC 4791).

A CALDAV:free-busy-query REPORT (RFC 4791 7.10) on the member's calendar collection; when
the server does not support it (4xx other than 401/404, 501, or an answer that is not a
VFREEBUSY), a calendar-query REPORT with a time-range filter fetches the events, which are
expanded here by `ics.busy_from_ics` rather than by the server (`expand`): that expansion
is the one tested for all-day events in the member's own zone, floating times and moved
instances, and servers' `expand` support varies. Any failure makes the member unknown with
a short reason, never free.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from scheduler.core.availability import Availability, Busy
from scheduler.core.errors import CalendarError, FriendtorError

from ..http import Response, one_line
from ..ics import busy_from_ics
from .client import Auth, DavClient, collection_url, stamp

CALDAV = "urn:ietf:params:xml:ns:caldav"
# Answers to the free-busy REPORT that mean "not supported here", so events are read instead.
# 401 (login) and 404 (no such calendar) would fail the same way, so they are reported as is.
_NO_FREE_BUSY = {400, 403, 405, 406, 409, 412, 415, 422, 501}


def _unreadable(text: str, transient: bool) -> CalendarError:
    """The busy reader's one error map: any request without an answer makes the calendar
    unreadable (the member unknown), whether or not it may work next time."""
    return CalendarError(text)

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
        client = DavClient(url, auth, timeout, fail=_unreadable)
        answer = client.request("REPORT", url, FREE_BUSY_QUERY.format(start=stamp(start), end=stamp(end)).encode(),
                                _XML)
        if answer.status == 200:
            busy = _free_busy(answer.body, start, end)
            if busy is not None:
                return Availability(busy)
        elif answer.status not in _NO_FREE_BUSY:
            return Availability.unreadable(_busy_reason(client, answer))
        return _events(client, url, start, end, zone or ZoneInfo("UTC"))
    except FriendtorError as exc:  # a setup refusal or no answer
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
    query = CALENDAR_QUERY.format(start=stamp(start - timedelta(days=1)), end=stamp(end + timedelta(days=1)))
    answer = client.request("REPORT", url, query.encode(), _XML)
    if 200 <= answer.status < 300 and answer.status != 207:
        return Availability.unreadable(f"{client.where} sent an answer that is not a CalDAV answer "
                                       f"(HTTP {answer.status} to a calendar-query REPORT)")
    if answer.status != 207:
        return Availability.unreadable(_busy_reason(client, answer))
    try:
        root = ET.fromstring(answer.body)  # expat refuses entity-expansion bombs; size is capped above
    except ET.ParseError as exc:
        return Availability.unreadable(f"{client.where} sent a broken answer ({one_line(str(exc))})")
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
    return f"{where} answered HTTP {status} {one_line(answer.reason, 60)}".rstrip()

