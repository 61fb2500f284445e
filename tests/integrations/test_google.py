"""Google Calendar: free/busy reading, publishing, faults and the stored sign-in.

Every test talks to google-api-python-client itself, built from the discovery document it
ships (static_discovery), over its own HttpMockSequence: no network, no imitation of the
client. Every request the client sends is checked against that discovery document: the
method exists for its URL and verb, its query parameters are declared (with allowed
values), and its body validates against the method's request schema, converted to JSON
Schema with every property we send required to be declared, with the declared type.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import googleapiclient
import jsonschema
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import HttpMockSequence

from builders import group as make_group
from builders import member
from integrations.calendars import group_availability
from integrations.google import (
    SCOPE,
    Connection,
    GooglePublisher,
    google_busy,
    members_availability,
    save_token,
)
from integrations.mail import DryRunTransport
from scheduler.core.availability import Availability, Busy
from scheduler.cli.main import main
from scheduler.core.config import Config, Google, Service
from scheduler.core.errors import SendError
from scheduler.core.meetings import Meeting
from scheduler.app.service import ConfigWatcher, Runner
from scheduler.app.store import Store

ROOT = Path(__file__).resolve().parents[2]
DISCOVERY = json.loads((Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
                        / "calendar.v3.json").read_text(encoding="utf-8"))
BASE = DISCOVERY["rootUrl"] + DISCOVERY["servicePath"]
START = datetime(2026, 12, 1, tzinfo=UTC)


# --- the discovery document as a validator -----------------------------------------------------

def _schema(node: dict[str, Any], method: str) -> dict[str, Any]:
    """A discovery schema node as JSON Schema; `required` from the method's annotations."""
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    out: dict[str, Any] = {}
    if node.get("type") not in (None, "any"):
        out["type"] = node["type"]
    if node.get("format") in ("date-time", "date"):
        out["format"] = node["format"]
    if "enum" in node:
        out["enum"] = node["enum"]
    if "properties" in node:
        props = node["properties"]
        out["properties"] = {k: _schema(v, method) for k, v in props.items()}
        required = [k for k, v in props.items() if method in v.get("annotations", {}).get("required", ())]
        if required:
            out["required"] = required
        # Discovery does not say "no other keys", but a key Google does not know is silently
        # dropped: every key we send must be declared.
        out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _schema(node["additionalProperties"], method)
    if "items" in node:
        out["items"] = _schema(node["items"], method)
    return out


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    return not isinstance(value, str) or (
        bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value))
        and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None)


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"\d{4}-\d\d-\d\d", value))


def validate(ref: str, method: str, document: Any) -> None:
    """`document` is valid for schema `ref` as the discovery document describes it for `method`."""
    defs = {name: _schema(s, method) for name, s in DISCOVERY["schemas"].items()}
    jsonschema.Draft202012Validator({"$ref": f"#/$defs/{ref}", "$defs": defs},
                                    format_checker=FORMATS).validate(document)


def _methods() -> dict[str, dict[str, Any]]:
    found = {}

    def walk(resources: dict[str, Any]) -> None:
        for res in resources.values():
            for m in res.get("methods", {}).values():
                found[m["id"]] = m
            walk(res.get("resources", {}))
    walk(DISCOVERY["resources"])
    return found


METHODS = _methods()


@dataclass
class Call:
    method: str            # e.g. "calendar.events.insert"
    path: dict[str, str]   # path parameters
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


def _route(uri: str, verb: str) -> tuple[str, dict[str, str]]:
    path = urlsplit(uri).path
    assert path.startswith(urlsplit(BASE).path), uri
    rel = path[len(urlsplit(BASE).path):]
    for mid, m in METHODS.items():
        if m["httpMethod"] != verb:
            continue
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(m["path"]))
        hit = re.fullmatch(pattern, rel)
        if hit:
            return mid, {k: unquote(v) for k, v in hit.groupdict().items()}
    raise AssertionError(f"no Calendar v3 method is {verb} {rel}")


def calls(http: HttpMockSequence) -> list[Call]:
    """Every request the client sent, each checked against the discovery document."""
    out = []
    for uri, verb, body, headers in http.request_sequence:
        if not uri.startswith(BASE):   # the token endpoint (oauth2.googleapis.com), not the Calendar API
            continue
        mid, path = _route(uri, verb)
        spec = METHODS[mid]
        params = {**DISCOVERY["parameters"], **spec.get("parameters", {})}
        query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
        for name, p in spec.get("parameters", {}).items():
            if p.get("required"):
                assert name in path or name in query, f"{mid}: required parameter {name} missing"
        for name, value in query.items():
            assert name in params, f"{mid}: undeclared query parameter {name}"
            if "enum" in params[name]:
                assert value in params[name]["enum"], f"{mid}: {name}={value!r} not in {params[name]['enum']}"
            if params[name].get("type") == "boolean":
                assert value in ("true", "false"), f"{mid}: {name}={value!r} is not a boolean"
        data = json.loads(body) if body else None
        if "request" in spec:
            assert data is not None, f"{mid} needs a body"
            validate(spec["request"]["$ref"], mid, data)
        else:
            assert data is None, f"{mid} takes no body"
        out.append(Call(mid, path, query, data, dict(headers or {})))
    return out


