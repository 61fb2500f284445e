"""Simulation: how inconvenient meeting times are spread over a year, fair ranking vs earliest.

    python benchmarks/fairness.py                  # print the table
    python benchmarks/fairness.py --write-docs     # also refresh the table in docs/scheduling.md

A monthly group of five members whose zones span more than 10 hours (Los Angeles, New
York, London, Kolkata, Sydney), meeting on a Tuesday, Wednesday or Thursday of weeks 2-3,
60 minutes on a 15-minute grid, through 2027 (so every DST change on both hemispheres falls
inside). No calendars: the choice is made on hours, weekdays and public holidays alone,
so the only thing that differs between the two policies is the ranking.

Each month the pure slot finder ranks that month's window twice over two separate
histories:
- "earliest": no burden, i.e. the earliest of the slots with the best attendance and
  preferred hours (what friendtor did before fairness);
- "fair": with each member's burden from the meetings this policy already chose.
The best viable candidate is taken, as the planner does. For each member we count the
meetings that were inconvenient for them (inside their hours but outside their preferred
hours) and those they could not attend at all. Deterministic: no randomness, no clock.
Like every benchmark here it reports; `tests/test_fairness.py` asserts on the counts.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from scheduler.core.config import Group
from scheduler.core.cycles import next_key, window
from scheduler.core.history import inconvenient_for, recent_burden
from scheduler.core.slots import find_slots

MEMBERS = (
    {"name": "Lucia Reyes", "email": "lucia@ucla.example", "timezone": "America/Los_Angeles",
     "hours": "06:00-22:00", "preferred_hours": "08:00-17:00", "holidays": "US"},
    {"name": "Maya Chen", "email": "maya@nyu.example", "timezone": "America/New_York",
     "hours": "06:00-22:00", "preferred_hours": "09:00-17:00", "holidays": "US"},
    {"name": "Tom Hughes", "email": "tom@ucl.example", "timezone": "Europe/London",
     "hours": "07:00-22:00", "preferred_hours": "09:00-18:00", "holidays": "GB-ENG"},
    {"name": "Ananya Das", "email": "ananya@aiims.example", "timezone": "Asia/Kolkata",
     "hours": "07:00-23:00", "preferred_hours": "09:00-18:00", "holidays": "IN"},
    {"name": "Jack Wilson", "email": "jack@usyd.example", "timezone": "Australia/Sydney",
     "hours": "06:00-22:00", "preferred_hours": "08:00-18:00", "holidays": "AU-NSW"},
)
FIRST_CYCLE, CYCLES = "2027-01", 12


def year_group() -> Group:
    return Group.model_validate({
        "id": "five-zones", "name": "Five Zones", "timezone": "Europe/London", "started": date(2026, 12, 1),
        "coordinators": [MEMBERS[1]["email"]], "members": list(MEMBERS),
        "meetings": {"cadence": "monthly", "weekdays": ["tue", "wed", "thu"], "weeks_of_month": [2, 3],
                     "duration_minutes": 60, "quorum": 0.5},
    })


@dataclass(frozen=True)
class Tally:
    policy: str
    meetings: tuple[tuple[datetime, datetime], ...]
    inconvenient: dict[str, int]   # email -> meetings inside their hours but outside preferred
    missed: dict[str, int]         # email -> meetings they could not attend

    @property
    def spread(self) -> int:
        return max(self.inconvenient.values()) - min(self.inconvenient.values())


def simulate(group: Group, *, fair: bool, first: str = FIRST_CYCLE, cycles: int = CYCLES) -> Tally:
    """One year of meetings chosen by one policy; the counts per member."""
    held: list[tuple[datetime, datetime]] = []
    key = first
    for _ in range(cycles):
        w = window(group, key)
        burden = recent_burden(group, held) if fair else None
        best = next((c for c in find_slots(group, w, {}, burden=burden) if c.viable), None)
        if best is not None:
            held.append((best.start, best.end))
        key = next_key(group, key)
    inconvenient = {m.email: 0 for m in group.members}
    missed = {m.email: 0 for m in group.members}
    for start, end in held:
        for m in group.members:
            verdict = inconvenient_for(m, start, end)
            if verdict is None:
                missed[m.email] += 1
            elif verdict:
                inconvenient[m.email] += 1
    return Tally("fair" if fair else "earliest", tuple(held), inconvenient, missed)


def table(group: Group, earliest: Tally, fair: Tally) -> str:
    """A Markdown table: per member, inconvenient (and missed) meetings under each policy."""
    rows = ["| member | zone | preferred (local) | earliest: inconvenient | earliest: missed "
            "| fair: inconvenient | fair: missed |",
            "|---|---|---|---:|---:|---:|---:|"]
    for m in group.members:
        rows.append(f"| {m.name} | {m.timezone} | {m.preferred_hours} | {earliest.inconvenient[m.email]} "
                    f"| {earliest.missed[m.email]} | {fair.inconvenient[m.email]} | {fair.missed[m.email]} |")
    rows.append(f"| **spread (max − min)** | | | **{earliest.spread}** | | **{fair.spread}** | |")
    rows.append(f"| total | | | {sum(earliest.inconvenient.values())} | {sum(earliest.missed.values())} "
                f"| {sum(fair.inconvenient.values())} | {sum(fair.missed.values())} |")
    return "\n".join(rows)


def meetings_list(group: Group, earliest: Tally, fair: Tally) -> str:
    zone = group.tz
    lines = ["| cycle | earliest (UTC) | fair (UTC) |", "|---|---|---|"]
    for (a, _), (b, _) in zip(earliest.meetings, fair.meetings):
        lines.append(f"| {a.astimezone(zone):%Y-%m} | {a:%a %d %b %H:%M} | {b:%a %d %b %H:%M} |")
    return "\n".join(lines)


BEGIN, END = "<!-- fairness-table:begin -->", "<!-- fairness-table:end -->"


def write_docs(path: Path, text: str) -> None:
    doc = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{path}: no {BEGIN} ... {END} markers to replace")
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", doc), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true", help="refresh the table in docs/scheduling.md")
    args = parser.parse_args(argv)
    group = year_group()
    earliest, fair = simulate(group, fair=False), simulate(group, fair=True)
    text = table(group, earliest, fair) + "\n\nMeetings chosen:\n\n" + meetings_list(group, earliest, fair)
    print(text)
    if args.write_docs:
        write_docs(Path(__file__).resolve().parents[1] / "docs" / "scheduling.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
