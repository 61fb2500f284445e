"""Benchmark: one service tick (`Runner.tick`) with many groups, and the state over years.

    python benchmarks/tick.py             # default run: about 5 minutes on 2 CPUs
    python benchmarks/tick.py --full      # up to 1,000 groups and five simulated years: about half an hour
    python benchmarks/tick.py --quick     # small sizes: a smoke test that the benchmark still runs
    python benchmarks/tick.py --profile   # also print cProfile summaries (adds a few minutes)

Everything runs on generated config folders in a temporary directory: N group files
(groups/g0001.toml ...), each with 12 members, two in each of six zones (New York, London,
Kolkata, Los Angeles, Adelaide, Phoenix), a monthly cadence, five goals and two agenda items,
and its own addresses. No member has a calendar file, so availability is "no busy time"
(reading calendars is what benchmarks/slots.py measures). Group settings repeat every
PERIOD groups (group 6 is group 1 under another id and other addresses); that is what lets
a state built for a few groups be copied, exactly, to many (`clone_state`).

1. Everything due: a fresh state and `now` = 2027-03-09 13:00 UTC, inside every group's
   invite period for March. One tick schedules N meetings and sends 12 invites per group
   into a Maildir (MaildirTransport: one file and one fsync per message, as in production).
   Timed as a whole, and split into phases by wrapping the Runner's own calls (plan, record,
   render, Maildir writes, state commits). The planner alone is timed again afterwards.
   Every message costs about the same, so the default run stops at 200 groups.
1b. The same 12 invites per group, but on the final state of (4) copied to N groups: what
   a busy tick costs when the state file is as a long-running service's.
2. Planning without delivering: `plan` and `Runner.record_plan` for the instant of (1), on a
   fresh state, at up to 1,000 groups: the part of the busy tick that is not per message.
3. Nothing due, median of several ticks 5 minutes apart: right after (1) (the measured
   state, or the largest one copied to N groups); on a fresh state on 2027-03-22 12:00 UTC,
   when no group's window is open; and on the final state of (4) copied to N groups: a
   steady-state outbox, which is what a long-running service ticks over.
4. Simulated time: `scheduler.app.simulate.simulate` (the real Runner, planner, renderer and
   Maildir) for PERIOD groups from 2027-01-01, one tick a day at 12:00 UTC, for a year
   (--full: five years). State and table sizes at each quarter of the first year and each
   year end, extrapolated linearly to 1,000 groups.

Logging is set up as the service does (text lines at INFO), written to /dev/null, so the
per-message log lines cost what they cost in production. Times are wall-clock seconds from
`time.perf_counter`. Like every benchmark here it measures and reports; it asserts nothing
about time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import scheduler.app.delivery as delivery
import scheduler.app.service as service
import scheduler.app.tick as tick
from scheduler.cli.wiring import group_availability as default_availability
from integrations.mail import MaildirTransport, transport_for
from scheduler.app.logs import setup as setup_logging
from scheduler.app.simulate import simulate
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.core.planner import StateView, plan
from scheduler.app.journal import journal_path
from scheduler.app.statefile import StateFile
from scheduler.app.store import Store

BUSY_SIZES = (50, 100, 200)                   # everything due: ~15 ms per message, 12 per group
FULL_BUSY_SIZES = (100, 250, 500, 1000)       # --full
SIM_BUSY_SIZES = (50, 100, 200)               # everything due on the simulated state
FULL_SIM_BUSY_SIZES = (100, 250, 500)         # --full
IDLE_SIZES = (100, 250, 500, 1000)            # nothing due, and planning without delivery
QUICK_BUSY_SIZES, QUICK_IDLE_SIZES = (5, 10), (10, 20)
QUICK_SIM_BUSY_SIZES = (5, 10)
PERIOD = 5                                    # group settings repeat every 5 groups
SIM_GROUPS = PERIOD                           # the simulated years run one period of groups...
SIM_START = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
SIM_MONTHS, FULL_SIM_MONTHS = 12, 60         # ...for a year (--full: five years)
QUICK_SIM_MONTHS = 3
IDLE_TICKS, QUICK_IDLE_TICKS = 7, 3
# Every group's March window is open for invites, and the coordinators' report days (from
# 09:00 on the 1st, for 7 days) are over even in Los Angeles: 12 invites per group, no more.
EVERYTHING_DUE = datetime(2027, 3, 9, 13, 0, tzinfo=UTC)
FAR_FROM_WINDOWS = datetime(2027, 3, 22, 12, 0, tzinfo=UTC)

# Two members per zone: zone, hours, preferred hours, holiday region.
MEMBERS = (
    ("America/New_York", "08:00-18:00", "11:00-14:00", "US-NY"),
    ("America/New_York", "09:00-17:00", None, "US-NY"),
    ("Europe/London", "08:00-18:00", "13:00-17:00", "GB-ENG"),
    ("Europe/London", "09:00-17:30", None, "GB-ENG"),
    ("Asia/Kolkata", "14:00-21:30", None, "IN-WB"),
    ("Asia/Kolkata", "13:00-21:00", None, "IN-WB"),
    ("America/Los_Angeles", "07:00-17:00", "08:00-12:00", "US-CA"),
    ("America/Los_Angeles", "07:00-17:30", None, "US-CA"),
    ("Australia/Adelaide", "07:00-22:00", "07:00-09:00", "AU-SA"),
    ("Australia/Adelaide", "08:00-18:00", None, "AU-SA"),
    ("America/Phoenix", "07:00-16:00", None, "US-AZ"),
    ("America/Phoenix", "08:00-17:00", None, "US-AZ"),
)
ZONES = tuple(dict.fromkeys(z for z, *_ in MEMBERS))
SURNAMES = ("Chen", "Carter", "Okafor", "Schultz", "Romero", "Raman", "Wang", "Murphy", "Begay", "Grant",
            "Das", "de Vries")
WEEKDAYS = (("tue", "wed", "thu"), ("mon", "tue", "wed", "thu", "fri"), ("tue", "thu"), ("mon", "wed"))
WEEKS = ((2, 3), (2,), (3,), (2, 3), (3,))      # days 8-21 at most: windows close by the 22nd


# --- the config folder ---------------------------------------------------------------------

def gid(i: int) -> str:
    return f"g{i:04d}"


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string


def group_toml(i: int) -> str:
    """Group number i (1-based). Everything but the id and addresses depends on (i-1) % PERIOD."""
    p, g = (i - 1) % PERIOD, gid(i)
    emails = [f"m{k + 1:02d}.{g}@bench.example" for k in range(len(MEMBERS))]
    lines = [
        f"name = {_q(f'Benchmark group {p + 1}')}",
        'mission = "Each of us submits one grant application this year, with the group\'s feedback on every draft."',
        f"timezone = {_q(ZONES[p % len(ZONES)])}",
        f"coordinators = [{_q(emails[0])}, {_q(emails[2])}]",
        'video_link = "https://meet.example.org/bench"',
        f"started = 2026-01-{12 + p % 7:02d}",   # reviews in January and July, year-end on 1 December
        "",
        "[meetings]",
        'cadence = "monthly"',
        f"duration_minutes = {60 if p % 3 else 90}",
        f"weekdays = [{', '.join(_q(d) for d in WEEKDAYS[p % len(WEEKDAYS)])}]",
        f"weeks_of_month = [{', '.join(map(str, WEEKS[p % len(WEEKS)]))}]",
        "quorum = 0.5",
        "invite_days_before = 14",
        "agenda_days_before = 2",
        "follow_up_days_after = 1",
        "",
    ]
    for k, (zone, hours, preferred, region) in enumerate(MEMBERS):
        lines += ["[[members]]", f"name = {_q(f'Member{k + 1:02d} {SURNAMES[k]}')}", f"email = {_q(emails[k])}",
                  f"timezone = {_q(zone)}", f"hours = {_q(hours)}", f"holidays = {_q(region)}"]
        if preferred:
            lines.append(f"preferred_hours = {_q(preferred)}")
        if zone == "Asia/Kolkata":
            lines.append('weekdays = ["mon", "tue", "wed", "thu", "fri", "sat"]')
        if k == 0:
            lines.append("required = true")
        lines.append("")
    # Five goals, due on days 12-20 (never near 1 or 22 March 2027, the two idle instants).
    for n in range(5):
        due = date(2027 + n, 1 + (p + 5 * n) % 12, 12 + (p + n) % 9)
        lines += ["[[goals]]", f"member = {_q(emails[(p + 3 * n) % len(emails)])}",
                  f"text = {_q(f'Goal {n + 1}: send the draft to two readers')}", f"due = {due.isoformat()}",
                  f"done = {'true' if n == 4 else 'false'}", ""]
    lines += ["[[agenda]]", 'text = "Feedback round on one draft"', "",
              "[[agenda]]", 'text = "Five minutes: one thing that went well this month"', ""]
    return "\n".join(lines)


SERVICE_TOML = """\
state = "var/state.json"
tick_minutes = 5
[mail]
transport = "maildir"
maildir = "var/outbox"
sender = "friendtor@bench.example"
sender_name = "Benchmark (friendtor)"
"""


def make_config(folder: Path, n: int) -> Path:
    (folder / "groups").mkdir(parents=True)
    (folder / "service.toml").write_text(SERVICE_TOML)
    for i in range(1, n + 1):
        (folder / "groups" / f"{gid(i)}.toml").write_text(group_toml(i))
    return folder


# --- measuring helpers -----------------------------------------------------------------------

class Phases:
    """Wall time and call counts of wrapped callables (attributes of objects or modules)."""

    def __init__(self) -> None:
        self.time: Counter = Counter()
        self.calls: Counter = Counter()
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.time[label] += time.perf_counter() - t0
                self.calls[label] += 1

        self._undo.append((owner, attr, owner.__dict__.get(attr) if hasattr(owner, "__dict__") else None))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, before in reversed(self._undo):
            if before is None:
                delattr(owner, attr)    # an instance attribute hiding the class's method
            else:
                setattr(owner, attr, before)
        self._undo.clear()


@contextlib.contextmanager
def phases_of(runner: Runner) -> Iterator[Phases]:
    ph = Phases()
    ph.wrap(runner.watcher, "refresh", "config check")
    ph.wrap(runner, "view", "state view")
    ph.wrap(tick, "plan", "plan")
    ph.wrap(runner, "record_plan", "record plan")
    ph.wrap(runner.delivery, "due", "outbox scan")
    ph.wrap(delivery, "message_for", "render")
    ph.wrap(runner.delivery.transport, "send", "Maildir")
    ph.wrap(runner, "commit", "state commits")
    ph.wrap(runner.store.storage, "_write_all", "full writes")
    ph.wrap(runner.store, "prune", "prune")
    try:
        yield ph
    finally:
        ph.restore()


def new_runner(folder: Path, state: Path) -> tuple[Runner, Store]:
    watcher = ConfigWatcher(folder)
    store = Store(state)
    return Runner(watcher, store, transport_for, availability=default_availability), store


def no_calendars(config):
    """The planner's availability function, as the Runner builds it, for timing `plan` alone:
    each member through `default_availability` (here: no calendar, so no busy time)."""
    def read(group, window):
        if not window.dates:
            return {}
        lo = datetime.combine(window.first, datetime.min.time(), group.tz)
        hi = datetime.combine(window.last + timedelta(days=1), datetime.min.time(), group.tz)
        return default_availability(config, group, lo, hi)
    return read


def maildir_count(folder: Path) -> int:
    new = folder / "var" / "outbox" / "new"
    return sum(1 for _ in os.scandir(new)) if new.is_dir() else 0


def read_state(state: Path) -> dict:
    """The state's documents as the service reads them: the file with its journal replayed."""
    return StateFile(state, writable=False).read()


