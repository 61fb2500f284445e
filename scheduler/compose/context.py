"""What each email template sees: plain values, built from the config, the meeting and the date.

Pure. Every time is rendered in the recipient's own zone, with the zone named. Other
members' email addresses are included only when the group sets `share_member_emails`;
templates get dicts and strings, never config objects, so a template cannot reach more.
The variables are documented in docs/templates.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.core.config import Group, Member
from scheduler.core.cycles import cycle_of
from scheduler.core.goals import goal_order
from scheduler.core.meetings import Meeting
from scheduler.core.slots import Candidate

REVIEW_QUESTIONS = (
    "Is the group meeting the mission it wrote down? What should change?",
    "What does this group give us that our own departments and mentors do not?",
    "Are the meetings worth the time they take? What would make them more so?",
    "Is the agenda right: enough check-in, enough work on drafts, enough unplanned time?",
    "Should the cadence, the time of day or who runs the meeting change?",
)

YEAR_END_OPTIONS = (
    ("Continue", "keep the group as it is, with fresh goals for the coming year"),
    ("Redefine", "change the mission, the members or the format to fit where we are now"),
    ("Close", "end the group on a good note, and say what each of us takes away"),
)


def when(start: datetime, end: datetime, zone: str) -> dict[str, str]:
    """A meeting time as one person reads it: in their zone, the zone named."""
    z = ZoneInfo(zone)
    s, e = start.astimezone(z), end.astimezone(z)
    text = f"{s:%A} {s.day} {s:%B %Y}, {s:%H:%M}–{e:%H:%M}"
    if e.date() != s.date():
        text += f" (ends {e:%A} {e:%H:%M})"
    return {
        "when": f"{text} ({zone})",
        "date": f"{s:%A} {s.day} {s:%B %Y}",
        "time": f"{s:%H:%M}–{e:%H:%M}",
        "zone": zone,
        "abbr": s.tzname() or "",
        "utc": f"{start.astimezone(ZoneInfo('UTC')):%H:%M} UTC",
    }


def day_text(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def person(member: Member, group: Group) -> dict[str, Any]:
    return {
        "name": member.name,
        "first_name": member.name.split()[0],
        "institution": member.institution or "",
        "timezone": member.timezone,
        # Another member's address only when the group agreed to share them.
        "email": member.email if group.share_member_emails else None,
    }


def base(group: Group, recipient: Member, sender_name: str) -> dict[str, Any]:
    coordinators = [m for m in group.members if m.email in group.coordinators]
    return {
        "group": {
            "id": group.id,
            "name": group.name,
            "mission": group.mission,
            "video_link": group.video_link or "",
            "timezone": group.timezone,
            "cadence": group.meetings.cadence,
            "quorum_percent": round(group.meetings.quorum * 100),
            "members": [person(m, group) for m in group.members],
            "coordinators": [m.name for m in coordinators],
            "share_member_emails": group.share_member_emails,
        },
        "recipient": {
            "name": recipient.name,
            "first_name": recipient.name.split()[0],
            "email": recipient.email,
            "timezone": recipient.timezone,
            "is_coordinator": recipient.email in group.coordinators,
        },
        "sender_name": sender_name,
        # The recipient's open goals, numbered as a `done: N` reply is read (core.goals).
        "my_goals": [{"number": n, "text": g.text, "due": day_text(g.due) if g.due else ""}
                     for n, g in enumerate(sorted((g for g in group.goals if g.member == recipient.email
                                                   and not g.done), key=goal_order), 1)],
    }


def _goal(goal, today: date) -> dict[str, Any]:
    return {
        "text": goal.text,
        "due": day_text(goal.due) if goal.due else "",
        "overdue": bool(goal.due and goal.due < today and not goal.done),
        "done": goal.done,
    }


def goals_by_member(group: Group, today: date, *, open_only: bool = True) -> list[dict[str, Any]]:
    """Each member (in config order) with their goals; members without goals are kept so the
    check-in round names everyone."""
    out = []
    for m in group.members:
        goals = [g for g in group.goals if g.member == m.email and (not open_only or not g.done)]
        goals.sort(key=lambda g: (g.due or date.max, g.text))
        out.append({"member": m.name, "goals": [_goal(g, today) for g in goals]})
    return out


def meeting_context(group: Group, recipient: Member, meeting: Meeting) -> dict[str, Any]:
    return {**when(meeting.start, meeting.end, recipient.timezone),
            "cycle": meeting.cycle,
            "sequence": meeting.sequence,
            "duration_minutes": round((meeting.end - meeting.start).total_seconds() / 60),
            "group_time": when(meeting.start, meeting.end, group.timezone)["when"]}


def cycles_since_started(group: Group, key: str) -> int:
    """How many meeting cycles lie between the one containing `started` and `key` (0 for that one)."""
    first = cycle_of(group, group.started)
    if group.meetings.cadence == "monthly":
        (y0, m0), (y1, m1) = ((int(x) for x in k.split("-")) for k in (first, key))
        return (y1 - y0) * 12 + (m1 - m0)
    weeks = (date.fromisocalendar(int(key[:4]), int(key[6:]), 1)
             - date.fromisocalendar(int(first[:4]), int(first[6:]), 1)).days // 7
    return weeks // 2 if group.meetings.cadence == "biweekly" else weeks


def roles_for(group: Group, cycle: str, start: datetime | None = None) -> dict[str, Member | None]:
    """Who facilitates and who takes notes in one cycle's meeting. Pure.

    "rotate" walks the members in file order, one step per cycle since `started` (the note
    taker one ahead of the facilitator, so next time's facilitator has taken this time's
    notes), skipping members away on the meeting's date (their own local date) when
    `start` is given, and never giving both roles to one person.
    """
    members = group.members
    n = len(members)
    index = cycles_since_started(group, cycle)

    def away(m: Member) -> bool:
        return start is not None and any(a.covers(start.astimezone(m.tz).date()) for a in m.away)

    def pick(setting: str, offset: int, taken: Member | None) -> Member | None:
        if setting == "none":
            return None
        if setting != "rotate":
            return group.member(setting)
        for step in range(n):
            m = members[(index + offset + step) % n]
            if (taken is None or m.email != taken.email) and not away(m):
                return m
        return None

    roles = group.roles
    if roles.note_taker not in ("rotate", "none"):  # a fixed note taker: the rotation steps past them
        note_taker = group.member(roles.note_taker)
        facilitator = pick(roles.facilitator, 0, note_taker)
    else:
        facilitator = pick(roles.facilitator, 0, None)
        note_taker = pick(roles.note_taker, 1 if roles.facilitator == "rotate" else 0, facilitator)
    if note_taker is not None and facilitator is not None and note_taker.email == facilitator.email:  # both fixed to one person (validate refuses it)
        note_taker = None
    return {"facilitator": facilitator, "note_taker": note_taker}


def roles_context(group: Group, meeting: Meeting) -> dict[str, str | None]:
    """The roles as templates see them: names, or None when the group does not use the role."""
    roles = roles_for(group, meeting.cycle, meeting.start)
    return {key: m.name if m else None for key, m in roles.items()}


def for_invite(ctx: dict, group: Group, recipient: Member, meeting: Meeting,
               previous: Meeting | None = None, *, everyone: bool = True) -> dict[str, Any]:
    """Invites, updates and cancellations. `everyone`: False for a cancellation of one member's
    copy only (they left the group), True when the meeting itself changed."""
    out = {**ctx, "meeting": meeting_context(group, recipient, meeting), "roles": roles_context(group, meeting)}
    out["previous"] = meeting_context(group, recipient, previous) if previous else None
    out["everyone"] = everyone
    return out


def for_call(ctx: dict, group: Group, recipient: Member, meeting: Meeting,
             also: Sequence[tuple[Group, Meeting]] = ()) -> dict[str, Any]:
    """The call for items before a meeting: the meeting, when the agenda goes out (answers before
    then are on it) and, from the base, the recipient's open goals, numbered. `also`: the
    recipient's other groups meeting that week, which this one call asks about too."""
    agenda_at = meeting.start - timedelta(days=group.meetings.agenda_days_before)
    return {**ctx, "meeting": meeting_context(group, recipient, meeting),
            "agenda_date": day_text(agenda_at.astimezone(recipient.tz).date()),
            "also": [{"group": g.name, "when": when(m.start, m.end, recipient.timezone)["when"],
                      "agenda_date": day_text((m.start - timedelta(days=g.meetings.agenda_days_before))
                                              .astimezone(recipient.tz).date())} for g, m in also]}


