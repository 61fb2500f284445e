"""Benchmark: reading a config folder of many group files (`load_config`), as every command and a
node's start-up do.

    python benchmarks/configload.py                              # 1,000 and 10,000 groups, this checkout
    python benchmarks/configload.py --compare-with /tmp/old      # and another checkout, interleaved
    python benchmarks/configload.py --sizes 100 1000 --rounds 3  # other sizes, more rounds
    python benchmarks/configload.py --calendars                  # every member with a calendar file
    python benchmarks/configload.py --profile                    # cProfile of one load (smallest size)

The group files are benchmarks/tick.py's (`make_config`): 12 members in six zones, each with its
own address, hours and a holiday region, five goals, two agenda items, no calendar files. The
state folder (var/) exists, as on a node that has run once: the template check is then kept from
the previous command (scheduler/app/templates.py) and not part of what is measured here.
With --calendars, each member also names a calendar file of their own (calendars/g0001-m01.ics,
an empty calendar; 12 files a group): the loader checks that each is inside the config folder
and exists.

Each load runs in a fresh process (`python -c`, the checkout first on sys.path), as a command or
a node's start-up would: it times `load_config` alone (imports excluded), wall-clock
(`time.perf_counter`) and CPU (`time.process_time`), and prints a digest of the loaded Config
(its `model_dump` as sorted JSON, the folder left out), so two checkouts are seen to load the same
thing. With --compare-with, the checkouts alternate A B B A within each round, so that a change in
the machine's load falls on both. It prints numbers and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from tick import make_config, machine  # noqa: E402  (the group files of benchmarks/tick.py)

CHILD = r"""
import gc, hashlib, json, resource, sys, time
from pathlib import Path
from scheduler.app.loader import load_config
import scheduler
folder = Path(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
config = load_config(folder)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
doc = config.model_dump(mode="json")
doc.pop("folder")
digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()[:16]
print(json.dumps({"wall": wall, "cpu": cpu, "groups": len(config.groups), "digest": digest,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "code": str(Path(scheduler.__file__).parent.parent)}))
"""

PROFILE = r"""
import cProfile, pstats, sys
from pathlib import Path
from scheduler.app.loader import load_config
cProfile.run("load_config(Path(sys.argv[1]))", sys.argv[2])
stats = pstats.Stats(sys.argv[2])
stats.sort_stats("tottime").print_stats(18)
stats.sort_stats("cumulative").print_stats(25)
"""


def with_calendar_files(folder: Path) -> None:
    """Give each member of the group files a calendar file of their own."""
    (folder / "calendars").mkdir()
    for path in sorted((folder / "groups").glob("*.toml")):
        count = 0

        def calendar(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            name = f"calendars/{path.stem}-m{count:02d}.ics"
            (folder / name).write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nEND:VCALENDAR\r\n")
            return f"{match.group(0)}calendar = {json.dumps(name)}\n"

        path.write_text(re.sub(r"\[\[members\]\]\n", calendar, path.read_text()))


def one_load(checkout: Path, folder: Path) -> dict:
    # cwd outside any checkout and PYTHONPATH first: the child imports `scheduler` from `checkout`.
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], cwd=tempfile.gettempdir(), env=env,
                         check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    if Path(got["code"]).resolve() != checkout.resolve():
        raise SystemExit(f"the child loaded scheduler from {got['code']}, not {checkout}")
    return got


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def summary(runs: list[dict]) -> str:
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    return (f"wall {wall:6.2f} s, CPU {cpu:6.2f} s (median of {len(runs)}; "
            f"wall {', '.join(format(r['wall'], '.2f') for r in runs)}), peak RSS {max(r['rss_mib'] for r in runs):.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per size (each: A B B A, or A A alone)")
    parser.add_argument("--compare-with", type=Path, help="another checkout (e.g. `git archive main` unpacked)")
    parser.add_argument("--calendars", action="store_true", help="every member with a calendar file of their own")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary of one load")
    parser.add_argument("--keep", type=Path, help="build the folders here and keep them (reused when present)")
    args = parser.parse_args(argv)

    checkouts = {"this": ROOT}
    if args.compare_with:
        checkouts = {"before": args.compare_with.resolve(), "after": ROOT}
    work = args.keep or Path(tempfile.mkdtemp(prefix="friendtor-configload-"))
    print(f"machine: {machine()}")
    print(f"group files: benchmarks/tick.py's, 12 members each{', each with a calendar file' if args.calendars else ''}; "
          f"one load per fresh process; load average {load_average()}")
    try:
        for n in args.sizes:
            folder = work / f"groups-{n}{'-calendars' if args.calendars else ''}"
            if not (folder / "groups").is_dir():
                make_config(folder, n)
                (folder / "var").mkdir(exist_ok=True)
                if args.calendars:
                    with_calendar_files(folder)
            one_load(ROOT, folder)  # untimed: the first load checks the templates and keeps the answer in var/
            runs: dict[str, list[dict]] = {name: [] for name in checkouts}
            names = list(checkouts)
            for _ in range(args.rounds):
                for name in names + names[::-1]:  # A B B A
                    runs[name].append(one_load(checkouts[name], folder))
            print(f"{n} groups (load average after: {load_average()}):")
            for name, got in runs.items():
                digests = {r["digest"] for r in got}
                print(f"  {name:>6}: {summary(got)}; Config digest {', '.join(sorted(digests))}")
            if len(checkouts) == 2:
                before, after = runs["before"], runs["after"]
                for what in ("wall", "cpu"):
                    ratio = statistics.median(a[what] for a in after) / statistics.median(b[what] for b in before)
                    print(f"  after/before, {what}: {ratio:.2f} ({1 / ratio:.1f}x faster)")
                same = {r["digest"] for r in before} == {r["digest"] for r in after}
                print(f"  same Config loaded: {'yes' if same else 'NO'}")
        if args.profile:
            folder = work / f"groups-{min(args.sizes)}{'-calendars' if args.calendars else ''}"
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            print(f"cProfile of one load of {min(args.sizes)} groups (this checkout):")
            subprocess.run([sys.executable, "-c", PROFILE, str(folder), str(work / "load.prof")],
                           cwd=tempfile.gettempdir(), env=env, check=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