@pytest.mark.parametrize("body, problem", [
    ({"iCalUID": "x", "start": {"dateTime": "2026-12-10T10:00:00-05:00"},
      "end": {"dateTime": "2026-12-10T11:00:00-05:00"}, "colour": "red"}, "colour"),
    ({"start": {"dateTime": "2026-12-10T10:00:00-05:00"}, "end": {"dateTime": "2026-12-10T11:00:00-05:00"},
      "sequence": "1"}, "'1' is not of type 'integer'"),
    ({"start": {"dateTime": "2026-12-10T10:00:00-05:00"}}, "'end' is a required property"),
    ({"start": {"dateTime": "2026-12-10 10:00"}, "end": {"dateTime": "2026-12-10T11:00:00Z"}}, "date-time"),
    ({"start": {"dateTime": "2026-12-10T10:00:00Z"}, "end": {"dateTime": "2026-12-10T11:00:00Z"},
      "attendees": [{"email": "a@x.example", "rsvp": True}]}, "rsvp"),
], ids=["unknown-key", "wrong-type", "missing-required", "bad-date-time", "unknown-nested-key"])
def test_the_discovery_validator_has_teeth(body, problem):
    """The checker used on every request rejects undeclared keys, wrong types, missing required fields and bad times."""
    with pytest.raises(jsonschema.ValidationError, match=re.escape(problem)):
        validate("Event", "calendar.events.insert", body)


def ok(method: str, document: dict[str, Any]) -> tuple[dict[str, str], str]:
    """A 200 answer for `method`, itself checked against the method's response schema."""
    validate(METHODS[method]["response"]["$ref"], method, document)
    return {"status": "200", "content-type": "application/json"}, json.dumps(document)


NO_CONTENT = ({"status": "204"}, "")


def fails(status: int, reason: str = "", message: str = "failed") -> tuple[dict[str, str], str]:
    """A Google JSON error answer."""
    errors = [{"domain": "global", "reason": reason, "message": message}] if reason else []
    return ({"status": str(status), "content-type": "application/json"},
            json.dumps({"error": {"code": status, "message": message, "errors": errors}}))


def client(*answers) -> tuple[Any, HttpMockSequence]:
    http = HttpMockSequence(list(answers))
    return build("calendar", "v3", http=http, static_discovery=True), http


def no_sleep(seconds: float) -> None:
    """Retries in tests do not wait."""


# --- free/busy ---------------------------------------------------------------------------

def freebusy_answer(body: dict[str, Any], calendars: dict[str, dict[str, Any]] | None = None):
    calendars = calendars or {}
    return ok("calendar.freebusy.query", {
        "kind": "calendar#freeBusy", "timeMin": body["timeMin"], "timeMax": body["timeMax"],
        "calendars": {i["id"]: calendars.get(i["id"], {"busy": []}) for i in body["items"]}})