def state_bytes(state: Path) -> int:
    """The state's size on disk: the file and its journal."""
    return sum(p.stat().st_size for p in (state, journal_path(state)) if p.exists())


def copy_state(source: Path, target: Path) -> None:
    for src, dst in ((source, target), (journal_path(source), journal_path(target))):
        if src.exists():
            shutil.copyfile(src, dst)


def table_sizes(state: Path) -> dict[str, int]:
    return {name: len(docs) for name, docs in read_state(state).items()}


def idle_ticks(runner: Runner, start: datetime, count: int) -> tuple[list[float], int]:
    """`count` ticks 5 minutes apart from `start`; their times, and how much they planned or sent."""
    runs, activity = [], 0
    for k in range(count):
        t0 = time.perf_counter()
        report = runner.tick(start + timedelta(minutes=5 * k))
        runs.append(time.perf_counter() - t0)
        activity += len(report.planned) + len(report.sent) + len(report.meetings)
    return runs, activity


def profile(fn: Callable[[], object], title: str, limit: int = 18) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    print(f"\n--- cProfile: {title} ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def quiet_service_logging(devnull) -> None:
    """The service's logging set-up (text lines at INFO), with the lines written to /dev/null:
    formatting them costs what it costs in production, printing them would flood the report."""
    setup_logging("text")
    root = logging.getLogger()
    for handler in list(root.handlers):
        quiet = logging.StreamHandler(devnull)
        quiet.setFormatter(handler.formatter)
        quiet.setLevel(handler.level)
        root.removeHandler(handler)
        root.addHandler(quiet)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})")


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f}"


