"""Write the example members' calendars (config/example/calendars/*.ics).

Run it after changing the example group:  python config/example/make_calendars.py

The calendars are what a hospitalist's work calendar really holds: weekly clinics
(with a skipped week and one session moved), all-day service weeks every six weeks,
yearly conferences, a tentative journal club, "show as free" writing blocks, a cancelled
committee meeting, calls scheduled by colleagues in other zones, and floating-time
personal events. Series repeat without end, so the example never goes stale; the output is
deterministic, and a test checks that the committed files match it.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

HERE = Path(__file__).resolve().parent
STAMP = datetime(2026, 11, 1, tzinfo=UTC)
SERIES_START = date(2026, 9, 7)  # a Monday: the start of the academic year's rota
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
# Zones colleagues schedule calls in; a member's "external call" uses one that is not their own.
OTHER_ZONES = ("America/Chicago", "Europe/London", "America/Los_Angeles", "America/New_York")


def _on(weekday: int, week: int = 0) -> date:
    return SERIES_START + timedelta(days=weekday + 7 * week)


def _at(day: date, hhmm: str, zone: ZoneInfo | None) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(h, m), zone) if zone else datetime.combine(day, time(h, m))


def _first_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def member_calendar(index: int, member: dict) -> Calendar:
    zone = ZoneInfo(member["timezone"])
    slug = member["email"].split("@")[0].replace(".", "-")
    cal = Calendar.new(prodid="-//friendtor//example calendars//EN", name=f"{member['name']} (work)",
                       uid=f"{slug}@calendars.example")
    uid_n = iter(range(1, 100))

    def add(summary: str, start, end, **props) -> Event:
        event = Event.new(uid=f"{slug}-{next(uid_n)}@calendars.example", stamp=STAMP,
                          summary=summary, start=start, end=end)
        for key, value in props.items():
            event.add(key.replace("_", "-"), value)
        cal.add_component(event)
        return event

    # 1. A weekly half-day clinic, one week skipped (EXDATE) and one session moved (RECURRENCE-ID).
    clinic_day = index % 5
    first = _on(clinic_day)
    clinic = add("Continuity clinic", _at(first, "13:00", zone), _at(first, "17:00", zone),
                 rrule={"FREQ": "WEEKLY", "BYDAY": WEEKDAYS[clinic_day]})
    december = _first_on_or_after(date(2026, 12, 8), clinic_day)  # second week of December
    clinic.add("exdate", _at(december, "13:00", zone))
    moved_from = december + timedelta(days=7)
    moved_to = moved_from + timedelta(days=1 if clinic_day < 4 else -1)
    add("Continuity clinic (moved)", _at(moved_to, "08:30", zone), _at(moved_to, "12:30", zone),
        recurrence_id=_at(moved_from, "13:00", zone))
    cal.subcomponents[-1]["UID"] = clinic["UID"]

    # 2. Division meeting every other week, and daily-ish teaching rounds on two weekdays.
    div_day = (index + 2) % 5
    add("Division meeting", _at(_on(div_day), "12:00", zone), _at(_on(div_day), "13:00", zone),
        rrule={"FREQ": "WEEKLY", "INTERVAL": 2, "BYDAY": WEEKDAYS[div_day]})
    add("Teaching rounds", _at(_on(0), "08:00", zone), _at(_on(0), "09:00", zone),
        rrule={"FREQ": "WEEKLY", "BYDAY": [WEEKDAYS[(index + 1) % 5], WEEKDAYS[(index + 3) % 5]]})

    # 3. All-day service weeks, every six weeks, staggered across the group.
    service = _on(0, index % 6)
    add("Inpatient service (attending)", service, service + timedelta(days=7),
        rrule={"FREQ": "WEEKLY", "INTERVAL": 6})

    # 4. Yearly conferences (all-day): most go to the summer PHM meeting, some to PAS in spring.
    add("Pediatric Hospital Medicine annual conference", date(2026, 7, 23), date(2026, 7, 27),
        rrule={"FREQ": "YEARLY"})
    if index % 3 == 0:
        add("Pediatric Academic Societies meeting", date(2027, 4, 24), date(2027, 4, 28),
            rrule={"FREQ": "YEARLY"})

    # 5. A call set up by a colleague in another zone (TZID differs from the member's own).
    other = ZoneInfo(next(z for z in OTHER_ZONES[index % 4:] + OTHER_ZONES if z != member["timezone"]))
    call_day = (index + 4) % 5
    call_local = _at(_on(call_day), "11:00", zone).astimezone(other)
    add("Multi-site study call", call_local, call_local + timedelta(minutes=45),
        rrule={"FREQ": "WEEKLY", "INTERVAL": 2, "BYDAY": WEEKDAYS[call_local.weekday()]})

    # 6. A monthly journal club the member has not committed to (tentative).
    add("Journal club", _at(_on(2), "12:00", zone), _at(_on(2), "13:00", zone),
        rrule={"FREQ": "MONTHLY", "BYDAY": "1WE"}, status="TENTATIVE")

    # 7. Writing time shown as free: it never blocks a meeting.
    add("Protected writing time", _at(_on(4), "09:00", zone), _at(_on(4), "12:00", zone),
        rrule={"FREQ": "WEEKLY", "BYDAY": "FR"}, transp="TRANSPARENT")

    # 8. A committee meeting that was cancelled: free again.
    cancelled = _first_on_or_after(date(2026, 12, 9), 2)
    add("Quality committee", _at(cancelled, "10:00", zone), _at(cancelled, "11:30", zone), status="CANCELLED")

    # 9. A personal event in floating time (the member's own clock wherever they are).
    gym_day = (index + 1) % 5
    add("Gym", _at(_on(gym_day), "07:00", None), _at(_on(gym_day), "08:00", None),
        rrule={"FREQ": "WEEKLY", "BYDAY": WEEKDAYS[gym_day]})

    cal.add_missing_timezones(first_date=date(2026, 1, 1), last_date=date(2030, 1, 1))
    # add_missing_timezones follows set order; sort so the output is byte-for-byte repeatable.
    zones = sorted((c for c in cal.subcomponents if c.name == "VTIMEZONE"), key=lambda c: str(c["TZID"]))
    cal.subcomponents[:] = zones + [c for c in cal.subcomponents if c.name != "VTIMEZONE"]
    return cal


def main() -> None:
    group = tomllib.loads((HERE / "groups" / "k-club.toml").read_text())
    for index, member in enumerate(group["members"]):
        path = HERE / member["calendar"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(member_calendar(index, member).to_ical())
        print(f"wrote {path.relative_to(HERE)}")


if __name__ == "__main__":
    main()
