"""Invites as calendars: RFC 5545/5546 fields, VTIMEZONE rules, and what an independent parser reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from scheduler.compose.ical import Invite, Person, calendar, vtimezone

UTC = ZoneInfo("UTC")
STAMP = datetime(2027, 2, 20, 12, tzinfo=UTC)


def invite(start: datetime, zone: str = "America/New_York", seq: int = 0, **kw) -> Invite:
    defaults = dict(
        uid="k-club-2027-03@mentoring.example.org", sequence=seq, start=start, end=start + timedelta(hours=1),
        zone=zone, summary="K Club", description="Our monthly meeting.\nJoin by video.",
        location="https://meet.example.org/k-club", organizer=Person("K Club", "k-club@mentoring.example.org"),
        attendees=(Person("Maya Chen", "maya@uni-a.example"),), chairs=frozenset({"maya@uni-a.example"}),
    )
    return Invite(**{**defaults, **kw})


def parse_vobject(data: bytes):
    return vobject.readOne(data.decode())


# 16 March 2027: New York is on EDT (since 14 March), London still on GMT (until 28 March).
GAP_WEEK = datetime(2027, 3, 16, 14, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Adelaide",
                                  "America/St_Johns", "America/Phoenix"])
def test_local_start_in_new_york_london_and_kolkata(zone):
    """vobject (independent of icalendar) reads 10:00 New York, 14:00 London, 19:30 Kolkata, whatever TZID we wrote."""
    data = calendar(invite(GAP_WEEK, zone=zone), "REQUEST", STAMP)
    event = parse_vobject(data).vevent
    start = event.dtstart.value
    assert start.tzinfo is not None
    assert start.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "10:00"
    assert start.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M") == "14:00"
    assert start.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%H:%M") == "19:30"
    # And icalendar agrees.
    ev = icalendar.Calendar.from_ical(data).walk("VEVENT")[0]
    assert ev["DTSTART"].dt == GAP_WEEK


def test_vtimezone_offsets_checked_by_vobject_against_zoneinfo():
    """vobject builds its own tzinfo from our VTIMEZONE; its offsets match zoneinfo all year round."""
    for zone in ("America/New_York", "Europe/London", "Australia/Adelaide", "America/St_Johns", "Pacific/Auckland"):
        vtz = vtimezone(zone, GAP_WEEK)
        cal = vobject.readOne(("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + vtz.to_ical().decode()
                               + "END:VCALENDAR\r\n"))
        tz = cal.vtimezone.gettzinfo()
        for day in range(0, 365 * 2, 5):
            at = datetime(2027, 1, 1, 12, tzinfo=UTC) + timedelta(days=day)
            expected = at.astimezone(ZoneInfo(zone)).utcoffset()
            assert at.astimezone(tz).utcoffset() == expected, (zone, at)


def test_vtimezone_has_one_standard_and_one_daylight_with_yearly_rules():
    """Outlook's form: one STANDARD and one DAYLIGHT, each with FREQ=YEARLY, no RDATE lists."""
    vtz = icalendar.Timezone.from_ical(vtimezone("Europe/London", GAP_WEEK).to_ical())
    parts = vtz.subcomponents
    assert sorted(p.name for p in parts) == ["DAYLIGHT", "STANDARD"]
    for p in parts:
        assert p["RRULE"]["FREQ"] == ["YEARLY"] and "RDATE" not in p
    assert vtz.walk("DAYLIGHT")[0]["RRULE"]["BYDAY"] == ["-1SU"]
    no_dst = icalendar.Timezone.from_ical(vtimezone("Asia/Kolkata", GAP_WEEK).to_ical())
    assert [p.name for p in no_dst.subcomponents] == ["STANDARD"]


def test_zone_without_yearly_rules_falls_back_to_utc():
    """A zone whose rules a yearly RRULE cannot express (Morocco's Ramadan shifts) is written in UTC."""
    data = calendar(invite(GAP_WEEK, zone="Africa/Casablanca"), "REQUEST", STAMP)
    assert b"BEGIN:VTIMEZONE" not in data
    assert b"DTSTART:20270316T140000Z" in data