# --- 1. everything due ----------------------------------------------------------------------

def config_for(root: Path, n: int) -> Path:
    folder = root / f"n{n}"
    return folder if folder.is_dir() else make_config(folder, n)


def run_busy(root: Path, n: int, want_profile: bool, sim: dict | None = None) -> dict:
    """One tick with everything due (12 invites per group): on a fresh state at EVERYTHING_DUE,
    or, given `sim`, on its final state copied to n groups, on 9 March of the year after it
    (the same 12 invites per group, as after a pause of two months). Then the planner alone."""
    folder = config_for(root, n)
    if sim is None:
        state, now = folder / "var" / "state.json", EVERYTHING_DUE
    else:
        state, now = root / f"sim-busy-{n}.json", sim["busy_at"]
        clone_state(sim["state"], sim["groups"], state, n)
    row: dict = {"n": n, "state": state, "size_before": state_bytes(state)}
    runner, store = new_runner(folder, state)
    try:
        row["outbox_before"] = len(store.db.table("outbox"))
        with phases_of(runner) as ph:
            t0 = time.perf_counter()
            report = runner.tick(now)
            row["tick"] = time.perf_counter() - t0
        row["phases"], row["commits"] = dict(ph.time), ph.calls["state commits"]
        row["full_writes"] = ph.calls["full writes"]
        row["kinds"] = Counter(str(r.kind) for r in report.sent)
        row["sent"], row["meetings"] = len(report.sent), len(report.meetings)
        row["other"] = len(report.failed) + len(report.retrying) + len(report.skipped)
        row["maildir"] = maildir_count(folder)
        row["size"] = state_bytes(state)
        if sim is None:
            # The planner alone, on an empty state view (warm: the holiday tables are cached now).
            t0 = time.perf_counter()
            plan(runner.config, StateView.empty(), now, no_calendars(runner.config))
            row["plan_alone"] = time.perf_counter() - t0
    finally:
        store.close()
    shutil.rmtree(folder / "var" / "outbox")  # counted; free the disk
    if want_profile:  # the same tick again, on a fresh copy of the state and Maildir, under the profiler
        again = root / f"profiled-{n}.json"
        if sim is not None:
            clone_state(sim["state"], sim["groups"], again, n)
        runner, store = new_runner(folder, again)
        try:
            profile(lambda: runner.tick(now), f"everything due, {n} groups, "
                    f"{'fresh state' if sim is None else 'simulated state'}")
        finally:
            store.close()
        again.unlink()
        shutil.rmtree(folder / "var" / "outbox")
    return row


