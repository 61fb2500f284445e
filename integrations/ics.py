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

A calendar is written by someone else, so reading one is bounded (`CalendarBudget`): the
occurrences in the window and the time spent are counted *while* the recurrence rules are
walked, before anything is expanded, so a 300-byte `RRULE:FREQ=SECONDLY` costs its member a
"calendar unknown" and nobody else anything. One event that cannot be read is left out and
counted; the rest of the calendar still counts.
"""

from __future__ import annotations

import contextlib
import gc
import time as clock
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil.rrule import rrulestr
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from scheduler.core.availability import Availability, Busy

from . import icsskip
from .calcache import CalendarBudget  # defined beside the cache keys it is part of; imported from here

# Ask one day wider on each side: all-day events are dates, which the query reads in its
# own zone, and an event that starts the evening before may still run.
MARGIN = timedelta(days=1)


class _OverBudget(Exception):
    """The calendar needs more than its budget; the text says which part, for the member's line."""


def busy_from_ics(data: bytes | str, zone: ZoneInfo, start: datetime, end: datetime,
                  budget: CalendarBudget = CalendarBudget(), *, prefilter: bool = True) -> Availability:
    """The busy intervals between `start` and `end` (aware) in an iCalendar text.

    A text that is not iCalendar, or one over its budget, gives an `unknown` availability
    with the reason in friendtor's words (never the calendar's own text): never a crash,
    and never "free". Events that cannot be read are left out and counted in `skipped`.
    `prefilter` (tests and benchmarks turn it off) first cuts from the text the events that
    cannot touch the window (integrations.icsskip): those are then not parsed, so one that
    is broken no longer costs anything; they still count as events, and when no event is
    left or every event left could not be read, the whole text is read again, so that a
    calendar where nothing can be read stays "unknown" as before (a calendar of nothing but
    old events costs a second parse, once: the parsed-calendar cache keeps the answer).
    """
    deadline = clock.monotonic() + budget.seconds  # one budget, even when the text is read twice
    with _collector_paused():
        if prefilter:
            cut, pruned = icsskip.prune(data, start - MARGIN, end + MARGIN)
            if pruned:
                got = _read(cut, zone, start, end, budget, deadline, pruned)
                if got is not _ALL_FAILED:
                    return got
        return _read(data, zone, start, end, budget, deadline, 0)  # nothing cut: never _ALL_FAILED


