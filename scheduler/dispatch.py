"""Turning an outbox record into the message to send now, or a reason not to. Pure.

Messages are rendered at send time from the current config, so a goal edited after the
agenda was planned still shows in it, and a retry carries the same Message-ID with the
freshest text. The misfire rules that depend on the meeting (never an agenda after the
meeting started, no invite to a cancelled meeting) are checked here again, because a send
may be retried long after it was planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from . import context as ctx
from .config import Config, Member
from .cycles import next_key, window
from .meetings import Meeting
from .outgoing import base_context, build
from .render import Templates
from .slots import Candidate, Verdict
from .store import parse_iso


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class World:
    """What rendering may look at besides the config: meetings and attendance."""

    meetings: Mapping[tuple[str, str], Meeting]
    attendance: Mapping[str, Sequence[dict[str, Any]]]  # group -> attendance records


def message_for(doc: Mapping[str, Any], config: Config, world: World, templates: Templates,
                now: datetime) -> EmailMessage | Skip:
    group = config.groups.get(doc["group"])
    if group is None:
        return Skip("the group is no longer in the config")
    kind, payload = doc["kind"], doc.get("payload", {})
    member = group.member(doc["recipient"])
    if member is None and kind not in ("cancel",):
        return Skip("no longer a member of the group")
    if kind == "cancel":  # an uninvite: the recipient has left the group
        member = member or Member.model_construct(name=doc["name"], email=doc["recipient"],
                                                  timezone=doc["timezone"], institution=None)
    base = base_context(config, group, member)

    def make(context: dict[str, Any], meeting: Meeting | None = None) -> EmailMessage:
        template = "failure" if "failure" in payload else kind
        return build(template, config=config, templates=templates, group=group,
                     recipient=member, context=context, key=doc["key"], now=now, meeting=meeting)

    meeting = world.meetings.get((group.id, payload["cycle"])) if "cycle" in payload else None
    if kind in ("invite", "update", "cancel", "agenda", "follow-up"):
        if meeting is None:
            return Skip("the meeting is not in the state")
        if kind in ("invite", "update", "agenda") and (meeting.cancelled or meeting.start <= now):
            return Skip("the meeting was cancelled" if meeting.cancelled else "the meeting has already started")
    if kind in ("invite", "update"):
        return make(ctx.for_invite(base, group, member, meeting), meeting)
    if kind == "cancel":
        if meeting.start <= now:
            return Skip("the meeting has already started")
        # Only this member's copy is cancelled; the meeting goes on for the others.
        gone = replace(meeting, sequence=meeting.sequence + 1, cancelled=True, stamp=parse_iso(doc["created"]))
        return make(ctx.for_invite(base, group, member, gone), gone)
    if kind == "agenda":
        return make(ctx.for_agenda(base, group, member, meeting, now.astimezone(group.tz).date()))
    if kind == "follow-up":
        following = next_key(group, meeting.cycle)
        nxt = world.meetings.get((group.id, following))
        next_day = (nxt.start.astimezone(group.tz).date() if nxt and not nxt.cancelled
                    else (window(group, following).dates or (None,))[0])
        return make(ctx.for_follow_up(base, group, member, meeting, next_day, now.astimezone(group.tz).date()))
    if kind == "nudge":
        due = date.fromisoformat(payload["due"])
        goals = [g for g in group.goals if g.member == member.email and g.due == due and not g.done]
        if not goals:
            return Skip("the goal is done or no longer in the config")
        return make(ctx.for_nudge(base, group, member, goals, now.astimezone(member.tz).date()))
    if kind in ("review", "year-end"):
        start, end = date.fromisoformat(payload["start"]), date.fromisoformat(payload["end"])
        records = attendance_by_meeting(world, group.id, start, end, group.tz)
        return make(ctx.for_review(base, group, start, end, records, year_end=kind == "year-end"))
    if kind == "alert":
        if "failure" in payload:
            failure = dict(payload["failure"])
            if not group.share_member_emails:
                # Coordinators see the name; the address stays in the config (servers often echo it).
                if failure.get("email"):
                    failure["error"] = failure["error"].replace(failure["email"], f"<{failure['name']}>")
                failure["email"] = None
            return make({**base, "failure": failure})
        options = [candidate_from_payload(o) for o in payload.get("options", [])]
        return make(ctx.for_alert(base, group, member, [date.fromisoformat(d) for d in payload["dates"]], options))
    return Skip(f"unknown kind {kind!r}")


def attendance_by_meeting(world: World, group: str, start: date, end: date,
                          zone: ZoneInfo = ZoneInfo("UTC")) -> list[dict[str, Any]]:
    """Recorded attendance of the group's meetings held between two dates (in `zone`, the
    group's), one record per meeting."""
    by_cycle: dict[str, dict[str, list[str]]] = {}
    for rec in world.attendance.get(group, ()):
        entry = by_cycle.setdefault(rec["cycle"], {"present": [], "absent": []})
        entry["present" if rec["present"] else "absent"].append(rec["email"])
    out = []
    for (g, cycle), meeting in world.meetings.items():
        day = meeting.start.astimezone(zone).date()
        if g == group and not meeting.cancelled and start <= day <= end and cycle in by_cycle:
            out.append({"date": day, **by_cycle[cycle]})
    return out


def candidate_from_payload(p: Mapping[str, Any]) -> Candidate:
    verdicts = tuple(Verdict(v["email"], v["status"], v["reason"], datetime.fromisoformat(v["local_start"]))
                     for v in p["verdicts"])
    return Candidate(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]), p["expected"],
                     p["attendance"], p["preferred"], p["viable"], verdicts)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: 5, 10, 20 minutes ... up to 6 hours."""
    return min(timedelta(minutes=5) * 2 ** max(0, attempts - 1), timedelta(hours=6))