# --- 2. planning without delivery, and nothing due ------------------------------------------

def clone_state(source: Path, src_groups: int, target: Path, n: int) -> None:
    """A state of `src_groups` groups, copied to n groups: group i gets the documents of group
    (i-1) % src_groups + 1 with its id renamed (in keys, sids, uids and addresses). Exact,
    because group settings repeat every PERIOD groups and groups do not interact."""
    if src_groups % PERIOD:
        raise ValueError(f"copying needs a multiple of {PERIOD} groups, got {src_groups}")
    data = read_state(source)
    out: dict[str, dict] = {}
    for table, docs in data.items():
        if "group" not in next(iter(docs.values()), {}):
            out[table] = docs  # meta
            continue
        by_group: dict[str, list[dict]] = {}
        for doc in docs.values():
            by_group.setdefault(doc["group"], []).append(doc)
        new: dict[str, dict] = {}
        for i in range(1, n + 1):
            src = gid((i - 1) % src_groups + 1)
            if by_group.get(src):
                text = json.dumps(by_group[src], ensure_ascii=False).replace(src, gid(i))
                for doc in json.loads(text):
                    if doc.get("message_id"):  # keyed by a hash, not by the group: one per copy
                        doc["message_id"] = doc["message_id"].replace("@", f".{gid(i)}@", 1)
                    new[str(len(new) + 1)] = doc
        out[table] = new
    # Written as the service writes a state (with its checksum, 0600), so that it opens.
    target.unlink(missing_ok=True)
    journal_path(target).unlink(missing_ok=True)
    storage = StateFile(target)
    storage.write(out)
    storage.commit()
    storage.close()


