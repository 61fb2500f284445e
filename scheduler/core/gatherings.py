"""Gathering in person at conferences. Pure.

Groups that meet by video value meeting face to face when several members attend the same
conference anyway. When at least `gathering_min` members of a group list one conference, the
planner schedules a *gathering*: a meeting of the group stored like any other, under the cycle
key `gathering-<conference slug>` (cycle keys of regular meetings start with a year, so the two
never collide), so that `reschedule --cycle gathering-pas-2027` and `cancel` move or cancel it
with the same UID and a higher SEQUENCE.

Only the attending members are invited; the invite's LOCATION is the conference's city, and
its time is local to the conference's zone. The proposed start is `gathering_time` on the
conference's *first full day*: the day after the opening day (many people arrive on the opening
day, and its programme starts late), except for a conference of one or two days, whose last
day is a travel day, where it is the opening day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.core.config import Conference, Config, Group, Member
from scheduler.core.fields import did_you_mean, slug

PREFIX = "gathering-"
SEND_AT = time(9, 0)   # the gathering email goes out at 09:00 in the group's zone, like reviews


def is_gathering(cycle: str) -> bool:
    return cycle.startswith(PREFIX)


def cycle_of(conference: Conference) -> str:
    return PREFIX + slug(conference.name)


def conference_of(config: Config, cycle: str) -> Conference | None:
    """The conference a gathering's cycle key names; None for a regular cycle, or a conference
    no longer in service.toml."""
    if not is_gathering(cycle):
        return None
    return next((c for c in config.service.conferences if cycle_of(c) == cycle), None)


def attends(member: Member, conference: Conference) -> bool:
    """Names are compared as ids ("pas 2027" is "PAS 2027"), as validation matched them."""
    return any(slug(name) == slug(conference.name) for name in member.conferences)


def attendees(group: Group, conference: Conference) -> tuple[Member, ...]:
    return tuple(m for m in group.members if attends(m, conference))


def first_full_day(conference: Conference) -> date:
    """The opening day's next day; the opening day itself for a conference of one or two days."""
    if (conference.end - conference.start).days >= 2:
        return conference.start + timedelta(days=1)
    return conference.start


def proposed_start(group: Group, conference: Conference) -> datetime:
    """`gathering_time` on the first full day, in the conference's zone, as UTC. A time the
    clocks skip that day is read as zoneinfo does (fold 0): after the jump."""
    zone = ZoneInfo(conference.timezone)
    local = datetime.combine(first_full_day(conference), group.gathering_time, zone)
    return local.astimezone(UTC).astimezone(zone).astimezone(UTC)


def email_due(group: Group, conference: Conference) -> datetime:
    """When the gathering email is due: 09:00 (group's zone), `gathering_days_before` the opening day."""
    return datetime.combine(conference.start - timedelta(days=group.gathering_days_before), SEND_AT, group.tz)


def due_gatherings(config: Config, group: Group) -> list[tuple[Conference, tuple[Member, ...]]]:
    """Each conference enough of the group attends, with who attends."""
    out = []
    for conference in config.service.conferences:
        who = attendees(group, conference)
        if len(who) >= group.gathering_min:
            out.append((conference, who))
    return out


def conference_references(members: object, conferences: Sequence[Conference]) -> list[tuple[str, str]]:
    """Each member's `conferences` must name one in service.toml, as (field path, message); read
    from a group file's data so they are reported beside its other problems."""
    problems: list[tuple[str, str]] = []
    names = [c.name for c in conferences]
    known = {slug(n) for n in names}
    for i, member in enumerate(members if isinstance(members, list | tuple) else (), 1):
        listed = member.get("conferences") if isinstance(member, Mapping) else None
        for j, name in enumerate(listed if isinstance(listed, list | tuple) else (), 1):
            if not isinstance(name, str) or not name.strip() or slug(name) in known:
                continue  # not text: the field's own check says so
            where = f"members[{i}].conferences[{j}]"
            if not names:
                problems.append((where, f"\"{_cut(name)}\" is not a conference friendtor knows: service.toml "
                                 "lists none; add a [[conferences]] table with name, city, timezone, start, end"))
            else:
                problems.append((where, f"\"{_cut(name)}\" is not a conference in service.toml"
                                 f"{did_you_mean(name, names)}; known: {', '.join(names)}"))
    return problems


def _cut(text: str, limit: int = 60) -> str:
    text = text.strip().encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def gathering_context(config: Config, group: Group, meeting: Any, recipient_zone: str) -> dict[str, Any] | None:
    """What an email says about a gathering: the conference, the city, the time in the
    conference's zone and in the recipient's, and who of the group is coming (by name)."""
    conference = conference_of(config, meeting.cycle)
    return None if conference is None else describe(conference, group, meeting, recipient_zone)


def describe(conference: Conference, group: Group, meeting: Any, recipient_zone: str) -> dict[str, Any]:
    """`gathering_context` for a known conference (also the templates' sample data)."""
    zone = ZoneInfo(conference.timezone)
    s, e = meeting.start.astimezone(zone), meeting.end.astimezone(zone)
    mine = meeting.start.astimezone(ZoneInfo(recipient_zone))
    return {
        "conference": conference.name,
        "city": conference.city,
        "timezone": conference.timezone,
        "dates": f"{_day(conference.start)} to {_day(conference.end)}",
        "when": f"{s:%A} {s.day} {s:%B %Y}, {s:%H:%M}–{e:%H:%M}",
        "date": _day(s.date()),
        "your_time": (f"{mine:%A} {mine.day} {mine:%B}, {mine:%H:%M} in {recipient_zone}"
                      if mine.utcoffset() != s.utcoffset() else None),
        "coming": [m.name for m in attendees(group, conference)],
        "cancelled": bool(meeting.cancelled),
        "sort": meeting.start.isoformat(),
    }


def _day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"
