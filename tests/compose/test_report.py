"""The coordinators' monthly report: planned on the 1st for coordinators only, rendered at
send time with the attendance trend, overdue goals, who has not answered and failed sends."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import Image

from builders import outbox_record
from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Config, Group, Service
from scheduler.compose.select import World, message_for
from scheduler.core.outbox import OutboxRecord
from scheduler.core.meetings import Meeting
from scheduler.core.planner import Plan, StateView, plan
from scheduler.app.templates import load_templates

MAYA, RAVI, ANA, LI = "maya@uni-a.example", "ravi@uni-b.example", "ana@uni-c.example", "li@uni-d.example"
MEMBERS = [
    {"name": "Maya Chen", "email": MAYA, "timezone": "America/New_York"},
    {"name": "Ravi Iyer", "email": RAVI, "timezone": "Asia/Kolkata", "hours": "17:00-22:00"},
    {"name": "Ana Souza", "email": ANA, "timezone": "Europe/London"},
    {"name": "Li Wang", "email": LI, "timezone": "America/Los_Angeles"},
]


def config(**group) -> Config:
    g = Group.model_validate({
        "id": "g", "name": "G", "timezone": "America/New_York", "started": date(2026, 6, 2),
        "coordinators": [MAYA, LI], "members": MEMBERS,
        "meetings": {"weekdays": ["tue", "wed", "thu"], "weeks_of_month": [2, 3]},
        "goals": [
            {"member": RAVI, "text": "Submit abstract", "due": date(2027, 2, 20)},
            {"member": RAVI, "text": "Exercise weekly"},
            {"member": ANA, "text": "Send R01", "due": date(2027, 1, 15), "done": True},
            {"member": ANA, "text": "Ask for the dataset", "due": date(2027, 2, 1)},
            {"member": MAYA, "text": "Draft aims", "due": date(2027, 4, 1)},
        ],
        **group,
    })
    return Config(folder=Path("/nonexistent"), service=Service(), groups={"g": g})


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def free(group, window):
    return {}


class State:
    def __init__(self):
        self.meetings, self.sent = {}, set()

    def tick(self, cfg, now, availability=free) -> Plan:
        p = plan(cfg, StateView(dict(self.meetings), frozenset(self.sent), {}, {}), now, availability)
        for m in p.meetings:
            self.meetings[(m.group, m.cycle)] = m
        self.sent |= {s.sid for s in p.sends}
        return p


def reports(p: Plan) -> list[tuple[str, str]]:
    return sorted((s.key, s.recipient) for s in p.sends if s.kind == "report")


# --- planning -------------------------------------------------------------------------------

def test_report_on_the_first_at_nine_group_time_once_to_coordinators_only():
    """Nothing at 08:00 New York on the 1st; at 09:00 one report per coordinator; never again that month."""
    cfg, st = config(), State()
    assert reports(st.tick(cfg, at(2027, 3, 1, 13, 59))) == []          # 08:59 EST
    p = st.tick(cfg, at(2027, 3, 1, 14))                                  # 09:00 EST
    assert reports(p) == [("report:g:2027-03", LI), ("report:g:2027-03", MAYA)]
    (send,) = [s for s in p.sends if s.kind == "report" and s.recipient == MAYA]
    assert send.due == at(2027, 3, 1, 14) and send.payload.month == "2027-03"
    for day in range(1, 32):
        assert reports(st.tick(cfg, at(2027, 3, day, 18))) == []
    assert reports(st.tick(cfg, at(2027, 4, 1, 13))) == [("report:g:2027-04", LI), ("report:g:2027-04", MAYA)]


def test_report_late_within_seven_days_then_skipped():
    """Down over the 1st: the report goes out on the 6th; first tick on the 9th: no report that month."""
    cfg = config()
    assert reports(State().tick(cfg, at(2027, 3, 6, 12))) == [("report:g:2027-03", LI), ("report:g:2027-03", MAYA)]
    assert reports(State().tick(cfg, at(2027, 3, 9, 12))) == []


def test_no_report_for_the_month_the_group_started():
    """A group that started on 2 March gets its first report on 1 April."""
    cfg = config(started=date(2027, 3, 2))
    assert reports(State().tick(cfg, at(2027, 3, 1, 15))) == []
    assert len(reports(State().tick(cfg, at(2027, 4, 1, 15)))) == 2


def test_report_carries_the_next_windows_heatmap():
    """The report's payload holds the grid of the next cycle window, read through the availability function."""
    cfg = config()
    asked = []

    def availability(group, window):
        asked.append(window.key)
        return {}

    p = State().tick(cfg, at(2027, 3, 1, 15), availability)
    (send, _) = [s for s in p.sends if s.kind == "report"]
    assert [d for d, _ in send.payload.heatmap["days"]][0] == "2027-03-09"
    assert "2027-03" in asked