def test_request_fields():
    """METHOD:REQUEST; one ORGANIZER mailto; ATTENDEE with CN, ROLE, PARTSTAT, RSVP; UID; one SEQUENCE; DTSTAMP UTC."""
    data = calendar(invite(GAP_WEEK, attendees=(Person("Maya Chen", "maya@uni-a.example"),
                                                Person("Li Wang", "li@uni-c.example"))), "REQUEST", STAMP)
    text = data.decode()
    cal = icalendar.Calendar.from_ical(data)
    assert cal["METHOD"] == "REQUEST"
    ev = cal.walk("VEVENT")[0]
    assert text.count("ORGANIZER") == 1 and str(ev["ORGANIZER"]) == "mailto:k-club@mentoring.example.org"
    assert text.count("\r\nSEQUENCE:") == 1 and ev["SEQUENCE"] == 0
    assert ev["DTSTAMP"].dt == STAMP and text.count("DTSTAMP:20270220T120000Z") == 1
    attendees = ev["ATTENDEE"]
    assert [str(a) for a in attendees] == ["mailto:maya@uni-a.example", "mailto:li@uni-c.example"]
    maya, li = attendees
    assert maya.params["ROLE"] == "CHAIR" and li.params["ROLE"] == "REQ-PARTICIPANT"
    for a in attendees:
        assert a.params["PARTSTAT"] == "NEEDS-ACTION" and a.params["RSVP"] == "TRUE" and a.params["CN"]
    assert str(ev["LOCATION"]) == str(ev["URL"]) == "https://meet.example.org/k-club"
    assert ev["SUMMARY"] == "K Club" and "Join by video" in ev["DESCRIPTION"]
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # CRLF line endings only
    v = parse_vobject(data)
    assert v.method.value == "REQUEST" and v.vevent.uid.value == "k-club-2027-03@mentoring.example.org"
    assert len(v.vevent.attendee_list) == 2 and v.vevent.organizer.params["CN"] == ["K Club"]


def test_update_and_cancel_reuse_the_uid_with_a_higher_sequence():
    """An update is REQUEST with SEQUENCE+1; a cancel is CANCEL with STATUS:CANCELLED; the UID never changes."""
    first = icalendar.Calendar.from_ical(calendar(invite(GAP_WEEK), "REQUEST", STAMP))
    moved = icalendar.Calendar.from_ical(calendar(invite(GAP_WEEK + timedelta(days=1), seq=1), "REQUEST", STAMP))
    cancel = icalendar.Calendar.from_ical(calendar(invite(GAP_WEEK + timedelta(days=1), seq=2), "CANCEL", STAMP))
    uids = {c.walk("VEVENT")[0]["UID"] for c in (first, moved, cancel)}
    assert len(uids) == 1
    assert [c.walk("VEVENT")[0]["SEQUENCE"] for c in (first, moved, cancel)] == [0, 1, 2]
    assert cancel["METHOD"] == "CANCEL" and cancel.walk("VEVENT")[0]["STATUS"] == "CANCELLED"
    assert parse_vobject(calendar(invite(GAP_WEEK, seq=2), "CANCEL", STAMP)).vevent.status.value == "CANCELLED"


@pytest.mark.parametrize("bad", ["Maya\r\nBCC: x@evil.example", "Semi;colon, comma \\ back"])
def test_text_values_are_escaped(bad):
    """Names and text with CR/LF, ';', ',' and '\\' cannot break out of their property."""
    data = calendar(invite(GAP_WEEK, summary=bad, attendees=(Person(bad, "maya@uni-a.example"),)), "REQUEST", STAMP)
    ev = parse_vobject(data).vevent
    assert ev.summary.value == bad.replace("\r\n", "\n")  # TEXT escapes a line break as \n
    [cn] = ev.attendee.params["CN"]  # RFC 6868 writes a line break in a parameter as ^n
    assert "\n" not in cn and cn.replace("^n", "\n") == bad.replace("\r\n", "\n")
    assert not any(line.startswith("BCC") for line in data.decode().split("\r\n"))


def test_naive_times_are_refused():
    """A naive datetime is a bug and fails loudly."""
    with pytest.raises(ValueError):
        calendar(invite(datetime(2027, 3, 16, 14)), "REQUEST", STAMP)
