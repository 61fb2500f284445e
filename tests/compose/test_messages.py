"""Messages as members receive them: every kind built by `preview` on the bundled example
group (twelve members, nine zones), then taken apart the way a mail client would.

Two instants are pinned: NOV, whose next meeting is Thursday 10 December 2026 at 15:00 UTC,
and MARCH (early March 2027), whose next meeting is Thursday 18 March 2027 at 14:00 UTC, in
the fortnight when the US has moved to summer time and Europe has not (New York is 4 hours
behind London instead of 5). The example's calendars are generated deterministically
(config/example/make_calendars.py), so these meeting times are stable.
"""

from __future__ import annotations

import atexit
import email
import re
import shutil
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import vobject

from integrations.calendars import group_availability
from scheduler.compose import context as ctx
from scheduler.core.config import Config
from scheduler.core.errors import UsageError
from scheduler.app.loader import load_config
from scheduler.core.meetings import Meeting
from scheduler.compose.build import base_context, build
from scheduler.cli.preview import preview
from scheduler.app.templates import load_templates
from scheduler.compose.render import KINDS
from scheduler.compose.samples import failure_payload
from builders import with_conference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"
GID = "k-club"

NOV = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MARCH = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)

MAYA = "maya.chen@northeast-childrens.example"        # coordinator, America/New_York
LI = "li.wang@pacific-u.example"                      # coordinator, America/Los_Angeles
PRIYA = "priya.raman@pacific-u.example"               # open goal due 2026-12-10
OLIVER = "oliver.grant@thames-childrens.example"      # Europe/London
ANANYA = "ananya.das@kolkata-ich.example"             # Asia/Kolkata (+05:30)
AOIFE = "aoife.murphy@memorial-nl.example"            # America/St_Johns (-03:30)
LUIS = "luis.romero@desert-childrens.example"         # America/Phoenix (no DST)

CALENDAR_KINDS = {"invite": "REQUEST", "update": "REQUEST", "cancel": "CANCEL", "gathering": "REQUEST"}
ZONE_NAME = re.compile(r"\b(?:Africa|America|Asia|Atlantic|Australia|Europe|Pacific)/[A-Za-z_]+")
TIME_RANGE = re.compile(r"\b\d\d:\d\d–\d\d:\d\d\b")

# A recipient for each kind at NOV: Maya is a coordinator (alert) with an open goal due
# 2026-12-15 (nudge), so she can receive every kind; the second recipient must too.
OTHER = {"alert": LI, "report": LI, "nudge": PRIYA}


@cache
def example() -> Config:
    scratch = tempfile.mkdtemp(prefix="friendtor-example-")
    atexit.register(shutil.rmtree, scratch, True)
    return load_config(with_conference(Path(scratch) / "config"))


@cache
def _availability(day: date) -> dict:
    """Members' busy time from the example's calendars, for 120 days from `day`.

    Read once per day, not per build: a scratch copy of the example has the same calendars.
    """
    config = example()
    start = datetime.combine(day, time(), UTC)
    return group_availability(config, config.groups[GID], start - timedelta(days=1), start + timedelta(days=121))


def build_message(kind: str, to: str | None = MAYA, now: datetime = NOV, config: Config | None = None) -> EmailMessage:
    """What `to` would receive, exactly as `friendtor preview` builds it: a new build every call."""
    config = config or example()
    return preview(config, config.groups[GID], kind, to, now, _availability(now.date()))


# Tests only read messages, so one build of the example per (kind, recipient, now) serves them all.
message = cache(build_message)


def leaves(msg: EmailMessage) -> list[EmailMessage]:
    return [p for p in msg.walk() if not p.is_multipart()]


def part(msg: EmailMessage, content_type: str) -> EmailMessage:
    (found,) = [p for p in leaves(msg) if p.get_content_type() == content_type]
    return found


def text_of(msg: EmailMessage) -> str:
    return part(msg, "text/plain").get_content()


def html_of(msg: EmailMessage) -> str:
    return part(msg, "text/html").get_content()


def calendar_of(msg: EmailMessage):
    return vobject.readOne(part(msg, "text/calendar").get_payload(decode=True).decode("utf-8"))


