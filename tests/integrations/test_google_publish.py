"""Google Calendar, publishing (integrations/google/publish.py): one event per meeting, found
by its iCalUID, carrying the text friendtor composed; cancelling; the guests' answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.core.config import Config, Service
from scheduler.core.errors import SendError
from google_api import (GROUP, MEETING, NO_CONTENT, UID, calls, client, event, fails, listing, ok, publisher,
                        stored_event)


@pytest.mark.parametrize("invitations, send_updates", [("friendtor", "none"), ("google", "all")])
def test_publish_inserts_one_event_with_the_meetings_uid(invitations, send_updates):
    """A new meeting is looked up by iCalUID, then inserted with iCalUID = UID, the group's zone and every member."""
    service, http = client(listing(), ok("calendar.events.insert", stored_event()))
    publisher(service, invitations).publish(GROUP, MEETING, event(MEETING))
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
    publisher(service).publish(GROUP, MEETING, event(MEETING))
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
    publisher(service).publish(GROUP, moved, event(moved))
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
    same = MEETING.moved(MEETING.start, MEETING.end, MEETING.stamp)
    publisher(service).publish(GROUP, same, event(same))
    assert calls(http)[1].body["sequence"] == 4


def test_a_deleted_event_comes_back_on_a_move():
    """An event someone deleted in Google is restored by the patch (status confirmed), not inserted twice."""
    service, http = client(listing(stored_event(status="cancelled")), ok("calendar.events.patch", stored_event()))
    publisher(service).publish(GROUP, MEETING, event(MEETING))
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
