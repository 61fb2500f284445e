"""Sample data that exercises every branch of every template, so `validate` finds a broken
override before a member's inbox does (`scheduler.app.templates.check_templates` reads the
templates and calls `template_problems`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from scheduler.compose import context as ctx
from scheduler.core.config import Conference, Group
from scheduler.core.gatherings import describe
from scheduler.compose.select import World, for_report
from scheduler.core.errors import Problem
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import FailurePayload, Kind, MeetingPayload, OutboxRecord, Status
from scheduler.compose.render import TEMPLATE_SETS, Templates, TemplateProblem
from scheduler.core.slots import Candidate, Verdict

TODAY = date(2027, 3, 1)


def sample_group(*, share: bool) -> Group:
    members = [
        {"name": "Maya Chen", "email": "maya@uni-a.example", "timezone": "America/New_York",
         "institution": "University A"},
        {"name": "Ravi Iyer", "email": "ravi@uni-b.example", "timezone": "Asia/Kolkata"},
        {"name": "Ana Souza", "email": "ana@uni-c.example", "timezone": "America/St_Johns"},
    ]
    return Group.model_validate({
        "id": "sample", "name": "Sample Group", "mission": "Each of us submits one grant this year.",
        "timezone": "America/New_York", "coordinators": ["maya@uni-a.example"],
        "video_link": "https://meet.example.org/sample", "started": date(2026, 1, 5),
        "share_member_emails": share, "members": members,
        # Both roles in one variant, one role in the other: templates render each branch.
        "roles": {"facilitator": "rotate", "note_taker": "rotate"} if not share
        else {"facilitator": "maya@uni-a.example", "note_taker": "none"},
        "goals": [
            {"member": "maya@uni-a.example", "text": "Draft aims", "due": TODAY + timedelta(days=3)},
            {"member": "ravi@uni-b.example", "text": "Submit abstract", "due": TODAY - timedelta(days=5)},
            {"member": "ravi@uni-b.example", "text": "Exercise weekly"},
            {"member": "ana@uni-c.example", "text": "Send R01", "due": TODAY - timedelta(days=2), "done": True},
            {"member": "ana@uni-c.example", "text": "Plan sabbatical", "due": TODAY + timedelta(days=90)},
        ],
        "milestones": [{"member": "ana@uni-c.example", "text": "Promoted", "date": TODAY - timedelta(days=9)}],
        "agenda": [{"text": "Feedback on Ravi's draft", "cycle": "2027-03"}, {"text": "Welcome back Ana"}],
    })


def _meeting(group: Group, days: int, seq: int = 0) -> Meeting:
    start = datetime(2027, 3, 10, 15, tzinfo=UTC) + timedelta(days=days)
    return Meeting(group.id, "2027-03", "sample-2027-03@example.org", seq, start, start + timedelta(hours=1),
                   stamp=datetime(2027, 2, 15, tzinfo=UTC))


def sample_contexts(group: Group) -> dict[str, dict]:
    """One context per kind for the first member (a coordinator), with every list non-empty."""
    me = group.members[0]
    base = ctx.base(group, me, "friendtor")
    meeting = _meeting(group, 0)
    option = Candidate(meeting.start, meeting.end, 1.5, 0.5, 1, False, (
        Verdict(me.email, "available", "", meeting.start),
        Verdict(group.members[1].email, "tentative", "tentative", meeting.start),
        Verdict(group.members[2].email, "unavailable", "busy", meeting.start),
    ))
    attendance = [{"date": TODAY - timedelta(days=30), "present": [me.email], "absent": [group.members[1].email]}]
    image = {"src": "cid:heatmap.sample@example.org", "alt": "Sample Group: who is free", "width": 640, "height": 400}
    at = datetime(2027, 4, 25, 17, 30, tzinfo=UTC)  # 18:30 in Lisbon on the first full day
    proposed = Meeting(group.id, "gathering-pas-2027", "sample-gathering@example.org", 0, at, at + timedelta(hours=1),
                       stamp=meeting.stamp)
    moved = proposed.moved(at + timedelta(days=1), at + timedelta(days=1, hours=1), meeting.stamp)
    gathering = describe(SAMPLE_CONFERENCE, group, moved if group.share_member_emails else proposed, me.timezone)
    gathering["coming"] = [m.name for m in group.members]
    return {
        "invite": ctx.for_invite(base, group, me, meeting),
        "update": ctx.for_invite(base, group, me, meeting.moved(meeting.start + timedelta(days=1),
                                                                  meeting.end + timedelta(days=1), meeting.stamp),
                                 previous=meeting),
        "cancel": ctx.for_invite(base, group, me, meeting.cancel(meeting.stamp)),
        "call": ctx.for_call(base, group, me, meeting, [(group, _meeting(group, 2))]),
        "agenda": ctx.for_agenda(base, group, me, meeting, TODAY, [gathering]),
        "follow-up": ctx.for_follow_up(base, group, me, meeting, TODAY + timedelta(days=30), TODAY),
        "nudge": ctx.for_nudge(base, group, me, group.goals[:1], TODAY),
        "review": ctx.for_review(base, group, TODAY - timedelta(days=182), TODAY, attendance, gatherings=[gathering]),
        "year-end": ctx.for_review(base, group, TODAY - timedelta(days=365), TODAY, attendance, year_end=True),
        "alert": {**ctx.for_alert(base, group, me, [TODAY, TODAY + timedelta(days=7)], [option]), "heatmap": image},
        "report": for_report(base, group, me, sample_world(group), datetime.combine(TODAY, time(14), UTC), image),
        "receipt": ctx.for_receipt(base, ["New goal: Draft aims (by 15 March 2027)", "On the agenda: feedback"],
                                   [("away: someday", "\"someday\" is not a date I can read.")],
                                   ["Your reply had more than 50 items; only the first 50 were read."]),
        # A gathering proposed in one variant, moved in the other; template_problems adds the cancellations.
        "gathering": ctx.for_gathering(base, gathering, moved.previous() if group.share_member_emails else None, me),
        "failure": {**base, "failure": failure_payload("agenda", group.members[1].name, group.members[1].email,
                                                       "550 5.1.1 no such user", TODAY)},
    }


# A conference in a zone no sample member is in, so the gathering shows "where you are now".
SAMPLE_CONFERENCE = Conference(name="PAS 2027", city="Lisbon", timezone="Europe/Lisbon",
                               start=date(2027, 4, 24), end=date(2027, 4, 27))


def sample_world(group: Group) -> World:
    """A month in the life of the sample group: two meetings held, one coming with some RSVPs,
    one send that failed for good."""
    a, b, c = (m.email for m in group.members)
    past = [_meeting(group, -56), _meeting(group, -28)]
    past = [Meeting(group.id, key, f"sample-{key}@example.org", 0, m.start, m.end, stamp=m.stamp)
            for key, m in zip(("2027-01", "2027-02"), past)]
    coming = _meeting(group, 0)
    attendance = [
        {"cycle": "2027-01", "email": a, "present": True, "source": "coordinator"},
        {"cycle": "2027-01", "email": b, "present": True, "source": "coordinator"},
        {"cycle": "2027-01", "email": c, "present": False, "source": "coordinator"},
        {"cycle": "2027-02", "email": a, "present": True, "source": "coordinator"},
        {"cycle": "2027-02", "email": b, "present": False, "source": "rsvp"},
        {"cycle": "2027-03", "email": a, "present": True, "source": "rsvp"},
        {"cycle": "2027-03", "email": b, "present": False, "source": "rsvp"},
    ]
    when = datetime(2027, 2, 20, 10, tzinfo=UTC)
    failed = [OutboxRecord(f"agenda:{group.id}:2027-02", Kind.AGENDA, group.id, c, group.members[2].name,
                           group.members[2].timezone, MeetingPayload("2027-02"), when, when, when, when,
                           Status.FAILED, 1, f"550 5.1.1 <{c}>: no such user")]
    return World({(group.id, m.cycle): m for m in (*past, coming)}, {group.id: attendance}, failed)


def failure_payload(kind: str, name: str, email: str, error: str, day: date) -> dict[str, str]:
    """What the coordinators' delivery-failure report says (stored with the report's send)."""
    return FailurePayload(kind, name, email, error, day).context()


def template_problems(templates: Templates) -> list[Problem]:
    """Render every kind with sample data (emails shared and not); one Problem per broken
    template, and one per file in the override folder that no email uses."""
    problems: dict[tuple[str, str], Problem] = {}
    for name in templates.unknown_overrides():
        problems[(name, "")] = Problem(f"templates/{name}", "", "not a template friendtor uses; name it after an "
                                       f"email kind ({', '.join(TEMPLATE_SETS)}) plus .subject.txt, .txt or .html")
    for share in (False, True):
        group = sample_group(share=share)
        contexts = list(sample_contexts(group).items())
        # The failure templates also report calendars that cannot be read (with a summary).
        failure = contexts[-1][1] if contexts[-1][0] == "failure" else sample_contexts(group)["failure"]
        contexts.append(("failure", {**failure, "failure": {**failure["failure"], "kind": "calendar",
                                                             "summary": "friendtor cannot read some calendars."}}))
        gathering = dict(sample_contexts(group)["gathering"])
        for everyone in (True, False):
            contexts.append(("gathering", {**gathering, "gathering": {**gathering["gathering"], "cancelled": True},
                                           "everyone": everyone}))
        # ... and a group that cannot be planned.
        contexts.append(("failure", {**failure, "failure": {**failure["failure"], "kind": "group",
                                                             "error": "internal error (OverflowError)",
                                                             "summary": "friendtor could not plan Sample Group."}}))
        for kind, context in contexts:
            try:
                templates.render(kind, context)
            except TemplateProblem as exc:
                p = exc.problem()
                problems.setdefault((p.file, p.message), p)
                if "template_seconds" in p.message:
                    # One slow template is enough to refuse the folder; rendering the rest (a slow
                    # _layout.html is in every email) would only make `validate` wait longer.
                    return list(problems.values())
    return list(problems.values())
