"""Benchmark: one slot search, and how its cost grows with the number of busy events.

    python benchmarks/slots.py            # full run (see docs/performance.md for the numbers)
    python benchmarks/slots.py --quick    # fewer repeats: a smoke test that the benchmark still runs

The data is synthetic and deterministic (a fixed seed): a group of 12 members in 6 time
zones (one half-hour zone, one without DST, one in the southern hemisphere) meeting on any
weekday, 60-minute meetings on a 15-minute grid, and a 60-day window that crosses the US,
UK and South Australian DST changes. Each member has an .ics calendar with about 40 busy
events a week (half from weekly RRULE series, half single events, about 1 in 10 tentative,
some written in another zone's TZID), then 4x and 16x as many.

Two costs are measured separately, because they live on different sides of the design:
- "slot search": `find_slots` on availabilities that were expanded beforehand. This is the
  pure core, and the number the aim (well under 50 ms for the base case) is about. It runs
  as the `slots` command runs it: `top=5, distinct=True`, `not_before` at the window start.
  The whole ranking is computed in either mode; only the returned candidates get verdicts.
- "calendar expansion": `busy_from_ics` (parse + recurring-ical-events) for all 12 members
  over the window. That is the I/O side's cost, reported so the total is not hidden.

Each figure is the median of several runs with `time.perf_counter`. The slot search gets
one warm-up run first (it fills the holiday-table cache); the expansion gets none, and fewer
repeats at 16x, where one run takes seconds. Like every benchmark here it measures and
reports; it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from integrations.ics import busy_from_ics
from scheduler.core.availability import Availability
from scheduler.core.config import Group
from scheduler.core.cycles import range_window
from scheduler.core.slots import candidate_starts, find_slots

SEED = 20270301
FIRST, LAST = date(2027, 3, 1), date(2027, 4, 29)  # 60 days: US DST 03-14, UK 03-28, Adelaide 04-04
SCALES = (1, 4, 16)
BASE_PER_WEEK = 40           # busy events per member per week at 1x
RECURRING_SHARE = 0.5        # of those, the share that comes from weekly series
TOP = 5                      # what `friendtor slots` asks for by default
BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
STAMP = datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC"))

# Two members in each of six zones; hours, preferred hours, holidays and one absence as a
# real group would have them, so every branch of the painting code is exercised.
MEMBERS = (
    ("America/New_York", "08:00-18:00", "11:00-14:00", "US-NY"),
    ("America/New_York", "09:00-17:00", None, "US-NY"),
    ("Europe/London", "08:00-18:00", "13:00-17:00", "GB-ENG"),
    ("Europe/London", "09:00-17:30", None, "GB-ENG"),
    ("Asia/Kolkata", "14:00-21:30", None, "IN-WB"),
    ("Asia/Kolkata", "13:00-21:00", None, "IN-WB"),
    ("America/Phoenix", "07:00-16:00", None, "US-AZ"),
    ("America/Phoenix", "08:00-17:00", None, "US-AZ"),
    ("Australia/Adelaide", "07:00-22:00", "07:00-09:00", "AU-SA"),
    ("Australia/Adelaide", "08:00-18:00", None, "AU-SA"),
    ("America/Los_Angeles", "07:00-17:00", "08:00-12:00", "US-CA"),
    ("America/Los_Angeles", "07:00-17:30", None, "US-CA"),
)
ZONES = tuple(dict.fromkeys(z for z, *_ in MEMBERS))


def make_group() -> Group:
    members = []
    for i, (zone, hours, preferred, region) in enumerate(MEMBERS):
        m = {"name": f"Member {i + 1:02d}", "email": f"m{i + 1:02d}@bench.example", "timezone": zone,
             "hours": hours, "holidays": region}
        if preferred:
            m["preferred_hours"] = preferred
        if i == 0:
            m["required"] = True        # the coordinator
        if zone == "Asia/Kolkata":
            m["weekdays"] = ["mon", "tue", "wed", "thu", "fri", "sat"]
        if i == 3:
            m["away"] = [{"from": date(2027, 4, 5), "to": date(2027, 4, 9)}]
        members.append(m)
    return Group.model_validate({
        "id": "bench", "name": "Benchmark group", "timezone": "America/New_York",
        "coordinators": [members[0]["email"]], "started": date(2026, 9, 7),
        "meetings": {"cadence": "monthly", "duration_minutes": 60, "grid_minutes": 15, "quorum": 0.5,
                     "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
        "members": members,
    })


# --- synthetic calendars -------------------------------------------------------------------

def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock(minutes // 60, minutes % 60), zone)


def _start_minutes(rng: random.Random) -> int:
    return rng.randrange(7 * 60, 19 * 60 + 1, 5)  # 07:00-19:00 local, on 5-minute marks


def _duration(rng: random.Random) -> timedelta:
    return timedelta(minutes=rng.choice((15, 30, 30, 45, 60, 60, 60, 90, 120)))


def member_calendar(rng: random.Random, index: int, zone_name: str, scale: int, weeks: float) -> bytes:
    """An .ics text with ~BASE_PER_WEEK * scale busy events a week in the window."""
    zone = ZoneInfo(zone_name)
    cal = Calendar.new(prodid="-//friendtor//benchmark//EN", name=f"Member {index + 1:02d}")
    serial = iter(range(1, 10**7))

    def add(start, end, **props) -> Event:
        event = Event.new(uid=f"m{index}-{next(serial)}@bench.example", stamp=STAMP, summary="busy",
                          start=start, end=end)
        if rng.random() < 0.1:
            event.add("status", "TENTATIVE")
        for key, value in props.items():
            event.add(key, value)
        cal.add_component(event)
        return event

    # Weekly series, started some weeks before the window (so expansion walks from DTSTART),
    # each on 1-5 weekdays; a few biweekly, a few with an EXDATE, a fifth in another zone's TZID.
    per_week_target = BASE_PER_WEEK * RECURRING_SHARE * scale
    per_week = 0.0
    while per_week < per_week_target:
        origin = FIRST - timedelta(weeks=rng.randint(1, 26))
        origin -= timedelta(days=origin.weekday())           # a Monday
        roll = rng.random()
        count = 5 if roll < 0.1 else 3 if roll < 0.3 else 2 if roll < 0.5 else 1  # weekdays in the series
        days = [0, 1, 2, 3, 4] if count == 5 else sorted(rng.sample(range(5), count))
        interval = 2 if rng.random() < 0.15 else 1
        minutes, length = _start_minutes(rng), _duration(rng)
        start = _local(origin + timedelta(days=days[0]), minutes, zone)
        if len(days) == 1 and rng.random() < 0.2:
            start = start.astimezone(ZoneInfo(rng.choice([z for z in ZONES if z != zone_name])))
            rrule_days = [BYDAY[start.weekday()]]
        else:
            rrule_days = [BYDAY[d] for d in days]
        rrule = {"FREQ": "WEEKLY", "BYDAY": rrule_days}
        if interval > 1:
            rrule["INTERVAL"] = interval
        event = add(start, start + length, rrule=rrule)
        if rng.random() < 0.1:  # one skipped occurrence inside the window
            event.add("exdate", start + timedelta(weeks=interval * ((FIRST - origin).days // (7 * interval) + 2)))
        per_week += len(days) / interval

    # Single events on random dates of the window (mostly weekdays), in the member's zone.
    dates = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    weekdays = [d for d in dates if d.weekday() < 5]
    for _ in range(round(BASE_PER_WEEK * (1 - RECURRING_SHARE) * scale * weeks)):
        day = rng.choice(dates if rng.random() < 0.05 else weekdays)
        start = _local(day, _start_minutes(rng), zone)
        add(start, start + _duration(rng))
    # Two all-day events (a conference day, a leave day) whatever the scale.
    for day in rng.sample(weekdays, 2):
        add(day, day + timedelta(days=1))

    cal.add_missing_timezones(first_date=date(2026, 1, 1), last_date=date(2028, 1, 1))
    return cal.to_ical()


# --- measuring -----------------------------------------------------------------------------

def timed(fn: Callable[[], object], repeats: int, *, warm_up: bool = True) -> tuple[object, tuple[float, float, float]]:
    """`fn`'s result, and the median, min and max wall time in seconds over `repeats` runs."""
    result = fn() if warm_up else None
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return result, (statistics.median(runs), min(runs), max(runs))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, not a measurement)")
    args = parser.parse_args(argv)
    search_repeats = 3 if args.quick else 15
    expand_repeats = {1: 1, 4: 1, 16: 1} if args.quick else {1: 7, 4: 3, 16: 3}

    group = make_group()
    window = range_window(group, FIRST, LAST)
    lo = datetime.combine(window.first, clock(0), group.tz)
    hi = datetime.combine(window.last + timedelta(days=1), clock(0), group.tz)
    weeks = (hi - lo).total_seconds() / (7 * 86400)
    n_candidates = len(candidate_starts(group, window, lo))

    print(machine())
    if hasattr(os, "getloadavg"):  # another busy process on a small machine shows up in every number
        print("load average before the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"group: {len(group.members)} members in {len(ZONES)} zones ({', '.join(ZONES)}); home zone {group.timezone}")
    print(f"window: {window.first} to {window.last}, {len(window.dates)} weekdays ({weeks:.2f} weeks); "
          f"{group.meetings.duration_minutes}-min meetings on a {group.meetings.grid_minutes}-min grid: "
          f"{n_candidates} candidate starts")
    print(f"slot search: find_slots(top={TOP}, distinct=True), median of {search_repeats}; "
          f"expansion: busy_from_ics x {len(group.members)} members, median of "
          f"{'/'.join(str(expand_repeats[s]) for s in SCALES)} at {'/'.join(f'{s}x' for s in SCALES)}")
    print()

    rows = []
    cold = None
    for scale in SCALES:
        rng = random.Random(SEED + scale)
        t0 = time.perf_counter()
        ics = {m.email: member_calendar(rng, i, m.timezone, scale, weeks) for i, m in enumerate(group.members)}
        built = time.perf_counter() - t0

        def expand() -> dict[str, Availability]:
            return {m.email: busy_from_ics(ics[m.email], m.tz, lo, hi) for m in group.members}

        # No warm-up: each run parses the text afresh, and at 16x one run takes seconds.
        availability, e_stats = timed(expand, expand_repeats[scale], warm_up=False)
        unreadable = [e for e, a in availability.items() if a.unknown is not None]
        if unreadable:  # the benchmark's own data is broken: measuring it would mean nothing
            print(f"error: calendars of {', '.join(unreadable)} could not be read: "
                  f"{availability[unreadable[0]].unknown}", file=sys.stderr)
            return 1
        busy = sum(len(a.busy) for a in availability.values())
        vevents = sum(data.count(b"BEGIN:VEVENT") for data in ics.values())

        def search():
            return find_slots(group, window, availability, not_before=lo, top=TOP, distinct=True)

        if cold is None:
            t0 = time.perf_counter()
            search()
            cold = time.perf_counter() - t0
        result, s_stats = timed(search, search_repeats)
        rows.append(dict(scale=scale, busy=busy, per_week=busy / len(group.members) / weeks, vevents=vevents,
                         kb=sum(map(len, ics.values())) / 1024, built=built, returned=len(result),
                         best=result[0].expected if result else 0.0,
                         s=s_stats, e=e_stats))

    # The fixed part of a search: painting dates and hours for every member, summing and
    # ranking every candidate, with no busy time at all (no member has a calendar).
    _, fixed = timed(lambda: find_slots(group, window, {}, not_before=lo, top=TOP, distinct=True), search_repeats)

    base = rows[0]
    print("  scale  busy/member/wk  busy intervals  VEVENTs  .ics KiB  events x"
          "  | slot search ms (min-max)   time x"
          "  | expansion ms (min-max)         time x")
    for r in rows:
        s_med, s_min, s_max = (1000 * t for t in r["s"])
        e_med, e_min, e_max = (1000 * t for t in r["e"])
        events_x, search_x, expand_x = r["busy"] / base["busy"], r["s"][0] / base["s"][0], r["e"][0] / base["e"][0]
        print(f"  {r['scale']:>4}x  {r['per_week']:>14.1f}  {r['busy']:>14,}  {r['vevents']:>7,}  {r['kb']:>8,.0f}"
              f"  {events_x:>8.2f}"
              f"  | {s_med:>7.1f} ({s_min:>6.1f}-{s_max:>6.1f})  {search_x:>7.2f}"
              f"  | {e_med:>8.0f} ({e_min:>7.0f}-{e_max:>7.0f})  {expand_x:>7.2f}")
    print()
    returned = ", ".join(str(r["returned"]) for r in rows)
    best = ", ".join(f"{r['best']:g}" for r in rows)
    built = ", ".join(f"{r['built']:.1f} s" for r in rows)
    scales = "/".join(f"{s}x" for s in SCALES)
    print(f"candidate starts: {n_candidates} at every scale; returned: {returned} "
          f"(best expected attendance {best} of {len(group.members)})")
    print(f"slot search with no busy events at all (the fixed part): {1000 * fixed[0]:.1f} ms "
          f"({1000 * fixed[1]:.1f}-{1000 * fixed[2]:.1f})")
    print(f"first (cold) slot search at 1x, before the holiday tables are cached: {1000 * cold:.0f} ms")
    print(f"building the synthetic .ics texts (not measured above): {built} at {scales}")
    if args.quick:
        print("\n--quick: too few repeats for these to be measurements; run without --quick for numbers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
