"""Benchmark: how much better `friendtor match` does than a random split, and how long it takes.

    python benchmarks/match.py            # rosters of 30, 300 and 3,000 people
    python benchmarks/match.py --quick    # 30 and 300 only: a smoke test that it still runs

The rosters are synthetic and deterministic (`random.Random(SEED)`): people in twelve zones
from Auckland to Los Angeles (half-hour zones, both hemispheres' DST), working hours of 7 to 10
hours starting between 07:00 and 10:00 local, an institution drawn from n/4 (three large ones take a
fifth of the roster, the rest spread evenly), one of three career stages (some left blank), and one to three of eight
interests, each written in one of several spellings ("Grant writing", "grant-writing",
"Grants writing"...). Groups are 5-8 people; meeting times are checked over March 2027 (the
US and UK clock changes fall inside it).

For each roster it prints, for the formed groups and for a random split of the same roster
into the same sizes (the baseline `match` itself reports): interest fit, institutions per
member, the share of members free at the group's best time, the share at the group's most
common career stage, groups reaching quorum, and hours of the month at which the quorum can
meet. Then the time taken: the search alone (`matching.form`: bitmaps, seeding, local search)
and the whole `match` (the search again, plus the slot finder's check of each formed group),
one run each, as wall time (`time.perf_counter`) and this process's CPU time
(`time.process_time`, the better guide on a shared machine). It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time

from scheduler.core.matchgroups import match
from scheduler.core.matching import form
from scheduler.core.roster import Roster

SEED = 20270301
ZONES = ("America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York", "America/St_Johns",
         "Europe/London", "Europe/Berlin", "Africa/Nairobi", "Asia/Kolkata", "Asia/Tokyo",
         "Australia/Adelaide", "Pacific/Auckland")
ZONE_WEIGHTS = (10, 4, 8, 12, 1, 8, 6, 2, 4, 2, 2, 2)
INTERESTS = (("Grant writing", "grant-writing", "Grants writing"), ("Work-life integration", "work life integration"),
             ("Quality improvement", "quality-improvement", "QI"), ("Medical education", "medical-education"),
             ("Leadership",), ("Clinical research", "clinical research"), ("Promotion", "promotions"),
             ("Parenting in medicine", "parenting-in-medicine"))
STAGES = ("Junior faculty", "Mid-career", "Senior", None)


def make_roster(n: int, rng: random.Random) -> Roster:
    institutions = max(2, n // 4)
    people = []
    for i in range(n):
        start = rng.choice((7, 8, 8, 9, 9, 10))
        length = rng.choice((7, 8, 8, 9, 10))
        topics = rng.sample(range(len(INTERESTS)), rng.choice((1, 1, 2, 3)))
        p = {"name": f"Person {i:05d}", "email": f"p{i:05d}@bench.example",
             "institution": f"Institution {rng.randint(1, 3) if rng.random() < 0.2 else rng.randint(1, institutions)}",
             "timezone": rng.choices(ZONES, ZONE_WEIGHTS)[0],
             "hours": f"{start:02d}:00-{start + length:02d}:00",
             "interests": [rng.choice(INTERESTS[t]) for t in topics]}
        stage = rng.choice(STAGES)
        if stage:
            p["stage"] = stage
        people.append(p)
    return Roster.model_validate({"people": people})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    sizes = (30, 300) if ap.parse_args().quick else (30, 300, 3000)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")
    keys = ("interest_fit", "institutions_per_member", "free_at_best", "stage_fit", "groups_reaching_quorum",
            "quorum_hours")
    for n in sizes:
        roster = make_roster(n, random.Random(SEED + n))
        c0, t0 = time.process_time(), time.perf_counter()
        _, _, _, evaluations = form(roster.people, 5, 8, 2027, 3, 1)
        c1, t1 = time.process_time(), time.perf_counter()
        out = match(roster, 5, 8, 2027, 3, 1)
        c2, t2 = time.process_time(), time.perf_counter()
        formed, rand = out.summary("formed"), out.summary("random")
        print(f"\n{n} people, {len(out.formed)} groups of 5-8, {len(out.unplaced)} unplaced, "
              f"{evaluations:,} changes weighed")
        print(f"  {'':26}{'formed':>9}{'random':>9}")
        for k in keys:
            print(f"  {k:26}{formed[k]:>9g}{rand[k]:>9g}")
        slot_finder_ok = sum(f.best_start is not None for f in out.formed)
        print(f"  slot finder: {slot_finder_ok} of {len(out.formed)} formed groups have a time reaching quorum")
        print(f"  time: search {t1 - t0:.2f} s wall / {c1 - c0:.2f} s CPU; "
              f"whole match {t2 - t1:.2f} s wall / {c2 - c1:.2f} s CPU")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
