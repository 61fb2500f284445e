"""Google Calendar, busy time (integrations/google/freebusy.py): freebusy.query in chunks of
50 calendars and 60 days, per-calendar and per-request failures as unknown, never free."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from builders import group as make_group
from builders import member
from integrations.calendars import group_availability
from integrations.google import google_busy, members_availability
from scheduler.core.availability import Busy
from scheduler.core.config import Google
from google_api import CLIENT, START, calls, client, config_with, fails, freebusy_answer, no_sleep, window_body


@pytest.mark.parametrize("count, requests", [(1, 1), (50, 1), (51, 2), (120, 3)])
def test_freebusy_asks_for_at_most_50_calendars_a_request(count, requests):
    """120 calendars are asked in 3 requests of at most 50; each body is a valid FreeBusyRequest."""
    ids = [f"person{i}@uni.example" for i in range(count)]
    end = START + timedelta(days=30)
    answers = [freebusy_answer(window_body(ids[i:i + 50], START, end)) for i in range(0, count, 50)]
    service, http = client(*answers)
    result = google_busy(service, ids, START, end, sleep=no_sleep)
    sent = calls(http)
    assert [c.method for c in sent] == ["calendar.freebusy.query"] * requests
    assert all(len(c.body["items"]) <= 50 for c in sent)
    assert [i["id"] for c in sent for i in c.body["items"]] == ids
    assert set(result) == set(ids) and all(a.unknown is None for a in result.values())


@pytest.mark.parametrize("days, windows", [(10, 1), (60, 1), (61, 2), (150, 3)])
def test_freebusy_splits_long_ranges_into_60_day_windows(days, windows):
    """A 150-day range is asked as 3 consecutive windows of at most 60 days that cover it exactly."""
    end = START + timedelta(days=days)
    bounds = [(START + timedelta(days=60 * k), min(START + timedelta(days=60 * (k + 1)), end)) for k in range(windows)]
    service, http = client(*[freebusy_answer(window_body(["a@x.example"], lo, hi)) for lo, hi in bounds])
    google_busy(service, ["a@x.example"], START, end, sleep=no_sleep)
    sent = [c.body for c in calls(http)]
    assert len(sent) == windows
    spans = [(datetime.fromisoformat(b["timeMin"]), datetime.fromisoformat(b["timeMax"])) for b in sent]
    assert spans[0][0] == START and spans[-1][1] == end
    assert all(hi - lo <= timedelta(days=60) for lo, hi in spans)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_busy_times_from_every_window_come_back_as_opaque_busy():
    """Busy intervals from several windows are merged per calendar, aware, and never tentative."""
    end = START + timedelta(days=90)
    mid = START + timedelta(days=60)
    first = {"a@x.example": {"busy": [{"start": "2026-12-02T15:00:00Z", "end": "2026-12-02T16:00:00Z"}]}}
    second = {"a@x.example": {"busy": [{"start": "2027-02-01T09:30:00-05:00", "end": "2027-02-01T10:00:00-05:00"}]}}
    service, http = client(freebusy_answer(window_body(["a@x.example"], START, mid), first),
                           freebusy_answer(window_body(["a@x.example"], mid, end), second))
    result = google_busy(service, ["a@x.example"], START, end, sleep=no_sleep)["a@x.example"]
    calls(http)
    assert result.unknown is None
    assert result.busy == (
        Busy(datetime(2026, 12, 2, 15, tzinfo=UTC), datetime(2026, 12, 2, 16, tzinfo=UTC)),
        Busy(datetime(2027, 2, 1, 14, 30, tzinfo=UTC), datetime(2027, 2, 1, 15, tzinfo=UTC)),
    )


@pytest.mark.parametrize("reason, words", [("notFound", "not shared"), ("internalError", "next tick"),
                                           ("somethingNew", "could not read")])
def test_a_calendar_google_reports_an_error_for_is_unknown_with_the_reason(reason, words):
    """A per-calendar error makes that calendar unknown (never free); the others keep their busy time."""
    end = START + timedelta(days=7)
    body = window_body(["bad@x.example", "good@x.example"], START, end)
    answer = freebusy_answer(body, {
        "bad@x.example": {"errors": [{"domain": "global", "reason": reason}]},
        "good@x.example": {"busy": [{"start": "2026-12-03T15:00:00Z", "end": "2026-12-03T16:00:00Z"}]}})
    service, http = client(answer)
    result = google_busy(service, ["bad@x.example", "good@x.example"], START, end, sleep=no_sleep)
    calls(http)
    assert result["bad@x.example"].unknown.startswith(f"Google Calendar: {reason}: bad@x.example: ")
    assert words in result["bad@x.example"].unknown and result["bad@x.example"].busy == ()
    assert result["good@x.example"].unknown is None and len(result["good@x.example"].busy) == 1


@pytest.mark.parametrize("answer, words", [
    (fails(500, "backendError"), "Google is busy"),
    (fails(403, "forbidden"), "not allowed"),
    (fails(401, "authError"), "friendtor google-auth --config"),
], ids=["500", "403", "401"])
def test_a_failed_request_makes_every_calendar_in_it_unknown(answer, words, caplog):
    """A whole request that fails leaves all its calendars unknown with a reason that names the fix; no crash."""
    service, http = client(answer)
    ids = ["a@x.example", "b@x.example"]
    result = google_busy(service, ids, START, START + timedelta(days=7), retries=0, sleep=no_sleep)
    calls(http)
    assert all(result[i].unknown and words in result[i].unknown for i in ids)
    assert "Google free/busy not read" in caplog.text


def test_a_failed_chunk_does_not_take_the_other_chunks_down():
    """Calendars in a request that succeeded keep their answer when another request failed."""
    ids = [f"p{i}@x.example" for i in range(60)]
    end = START + timedelta(days=7)
    service, http = client(fails(503, "backendError"), freebusy_answer(window_body(ids[50:], START, end)))
    result = google_busy(service, ids, START, end, retries=0, sleep=no_sleep)
    calls(http)
    assert all(result[i].unknown for i in ids[:50]) and all(result[i].unknown is None for i in ids[50:])

def test_group_availability_asks_google_once_for_all_google_members(tmp_path):
    """Three google: members of a group are read in one freebusy request; others are read as before."""
    members = [member(n, "America/New_York", calendar=f"google:{n.lower()}@x.example") for n in ("Ann", "Bo", "Cy")]
    g = make_group(*members, member("Dee", "Europe/Berlin"))
    config = config_with(tmp_path, Google(credentials="client.json"), g)
    end = START + timedelta(days=5)
    answer = freebusy_answer(window_body(["ann@x.example", "bo@x.example", "cy@x.example"], START, end),
                             {"bo@x.example": {"errors": [{"domain": "global", "reason": "notFound"}]}})
    service, http = client(answer)
    result = group_availability(config, g, START, end, google=lambda: service)
    assert [c.method for c in calls(http)] == ["calendar.freebusy.query"]
    assert result["bo@uni.example"].unknown and "notFound" in result["bo@uni.example"].unknown
    assert result["ann@uni.example"].unknown is None and result["dee@uni.example"].unknown is None


def test_google_member_without_a_google_table_is_unknown(tmp_path):
    """Without [google] (validation requires it; this is the safety net) the member is unknown, with the fix."""
    g = make_group(member("Ann", "UTC", calendar="google:ann@x.example"))
    result = group_availability(config_with(tmp_path, None, g), g, START, START + timedelta(days=1))
    assert "add a [google] table" in result["ann@uni.example"].unknown


def test_missing_sign_in_makes_google_members_unknown_with_the_command(tmp_path):
    """With no stored token the members are unknown and the reason names the file and the command."""
    (tmp_path / "client.json").write_text(json.dumps(CLIENT))
    g = make_group(member("Ann", "UTC", calendar="google:ann@x.example"))
    result = members_availability(config_with(tmp_path, Google(credentials="client.json"), g), g.members,
                                  START, START + timedelta(days=1))
    reason = result["ann@uni.example"].unknown
    assert "google-token.json" in reason and f"friendtor google-auth --config {tmp_path}" in reason
