"""iCalendar invites and cancellations (RFC 5545, iTIP RFC 5546).

One stable UID per meeting; every change (new time, cancellation) bumps SEQUENCE so
calendar clients update the event they already have instead of adding a second one.
Times carry the group's TZID with a VTIMEZONE made of one STANDARD and one DAYLIGHT block
with yearly RRULEs, the form Outlook reads; a zone whose rules cannot be written that way
(it changed its rules around the meeting) falls back to UTC times, which every client reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress

PRODID = "-//friendtor//friendtor//EN"


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class Invite:
    """Everything one calendar object says about one meeting."""

    uid: str
    sequence: int
    start: datetime            # aware
    end: datetime
    zone: str                  # the group's IANA zone, used for TZID
    summary: str
    description: str
    location: str | None       # the video link, or a gathering's city
    organizer: Person
    attendees: tuple[Person, ...]
    chairs: frozenset[str] = frozenset()  # emails of coordinators (ROLE=CHAIR)
    in_person: bool = False    # `location` is a place (a gathering's city), not a video link: no URL


def calendar(invite: Invite, method: str, stamp: datetime) -> bytes:
    """A VCALENDAR with METHOD REQUEST (invite or update) or CANCEL, as bytes."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported METHOD {method}")
    if stamp.tzinfo is None or invite.start.tzinfo is None:
        raise ValueError("aware datetimes only")
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)

    zone = ZoneInfo(invite.zone)
    vtz = vtimezone(invite.zone, invite.start)
    if vtz is not None:
        cal.add_component(vtz)
        start, end = invite.start.astimezone(zone), invite.end.astimezone(zone)
    else:
        start, end = invite.start.astimezone(UTC), invite.end.astimezone(UTC)

    event = Event()
    event.add("uid", invite.uid)
    event.add("sequence", invite.sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", invite.summary)
    event.add("description", invite.description)
    if invite.location:
        event.add("location", invite.location)
        if not invite.in_person:
            event.add("url", invite.location)
    organizer = vCalAddress(f"mailto:{invite.organizer.email}")
    organizer.params["CN"] = invite.organizer.name
    event.add("organizer", organizer)
    for person in invite.attendees:
        attendee = vCalAddress(f"mailto:{person.email}")
        attendee.params["CN"] = person.name
        attendee.params["CUTYPE"] = "INDIVIDUAL"
        attendee.params["ROLE"] = "CHAIR" if person.email in invite.chairs else "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee)
    if method == "CANCEL":
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
        event.add("transp", "OPAQUE")
    cal.add_component(event)
    return cal.to_ical()


# --- VTIMEZONE with yearly rules ------------------------------------------------------

@lru_cache(maxsize=512)
def _transitions(zone: ZoneInfo, year: int) -> tuple[datetime, ...]:
    """UTC instants in `year` at which the zone's offset changes, to the minute.
    Cached: every invite of a group needs the same few (zone, year) answers."""
    found = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    while t < end:
        nxt = t + step
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            lo, hi = t, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(second=0, microsecond=0))
        t = nxt
    return tuple(found)


def _byday(local: datetime, last: bool) -> str:
    code = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[local.weekday()]
    return f"-1{code}" if last else f"{(local.day - 1) // 7 + 1}{code}"


def _rule_date(year: int, month: int, byday: str) -> date:
    """The date a BYMONTH/BYDAY rule picks in `year` (e.g. 2SU, -1SU)."""
    n, code = int(byday[:-2]), byday[-2:]
    weekday = ("MO", "TU", "WE", "TH", "FR", "SA", "SU").index(code)
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def vtimezone(name: str, around: datetime) -> Timezone | None:
    """A VTIMEZONE for `name` valid around `around`, or None if yearly rules cannot describe it.

    The rules start in the year before the meeting (so the meeting never falls before the
    first onset) and are checked against the real transitions of the meeting's year and the next.
    """
    zone = ZoneInfo(name)
    year = around.astimezone(zone).year
    tz = Timezone()
    tz.add("tzid", name)
    years = [_transitions(zone, y) for y in (year - 1, year, year + 1)]
    if not any(years):
        local = around.astimezone(zone)
        std = TimezoneStandard()
        std.add("dtstart", datetime(1970, 1, 1))
        std.add("tzoffsetfrom", local.utcoffset())
        std.add("tzoffsetto", local.utcoffset())
        std.add("tzname", local.tzname())
        tz.add_component(std)
        return tz
    if any(len(t) != 2 for t in years):
        return None
    for index, instant in enumerate(years[0]):
        before = (instant - timedelta(minutes=1)).astimezone(zone)
        after = instant.astimezone(zone)
        onset = (instant + before.utcoffset()).replace(tzinfo=None)  # wall clock in the old offset
        later = [(t[index] + before.utcoffset()).replace(tzinfo=None) for t in years[1:]]
        # "Last Sunday" is how such rules are written (EU, New Zealand); prefer it when it fits.
        in_last_week = (onset + timedelta(days=7)).month != onset.month
        choices = (_byday(onset, True), _byday(onset, False)) if in_last_week else (_byday(onset, False),)
        rule = next((byday for byday in choices
                     if all(_rule_date(o.year, onset.month, byday) == o.date() and o.time() == onset.time()
                            for o in later)), None)
        if rule is None:
            return None
        part = TimezoneDaylight() if after.dst() else TimezoneStandard()
        part.add("dtstart", onset)
        part.add("rrule", {"FREQ": "YEARLY", "BYMONTH": onset.month, "BYDAY": rule})
        part.add("tzoffsetfrom", before.utcoffset())
        part.add("tzoffsetto", after.utcoffset())
        part.add("tzname", after.tzname())
        tz.add_component(part)
    return tz
