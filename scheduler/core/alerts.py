"""The alerts the coordinators get when something needs a person: a member's message failed
for good, or members' calendars cannot be read until someone acts. Pure; the planner plans
them (calendar problems from the availability it read), the tick asks for failure alerts
after delivery (from the records that failed)."""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class GroupProblem:
    """A group that could not be planned: an exception while planning it (a bug, or a value
    friendtor cannot compute with). Said in friendtor's words, never the exception's text
    (which may quote a file); `detail` is the traceback, for the operator's debug log only."""

    group: str
    reason: str            # "internal error (OverflowError in _plan_nudges)"
    detail: str = field(default="", compare=False, repr=False)

    @classmethod
    def of(cls, group: str, exc: BaseException) -> GroupProblem:
        # Where it happened (the innermost function of friendtor's own) tells problems apart,
        # so that each distinct one is alerted once, and helps whoever reads the log.
        where = ""
        for frame in traceback.extract_tb(exc.__traceback__):
            if "/scheduler/" in frame.filename.replace("\\", "/"):
                where = frame.name
        reason = f"internal error ({type(exc).__name__}{f' in {where}' if where else ''})"
        return cls(group, reason, "".join(traceback.format_exception(exc)))


def group_alerts(group: Group, problem: GroupProblem, now: datetime) -> list[Send]:
    """One email to the group's coordinators per distinct planning problem (the key holds a
    hash of it): the group is not planned until it is fixed, and they hear of it once."""
    failure = FailurePayload("group", "", "", problem.reason, now.astimezone(group.tz).date(),
                             f"friendtor could not plan {group.name}: no invitation, agenda or reminder of "
                             "this group goes out until the problem is fixed. It may come from an extreme "
                             f"value in groups/{group.id}.toml, or be a bug in friendtor; the operator's "
                             "log names it.")
    key = f"group-problem:{group.id}:{hashlib.sha256(problem.reason.encode()).hexdigest()[:16]}"
    return [Send(key, Kind.ALERT, group.id, m.email, m.name, m.timezone, now, failure)
            for m in group.members if m.email in group.coordinators]


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
