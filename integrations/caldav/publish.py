"""Publishing meetings into a CalDAV calendar collection (RFC 4791).

One resource per meeting, `<collection>/<quoted UID>.ics`, so its address is known without
a search. Create is `PUT` with `If-None-Match: *`; a 412 means it exists, and it is updated
with a plain `PUT` to the same address (after checking that the stored copy is not a newer
SEQUENCE). Cancel is `DELETE`; 404 means already gone, which is fine. The stored object is
the calendar friendtor composed for the meeting (`SharedEvent.ics`, the invite's content)
without METHOD (RFC 4791 4.1); ORGANIZER is the service's sender, and ATTENDEEs are listed
only when the group shares member emails, marked SCHEDULE-AGENT=CLIENT (RFC 6638 7.1) so a
scheduling server does not email invitations on top of friendtor's own.
"""

from __future__ import annotations

import os
import ssl
import urllib.parse
from collections.abc import Mapping

import icalendar

from scheduler.core.config import Config, Group
from scheduler.core.errors import SendError, SetupError
from scheduler.core.meetings import Meeting
from scheduler.core.ports import SharedEvent

from ..http import Response, one_line
from .client import Auth, DavClient, caldav_auth, collection_url, display

_TRANSIENT = {408, 423, 425, 429}


def stored_calendar(event: SharedEvent, group: Group) -> bytes:
    """The VCALENDAR stored for a meeting: the composed invite's content, without METHOD, and
    with ATTENDEEs only when the group shares member emails (each SCHEDULE-AGENT=CLIENT)."""
    cal = icalendar.Calendar.from_ical(event.ics)
    cal.pop("METHOD", None)
    for vevent in cal.walk("VEVENT"):
        if not group.share_member_emails:
            vevent.pop("ATTENDEE", None)
            continue
        attendees = vevent.get("ATTENDEE", [])
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            attendee.params["SCHEDULE-AGENT"] = "CLIENT"
    return cal.to_ical()


def resource_name(uid: str) -> str:
    """The meeting's resource in the collection: its UID, URL-quoted, plus '.ics'."""
    return urllib.parse.quote(uid, safe="") + ".ics"


class CalDavPublisher:
    """Keeps each meeting as one event in a CalDAV calendar collection (see the module doc)."""

    def __init__(self, url: str, auth: Auth | None, timeout: float, *, password_env: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, setting: str | None = None):
        self.url = collection_url(url)
        # Refuses a URL that is not http(s), and a password in clear text, naming `setting`.
        self.client = DavClient(self.url, auth, timeout, fail=self._no_answer, ssl_context=ssl_context,
                                setting=setting)
        self.password_env = password_env

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] = os.environ) -> CalDavPublisher:
        settings = config.service.caldav
        if settings is None:
            raise SetupError("publish has \"caldav\" but there is no [caldav] table in service.toml")
        return cls(settings.url, caldav_auth(settings, environ), settings.timeout_seconds,
                   password_env=settings.password_env, setting="[caldav] url")

    def __repr__(self) -> str:
        return f"CalDavPublisher({display(self.url)})"

    def href(self, meeting: Meeting) -> str:
        return self.url + resource_name(meeting.uid)

    def publish(self, group: Group, meeting: Meeting, event: SharedEvent) -> None:
        """Create the event, or update it in place when it exists (412 on create)."""
        if meeting.cancelled:
            self.cancel(group, meeting)
            return
        body = stored_calendar(event, group)
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
        return self.client.request(method, url, body, sent)

    def _no_answer(self, text: str, transient: bool) -> SendError:
        """The publisher's one error map for a request without an answer (the HTTP answers
        themselves are mapped by `_error`)."""
        return SendError(self._clean(text), transient=transient)

    def _error(self, answer: Response, doing: str) -> SendError:
        where, status, auth = self.client.where, answer.status, self.client.auth
        collection = display(self.url)
        transient = status >= 500 or status in _TRANSIENT
        if transient:
            text = f"{where} answered HTTP {status} {one_line(answer.reason, 60)}".rstrip() + "; will retry"
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
            detail = one_line(answer.body.decode("utf-8", "replace")) or answer.reason
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
