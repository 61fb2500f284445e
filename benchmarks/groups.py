"""Benchmark: planning groups that share their members (issue 15, point 1).

    python benchmarks/groups.py            # 40 groups, 7 interleaved rounds
    python benchmarks/groups.py --quick    # 10 groups, 2 rounds: a smoke test

The issue's case: N groups that all share the same 10 members (five zones, New York to
Kolkata), monthly, Tue-Thu of weeks 2-3, no calendars. One `plan` at 2027-02-16 12:00 UTC,
when February's and March's windows are open for every group, on an empty state.

Two configs, planned alternately (interleaved, so the loaded machine's drift hits both):
- shared: the N groups list the same 10 addresses, so each group's search sees the meetings
  of the groups planned before it as busy time for all 10;
- apart: the same groups, but each with its own 10 addresses (what the planner did for every
  config before: each group as if alone).

It prints the median wall-clock time of one `plan` for each, their ratio, and what came out
for March (for "apart" also read as if its groups were the same 10 people, i.e. the schedule
the planner made before it knew about shared members): distinct start instants, meetings scheduled, groups left without a time (their
coordinators get a no-quorum alert), and how many pairs of one person's meetings overlap.
It asserts nothing about time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path

from scheduler.core.config import Config, Group, Service
from scheduler.core.planner import StateView, plan

ZONES = ["America/New_York", "America/Chicago", "Europe/London", "Europe/Berlin", "Asia/Kolkata"]
NOW = datetime(2027, 2, 16, 12, tzinfo=UTC)


def config(n: int, shared: bool) -> Config:
    groups = {}
    for i in range(n):
        gid = f"g{i:03d}"
        members = [{"name": f"Member {k}", "timezone": ZONES[k % len(ZONES)],
                    "email": f"m{k}@uni.example" if shared else f"m{k}.{gid}@uni.example"} for k in range(10)]
        groups[gid] = Group.model_validate({
            "id": gid, "name": f"Group {i}", "timezone": "America/New_York", "started": date(2026, 6, 2),
            "coordinators": [members[0]["email"]], "members": members,
            "meetings": {"weekdays": ["tue", "wed", "thu"], "weeks_of_month": [2, 3]},
        })
    return Config(folder=Path("/nonexistent"), service=Service(), groups=groups)


def one_plan(cfg: Config):
    start = time.perf_counter()
    p = plan(cfg, StateView.empty(), NOW, lambda g, w: {})
    return time.perf_counter() - start, p


def outcome(cfg: Config, p) -> dict:
    march = [m for m in p.meetings if m.cycle == "2027-03"]
    by_person: dict[str, list] = {}
    for m in march:
        for member in cfg.groups[m.group].members:
            by_person.setdefault(member.email, []).append(m)
    clashes = sum(1 for ms in by_person.values() for i, a in enumerate(ms) for b in ms[i + 1:]
                  if a.start < b.end and b.start < a.end)
    return {"instants": len({m.start for m in march}), "scheduled": len(march),
            "no time": len(cfg.groups) - len(march), "overlapping pairs": clashes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, rounds = (10, 2) if args.quick else (40, 7)
    configs = {"shared": config(n, True), "apart": config(n, False)}
    times: dict[str, list[float]] = {k: [] for k in configs}
    plans = {}
    for _ in range(rounds):
        for name, cfg in configs.items():
            seconds, plans[name] = one_plan(cfg)
            times[name].append(seconds)
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{n} groups of 10 members, {rounds} interleaved rounds")
    for name in configs:
        print(f"  {name:6s}: plan median {statistics.median(times[name]) * 1000:8.1f} ms   "
              f"March: {outcome(configs[name], plans[name])}")
    # "apart" is the old behaviour's schedule; read as the same 10 people, this is what they got.
    print(f"  apart's schedule, were they the same 10 people: {outcome(configs['shared'], plans['apart'])}")
    ratio = statistics.median(times["shared"]) / statistics.median(times["apart"])
    print(f"  shared / apart: {ratio:.2f}")


if __name__ == "__main__":
    main()