# --- rendering ------------------------------------------------------------------------------

NOW = at(2027, 3, 1, 14)


def meeting(cycle: str, day: date, hour: int = 15) -> Meeting:
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return Meeting("g", cycle, f"g-{cycle}@example.org", 0, start, start + timedelta(hours=1), stamp=at(2026, 6, 1))


def world() -> World:
    """Eight meetings held (the trend shows the last six), one coming with two RSVPs, two failed sends."""
    held = [("2026-07", date(2026, 7, 14)), ("2026-08", date(2026, 8, 11)), ("2026-09", date(2026, 9, 8)),
            ("2026-10", date(2026, 10, 13)), ("2026-11", date(2026, 11, 10)), ("2026-12", date(2026, 12, 8)),
            ("2027-01", date(2027, 1, 12)), ("2027-02", date(2027, 2, 9))]
    meetings = {("g", c): meeting(c, d) for c, d in held}
    meetings[("g", "2027-03")] = meeting("2027-03", date(2027, 3, 9))
    present = {"2026-07": 4, "2026-08": 4, "2026-09": 1, "2026-10": 2, "2026-11": 3, "2026-12": 1,
               "2027-01": 2, "2027-02": 3}
    attendance = []
    for cycle, n in present.items():
        for i, email in enumerate((MAYA, RAVI, ANA, LI)):
            attendance.append({"group": "g", "cycle": cycle, "email": email, "present": i < n,
                               "source": "coordinator"})
    attendance += [{"group": "g", "cycle": "2027-03", "email": MAYA, "present": True, "source": "rsvp"},
                   {"group": "g", "cycle": "2027-03", "email": ANA, "present": False, "source": "rsvp"}]
    failed = [outbox_record(**doc) for doc in (
        {"group": "g", "kind": "agenda", "recipient": RAVI, "name": "Ravi Iyer", "status": "failed",
         "last_error": f"550 5.1.1 <{RAVI}>: mailbox unavailable", "updated": "2027-02-06T15:00:00Z"},
        {"group": "g", "kind": "invite", "recipient": ANA, "name": "Ana Souza", "status": "failed",
         "last_error": "554 too old to matter", "updated": "2026-12-20T15:00:00Z"},       # before last month
        {"group": "other", "kind": "invite", "recipient": "x@y.example", "name": "Someone Else",
         "status": "failed", "last_error": "550 other group", "updated": "2027-02-10T15:00:00Z"},
    )]
    return World(meetings, {"g": attendance}, failed)


def report_doc(payload=None, recipient=MAYA, name="Maya Chen", zone="America/New_York") -> OutboxRecord:
    return outbox_record(key="report:g:2027-03", kind="report", group="g", recipient=recipient, name=name,
                         timezone=zone, payload=payload or {"month": "2027-03"}, created="2027-03-01T14:00:00Z")


