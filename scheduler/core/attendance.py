"""Attendance: RSVPs from iMIP replies, and what coordinators record after a meeting. Pure.

Two sources, one table (group, cycle, email -> present):
- a coordinator's record (`friendtor attendance`) is what happened, and always wins;
- an RSVP (Accept / Decline in the member's calendar, an iTIP REPLY) is what was expected;
  it fills in only where no coordinator has recorded anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import icalendar

PARTSTAT_PRESENT = {"ACCEPTED": True, "DECLINED": False}  # TENTATIVE and the rest say nothing
# The same for a Google event guest's responseStatus ("tentative", "needsAction" say nothing).
RESPONSE_PRESENT = {"accepted": True, "declined": False}


@dataclass(frozen=True)
class Reply:
    uid: str
    email: str        # the ATTENDEE's address (lower case)
    partstat: str     # ACCEPTED, DECLINED, TENTATIVE, ...
    sender: str       # the From address of the email, for logs


def replies_in(message: EmailMessage) -> list[Reply]:
    """iTIP REPLYs (RFC 5546) in an email's text/calendar parts; [] for anything else."""
    sender = ""
    if message["From"] is not None and getattr(message["From"], "addresses", None):
        sender = message["From"].addresses[0].addr_spec.lower()
    out = []
    for part in message.walk():
        if part.get_content_type() not in ("text/calendar", "application/ics"):
            continue
        try:
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True) or b"")
        except Exception:  # a broken attachment is not our business; the message is skipped
            continue
        if str(cal.get("METHOD", "")).upper() != "REPLY":
            continue
        for event in cal.walk("VEVENT"):
            uid = str(event.get("UID", ""))
            attendees = event.get("ATTENDEE", [])
            for att in attendees if isinstance(attendees, list) else [attendees]:
                address = str(att)
                if address.lower().startswith("mailto:") and uid:
                    out.append(Reply(uid, address[7:].strip().lower(),
                                     str(att.params.get("PARTSTAT", "NEEDS-ACTION")).upper(), sender))
    return out
