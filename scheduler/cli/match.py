"""`friendtor match ROSTER.toml --size MIN-MAX --out DIR`: form groups that can actually meet,
write one group file each into DIR/groups/, and report how they compare with a random split.

The work is `core/matchgroups.match` (pure); the files are `app/rosterfile`; this module
parses the arguments, reads the clock for the default month, and prints the report.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from scheduler.core.errors import ConfigError, Problem, UsageError
from scheduler.core.fields import FIRST_YEAR, LAST_YEAR

MAX_SIZE = 50   # a peer group of more is a lecture; the literature says 5-9


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,6})\s*(?:-\s*(\d{1,6})\s*)?", text)
    if not m:
        raise UsageError(f"--size: {text!r} is not a size; write MIN-MAX, e.g. --size 5-8 (or one number, --size 6)")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if lo > hi:
        raise UsageError(f"--size: {lo}-{hi}: MIN is larger than MAX; write it as {hi}-{lo}")
    if lo < 2:
        raise UsageError(f"--size: {text.strip()}: a peer group needs at least 2 people; e.g. --size 5-8")
    if hi > MAX_SIZE:
        raise UsageError(f"--size: {text.strip()}: at most {MAX_SIZE} people per group; peer groups of 5-9 work best")
    return lo, hi


def parse_month(text: str | None) -> tuple[int, int]:
    """--month YYYY-MM; by default the month after this one (the clock is read here, at the edge)."""
    if text is None:
        today = datetime.now(UTC).date()
        return (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise UsageError(f"--month: {text!r} is not a month; write YYYY-MM, e.g. 2027-03")
    if not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR - 1:
        raise UsageError(f"--month: {text.strip()} is too far from today to plan for; use a year from "
                         f"{FIRST_YEAR} to {LAST_YEAR - 1}")
    return int(m.group(1)), int(m.group(2))


def cmd_match(args: argparse.Namespace) -> int:
    from scheduler.app.rosterfile import check_out_folder, read_roster, write_groups
    from scheduler.core.matchgroups import match

    lo, hi = parse_size(args.size)
    year, month = parse_month(args.month)
    out = Path(args.out)
    check_out_folder(out)
    roster = read_roster(Path(args.roster))
    if len(roster.people) < lo:
        n = len(roster.people)
        raise ConfigError([Problem(args.roster, "people", f"{n} {'person' if n == 1 else 'people'} cannot make "
                                   f"one group of at least {lo}; add people or lower --size")])
    outcome = match(roster, lo, hi, year, month, args.seed)
    note = (f"Formed by `friendtor match` (groups of {lo}-{hi}, times checked in {outcome.month}, "
            f"seed {args.seed}).")
    paths = write_groups(out, outcome.formed, {p.email: p for p in roster.people}, note)
    people = {p.email: p for p in roster.people}
    print(as_json(outcome, paths, lo, hi) if args.json else as_text(outcome, paths, people, lo, hi, out))
    return 0


def _when(start: datetime | None) -> str:
    return f"{start:%a %d %b %H:%M} UTC" if start else "no time reaches the quorum"


def as_text(outcome, paths: list[Path], people: dict, lo: int, hi: int, out: Path) -> str:
    n = sum(len(f.group.members) for f in outcome.formed) + len(outcome.unplaced)
    lines = [f"{n} people, groups of {lo}-{hi}, meeting times checked over {outcome.month} (seed {outcome.seed}).",
             f"Wrote {len(paths)} group file{'s' if len(paths) != 1 else ''} to {out / 'groups'}; check each "
             f"mission and coordinator, then run: friendtor validate --config {out}", ""]
    rand = outcome.summary("random")
    for f, path in zip(outcome.formed, paths):
        m, g = f.metrics, f.group
        lines.append(f"{g.id}: {g.name} ({m.size} members, {m.institutions} institutions)")
        lines.append(f"  interest fit {m.interest_fit:.0%} (random split {rand['interest_fit']:.0%}); "
                     f"quorum can meet {m.quorum_hours:g} h in the month (random {rand['quorum_hours']:g} h); "
                     f"institutions per member {m.institutions / m.size:.2f} "
                     f"(random {rand['institutions_per_member']:.2f})")
        lines.append(f"  best time: {_when(f.best_start)}, {m.best} of {m.size} free")
        for email, why in f.cannot_come:
            lines.append(f"  cannot come then: {people[email].name} ({why})")
        lines.append("  members: " + "; ".join(f"{mb.name} ({mb.institution}, {mb.timezone})" for mb in g.members))
    if outcome.unplaced:
        lines += ["", f"Unplaced ({len(outcome.unplaced)}):"]
        lines += [f"  {u.name} <{u.email}>: {u.reason}" for u in outcome.unplaced]
    formed = outcome.summary("formed")
    lines += ["", "Compared with a random split of the same roster into the same sizes:",
              f"  {'':28}{'formed':>10}{'random':>10}"]
    for key, label in (("interest_fit", "interest fit"), ("institutions_per_member", "institutions per member"),
                       ("quorum_hours", "quorum hours in the month"),
                       ("free_at_best", "share free at the best time"), ("stage_fit", "same career stage"),
                       ("groups_reaching_quorum", "groups reaching quorum")):
        lines.append(f"  {label:28}{formed[key]:>10g}{rand[key]:>10g}")
    lines += ["", "Interests were compared ignoring case, spacing, punctuation and simple plurals."]
    for label, others in outcome.merged:
        lines.append(f"  counted as \"{label}\": " + ", ".join(f"\"{o}\"" for o in others))
    return "\n".join(lines)


def as_json(outcome, paths: list[Path], lo: int, hi: int) -> str:
    return json.dumps({
        "month": outcome.month, "seed": outcome.seed, "size": {"min": lo, "max": hi},
        "groups": [{
            "id": f.group.id, "file": str(path), "name": f.group.name, "mission": f.group.mission,
            "interest": f.interest, "timezone": f.group.timezone, "coordinator": f.group.coordinators[0],
            "members": [m.email for m in f.group.members],
            "interest_fit": f.metrics.interest_fit, "institutions": f.metrics.institutions,
            "quorum_hours": f.metrics.quorum_hours, "best_free": f.metrics.best,
            "best_start": f.best_start.isoformat() if f.best_start else None,
            "cannot_come": [{"email": e, "reason": r} for e, r in f.cannot_come],
        } for f, path in zip(outcome.formed, paths)],
        "unplaced": [{"email": u.email, "name": u.name, "reason": u.reason} for u in outcome.unplaced],
        "formed": outcome.summary("formed"), "random": outcome.summary("random"),
        "interests_merged": [{"label": label, "also": list(others)} for label, others in outcome.merged],
    }, indent=2, ensure_ascii=False)
