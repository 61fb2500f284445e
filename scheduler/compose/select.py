"""Turning an outbox record into the message to send now, or a reason not to. Pure.

Messages are rendered at send time from the current config, so a goal edited after the
agenda was planned still shows in it, and a retry carries the same Message-ID with the
freshest text. The misfire rules that depend on the meeting (never an agenda after the
meeting started, no invite to a cancelled meeting) are checked here again, because a send
may be retried long after it was planned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.compose import context as ctx
from scheduler.core import heatmap
from scheduler.core.gatherings import attends, conference_of, gathering_context, is_gathering
from scheduler.core.config import Config, Group, Member
from scheduler.core.cycles import next_key, next_window, window
from scheduler.core.meetings import Meeting, by_group
from scheduler.compose.messages import content_id
from scheduler.compose.build import base_context, build
from scheduler.compose.render import Templates
from scheduler.core.outbox import (FailurePayload, Kind, MeetingPayload, NoQuorumPayload, NudgePayload,
                                   OutboxRecord, PeriodPayload, ReceiptPayload, ReportPayload)
from scheduler.core.slots import Candidate, Verdict


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class World:
    """What rendering may look at besides the config: meetings, attendance, failed sends."""

    meetings: Mapping[tuple[str, str], Meeting]
    attendance: Mapping[str, Sequence[dict[str, Any]]]  # group -> attendance records
    failed: Sequence[OutboxRecord] = ()                 # outbox records that failed for good (reports)
    secret: bytes = b""                                 # keys Message-IDs (scheduler.app.secret)

    def meetings_of(self, group: str) -> list[Meeting]:
        """One group's meetings (reports and reviews look at a group's, among every group's)."""
        return self._by_group.get(group, [])

    @cached_property
    def _by_group(self) -> dict[str, list[Meeting]]:
        return by_group(self.meetings)


def message_for(record: OutboxRecord, config: Config, world: World, templates: Templates,
                now: datetime) -> EmailMessage | Skip:
    group = config.groups.get(record.group)
    if group is None:
        return Skip("the group is no longer in the config")
    kind, payload = record.kind, record.payload
    member = group.member(record.recipient)
    if member is None and kind != Kind.CANCEL:
        return Skip("no longer a member of the group")
    if member is None:  # an uninvite: the recipient has left the group; as the outbox recorded them
        member = Member(name=record.name, email=record.recipient, timezone=record.timezone)
    base = base_context(config, group, member)

    def make(context: dict[str, Any], meeting: Meeting | None = None,
             images: Sequence[tuple[str, bytes]] = (), template: str | None = None) -> EmailMessage:
        template = template or ("failure" if isinstance(payload, FailurePayload) else str(kind))
        return build(template, config=config, templates=templates, group=group, recipient=member,
                     context=context, key=record.key, now=now, meeting=meeting, images=images,
                     secret=world.secret)

    def picture(grid_payload: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None,
                                                                 tuple[tuple[str, bytes], ...]]:
        """The stored heatmap grid, drawn now: its template variable and the inline PNG."""
        if grid_payload is None:
            return None, ()
        grid = heatmap.Heatmap.from_payload(grid_payload)
        cid = content_id("heatmap", record.key, member.email, config.service.mail.sender)
        png = heatmap.to_png(grid, target=heatmap.EMAIL)
        width, height = heatmap.size(grid, scale=1, target=heatmap.EMAIL)
        return {"src": f"cid:{cid}", "alt": grid.title, "width": width, "height": height}, ((cid, png),)

    if isinstance(payload, MeetingPayload):
        meeting = world.meetings.get((group.id, payload.cycle))
        if meeting is None:
            return Skip("the meeting is not in the state")
        if (kind in (Kind.INVITE, Kind.UPDATE, Kind.CALL, Kind.AGENDA, Kind.GATHERING)
                and (meeting.cancelled or meeting.start <= now)):
            return Skip("the meeting was cancelled" if meeting.cancelled else "the meeting has already started")
        if kind == Kind.CALL and now >= meeting.start - timedelta(days=group.meetings.agenda_days_before):
            return Skip("the agenda is already due: answers would come too late for it")
        if is_gathering(meeting.cycle):
            return _about_gathering(record, payload, meeting, config, group, member, base, now, make)
        return _about_meeting(record, payload, meeting, config, group, member, base, world, now, make)
    if isinstance(payload, NudgePayload):
        goals = [g for g in group.goals if g.member == member.email and g.due == payload.due and not g.done]
        if not goals:
            return Skip("the goal is done or no longer in the config")
        return make(ctx.for_nudge(base, group, member, goals, now.astimezone(member.tz).date()))
    if isinstance(payload, PeriodPayload):
        records = attendance_by_meeting(world, group.id, payload.start, payload.end, group.tz)
        held = [gathering_context(config, group, m, member.timezone) for m in world.meetings_of(group.id)
                if is_gathering(m.cycle) and not m.cancelled and m.start <= now
                and payload.start <= m.start.astimezone(group.tz).date() <= payload.end]
        return make(ctx.for_review(base, group, payload.start, payload.end, records,
                                   year_end=kind == Kind.YEAR_END, gatherings=[g for g in held if g]))
    if isinstance(payload, FailurePayload):
        failure = payload.context()
        if not group.share_member_emails:
            # Coordinators see the name; the address stays in the config (servers often echo it).
            if failure.get("email"):
                failure["error"] = hide_address(failure["error"], failure["email"], f"<{failure['name']}>")
            failure["email"] = None
        return make({**base, "failure": failure})
    if isinstance(payload, NoQuorumPayload):
        options = [candidate_from_payload(o) for o in payload.options]
        image, images = picture(payload.heatmap)
        context = ctx.for_alert(base, group, member, list(payload.dates), options)
        return make({**context, "heatmap": image}, images=images)
    if isinstance(payload, ReportPayload):
        image, images = picture(payload.heatmap)
        return make(for_report(base, group, member, world, now, image), images=images)
    if isinstance(payload, ReceiptPayload):
        return make(ctx.for_receipt(base, payload.recorded, payload.not_understood, payload.notes))
    return Skip(f"unknown kind {kind!r}")


