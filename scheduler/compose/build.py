"""From "this member should get this kind of email" to a finished EmailMessage. Pure.

Invites, updates and cancellations carry a calendar; every other kind is text and HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from scheduler.compose import context as ctx
from scheduler.core.config import Conference, Config, Group, Member
from scheduler.core.gatherings import attendees, conference_of
from scheduler.compose.ical import Invite, Person, calendar
from scheduler.core.meetings import Meeting
from scheduler.core.ports import SharedEvent
from scheduler.compose.messages import Mailbox, compose
from scheduler.compose.render import Templates

CALENDAR_KINDS = {"invite": "REQUEST", "update": "REQUEST", "cancel": "CANCEL", "gathering": "REQUEST"}
HEADER_KIND = {"failure": "alert"}


def sender(config: Config) -> Mailbox:
    mail = config.service.mail
    return Mailbox(mail.sender_name, mail.sender)


def meeting_key(kind: str, meeting: Meeting) -> str:
    """The send's key: the same meeting event never goes out twice under another key."""
    base = f"{kind}:{meeting.group}:{meeting.cycle}"
    return f"{base}:{meeting.sequence}" if kind in ("update", "cancel") else base


def meeting_description(group: Group) -> str:
    """The event's description text, the same in emailed invites and in shared calendars."""
    description = [f"{group.name}: our {group.meetings.cadence} peer mentorship meeting."]
    if group.video_link:
        description.append(f"Join by video: {group.video_link}")
    if group.mission:
        description.append(f"Our mission: {group.mission}")
    description.append("The agenda follows by email a couple of days before.")
    return "\n\n".join(description)


def gathering_description(group: Group, conference: Conference) -> str:
    return (f"{group.name}: meeting in person at {conference.name} in {conference.city}, in the "
            f"conference's local time ({conference.timezone}). The place is agreed by email.")


def invite_calendar(config: Config, group: Group, recipient: Member, meeting: Meeting) -> bytes:
    """The iCalendar object for one recipient: only their own ATTENDEE unless the group shares emails."""
    people = group.members if group.share_member_emails else (recipient,)
    org = sender(config)
    conference = conference_of(config, meeting.cycle)
    if conference is not None:  # a gathering: in person in the conference's city, its own zone
        if group.share_member_emails:
            people = attendees(group, conference)
        invite = Invite(
            uid=meeting.uid, sequence=meeting.sequence, start=meeting.start, end=meeting.end,
            zone=conference.timezone, summary=f"{group.name} at {conference.name}",
            description=gathering_description(group, conference), location=conference.city,
            organizer=Person(org.name, org.email), attendees=tuple(Person(m.name, m.email) for m in people),
            chairs=frozenset(group.coordinators), in_person=True,
        )
        return calendar(invite, "CANCEL" if meeting.cancelled else "REQUEST", stamp=meeting.stamp)
    invite = Invite(
        uid=meeting.uid, sequence=meeting.sequence, start=meeting.start, end=meeting.end,
        zone=group.timezone, summary=group.name, description=meeting_description(group),
        location=group.video_link, organizer=Person(org.name, org.email),
        attendees=tuple(Person(m.name, m.email) for m in people),
        chairs=frozenset(group.coordinators),
    )
    return calendar(invite, "CANCEL" if meeting.cancelled else "REQUEST", stamp=meeting.stamp)


def shared_event(config: Config, group: Group, meeting: Meeting) -> SharedEvent:
    """What a shared calendar (Google, CalDAV) shows for a meeting: the invite's calendar and
    its description text. The invite for any one member carries exactly the summary,
    description, location, times and ORGANIZER everyone gets; only its ATTENDEE list is per
    recipient, and it lists every member when the group shares emails."""
    return SharedEvent(invite_calendar(config, group, group.members[0], meeting), meeting_description(group))


def build(
    kind: str,
    *,
    config: Config,
    templates: Templates,
    group: Group,
    recipient: Member,
    context: dict[str, Any],
    key: str,
    now: datetime,
    meeting: Meeting | None = None,
    images: Sequence[tuple[str, bytes]] = (),
    secret: bytes = b"",
) -> EmailMessage:
    """Render `kind` for one recipient and wrap it in a message (with a calendar for invites).

    `images` are (Content-ID, PNG) pairs the HTML shows inline (see messages.compose).

    `kind` names the templates; the X-Friendtor-Kind header is the kind a member's mail
    filter sees (a delivery-failure report is an "alert" to the coordinators).
    """
    rendered = templates.render(kind, context)
    cal = method = None
    if kind in CALENDAR_KINDS:
        assert meeting is not None, "invites need a meeting"
        method = CALENDAR_KINDS[kind]
        if kind == "gathering" and meeting.cancelled:  # one template for a gathering's every change
            method = "CANCEL"
        # The part's `method=` comes from the kind, the METHOD inside from the meeting
        # (invite_calendar); RFC 6047 requires them to agree, and a "cancel" whose calendar
        # says REQUEST (or the reverse) would add the event instead of removing it.
        if (method == "CANCEL") != meeting.cancelled:
            raise ValueError(f"a {kind} needs a {'cancelled' if method == 'CANCEL' else 'live'} meeting")
        cal = invite_calendar(config, group, recipient, meeting)
    return compose(kind=HEADER_KIND.get(kind, kind), key=key, group=group.id, sender=sender(config),
                   recipient=Mailbox(recipient.name, recipient.email), rendered=rendered,
                   date=now, calendar=cal, method=method, images=images, secret=secret)


def base_context(config: Config, group: Group, recipient: Member) -> dict[str, Any]:
    return ctx.base(group, recipient, config.service.mail.sender_name)