def render(cfg=None, **doc):
    msg = message_for(report_doc(**doc), cfg or config(), world(), load_templates(None), NOW)
    return msg, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_report_shows_the_last_six_meetings_against_the_target():
    """Trend: the last six meetings with present/of and percent, each against 50%, and the average."""
    msg, text, html = render()
    assert msg["X-Friendtor-Kind"] == "report"
    assert msg["Subject"] == "Coordinators' report for G, March 2027"
    assert "Jul 2026" not in text and "Aug 2026" not in text
    for line in ("Tue 8 Sep 2026: 1 of 4 (25%), below 50%", "Tue 13 Oct 2026: 2 of 4 (50%), target met",
                 "Tue 10 Nov 2026: 3 of 4 (75%), target met", "Tue 8 Dec 2026: 1 of 4 (25%), below 50%",
                 "Tue 12 Jan 2027: 2 of 4 (50%), target met", "Tue 9 Feb 2027: 3 of 4 (75%), target met"):
        assert line in text
    assert "Average: 50% against our target of 50%: target met." in text
    assert "3 of 4 (75%)" in html and "Average <strong>50%</strong>" in html


def test_report_lists_overdue_goals_by_member():
    """Goals: counts, and each member's overdue goals with their due dates; done and future goals are not overdue."""
    _, text, html = render()
    assert "1 done, 4 open, 2 overdue." in text
    assert "Ravi Iyer:\n    - Submit abstract (was due Sat 20 Feb 2027)" in text
    assert "Ana Souza:\n    - Ask for the dataset (was due Mon 1 Feb 2027)" in text
    assert "Draft aims" not in text and "Send R01" not in text
    assert "<strong>Ravi Iyer</strong>: Submit abstract" in html


def test_report_names_who_has_not_answered_the_next_invite_in_the_readers_zone():
    """The next meeting in the coordinator's own zone, with accepted, declined and not answered (no RSVP record)."""
    _, text, _ = render()
    assert "Tuesday 9 March 2027, 10:00–11:00 (America/New_York)" in text
    assert "Accepted: Maya Chen\n" in text and "Declined: Ana Souza\n" in text
    assert "Not answered: Ravi Iyer, Li Wang\n" in text
    _, text, _ = render(recipient=LI, name="Li Wang", zone="America/Los_Angeles")
    assert "Tuesday 9 March 2027, 07:00–08:00 (America/Los_Angeles)" in text


def test_report_lists_failed_sends_since_last_month_without_addresses():
    """Failed sends of this group since 1 February, with the member's name in place of their address."""
    _, text, html = render()
    assert "since Mon 1 Feb 2027" in text
    assert "Sat 6 Feb 2027: agenda to Ravi Iyer: 550 5.1.1 <Ravi Iyer>: mailbox unavailable" in text
    assert "too old to matter" not in text and "other group" not in text
    assert RAVI not in text and RAVI not in html and ANA not in text
    _, shared, _ = render(cfg=config(share_member_emails=True))
    assert f"agenda to Ravi Iyer <{RAVI}>: 550 5.1.1 <{RAVI}>" in shared


def test_report_without_a_meeting_names_the_next_window():
    """No meeting scheduled yet: the report says when the time will be found, and shows no RSVP lists."""
    w = world()
    bare = World({k: v for k, v in w.meetings.items() if k[1] != "2027-03"}, w.attendance, w.failed)
    msg = message_for(report_doc(), config(), bare, load_templates(None), NOW)
    text = msg.get_body(("plain",)).get_content()
    assert "Not scheduled yet: friendtor will pick a time between Tue 9 Mar 2027 and Thu 18 Mar 2027." in text
    assert "Not answered" not in text


def test_report_embeds_its_heatmap_inline():
    """A report planned with a grid carries it as an inline PNG referenced from the HTML."""
    cfg = config()

    def availability(group, window):
        return {MAYA: Availability((Busy(at(2027, 3, 9, 14), at(2027, 3, 9, 16)),))}

    p = State().tick(cfg, at(2027, 3, 1, 15), availability)
    send = next(s for s in p.sends if s.kind == "report" and s.recipient == MAYA)
    msg = message_for(report_doc(send.payload.to_json()), cfg, world(), load_templates(None), NOW)
    (image,) = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in msg.get_body(("html",)).get_content()
    assert Image.open(io.BytesIO(image.get_payload(decode=True))).format == "PNG"


def test_report_to_someone_no_longer_a_member_is_skipped():
    """A coordinator removed from the group gets no report."""
    msg = message_for(report_doc(recipient="gone@uni.example", name="Gone"), config(), world(), load_templates(None), NOW)
    assert not hasattr(msg, "walk")
