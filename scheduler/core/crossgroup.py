"""People in several groups: one group's meetings are busy time for its members in every other
group. Pure.

Members are matched by email (addresses are stored lower-case, so the match ignores case).
Privacy: another group's meeting is busy time for the shared member only, never for the rest of
the group. What the busy time is called depends on who reads it: `slots` (run by someone who
holds every group's file) names the other group ("Second Circle meeting"); anything that goes
into an email says only OTHER_GROUP, because an email must not tell one group about another.

Planning order: groups planned in one tick are planned in the order of their ids (their file
names, sorted), each seeing the meetings the ones before it scheduled. `sharing_sets` groups
the groups that share members, directly or through others: with several nodes, the groups of
one set must be planned by one node at a time (take their locks in `planning_order`, or plan
the set on one node), since a per-group lock alone would let two nodes pick the same hour for
the member they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from scheduler.core.availability import NO_CALENDAR, Availability, Busy
from scheduler.core.config import Config, Group
from scheduler.core.gatherings import attends, conference_of, is_gathering
from scheduler.core.meetings import Meeting

OTHER_GROUP = "another friendtor group's meeting"


def planning_order(config: Config) -> tuple[str, ...]:
    """The fixed order groups are planned in: by id."""
    return tuple(sorted(config.groups))


def shared_with(config: Config) -> dict[str, dict[str, frozenset[str]]]:
    """group id -> {other group id: the emails the two share}, for groups that share anyone."""
    by_email: dict[str, list[str]] = {}
    for gid in planning_order(config):
        for m in config.groups[gid].members:
            by_email.setdefault(m.email, []).append(gid)
    out: dict[str, dict[str, set[str]]] = {}
    for email, gids in by_email.items():
        for a in gids:
            for b in gids:
                if a != b:
                    out.setdefault(a, {}).setdefault(b, set()).add(email)
    return {a: {b: frozenset(e) for b, e in others.items()} for a, others in out.items()}


def sharing_sets(config: Config) -> tuple[tuple[str, ...], ...]:
    """The groups that share members, directly or through another group, each set in planning
    order; a group that shares nobody is a set of its own. What a multi-node backend locks together."""
    parent = {g: g for g in config.groups}

    def root(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    # Each group is joined to the first group of each of its members: linear in the members, where
    # joining every pair of groups that share someone (`shared_with`) is quadratic in the groups a
    # person is in (a coordinator in each of 10,000 groups: 10^8 pairs, at every tick).
    first: dict[str, str] = {}
    for gid in planning_order(config):
        for m in config.groups[gid].members:
            ra, rb = root(first.setdefault(m.email, gid)), root(gid)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    sets: dict[str, list[str]] = {}
    for g in planning_order(config):
        sets.setdefault(root(g), []).append(g)
    return tuple(tuple(s) for s in sorted(sets.values()))


def _invited(config: Config, meeting: Meeting) -> frozenset[str] | None:
    """Who a meeting takes: None for every member; a gathering takes only those attending."""
    if not is_gathering(meeting.cycle):
        return None
    group, conference = config.groups.get(meeting.group), conference_of(config, meeting.cycle)
    if group is None or conference is None:
        return frozenset()
    return frozenset(m.email for m in group.members if attends(m, conference))


def busy_elsewhere(config: Config, group: Group, meetings: Iterable[Meeting], lo: datetime, hi: datetime,
                   *, named: bool = False, shares: Mapping[str, Mapping[str, frozenset[str]]] | None = None
                   ) -> dict[str, tuple[Busy, ...]]:
    """Each of `group`'s members' busy time from other groups' meetings (not cancelled) that
    overlap [lo, hi). `named`: call it "<other group> meeting" (for `slots`), else OTHER_GROUP."""
    shares = shared_with(config) if shares is None else shares
    mine = shares.get(group.id, {})
    out: dict[str, list[Busy]] = {}
    for m in meetings:
        emails = mine.get(m.group)
        if not emails or m.cancelled or m.end <= lo or m.start >= hi:
            continue
        invited = _invited(config, m)
        other = config.groups[m.group]
        label = (f"{other.name} {'gathering' if is_gathering(m.cycle) else 'meeting'}" if named else OTHER_GROUP)
        for email in emails:
            if invited is None or email in invited:
                out.setdefault(email, []).append(Busy(m.start, m.end, label=label))
    return {e: tuple(b) for e, b in out.items()}


def with_busy(availability: Mapping[str, Availability], extra: Mapping[str, tuple[Busy, ...]]
              ) -> dict[str, Availability]:
    """`availability` with the extra busy time added (a member without a calendar gets one)."""
    if not extra:
        return dict(availability)
    out = dict(availability)
    for email, busy in extra.items():
        base = out.get(email, NO_CALENDAR)
        out[email] = replace(base, busy=base.busy + busy)
    return out


def clashes(config: Config, group: Group, meetings: Iterable[Meeting], start: datetime, end: datetime,
            ) -> list[tuple[str, list[str]]]:
    """Other groups' meetings that [start, end) would collide with for a member `group` shares:
    (other group's name, the shared members' emails), for `reschedule`'s refusal."""
    found = busy_elsewhere(config, group, meetings, start, end, named=True)
    by_label: dict[str, list[str]] = {}
    for email, busy in sorted(found.items()):
        for b in busy:
            by_label.setdefault(b.label or OTHER_GROUP, [])
            if email not in by_label[b.label or OTHER_GROUP]:
                by_label[b.label or OTHER_GROUP].append(email)
    return sorted(by_label.items())


def combined_call(config: Config, group: Group, meeting: Meeting, email: str, due: datetime,
                  others: Iterable[Meeting], shares: Mapping[str, Mapping[str, frozenset[str]]]
                  ) -> tuple[tuple[str, str], ...] | None:
    """One call for items a week for a member in several groups.

    Of the calls due to `email` in the ISO week (their zone) of this one, the earliest (then in
    planning order) is sent, and names the others: the (group, cycle)s it also asks about. None:
    another group's call names this one, so none is sent for it. A meeting scheduled after that
    call was due could not be named in it, so it gets its own call (two that week, never none)."""
    groups = [gid for gid, emails in shares.get(group.id, {}).items() if email in emails]
    if not groups:
        return ()
    zone = config.groups[group.id].member(email).tz  # type: ignore[union-attr]
    week = due.astimezone(zone).isocalendar()[:2]
    calls = [(due, group.id, meeting)]
    for m in others:
        g = config.groups.get(m.group)
        if m.group not in groups or g is None or m.cancelled or is_gathering(m.cycle) or not g.meetings.call_days_before:
            continue
        at = m.start - timedelta(days=g.meetings.call_days_before)
        if at.astimezone(zone).isocalendar()[:2] == week and at < m.start - timedelta(days=g.meetings.agenda_days_before):
            calls.append((at, m.group, m))
    calls.sort(key=lambda t: (t[0], t[1]))
    first_at, first_group, first = calls[0]
    if first_group == group.id and first.cycle == meeting.cycle:
        return tuple((gid, m.cycle) for at, gid, m in calls[1:] if m.stamp <= first_at)
    return None if meeting.stamp <= first_at else ()