def everything(msg: EmailMessage) -> str:
    """All a recipient could see: the raw bytes, every decoded header and every decoded part."""
    chunks = [bytes(msg).decode("ascii", "replace")]
    chunks += [f"{name}: {value}" for p in msg.walk() for name, value in p.items()]
    chunks += [p.get_payload(decode=True).decode("utf-8") for p in leaves(msg)]
    return "\n".join(chunks)


def recipients(kind: str, now: datetime) -> list[str]:
    """Members `kind` can go to at `now`: coordinators and others, in several zones.

    (Not all twelve: each build compiles the templates afresh, and four show the same thing.)
    """
    group = example().groups[GID]
    today = now.astimezone(group.tz).date()
    if kind in ("alert", "report"):
        return list(group.coordinators)
    if kind == "nudge":
        return [m.email for m in group.members
                if any(g.member == m.email and not g.done and g.due and g.due >= today for g in group.goals)]
    return [MAYA, LI, OLIVER, ANANYA]


def local_when(start: datetime, end: datetime, zone: str) -> tuple[str, str, str]:
    """(date, time range, zone) as the templates write a meeting time for someone in `zone`."""
    s, e = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    return f"{s:%A} {s.day} {s:%B %Y}", f"{s:%H:%M}–{e:%H:%M}", zone


@pytest.fixture(scope="module")
def shared_config(tmp_path_factory) -> Config:
    """The example with share_member_emails = true, in a scratch copy."""
    folder = with_conference(tmp_path_factory.mktemp("shared") / "config")
    toml = folder / "groups" / f"{GID}.toml"
    text = toml.read_text("utf-8")
    assert "\nstarted = 2026-01-13\n" in text
    toml.write_text(text.replace("\nstarted = 2026-01-13\n", "\nstarted = 2026-01-13\nshare_member_emails = true\n"),
                    "utf-8")
    return load_config(folder)


# --- structure ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", CALENDAR_KINDS)
def test_invites_are_imip_mixed_with_alternative_and_attachment(kind):
    """invite/update/cancel: mixed(alternative(plain, html, calendar), invite.ics) with identical calendar bytes."""
    msg = message(kind)
    assert msg.get_content_type() == "multipart/mixed"
    top = list(msg.iter_parts())
    assert [p.get_content_type() for p in top] == ["multipart/alternative", "application/ics"]
    alternative, attachment = top
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html", "text/calendar"]
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content_disposition() == "attachment"
    inline = part(msg, "text/calendar").get_payload(decode=True)
    assert attachment.get_payload(decode=True) == inline
    assert inline.startswith(b"BEGIN:VCALENDAR\r\n")


@pytest.mark.parametrize("kind", CALENDAR_KINDS)
def test_calendar_method_parameter_matches_method_inside(kind):
    """The text/calendar part's method= equals its METHOD: REQUEST for invite/update, CANCEL for cancel."""
    msg = message(kind)
    assert part(msg, "text/calendar").get_param("method") == CALENDAR_KINDS[kind]
    assert calendar_of(msg).method.value == CALENDAR_KINDS[kind]


@pytest.mark.parametrize("kind", CALENDAR_KINDS)
def test_calendar_organizer_is_the_sender(kind):
    """The ORGANIZER is the From address, so Accept/Decline replies reach the service's mailbox."""
    msg = message(kind)
    sender = example().service.mail.sender
    assert calendar_of(msg).vevent.organizer.value.lower() == f"mailto:{sender}"
    assert msg["From"].addresses[0].addr_spec == sender


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in CALENDAR_KINDS])
def test_other_kinds_are_plain_and_html_alternatives_only(kind):
    """Agendas, follow-ups, nudges, reviews and alerts carry text and HTML and nothing else."""
    msg = message(kind)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert not any(p.get_filename() for p in msg.walk())


