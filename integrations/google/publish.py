"""Publishing meetings to Google Calendar (events), and reading how the guests answered.

The event shows what friendtor composed for the meeting (`SharedEvent`): the description is
the same text members see in their emailed invites.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.core.config import Config, Google, Group
from scheduler.core.meetings import Meeting
from scheduler.core.ports import SharedEvent, WriteFile

from .auth import google_settings
from .client import RETRIES, ServiceFactory, classify, connection, execute


@dataclass
class GooglePublisher:
    """Puts meetings into `[google] calendar`, one event per meeting, found again by its iCalUID.

    The event's iCalUID is the meeting's UID, the UID of the emailed invites too, so a member
    who gets both sees one event. Google sends its own invitations only when
    `[google] invitations = "google"` (sendUpdates=all); otherwise friendtor's emails are the
    invitations and Google is told to send nothing (sendUpdates=none).
    """

    service: ServiceFactory
    google: Google
    folder: Path | str = "DIR"
    retries: int = RETRIES
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, config: Config, write_file: WriteFile | None) -> GooglePublisher:
        """`write_file` stores a refreshed OAuth sign-in (the app's atomic write, from the CLI)."""
        return cls(connection(config, write_file), google_settings(config), config.folder)

    @property
    def send_updates(self) -> str:
        return "all" if self.google.invitations == "google" else "none"

    def _run(self, request, what: str, *, gone_ok: bool = False):
        return execute(request, retries=self.retries, sleep=self.sleep, gone_ok=gone_ok,
                       on_error=lambda exc: classify(exc, self.google, self.folder, what, self.google.calendar))

    def _client(self):
        return self.service()   # SendError (no sign-in, refused sign-in) goes to the outbox as it is

    def find(self, client, uid: str) -> dict[str, Any] | None:
        """The event with this iCalUID, deleted ones included (a move may bring one back)."""
        answer = self._run(client.events().list(calendarId=self.google.calendar, iCalUID=uid, showDeleted=True),
                           f"looking up {uid} in calendar {self.google.calendar!r}")
        return next((e for e in answer.get("items") or () if e.get("iCalUID") == uid), None)

    def publish(self, group: Group, meeting: Meeting, event: SharedEvent) -> None:
        client = self._client()
        existing = self.find(client, meeting.uid)
        what = f"publishing {meeting.uid} to calendar {self.google.calendar!r}"
        if existing is None:
            body = event_body(group, meeting, event.description)
            self._run(client.events().insert(calendarId=self.google.calendar, body=body,
                                             sendUpdates=self.send_updates), what)
            return
        # The time, the text and the guest list follow the config; answers already given are kept.
        # Google refuses a SEQUENCE below the event's own (it raises it itself on some edits).
        body = event_body(group, meeting, event.description, existing)
        body.pop("iCalUID")
        body["sequence"] = max(meeting.sequence, int(existing.get("sequence") or 0))
        self._run(client.events().patch(calendarId=self.google.calendar, eventId=existing["id"], body=body,
                                        sendUpdates=self.send_updates), what)

    def responses(self, group: Group, meeting: Meeting) -> dict[str, str]:
        """Each guest's answer in Google, {email (lower case): responseStatus}: "accepted",
        "declined", "tentative" or "needsAction". {} when the meeting is not (or no longer) in
        the calendar. Failures are SendErrors, as for publishing."""
        existing = self.find(self._client(), meeting.uid)
        if existing is None or existing.get("status") == "cancelled":
            return {}
        return {(a.get("email") or "").lower(): a.get("responseStatus") or "needsAction"
                for a in existing.get("attendees") or () if a.get("email")}

    def cancel(self, group: Group, meeting: Meeting) -> None:
        """Delete the event (Google keeps it as status "cancelled", and with invitations = "google"
        sends the guests a cancellation). Deleting rather than patching the status is the
        documented way, and an event already gone is fine."""
        client = self._client()
        existing = self.find(client, meeting.uid)
        if existing is None or existing.get("status") == "cancelled":
            return
        what = f"cancelling {meeting.uid} in calendar {self.google.calendar!r}"
        self._run(client.events().delete(calendarId=self.google.calendar, eventId=existing["id"],
                                         sendUpdates=self.send_updates), what, gone_ok=True)


def event_body(group: Group, meeting: Meeting, description: str,
               existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Google event for a meeting: the same title, text (`description`, as composed for the
    invites), times and guests as the emailed invite."""
    zone = ZoneInfo(group.timezone)
    answered = {(a.get("email") or "").lower(): a.get("responseStatus")
                for a in (existing or {}).get("attendees") or ()}
    body: dict[str, Any] = {
        "iCalUID": meeting.uid,
        "summary": group.name,
        "description": description,
        "start": {"dateTime": meeting.start.astimezone(zone).isoformat(), "timeZone": group.timezone},
        "end": {"dateTime": meeting.end.astimezone(zone).isoformat(), "timeZone": group.timezone},
        "attendees": [{"email": m.email, "displayName": m.name,
                       "responseStatus": answered.get(m.email) or "needsAction"} for m in group.members],
        "guestsCanSeeOtherGuests": group.share_member_emails,
        "sequence": meeting.sequence,
        "status": "confirmed",
        "transparency": "opaque",
        "reminders": {"useDefault": True},
        "extendedProperties": {"private": {"friendtorGroup": group.id, "friendtorCycle": meeting.cycle}},
    }
    if group.video_link:
        body["location"] = group.video_link
    return body

