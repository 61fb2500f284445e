"""Busy time read from iCalendar files: recurrence, DST, zones, all-day, and what is not busy."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from builders import group, ics, member, slots_on, utc
from integrations.ics import busy_from_ics

NY, LON, KOL = ZoneInfo("America/New_York"), ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")
MARCH = (utc(2027, 3, 1), utc(2027, 4, 5))


def intervals(data: bytes, zone: ZoneInfo, lo=MARCH[0], hi=MARCH[1]):
    avail = busy_from_ics(data, zone, lo, hi)
    assert avail.unknown is None, avail.unknown
    return [(b.start.astimezone(ZoneInfo("UTC")).replace(tzinfo=None), b.end.astimezone(ZoneInfo("UTC")).replace(tzinfo=None), b.tentative)
            for b in avail.busy]


WEEKLY_NY = """
SUMMARY:Clinic
DTSTART;TZID=America/New_York:20270302T100000
DTEND;TZID=America/New_York:20270302T110000
RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=5
"""


def test_weekly_event_keeps_its_local_time_across_us_dst():
    """A weekly 10:00 New York event is 15:00 UTC before 14 March 2027 and 14:00 UTC after."""
    starts = [s for s, _, _ in intervals(ics(WEEKLY_NY), NY)]
    assert starts == [datetime(2027, 3, 2, 15), datetime(2027, 3, 9, 15), datetime(2027, 3, 16, 14),
                      datetime(2027, 3, 23, 14), datetime(2027, 3, 30, 14)]


def test_event_in_another_zone_lands_right_for_a_london_member():
    """A London member's call set in New York time is at 15:00, then 14:00 in the gap weeks, then 15:00 again."""
    g = group(member("Lon", "Europe/London"), member("Other", "Europe/London"), zone="Europe/London")
    avail = {"lon@uni.example": busy_from_ics(ics(WEEKLY_NY), LON, *MARCH)}
    for day, local_busy in ((date(2027, 3, 9), "15:00"), (date(2027, 3, 16), "14:00"), (date(2027, 3, 30), "15:00")):
        cands = {c.verdicts[0].local_start.strftime("%H:%M"): c.verdicts[0] for c in slots_on(g, day, avail)}
        assert cands[local_busy].reason == "busy", day
        hour_before = (datetime.strptime(local_busy, "%H:%M") - timedelta(hours=1)).strftime("%H:%M")
        assert cands[hour_before].status == "available", day


def test_moved_instance_and_exdate():
    """RECURRENCE-ID moves one instance (the old time is free, the new one busy); EXDATE removes another."""
    data = ics(WEEKLY_NY + "EXDATE;TZID=America/New_York:20270309T100000\nUID:series@tests", """
        UID:series@tests
        SUMMARY:Clinic (moved)
        RECURRENCE-ID;TZID=America/New_York:20270316T100000
        DTSTART;TZID=America/New_York:20270317T140000
        DTEND;TZID=America/New_York:20270317T150000
    """)
    starts = [s for s, _, _ in intervals(data, NY)]
    assert datetime(2027, 3, 9, 15) not in starts           # excluded
    assert datetime(2027, 3, 16, 14) not in starts          # moved away from here...
    assert datetime(2027, 3, 17, 18) in starts              # ...to Wednesday 14:00 EDT
    assert datetime(2027, 3, 23, 14) in starts


@pytest.mark.parametrize(("zone", "lo", "hi"), [
    (KOL, datetime(2027, 3, 9, 18, 30), datetime(2027, 3, 10, 18, 30)),
    (NY, datetime(2027, 3, 10, 5), datetime(2027, 3, 11, 5)),
])
def test_all_day_event_blocks_the_members_local_day(zone, lo, hi):
    """An all-day event covers the member's whole local date, wherever they are."""
    data = ics("SUMMARY:Service\nDTSTART;VALUE=DATE:20270310\nDTEND;VALUE=DATE:20270311")
    assert intervals(data, zone) == [(lo, hi, False)]


def test_all_day_event_makes_member_unavailable_all_day_but_not_the_next():
    """With an all-day event, every candidate on that date is busy; the next date is untouched."""
    g = group(member("Kol", "Asia/Kolkata"), member("Other", "Asia/Kolkata"), zone="Asia/Kolkata")
    data = ics("SUMMARY:Service week\nDTSTART;VALUE=DATE:20270308\nDTEND;VALUE=DATE:20270311")
    avail = {"kol@uni.example": busy_from_ics(data, KOL, *MARCH)}
    assert {c.verdicts[0].reason for c in slots_on(g, date(2027, 3, 10), avail)} == {"busy"}
    assert {c.verdicts[0].status for c in slots_on(g, date(2027, 3, 11), avail)} == {"available"}