def _window_body(ids: list[str], lo: datetime, hi: datetime) -> dict[str, Any]:
    return {"timeMin": lo.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeMax": hi.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "items": [{"id": i} for i in ids]}


@pytest.mark.parametrize("count, requests", [(1, 1), (50, 1), (51, 2), (120, 3)])
def test_freebusy_asks_for_at_most_50_calendars_a_request(count, requests):
    """120 calendars are asked in 3 requests of at most 50; each body is a valid FreeBusyRequest."""
    ids = [f"person{i}@uni.example" for i in range(count)]
    end = START + timedelta(days=30)
    answers = [freebusy_answer(_window_body(ids[i:i + 50], START, end)) for i in range(0, count, 50)]
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
    service, http = client(*[freebusy_answer(_window_body(["a@x.example"], lo, hi)) for lo, hi in bounds])
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
    service, http = client(freebusy_answer(_window_body(["a@x.example"], START, mid), first),
                           freebusy_answer(_window_body(["a@x.example"], mid, end), second))
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
    body = _window_body(["bad@x.example", "good@x.example"], START, end)
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
    service, http = client(fails(503, "backendError"), freebusy_answer(_window_body(ids[50:], START, end)))
    result = google_busy(service, ids, START, end, retries=0, sleep=no_sleep)
    calls(http)
    assert all(result[i].unknown for i in ids[:50]) and all(result[i].unknown is None for i in ids[50:])


def config_with(tmp_path: Path, google: Google | None, *groups) -> Config:
    return Config(folder=tmp_path, service=Service(google=google), groups={g.id: g for g in groups})


def test_group_availability_asks_google_once_for_all_google_members(tmp_path):
    """Three google: members of a group are read in one freebusy request; others are read as before."""
    members = [member(n, "America/New_York", calendar=f"google:{n.lower()}@x.example") for n in ("Ann", "Bo", "Cy")]
    g = make_group(*members, member("Dee", "Europe/Berlin"))
    config = config_with(tmp_path, Google(credentials="client.json"), g)
    end = START + timedelta(days=5)
    answer = freebusy_answer(_window_body(["ann@x.example", "bo@x.example", "cy@x.example"], START, end),
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


# --- publishing ---------------------------------------------------------------------------------

UID = "g-2026-12@mentoring.example.org"
MEETING = Meeting(group="g", cycle="2026-12", uid=UID, sequence=0, start=datetime(2026, 12, 10, 15, tzinfo=UTC),
                  end=datetime(2026, 12, 10, 16, tzinfo=UTC), stamp=datetime(2026, 11, 19, 12, tzinfo=UTC))
GROUP = make_group(member("Maya Chen", "America/New_York"), member("Li Wang", "America/Los_Angeles"),
                   zone="America/New_York")


def listing(*items: dict[str, Any]):
    return ok("calendar.events.list", {"kind": "calendar#events", "items": list(items)})


def stored_event(**extra) -> dict[str, Any]:
    """The event as Google returns it after the insert."""
    return {"kind": "calendar#event", "id": "evt123", "iCalUID": UID, "status": "confirmed", "sequence": 0,
            "start": {"dateTime": "2026-12-10T10:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-12-10T11:00:00-05:00", "timeZone": "America/New_York"}, **extra}


def publisher(service, invitations: str = "friendtor", retries: int = 0, sleep=no_sleep) -> GooglePublisher:
    return GooglePublisher(lambda: service, Google(credentials="client.json", invitations=invitations),
                           "/srv/friendtor/config", retries=retries, sleep=sleep)


@pytest.mark.parametrize("invitations, send_updates", [("friendtor", "none"), ("google", "all")])
def test_publish_inserts_one_event_with_the_meetings_uid(invitations, send_updates):
    """A new meeting is looked up by iCalUID, then inserted with iCalUID = UID, the group's zone and every member."""
    service, http = client(listing(), ok("calendar.events.insert", stored_event()))
    publisher(service, invitations).publish(GROUP, MEETING)
    found, insert = calls(http)
    assert found.method == "calendar.events.list" and found.query["iCalUID"] == UID
    assert found.path["calendarId"] == "primary"
    assert insert.method == "calendar.events.insert" and insert.query["sendUpdates"] == send_updates
    body = insert.body
    assert body["iCalUID"] == UID and body["summary"] == "Test group" and body["sequence"] == 0
    assert body["start"] == {"dateTime": "2026-12-10T10:00:00-05:00", "timeZone": "America/New_York"}
    assert body["end"] == {"dateTime": "2026-12-10T11:00:00-05:00", "timeZone": "America/New_York"}
    assert body["attendees"] == [
        {"email": "maya.chen@uni.example", "displayName": "Maya Chen", "responseStatus": "needsAction"},
        {"email": "li.wang@uni.example", "displayName": "Li Wang", "responseStatus": "needsAction"}]
    assert body["guestsCanSeeOtherGuests"] is False and body["reminders"] == {"useDefault": True}
    assert "peer mentorship meeting" in body["description"]


def test_the_event_text_is_the_invites_text():
    """The Google event's description is the emailed invite's DESCRIPTION, word for word."""
    from icalendar import Calendar

    from scheduler.compose.build import invite_calendar

    service, http = client(listing(), ok("calendar.events.insert", stored_event()))
    publisher(service).publish(GROUP, MEETING)
    body = calls(http)[1].body
    config = Config(folder=Path("."), service=Service(), groups={"g": GROUP})
    ical = Calendar.from_ical(invite_calendar(config, GROUP, GROUP.members[0], MEETING))
    vevent = next(c for c in ical.walk("VEVENT"))
    assert body["description"] == str(vevent["DESCRIPTION"]) and body["iCalUID"] == str(vevent["UID"])


def test_publish_after_a_move_patches_the_event_and_keeps_answers():
    """A moved meeting patches the existing event (new time, higher SEQUENCE), keeps who accepted, inserts nothing."""
    moved = MEETING.moved(MEETING.start + timedelta(days=1), MEETING.end + timedelta(days=1),
                          datetime(2026, 11, 25, tzinfo=UTC))
    existing = stored_event(attendees=[{"email": "maya.chen@uni.example", "responseStatus": "accepted"}])
    service, http = client(listing(existing), ok("calendar.events.patch", existing))
    publisher(service).publish(GROUP, moved)
    found, patch = calls(http)
    assert patch.method == "calendar.events.patch" and patch.path == {"calendarId": "primary", "eventId": "evt123"}
    assert patch.query["sendUpdates"] == "none"
    assert patch.body["start"]["dateTime"] == "2026-12-11T10:00:00-05:00" and patch.body["sequence"] == moved.sequence > 0
    assert "iCalUID" not in patch.body
    statuses = {a["email"]: a["responseStatus"] for a in patch.body["attendees"]}
    assert statuses == {"maya.chen@uni.example": "accepted", "li.wang@uni.example": "needsAction"}


def test_patch_never_lowers_googles_sequence():
    """Google refuses a SEQUENCE below its own; the patch sends the higher of the two."""
    service, http = client(listing(stored_event(sequence=4)), ok("calendar.events.patch", stored_event()))
    publisher(service).publish(GROUP, MEETING.moved(MEETING.start, MEETING.end, MEETING.stamp))
    assert calls(http)[1].body["sequence"] == 4


def test_a_deleted_event_comes_back_on_a_move():
    """An event someone deleted in Google is restored by the patch (status confirmed), not inserted twice."""
    service, http = client(listing(stored_event(status="cancelled")), ok("calendar.events.patch", stored_event()))
    publisher(service).publish(GROUP, MEETING)
    found, patch = calls(http)
    assert found.query["showDeleted"] == "true" and patch.body["status"] == "confirmed"


@pytest.mark.parametrize("invitations, send_updates", [("friendtor", "none"), ("google", "all")])
def test_cancel_deletes_the_event(invitations, send_updates):
    """Cancelling finds the event by iCalUID and deletes it; Google mails guests only with invitations = "google"."""
    service, http = client(listing(stored_event()), NO_CONTENT)
    publisher(service, invitations).cancel(GROUP, MEETING.cancel(datetime(2026, 11, 30, tzinfo=UTC)))
    found, delete = calls(http)
    assert delete.method == "calendar.events.delete" and delete.path["eventId"] == "evt123"
    assert delete.query["sendUpdates"] == send_updates


@pytest.mark.parametrize("answers", [
    [listing()],
    [listing(stored_event(status="cancelled"))],
    [listing(stored_event()), fails(410, "deleted", "Resource has been deleted")],
    [listing(stored_event()), fails(404, "notFound", "Not Found")],
], ids=["never-published", "already-cancelled", "deleted-meanwhile-410", "deleted-meanwhile-404"])
def test_cancelling_an_event_that_is_not_there_is_fine(answers):
    """Nothing to cancel is success, not an error the coordinators hear about."""
    service, http = client(*answers)
    publisher(service).cancel(GROUP, MEETING.cancel(datetime(2026, 11, 30, tzinfo=UTC)))
    assert len(calls(http)) == len(answers)


def test_responses_are_each_guests_response_status():
    """responses() looks the event up by iCalUID and returns {email (lower case): responseStatus}."""
    event = stored_event(attendees=[
        {"email": "Maya.Chen@uni.example", "responseStatus": "accepted"},
        {"email": "li.wang@uni.example", "responseStatus": "declined"},
        {"email": "guest@elsewhere.example", "responseStatus": "tentative"},
        {"email": "late@uni.example", "responseStatus": "needsAction"}])
    service, http = client(listing(event))
    assert publisher(service).responses(GROUP, MEETING) == {
        "maya.chen@uni.example": "accepted", "li.wang@uni.example": "declined",
        "guest@elsewhere.example": "tentative", "late@uni.example": "needsAction"}
    (found,) = calls(http)
    assert found.method == "calendar.events.list" and found.query["iCalUID"] == UID
    assert found.path["calendarId"] == "primary"


@pytest.mark.parametrize("answer", [listing(), listing(stored_event(status="cancelled"))],
                         ids=["not-published", "deleted"])
def test_no_event_means_no_responses(answer):
    service, http = client(answer)
    assert publisher(service).responses(GROUP, MEETING) == {}
    assert len(calls(http)) == 1


@pytest.mark.parametrize("answer, transient", [(fails(503, "backendError"), True), (fails(403, "forbidden"), False)],
                         ids=["503", "403"])
def test_responses_failures_are_send_errors(answer, transient):
    service, http = client(answer)
    with pytest.raises(SendError) as caught:
        publisher(service).responses(GROUP, MEETING)
    calls(http)
    assert caught.value.transient is transient


FAULTS = [
    pytest.param(fails(429, "rateLimitExceeded"), True, "Google is busy or limiting requests", id="429"),
    pytest.param(fails(503, "backendError"), True, "Google is busy or limiting requests", id="503"),
    pytest.param(fails(500), True, "Google is busy or limiting requests", id="500"),
    pytest.param(fails(403, "userRateLimitExceeded"), True, "Google is busy or limiting requests", id="403-rate-limit"),
    pytest.param(fails(401, "authError", "Invalid Credentials"), False,
                 "run `friendtor google-auth --config /srv/friendtor/config`", id="401"),
    pytest.param(fails(403, "forbidden"), False, "needs \"Make changes to events\" on calendar 'primary'", id="403"),
    pytest.param(fails(403, "accessNotConfigured"), False, "enable the Google Calendar API", id="403-api-off"),
    pytest.param(fails(404, "notFound"), False, "calendar 'primary' not found", id="404"),
    pytest.param(fails(400, "invalid", "Invalid value"), False, "Invalid value", id="400"),
]


@pytest.mark.parametrize("answer, transient, fix", FAULTS)
def test_faults_map_to_send_errors_the_outbox_understands(answer, transient, fix):
    """429/5xx/rate limits are transient; 401/403/404 are permanent and the message says how to fix them."""
    service, http = client(listing(), answer)
    with pytest.raises(SendError) as caught:
        publisher(service).publish(GROUP, MEETING)
    calls(http)
    assert caught.value.transient is transient
    assert fix in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.code == json.loads(answer[1])["error"]["code"]


def test_service_account_403_names_the_subject_and_delegation():
    """With a service account, a refusal names the user it acts as and the delegation scope to check."""
    service, http = client(fails(403, "forbidden"))
    google = Google(auth="service-account", credentials="key.json", subject="ops@uni.example")
    with pytest.raises(SendError) as caught:
        GooglePublisher(lambda: service, google, "cfg", retries=0).publish(GROUP, MEETING)
    assert "ops@uni.example" in str(caught.value) and SCOPE in str(caught.value)
    assert caught.value.transient is False


class Unreachable:
    """An httplib2-shaped transport whose every request times out, as a dead network does."""

    def __init__(self) -> None:
        self.count = 0

    def request(self, *args, **kwargs):
        self.count += 1
        raise TimeoutError("timed out")


def test_a_time_out_is_transient():
    """No answer from Google (a time-out) is retried later, not reported as permanent."""
    http = Unreachable()
    service = build("calendar", "v3", http=http, static_discovery=True)
    with pytest.raises(SendError) as caught:
        publisher(service).publish(GROUP, MEETING)
    assert caught.value.transient and "cannot reach Google" in str(caught.value) and http.count == 1


def test_a_transient_failure_is_retried_within_the_call():
    """One 503 followed by success publishes, after one short pause."""
    pauses: list[float] = []
    service, http = client(fails(503, "backendError"), listing(), ok("calendar.events.insert", stored_event()))
    publisher(service, retries=2, sleep=pauses.append).publish(GROUP, MEETING)
    assert [c.method for c in calls(http)] == ["calendar.events.list"] * 2 + ["calendar.events.insert"]
    assert pauses == [1.0]


def test_retries_within_a_call_are_bounded():
    """Three 429s with two retries give up as a transient SendError after pauses of 1 s and 2 s."""
    pauses: list[float] = []
    service, http = client(*[fails(429, "rateLimitExceeded")] * 3)
    with pytest.raises(SendError) as caught:
        publisher(service, retries=2, sleep=pauses.append).publish(GROUP, MEETING)
    assert caught.value.transient and pauses == [1.0, 2.0] and len(calls(http)) == 3


# --- credentials ------------------------------------------------------------------------------

CLIENT = {"installed": {"client_id": "123.apps.googleusercontent.com", "client_secret": "client-SECRET-value",
                        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                        "token_uri": "https://oauth2.googleapis.com/token", "redirect_uris": ["http://localhost"]}}
REFRESH = "1//refresh-TOKEN-value"
ACCESS = "ya29.fresh-ACCESS-token"


def signed_in(folder: Path, *, expired: bool) -> Google:
    """A config folder with an OAuth client file and a stored sign-in (expired or not)."""
    (folder / "client.json").write_text(json.dumps(CLIENT))
    creds = Credentials(token="ya29.old-ACCESS-token", refresh_token=REFRESH,
                        token_uri="https://oauth2.googleapis.com/token",
                        client_id=CLIENT["installed"]["client_id"],
                        client_secret=CLIENT["installed"]["client_secret"], scopes=[SCOPE],
                        expiry=datetime(2020, 1, 1) if expired else datetime.now(UTC).replace(tzinfo=None)
                        + timedelta(hours=1))
    save_token(creds, folder / "var" / "google-token.json")
    return Google(credentials="client.json")


def logged(caplog) -> str:
    """Everything the log records carry: messages and the structured fields friendtor's events add."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in caplog.records)


def test_save_token_writes_0600_atomically_without_the_client_secret(tmp_path):
    """The stored sign-in is mode 0600 whatever was there before, and holds the refresh token, not the client secret."""
    path = tmp_path / "var" / "google-token.json"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    creds = Credentials(token=None, refresh_token=REFRESH, token_uri="https://oauth2.googleapis.com/token",
                        client_id="123.apps.googleusercontent.com", client_secret="client-SECRET-value",
                        scopes=[SCOPE])
    save_token(creds, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["refresh_token"] == REFRESH and "client_secret" not in stored
    assert [p.name for p in path.parent.iterdir()] == ["google-token.json"]  # no temp file left


def test_expired_sign_in_is_refreshed_stored_0600_and_never_logged(tmp_path, caplog, capsys):
    """An expired access token is refreshed, stored (0600), used as the Bearer token, and appears in no log line."""
    caplog.set_level(logging.DEBUG)
    google = signed_in(tmp_path, expired=True)
    token_answer = ({"status": "200", "content-type": "application/json"},
                    json.dumps({"access_token": ACCESS, "expires_in": 3599, "token_type": "Bearer", "scope": SCOPE}))
    end = START + timedelta(days=1)
    http = HttpMockSequence([token_answer, freebusy_answer(_window_body(["a@x.example"], START, end))])
    connect = Connection(google, tmp_path, http=http)
    result = google_busy(connect(), ["a@x.example"], START, end)
    assert result["a@x.example"].unknown is None
    (call,) = calls(http)
    assert call.headers["authorization"] == f"Bearer {ACCESS}"
    path = tmp_path / "var" / "google-token.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["token"] == ACCESS and stored["refresh_token"] == REFRESH
    text = logged(caplog)
    assert "Google sign-in refreshed" in text and "google-token.json" in text
    out = capsys.readouterr()
    for secret in (ACCESS, REFRESH, "client-SECRET-value"):
        assert secret not in text and secret not in out.out + out.err


def test_a_valid_sign_in_is_used_without_refreshing(tmp_path):
    """A stored access token that has not expired goes straight to the API."""
    google = signed_in(tmp_path, expired=False)
    end = START + timedelta(days=1)
    http = HttpMockSequence([freebusy_answer(_window_body(["a@x.example"], START, end))])
    google_busy(Connection(google, tmp_path, http=http)(), ["a@x.example"], START, end)
    assert calls(http)[0].headers["authorization"] == "Bearer ya29.old-ACCESS-token"


def test_a_revoked_sign_in_is_permanent_and_names_the_command(tmp_path, caplog):
    """Google refusing the refresh token (invalid_grant) says to run google-auth again; no token in the text."""
    caplog.set_level(logging.DEBUG)
    google = signed_in(tmp_path, expired=True)
    refused = ({"status": "400", "content-type": "application/json"},
               json.dumps({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))
    with pytest.raises(SendError) as caught:
        Connection(google, tmp_path, http=HttpMockSequence([refused]))()
    text = str(caught.value)
    assert not caught.value.transient and "invalid_grant" in text
    assert f"run `friendtor google-auth --config {tmp_path}`" in text
    assert REFRESH not in text and REFRESH not in logged(caplog)


def test_signing_in_again_is_picked_up_without_a_restart(tmp_path):
    """After a refused sign-in, a new token file from `google-auth` is read at the next call."""
    google = signed_in(tmp_path, expired=True)
    refused = ({"status": "400", "content-type": "application/json"}, json.dumps({"error": "invalid_grant"}))
    end = START + timedelta(days=1)
    http = HttpMockSequence([refused, freebusy_answer(_window_body(["a@x.example"], START, end))])
    connect = Connection(google, tmp_path, http=http)
    with pytest.raises(SendError):
        connect()
    signed_in(tmp_path, expired=False)   # what `friendtor google-auth` leaves behind
    assert google_busy(connect(), ["a@x.example"], START, end)["a@x.example"].unknown is None


@pytest.mark.parametrize("setup, words", [
    ("no-client", "cannot read the Google OAuth client file"),
    ("bad-client", "not a Google OAuth client file"),
    ("no-token", "no Google sign-in stored yet; run `friendtor google-auth --config"),
    ("bad-token", "the stored Google sign-in is damaged"),
    ("other-client", "made with another OAuth client"),
])
def test_credential_files_that_cannot_be_used_are_one_line_with_the_fix(tmp_path, setup, words):
    """Each unusable credentials file gives one permanent line naming the file and what to do."""
    google = signed_in(tmp_path, expired=False)
    token = tmp_path / "var" / "google-token.json"
    if setup == "no-client":
        (tmp_path / "client.json").unlink()
    elif setup == "bad-client":
        (tmp_path / "client.json").write_text("{}")
    elif setup == "no-token":
        token.unlink()
    elif setup == "bad-token":
        token.write_text("{not json")
    elif setup == "other-client":
        token.write_text(json.dumps({**json.loads(token.read_text()), "client_id": "999.apps.googleusercontent.com"}))
    with pytest.raises(SendError) as caught:
        Connection(google, tmp_path, http=HttpMockSequence([]))()
    assert words in str(caught.value) and "\n" not in str(caught.value) and not caught.value.transient


def test_a_bad_service_account_key_is_one_line(tmp_path):
    """A service-account key file that is not a key names the file and where to get one."""
    (tmp_path / "key.json").write_text(json.dumps({"type": "service_account"}))
    google = Google(auth="service-account", credentials="key.json", subject="ops@uni.example")
    with pytest.raises(SendError) as caught:
        Connection(google, tmp_path, http=HttpMockSequence([]))()
    assert "key.json: not a service account key" in str(caught.value)


SERVICE_TOML = """
publish = {publish}
[mail]
sender = "k-club@mentoring.example.org"
sender_name = "K Club (friendtor)"
[google]
auth = "{auth}"
credentials = "key.json"
{extra}
"""


@pytest.mark.parametrize("auth, extra, words", [
    ("service-account", 'subject = "ops@uni.example"', "needs no sign-in"),
    ("oauth", "", "cannot read the Google OAuth client file"),
])
def test_google_auth_command_errors_are_one_line(tmp_path, capsys, auth, extra, words):
    """`friendtor google-auth` refuses a service-account config and a missing client file in one line, exit 2."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text(SERVICE_TOML.format(publish='["email"]', auth=auth, extra=extra))
    assert main(["google-auth", "--config", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_without_google_the_client_is_never_imported():
    """A config without Google calendars reads availability and publishers without loading googleapiclient."""
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from datetime import datetime, timedelta, UTC\n"
            "from scheduler.app.loader import load_config\n"
            "from integrations.calendars import group_availability\n"
            "from integrations.publish import publishers_for\n"
            "import scheduler.cli.main\n"
            f"config = load_config(Path({str(ROOT / 'config' / 'example')!r}))\n"
            "now = datetime(2026, 11, 20, tzinfo=UTC)\n"
            "for g in config.groups.values(): group_availability(config, g, now, now + timedelta(days=30))\n"
            "assert publishers_for(config) == {}\n"
            "bad = [m for m in sys.modules if m.startswith(('googleapiclient', 'google.', 'google_auth'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# --- the service, end to end ------------------------------------------------------------------

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_one_tick_publishes_to_google_once_and_emails_the_invites(tmp_path):
    """publish = ["email", "google"]: a tick inserts the meeting into Google once and emails every invite;
    the next tick sends nothing to Google."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text(SERVICE_TOML.format(publish='["email", "google"]', auth="oauth", extra=""))
    watcher = ConfigWatcher(folder)
    group = watcher.config.groups["k-club"]
    uid = "k-club-2026-12@mentoring.example.org"
    # The second tick reads the guests' answers once (events.list) and publishes nothing.
    service, http = client(listing(), ok("calendar.events.insert", stored_event(iCalUID=uid)),
                           listing(stored_event(iCalUID=uid)))
    google = GooglePublisher(lambda: service, watcher.config.service.google, folder, retries=0, sleep=no_sleep)
    transport = DryRunTransport()
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(watcher, store, lambda c: transport, availability=lambda *a: {},
                        publishers_factory=lambda c: {"google": google})
        first = runner.tick(NOW)
        second = runner.tick(NOW + timedelta(minutes=10))
    found, insert, answers = calls(http)
    assert found.query["iCalUID"] == uid and insert.body["iCalUID"] == uid
    assert answers.method == "calendar.events.list" and answers.query["iCalUID"] == uid
    assert len(insert.body["attendees"]) == len(group.members)
    assert [d.kind for d in first.sent].count("publish") == 1
    invites = [m for m in transport.messages if m["X-Friendtor-Kind"] == "invite"]
    assert len(invites) == len(group.members)
    for m in invites:  # the emailed invite and the Google event carry one UID: one event for the member
        (cal,) = [p for p in m.walk() if p.get_content_type() == "text/calendar"]
        assert f"UID:{uid}" in cal.get_payload(decode=True).decode()
    assert second.sent == [] and len(http.request_sequence) == 3
    assert not first.failed and not first.retrying


def test_refused_free_busy_is_reported_to_coordinators_once(tmp_path, caplog):
    """Google refusing free/busy for good (403): an error in the log each time, one email to the coordinators."""
    from scheduler.app.store import Store

    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    group_file = folder / "groups" / "k-club.toml"
    group_file.write_text(group_file.read_text().replace('calendar = "calendars/maya-chen.ics"',
                                                         'calendar = "google:maya@northeast-childrens.example"'))
    (folder / "google.json").write_text("{}")
    with open(folder / "service.toml", "a") as f:
        f.write('\n[google]\ncredentials = "google.json"\n')
    refused = Availability.unreadable("Google refused access (403): share the calendar", needs_fix=True)

    def availability(config, group, lo, hi):
        return {m.email: refused if m.calendar.startswith("google:") else Availability() for m in group.members}

    caplog.set_level(logging.INFO)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: DryRunTransport(), availability=availability)
        runner.tick(datetime(2026, 11, 20, 12, tzinfo=UTC))
        runner.tick(datetime(2026, 11, 21, 12, tzinfo=UTC))
        reports = [d for d in store.sends() if d.key.startswith("calendar-problem:")]
    coordinators = {"maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"}
    assert {d.recipient for d in reports} == coordinators and len(reports) == 2
    assert "calendars not readable until fixed" in caplog.text
    sent = [m for m in runner.transport.messages if m["Subject"].startswith("Calendars cannot be read")]
    assert len(sent) == 2
    assert "Maya Chen" in sent[0].get_body(("plain",)).get_content()


def _google_runner(tmp_path: Path, *answers):
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text(SERVICE_TOML.format(publish='["email", "google"]', auth="oauth", extra=""))
    watcher = ConfigWatcher(folder)
    uid = "k-club-2026-12@mentoring.example.org"
    service, http = client(listing(), ok("calendar.events.insert", stored_event(iCalUID=uid)), *answers)
    google = GooglePublisher(lambda: service, watcher.config.service.google, folder, retries=0, sleep=no_sleep)
    store = Store(folder / "var" / "state.json")
    runner = Runner(watcher, store, lambda c: DryRunTransport(), availability=lambda *a: {},
                    publishers_factory=lambda c: {"google": google})
    return runner, store, http, uid


def test_google_responses_are_recorded_as_rsvps_once_a_day(tmp_path, caplog):
    """A tick reads the Google guests' answers: accepted/declined become RSVPs for members, a non-member's
    answer and a tentative one are ignored, a coordinator's record stands; a second tick that day asks nothing."""
    maya, james = "maya.chen@northeast-childrens.example", "james.carter@northeast-childrens.example"
    daniel, hannah = "daniel.okafor@lakeshore-u.example", "hannah.schultz@lakeshore-u.example"
    uid = "k-club-2026-12@mentoring.example.org"
    guests = [{"email": maya, "responseStatus": "accepted"}, {"email": james.upper(), "responseStatus": "declined"},
              {"email": daniel, "responseStatus": "accepted"}, {"email": hannah, "responseStatus": "tentative"},
              {"email": "stranger@elsewhere.example", "responseStatus": "accepted"}]
    runner, store, http, _ = _google_runner(tmp_path, listing(stored_event(iCalUID=uid, attendees=guests)))
    caplog.set_level(logging.INFO)
    with store:
        runner.tick(NOW)                       # schedules and publishes; nothing to read yet
        (cycle,) = [c for (g, c) in store.meetings() if g == "k-club"]
        store.record_attendance("k-club", cycle, daniel, False, "coordinator", NOW)  # he was not there
        runner.tick(NOW + timedelta(minutes=10))
        runner.tick(NOW + timedelta(hours=2))  # the same day: Google is not asked again
        rows = {r["email"]: (r["present"], r["source"]) for r in store.attendance("k-club")}
    assert rows == {maya: (True, "rsvp"), james: (False, "rsvp"), daniel: (False, "coordinator")}
    *_, answers = calls(http)
    assert answers.method == "calendar.events.list" and answers.query["iCalUID"] == uid
    assert len(http.request_sequence) == 3
    ignored = [r for r in caplog.records if r.getMessage() == "reply from a non-member ignored"]
    assert [r.fields["sender"] for r in ignored] == ["stranger@elsewhere.example"]


def test_a_google_failure_reading_responses_does_not_stop_the_tick(tmp_path, caplog):
    """A refused events.list is a warning; the tick still completes, and that meeting is not read again that day."""
    runner, store, http, _ = _google_runner(tmp_path, fails(503, "backendError"))
    with store:
        runner.tick(NOW)
        report = runner.tick(NOW + timedelta(minutes=10))
        runner.tick(NOW + timedelta(minutes=20))
        assert store.attendance("k-club") == []
    assert not report.failed and len(http.request_sequence) == 3
    assert any(r.levelno == logging.WARNING and "Google responses not read" in r.getMessage() for r in caplog.records)
