"""The alerts the coordinators get when something needs a person: a member's message failed
for good, or members' calendars cannot be read until someone acts. Pure; the planner plans
them (calendar problems from the availability it read), the tick asks for failure alerts
after delivery (from the records that failed)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.outbox import FailurePayload, Kind, OutboxRecord, Send


@dataclass(frozen=True)
class CalendarProblem:
    """Calendars of a group that cannot be read until someone acts (revoked sign-in, no permission)."""

    group: str
    reason: str
    members: tuple[str, ...]   # their emails


def calendar_alerts(group: Group, availability: Mapping[str, Availability],
                    now: datetime) -> tuple[list[CalendarProblem], list[Send]]:
    """Calendars that cannot be read until someone acts, and one email to the coordinators per
    distinct problem (the key holds a hash of it), so they hear of each fix to make once."""
    problems: dict[str, list[str]] = {}
    for email, avail in availability.items():
        if avail.needs_fix and avail.unknown:
            problems.setdefault(avail.unknown, []).append(email)
    found, sends = [], []
    for reason, emails in problems.items():
        found.append(CalendarProblem(group.id, reason, tuple(emails)))
        names = ", ".join(m.name for m in group.members if m.email in emails)
        failure = FailurePayload("calendar", "", "", reason, now.astimezone(group.tz).date(),
                                 f"friendtor cannot read the calendars of {names}, so they "
                                 "count as unknown when it looks for meeting times.")
        key = f"calendar-problem:{group.id}:{hashlib.sha256(reason.encode()).hexdigest()[:16]}"
        sends += [Send(key, Kind.ALERT, group.id, m.email, m.name, m.timezone, now, failure)
                  for m in group.members if m.email in group.coordinators]
    return found, sends


def failure_alerts(config: Config, failed: Iterable[OutboxRecord], planned: AbstractSet[str],
                   now: datetime) -> tuple[Send, ...]:
    """The alerts telling each group's coordinators, once, that a member did not get a message:
    one per record in `failed` (sends that failed for good at `now`, with their error); none
    already in `planned` (the sids in the outbox)."""
    out: dict[str, Send] = {}
    for record in failed:
        group = config.groups.get(record.group)
        if group is None or record.is_failure_alert:
            continue  # a report that itself failed is not reported again (no loops)
        failure = FailurePayload(record.kind, record.name, record.recipient, record.last_error or "",
                                 now.astimezone(group.tz).date())
        for m in group.members:
            if m.email in group.coordinators and m.email != record.recipient:
                s = Send(f"failure:{record.key}:{record.recipient}", Kind.ALERT, group.id, m.email, m.name,
                         m.timezone, now, failure)
                if s.sid not in planned:
                    out.setdefault(s.sid, s)
    return tuple(out.values())
