"""Benchmark: start-up (issue 13, points 2 and 4), before and after, from one run.

    python benchmarks/startup.py --base /path/to/base/checkout      # both parts
    python benchmarks/startup.py --base DIR --only commands          # the commands only (a minute)
    python benchmarks/startup.py --base DIR --only store --keep DIR  # reuse a built state in DIR
    python benchmarks/startup.py --quick                              # smoke test, this tree only

`--base` is another checkout of friendtor with its own virtualenv in `.venv` (e.g. the base
commit); without it only this tree is measured. Every measurement is a fresh process of
the checkout's own `.venv/bin/python`, run from a scratch folder (so `python -c` imports
the checkout's code, not the current folder's), and base and new runs alternate, so that
the shared machine's load falls on both alike.

1. Commands (point 2): wall time of whole processes on a copy of config/example:
   `python -c pass`; importing icalendar, recurring-ical-events, pydantic, jinja2 and tinydb
   (the issue's yardstick); `friendtor validate` on a fresh copy (no state folder yet: the
   first command after unpacking the example), then again (the template check kept);
   `friendtor slots k-club --from 2027-03-01 --to 2027-03-31` (reads 12 calendars), then the
   same again (the calendar answers and holiday tables the first kept).
   Medians of ROUNDS interleaved rounds.
2. Store (point 4): a steady-state state of 1,000 groups, built with benchmarks/tick.py's own
   builders (a year of simulated ticks for 5 groups, `clone_state` to 1,000; ~285 MiB, three
   quarters of its documents in the `sent` table, which keeps every Message-ID 400 days),
   opened as the service opens it (`Store(path)`, holding the lock) in a fresh process:
   the wall and CPU time of `Store(...)` (CPU time is the steadier figure on a shared
   machine), the time the garbage collector ran meanwhile, the process's peak RSS (VmHWM)
   after it and before it (the imports), and its RSS once open. Medians of STORE_ROUNDS
   interleaved rounds.

It measures and reports; it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROUNDS, STORE_ROUNDS = 9, 5
GROUPS = 1000
YARDSTICK = "import icalendar, recurring_ical_events, pydantic, jinja2, tinydb"

# Run in a fresh process by the checkout's python: open the store as the service does and
# print what it cost, as JSON. Peak RSS is VmHWM from /proc (ru_maxrss says the same in KiB).
OPEN = r"""
import gc, json, sys, time
from pathlib import Path

def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

from scheduler.app.store import Store
gc_time = [0.0]
started = {}
def on_gc(phase, info):
    if phase == "start":
        started["t"] = time.perf_counter()
    elif "t" in started:
        gc_time[0] += time.perf_counter() - started.pop("t")
gc.callbacks.append(on_gc)
before = status("VmHWM")
t0, c0 = time.perf_counter(), time.process_time()
store = Store(Path(sys.argv[1]))
took, cpu = time.perf_counter() - t0, time.process_time() - c0
after, rss = status("VmHWM"), status("VmRSS")
outbox = len(store.planned)
store.close()
print(json.dumps({"open": took, "cpu": cpu, "hwm_before": before, "hwm": after, "rss": rss, "gc": gc_time[0],
                  "outbox": outbox}))
