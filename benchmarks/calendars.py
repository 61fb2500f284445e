"""Benchmark: reading members' calendars, before and after issue 13 point 1 (the cut before
parsing, occurrences without copies, the parsed-calendar cache).

    python benchmarks/calendars.py            # full run (docs/performance.md has the numbers)
    python benchmarks/calendars.py --quick    # one round: a smoke test that it still runs
    python benchmarks/calendars.py --no-process   # only the readings in this process (1, 2)

"Before" is the base commit's code, not a switch in today's: `git archive BASE` (default
`main`) is unpacked into a temporary folder; its integrations/ics.py is loaded beside
today's in this process (so the two readers run interleaved, round by round, on the same
bytes), and the whole-process runs put that folder first on PYTHONPATH. Both use this venv,
so both read with the same library versions.

Data (deterministic, from benchmarks/slots.py's group and calendars): 12 members in six
zones, a 60-day window across the US, UK and South Australian clock changes, ~40 busy
events a member a week in the window ("window alone"); "five-year history" adds to each
member's calendar five years of past events before the window: ~16 one-off events a week,
a weekly series every two months that ended after about six months (UNTIL or COUNT), each
with moved instances and exclusions, and one series running since three years before with
old moves and one moved into the window.

Measured, each figure the median over the rounds, every variant once per round in turn:
1. reading (busy_from_ics, 12 members, in this process): window alone and five-year
   history, before and after; the aim is five-year ≤ 1.5x window alone, after;
2. growth: window alone at 1x and 16x the events, before and after (aim: time ≤ 16x);
3. whole process: `friendtor slots bench` (before; after with no calendar answers on disk,
   "first"; after with the answers the run before kept, "again") against a naive brute force
   in its own process (icalendar parse + recurring_ical_events.of().between() over every
   calendar, then a count of free members per 15-minute start, kept linear), on both data
   sets (aim: ≥ 3x faster); each config folder is validated once first, as an installation is;
4. the cache: `group_availability` twice in one process (the second read hits the cache).
It asserts nothing about time; the machine is shared, so ratios inside a round matter more
than absolute times.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slots import FIRST, LAST, MEMBERS, SEED, machine, make_group, member_calendar  # noqa: E402

from integrations import calcache  # noqa: E402
from integrations.calendars import group_availability  # noqa: E402
from integrations.ics import CalendarBudget, busy_from_ics  # noqa: E402
from scheduler.app.files import atomic_write  # noqa: E402
from scheduler.app.loader import load_config  # noqa: E402
from scheduler.core.cycles import range_window  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
UTC = ZoneInfo("UTC")

# The brute force, as someone would write it without friendtor: parse, expand everything in
# the window, count free members per start. Its own process, like `friendtor slots`.
BRUTE = r"""
import sys, glob
from datetime import datetime, timedelta, timezone
import icalendar, recurring_ical_events
lo = datetime(2027, 3, 1, tzinfo=timezone.utc); hi = datetime(2027, 4, 30, tzinfo=timezone.utc)
busy = []
for path in sorted(glob.glob(sys.argv[1] + "/calendars/*.ics")):
    cal = icalendar.Calendar.from_ical(open(path, "rb").read())
    mine = []
    for ev in recurring_ical_events.of(cal).between(lo, hi):
        s, e = ev["DTSTART"].dt, ev["DTEND"].dt
        if not isinstance(s, datetime):
            s = datetime.combine(s, datetime.min.time(), timezone.utc); e = datetime.combine(e, datetime.min.time(), timezone.utc)
        if s.tzinfo is None:
            s, e = s.replace(tzinfo=timezone.utc), e.replace(tzinfo=timezone.utc)
        mine.append((s, e))
    busy.append(mine)
# Each member's busy 15-minute steps, then every 60-minute start counted: the search is not
# what is measured here, so it is kept linear.
step, starts = timedelta(minutes=15), int((hi - lo) / timedelta(minutes=15))
blocked = []
for mine in busy:
    taken = set()
    for s, e in mine:
        i = max(0, int((s - lo) / step))
        while i < starts and lo + i * step < e:
            taken.add(i)
            i += 1
    blocked.append(taken)
