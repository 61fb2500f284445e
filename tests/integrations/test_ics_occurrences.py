"""Occurrences read without copying their events (integrations.ics.occurrences): pinned to
the recurring-ical-events shape it relies on, equal to the public `between()`, and falling
back to the public copy when that shape is gone."""

from __future__ import annotations

from datetime import date
from importlib.metadata import version
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from builders import ics, utc
from integrations import ics as reader

NY = ZoneInfo("America/New_York")
LO, HI = utc(2027, 3, 1), utc(2027, 4, 30)
CALENDAR = ics(
    "UID:s@t\nSUMMARY:Clinic\nDTSTART;TZID=America/New_York:20270302T100000\n"
    "DTEND;TZID=America/New_York:20270302T110000\nRRULE:FREQ=WEEKLY;BYDAY=TU,TH\n"
    "EXDATE;TZID=America/New_York:20270304T100000",
    "UID:s@t\nRECURRENCE-ID;TZID=America/New_York:20270309T100000\nDTSTART;TZID=America/New_York:20270310T140000\n"
    "DTEND;TZID=America/New_York:20270310T153000\nSTATUS:TENTATIVE",
    "UID:s@t\nRECURRENCE-ID;RANGE=THISANDFUTURE;TZID=America/New_York:20270406T100000\n"
    "DTSTART;TZID=America/New_York:20270406T120000\nDTEND;TZID=America/New_York:20270406T130000\nTRANSP:TRANSPARENT",
    "UID:d@t\nDTSTART;VALUE=DATE:20270315\nRRULE:FREQ=MONTHLY;COUNT=3",
    "UID:f@t\nDTSTART:20270320T090000\nDURATION:PT45M\nSTATUS:CANCELLED",
    "UID:i@t\nDTSTART:20270321T090000Z",
)


def test_the_private_shape_relied_on_is_still_there() -> None:
    """recurring-ical-events 3.x: `CalendarQuery.series`, `Series.between()` giving
    `Occurrence`s whose `_adapter._component` is the calendar's own event, not a copy. When
    this fails after an upgrade, read the new source: the reader then copies every
    occurrence (correct, slower) until `integrations.ics.occurrences` is adapted."""
    assert version("recurring-ical-events").split(".")[0] == "3"
    cal = icalendar.Calendar.from_ical(CALENDAR)
    originals = {id(c) for c in cal.walk("VEVENT")}
    seen = 0
    for series in recurring_ical_events.of(cal).series:
        for occurrence in series.between(LO, HI):
            assert isinstance(occurrence, recurring_ical_events.Occurrence)
            assert id(occurrence._adapter._component) in originals
            assert isinstance(occurrence.start, date) and isinstance(occurrence.end, date)
            seen += 1
    assert seen > 10


def _public(cal: icalendar.Calendar) -> list:
    """Busy intervals the public way: a copy per occurrence."""
    busy = []
    for event in recurring_ical_events.of(cal).between(LO, HI):
        got = reader._busy(event["DTSTART"].dt, event["DTEND"].dt, event, NY)
        if got is not None:
            busy.append(got)
    return sorted(busy, key=lambda b: (b.start, b.end))


def test_the_light_path_gives_what_the_public_copies_give() -> None:
    """Series with weekdays and an exclusion, a moved instance, a this-and-future change,
    all-day, floating, cancelled, transparent and instant events: the same busy time."""
    cal = icalendar.Calendar.from_ical(CALENDAR)
    light = sorted(reader._busy_of(cal, NY, LO, HI, float("inf")), key=lambda b: (b.start, b.end))
    assert light == _public(cal) and len(light) > 10
    assert any(b.tentative for b in light)


class _Opaque:
    """An occurrence as a later release might shape it: only the public copy is there."""

    def __init__(self, occurrence):
        self._occurrence = occurrence

    def as_component(self, keep_recurrence_attributes: bool):
        return self._occurrence.as_component(keep_recurrence_attributes)


def test_without_the_private_shape_the_public_copy_is_used() -> None:
    """An occurrence without `_adapter._component` is read through `as_component`, with the same result."""
    cal = icalendar.Calendar.from_ical(CALENDAR)
    for series in recurring_ical_events.of(cal).series:
        for occurrence in series.between(LO, HI):
            copied = reader._source(_Opaque(occurrence))
            assert copied is not occurrence._adapter._component
            assert str(copied.get("STATUS", "")) == str(occurrence._adapter._component.get("STATUS", ""))
            assert str(copied.get("TRANSP", "")) == str(occurrence._adapter._component.get("TRANSP", ""))