# --- headers --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_headers_name_one_recipient_the_sender_the_kind_and_the_group(kind):
    """To holds exactly the recipient; From is the service sender; X-Friendtor-Kind/-Group say what and whose."""
    msg = message(kind, MAYA)
    assert len(msg.get_all("To")) == 1
    (to,) = msg["To"].addresses
    assert to.addr_spec == MAYA and to.display_name == "Maya Chen"
    mail = example().service.mail
    (sender,) = msg["From"].addresses
    assert (sender.addr_spec, sender.display_name) == (mail.sender, mail.sender_name)
    assert msg["X-Friendtor-Kind"] in {"invite", "update", "cancel", "call", "agenda", "follow-up", "nudge",
                                       "review", "year-end", "alert", "report", "receipt", "gathering"}
    assert msg["X-Friendtor-Kind"] == kind
    assert msg["X-Friendtor-Group"] == GID
    assert not msg.get_all("Cc") and not msg.get_all("Bcc")


@pytest.mark.parametrize("kind", KINDS)
def test_message_id_is_deterministic_per_key_and_recipient(kind):
    """Same send to the same member: same Message-ID (duplicates get dropped); another member: another."""
    first, again = build_message(kind, MAYA), build_message(kind, MAYA)
    other = build_message(kind, OTHER.get(kind, OLIVER))
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] != other["Message-ID"]
    assert re.fullmatch(r"<[0-9a-f]{40}@mentoring\.example\.org>", first["Message-ID"])


def test_message_id_survives_a_later_resend():
    """A resend an hour later (after a crash) carries the invite's Message-ID; only Date moves."""
    first, later = build_message("invite", MAYA, NOV), build_message("invite", MAYA, NOV + timedelta(hours=1))
    assert first["X-Friendtor-Key"] == later["X-Friendtor-Key"]
    assert first["Message-ID"] == later["Message-ID"]
    assert first["Date"] != later["Date"]


@pytest.mark.parametrize("now", [NOV, MARCH], ids=["nov", "march"])
@pytest.mark.parametrize("kind", KINDS)
def test_date_header_is_now(kind, now):
    """The Date header is the instant the message was built for, not the wall clock."""
    if kind == "nudge" and now == MARCH:
        now = NOV  # every goal in the example falls due before March 2027
    assert message(kind, MAYA, now)["Date"].datetime == now


# --- privacy --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_no_other_members_address_anywhere(kind):
    """With share_member_emails false, a message shows no address but its recipient's, in any part or encoding."""
    group = example().groups[GID]
    assert not group.share_member_emails
    for to in recipients(kind, NOV):
        seen = everything(message(kind, to)).lower()
        assert to in seen
        leaked = [m.email for m in group.members if m.email != to and m.email in seen]
        assert leaked == [], f"{kind} to {to} shows {leaked}"


def test_unshared_invite_lists_only_its_recipient_as_attendee():
    """Without sharing, the invite's calendar has one ATTENDEE: the recipient, with RSVP."""
    event = calendar_of(message("invite", OLIVER)).vevent
    (attendee,) = event.attendee_list
    assert attendee.value.lower() == f"mailto:{OLIVER}"
    assert attendee.params["RSVP"] == ["TRUE"]


def test_shared_invite_lists_every_member_as_attendee(shared_config):
    """With share_member_emails = true the calendar has an ATTENDEE for every member (coordinators as CHAIR)."""
    group = shared_config.groups[GID]
    assert group.share_member_emails
    event = calendar_of(build_message("invite", OLIVER, config=shared_config)).vevent
    attendees = {a.value.lower().removeprefix("mailto:"): a.params["ROLE"][0] for a in event.attendee_list}
    assert attendees == {m.email: "CHAIR" if m.email in group.coordinators else "REQ-PARTICIPANT"
                         for m in group.members}


def test_shared_invite_still_goes_to_one_recipient(shared_config):
    """Sharing addresses puts them in the calendar, never in To or Cc: still one message per member."""
    msg = build_message("invite", OLIVER, config=shared_config)
    assert [a.addr_spec for a in msg["To"].addresses] == [OLIVER]
    assert msg.get_all("Cc") is None


# --- times ----------------------------------------------------------------------------