def test_all_day_event_without_dtend_lasts_one_day():
    """RFC 5545: a DATE event with no DTEND or DURATION takes one day."""
    assert intervals(ics("SUMMARY:Off\nDTSTART;VALUE=DATE:20270310"), NY) == [
        (datetime(2027, 3, 10, 5), datetime(2027, 3, 11, 5), False)]


def test_floating_time_is_the_members_wall_clock():
    """An event without a zone happens at that wall-clock time in the member's own zone."""
    data = ics("SUMMARY:Gym\nDTSTART:20270310T070000\nDTEND:20270310T080000")
    assert intervals(data, KOL) == [(datetime(2027, 3, 10, 1, 30), datetime(2027, 3, 10, 2, 30), False)]
    assert intervals(data, NY) == [(datetime(2027, 3, 10, 12), datetime(2027, 3, 10, 13), False)]


def test_utc_and_duration():
    """Times in UTC and an end given as DURATION are read as written."""
    data = ics("SUMMARY:Call\nDTSTART:20270310T150000Z\nDURATION:PT45M")
    assert intervals(data, NY) == [(datetime(2027, 3, 10, 15), datetime(2027, 3, 10, 15, 45), False)]


def test_custom_vtimezone_definition():
    """A TZID that is not an IANA name (Outlook's "Eastern Standard Time") is read from its VTIMEZONE."""
    vtz = (
        "BEGIN:VTIMEZONE\r\nTZID:Eastern Standard Time\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n"
        "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n"
        "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    )
    data = ics("SUMMARY:a\nDTSTART;TZID=Eastern Standard Time:20270309T100000\n"
               "DTEND;TZID=Eastern Standard Time:20270309T110000",
               "SUMMARY:b\nDTSTART;TZID=Eastern Standard Time:20270316T100000\n"
               "DTEND;TZID=Eastern Standard Time:20270316T110000", extra=vtz)
    assert [s for s, _, _ in intervals(data, LON)] == [datetime(2027, 3, 9, 15), datetime(2027, 3, 16, 14)]


def test_transparent_cancelled_and_tentative():
    """'Show as free' and cancelled events block nothing; tentative ones are marked tentative."""
    data = ics(
        "SUMMARY:Writing\nDTSTART:20270310T150000Z\nDTEND:20270310T160000Z\nTRANSP:TRANSPARENT",
        "SUMMARY:Committee\nDTSTART:20270310T170000Z\nDTEND:20270310T180000Z\nSTATUS:CANCELLED",
        "SUMMARY:Journal club\nDTSTART:20270310T190000Z\nDTEND:20270310T200000Z\nSTATUS:TENTATIVE",
        "SUMMARY:Clinic\nDTSTART:20270310T210000Z\nDTEND:20270310T220000Z\nSTATUS:CONFIRMED",
    )
    assert intervals(data, NY) == [(datetime(2027, 3, 10, 19), datetime(2027, 3, 10, 20), True),
                                   (datetime(2027, 3, 10, 21), datetime(2027, 3, 10, 22), False)]


def test_events_outside_the_window_are_dropped():
    """Only busy time that overlaps the asked-for window is returned."""
    data = ics("SUMMARY:x\nDTSTART:20270210T150000Z\nDTEND:20270210T160000Z",
               "SUMMARY:y\nDTSTART:20270310T150000Z\nDTEND:20270310T160000Z")
    assert len(intervals(data, NY)) == 1


@pytest.mark.parametrize("data", [
    b"",
    b"hello, this is not a calendar",
    b"\x00\xff\xfe binary",
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Someone\r\nEND:VCARD\r\n",
    b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:notadate\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    ics("SUMMARY:x\nDTSTART:20270310T150000Z\nDTEND:20270310T160000Z\nRRULE:FREQ=SOMETIMES"),
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n",  # truncated download
], ids=["empty", "text", "binary", "vcard", "bad-date", "bad-rrule", "truncated"])
def test_unreadable_calendar_is_unknown_with_a_reason(data):
    """Garbage never crashes and never reads as free: the member is unknown, with the reason."""
    avail = busy_from_ics(data, NY, *MARCH)
    assert avail.unknown and avail.busy == ()
    assert "\n" not in avail.unknown and len(avail.unknown) < 250