def for_gathering(ctx: dict, gathering: dict[str, Any], previous: Meeting | None, recipient: Member, *,
                  everyone: bool = True) -> dict[str, Any]:
    """A gathering at a conference (`core.gatherings.gathering_context`): proposed, moved
    (`previous`: the time before), or cancelled (for everyone, or for one member who no longer
    attends)."""
    was = when(previous.start, previous.end, gathering["timezone"])["when"] if previous else None
    return {**ctx, "gathering": gathering, "previous": was, "everyone": everyone}


def for_agenda(ctx: dict, group: Group, recipient: Member, meeting: Meeting, today: date,
               gatherings: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The agenda; `gatherings`: the group's gatherings at conferences still to come."""
    meeting_day = meeting.start.astimezone(group.tz).date()
    recent = meeting_day - timedelta(days=62)
    celebrations = [{"member": _name(group, ms.member), "text": ms.text, "date": day_text(ms.date)}
                    for ms in sorted(group.milestones, key=lambda ms: ms.date) if recent <= ms.date <= meeting_day]
    celebrations += [{"member": _name(group, g.member), "text": f"Done: {g.text}", "date": day_text(g.due) if g.due else ""}
                     for g in group.goals if g.done and (g.due is None or recent <= g.due <= meeting_day)]
    return {
        **ctx,
        "meeting": meeting_context(group, recipient, meeting),
        "roles": roles_context(group, meeting),
        "agenda": {
            "mission": group.mission,
            "checkin": [m.name for m in group.members],
            "goals": goals_by_member(group, meeting_day),
            "overdue": [{"member": _name(group, g.member), **_goal(g, meeting_day)} for g in group.goals
                        if g.due and g.due < meeting_day and not g.done],
            "celebrations": celebrations,
            "topics": [a.text for a in group.agenda if a.cycle in (None, meeting.cycle)],
            "unplanned_minutes": max(10, group.meetings.duration_minutes // 6),
            "gatherings": list(gatherings),
        },
    }


def for_follow_up(ctx: dict, group: Group, recipient: Member, meeting: Meeting,
                  next_meeting_day: date | None, today: date) -> dict[str, Any]:
    horizon = next_meeting_day or today + timedelta(days=35)
    mine = [g for g in group.goals if g.member == recipient.email and not g.done]
    mine.sort(key=lambda g: (g.due or date.max, g.text))
    return {
        **ctx,
        "meeting": meeting_context(group, recipient, meeting),
        "next_meeting_date": day_text(next_meeting_day) if next_meeting_day else "",
        "commitments": [_goal(g, today) for g in mine if g.due is None or g.due <= horizon],
        "later": [_goal(g, today) for g in mine if g.due is not None and g.due > horizon],
        "group_commitments": [{"member": _name(group, g.member), **_goal(g, today)} for g in group.goals
                              if not g.done and g.member != recipient.email and (g.due is None or g.due <= horizon)],
    }


def for_nudge(ctx: dict, group: Group, recipient: Member, goals: Sequence, today: date) -> dict[str, Any]:
    return {**ctx, "goals": [{**_goal(g, today), "days_left": (g.due - today).days if g.due else None}
                             for g in goals]}


def for_review(ctx: dict, group: Group, period_start: date, period_end: date,
               attendance: Sequence[dict[str, Any]] = (), *, year_end: bool = False,
               gatherings: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Mission review or year-end: the period's numbers and the questions. `gatherings`: the
    group's gatherings at conferences held in the period (`core.gatherings.gathering_context`).

    `attendance` lists meetings in the period as {"date": date, "present": [...], "absent": [...]}
    (emails); meetings with nothing recorded are left out of the rates.
    """
    meetings = []
    for rec in sorted(attendance, key=lambda r: r["date"]):
        present, absent = len(rec["present"]), len(rec["absent"])
        total = present + absent
        meetings.append({"date": day_text(rec["date"]), "present": present, "of": total,
                         "percent": round(100 * present / total) if total else None})
    rates = [m["percent"] for m in meetings if m["percent"] is not None]
    average = round(sum(rates) / len(rates)) if rates else None
    # Per member: of the meetings where their attendance was recorded, how many they came to.
    by_member = []
    for m in group.members:
        came = sum(m.email in rec["present"] for rec in attendance)
        recorded = came + sum(m.email in rec["absent"] for rec in attendance)
        if recorded:
            by_member.append({"name": m.name, "present": came, "of": recorded,
                              "percent": round(100 * came / recorded)})
    done = [g for g in group.goals if g.done]
    open_ = [g for g in group.goals if not g.done]
    overdue = [g for g in open_ if g.due and g.due < period_end]
    return {
        **ctx,
        "period": {"start": day_text(period_start), "end": day_text(period_end)},
        "attendance": {"meetings": meetings, "by_member": by_member, "average_percent": average,
                       "target_percent": 50, "met": None if average is None else average >= 50},
        "goals_summary": {"done": len(done), "open": len(open_), "overdue": len(overdue)},
        "milestones": [{"member": _name(group, ms.member), "text": ms.text, "date": day_text(ms.date)}
                       for ms in sorted(group.milestones, key=lambda ms: ms.date)
                       if period_start <= ms.date <= period_end],
        "gatherings": [{"conference": g["conference"], "city": g["city"], "date": g["date"],
                        "coming": len(g["coming"])} for g in gatherings],
        "questions": list(REVIEW_QUESTIONS),
        "options": [{"name": n, "meaning": d} for n, d in YEAR_END_OPTIONS] if year_end else [],
    }


def for_alert(ctx: dict, group: Group, recipient: Member, window_dates: Iterable[date],
              options: Sequence[Candidate]) -> dict[str, Any]:
    names = {m.email: m.name for m in group.members}
    required = {m.email for m in group.members if m.required}
    dates = list(window_dates)
    size = len(group.members)
    # Expected attendance moves in halves (tentative and unknown count half): the quorum in those steps.
    needed = math.ceil(group.meetings.quorum * size * 2 - 1e-9) / 2
    return {
        **ctx,
        "window": {"first": day_text(dates[0]), "last": day_text(dates[-1])} if dates else {"first": "", "last": ""},
        "quorum_percent": round(group.meetings.quorum * 100),
        "size": size,
        "needed": f"{needed:g}",
        # Why each option cannot go ahead, so no line reads as if it could (`preview alert` on a
        # group that does reach quorum shows options that can: the text says so too).
        "options": [{
            **when(c.start, c.end, recipient.timezone),
            "attendance_percent": round(c.attendance * 100),
            "expected": f"{c.expected:g}",
            "viable": c.viable,
            "required_missing": [names[v.email] for v in c.verdicts
                                 if v.email in required and v.status == "unavailable"],
            "available": [names.get(v.email, "a former member") for v in c.verdicts if v.status == "available"],
            "not_available": [{"name": names.get(v.email, "a former member"), "reason": v.reason}
                              for v in c.verdicts if v.status != "available"],
        } for c in options],
    }


def _name(group: Group, email: str) -> str:
    m = group.member(email)
    return m.name if m else email


def for_receipt(ctx: dict, recorded: Sequence[str], not_understood: Sequence[tuple[str, str]],
                notes: Sequence[str]) -> dict[str, Any]:
    """A receipt for one reply, to its author only: what was recorded, what was not understood."""
    return {**ctx, "recorded": list(recorded), "not_understood": [{"line": a, "why": b} for a, b in not_understood],
            "notes": list(notes)}
