"""Busy time from iCalendar data (RFC 5545), expanded with recurring-ical-events.

Rules, in the words of a calendar user:
- TRANSP:TRANSPARENT ("show as free") and STATUS:CANCELLED events do not block anything;
- STATUS:TENTATIVE events make the member tentative;
- an all-day event blocks the member's whole local day(s), as they see it in their zone;
- a floating time (no zone) is the member's own wall-clock time, unless the calendar names
  its zone in X-WR-TIMEZONE (Google's and Apple's feeds do): then it is that zone's;
- Outlook's Windows zone names ("Eastern Standard Time"), in a TZID with or without a
  VTIMEZONE and in X-WR-TIMEZONE, are read as their IANA zones (CLDR's mapping, which
  icalendar ships and applies to TZIDs itself);
- recurring events are expanded with their RRULE, RDATE, EXDATE and moved instances
  (RECURRENCE-ID), each instance in its own zone, so DST changes land where they should.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from scheduler.core.availability import Availability, Busy


def busy_from_ics(data: bytes | str, zone: ZoneInfo, start: datetime, end: datetime) -> Availability:
    """The busy intervals between `start` and `end` (aware) in an iCalendar text.

    A text that is not iCalendar, or whose events cannot be expanded, gives an
    `unknown` availability with the reason: never a crash, and never "free".
    """
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError, KeyError, ... on garbage
        return Availability.unreadable(f"not a valid iCalendar file ({_short(exc)})")
    if cal.name != "VCALENDAR":
        return Availability.unreadable(f"not a VCALENDAR (found {cal.name or 'nothing'})")
    cal = _standard_zones(cal)
    try:
        # Ask one day wider on each side: all-day events are dates, which the query
        # reads in its own zone, and an event that starts the evening before may still run.
        occurrences = recurring_ical_events.of(cal).between(start - timedelta(days=1), end + timedelta(days=1))
        busy = [b for event in occurrences if (b := _busy(event, zone)) is not None]
    except Exception as exc:  # a broken RRULE or date deep inside one event
        return Availability.unreadable(f"an event could not be read ({_short(exc)})")
    lo, hi = start, end
    busy = [b for b in busy if b.end > lo and b.start < hi]
    busy.sort(key=lambda b: (b.start, b.end))
    return Availability(tuple(busy))


def _standard_zones(cal: icalendar.Calendar) -> icalendar.Calendar:
    """The calendar with X-WR-TIMEZONE applied (RFC 5545 form), its Windows name mapped.

    recurring-ical-events applies X-WR-TIMEZONE itself, but fails on a name zoneinfo does
    not know, so the property is resolved here and removed. A name that is neither IANA nor
    Windows is dropped: it only concerns floating times, which then stay the member's own.
    """
    name = str(cal.pop("X-WR-TIMEZONE", "")).strip()
    zone = _zone(name) if name else None
    return x_wr_timezone.to_standard(cal, timezone=zone) if zone is not None else cal


def _zone(name: str) -> ZoneInfo | None:
    for candidate in (name, WINDOWS_TO_OLSON.get(name)):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
                continue
    return None


def _busy(event, zone: ZoneInfo) -> Busy | None:
    status = str(event.get("STATUS", "CONFIRMED")).upper()
    transp = str(event.get("TRANSP", "OPAQUE")).upper()
    if status == "CANCELLED" or transp == "TRANSPARENT":
        return None
    dtstart = event.get("DTSTART")
    if dtstart is None:
        return None
    begin = dtstart.dt
    finish = event["DTEND"].dt if "DTEND" in event else None
    if finish is None and "DURATION" in event:
        finish = begin + event["DURATION"].dt
    if finish is None:
        # RFC 5545 3.6.1: a date-only event without an end lasts one day; a timed one is instantaneous.
        finish = begin + timedelta(days=1) if not isinstance(begin, datetime) else begin
    b0, b1 = _aware(begin, zone), _aware(finish, zone)
    if b1 <= b0:
        return None
    return Busy(b0, b1, tentative=(status == "TENTATIVE"))


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(0), zone)  # a date: local midnight, the member's day


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
