"""How `friendtor slots` shows its answer: a table for people, JSON for programs. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from scheduler.core.availability import Availability
from scheduler.core.config import Group
from scheduler.core.cycles import Window
from scheduler.core.history import COMFORT, Usual
from scheduler.core.slots import Candidate

MARK = {"available": "✓", "tentative": "?", "unavailable": "✗"}


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_json(group: Group, candidates: list[Candidate], availability: Mapping[str, Availability] | None = None) -> str:
    """The documented JSON shape: best candidate first, each member in exactly one list;
    `skipped`: for each member whose calendar was read with events left out, how many."""
    availability = availability or {}
    skipped = {m.email: availability[m.email].skipped for m in group.members
               if m.email in availability and availability[m.email].skipped and availability[m.email].unknown is None}
    return json.dumps({
        "group": group.id,
        "duration_minutes": group.meetings.duration_minutes,
        "skipped": skipped,
        "candidates": [{
            "start": _utc(c.start),
            "end": _utc(c.end),
            "attendance": c.attendance,
            "available": c.who("available"),
            "tentative": c.who("tentative"),
            "unavailable": {v.email: v.reason for v in c.verdicts if v.status == "unavailable"},
            "local": {v.email: v.local_start.isoformat() for v in c.verdicts},
        } for c in candidates],
    }, indent=2, ensure_ascii=False)


def _day(d) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def as_table(group: Group, window: Window, candidates: list[Candidate],
             burden: Mapping[str, float] | None = None, usual: Usual | None = None,
             availability: Mapping[str, Availability] | None = None) -> str:
    """The table `friendtor slots` prints. Pass the `burden` and `usual` given to find_slots
    (a `history.Burden`, a `history.Usual`) so the last line can say whom a fairer choice spared,
    or that it keeps to the group's usual time; and the `availability` it was given, so events
    left out of a member's calendar are mentioned."""
    table = _table(group, window, candidates, burden, usual)
    notes = skipped_notes(group, availability or {})
    return "\n".join([table, "", *notes]) if notes else table


def skipped_notes(group: Group, availability: Mapping[str, Availability]) -> list[str]:
    """'Note: Ana Lima's calendar: 1 event could not be read (left out; the rest counts).'
    In friendtor's words: the calendar's own text is never shown."""
    notes = []
    for m in group.members:
        avail = availability.get(m.email)
        if avail is not None and avail.skipped and avail.unknown is None:
            n = avail.skipped
            notes.append(f"Note: {m.name}'s calendar: {n} event{'s' if n != 1 else ''} could not be read "
                         "(left out; the rest of the calendar counts)")
    return notes


def _table(group: Group, window: Window, candidates: list[Candidate],
           burden: Mapping[str, float] | None, usual: Usual | None) -> str:
    zone = group.tz
    size = len(group.members)
    span = _day(window.first) if window.first == window.last else f"{_day(window.first)} – {_day(window.last)}"
    cycle = "" if window.key == "custom" else f"cycle {window.key}, "
    lines = [
        f"{group.name}: {group.meetings.duration_minutes}-minute meeting, {cycle}{span} ({group.timezone})",
        f"{size} members, quorum {group.meetings.quorum:.0%}"
        + (f", required: {', '.join(m.name for m in group.members if m.required)}"
           if any(m.required for m in group.members) else ""),
    ]
    if not candidates:
        lines += ["", "No time in this window when anyone can come. Widen it with --from/--to, "
                  "or check members' hours and weekdays."]
        return "\n".join(lines)
    names = {m.email: m for m in group.members}
    width = max(len(m.name) for m in group.members)
    zwidth = max(len(m.timezone) for m in group.members)
    for rank, c in enumerate(candidates, 1):
        start, end = c.start.astimezone(zone), c.end.astimezone(zone)
        verdict = "quorum met" if c.viable else "does NOT reach quorum or lacks a required member"
        lines += ["",
                  f"{rank}. {start:%a} {start.day} {start:%b %Y} {start:%H:%M}–{end:%H:%M} {group.timezone}"
                  f"  ({c.start:%H:%M} UTC)",
                  f"   expected attendance {_num(c.expected)} of {size} ({c.attendance:.0%}), {verdict}"]
        for v in c.verdicts:
            m = names[v.email]
            local = f"{v.local_start:%a %H:%M}"
            lines.append(f"   {MARK[v.status]} {m.name:<{width}}  {local}  {m.timezone:<{zwidth}}  {v.reason}".rstrip())
    lines += ["", "Why 1: " + why_best(candidates, size, group, burden, usual)]
    return "\n".join(lines)


def why_best(candidates: list[Candidate], size: int, group: Group | None = None,
             burden: Mapping[str, float] | None = None, usual: Usual | None = None) -> str:
    """One sentence on why the first candidate beat the second."""
    best = candidates[0]
    if len(candidates) == 1:
        return "it is the only time in the window that anyone can attend."
    second = candidates[1]
    if best.viable and not second.viable:
        return "it is the only option here that reaches quorum with every required member."
    if best.expected > second.expected:
        return (f"the most expected attendance in the window ({_num(best.expected)} of {size}, "
                f"against {_num(second.expected)} for the next best).")
    if best.preferred > second.preferred:
        return (f"as many can come as at the next option, and it falls in the preferred hours "
                f"of {best.preferred} member(s) rather than {second.preferred}.")
    if best.fairness < second.fairness:
        return ("it ties with the next option on attendance and preferred hours, and "
                + _spares(best.inconvenient, second.inconvenient, group, burden) + ".")
    if best.spared:
        return ("it ties with the next option on attendance and preferred hours; it was chosen over "
                "an earlier time as these because it "
                + _spares(best.inconvenient, best.spared, group, burden) + ".")
    if usual is not None and best.off_usual < second.off_usual:
        nearest = "is at" if best.off_usual == (0, 0) else "is nearest to"
        return (f"it ties with the next option on attendance, preferred hours and fairness, and {nearest} "
                f"the group's usual time ({usual}, {group.timezone if group else 'its zone'}).")
    return "it ties with the next option on attendance and preferred hours, and comes first."


def _spares(here: tuple[str, ...], there: tuple[str, ...], group: Group | None,
            burden: Mapping[str, float] | None) -> str:
    """'spares Ana Lima, who had 3 of the last 4 meetings outside their preferred hours':
    the burdened members inconvenienced `there` but not `here`."""
    weights = burden or {}
    spared = [e for e in there if e not in here and (burden is None or weights.get(e, 0) > 0)]
    spared.sort(key=lambda e: -weights.get(e, 0))
    if not spared:
        return "spares members who recently met at inconvenient times"
    counts = getattr(burden, "counts", {})
    parts = []
    for email in spared:
        member = group.member(email) if group else None
        name = member.name if member else email
        hours = ("their preferred hours" if member is None or member.preferred_hours is not None
                 else f"{COMFORT} local")
        if email in counts:
            k, n = counts[email]
            parts.append(f"{name}, who had {k} of the last {n} meeting{'s' if n != 1 else ''} outside {hours}")
        else:
            parts.append(f"{name}, who recently met outside {hours}")
    return "spares " + "; and ".join(parts)


def _num(x: float) -> str:
    return f"{x:g}"
