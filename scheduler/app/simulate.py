"""`friendtor simulate`: many ticks over simulated time, against a scratch state and Maildir.

The real planner, renderer and Maildir transport run unchanged; only the clock is
simulated, and every message carries its simulated send time in its Date header. The
real state file and the real outbox are never touched.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from scheduler.app.store import Store
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.core.config import Config, Group
from scheduler.core.errors import UsageError
from scheduler.core.fields import FIRST_YEAR, LAST_YEAR
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import OutboxRecord
from scheduler.core.ports import AvailabilityReader, Transport

MARKER = ".friendtor-simulation"
LONGEST_STEP = timedelta(days=366)  # a step longer than a year would skip whole cycles unseen
MEETING = "meeting"                 # a timeline row for a meeting scheduled, not a message
MOST_TICKS = 50_000                 # a simulation that would not finish today is a typo (--step 1m over years)


def parse_step(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text or "")
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"--step: {text!r} is not a step; use minutes, hours or days, e.g. 30m, 6h, 1d")
    n, unit = int(m.group(1)), m.group(2)
    # Compared as minutes before a timedelta is built: 99999999999d would overflow one.
    if n * {"m": 1, "h": 60, "d": 1440}[unit] > LONGEST_STEP // timedelta(minutes=1):
        raise UsageError(f"--step: {text.strip()} is longer than a year; use at most 366d")
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]


def prepare_out(out: Path, config: Config) -> None:
    """A fresh scratch folder; refuse to wipe anything that is not an earlier simulation."""
    try:
        real = {config.path(config.service.state).resolve(), config.path(config.service.mail.maildir).resolve()}
        if out.resolve() in real or any(out.resolve() in p.parents for p in real):
            raise UsageError(f"--out {str(out)!r}: that is where the real state or outbox lives; pick another folder")
        if out.exists():
            if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
                raise UsageError(f"--out {str(out)!r}: exists and is not a friendtor simulation folder; "
                                 "pick an empty or new folder")
            shutil.rmtree(out)
        out.mkdir(parents=True, mode=0o700)
        (out / MARKER).write_text("Scratch output of `friendtor simulate`; safe to delete.\n")
    except (OSError, ValueError) as exc:  # read-only, /proc, a file on the way, a NUL in the name
        raise UsageError(f"--out {str(out)!r}: cannot write there ({getattr(exc, 'strerror', None) or 'not a usable name'}); "
                         "pick a folder you can write") from None


@dataclass
class Timeline:
    rows: list[tuple[datetime, str, str, str, int]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    meetings: int = 0

    def scheduled(self, when: datetime, meeting: Meeting, group: Group) -> None:
        """A meeting row: when it was scheduled, and the time it was given, in the group's zone
        (the invites, agendas and follow-ups around it only make sense against that time)."""
        s, e = meeting.start.astimezone(group.tz), meeting.end.astimezone(group.tz)
        self.rows.append((when, MEETING, meeting.group,
                          f"{meeting.cycle} on {s:%a %d %b %Y %H:%M}–{e:%H:%M} {group.timezone}", 0))
        self.meetings += 1

    def add(self, when: datetime, records: list[OutboxRecord]) -> None:
        grouped = Counter((str(r.kind), r.group, r.key) for r in records)
        for (kind, group, key), n in sorted(grouped.items(), key=lambda kv: kv[0][2]):
            self.rows.append((when, kind, group, key, n))
            self.counts[kind] += n


def simulate(folder: Path, start: datetime, end: datetime, step: timedelta, out: Path,
             *, availability: AvailabilityReader, maildir: Callable[[Path], Transport],
             on_tick: Callable[[datetime], None] | None = None) -> Timeline:
    """Tick from `start` to `end`; `maildir` builds the transport that writes into a Maildir
    (the CLI passes integrations.mail's), here `out/outbox`."""
    ticks = (end - start) // step + 1
    if ticks > MOST_TICKS:
        raise UsageError(f"--step: {ticks} ticks from --from to --to (at most {MOST_TICKS}); "
                         "use a longer step or a shorter period")
    watcher = ConfigWatcher(folder)
    prepare_out(out, watcher.config)
    timeline = Timeline()
    cache: dict = {}

    def cached(config, group, lo, hi):  # calendars do not change during a simulation
        key = (group.id, lo, hi)
        if key not in cache:
            cache[key] = availability(config, group, lo, hi)
        return cache[key]

    with Store(out / "state.json") as store:
        runner = Runner(watcher, store, lambda c: maildir(out / "outbox"), availability=cached)
        now = start
        while now <= end:
            report = runner.tick(now)
            for meeting in report.meetings:
                timeline.scheduled(now, meeting, runner.config.groups[meeting.group])
            timeline.add(now, report.sent)
            for record in report.failed:
                timeline.rows.append((now, f"FAILED {record.kind}", record.group, record.key, 1))
            if on_tick:
                on_tick(now)
            now += step
    return timeline


def format_timeline(timeline: Timeline, out: Path) -> str:
    lines = [f"{when:%Y-%m-%d %H:%M} UTC  {kind:<10} {group:<12} " + (
             key if kind == MEETING else f"{key:<32} {n:>3} recipient{'s' if n != 1 else ''}")
             for when, kind, group, key, n in timeline.rows]
    total = sum(timeline.counts.values())
    summary = ", ".join(f"{kind} {n}" for kind, n in sorted(timeline.counts.items()))
    scheduled = f"{timeline.meetings} meeting{'s' if timeline.meetings != 1 else ''} scheduled, "
    lines += ["", f"{scheduled}{total} messages ({summary or 'none'}); state and Maildir in {out} "
                  f"(open with: mutt -f {out / 'outbox'})"]
    return "\n".join(lines)


def day_bounds(first: str, last: str) -> tuple[datetime, datetime]:
    """--from/--to dates as UTC instants: the start of the first day to the end of the last."""
    out = []
    for text, flag in ((first, "--from"), (last, "--to")):
        try:
            day = date.fromisoformat(text)
        except (TypeError, ValueError):
            raise UsageError(f"{flag}: {text!r} is not a date; use YYYY-MM-DD, e.g. 2027-01-01") from None
        if not FIRST_YEAR <= day.year <= LAST_YEAR:  # the years config dates may use: no overflow past them
            raise UsageError(f"{flag}: {text} is too far from today to simulate; use a year from {FIRST_YEAR} "
                             f"to {LAST_YEAR}")
        out.append(datetime.combine(day, time(0), UTC))
    start, end = out[0], out[1] + timedelta(days=1) - timedelta(seconds=1)
    if end < start:
        raise UsageError(f"--to {last} is before --from {first}; swap them")
    if end - start > timedelta(days=3 * 366):
        raise UsageError("--from/--to span more than three years; simulate a shorter period")
    return start, end