"""


def python_of(checkout: Path) -> Path:
    return checkout / ".venv" / "bin" / "python"


# An installation keeps its bytecode (pip compiles what it installs; an editable install writes
# __pycache__ at the first import): a shell with PYTHONDONTWRITEBYTECODE set would time the
# compiling of friendtor's own modules on every command instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    took = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.decode()[-500:]}")
    return took


def friendtor(checkout: Path, *args: str) -> list[str]:
    # What the `friendtor` script runs, without depending on where the script was installed.
    return [str(python_of(checkout)), "-c", "import sys; from scheduler.cli.main import main; sys.exit(main())",
            *args]


def commands(trees: dict[str, Path], scratch: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Wall times of whole processes, per tree and case, rounds interleaved."""
    times: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for r in range(rounds):
        for name, tree in trees.items():
            py = str(python_of(tree))
            folder = scratch / f"example-{name}-{r}"
            shutil.copytree(tree / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
            cases = {
                "python -c pass": [py, "-c", "pass"],
                "import the five libraries": [py, "-c", YARDSTICK],
                "validate, fresh example": friendtor(tree, "validate", "--config", str(folder)),
                "validate, again": friendtor(tree, "validate", "--config", str(folder)),
                "slots k-club (a month)": friendtor(tree, "slots", "k-club", "--config", str(folder),
                                                   "--from", "2027-03-01", "--to", "2027-03-31"),
                # The same again: what was kept by the first (calendar answers, holiday tables)
                # serves it, as for every `slots` after the first on unchanged calendars.
                "slots k-club, again": friendtor(tree, "slots", "k-club", "--config", str(folder),
                                                 "--from", "2027-03-01", "--to", "2027-03-31"),
            }
            for case, cmd in cases.items():
                times[name].setdefault(case, []).append(timed(cmd, scratch))
            shutil.rmtree(folder)
    return times


def print_commands(times: dict[str, dict[str, list[float]]]) -> None:
    names = list(times)
    print(f"\n## Commands: wall time, median of {len(next(iter(times[names[0]].values())))} interleaved runs (s)\n")
    print(f"{'case':<28}" + "".join(f"{n:>10} {'x imports':>10}" for n in names))
    for case in times[names[0]]:
        row = f"{case:<28}"
        for n in names:
            med = statistics.median(times[n][case])
            row += f"{med:>10.3f} {med / statistics.median(times[n]['import the five libraries']):>10.2f}"
        print(row)


# --- the store ----------------------------------------------------------------------------------

def build_state(root: Path, groups: int, months: int) -> Path:
    """A steady-state state of `groups` groups: benchmarks/tick.py simulates a period of
    groups over `months`, and copies its final state to `groups` groups."""
    sys.path.insert(0, str(HERE))
    import tick  # noqa: E402 (benchmarks/tick.py: its builders, not a copy of them)

    t0 = time.perf_counter()
    sim = tick.run_years(root, tick.PERIOD, months)
    state = root / f"steady-{groups}.json"
    tick.clone_state(sim["state"], sim["groups"], state, groups)
    print(f"built {state} ({state.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return state


def open_store(tree: Path, state: Path, scratch: Path) -> dict:
    out = subprocess.run([str(python_of(tree)), "-c", OPEN, str(state)], cwd=scratch, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"opening the store with {tree} failed: {out.stderr[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def store(trees: dict[str, Path], state: Path, scratch: Path, rounds: int) -> dict[str, list[dict]]:
    for tree in trees.values():
        open_store(tree, state, scratch)  # warm the page cache; the first open creates the secret
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(open_store(tree, state, scratch))
    return runs


def print_store(runs: dict[str, list[dict]], state: Path) -> None:
    names = list(runs)
    print(f"\n## Opening the store: {state.stat().st_size / 2**20:.1f} MiB, "
          f"{runs[names[0]][0]['outbox']} outbox records; median of {len(runs[names[0]])} interleaved runs\n")
    print(f"{'tree':<6} {'open s':>7} {'(min-max)':>13} {'CPU s':>6} {'in gc s':>8} {'peak RSS MiB':>13} "
          f"{'RSS after MiB':>14} {'imports MiB':>12}")
    for n in names:
        rs = runs[n]
        opened = [r["open"] for r in rs]
        med = {k: statistics.median(r[k] for r in rs) for k in ("cpu", "gc", "hwm", "rss", "hwm_before")}
        print(f"{n:<6} {statistics.median(opened):>7.2f} {f'({min(opened):.2f}-{max(opened):.2f})':>13} "
              f"{med['cpu']:>6.2f} {med['gc']:>8.2f} {med['hwm'] / 1024:>13.0f} {med['rss'] / 1024:>14.0f} "
              f"{med['hwm_before'] / 1024:>12.0f}")
    if len(names) == 2:
        a, b = (runs[n] for n in names)
        ratio = {k: statistics.median(r[k] for r in b) / statistics.median(r[k] for r in a)
                 for k in ("open", "cpu", "hwm", "rss")}
        print(f"\n{names[1]} / {names[0]}: time {ratio['open']:.2f}x, CPU {ratio['cpu']:.2f}x, "
              f"peak RSS {ratio['hwm']:.2f}x, RSS after opening {ratio['rss']:.2f}x")


def machine() -> str:
    return f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, help="a base checkout with its own .venv, measured beside this one")
    p.add_argument("--only", choices=("commands", "store"))
    p.add_argument("--keep", type=Path, help="build the state here, or reuse the one built there before")
    p.add_argument("--quick", action="store_true", help="small sizes, few rounds: does the benchmark still run")
    args = p.parse_args(argv)
    trees = {"base": args.base.resolve()} if args.base else {}
    trees["new"] = ROOT
    for tree in trees.values():
        if not python_of(tree).exists():
            raise SystemExit(f"{tree}: no .venv/bin/python; create the checkout's virtualenv first")
    print(f"# start-up benchmark, {machine()}")
    for name, tree in trees.items():
        rev = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        print(f"# {name}: {tree} at {rev.stdout.strip()[:80]}")
    with tempfile.TemporaryDirectory(prefix="friendtor-startup-") as tmp:
        scratch = Path(tmp)
        if args.only in (None, "commands"):
            print_commands(commands(trees, scratch, 2 if args.quick else ROUNDS))
        if args.only in (None, "store"):
            groups, months = (10, 2) if args.quick else (GROUPS, 12)
            keep = args.keep.resolve() if args.keep else scratch / "state"
            state = keep / f"steady-{groups}.json"
            if not state.exists():
                keep.mkdir(parents=True, exist_ok=True)
                state = build_state(keep, groups, months)
            print_store(store(trees, state, scratch, 2 if args.quick else STORE_ROUNDS), state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