# (now, member, the meeting as that member's invite must say it)
LOCAL_TIMES = [
    (NOV, MAYA, ("Thursday 10 December 2026", "10:00–11:00", "America/New_York")),
    (NOV, OLIVER, ("Thursday 10 December 2026", "15:00–16:00", "Europe/London")),
    (NOV, ANANYA, ("Thursday 10 December 2026", "20:30–21:30", "Asia/Kolkata")),
    (NOV, AOIFE, ("Thursday 10 December 2026", "11:30–12:30", "America/St_Johns")),
    (NOV, LUIS, ("Thursday 10 December 2026", "08:00–09:00", "America/Phoenix")),
    # US summer time has begun, European has not: London is 4 hours ahead of New York, not 5.
    (MARCH, MAYA, ("Thursday 18 March 2027", "10:00–11:00", "America/New_York")),
    (MARCH, OLIVER, ("Thursday 18 March 2027", "14:00–15:00", "Europe/London")),
    (MARCH, ANANYA, ("Thursday 18 March 2027", "19:30–20:30", "Asia/Kolkata")),
    (MARCH, LUIS, ("Thursday 18 March 2027", "07:00–08:00", "America/Phoenix")),
]


@pytest.mark.parametrize("kind", ["invite", "cancel", "agenda"])
@pytest.mark.parametrize(("now", "to", "expected"), LOCAL_TIMES,
                         ids=[f"{n:%b}-{t.split('.')[0]}" for n, t, _ in LOCAL_TIMES])
def test_meeting_time_is_in_the_recipients_zone_and_names_it(kind, now, to, expected):
    """Subject, text and HTML give the meeting in the recipient's wall-clock time with their zone named."""
    day, hours, zone = expected
    msg = message(kind, to, now)
    text, html = text_of(msg), html_of(msg)
    assert f"{day}, {hours} ({zone})" in text
    assert f"{day} at {hours} ({zone})" in msg["Subject"]
    assert day in html and hours in html and zone in html
    # No other time or zone slips in (the UTC time is labelled "UTC", not a range).
    assert set(TIME_RANGE.findall(text)) == {hours}
    assert set(ZONE_NAME.findall(text)) == {zone}
    assert set(ZONE_NAME.findall(html)) == {zone}


@pytest.mark.parametrize("now", [NOV, MARCH], ids=["nov", "march"])
@pytest.mark.parametrize("to", [MAYA, OLIVER, ANANYA], ids=["new-york", "london", "kolkata"])
def test_calendar_start_matches_the_time_in_the_text(now, to):
    """The event vobject reads from the invite, seen from the member's zone, is the time the text states."""
    msg = message("invite", to, now)
    event = calendar_of(msg).vevent
    start, end = event.dtstart.value, event.dtend.value
    # In the group's zone, resolved through the VTIMEZONE rules shipped in the calendar, as clients do.
    assert b"DTSTART;TZID=America/New_York:" in part(msg, "text/calendar").get_payload(decode=True)
    assert start.tzinfo is not None
    zone = example().groups[GID].member(to).timezone
    day, hours, _ = local_when(start, end, zone)
    assert f"{day}, {hours} ({zone})" in text_of(msg)
    expected = next(e for n, t, e in LOCAL_TIMES if n == now and t == to)
    assert (day, hours, zone) == expected


def test_update_gives_new_and_old_time_in_the_recipients_zone():
    """An update states the new time (the one in its calendar) and the old one, both in the member's zone."""
    invite, update = message("invite", ANANYA), message("update", ANANYA)
    old, new = calendar_of(invite).vevent, calendar_of(update).vevent
    assert new.dtstart.value != old.dtstart.value
    text = text_of(update)
    new_day, new_hours, zone = local_when(new.dtstart.value, new.dtend.value, "Asia/Kolkata")
    old_day, old_hours, _ = local_when(old.dtstart.value, old.dtend.value, "Asia/Kolkata")
    assert re.search(rf"New time: +{new_day}, {new_hours} \({zone}\)", text)
    assert re.search(rf"Was: +{old_day}, {old_hours} \({zone}\)", text)
    assert f"{new_day} at {new_hours} ({zone})" in update["Subject"]


def test_alert_options_are_in_the_coordinators_zone():
    """A coordinator in Los Angeles reads the alert's options in America/Los_Angeles."""
    # Only the options: a reason may name another member's zone ("22:30 in Asia/Kolkata") on purpose.
    text = text_of(message("alert", LI))
    options = re.findall(r"^\d\. (.*): \d+% expected$", text, re.M)
    assert options[0] == "Thursday 10 December 2026, 07:00–08:00 (America/Los_Angeles)"
    assert all(o.endswith(" (America/Los_Angeles)") for o in options) and len(options) == 3


