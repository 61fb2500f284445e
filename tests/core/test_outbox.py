"""The outbox records: kinds, payloads as the state stores them, expiry and retry backoff."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from builders import group, member

from scheduler.core.outbox import (FINISHED, OPEN, Addressee, FailurePayload, Kind, MeetingPayload, NoQuorumPayload,
                                   NudgePayload, OutboxRecord, PeriodPayload, ReceiptPayload, ReportPayload, Send, Status, expires,
                                   payload_from_json, retry_delay)

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
G = group(member("Ana Souza", "Europe/London"), member("Ravi Iyer", "Asia/Kolkata"))

# One payload per kind, each as the planner plans it and as the state file has always held it.
PAYLOADS = [
    (Kind.INVITE, MeetingPayload("2027-03"), {"cycle": "2027-03"}),
    (Kind.INVITE, MeetingPayload("2027-03", bump=2), {"cycle": "2027-03", "bump": 2}),
    (Kind.UPDATE, MeetingPayload("2027-03", sequence=3), {"cycle": "2027-03", "sequence": 3}),
    (Kind.CANCEL, MeetingPayload("2027-03"), {"cycle": "2027-03"}),
    (Kind.CALL, MeetingPayload("2027-03"), {"cycle": "2027-03"}),
    (Kind.CALL, MeetingPayload("2027-03", also=(("second-circle", "2027-03"),)),
     {"cycle": "2027-03", "also": [["second-circle", "2027-03"]]}),
    (Kind.GATHERING, MeetingPayload("gathering-pas-2027"), {"cycle": "gathering-pas-2027"}),
    (Kind.AGENDA, MeetingPayload("2027-03"), {"cycle": "2027-03"}),
    (Kind.FOLLOW_UP, MeetingPayload("2027-03"), {"cycle": "2027-03"}),
    (Kind.PUBLISH, MeetingPayload("2027-03"), {"cycle": "2027-03"}),
    (Kind.NUDGE, NudgePayload(date(2027, 3, 10)), {"due": "2027-03-10"}),
    (Kind.REVIEW, PeriodPayload(date(2026, 9, 1), date(2027, 3, 1)), {"start": "2026-09-01", "end": "2027-03-01"}),
    (Kind.YEAR_END, PeriodPayload(date(2026, 1, 1), date(2026, 12, 31)),
     {"start": "2026-01-01", "end": "2026-12-31"}),
    (Kind.ALERT, NoQuorumPayload("2027-03", (date(2027, 3, 9),), ({"start": "x"},), {"days": []}),
     {"cycle": "2027-03", "dates": ["2027-03-09"], "options": [{"start": "x"}], "heatmap": {"days": []}}),
    (Kind.ALERT, FailurePayload("agenda", "Ana Souza", "ana@uni.example", "550 no such user", date(2027, 3, 1)),
     {"failure": {"kind": "agenda", "name": "Ana Souza", "email": "ana@uni.example", "error": "550 no such user",
                  "date": "2027-03-01"}}),
    (Kind.ALERT, FailurePayload("calendar", "", "", "revoked", date(2027, 3, 1), "cannot read"),
     {"failure": {"kind": "calendar", "name": "", "email": "", "error": "revoked", "date": "2027-03-01",
                  "summary": "cannot read"}}),
    (Kind.REPORT, ReportPayload("2027-03"), {"month": "2027-03"}),
    (Kind.REPORT, ReportPayload("2027-03", {"days": []}), {"month": "2027-03", "heatmap": {"days": []}}),
    (Kind.RECEIPT, ReceiptPayload("<r@x.example>", ("New goal: aims",), (("away: soon", "not a date"),), ("cut",)),
     {"reply": "<r@x.example>", "recorded": ["New goal: aims"], "not_understood": [["away: soon", "not a date"]],
      "notes": ["cut"]}),
]


@pytest.mark.parametrize("kind, payload, stored", PAYLOADS)
def test_each_payload_is_stored_as_it_always_was_and_reads_back(kind, payload, stored):
    """Every kind's payload keeps the state file's JSON shape, and reads back as the same value."""
    assert payload.to_json() == stored
    assert payload_from_json(kind, json.loads(json.dumps(stored))) == payload


def test_every_kind_has_a_payload_case():
    """No kind is left without a payload the store can read."""
    assert {kind for kind, _, _ in PAYLOADS} == set(Kind)


@pytest.mark.parametrize("kind, data", [
    (Kind.INVITE, {}), (Kind.UPDATE, {"cycle": 2027}), (Kind.NUDGE, {"due": "soon"}),
    (Kind.REVIEW, {"start": "2027-01-01"}), (Kind.ALERT, {"failure": {"kind": "agenda"}}), (Kind.REPORT, {}),
    (Kind.RECEIPT, {"reply": "<r@x>", "recorded": [1], "not_understood": [], "notes": []}),
], ids=["invite-empty", "cycle-number", "due-text", "review-no-end", "failure-partial", "report-empty",
        "receipt-number"])
def test_a_payload_that_does_not_fit_its_kind_is_refused(kind, data):
    """A payload missing or mistyping a field raises (the store names the record when it reads the state)."""
    with pytest.raises((KeyError, TypeError, ValueError)):
        payload_from_json(kind, data)


def test_open_and_finished_cover_every_status():
    """Each status is either still to do or done, never both."""
    assert set(OPEN) | set(FINISHED) == set(Status) and not set(OPEN) & set(FINISHED)


def test_channel_is_mail_or_one_shared_calendar():
    """A publish goes out through its calendar's channel; everything else by mail."""
    publish = OutboxRecord("publish:g:2027-03:0", Kind.PUBLISH, "g", "caldav", "caldav", "UTC",
                           MeetingPayload("2027-03"), NOW, NOW, NOW, NOW)
    agenda = OutboxRecord("agenda:g:2027-03", Kind.AGENDA, "g", "a@x.example", "A", "UTC", MeetingPayload("2027-03"),
                          NOW, NOW, NOW, NOW)
    assert (publish.channel, agenda.channel) == ("publish:caldav", "mail")


def test_expiry_follows_the_misfire_rules():
    """A cycle's sends expire after its follow-ups can no longer be planned; a nudge two days after
    its due date (in the member's zone); a review after its grace; anything else 60 days after due."""
    ana = Addressee("Ana Souza", "ana@x.example", "Europe/London")

    def send(kind, payload):
        return Send(f"{kind}:g:x", kind, "g", ana.email, ana.name, ana.timezone, NOW, payload)

    assert expires(send(Kind.AGENDA, MeetingPayload("2027-03")), G) > datetime(2027, 3, 31, tzinfo=UTC) + timedelta(
        days=45)
    assert expires(send(Kind.NUDGE, NudgePayload(date(2027, 3, 10))), G) == datetime(2027, 3, 12, tzinfo=UTC)
    assert expires(send(Kind.REVIEW, PeriodPayload(date(2026, 9, 1), date(2027, 3, 1))), G).date() == date(
        2027, 3, 18)
    assert expires(send(Kind.REPORT, ReportPayload("2027-03")), G) == NOW + timedelta(days=60)


def test_backoff_is_capped_and_never_overflows():
    """5, 10, 20 ... minutes up to 6 hours, however many attempts (a long outage makes many)."""
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (5, 10, 20)]
    assert retry_delay(8) == retry_delay(40) == retry_delay(10**6) == timedelta(hours=6)
