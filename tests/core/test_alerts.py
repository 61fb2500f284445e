"""The coordinators' alerts: unreadable calendars (planned by the planner) and failed sends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from builders import group, member

from scheduler.core.alerts import calendar_alerts, failure_alerts
from scheduler.core.availability import Availability
from scheduler.core.config import Config, Service
from scheduler.core.outbox import FailurePayload, Kind, MeetingPayload, OutboxRecord, Status
from scheduler.core.planner import StateView, plan

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
ANA, RAVI, LI = member("Ana Souza", "Europe/London"), member("Ravi Iyer", "Asia/Kolkata"), member("Li Wang", "UTC")
G = group(ANA, RAVI, LI)   # Ana coordinates
REVOKED = Availability.unreadable("sign-in revoked: run friendtor google-auth", needs_fix=True)


def failed(recipient: str, kind: Kind = Kind.AGENDA, payload=MeetingPayload("2027-03")) -> OutboxRecord:
    return OutboxRecord(f"{kind}:g:2027-03", kind, "g", recipient, "Someone", "UTC", payload, NOW, NOW, NOW, NOW,
                        Status.FAILED, 1, "550 no such user")


def config() -> Config:
    return Config(folder=Path("/nonexistent"), service=Service(), groups={"g": G})


def test_an_unreadable_calendar_is_one_alert_per_coordinator_per_problem():
    """Two members with the same problem: one alert to each coordinator, naming both, keyed by the problem."""
    problems, sends = calendar_alerts(G, {ANA["email"]: Availability(), RAVI["email"]: REVOKED,
                                          LI["email"]: REVOKED}, NOW)
    assert [(p.group, p.reason, p.members) for p in problems] == [("g", REVOKED.unknown, (RAVI["email"],
                                                                                           LI["email"]))]
    [alert] = sends
    assert (alert.kind, alert.recipient, alert.due) == (Kind.ALERT, ANA["email"], NOW)
    assert alert.key.startswith("calendar-problem:g:")
    assert isinstance(alert.payload, FailurePayload) and alert.payload.kind == "calendar"
    assert "Ravi Iyer, Li Wang" in alert.payload.summary and alert.payload.date == date(2027, 3, 1)


def test_a_calendar_that_will_come_back_by_itself_is_no_alert():
    """A timeout is unknown for now, not a fix for a person to make: no alert."""
    assert calendar_alerts(G, {RAVI["email"]: Availability.unreadable("timed out")}, NOW) == ([], [])


def test_the_planner_plans_calendar_alerts_once_and_not_in_a_dry_run():
    """The planner alerts the coordinators about calendars it read this tick; a key already in
    the outbox is not planned again, and a dry run neither alerts nor reports (as before the split)."""
    def availability(g, window):
        return {RAVI["email"]: REVOKED}

    cfg = config()
    first = plan(cfg, StateView.empty(), NOW, availability)
    alerts = [s for s in first.sends if s.key.startswith("calendar-problem:")]
    assert first.problems  # March's window is open and has no meeting yet: calendars were read
    assert [s.recipient for s in alerts] == [ANA["email"]]
    again = plan(cfg, StateView({}, frozenset(s.sid for s in alerts), {}, {}), NOW, availability)
    assert not [s for s in again.sends if s.key.startswith("calendar-problem:")]
    dry = plan(cfg, StateView.empty(), NOW, availability, alert_calendars=False)
    assert dry.problems == ()
    assert not [s for s in dry.sends if s.key.startswith("calendar-problem:")]


def test_a_failed_send_is_told_to_each_other_coordinator_once():
    """Every coordinator but the one who did not get it hears of a failed send, once; an alert
    that itself failed is not reported again, nor a send of a group no longer in the config."""
    cfg = config()
    [alert] = failure_alerts(cfg, [failed(RAVI["email"])], frozenset(), NOW)
    assert (alert.key, alert.recipient) == (f"failure:agenda:g:2027-03:{RAVI['email']}", ANA["email"])
    assert alert.payload == FailurePayload("agenda", "Someone", RAVI["email"], "550 no such user", date(2027, 3, 1))
    assert failure_alerts(cfg, [failed(ANA["email"])], frozenset(), NOW) == ()   # the only coordinator
    assert failure_alerts(cfg, [failed(RAVI["email"])], frozenset({alert.sid}), NOW) == ()
    loop = failed(ANA["email"], Kind.ALERT, alert.payload)
    assert failure_alerts(cfg, [loop], frozenset(), NOW) == ()
    gone = OutboxRecord("agenda:x:2027-03", Kind.AGENDA, "x", RAVI["email"], "R", "UTC", MeetingPayload("2027-03"),
                        NOW, NOW, NOW, NOW, Status.FAILED)
    assert failure_alerts(cfg, [gone], frozenset(), NOW) == ()