def _about_gathering(record: OutboxRecord, payload: MeetingPayload, meeting: Meeting, config: Config, group: Group,
                     member: Member, base: dict[str, Any], now: datetime, make: Any) -> EmailMessage | Skip:
    """A gathering at a conference: proposed, moved or cancelled, each with the gathering template."""
    kind = record.kind
    if kind == Kind.UPDATE and (payload.sequence if payload.sequence is not None
                                else meeting.sequence) != meeting.sequence:
        return Skip("a later change superseded this update")
    if kind == Kind.CANCEL and meeting.start <= now:
        return Skip("the gathering has already started")
    info = gathering_context(config, group, meeting, member.timezone)
    if info is None:
        return Skip("the conference is no longer in service.toml")
    if kind in (Kind.GATHERING, Kind.UPDATE):
        conference = conference_of(config, meeting.cycle)
        if conference is None or not attends(member, conference):
            return Skip("no longer attends the conference")
        if payload.bump:  # invited again after this member's copy was cancelled
            meeting = replace(meeting, sequence=meeting.sequence + payload.bump, stamp=record.created)
        previous = meeting.previous() if kind == Kind.UPDATE else None
        return make(ctx.for_gathering(base, info, previous, member), meeting, template="gathering")
    if kind == Kind.CANCEL:
        everyone = meeting.cancelled  # else only this member's copy: they no longer attend
        if not everyone:
            meeting = replace(meeting, sequence=meeting.sequence + 1, cancelled=True, stamp=record.created)
        return make(ctx.for_gathering(base, {**info, "cancelled": True}, None, member, everyone=everyone), meeting,
                    template="gathering")
    return Skip(f"{kind} does not apply to a gathering")


def _about_meeting(record: OutboxRecord, payload: MeetingPayload, meeting: Meeting, config: Config, group: Group,
                   member: Member, base: dict[str, Any], world: World, now: datetime, make: Any) -> EmailMessage | Skip:
    """invite, update, cancel, call, agenda, follow-up: the meeting is in the state."""
    kind = record.kind
    if kind == Kind.UPDATE and (payload.sequence if payload.sequence is not None
                                else meeting.sequence) != meeting.sequence:
        return Skip("a later change superseded this update")
    if kind in (Kind.INVITE, Kind.UPDATE):
        if payload.bump:  # a re-invite after this member's copy was cancelled
            meeting = replace(meeting, sequence=meeting.sequence + payload.bump, stamp=record.created)
        previous = meeting.previous() if kind == Kind.UPDATE else None
        return make(ctx.for_invite(base, group, member, meeting, previous), meeting)
    if kind == Kind.CANCEL:
        if meeting.start <= now:
            return Skip("the meeting has already started")
        if meeting.cancelled:  # a coordinator cancelled it for everyone
            return make(ctx.for_invite(base, group, member, meeting), meeting)
        # Only this member's copy is cancelled (they left the group); the meeting goes on for the others.
        gone = replace(meeting, sequence=meeting.sequence + 1, cancelled=True, stamp=record.created)
        return make(ctx.for_invite(base, group, member, gone, everyone=False), gone)
    if kind == Kind.CALL:
        also = [(config.groups[g], m) for g, c in payload.also
                if g in config.groups and config.groups[g].member(member.email) is not None
                and (m := world.meetings.get((g, c))) is not None and not m.cancelled and m.start > now]
        return make(ctx.for_call(base, group, member, meeting, also))
    if kind == Kind.AGENDA:
        coming = [gathering_context(config, group, m, member.timezone) for m in world.meetings_of(group.id)
                  if is_gathering(m.cycle) and not m.cancelled and m.start > now]
        return make(ctx.for_agenda(base, group, member, meeting, now.astimezone(group.tz).date(),
                                   sorted((g for g in coming if g), key=lambda g: g["sort"])))
    if kind == Kind.FOLLOW_UP:
        following = next_key(group, meeting.cycle)
        nxt = world.meetings.get((group.id, following))
        next_day = (nxt.start.astimezone(group.tz).date() if nxt and not nxt.cancelled
                    else (window(group, following).dates or (None,))[0])
        return make(ctx.for_follow_up(base, group, member, meeting, next_day, now.astimezone(group.tz).date()))
    return Skip(f"unknown kind {kind!r}")


