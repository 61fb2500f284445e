"""`friendtor preview`: the exact message one member would get for the group's next meeting. Pure.

The meeting is the one the service has scheduled (`stored`, from the state), or, before it
has, the time the service would choose: the best option in the next cycle window that
reaches quorum with every required member.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from email.message import EmailMessage

from scheduler.compose import context as ctx
from scheduler.core import gatherings
from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group, Member
from scheduler.core.cycles import next_key, next_window, window
from scheduler.core.errors import UsageError
from scheduler.core.meetings import Meeting, meeting_uid
from scheduler.compose.build import base_context, build, meeting_key, sender
from scheduler.core.planner import LEAD, YEAR_END_AFTER_MONTHS, add_months
from scheduler.app.templates import load_templates
from scheduler.compose.render import KINDS
from scheduler.core.slots import find_slots


def preview(config: Config, group: Group, kind: str, recipient_email: str | None, now: datetime,
            availability: Mapping[str, Availability],
            stored: Mapping[tuple[str, str], Meeting] | None = None) -> EmailMessage:
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    if kind == "gathering":
        return _gathering(config, group, recipient_email, now, stored or {})
    recipient = _recipient(group, kind, recipient_email)
    templates = load_templates(config.folder / "templates")
    base = base_context(config, group, recipient)
    today = now.astimezone(group.tz).date()

    w = next_window(group, now)
    if w is None:
        raise UsageError(f"groups/{group.id}.toml: no meeting dates in the next two years; check [meetings]")
    options = find_slots(group, w, availability, not_before=now + LEAD, top=3, distinct=True)  # as the planner
    viable = [c for c in options if c.viable]

    def build_it(context: dict, key: str, meeting: Meeting | None = None) -> EmailMessage:
        return build(kind, config=config, templates=templates, group=group, recipient=recipient,
                     context=context, key=key, now=now, meeting=meeting)

    if kind == "alert":
        context = ctx.for_alert(base, group, recipient, w.dates, options)
        return build_it(context, f"alert:{group.id}:{w.key}:{today.isoformat()}")
    if kind == "report":  # preview reads no state: the config's goals, no attendance or RSVPs
        from scheduler.compose.select import World, for_report

        return build_it(for_report(base, group, recipient, World({}, {}), now),
                        f"report:{group.id}:{today:%Y-%m}")
    if kind in ("review", "year-end"):
        # The next prompt the service will send, for the period the service will cover, under its key.
        if kind == "review":
            step, k = group.reviews.mission_review_months, 1
            while add_months(group.started, k * step) < today:
                k += 1
            start, end = add_months(group.started, (k - 1) * step), add_months(group.started, k * step)
            key = f"review:{group.id}:{end.isoformat()}"
        else:
            year = today.year if today <= date(today.year, group.reviews.year_end_month, 1) else today.year + 1
            settled = add_months(group.started, YEAR_END_AFTER_MONTHS)  # none in the first six months
            while date(year, group.reviews.year_end_month, 1) < settled:
                year += 1
            day = date(year, group.reviews.year_end_month, 1)
            start, end = add_months(day, -12), day - timedelta(days=1)
            start = start if settled <= start else group.started  # the first covers all since started
            key = f"year-end:{group.id}:{year}"
        context = ctx.for_review(base, group, start, end, (), year_end=kind == "year-end")
        return build_it(context, key)
    if kind == "receipt":  # an example reply's receipt: a member's own reply is never previewed
        recorded = ["New goal: send the specific aims page to my mentor (by Friday 15 January 2027)",
                    "On the next agenda: ten minutes on the resubmission timeline"]
        context = ctx.for_receipt(base, recorded, [("away: next week-ish", "\"next week-ish\" is not a date I "
                                                    "can read; write dates as 2027-03-15, 15 March or Mar 15.")], ())
        return build_it(context, f"receipt:<example@{group.id}>")
    if kind == "nudge":
        goals = [g for g in group.goals if g.member == recipient.email and not g.done and g.due and g.due >= today]
        if not goals:
            raise UsageError(f"{recipient.email} has no open goal with a due date from {today} on, "
                             "so no nudge would go out; add one under [[goals]] or pick another member")
        due = min(g.due for g in goals)  # the service nudges once per due date, naming every goal due then
        goals = [g for g in goals if g.due == due]
        return build_it(ctx.for_nudge(base, group, recipient, goals, today), f"nudge:{group.id}:{due.isoformat()}")

    scheduled = sorted((m for (g, _), m in (stored or {}).items() if g == group.id and not m.cancelled
                        and m.start > now), key=lambda m: m.start)
    if scheduled:  # the service has chosen already (and a coordinator may have moved it)
        meeting = scheduled[0]
        w = window(group, meeting.cycle)
        alt = None
    elif not viable:
        raise UsageError(f"no time in {w.key} reaches quorum, so the service would send the coordinators "
                         f"an alert instead: try `friendtor preview {group.id} alert`")
    else:
        best = viable[0]
        meeting = Meeting(group.id, w.key, meeting_uid(group.id, w.key, sender(config).email), 0,
                          best.start, best.end, stamp=now)
        alt = next((c for c in options if c is not best), None)
    if kind == "invite":
        return build_it(ctx.for_invite(base, group, recipient, meeting), meeting_key(kind, meeting), meeting)
    if kind == "update":
        if meeting.moved_from is not None:  # moved already: the update the members got
            moved, before = meeting, meeting.previous()
        else:  # an example move: to the next best option, or a day later
            start, end = (alt.start, alt.end) if alt else (meeting.start + timedelta(days=1),
                                                           meeting.end + timedelta(days=1))
            moved, before = meeting.moved(start, end, now), meeting
        return build_it(ctx.for_invite(base, group, recipient, moved, previous=before), meeting_key(kind, moved), moved)
    if kind == "cancel":
        cancelled = meeting.cancel(now)
        return build_it(ctx.for_invite(base, group, recipient, cancelled), meeting_key(kind, cancelled), cancelled)
    if kind == "call":
        return build_it(ctx.for_call(base, group, recipient, meeting), meeting_key(kind, meeting))
    if kind == "agenda":
        return build_it(ctx.for_agenda(base, group, recipient, meeting, today), meeting_key(kind, meeting))
    # follow-up: sent after the meeting; the next meeting is the first eligible date of the next cycle.
    following = window(group, next_key(group, w.key))
    next_day = following.first if following.dates else None
    after = meeting.start.astimezone(group.tz).date() + timedelta(days=group.meetings.follow_up_days_after)
    return build_it(ctx.for_follow_up(base, group, recipient, meeting, next_day, after), meeting_key(kind, meeting))


def _gathering(config: Config, group: Group, email: str | None, now: datetime,
               stored: Mapping[tuple[str, str], Meeting]) -> EmailMessage:
    """The gathering email for the next conference enough of the group attends: as scheduled
    (and perhaps moved), or as the service would propose it."""
    today = now.astimezone(group.tz).date()
    found = sorted(gatherings.due_gatherings(config, group), key=lambda cw: (cw[0].end < today, cw[0].start))
    if not found:
        raise UsageError(f"no conference in service.toml is attended by {group.gathering_min} or more members of "
                         f"{group.id} (gathering_min), so no gathering email would go out; list it in members' "
                         "conferences = [...]")
    conference, who = found[0]
    if email is not None and group.member(email) is not None and group.member(email) not in who:
        raise UsageError(f"--to: {email} does not attend {conference.name}; those who do: "
                         + ", ".join(m.email for m in who))
    recipient = _recipient(group, "gathering", email) if email is not None else who[0]
    cycle = gatherings.cycle_of(conference)
    meeting = stored.get((group.id, cycle))
    if meeting is None or meeting.cancelled:
        start = gatherings.proposed_start(group, conference)
        meeting = Meeting(group.id, cycle, meeting_uid(group.id, cycle, sender(config).email), 0, start,
                          start + timedelta(minutes=group.meetings.duration_minutes), stamp=now)
    context = ctx.for_gathering(base_context(config, group, recipient),
                                gatherings.describe(conference, group, meeting, recipient.timezone),
                                meeting.previous(), recipient)
    return build("gathering", config=config, templates=load_templates(config.folder / "templates"), group=group,
                 recipient=recipient, context=context, key=f"invite:{group.id}:{cycle}", now=now, meeting=meeting)


def _recipient(group: Group, kind: str, email: str | None) -> Member:
    if email is None:
        return (next(m for m in group.members if m.email in group.coordinators) if kind in ("alert", "report")
                else group.members[0])
    member = group.member(email)
    if member is None:
        raise UsageError(f"--to: {email} is not a member of {group.id}; use one of: "
                         + ", ".join(m.email for m in group.members))
    if kind in ("alert", "report") and member.email not in group.coordinators:
        raise UsageError(f"--to: {kind}s go to coordinators only ({', '.join(group.coordinators)})")
    return member
