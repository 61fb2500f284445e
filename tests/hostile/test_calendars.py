"""Calendars written by others cost only their own member: a recurrence bomb makes that
member "calendar unknown" within the budget, one unreadable event is left out and counted
while the rest still counts, and no reason quotes the calendar's own text."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from builders import ics, utc
from integrations.ics import CalendarBudget, busy_from_ics

NY = ZoneInfo("America/New_York")
WINDOW = (utc(2027, 3, 1), utc(2027, 3, 15))
GOOD = """
SUMMARY:Clinic
DTSTART;TZID=America/New_York:20270302T100000
DTEND;TZID=America/New_York:20270302T110000
RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=2
"""


def starts(avail) -> list[datetime]:
    return [b.start.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) for b in avail.busy]


@pytest.mark.parametrize("rule", ["FREQ=SECONDLY", "FREQ=MINUTELY", "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,"
                                  "11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55"])
def test_a_recurrence_bomb_inside_the_window_is_unknown_by_its_count(rule: str) -> None:
    """An event repeating every second (or minute) in the window stops at the occurrence limit."""
    bomb = f"SUMMARY:x\nDTSTART:20270301T000000Z\nDTEND:20270301T000001Z\nRRULE:{rule}"
    avail = busy_from_ics(ics(GOOD, bomb), NY, *WINDOW, CalendarBudget(occurrences=1_000))
    assert avail.unknown == "too many occurrences in the window (limit 1000)"
    assert avail.busy == ()


def test_a_recurrence_bomb_that_starts_long_before_the_window_is_stopped_by_the_clock() -> None:
    """Walking a per-second rule from 2001 to the window is stopped by the time budget, not run to the end."""
    bomb = "SUMMARY:x\nDTSTART:20010101T000000Z\nDTEND:20010101T000001Z\nRRULE:FREQ=SECONDLY"
    avail = busy_from_ics(ics(GOOD, bomb), NY, *WINDOW, CalendarBudget(seconds=0.2))
    assert avail.unknown == "reading it took longer than its 0.2 s"


def test_a_series_that_ended_long_ago_costs_nothing_against_the_count() -> None:
    """Occurrences outside the window do not count against the window's limit."""
    old = "SUMMARY:old\nDTSTART:20200101T090000Z\nDTEND:20200101T091000Z\nRRULE:FREQ=HOURLY;UNTIL=20200301T000000Z"
    avail = busy_from_ics(ics(GOOD, old), NY, *WINDOW, CalendarBudget(occurrences=10))
    assert avail.unknown is None and starts(avail) == [datetime(2027, 3, 2, 15), datetime(2027, 3, 9, 15)]


UNREADABLE = [
    pytest.param("SUMMARY:bad rdate\nDTSTART:20270303T150000Z\nDTEND:20270303T160000Z\nRDATE:2027XXXX",
                 id="bad-rdate"),
    pytest.param("SUMMARY:no start\nDTEND:20270303T160000Z", id="no-dtstart"),
    pytest.param("SUMMARY:bad rule\nDTSTART:20270303T150000Z\nDTEND:20270303T160000Z\nRRULE:FREQ=SOMETIMES",
                 id="bad-rrule"),
    pytest.param("SUMMARY:bad end\nDTSTART:20270303T150000Z\nDTEND:tomorrow", id="bad-dtend"),
]


@pytest.mark.parametrize("broken", UNREADABLE)
def test_one_unreadable_event_is_left_out_and_counted(broken: str) -> None:
    """A calendar with one broken event keeps every good event and says one was left out."""
    avail = busy_from_ics(ics(GOOD, broken), NY, *WINDOW)
    assert avail.unknown is None, avail.unknown
    assert starts(avail) == [datetime(2027, 3, 2, 15), datetime(2027, 3, 9, 15)]
    assert avail.skipped == 1


def test_two_events_without_a_start_in_an_export() -> None:
    """Two events without DTSTART in an otherwise good export: two left out, the rest used."""
    avail = busy_from_ics(ics(GOOD, "SUMMARY:a\nDTEND:20270303T160000Z", "SUMMARY:b"), NY, *WINDOW)
    assert avail.skipped == 2 and len(avail.busy) == 2


SECRET = "PATH=/usr/bin\nSMTP_PASSWORD=hunter2\n"


@pytest.mark.parametrize("data", [SECRET.encode(), ("BEGIN:VCALENDAR\r\n" + SECRET).encode(),
                                  b"BEGIN:VCARD\r\nFN:hunter2\r\nEND:VCARD\r\n"])
def test_a_file_that_is_not_a_calendar_is_never_quoted(data: bytes) -> None:
    """The reason says what is wrong in friendtor's words; nothing of the file's content comes back."""
    avail = busy_from_ics(data, NY, *WINDOW)
    assert avail.unknown and "hunter2" not in avail.unknown and "PATH" not in avail.unknown
    assert avail.unknown.startswith("not an iCalendar file")
