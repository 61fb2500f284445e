"""Attendance: RSVPs from iMIP replies, and what coordinators record after a meeting. Pure.

Two sources, one table (group, cycle, email -> present):
- a coordinator's record (`friendtor attendance`) is what happened, and always wins;
- an RSVP (Accept / Tentative / Decline in the member's calendar, an iTIP REPLY) is what was
  expected; it fills in only where no coordinator has recorded anything. A Tentative answer is
  kept as tentative: it is an answer (the member is not "unanswered"), but it is neither
  "present" nor "absent", so it never counts towards the 50% numbers.

An answer is about one version of the meeting. A reply whose SEQUENCE is below the meeting's,
or whose DTSTART is not the meeting's start, answers for an old time (a Decline of the time
before a move) and is stale: `stale` says why, and it is not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

import icalendar

from scheduler.core.meetings import Meeting

# PARTSTAT -> the answer recorded: present, absent, or tentative (None). NEEDS-ACTION,
# DELEGATED and the rest say nothing.
PARTSTAT_PRESENT: dict[str, bool | None] = {"ACCEPTED": True, "DECLINED": False, "TENTATIVE": None}
# The same for a Google event guest's responseStatus ("needsAction" says nothing).
RESPONSE_PRESENT: dict[str, bool | None] = {"accepted": True, "declined": False, "tentative": None}
MAX_CALENDAR_PARTS = 10     # calendar parts read from one message (Google sends two)
MAX_REPLIES = 50            # answers taken from one message


@dataclass(frozen=True)
class Reply:
    uid: str
    email: str        # the ATTENDEE's address (lower case)
    partstat: str     # ACCEPTED, DECLINED, TENTATIVE, ...
    sender: str       # the From address of the email, for logs
    sequence: int | None = None       # the SEQUENCE the member answered, if the reply says
    start: datetime | None = None     # the DTSTART the member answered (aware, UTC), if it says


def replies_in(message: EmailMessage) -> list[Reply]:
    """iTIP REPLYs (RFC 5546) in an email's text/calendar parts; [] for anything else. A
    message that carries the same answer twice (Google: a text/calendar part and an
    invite.ics attachment) gives it once."""
    sender = ""
    if message["From"] is not None and getattr(message["From"], "addresses", None):
        sender = message["From"].addresses[0].addr_spec.lower()
    out: list[Reply] = []
    parts = [p for p in message.walk() if p.get_content_type() in ("text/calendar", "application/ics")]
    for part in parts[:MAX_CALENDAR_PARTS]:
        try:
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True) or b"")
            if str(cal.get("METHOD", "")).upper() != "REPLY":
                continue
            for event in cal.walk("VEVENT"):
                uid = str(event.get("UID", ""))
                sequence, start = _sequence(event), _start(event)
                attendees = event.get("ATTENDEE", [])
                for att in attendees if isinstance(attendees, list) else [attendees]:
                    address = str(att)
                    if address.lower().startswith("mailto:") and uid:
                        reply = Reply(uid, address[7:].strip().lower(),
                                      str(att.params.get("PARTSTAT", "NEEDS-ACTION")).upper(), sender, sequence, start)
                        if reply not in out and len(out) < MAX_REPLIES:
                            out.append(reply)
        except Exception:  # noqa: BLE001 - a broken attachment is not our business; the part is skipped
            continue
    return out


def _sequence(event: icalendar.Event) -> int | None:
    try:
        value = event.get("SEQUENCE")
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _start(event: icalendar.Event) -> datetime | None:
    """DTSTART as an aware UTC instant; None when missing, a date, or in no known zone."""
    prop = event.get("DTSTART")
    value = getattr(prop, "dt", None)
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        return None
    return value.astimezone(UTC)


def stale(reply: Reply, meeting: Meeting) -> str | None:
    """Why `reply` answers an older version of `meeting` than the current one, or None.

    A member's own copy of an invite may run ahead of the meeting's SEQUENCE (see
    meetings.EVERYONE_STEP), never behind it; a reply that does not say its SEQUENCE or
    DTSTART is judged by what it says."""
    if reply.sequence is not None and reply.sequence < meeting.sequence:
        return f"answers SEQUENCE {reply.sequence}, the meeting is at {meeting.sequence}"
    if reply.start is not None and reply.start != meeting.start:
        return f"answers a start of {reply.start:%Y-%m-%dT%H:%MZ}, the meeting starts {meeting.start:%Y-%m-%dT%H:%MZ}"
    return None

