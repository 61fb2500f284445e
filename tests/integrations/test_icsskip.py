"""Cutting events that cannot touch the window from a calendar's text before it is parsed
(integrations.icsskip): what goes and what stays, and, for random calendars of series,
one-offs, moved instances and exclusions in several zones, the same busy time with the cut
as without it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import ics, utc
from integrations import icsplain
from integrations.icsskip import prune
from integrations.ics import busy_from_ics


# The calendars here are small: the one-substitution cut (icsplain) is made to run on them
# anyway, so that every test below, the property test too, goes through it.
pytestmark = pytest.mark.usefixtures("substitution_on_small_texts")

NY = ZoneInfo("America/New_York")
WINDOW = (utc(2027, 3, 1), utc(2027, 4, 30))  # US, UK and South Australian clock changes


def both(data: bytes, zone=NY, window=WINDOW):
    """busy_from_ics with and without the cut."""
    return (busy_from_ics(data, zone, *window), busy_from_ics(data, zone, *window, prefilter=False))


def kept(data: bytes, window=WINDOW) -> tuple[bytes, int]:
    return prune(data, *window)


OLD_ONE_OFF = "UID:old@t\nDTSTART:20210301T150000Z\nDTEND:20210301T160000Z"
NOW_ONE_OFF = "UID:now@t\nDTSTART;TZID=America/New_York:20270310T090000\nDTEND;TZID=America/New_York:20270310T100000"


@pytest.mark.parametrize("event", [
    pytest.param(OLD_ONE_OFF, id="one-off-years-ago"),
    pytest.param("UID:x@t\nDTSTART;TZID=Europe/Berlin:20220301T090000\nDURATION:PT1H", id="duration-in-a-zone"),
    pytest.param("UID:x@t\nDTSTART;VALUE=DATE:20230301\nDTEND;VALUE=DATE:20230302", id="all-day"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000\nDTEND:20210104T100000\nRRULE:FREQ=WEEKLY;UNTIL=20220101T000000Z",
                 id="series-with-until"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRRULE:FREQ=WEEKLY;COUNT=50;BYDAY=MO,WE",
                 id="series-with-count"),
    pytest.param("UID:x@t\nDTSTART:20210115T090000Z\nDTEND:20210115T100000Z\nRRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=12",
                 id="monthly-count"),
    pytest.param("UID:x@t\nDTSTART:20290101T090000Z\nDTEND:20290101T100000Z\nRRULE:FREQ=DAILY", id="series-after"),
    pytest.param("UID:x@t\nDTSTART:20290101T090000Z\nDTEND:20290101T100000Z", id="one-off-after"),
])
def test_an_event_that_cannot_touch_the_window_is_cut(event: str) -> None:
    """Past one-offs, ended series (UNTIL, COUNT) and events after the window leave the text."""
    data = ics(NOW_ONE_OFF, event)
    out, cut = kept(data)
    assert cut == 1 and b"UID:now@t" in out and b"UID:x@t" not in out and b"UID:old@t" not in out
    assert out.startswith(b"BEGIN:VCALENDAR") and out.endswith(b"END:VCALENDAR\r\n")


@pytest.mark.parametrize("event", [
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRRULE:FREQ=WEEKLY", id="endless"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRRULE:FREQ=WEEKLY;COUNT=400",
                 id="count-reaching-the-window"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRDATE:20270310T090000Z",
                 id="rdate"),
    pytest.param("UID:x@t\nDTSTART:20210131T090000Z\nDTEND:20210131T100000Z\nRRULE:FREQ=MONTHLY;COUNT=3",
                 id="monthly-on-the-31st"),
    pytest.param("UID:x@t\nDTSTART:20200229T090000Z\nDTEND:20200229T100000Z\nRRULE:FREQ=YEARLY;COUNT=2",
                 id="yearly-on-29-february"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRRULE:FREQ=MONTHLY;COUNT=3;BYDAY=5FR",
                 id="count-with-sparse-by-parts"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRRULE:FREQ=YEARLY;COUNT=2;BYMONTH=2",
                 id="bymonth"),
    pytest.param("UID:x@t\nDTSTART;TZID=\"odd:zone\":20210104T090000\nDTEND:20210104T100000Z", id="quoted-param"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nDTEND:20210104T110000Z",
                 id="two-ends"),
    pytest.param("UID:x@t\nDTSTART:2021XXXX\nDTEND:20210104T100000Z", id="malformed-start"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDURATION:-PT1H", id="negative-duration"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T080000Z\nRRULE:FREQ=DAILY;COUNT=3",
                 id="series-ending-before-it-starts"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDURATION:P3000W", id="long-duration"),
    pytest.param("UID:x@t\nDTSTART:20210104T090000Z\nDTEND:20210104T100000Z\nRRULE:FREQ=DAILY;COUNT=-1",
                 id="negative-count"),
    pytest.param("UID:x@t\nDTSTART;VALUE=PERIOD:20210104T090000Z/PT1H", id="period-value"),
    pytest.param("UID:x@t\nDTEND:20210104T100000Z", id="no-start"),
    pytest.param("UID:x@t\nDTSTART:20270309T000000Z\nDTEND:20270309T010000Z", id="inside"),
    pytest.param("UID:x@t\nDTSTART:20270222T230000Z\nDTEND:20270223T010000Z", id="within-slack-before"),
])
def test_an_event_that_might_touch_the_window_stays(event: str) -> None:
    """Endless series, RDATEs, rules whose gaps are not bounded here and anything not read
    for sure stay in the text, byte for byte."""
    data = ics(NOW_ONE_OFF, event)
    assert kept(data) == (data, 0)


def test_a_moved_instance_in_the_window_keeps_its_ended_series() -> None:
    """An old series' instance moved into the window keeps the series and the move; an old
    move of a running series goes, the series and the recent move stay."""
    ended = ("UID:s@t\nDTSTART:20240105T150000Z\nDTEND:20240105T160000Z\nRRULE:FREQ=WEEKLY;UNTIL=20240301T000000Z",
             "UID:s@t\nRECURRENCE-ID:20240112T150000Z\nDTSTART:20270303T150000Z\nDTEND:20270303T160000Z")
    running = ("UID:r@t\nDTSTART:20240105T150000Z\nDTEND:20240105T160000Z\nRRULE:FREQ=WEEKLY",
               "UID:r@t\nRECURRENCE-ID:20240112T150000Z\nDTSTART:20240113T150000Z\nDTEND:20240113T160000Z",
               "UID:r@t\nRECURRENCE-ID:20270305T150000Z\nDTSTART:20270306T150000Z\nDTEND:20270306T160000Z")
    data = ics(*ended, *running)
    out, cut = kept(data)
    assert cut == 1 and b"20240113T150000Z" not in out and out.count(b"BEGIN:VEVENT") == 4
    with_cut, without = both(data)
    assert with_cut == without and len(with_cut.busy) > 8


def test_a_this_and_future_override_keeps_its_whole_series() -> None:
    """RANGE=THISANDFUTURE can move every later instance into the window: the UID stays whole."""
    data = ics("UID:s@t\nDTSTART:20200106T150000Z\nDTEND:20200106T160000Z\nRRULE:FREQ=WEEKLY;UNTIL=20210101T000000Z",
               "UID:s@t\nRECURRENCE-ID;RANGE=THISANDFUTURE:20200113T150000Z\nDTSTART:20200113T150000Z\n"
               "DTEND:20200113T160000Z")
    assert kept(data) == (data, 0)


@pytest.mark.parametrize("data", [
    b"BEGIN:VEVENT\r\nDTSTART:20200101T000000Z\r\nEND:VEVENT\r\n",
    b"\xef\xbb\xbf" + ics(OLD_ONE_OFF),
    ics(OLD_ONE_OFF).replace(b"END:VCALENDAR\r\n", b""),
    ics(OLD_ONE_OFF) + ics(OLD_ONE_OFF),
    ics(OLD_ONE_OFF).replace(b"END:VEVENT", b"END:VTODO"),
    ics(OLD_ONE_OFF).replace(b"\r\n", b"\r"),
    b"",
    b"\x00" * 1000,
])
def test_a_text_that_is_not_a_plain_calendar_is_returned_as_it_is(data: bytes) -> None:
    """No BEGIN:VCALENDAR first, a missing END, two calendars, old Mac line ends: nothing is cut."""
    assert kept(data) == (data, 0)


def test_folded_lines_lowercase_names_and_alarms() -> None:
    """A folded UID and DTEND are read unfolded; an alarm's DURATION is not the event's."""
    event = (b"BEGIN:VEVENT\r\nUID:040000008200E00074C5B7101A82E0080000000\r\n 0A1B2C3D4E5F\r\n"
             b"dtstart:20210104T090000Z\r\nDTEND:20210104T1\r\n\t00000Z\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
             b"TRIGGER:-PT15M\r\nDURATION:P3000W\r\nREPEAT:1\r\nEND:VALARM\r\nEND:VEVENT\r\n")
    data = ics(NOW_ONE_OFF).replace(b"END:VCALENDAR", event + b"END:VCALENDAR")
    out, cut = kept(data)
    assert cut == 1 and b"VALARM" not in out and b"UID:now@t" in out
    folded_start = data.replace(b"dtstart:20210104T090000Z", b"DTSTART:20210104T0\r\n 90000Z")
    assert kept(folded_start)[1] == 1


def test_the_cut_is_linear_on_a_hostile_text() -> None:
    """100,000 unclosed BEGIN:VEVENT lines, 20,000 old events and a UID of a megabyte of blanks
    are handled in one pass (a generous bound: this only guards against a quadratic scan)."""
    import time

    opened = b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\nDTSTART:20200101T000000Z\r\n" * 100_000
    old = ics(*[f"UID:{i}@t\nDTSTART:20200101T000000Z\nDTEND:20200101T010000Z" for i in range(20_000)])
    # A UID of a megabyte of blanks with a letter in between: read in one pass, not by trying
    # every split of the blanks (the old reading was quadratic here: hours).
    blanks = ics(*[f"UID:{i}@t\nDTSTART:20200101T000000Z\nDTEND:20200101T010000Z" for i in range(1_000)],
                 "UID:a" + " " * 1_000_000 + "b\nDTSTART:20200101T000000Z\nDTEND:20200101T010000Z")
    begun = time.monotonic()
    assert kept(opened) == (opened, 0)
    assert kept(old)[1] == 20_000
    assert kept(blanks)[1] == 1_001
    assert time.monotonic() - begun < 30


def test_events_cut_still_count_as_events() -> None:
    """A calendar whose one event in the window cannot be read is not "none could be read"
    when the events cut before parsing were fine: it keeps its readable status."""
    data = ics(OLD_ONE_OFF, "UID:bad@t\nDTSTART:20270303T150000Z\nDTEND:20270303T160000Z\nRDATE:2027XXXX")
    with_cut, without = both(data)
    assert with_cut == without and with_cut.unknown is None and with_cut.skipped == 1


# --- the property: the cut never changes the busy time -------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Adelaide", "Asia/Kolkata",
         "America/St_Johns", "floating", "date"]
FREQS = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": None, "YEARLY": None}
BASE = datetime(2027, 3, 1)


def _value(when: datetime, zone: str) -> tuple[str, str]:
    """(parameters, value) of a DATE-TIME or DATE in the given style."""
    if zone == "date":
        return ";VALUE=DATE", when.strftime("%Y%m%d")
    if zone == "floating":
        return "", when.strftime("%Y%m%dT%H%M%S")
    if zone == "UTC":
        return "", when.strftime("%Y%m%dT%H%M%SZ")
    return f";TZID={zone}", when.strftime("%Y%m%dT%H%M%S")


def _line(name: str, when: datetime, zone: str) -> str:
    params, value = _value(when, zone)
    return f"{name}{params}:{value}"


def _nth(start: datetime, freq: str, interval: int, n: int) -> datetime:
    days = FREQS[freq]
    if days is not None:
        return start + timedelta(days=days * interval * n)
    months = n * interval * (1 if freq == "MONTHLY" else 12)
    year, month = divmod(start.month - 1 + months, 12)
    return start.replace(year=start.year + year, month=month + 1)


@st.composite
def events(draw, uid: int) -> list[str]:
    zone = draw(st.sampled_from(ZONES))
    # Half the events start in the five years before, half close to the window, where an
    # end that is computed a little short would show.
    day = draw(st.one_of(st.integers(-5 * 365, 120), st.integers(-150, 70)))
    minute = draw(st.integers(0, 24 * 4 - 1)) * 15
    start = BASE + timedelta(days=day, minutes=minute)
    if zone == "date":
        start = start.replace(hour=0, minute=0)
        length = timedelta(days=draw(st.integers(1, 3)))
    else:
        length = timedelta(minutes=draw(st.sampled_from([0, 15, 30, 60, 90, 240, 60 * 30])))
    lines = [f"UID:u{uid}@t", _line("DTSTART", start, zone)]
    if draw(st.booleans()):
        lines.append(_line("DTEND", start + length, zone))
    elif length or zone == "date":
        hours, rest = divmod(int(length.total_seconds()), 3600)
        lines.append(f"DURATION:P{length.days}D" if zone == "date" else f"DURATION:PT{hours}H{rest // 60}M")
    lines += draw(st.sampled_from([[], [], ["STATUS:TENTATIVE"], ["STATUS:CANCELLED"], ["TRANSP:TRANSPARENT"]]))
    if not draw(st.booleans()):
        return ["\n".join(lines)]
    freq = draw(st.sampled_from(sorted(FREQS)))
    interval = draw(st.integers(1, 3))
    start = start.replace(day=min(start.day, 28))
    lines[1] = _line("DTSTART", start, zone)
    if any(line.startswith("DTEND") for line in lines):
        lines = [_line("DTEND", start + length, zone) if line.startswith("DTEND") else line for line in lines]
    rule = f"RRULE:FREQ={freq};INTERVAL={interval}"
    ending = draw(st.sampled_from(["until", "count", "none"]))
    # Half the rules end close to the window's start (give or take ten periods, BYDAY may
    # thin them out to one a week), where a bound computed a little short would show.
    period = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 30.44, "YEARLY": 365.25}[freq] * interval
    near = max(0, round((BASE - start).days / period))
    periods = draw(st.one_of(st.integers(0, 300), st.integers(max(0, near - 10), near + 10),
                             st.integers(max(0, near // 7 - 5), near // 7 + 5)))
    if ending == "count":
        rule += f";COUNT={max(1, periods)}"
    elif ending == "until":
        until = _nth(start, freq, interval, periods)
        if zone in ("UTC", "floating", "date"):
            rule += f";UNTIL={_value(until, zone)[1]}"
        else:
            rule += f";UNTIL={until.replace(tzinfo=ZoneInfo(zone)).astimezone(ZoneInfo('UTC')):%Y%m%dT%H%M%SZ}"
    if freq in ("DAILY", "WEEKLY") and draw(st.booleans()):
        rule += ";BYDAY=" + ",".join(draw(st.sets(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                                                  min_size=1)))
    lines.append(rule)
    blocks = []
    for n in draw(st.lists(st.integers(0, 300), max_size=2, unique=True)):
        original = _nth(start, freq, interval, n)
        if draw(st.booleans()):
            lines.append(_line("EXDATE", original, zone))
            continue
        moved = original + timedelta(days=draw(st.sampled_from([0, 1, -1, 365, 3 * 365, -365])),
                                     minutes=draw(st.sampled_from([0, 30, 120])) if zone != "date" else 0)
        if draw(st.booleans()):  # moved straight into the window
            moved = BASE + timedelta(days=draw(st.integers(0, 59)), hours=10 if zone != "date" else 0)
        blocks.append("\n".join([f"UID:u{uid}@t", _line("RECURRENCE-ID", original, zone),
                                 _line("DTSTART", moved, zone), _line("DTEND", moved + (length or timedelta(hours=1)),
                                                                       zone)]))
    return ["\n".join(lines), *blocks]


@st.composite
def calendars(draw) -> bytes:
    bodies = []
    for uid in range(draw(st.integers(1, 8))):
        bodies += draw(events(uid))
    extra = draw(st.sampled_from(["", "X-WR-TIMEZONE:Europe/Berlin\r\n", "X-WR-TIMEZONE:Eastern Standard Time\r\n"]))
    return ics(*bodies, extra=extra)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=calendars(), member=st.sampled_from(["America/New_York", "Asia/Kolkata", "Australia/Adelaide",
                                                 "America/St_Johns"]),
       window=st.sampled_from([WINDOW, (utc(2027, 9, 20), utc(2027, 11, 20)), (utc(2026, 12, 28), utc(2027, 1, 5))]))
def test_the_cut_never_changes_the_busy_time(data: bytes, member: str, window) -> None:
    """Random series (UNTIL, COUNT, endless, weekday lists), one-offs, moved instances (some
    moved into the window from years before) and exclusions, in UTC, IANA zones with DST,
    half-hour zones, floating time and dates: the same busy time with the cut as without."""
    with_cut, without = both(data, ZoneInfo(member), window)
    assert with_cut == without


def test_the_property_test_exercises_the_cut() -> None:
    """The generator above makes calendars the cut actually shortens (else it would prove nothing)."""
    from hypothesis import find

    found = find(calendars(), lambda d: kept(d)[1] >= 3, settings=settings(max_examples=500, database=None))
    assert kept(found)[1] >= 3


@pytest.mark.parametrize("uid", ["UID;X-A=1:s@t", "UID:s\\,t", "UID:s@t\nUID:s@t"])
def test_a_uid_read_in_doubt_cuts_nothing(uid: str) -> None:
    """A UID with a parameter, an escape or twice: the series could be split in two here, so
    the whole text is kept (a moved instance must never lose its master or the other way)."""
    data = ics(f"{uid}\nDTSTART:20240105T150000Z\nDTEND:20240105T160000Z\nRRULE:FREQ=WEEKLY;UNTIL=20240301T000000Z",
               OLD_ONE_OFF)
    assert kept(data) == (data, 0)


def _calendar(*events: list[str]) -> bytes:
    """VCALENDAR bytes from VEVENT lines taken as they are (no stripping: folded lines stay folded)."""
    body = "".join("BEGIN:VEVENT\r\n" + "".join(f"{line}\r\n" for line in lines) + "END:VEVENT\r\n" for lines in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{body}END:VCALENDAR\r\n".encode()


NOW_LINES = ["UID:now@t", "DTSTART;TZID=America/New_York:20270310T090000", "DTEND;TZID=America/New_York:20270310T100000"]


@pytest.mark.parametrize("lines", [
    pytest.param(["UID:x@t", "DTSTART:20210301T150000Z", "DTEND:20210301T160000Z"], id="utc"),
    pytest.param(["UID:x@t", "SUMMARY:a", "DTSTART;TZID=Europe/Berlin:20210301T150000", "X-A:b",
                  "DTEND;TZID=Europe/Berlin:20210301T160000", "DESCRIPTION:c"], id="other-lines-between"),
    pytest.param(["UID:x@t", "DTSTART;VALUE=DATE:20210301", "DTEND;VALUE=DATE:20210302"], id="dates"),
    pytest.param(["UID:x@t", "DTSTART;VALUE=DATE-TIME:20210301T150000Z", "DTEND:20210301T160000Z"], id="value-date-time"),
    pytest.param(["UID:x@t", "DTSTART;VALUE=PERIOD:20210301T150000Z/PT1H", "DTEND:20210301T160000Z"], id="value-period"),
    pytest.param(["UID:x@t", 'DTSTART;TZID="Europe/Berlin":20210301T150000', "DTEND:20210301T160000Z"], id="quoted"),
    pytest.param(["UID:  x@t  ", "DTSTART:20210301T150000Z  ", "DTEND:  20210301T160000Z"], id="spaces"),
    pytest.param(["uid:x@t", "dtstart:20210301T150000Z", "dtend:20210301T160000Z"], id="lower-case"),
    pytest.param(["UID:x@t", "DTSTART:20210301T150000Z", "DTEND:20210301T160000Z", "DTSTART:20270310T150000Z"],
                 id="two-starts"),
    pytest.param(["UID:x@t", "DTSTART:20210301T150000Z", "DTEND:20200301T160000Z"], id="end-before-start"),
    pytest.param(["UID:x@", " t", "DTSTART:20210301T150000Z", "DTEND:20210301T160000Z"], id="folded-uid"),
    pytest.param(["UID:x@t", "DTSTART:2021030", " 1T150000Z", "DTEND:20210301T160000Z"], id="folded-start"),
    pytest.param(["UID:x@t", "DTSTART:20270221T230000Z", "DTEND:20270221T235900Z"], id="the-day-before-the-slack"),
    pytest.param(["UID:x@t", "DTSTART:20270222T000000Z", "DTEND:20270222T010000Z"], id="the-first-day-of-the-slack"),
    pytest.param(["UID:x@t", "DTSTART:20270221T230000Z", "DTEND:20270222T010000Z"], id="across-the-slack-edge"),
    pytest.param(["UID:now@t", "DTSTART:20210301T150000Z", "DTEND:20210301T160000Z"], id="uid-of-another-event"),
    pytest.param(["UID:x@t", "DTSTART:20270310T150000Z", "DTEND:20270310T160000Z"], id="in-the-window"),
    pytest.param(["UID:x@t", "DTSTART:20310301T150000Z", "DTEND:20310301T160000Z"], id="after"),
])
def test_the_scans_fast_branch_decides_as_the_general_reading(lines: list[str]) -> None:
    """A one-off in the order Outlook, Google and Apple write (UID, DTSTART, DTEND) is decided
    inside the scan's expression; the same event with its lines reversed goes through the
    general reading. Both cut the same, and neither changes the busy time (`skipped` may: an
    event too broken for icalendar that is cut is no longer counted, as the module says)."""
    forward, backward = _calendar(NOW_LINES, lines), _calendar(NOW_LINES, lines[::-1])
    if any(line.startswith(" ") for line in lines):  # a continuation line must follow its own line
        backward = _calendar(NOW_LINES, [line for line in lines if line.startswith(("DTEND", "dtend"))]
                             + [line for line in lines if not line.startswith(("DTEND", "dtend"))])
    (_, cut_forward), (_, cut_backward) = kept(forward), kept(backward)
    assert cut_forward == cut_backward
    for data in (forward, backward):
        with_cut, without = both(data)
        assert (with_cut.busy, with_cut.unknown) == (without.busy, without.unknown)


# --- the plain one-offs cut in one substitution (integrations/icsplain.py) -----------------------------

@given(st.text("0123456789", min_size=8, max_size=8), st.text("0123456789", min_size=8, max_size=8))
def test_the_date_expressions_compare_as_text(day: str, other: str) -> None:
    """`_below(day)` matches exactly the 8-digit dates before `day`, `_above` those after it."""
    import re

    from integrations.icsplain import _above, _below

    assert bool(re.fullmatch(_below(day.encode()), other.encode())) == (other < day)
    assert bool(re.fullmatch(_above(day.encode()), other.encode())) == (other > day)
    assert not re.fullmatch(_below(day.encode()), day.encode()) and not re.fullmatch(_above(day.encode()), day.encode())


def _old(uid: str, *more: str) -> str:
    return "\n".join([f"UID:{uid}", "DTSTART:20210301T150000Z", "DTEND:20210301T160000Z", *more])


@pytest.mark.parametrize("data, cut", [
    pytest.param(ics(NOW_ONE_OFF, _old("a@t"), _old("b@t")), 2, id="two-old-one-offs"),
    # Sharing a UID with a moved instance in the window: the old event is the series' master.
    pytest.param(ics(NOW_ONE_OFF, _old("s@t"), "UID:s@t\nRECURRENCE-ID:20210301T150000Z\n"
                     "DTSTART:20270310T150000Z\nDTEND:20270310T160000Z"), 0, id="uid-of-a-moved-instance"),
    # A rule written in lower case makes a series that never ends: kept.
    pytest.param(ics(NOW_ONE_OFF, _old("r@t", "rrule:FREQ=DAILY")), 0, id="lower-case-rule"),
    # VALUE=PERIOD in lower case: not a plain date, so neither reading decides it (kept).
    pytest.param(ics(NOW_ONE_OFF, _old("v@t").replace("DTSTART:", "DTSTART;value=period:")), 0,
                 id="lower-case-value-param"),
    # Lower-case names and a folded UID elsewhere leave the substitution out; the general
    # reading still cuts the same events.
    pytest.param(ics(NOW_ONE_OFF, _old("a@t"), _old("c@t").replace("DTSTART", "dtstart").replace("DTEND", "dtend")),
                 2, id="lower-case-names"),
    pytest.param(ics(NOW_ONE_OFF, _old("a@t"), "UID:fold\n ed@t\nDTSTART:20210301T150000Z\n"
                     "DTEND:20210301T160000Z"), 2, id="a-folded-uid-elsewhere"),
    pytest.param(ics(NOW_ONE_OFF, _old("a@t"), "UID:e@t\nDTSTART:20200301T150000Z\nDTEND:20200301T140000Z"), 2,
                 id="end-before-start-on-one-side"),
    pytest.param(ics(NOW_ONE_OFF, "UID:x@t\nDTSTART:20210301T150000Z\nDTEND:20310301T160000Z"), 0,
                 id="across-the-window"),
])
def test_old_one_offs_are_cut_and_nothing_else(data: bytes, cut: int) -> None:
    """What the substitution cuts is what the general reading would cut (the count), and the
    busy time and the reason stay the same with and without the cut."""
    out, n = kept(data)
    assert n == cut and b"UID:now@t" in out
    with_cut, without = both(data)
    assert (with_cut.busy, with_cut.unknown) == (without.busy, without.unknown)
    assert with_cut.busy  # the event in the window is there


def test_the_substitution_removes_what_the_general_reading_removes() -> None:
    """Byte for byte: the same text comes out whether the old one-offs are cut by the
    substitution or, with the substitution switched off, by the general reading."""
    from unittest import mock

    from integrations import icsskip

    data = ics(NOW_ONE_OFF, *[_old(f"o{i}@t") for i in range(20)],
               "UID:late@t\nDTSTART;VALUE=DATE:20310301\nDTEND;VALUE=DATE:20310302")
    fast = kept(data)
    with mock.patch.object(icsskip, "cut_plain", lambda data, lo, hi: (data, 0)):
        general = kept(data)
    assert fast == general and fast[1] == 21
    assert icsplain.cut_plain(data, b"20270222", b"20270507")[1] == 21   # all of them by the substitution


def test_a_short_calendar_is_left_to_the_general_reading(monkeypatch) -> None:
    """Under `_WORTH` events the expression is not worth compiling: the general reading cuts them."""
    monkeypatch.setattr(icsplain, "_WORTH", 1000)
    data = ics(NOW_ONE_OFF, *[_old(f"o{i}@t") for i in range(20)])
    assert icsplain.cut_plain(data, b"20270222", b"20270507") == (data, 0)
    assert kept(data)[1] == 20