IDLE_LABELS = ("config check", "state view", "plan", "outbox scan", "prune")


def idle_series(folder: Path, state: Path, start: datetime, count: int, title: str | None) -> dict:
    """`count` ticks with (supposedly) nothing due, one more with phases, one under cProfile if titled."""
    runner, store = new_runner(folder, state)
    try:
        runs, activity = idle_ticks(runner, start, count)
        with phases_of(runner) as ph:
            runner.tick(start + timedelta(minutes=5 * count))
        if title:
            profile(lambda: runner.tick(start + timedelta(minutes=5 * (count + 1))), title)
        # What one full write costs at this size (a commit writes the whole file only when its
        # journal has grown to a quarter of it). Forced by hand; the file is rewritten unchanged.
        writes = []
        for _ in range(3):
            store.storage.changed("meta", set(), everything=True)
            t0 = time.perf_counter()
            runner.commit()
            writes.append(time.perf_counter() - t0)
    finally:
        store.close()
    return {"runs": runs, "activity": activity, "phases": dict(ph.time), "size": state_bytes(state),
            "outbox": table_sizes(state).get("outbox", 0), "write": statistics.median(writes)}


def run_idle(root: Path, n: int, busy: list[dict], sim: dict, count: int, want_profile: bool) -> dict:
    folder = config_for(root, n)
    row: dict = {"n": n}

    # Planning and recording the everything-due tick, without delivering: a fresh state.
    runner, store = new_runner(folder, root / f"plan-{n}.json")
    try:
        t0 = time.perf_counter()
        p = plan(runner.config, runner.view(EVERYTHING_DUE), EVERYTHING_DUE, no_calendars(runner.config))
        t1 = time.perf_counter()
        runner.record_plan(p, EVERYTHING_DUE)
        t2 = time.perf_counter()
        runner.commit()
        t3 = time.perf_counter()
        row.update(plan=t1 - t0, record=t2 - t1, commit=t3 - t2, planned=len(p.sends), meetings=len(p.meetings))
    finally:
        store.close()

    # Nothing due right after everything due: the measured state, or the largest one copied.
    measured = next((b for b in busy if b["n"] == n), None)
    state = root / f"after-{n}.json"
    if measured:
        copy_state(measured["state"], state)
        row["after_source"] = "measured"
    else:
        src = max(busy, key=lambda b: b["n"])
        clone_state(src["state"], src["n"], state, n)
        row["after_source"] = f"copied from {src['n']}"
    row["after"] = idle_series(folder, state, EVERYTHING_DUE + timedelta(minutes=5), count,
                               f"nothing due after everything due, {n} groups" if want_profile else None)

    # Nothing due on a fresh state, when no group's window is open.
    row["fresh"] = idle_series(folder, root / f"fresh-{n}.json", FAR_FROM_WINDOWS, count, None)

    # Nothing due on the simulated years' final state, copied to n groups.
    state = root / f"steady-{n}.json"
    clone_state(sim["state"], sim["groups"], state, n)
    row["steady"] = idle_series(folder, state, sim["end"] + timedelta(minutes=5), count,
                                f"nothing due, steady-state outbox, {n} groups" if want_profile else None)
    return row


