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
from scheduler.core.config import Config, Group, Member
from scheduler.core.cycles import next_key, next_window, window
from scheduler.core.meetings import Meeting, by_group
from scheduler.compose.messages import content_id
from scheduler.compose.build import base_context, build
from scheduler.compose.render import Templates
from scheduler.core.slots import Candidate, Verdict
from scheduler.app.store import parse_iso


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class World:
    """What rendering may look at besides the config: meetings, attendance, failed sends."""

    meetings: Mapping[tuple[str, str], Meeting]
    attendance: Mapping[str, Sequence[dict[str, Any]]]  # group -> attendance records
    failed: Sequence[Mapping[str, Any]] = ()            # outbox records that failed for good (reports)

    def meetings_of(self, group: str) -> list[Meeting]:
        """One group's meetings (reports and reviews look at a group's, among every group's)."""
        return self._by_group.get(group, [])

    @cached_property
    def _by_group(self) -> dict[str, list[Meeting]]:
        return by_group(self.meetings)


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

    def make(context: dict[str, Any], meeting: Meeting | None = None,
             images: Sequence[tuple[str, bytes]] = ()) -> EmailMessage:
        template = "failure" if "failure" in payload else kind
        return build(template, config=config, templates=templates, group=group, recipient=member,
                     context=context, key=doc["key"], now=now, meeting=meeting, images=images)

    def picture() -> tuple[dict[str, Any] | None, tuple[tuple[str, bytes], ...]]:
        """The stored heatmap grid, drawn now: its template variable and the inline PNG."""
        if "heatmap" not in payload:
            return None, ()
        grid = heatmap.Heatmap.from_payload(payload["heatmap"])
        cid = content_id("heatmap", doc["key"], member.email, config.service.mail.sender)
        png = heatmap.to_png(grid, target=heatmap.EMAIL)
        width, height = heatmap.size(grid, scale=1, target=heatmap.EMAIL)
        return {"src": f"cid:{cid}", "alt": grid.title, "width": width, "height": height}, ((cid, png),)

    meeting = world.meetings.get((group.id, payload["cycle"])) if "cycle" in payload else None
    if kind in ("invite", "update", "cancel", "agenda", "follow-up"):
        if meeting is None:
            return Skip("the meeting is not in the state")
        if kind in ("invite", "update", "agenda") and (meeting.cancelled or meeting.start <= now):
            return Skip("the meeting was cancelled" if meeting.cancelled else "the meeting has already started")
    if kind == "update" and payload.get("sequence", meeting.sequence) != meeting.sequence:
        return Skip("a later change superseded this update")
    if kind in ("invite", "update"):
        if payload.get("bump"):  # a re-invite after this member's copy was cancelled
            meeting = replace(meeting, sequence=meeting.sequence + payload["bump"], stamp=parse_iso(doc["created"]))
        previous = meeting.previous() if kind == "update" else None
        return make(ctx.for_invite(base, group, member, meeting, previous), meeting)
    if kind == "cancel":
        if meeting.start <= now:
            return Skip("the meeting has already started")
        if meeting.cancelled:  # a coordinator cancelled it for everyone
            return make(ctx.for_invite(base, group, member, meeting), meeting)
        # Only this member's copy is cancelled (they left the group); the meeting goes on for the others.
        gone = replace(meeting, sequence=meeting.sequence + 1, cancelled=True, stamp=parse_iso(doc["created"]))
        return make(ctx.for_invite(base, group, member, gone, everyone=False), gone)
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
                    failure["error"] = hide_address(failure["error"], failure["email"], f"<{failure['name']}>")
                failure["email"] = None
            return make({**base, "failure": failure})
        options = [candidate_from_payload(o) for o in payload.get("options", [])]
        image, images = picture()
        context = ctx.for_alert(base, group, member, [date.fromisoformat(d) for d in payload["dates"]], options)
        return make({**context, "heatmap": image}, images=images)
    if kind == "report":
        image, images = picture()
        return make(for_report(base, group, member, world, now, image), images=images)
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

    upcoming = sorted((m for m in world.meetings_of(group.id) if not m.cancelled and m.start > now),
                      key=lambda m: m.start)
    next_meeting = None
    if upcoming:
        meeting = upcoming[0]
        rsvp = {r["email"]: r["present"] for r in world.attendance.get(group.id, ())
                if r["cycle"] == meeting.cycle and r.get("source") == "rsvp"}
        next_meeting = {
            **ctx.when(meeting.start, meeting.end, recipient.timezone),
            "cycle": meeting.cycle,
            "accepted": [m.name for m in group.members if rsvp.get(m.email) is True],
            "declined": [m.name for m in group.members if rsvp.get(m.email) is False],
            "unanswered": [m.name for m in group.members if m.email not in rsvp],
        }
    following = next_window(group, now) if next_meeting is None else None

    since_day = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    since = datetime.combine(since_day, datetime.min.time(), tz)
    failed = []
    for d in sorted((d for d in world.failed if d["group"] == group.id and parse_iso(d["updated"]) >= since),
                    key=lambda d: d["updated"]):
        error = d.get("last_error") or "unknown error"
        if not group.share_member_emails:  # as in failure alerts: the name, not the address
            error = hide_address(error, d["recipient"], d["name"])
        failed.append({"date": ctx.day_text(parse_iso(d["updated"]).astimezone(tz).date()), "kind": d["kind"],
                       "name": d["name"], "email": d["recipient"] if group.share_member_emails else None,
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
        entry = by_cycle.setdefault(rec["cycle"], {"present": [], "absent": []})
        entry["present" if rec["present"] else "absent"].append(rec["email"])
    out = []
    for meeting in world.meetings_of(group):
        day = meeting.start.astimezone(zone).date()
        if not meeting.cancelled and start <= day <= end and meeting.cycle in by_cycle:
            out.append({"date": day, **by_cycle[meeting.cycle]})
    return out


def candidate_from_payload(p: Mapping[str, Any]) -> Candidate:
    verdicts = tuple(Verdict(v["email"], v["status"], v["reason"], datetime.fromisoformat(v["local_start"]))
                     for v in p["verdicts"])
    return Candidate(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]), p["expected"],
                     p["attendance"], p["preferred"], p["viable"], verdicts)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: 5, 10, 20 minutes ... up to 6 hours."""
    # The exponent is capped before it is used: 5 minutes * 2**7 is past the 6-hour cap already,
    # and an uncapped one overflows timedelta after about 40 attempts (a long outage).
    return min(timedelta(minutes=5) * 2 ** min(max(0, attempts - 1), 7), timedelta(hours=6))