@contextlib.contextmanager
def _collector_paused():
    """The cyclic garbage collector off for one read. A read allocates an object or more per
    line (the cut's blocks, icalendar's lines and components, occurrences), so the collector
    would start dozens of times, each time walking every object of the process (a service's
    whole state, the libraries); what a read leaves is freed by reference counting, and the
    rest waits for the next collection after the read. Bounded like the read itself: the
    worker's RLIMIT_AS and the budget's occurrences and seconds."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# What `_read` gives when, with events cut before parsing, none of those it parsed could be
# read (or none were left): the caller reads the whole text again to tell the truth.
_ALL_FAILED = Availability.unreadable("every event left after the cut failed")


def _read(data: bytes | str, zone: ZoneInfo, start: datetime, end: datetime, budget: CalendarBudget,
          deadline: float, pruned: int) -> Availability:
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception:  # icalendar raises ValueError, KeyError, ... on garbage
        return Availability.unreadable("not an iCalendar file (no readable BEGIN:VCALENDAR)")
    if cal.name != "VCALENDAR":
        return Availability.unreadable("not an iCalendar file (it holds no VCALENDAR)")
    parsed = sum(1 for c in cal.subcomponents if c.name == "VEVENT")
    events = pruned + parsed
    skipped = _drop_unreadable(cal)
    try:
        cal = _standard_zones(cal)
        _check_budget(cal, start - MARGIN, end + MARGIN, budget, deadline)
        busy, failed = _expand(cal, zone, start - MARGIN, end + MARGIN, deadline)
    except _OverBudget as exc:
        return Availability.unreadable(str(exc))
    except Exception:  # a zone or date deep inside the calendar that no event alone explains
        return Availability.unreadable("its events could not be read")
    if pruned and skipped + failed == parsed:
        return _ALL_FAILED
    if events and skipped + failed == events:
        return Availability.unreadable("its only event could not be read" if events == 1
                                       else f"none of its {events} events could be read")
    busy = sorted((b for b in busy if b.end > start and b.start < end), key=lambda b: (b.start, b.end))
    return Availability(tuple(busy), skipped=skipped + failed)


def _drop_unreadable(cal: icalendar.Calendar) -> int:
    """Remove the VEVENTs that cannot be read (no start, a property icalendar could not
    parse) and say how many there were: one bad RDATE in an export must not cost the rest."""
    bad = [c for c in cal.subcomponents
           if c.name == "VEVENT" and ("DTSTART" not in c or getattr(c, "errors", None))]
    for component in bad:
        cal.subcomponents.remove(component)
    return len(bad)


def _check_budget(cal: icalendar.Calendar, lo: datetime, hi: datetime, budget: CalendarBudget,
                  deadline: float) -> None:
    """Walk every recurrence rule up to the window's end, counting, before expanding anything.

    The expansion below (dateutil, through recurring-ical-events) builds each rule's whole
    list of starts from DTSTART on and cannot be interrupted; walking the rule here, with a
    count and a clock, is what keeps that list small. Times are compared without zones: a
    day's margin on each side covers any offset.
    """
    lo_naive, hi_naive = (lo.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) - MARGIN,
                          hi.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) + MARGIN)
    inside = 0
    for event in cal.walk("VEVENT"):
        rules = event.get("RRULE")
        first = event["DTSTART"].dt
        first = first.replace(tzinfo=None) if isinstance(first, datetime) else datetime.combine(first, time(0))
        if rules is None:
            inside += lo_naive <= first <= hi_naive
            continue
        for rule in rules if isinstance(rules, list) else [rules]:
            try:
                starts = iter(rrulestr(rule.to_ical().decode(), dtstart=first, ignoretz=True))
            except Exception:
                continue  # the expansion meets the same error and leaves the event out
            for walked, when in enumerate(starts):
                if when > hi_naive:
                    break
                inside += when >= lo_naive
                if inside > budget.occurrences:
                    raise _OverBudget(f"too many occurrences in the window (limit {budget.occurrences})")
                if walked % 4096 == 0 and clock.monotonic() > deadline:
                    raise _OverBudget(f"reading it took longer than its {budget.seconds:g} s")


def _expand(cal: icalendar.Calendar, zone: ZoneInfo, lo: datetime, hi: datetime,
            deadline: float) -> tuple[list[Busy], int]:
    """Busy intervals of every event, and how many events could not be expanded.

    The whole calendar is expanded at once; only if that fails is each event (all the
    VEVENTs of one UID, with the calendar's zones) expanded alone, to leave out just the
    broken ones."""
    try:
        return _busy_of(cal, zone, lo, hi, deadline), 0
    except _OverBudget:
        raise
    except Exception:
        pass
    zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
    by_uid: dict[str, list] = defaultdict(list)
    for c in cal.subcomponents:
        if c.name == "VEVENT":
            by_uid[str(c.get("UID", id(c)))].append(c)
    busy: list[Busy] = []
    failed = 0
    for events in by_uid.values():
        one = icalendar.Calendar()
        one.subcomponents.extend(zones + events)
        try:
            busy.extend(_busy_of(one, zone, lo, hi, deadline))
        except _OverBudget:
            raise
        except Exception:
            failed += 1
    return busy, failed


def _busy_of(cal: icalendar.Calendar, zone: ZoneInfo, lo: datetime, hi: datetime, deadline: float) -> list[Busy]:
    busy = []
    for n, (begin, finish, source) in enumerate(occurrences(cal, lo, hi)):
        if n % 1024 == 0 and clock.monotonic() > deadline:
            raise _OverBudget("reading it took longer than its budget")
        if (b := _busy(begin, finish, source, zone)) is not None:
            busy.append(b)
    return busy


def occurrences(cal: icalendar.Calendar, lo: datetime, hi: datetime):
    """(start, end, the event it comes from) for each occurrence of a VEVENT between lo and hi.

    recurring-ical-events' public `between()` returns each occurrence as a copy of its event
    (`Component.copy` with DTSTART/DTEND set), about a fifth of a read, when only the start,
    the end, STATUS and TRANSP are needed. Its `CalendarQuery.series` and `Series.between()`
    are public and give `Occurrence` objects with `start` and `end`; the event behind one is
    only reachable through the private `Occurrence._adapter._component` (for an instance of
    a RANGE=THISANDFUTURE series, the override it follows, as in the copy). Written against
    recurring-ical-events 3.8 (tests/integrations/test_ics_occurrences.py fails loudly if that
    shape changes); an occurrence without it is copied through the public `as_component`.
    """
    query = recurring_ical_events.of(cal)
    for series in query.series:
        for occurrence in series.between(lo, hi):
            yield occurrence.start, occurrence.end, _source(occurrence)


def _source(occurrence) -> icalendar.cal.Component:
    component = getattr(getattr(occurrence, "_adapter", None), "_component", None)
    if isinstance(component, icalendar.cal.Component):
        return component
    return occurrence.as_component(False)  # the public way: a copy


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


def _busy(begin: date | datetime, finish: date | datetime, event, zone: ZoneInfo) -> Busy | None:
    """One occurrence's busy time: its start and end as recurring-ical-events computed them
    (DTEND, DURATION or the RFC 5545 default: a date-only event lasts one day, a timed one
    none), STATUS and TRANSP from the event it comes from."""
    status = str(event.get("STATUS", "CONFIRMED")).upper()
    transp = str(event.get("TRANSP", "OPAQUE")).upper()
    if status == "CANCELLED" or transp == "TRANSPARENT":
        return None
    b0, b1 = _aware(begin, zone), _aware(finish, zone)
    if b1 <= b0:
        return None
    return Busy(b0, b1, tentative=(status == "TENTATIVE"))


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(0), zone)  # a date: local midnight, the member's day