# --- updates and cancellations --------------------------------------------------------

@pytest.mark.parametrize(("kind", "status"), [("update", "CONFIRMED"), ("cancel", "CANCELLED")])
def test_update_and_cancel_keep_uid_and_bump_sequence(kind, status):
    """Update and cancel reuse the invite's UID with a SEQUENCE above any one member's copy
    (which a leave and a re-invite can take to 2), so every client changes the event it has."""
    invite = calendar_of(message("invite")).vevent
    changed = calendar_of(message(kind)).vevent
    assert invite.sequence.value == "0"
    assert changed.uid.value == invite.uid.value
    assert changed.sequence.value == "3"
    assert changed.status.value == status


@pytest.mark.parametrize(("kind", "cancelled"), [("cancel", False), ("invite", True), ("update", True)])
def test_build_refuses_a_calendar_that_contradicts_its_kind(kind, cancelled):
    """outgoing.build will not send a "cancel" whose calendar says REQUEST, nor an invite that cancels."""
    config = example()
    group = config.groups[GID]
    me = group.member(MAYA)
    start = datetime(2026, 12, 10, 15, tzinfo=UTC)
    meeting = Meeting(GID, "2026-12", "k-club-2026-12@mentoring.example.org", 0, start,
                      start + timedelta(hours=1), stamp=NOV)
    if cancelled:
        meeting = meeting.cancel(NOV)
    context = ctx.for_invite(base_context(config, group, me), group, me, meeting)
    with pytest.raises(ValueError, match=kind):
        build(kind, config=config, templates=load_templates(None), group=group, recipient=me,
              context=context, key=f"{kind}:x", now=NOV, meeting=meeting)


def test_delivery_failure_report_is_an_alert_that_hides_the_address():
    """The coordinators' "could not deliver" report is X-Friendtor-Kind alert and names the member, not the address."""
    config = example()
    group = config.groups[GID]
    me, failed = group.member(MAYA), group.member(OLIVER)
    context = {**base_context(config, group, me),
               "failure": failure_payload("agenda", failed.name, failed.email, "550 5.1.1 no such user", NOV.date())}
    msg = build("failure", config=config, templates=load_templates(None), group=group, recipient=me,
                context=context, key="failure:k-club:x", now=NOV)
    assert msg["X-Friendtor-Kind"] == "alert"
    assert [a.addr_spec for a in msg["To"].addresses] == [MAYA]
    seen = everything(msg).lower()
    assert "oliver grant" in seen and OLIVER not in seen


def test_nudge_without_an_open_goal_is_refused():
    """preview will not invent a nudge for a member with nothing due (every example goal is due before March)."""
    with pytest.raises(UsageError, match="no open goal"):
        message("nudge", MAYA, MARCH)


# --- serialisation --------------------------------------------------------------------

def _shape(msg: EmailMessage) -> list[tuple]:
    out = []
    for p in msg.walk():
        payload = None if p.is_multipart() else p.get_payload(decode=True)
        if payload is not None and p.get_content_maintype() == "text" and p.get_content_subtype() != "calendar":
            payload = payload.replace(b"\r\n", b"\n")  # SMTP line endings in text parts are transport, not content
        out.append((p.get_content_type(), p.get_param("method"), p.get_filename(), payload))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_serialises_for_smtp_and_parses_back_the_same(kind):
    """bytes under policy.SMTP (CRLF, short lines, 7-bit) parse back with the same headers and the same parts."""
    msg = message(kind)
    data = msg.as_bytes(policy=policy.SMTP)
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    data.decode("ascii")  # 7-bit: smtplib never declares BODY=8BITMIME, so non-ASCII must travel encoded
    back = email.message_from_bytes(data, policy=policy.default)
    for header in ("Subject", "From", "To", "Date", "Message-ID", "X-Friendtor-Kind", "X-Friendtor-Group"):
        assert str(back[header]) == str(msg[header]), header
    assert _shape(back) == _shape(msg)
    if kind in CALENDAR_KINDS:
        calendar = part(back, "text/calendar").get_payload(decode=True)
        assert b"\r\n" in calendar and b"\n" not in calendar.replace(b"\r\n", b"")  # RFC 5545 CRLF intact