TREND_MEETINGS = 6


def for_report(base: dict[str, Any], group: Group, recipient: Member, world: World, now: datetime,
               heatmap_image: dict[str, Any] | None = None) -> dict[str, Any]:
    """The coordinators' monthly report: attendance trend, goals, the next meeting and who has
    not answered its invite, sends that failed for good since the start of last month."""
    tz = group.tz
    today = now.astimezone(tz).date()
    # Meetings held before today; an upcoming meeting's RSVPs are not attendance yet.
    held = sorted(attendance_by_meeting(world, group.id, date.min, today - timedelta(days=1), tz),
                  key=lambda r: r["date"])[-TREND_MEETINGS:]
    numbers = ctx.for_review(base, group, held[0]["date"] if held else today, today, held)
    for m in numbers["attendance"]["meetings"]:
        m["met"] = m["percent"] is not None and m["percent"] >= numbers["attendance"]["target_percent"]
    overdue = []
    for entry in ctx.goals_by_member(group, today):
        late = [g for g in entry["goals"] if g["overdue"]]
        if late:
            overdue.append({"member": entry["member"], "goals": late})

    upcoming = sorted((m for m in world.meetings_of(group.id)
                       if not m.cancelled and m.start > now and not is_gathering(m.cycle)),
                      key=lambda m: m.start)
    next_meeting = None
    if upcoming:
        meeting = upcoming[0]
        # A Tentative answer is an answer, but neither accepted nor declined.
        rsvp = {r["email"]: None if r.get("tentative") else r["present"] for r in world.attendance.get(group.id, ())
                if r["cycle"] == meeting.cycle and r.get("source") == "rsvp"}
        next_meeting = {
            **ctx.when(meeting.start, meeting.end, recipient.timezone),
            "cycle": meeting.cycle,
            "accepted": [m.name for m in group.members if rsvp.get(m.email) is True],
            "declined": [m.name for m in group.members if rsvp.get(m.email) is False],
            "tentative": [m.name for m in group.members if m.email in rsvp and rsvp[m.email] is None],
            "unanswered": [m.name for m in group.members if m.email not in rsvp],
        }
    following = next_window(group, now) if next_meeting is None else None

    since_day = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    since = datetime.combine(since_day, datetime.min.time(), tz)
    failed = []
    for r in sorted((r for r in world.failed if r.group == group.id and r.updated >= since),
                    key=lambda r: r.updated):
        error = r.last_error or "unknown error"
        if not group.share_member_emails:  # as in failure alerts: the name, not the address
            error = hide_address(error, r.recipient, r.name)
        failed.append({"date": ctx.day_text(r.updated.astimezone(tz).date()), "kind": str(r.kind),
                       "name": r.name, "email": r.recipient if group.share_member_emails else None,
                       "error": error})
    return {
        **numbers,
        "month": f"{today:%B %Y}",
        "since": ctx.day_text(since_day),
        "overdue": overdue,
        "next_meeting": next_meeting,
        "next_window": ({"first": ctx.day_text(following.first), "last": ctx.day_text(following.last)}
                        if following else None),
        "failed": failed,
        "heatmap": heatmap_image,
    }


def hide_address(text: str, address: str, instead: str) -> str:
    """`text` (a mail server's answer) without `address`, in any letter case."""
    return re.sub(re.escape(address), instead.replace("\\", "\\\\"), text, flags=re.IGNORECASE)


def attendance_by_meeting(world: World, group: str, start: date, end: date,
                          zone: ZoneInfo = ZoneInfo("UTC")) -> list[dict[str, Any]]:
    """Recorded attendance of the group's meetings held between two dates (in `zone`, the
    group's), one record per meeting."""
    by_cycle: dict[str, dict[str, list[str]]] = {}
    for rec in world.attendance.get(group, ()):
        if rec.get("tentative"):
            continue  # "maybe" said nothing about who came: neither present nor absent
        entry = by_cycle.setdefault(rec["cycle"], {"present": [], "absent": []})
        entry["present" if rec["present"] else "absent"].append(rec["email"])
    out = []
    for meeting in world.meetings_of(group):
        day = meeting.start.astimezone(zone).date()
        if is_gathering(meeting.cycle):
            continue  # only those attending the conference are invited: counted apart, not in the rates
        if not meeting.cancelled and start <= day <= end and meeting.cycle in by_cycle:
            out.append({"date": day, **by_cycle[meeting.cycle]})
    return out


def candidate_from_payload(p: Mapping[str, Any]) -> Candidate:
    verdicts = tuple(Verdict(v["email"], v["status"], v["reason"], datetime.fromisoformat(v["local_start"]))
                     for v in p["verdicts"])
    return Candidate(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]), p["expected"],
                     p["attendance"], p["preferred"], p["viable"], verdicts)
