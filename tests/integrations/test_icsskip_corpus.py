"""The cut before parsing (integrations.icsskip) over real-world calendars: the Outlook,
Google and Apple exports in tests/fixtures/calendars (years of events, moved instances,
Windows zone names, X-WR-TIMEZONE, VTIMEZONEs, alarms, folded lines), and every test
calendar that the installed icalendar and recurring-ical-events distributions ship, give
the same busy time with the cut as without it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from integrations.ics import busy_from_ics
from integrations.icsskip import prune

# Every calendar through icsplain's substitution too, the short ones included.
pytestmark = pytest.mark.usefixtures("substitution_on_small_texts")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "calendars"


def _window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start, start + timedelta(days=60)


def _same(data: bytes, zone: str, window: tuple[datetime, datetime]):
    member = ZoneInfo(zone)
    return busy_from_ics(data, member, *window), busy_from_ics(data, member, *window, prefilter=False)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "member"), [("outlook.ics", "America/New_York"), ("google.ics", "Asia/Kolkata"),
                                              ("apple.ics", "Australia/Adelaide")])
@pytest.mark.parametrize("first", [date(2022, 10, 20), date(2024, 3, 1), date(2027, 3, 1), date(2027, 9, 25)])
def test_exports_give_the_same_busy_time_with_the_cut(name: str, member: str, first: date) -> None:
    """Five years of an Outlook, a Google and an Apple export: same busy time, most events cut
    (for a window in the last months), and the readings have something in them."""
    data = (FIXTURES / name).read_bytes()
    window = _window(first)
    with_cut, without = _same(data, member, window)
    assert without.unknown is None and without.skipped == 0
    assert with_cut == without
    if first.year == 2027 and first.month == 3:
        assert len(without.busy) > 20
        assert prune(data, *window)[1] > 0.8 * data.count(b"BEGIN:VEVENT")


def _shipped() -> list[Path]:
    """The test calendars inside the installed packages, if the distribution has them."""
    folders = [Path(icalendar.__file__).parent / "tests" / "calendars",
               Path(recurring_ical_events.__file__).parent / "test" / "calendars"]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*.ics"))


SHIPPED = _shipped()
_START = re.compile(rb"^DTSTART[^:\r\n]*:(\d{8})", re.M)


def _windows(data: bytes) -> list[tuple[datetime, datetime]]:
    """Windows where the calendar has events: around its first, middle and last start."""
    days = sorted({m.group(1) for m in _START.finditer(data)})
    picked = {days[0], days[len(days) // 2], days[-1]} if days else {b"20190301"}
    windows = []
    for raw in sorted(picked):
        try:
            day = datetime.strptime(raw.decode(), "%Y%m%d").date() - timedelta(days=30)
            windows.append(_window(day))
        except (ValueError, OverflowError):
            continue
    return windows


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED, reason="the installed icalendar and recurring-ical-events ship no test calendars")
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_the_libraries_own_test_calendars_give_the_same_busy_time(path: Path) -> None:
    """Each calendar the libraries test themselves with, around its first, middle and last
    events: the same busy time with the cut, and the same reason when it cannot be read (a
    calendar the reader refuses outright is refused alike)."""
    data = path.read_bytes()
    for window in _windows(data):
        with_cut, without = _same(data, "Europe/Berlin", window)
        assert with_cut.busy == without.busy, window
        assert with_cut.unknown == without.unknown, window