# --- 3. simulated years -------------------------------------------------------------------------

def run_years(root: Path, groups: int, months: int) -> dict:
    folder = make_config(root / "sim-config", groups)
    out = root / "sim-out"
    end = datetime(SIM_START.year + months // 12, months % 12 + 1, 1, SIM_START.hour, tzinfo=UTC) - timedelta(days=1)
    state = out / "state.json"
    marks: list[dict] = []
    sizes: list[int] = []

    def on_tick(now: datetime) -> None:
        # The documents' size as one full write would store them (the file alone can be older than
        # its journal); the journal's own size is reported apart.
        size = len(json.dumps(read_state(state), ensure_ascii=False, sort_keys=True,
                              separators=(",", ":")).encode()) if state.exists() else 0
        sizes.append(size)
        nxt = now + timedelta(days=1)
        quarter = nxt.day == 1 and nxt.month in (4, 7, 10) and now.year == SIM_START.year
        if nxt.year != now.year or quarter or nxt > end:
            journal = journal_path(state)
            marks.append({"date": now.date(), "size": size, "max": max(sizes), "tables": table_sizes(state),
                          "journal": journal.stat().st_size if journal.exists() else 0,
                          "maildir": sum(1 for _ in os.scandir(out / "outbox" / "new"))})
            sizes.clear()

    t0 = time.perf_counter()
    timeline = simulate(folder, SIM_START, end, timedelta(days=1), out, availability=default_availability,
                        maildir=MaildirTransport, on_tick=on_tick)
    took = time.perf_counter() - t0
    shutil.rmtree(out / "outbox")  # counted; free the disk
    return {"groups": groups, "end": end, "took": took, "ticks": (end - SIM_START).days + 1, "marks": marks,
            "busy_at": datetime(end.year + 1, 3, 9, 13, 0, tzinfo=UTC),
            "counts": timeline.counts, "state": state}


# --- report -------------------------------------------------------------------------------------

BUSY_LABELS = ("config check", "state view", "plan", "record plan", "outbox scan", "render", "Maildir",
               "state commits", "prune")


def stats_ms(runs: list[float]) -> str:
    return f"{ms(statistics.median(runs)):>5} ({ms(min(runs)):>4}-{ms(max(runs)):>4})"


def _phase_table(rows: list[dict]) -> None:
    print("  groups  " + "  ".join(f"{lab:>13}" for lab in BUSY_LABELS) + "     rest")
    for r in rows:
        ph = r["phases"]
        rest = r["tick"] - sum(ph.get(lab, 0.0) for lab in BUSY_LABELS)
        print(f"  {r['n']:>6}  " + "  ".join(f"{ph.get(lab, 0.0):>13.2f}" for lab in BUSY_LABELS) + f"  {rest:>7.2f}")


def _notes(rows: list[dict]) -> None:
    for r in rows:
        if r["other"] or set(r["kinds"]) - {"invite"} or r["meetings"] != r["n"] or r["maildir"] != r["sent"]:
            print(f"  note: {r['n']} groups: sent by kind {dict(r['kinds'])}, failed/retrying/skipped "
                  f"{r['other']}, meetings {r['meetings']}, files in the Maildir {r['maildir']}")


def print_busy(busy: list[dict], sim_busy: list[dict], sim: dict) -> None:
    print(f"\n== 1. Everything due: one tick on a fresh state at {EVERYTHING_DUE:%Y-%m-%d %H:%M} UTC "
          "(a meeting and 12 invites per group, into a Maildir) ==")
    print("  groups  meetings  messages   tick s  ms/group  ms/message  msg/s  state MiB after  commits"
          "  full  commits s  planner alone s  ms/group")
    for r in busy:
        print(f"  {r['n']:>6}  {r['meetings']:>8,}  {r['sent']:>8,}  {r['tick']:>7.1f}"
              f"  {1000 * r['tick'] / r['n']:>8.0f}  {1000 * r['tick'] / max(1, r['sent']):>10.1f}"
              f"  {r['sent'] / r['tick']:>5.0f}  {r['size'] / 2**20:>15.2f}  {r['commits']:>7}  {r['full_writes']:>4}"
              f"  {r['phases'].get('state commits', 0.0):>9.2f}"
              f"  {r['plan_alone']:>15.2f}  {1000 * r['plan_alone'] / r['n']:>8.2f}")
    _notes(busy)
    print("\n  the same ticks by phase, seconds (render and Maildir summed over the messages):")
    _phase_table(busy)
    if not sim_busy:
        return
    print(f"\n== 1b. Everything due on the simulation's final state copied to N groups, at "
          f"{sim['busy_at']:%Y-%m-%d %H:%M} UTC (12 invites per group, as after a two-month pause) ==")
    print("  groups  outbox docs  state MiB before  messages   tick s  ms/group  ms/message  commits"
          "  full  commits s  ms/commit  share in commits")
    for r in sim_busy:
        c = r["phases"].get("state commits", 0.0)
        print(f"  {r['n']:>6}  {r['outbox_before']:>11,}  {r['size_before'] / 2**20:>16.2f}  {r['sent']:>8,}"
              f"  {r['tick']:>7.1f}  {1000 * r['tick'] / r['n']:>8.0f}  {1000 * r['tick'] / max(1, r['sent']):>10.1f}"
              f"  {r['commits']:>7}  {r['full_writes']:>4}  {c:>9.2f}  {1000 * c / max(1, r['commits']):>9.0f}  {c / r['tick']:>16.0%}")
    _notes(sim_busy)
    print("\n  the same ticks by phase, seconds:")
    _phase_table(sim_busy)


def print_idle(idle: list[dict], sim: dict, count: int) -> None:
    print("\n== 2. Planning the everything-due tick without delivering it (fresh state) ==")
    print("  groups  sends planned   plan s  ms/group  record s  ms/group  commit s")
    for r in idle:
        print(f"  {r['n']:>6}  {r['planned']:>13,}  {r['plan']:>7.2f}  {1000 * r['plan'] / r['n']:>8.2f}"
              f"  {r['record']:>8.2f}  {1000 * r['record'] / r['n']:>8.2f}  {r['commit']:>8.2f}")

    print(f"\n== 3. Nothing due: ms per tick, median (min-max) of {count} ticks 5 minutes apart ==")
    cases = (("after", f"right after everything due ({EVERYTHING_DUE + timedelta(minutes=5):%m-%d %H:%M} UTC)"),
             ("fresh", f"fresh state, no window open ({FAR_FROM_WINDOWS:%m-%d %H:%M} UTC)"),
             ("steady", f"steady state: the simulation's final state copied to N groups "
                        f"({sim['end'] + timedelta(minutes=5):%Y-%m-%d %H:%M} UTC)"))
    for key, title in cases:
        print(f"\n  {title}")
        print("  groups  state MiB  outbox docs  tick ms (min-max)  ms/group  | " +
              "  ".join(f"{lab:>12}" for lab in IDLE_LABELS) + "  | full write ms")
        for r in idle:
            s = r[key]
            med = statistics.median(s["runs"])
            note = f"  activity {s['activity']}!" if s["activity"] else ""
            if key == "after" and r["after_source"] != "measured":
                note += f"  [{r['after_source']}]"
            print(f"  {r['n']:>6}  {s['size'] / 2**20:>9.2f}  {s['outbox']:>11,}  {stats_ms(s['runs']):>17}"
                  f"  {1000 * med / r['n']:>8.2f}  | " +
                  "  ".join(f"{ms(s['phases'].get(lab, 0.0)):>12}" for lab in IDLE_LABELS) +
                  f"  | {ms(s['write']):>14}" + note)
        print("  (the phases are of one more tick, in ms; a full write rewrites the whole state file, which a "
              "commit does only when its journal has grown to a quarter of the file)")


def print_years(sim: dict) -> None:
    total = sum(sim["counts"].values())
    print(f"\n== 4. Simulated time: {sim['groups']} groups, {SIM_START:%Y-%m-%d} to {sim['end']:%Y-%m-%d}, one tick "
          f"a day at 12:00 UTC ({sim['ticks']:,} ticks, {total:,} messages, {sim['took']:.0f} s) ==")
    print("  messages by kind: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sim["counts"].items())))
    print("  at (last tick of)  state KiB  largest since last row KiB  bytes/group  journal KiB  outbox  meetings"
          "  alerts  reviews  messages so far")
    for m in sim["marks"]:
        t = m["tables"]
        print(f"  {m['date']!s:>17}  {m['size'] / 1024:>9,.0f}  {m['max'] / 1024:>26,.0f}"
              f"  {m['size'] / sim['groups']:>11,.0f}  {m['journal'] / 1024:>11,.0f}  {t.get('outbox', 0):>6,}  {t.get('meetings', 0):>8,}"
              f"  {t.get('alerts', 0):>6,}  {t.get('reviews', 0):>7,}  {m['maildir']:>15,}")
    last = sim["marks"][-1]
    peak = max(m["max"] for m in sim["marks"][1:] or sim["marks"])
    print(f"  linear extrapolation to 1,000 groups: {last['size'] / sim['groups'] * 1000 / 2**20:.1f} MiB at the "
          f"last tick, {peak / sim['groups'] * 1000 / 2**20:.1f} MiB at the largest after the first year")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small sizes, three simulated months (a smoke test)")
    group.add_argument("--full", action="store_true",
                       help=f"everything due at {', '.join(map(str, FULL_BUSY_SIZES))} groups, and "
                            "five simulated years (about half an hour)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the smallest everything-due tick and the largest nothing-due ticks")
    args = parser.parse_args(argv)
    busy_sizes = QUICK_BUSY_SIZES if args.quick else FULL_BUSY_SIZES if args.full else BUSY_SIZES
    sim_busy_sizes = QUICK_SIM_BUSY_SIZES if args.quick else FULL_SIM_BUSY_SIZES if args.full else SIM_BUSY_SIZES
    idle_sizes = QUICK_IDLE_SIZES if args.quick else IDLE_SIZES
    count = QUICK_IDLE_TICKS if args.quick else IDLE_TICKS
    months = QUICK_SIM_MONTHS if args.quick else FULL_SIM_MONTHS if args.full else SIM_MONTHS

    with open(os.devnull, "w") as devnull:
        quiet_service_logging(devnull)
        print(machine())
        if hasattr(os, "getloadavg"):
            print("load average before the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"scheduler imported from {Path(service.__file__).resolve().parent}")
        print(f"groups of {len(MEMBERS)} members in {len(ZONES)} zones, monthly, no calendar files "
              "(availability = no busy time); Maildir transport with fsync; logging at INFO to /dev/null")
        t_all = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="friendtor-tick-") as tmp:
            root = Path(tmp)
            print(f"scratch folder: {root}", flush=True)
            sim = run_years(root, SIM_GROUPS, months)
            print(f"  {months} simulated months of {SIM_GROUPS} groups: {sim['took']:.0f} s", flush=True)
            busy, sim_busy = [], []
            for n in busy_sizes:
                busy.append(run_busy(root, n, args.profile and n == min(busy_sizes)))
                print(f"  everything due, {n} groups, fresh state: {busy[-1]['tick']:.1f} s", flush=True)
            for n in sim_busy_sizes:
                sim_busy.append(run_busy(root, n, args.profile and n == min(sim_busy_sizes), sim))
                print(f"  everything due, {n} groups, simulated state: {sim_busy[-1]['tick']:.1f} s", flush=True)
            idle = []
            for n in idle_sizes:
                idle.append(run_idle(root, n, busy, sim, count, args.profile and n == max(idle_sizes)))
                print(f"  nothing due, {n} groups: done", flush=True)
            print_busy(busy, sim_busy, sim)
            print_idle(idle, sim, count)
            print_years(sim)
        print(f"\ntotal run time: {time.perf_counter() - t_all:.0f} s")
    if args.quick:
        print("\n--quick: sizes too small for these to be measurements; run without --quick for numbers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
