"""Google Calendar, the API client (integrations/google/client.py): the discovery validator
the tests rely on, failures mapped to SendErrors the outbox understands, retries within a
call, and the client never loaded without Google."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest
from googleapiclient.discovery import build

from integrations.google import SCOPE, GooglePublisher
from scheduler.core.config import Google
from scheduler.core.errors import SendError
from google_api import GROUP, MEETING, ROOT, calls, client, event, fails, listing, ok, publisher, stored_event, validate


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
        publisher(service).publish(GROUP, MEETING, event(MEETING))
    calls(http)
    assert caught.value.transient is transient
    assert fix in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.code == json.loads(answer[1])["error"]["code"]


def test_service_account_403_names_the_subject_and_delegation():
    """With a service account, a refusal names the user it acts as and the delegation scope to check."""
    service, http = client(fails(403, "forbidden"))
    google = Google(auth="service-account", credentials="key.json", subject="ops@uni.example")
    with pytest.raises(SendError) as caught:
        GooglePublisher(lambda: service, google, "cfg", retries=0).publish(GROUP, MEETING, event(MEETING))
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
        publisher(service).publish(GROUP, MEETING, event(MEETING))
    assert caught.value.transient and "cannot reach Google" in str(caught.value) and http.count == 1


def test_a_transient_failure_is_retried_within_the_call():
    """One 503 followed by success publishes, after one short pause."""
    pauses: list[float] = []
    service, http = client(fails(503, "backendError"), listing(), ok("calendar.events.insert", stored_event()))
    publisher(service, retries=2, sleep=pauses.append).publish(GROUP, MEETING, event(MEETING))
    assert [c.method for c in calls(http)] == ["calendar.events.list"] * 2 + ["calendar.events.insert"]
    assert pauses == [1.0]


def test_retries_within_a_call_are_bounded():
    """Three 429s with two retries give up as a transient SendError after pauses of 1 s and 2 s."""
    pauses: list[float] = []
    service, http = client(*[fails(429, "rateLimitExceeded")] * 3)
    with pytest.raises(SendError) as caught:
        publisher(service, retries=2, sleep=pauses.append).publish(GROUP, MEETING, event(MEETING))
    assert caught.value.transient and pauses == [1.0, 2.0] and len(calls(http)) == 3

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