print(max(sum(1 for taken in blocked if not taken & {i, i + 1, i + 2, i + 3}) for i in range(starts - 3)))
"""


# --- five years of history -------------------------------------------------------------------

def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S")


def history(rng: random.Random, index: int, zone: str, years: int = 5) -> str:
    """VEVENT text of `years` of past events before the window, in the member's zone."""
    out: list[str] = []
    serial = iter(range(1, 10**7))

    def event(lines: list[str], uid: str | None = None) -> str:
        uid = uid or f"h{index}-{next(serial)}@bench.example"
        return "BEGIN:VEVENT\r\n" + "".join(f"{line}\r\n" for line in [f"UID:{uid}", "DTSTAMP:20270101T000000Z",
                                                                      "SUMMARY:busy", *lines]) + "END:VEVENT\r\n"

    origin = FIRST - timedelta(days=365 * years)
    day = origin
    while day < FIRST - timedelta(days=2):
        if day.weekday() < 5:
            for _ in range(rng.choice((2, 3, 3, 4))):
                start = datetime.combine(day, clock(rng.randrange(7, 19), rng.choice((0, 15, 30, 45))))
                length = timedelta(minutes=rng.choice((30, 45, 60, 90)))
                if rng.random() < 0.3:  # written in UTC, as Google exports them
                    utc = start.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
                    out.append(event([f"DTSTART:{utc:%Y%m%dT%H%M%SZ}", f"DTEND:{utc + length:%Y%m%dT%H%M%SZ}"]))
                else:
                    out.append(event([f"DTSTART;TZID={zone}:{_stamp(start)}", f"DTEND;TZID={zone}:{_stamp(start + length)}"]))
        day += timedelta(days=1)
    # A weekly series every two months, each over after about six months.
    first = origin
    while first < FIRST - timedelta(days=200):
        uid = f"s{index}-{next(serial)}@bench.example"
        start = datetime.combine(first, clock(rng.randrange(8, 17)))
        weeks = rng.randrange(20, 30)
        if rng.random() < 0.5:
            until = start.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) + timedelta(weeks=weeks)
            rule = f"RRULE:FREQ=WEEKLY;UNTIL={until:%Y%m%dT%H%M%SZ}"
        else:
            rule = f"RRULE:FREQ=WEEKLY;COUNT={weeks}"
        exdates = [f"EXDATE;TZID={zone}:{_stamp(start + timedelta(weeks=w))}" for w in rng.sample(range(1, weeks), 2)]
        out.append(event([f"DTSTART;TZID={zone}:{_stamp(start)}", f"DTEND;TZID={zone}:{_stamp(start + timedelta(hours=1))}",
                          rule, *exdates], uid))
        for w in rng.sample(range(1, weeks), 3):
            original = start + timedelta(weeks=w)
            moved = original + timedelta(hours=rng.choice((-2, 1, 2)))
            out.append(event([f"RECURRENCE-ID;TZID={zone}:{_stamp(original)}", f"DTSTART;TZID={zone}:{_stamp(moved)}",
                              f"DTEND;TZID={zone}:{_stamp(moved + timedelta(hours=1))}"], uid))
        first += timedelta(days=61)
    # One series running for three years, with old moves and one into the window.
    uid = f"r{index}@bench.example"
    start = datetime.combine(FIRST - timedelta(days=3 * 365), clock(12))
    start -= timedelta(days=start.weekday())
    out.append(event([f"DTSTART;TZID={zone}:{_stamp(start)}", f"DTEND;TZID={zone}:{_stamp(start + timedelta(minutes=45))}",
                      "RRULE:FREQ=WEEKLY;BYDAY=MO"], uid))
    for w in [*rng.sample(range(1, 150), 12), (FIRST - start.date()).days // 7 + 2]:
        original = start + timedelta(weeks=w)
        out.append(event([f"RECURRENCE-ID;TZID={zone}:{_stamp(original)}",
                          f"DTSTART;TZID={zone}:{_stamp(original + timedelta(days=1))}",
                          f"DTEND;TZID={zone}:{_stamp(original + timedelta(days=1, minutes=45))}"], uid))
    return "".join(out)


def with_history(window_ics: bytes, text: str) -> bytes:
    return window_ics.replace(b"END:VCALENDAR", text.encode() + b"END:VCALENDAR")


# --- the base commit ---------------------------------------------------------------------------

def unpack_base(ref: str, into: Path) -> str:
    """`git archive ref` unpacked into `into`; returns the commit's short hash."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def load_base_reader(base: Path):
    """The base commit's integrations/ics.py as a module of its own, beside today's."""
    # As a package of its own (base_integrations), so that its relative imports (icsskip) are
    # the base's too.
    folder = base / "integrations"
    package = importlib.util.spec_from_file_location("base_integrations", folder / "__init__.py",
                                                     submodule_search_locations=[str(folder)])
    sys.modules["base_integrations"] = importlib.util.module_from_spec(package)
    package.loader.exec_module(sys.modules["base_integrations"])
    module = importlib.import_module("base_integrations.ics")  # dataclasses look their module up in sys.modules
    # Both readers get a budget that never runs out here: on a loaded machine the default
    # 10 s could stop a slow "before" read and make the answers differ for the wrong reason.
    return lambda data, zone, lo, hi: module.busy_from_ics(data, zone, lo, hi, module.CalendarBudget(seconds=10_000))


# --- config folder for the whole-process runs ----------------------------------------------------

def write_config(folder: Path, calendars: dict[int, bytes]) -> None:
    (folder / "groups").mkdir(parents=True)
    (folder / "calendars").mkdir()
    (folder / "service.toml").write_text('state = "var/state.json"\n[mail]\nsender = "bench@bench.example"\n')
    lines = ['name = "Benchmark group"', 'timezone = "America/New_York"', 'coordinators = ["m01@bench.example"]',
             "started = 2026-09-07", "[meetings]", 'cadence = "monthly"', "duration_minutes = 60",
             'weekdays = ["mon", "tue", "wed", "thu", "fri"]', "quorum = 0.5"]
    for i, (zone, hours, preferred, region) in enumerate(MEMBERS):
        lines += ["[[members]]", f'name = "Member {i + 1:02d}"', f'email = "m{i + 1:02d}@bench.example"',
                  f'timezone = "{zone}"', f'hours = "{hours}"', f'holidays = "{region}"',
                  f'calendar = "calendars/m{i + 1:02d}.ics"']
        if preferred:
            lines.append(f'preferred_hours = "{preferred}"')
        (folder / "calendars" / f"m{i + 1:02d}.ics").write_bytes(calendars[i])
    (folder / "groups" / "bench.toml").write_text("\n".join(lines) + "\n")


def run_process(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return took, done.stdout


# --- main -------------------------------------------------------------------------------------

def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round (a smoke test, not a measurement)")
    parser.add_argument("--base", default="main", help="the commit to compare with (default: main)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-process", action="store_true", help="leave out the whole-process runs (3.)")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds

    group = make_group()
    window = range_window(group, FIRST, LAST)
    lo = datetime.combine(window.first, clock(0), group.tz)
    hi = datetime.combine(window.last + timedelta(days=1), clock(0), group.tz)
    weeks = (hi - lo).total_seconds() / (7 * 86400)
    members = list(group.members)

    t0 = time.perf_counter()
    # Each calendar is built from its own seeded generator so that "alone" and "with history"
    # hold the same window events.
    alone = {i: member_calendar(random.Random(SEED * 100 + i), i, m.timezone, 1, weeks) for i, m in enumerate(members)}
    sixteen = {i: member_calendar(random.Random(SEED * 1600 + i), i, m.timezone, 16, weeks)
               for i, m in enumerate(members)}
    past = {i: with_history(alone[i], history(random.Random(SEED * 7 + i), i, m.timezone)) for i, m in enumerate(members)}
    built = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="friendtor-bench-") as tmp:
        tmp = Path(tmp)
        commit = unpack_base(args.base, tmp / "base")
        base_read = load_base_reader(tmp / "base")
        sets = {"window alone": alone, "five-year history": past, "16x window": sixteen}

        print(machine())
        if hasattr(os, "getloadavg"):
            print("load average before the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"before: {commit} ({args.base}) from git archive; after: this worktree; {rounds} round(s), interleaved")
        for name, data in sets.items():
            print(f"{name}: {sum(d.count(b'BEGIN:VEVENT') for d in data.values()):,} VEVENTs, "
                  f"{sum(map(len, data.values())) / 1024 / 1024:.1f} MiB for {len(members)} members")
        print(f"(building the calendars, not measured: {built:.1f} s)")
        print()

        # 1 and 2: reading in this process.
        readers = {"before": base_read,
                   "after": lambda data, zone, lo, hi: busy_from_ics(data, zone, lo, hi, CalendarBudget(seconds=10_000))}
        times: dict[tuple[str, str], list[float]] = {(r, s): [] for r in readers for s in sets}
        cpu: dict[tuple[str, str], list[float]] = {(r, s): [] for r in readers for s in sets}
        answers: dict[tuple[str, str], object] = {}
        for n in range(rounds):
            order = [(r, s) for s in sets for r in readers]
            order = order[n % len(order):] + order[:n % len(order)]
            for reader, name in order:
                data = sets[name]
                t0, c0 = time.perf_counter(), time.process_time()
                got = [readers[reader](data[i], m.tz, lo, hi) for i, m in enumerate(members)]
                times[(reader, name)].append(time.perf_counter() - t0)
                cpu[(reader, name)].append(time.process_time() - c0)
                answers[(reader, name)] = got
        same = [s for s in sets if answers[("before", s)] != answers[("after", s)]]
        unread = [s for s in sets for a in answers[("after", s)] if a.unknown]
        sys.stdout.flush()
        events = sum(d.count(b"BEGIN:VEVENT") for d in sixteen.values()) / sum(d.count(b"BEGIN:VEVENT") for d in alone.values())
        # Wall time, and the process's CPU time (the steadier figure on a shared machine: a
        # neighbour's load stretches the wall clock of a round, much less its CPU time).
        for label, measured in (("wall", times), ("CPU", cpu)):
            print(f"1-2. reading 12 calendars in one process (busy_from_ics), median {label} s of the rounds")
            print(f"  {'':22} {'before':>8} {'after':>8} {'after x':>8}")
            for name in sets:
                b, a = median(measured[("before", name)]), median(measured[("after", name)])
                print(f"  {name:22} {b:8.2f} {a:8.2f} {b / a:7.1f}x faster")
            for reader in readers:
                w, p, s = (median(measured[(reader, k)]) for k in sets)
                print(f"  {reader}: five-year / window alone = {p / w:.2f}; 16x / 1x = {s / w:.1f} (events {events:.1f}x)")
        print(f"  busy time that differs before and after: {same or 'none'}; unreadable after: {unread or 'none'}")
        print()

        if args.no_process:
            return 0
        # 3: whole process.
        # Bytecode kept, as on an installation (see benchmarks/startup.py).
        env_after = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env_before = {**env_after, "PYTHONPATH": str(tmp / "base")}
        friendtor = str(Path(sys.executable).parent / "friendtor")
        folders = {}
        for name in ("window alone", "five-year history"):
            folders[name] = tmp / name.replace(" ", "-")
            write_config(folders[name], sets[name])
        # Run from the temporary folder: `python -c` puts the current folder first on sys.path.
        check = subprocess.run([sys.executable, "-c", "import scheduler; print(scheduler.__file__)"], env=env_before,
                               capture_output=True, text=True, cwd=tmp).stdout.strip()
        if not check.startswith(str(tmp / "base")):
            raise SystemExit(f"the base commit is not what the before-runs import ({check})")
        # "after, first": the calendar answers on disk removed before each run (a calendar changed
        # since the last command, or the first command); "after, again": kept from the run before
        # (unchanged calendars, the common case for a second `slots` or a restarted service).
        runs = {"before": env_before, "after, first": env_after, "after, again": env_after, "brute": env_after}

        def argv_of(who: str, folder: Path) -> list[str]:
            if who == "brute":
                return [sys.executable, "-c", BRUTE, str(folder)]
            return [friendtor, "slots", "bench", "--config", str(folder), "--from", str(FIRST), "--to", str(LAST)]

        # Set up as an installation is: `validate` once (it makes the state folder and keeps the
        # template check), then one untimed run of each variant (bytecode written for both codes).
        for folder in folders.values():
            run_process([friendtor, "validate", "--config", str(folder)], env_after, tmp)
            for who in ("before", "after, first", "brute"):
                run_process(argv_of(who, folder), runs[who], tmp)
        ptimes: dict[tuple[str, str], list[float]] = {(r, n): [] for r in runs for n in folders}
        outputs: dict[tuple[str, str], str] = {}
        for n in range(rounds):
            for name, folder in folders.items():
                order = list(runs)
                order = order[n % len(order):] + order[:n % len(order)]
                for who in order:
                    if who == "after, again":  # the answers of a run just before, whatever the order
                        run_process(argv_of(who, folder), runs[who], tmp)
                    else:
                        shutil.rmtree(folder / "var" / calcache.DISK_FOLDER, ignore_errors=True)
                    took, out = run_process(argv_of(who, folder), runs[who], tmp)
                    print(f"  (round {n + 1}: {who}, {name}: {took:.2f} s)", flush=True)
                    ptimes[(who, name)].append(took)
                    outputs[(who, name)] = out
        print("3. whole process: `friendtor slots bench` (12 members x 60 days) vs the brute force, median s")
        print(f"  {'':20} {'brute':>7} {'before':>7} {'first':>7} {'again':>7} "
              f"{'brute/first':>12} {'brute/again':>12} {'before/first':>13}")
        for name in folders:
            br, b, a1, a2 = (median(ptimes[(w, name)]) for w in ("brute", "before", "after, first", "after, again"))
            print(f"  {name:20} {br:7.2f} {b:7.2f} {a1:7.2f} {a2:7.2f} {br / a1:11.1f}x {br / a2:11.1f}x {b / a1:12.1f}x")
        print(f"  same `slots` output before and after (first and again): "
              f"{all(outputs[('before', n)] == outputs[(w, n)] for n in folders for w in ('after, first', 'after, again'))}")
        print()

        # 4: the cache, in the service's own process: a second read of unchanged calendars, and
        # the first read after a restart (the memory cache empty, the answers on disk).
        config = load_config(folders["five-year history"])
        bench = config.groups["bench"]
        shutil.rmtree(folders["five-year history"] / "var" / calcache.DISK_FOLDER, ignore_errors=True)
        calcache.CACHE.clear()
        t0 = time.perf_counter()
        first = group_availability(config, bench, lo, hi, write_file=atomic_write)
        cold = time.perf_counter() - t0
        warm, restarted = [], []
        for _ in range(max(rounds, 3)):
            t0 = time.perf_counter()
            again = group_availability(config, bench, lo, hi, write_file=atomic_write)
            warm.append(time.perf_counter() - t0)
        hits = calcache.CACHE.hits
        for _ in range(max(rounds, 3)):
            calcache.CACHE.clear()
            t0 = time.perf_counter()
            after_restart = group_availability(config, bench, lo, hi, write_file=atomic_write)
            restarted.append(time.perf_counter() - t0)
        print("4. group_availability on the five-year set, in one process (workers, cut, cache)")
        print(f"  first read {cold:.2f} s; unchanged bytes again {1000 * median(warm):.1f} ms "
              f"(cache hits {hits}, same answer: {first == again}); after a restart (answers on disk) "
              f"{1000 * median(restarted):.1f} ms (same answer: {first == after_restart})")
    if args.quick:
        print("\n--quick: one round is not a measurement; run without --quick for numbers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
